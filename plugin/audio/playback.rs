//! Playing an audible [`SpeechStream`] through the audio device: a kira sound fed with the stream's 16 kHz
//! samples through a lock-free ring, whose playback position becomes the head's clock.
//!
//! bevy_kira_audio plays assets (clips), not samples that are still arriving, and keeps its kira manager to
//! itself, so audible streams get a second kira manager on the default device, opened when the first audible
//! stream appears. Without a device (CI, servers) it is not opened and the stream's clock runs virtually, as for a
//! silent stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use bevy::log::warn;
use bevy::platform::cell::SyncCell;
use bevy::prelude::Component;
use kira::info::Info;
use kira::sound::{Sound, SoundData};
use kira::{AudioManager, AudioManagerSettings, DefaultBackend, Frame, Panning};

use super::voice::VoiceMix;

use crate::contract::SAMPLE_RATE_HZ;

/// Samples the ring between the app and the audio thread holds (2 s at 16 kHz); more wait in the stream.
const RING_SAMPLES: usize = 2 * SAMPLE_RATE_HZ as usize;

/// What the app and the audio thread share about one playing stream.
#[derive(Debug)]
struct Shared {
    /// 16 kHz samples played so far.
    played: AtomicU64,
    /// No samples will be added: the sound ends once the ring is empty.
    closed: AtomicBool,
    /// The head let go of the stream: the sound ends now.
    stopped: AtomicBool,
    /// The output's linear gain and panning (`f32` bits; the head's [`VoiceMix`]).
    gain: AtomicU32,
    panning: AtomicU32,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            played: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            gain: AtomicU32::new(1.0f32.to_bits()),
            panning: AtomicU32::new(0.0f32.to_bits()),
        }
    }
}

/// The audio thread's side: plays the ring's 16 kHz samples at the device's rate (linear interpolation). When the
/// ring runs dry before the stream is closed, it outputs silence and waits, so its position never passes the audio
/// received.
struct StreamSound {
    ring: rtrb::Consumer<f32>,
    shared: Arc<Shared>,
    /// The sample the output has passed last (0 before the first) and the next one, once it is in the ring.
    current: f32,
    next: Option<f32>,
    /// Position between `current` and `next`, 0..1.
    phase: f64,
    /// The gain and panning the last output sample had: new ones are reached over one buffer (no clicks).
    gain: f32,
    panning: f32,
}

impl StreamSound {
    fn new(ring: rtrb::Consumer<f32>, shared: Arc<Shared>) -> Self {
        Self {
            ring,
            shared,
            current: 0.0,
            next: None,
            phase: 0.0,
            gain: 1.0,
            panning: 0.0,
        }
    }

    /// One output sample, `step` 16 kHz samples after the previous one.
    fn sample(&mut self, step: f64) -> f32 {
        if self.next.is_none() {
            self.next = self.ring.pop().ok();
        }
        let Some(next) = self.next else {
            return 0.0;
        };
        let out = self.current + (next - self.current) * self.phase as f32;
        self.phase += step;
        while self.phase >= 1.0 {
            let Some(next) = self.next else {
                // Ran dry mid-step: wait at the last sample for more.
                self.phase = 0.0;
                break;
            };
            self.current = next;
            self.next = self.ring.pop().ok();
            self.phase -= 1.0;
            self.shared.played.fetch_add(1, Ordering::Relaxed);
        }
        out
    }
}

impl Sound for StreamSound {
    fn process(&mut self, out: &mut [Frame], dt: f64, _info: &Info) {
        if self.shared.stopped.load(Ordering::Relaxed) {
            out.fill(Frame::ZERO);
            return;
        }
        let step = f64::from(SAMPLE_RATE_HZ) * dt;
        let gain = f32::from_bits(self.shared.gain.load(Ordering::Relaxed));
        let panning = f32::from_bits(self.shared.panning.load(Ordering::Relaxed));
        let (gain_0, panning_0, count) = (self.gain, self.panning, out.len() as f32);
        for (i, frame) in out.iter_mut().enumerate() {
            let t = (i + 1) as f32 / count;
            let sample = self.sample(step) * (gain_0 + (gain - gain_0) * t);
            *frame =
                Frame::from_mono(sample).panned(Panning(panning_0 + (panning - panning_0) * t));
        }
        (self.gain, self.panning) = (gain, panning);
    }

    fn finished(&self) -> bool {
        self.shared.stopped.load(Ordering::Relaxed)
            || (self.shared.closed.load(Ordering::Relaxed)
                && self.next.is_none()
                && self.ring.is_empty())
    }
}

struct StreamSoundData(StreamSound);

impl SoundData for StreamSoundData {
    type Error = std::convert::Infallible;
    type Handle = ();

    fn into_sound(self) -> Result<(Box<dyn Sound>, Self::Handle), Self::Error> {
        Ok((Box::new(self.0), ()))
    }
}

/// The app's side of one audible stream on a head: feeds the ring and reads the position back. Dropping it
/// (another stream, a despawned head) stops the sound.
#[derive(Component)]
pub(crate) struct StreamPlayback {
    /// The stream it plays ([`SpeechStream::id`](super::SpeechStream::id)).
    pub(crate) stream: u64,
    /// Only the app's main schedule touches it (`SyncCell`: components must be `Sync`).
    ring: SyncCell<rtrb::Producer<f32>>,
    shared: Arc<Shared>,
    /// Samples of the stream handed to the ring so far.
    queued: u64,
}

impl StreamPlayback {
    /// Starts a sound for stream `stream` on `manager`; `None` when kira refuses (its command queue is full).
    pub(crate) fn start<B: kira::backend::Backend>(
        manager: &mut AudioManager<B>,
        stream: u64,
    ) -> Option<Self> {
        let (producer, consumer) = rtrb::RingBuffer::new(RING_SAMPLES);
        let shared = Arc::new(Shared::default());
        let sound = StreamSoundData(StreamSound::new(consumer, shared.clone()));
        match manager.play(sound) {
            Ok(()) => Some(Self {
                stream,
                ring: SyncCell::new(producer),
                shared,
                queued: 0,
            }),
            Err(error) => {
                warn!(
                    "SpeechStream: could not start its playback ({error}); its clock runs without audio"
                );
                None
            }
        }
    }

    /// Hands over the samples of `backlog` the ring has room for, at most `releasable` of the stream's samples in
    /// all (the audio may not play ahead of the motion computed for it); returns how many were taken from the
    /// front of `backlog`. `closed`: nothing more will come after `releasable`.
    pub(crate) fn feed(&mut self, backlog: &[f32], releasable: u64, closed: bool) -> usize {
        let wanted = releasable.saturating_sub(self.queued);
        let ring = self.ring.get();
        let count = (backlog.len() as u64).min(wanted).min(ring.slots() as u64) as usize;
        for &sample in &backlog[..count] {
            // Cannot fail: `count` is within the free slots.
            let _ = ring.push(sample);
        }
        self.queued += count as u64;
        if closed && self.queued >= releasable {
            self.shared.closed.store(true, Ordering::Relaxed);
        }
        count
    }

    /// Whether the stream is closed and every sample handed over has been played.
    pub(crate) fn played_all(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed)
            && self.shared.played.load(Ordering::Relaxed) >= self.queued
    }

    /// Sets the output's level and panning (reached over the next audio buffer).
    pub(crate) fn set_mix(&self, mix: VoiceMix) {
        let shared = &self.shared;
        shared
            .gain
            .store(mix.amplitude().to_bits(), Ordering::Relaxed);
        shared
            .panning
            .store(mix.panning.to_bits(), Ordering::Relaxed);
    }

    /// The output's linear gain and panning as set last.
    #[cfg(test)]
    pub(crate) fn gain_and_panning(&self) -> (f32, f32) {
        let shared = &self.shared;
        (
            f32::from_bits(shared.gain.load(Ordering::Relaxed)),
            f32::from_bits(shared.panning.load(Ordering::Relaxed)),
        )
    }

    /// Seconds of the stream played so far.
    pub(crate) fn position_secs(&self) -> f64 {
        self.shared.played.load(Ordering::Relaxed) as f64 / f64::from(SAMPLE_RATE_HZ)
    }
}

impl Drop for StreamPlayback {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
    }
}

/// The kira manager of audible streams, opened on the first one; `None` inside when there is no audio device.
#[derive(Default)]
pub(crate) struct StreamAudioOutput {
    manager: Option<Option<AudioManager<DefaultBackend>>>,
}

impl StreamAudioOutput {
    /// An output that found no audio device (tests: the same result on every machine).
    #[cfg(test)]
    pub(crate) fn without_device() -> Self {
        Self {
            manager: Some(None),
        }
    }

    /// The manager, opening it on first use (a missing device is warned about once).
    pub(crate) fn manager(&mut self) -> Option<&mut AudioManager<DefaultBackend>> {
        self.manager
            .get_or_insert_with(|| {
                AudioManager::new(AudioManagerSettings::default())
                    .inspect_err(|error| {
                        warn!(
                            "SpeechStream: no audio device for audible streams ({error:?}); \
                             their clocks run without audio"
                        );
                    })
                    .ok()
            })
            .as_mut()
    }
}

#[cfg(test)]
mod tests {
    use kira::backend::mock::{MockBackend, MockBackendSettings};
    use kira::info::MockInfoBuilder;
    use std::f32::consts::SQRT_2;

    use super::*;

    fn sound() -> (rtrb::Producer<f32>, StreamSound) {
        let (producer, consumer) = rtrb::RingBuffer::new(64);
        (
            producer,
            StreamSound::new(consumer, Arc::new(Shared::default())),
        )
    }

    fn render(sound: &mut StreamSound, frames: usize, rate_hz: f64) -> Vec<f32> {
        let mut out = vec![Frame::ZERO; frames];
        sound.process(&mut out, 1.0 / rate_hz, &MockInfoBuilder::new().build());
        out.iter().map(|frame| frame.left).collect()
    }

    #[test]
    fn plays_16_khz_samples_at_the_device_rate_and_waits_when_dry() {
        let (mut ring, mut sound) = sound();
        for sample in [0.0, 0.3, 0.6, 0.9] {
            ring.push(sample).expect("room");
        }
        // 32 kHz: two output samples per input sample, linearly between them (one sample late).
        let out = render(&mut sound, 8, 32_000.0);
        let expected = [0.0, 0.0, 0.0, 0.15, 0.3, 0.45, 0.6, 0.75];
        for (got, want) in out.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{out:?}");
        }
        assert_eq!(sound.shared.played.load(Ordering::Relaxed), 4);
        // The ring ran dry: silence, and the position waits.
        let out = render(&mut sound, 10, 32_000.0);
        assert!(out.iter().all(|&s| s == 0.0), "{out:?}");
        assert_eq!(sound.shared.played.load(Ordering::Relaxed), 4);
        assert!(
            !sound.finished(),
            "an open stream never finishes by running dry"
        );
        ring.push(1.0).expect("room");
        let out = render(&mut sound, 2, 32_000.0);
        assert!(
            (out[0] - 0.9).abs() < 1e-6 && (out[1] - 0.95).abs() < 1e-6,
            "{out:?}"
        );
        assert_eq!(sound.shared.played.load(Ordering::Relaxed), 5);
        sound.shared.closed.store(true, Ordering::Relaxed);
        assert!(sound.finished());
    }

    #[test]
    fn a_new_gain_or_panning_is_reached_over_one_buffer_and_then_held() {
        let (mut ring, mut sound) = sound();
        for _ in 0..12 {
            ring.push(0.8).expect("room");
        }
        // Prime the interpolation (its first output sample is the silence before the stream).
        render(&mut sound, 1, 16_000.0);
        sound.shared.gain.store(0.5f32.to_bits(), Ordering::Relaxed);
        let out = render(&mut sound, 4, 16_000.0);
        let expected = [0.7, 0.6, 0.5, 0.4];
        for (got, want) in out.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{out:?}");
        }
        let out = render(&mut sound, 3, 16_000.0);
        assert!(out.iter().all(|&s| (s - 0.4).abs() < 1e-6), "{out:?}");
        // Panned hard right: the left channel fades out over one buffer, the right one gains 3 dB (kira's
        // constant-power law), then both hold.
        sound
            .shared
            .panning
            .store(1.0f32.to_bits(), Ordering::Relaxed);
        let mut out = vec![Frame::ZERO; 4];
        sound.process(&mut out, 1.0 / 16_000.0, &MockInfoBuilder::new().build());
        assert!(out[3].left.abs() < 1e-6 && (out[3].right - 0.4 * SQRT_2).abs() < 1e-5);
        assert!(
            out[0].left > out[1].left && out[1].left > out[2].left,
            "{out:?}"
        );
    }

    #[test]
    fn a_playback_feeds_no_further_than_released_and_stops_when_dropped() {
        let mut manager = AudioManager::<MockBackend>::new(AudioManagerSettings {
            backend_settings: MockBackendSettings {
                sample_rate: 16_000,
            },
            ..Default::default()
        })
        .expect("mock manager");
        let mut playback = StreamPlayback::start(&mut manager, 7).expect("playing");
        let backlog = vec![0.25; 10_000];
        assert_eq!(playback.feed(&backlog, 4_000, false), 4_000);
        assert_eq!(playback.feed(&backlog[4_000..], 4_000, false), 0);
        for _ in 0..4 {
            manager.backend_mut().on_start_processing();
            manager.backend_mut().process();
        }
        let played = playback.position_secs() * 16_000.0;
        assert!(played > 0.0 && played <= 4_000.0, "{played}");
        // Everything is released at the end of the stream.
        assert_eq!(playback.feed(&backlog[4_000..], 10_000, true), 6_000);
        assert!(playback.shared.closed.load(Ordering::Relaxed));
        let shared = playback.shared.clone();
        drop(playback);
        assert!(shared.stopped.load(Ordering::Relaxed));
    }
}
