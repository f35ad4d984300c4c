//! Live speech audio (text-to-speech, network, microphone) pushed in chunks.

use bevy::log::warn;
use bevy::prelude::Component;

use super::decode::{AudioError, SampleRepairs, check_sample_rate, repair_samples};
use super::resample::StreamingResampler;
use crate::contract::SAMPLE_RATE_HZ;

/// Speech that arrives while it plays: push PCM chunks as they come, read 16 kHz mono samples out.
///
/// Producers call [`push`](Self::push) with interleaved `f32` samples at any rate and channel count, then
/// [`finish`](Self::finish) at the end of the utterance. Consumers read [`received_16k`](Self::received_16k)
/// (16 kHz mono, mean of the channels, NaN/infinite samples replaced by 0, clamped to [-1, 1]) and call
/// [`consume_16k`](Self::consume_16k) for the samples they are done with, which frees them.
///
/// The sample rate may change between pushes: the samples of the old rate are flushed (their tail padded to
/// the exact length) and a new resampler starts, so timing stays exact but the filter restarts (a short
/// transient at the switch). The channel count may change freely.
///
/// Until [`finish`](Self::finish), the last ~25 ms of pushed audio are held back inside the resampler.
///
/// A stream made with [`audible`](Self::audible) is also played through the audio device (its 16 kHz mono
/// samples, 87.5 ms behind what was received, as the speech models need that look-ahead), and the head's clock
/// follows that playback, as it follows a clip's. [`new`](Self::new) streams only drive the face: right for a
/// microphone, whose sound the room already hears. Without an audio device an audible stream behaves like a
/// silent one.
///
/// Memory: samples stay in memory until consumed; a consumer that never calls `consume_16k` keeps the whole
/// stream (about 3.7 MiB per minute).
///
/// ```
/// # use bevy_talking_head::audio::SpeechStream;
/// let mut stream = SpeechStream::new();
/// let stereo_chunk = vec![0.0_f32; 2 * 441]; // 10 ms of stereo at 44.1 kHz
/// stream.push(&stereo_chunk, 2, 44_100)?;
/// stream.finish()?;
/// assert_eq!(stream.received_16k().len(), 160);
/// # Ok::<(), bevy_talking_head::audio::AudioError>(())
/// ```
#[derive(Component)]
#[require(super::clock::PlaybackClock)]
pub struct SpeechStream {
    /// Unique per stream made: a head given a new stream starts its clock and motion over.
    id: u64,
    resampler: Option<StreamingResampler>,
    mono: Vec<f32>,
    /// 16 kHz samples not yet consumed.
    received: Vec<f32>,
    consumed: u64,
    /// Seconds of audio pushed through resamplers that were already flushed (rate changes).
    flushed_secs: f64,
    finished: bool,
    repairs: SampleRepairs,
    audible: bool,
    /// Audible streams: 16 kHz samples not yet handed to the playback.
    playback: Vec<f32>,
}

impl Default for SpeechStream {
    fn default() -> Self {
        Self::new()
    }
}

impl SpeechStream {
    /// An empty, open stream. Insert it on a head (replacing a finished one) to start a new utterance: the head's
    /// clock and motion start over with it.
    pub fn new() -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Self {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            resampler: None,
            mono: Vec::new(),
            received: Vec::new(),
            consumed: 0,
            flushed_secs: 0.0,
            finished: false,
            repairs: SampleRepairs::default(),
            audible: false,
            playback: Vec::new(),
        }
    }

    /// An empty, open stream that is also played through the audio device (text-to-speech, a network voice).
    pub fn audible() -> Self {
        Self {
            audible: true,
            ..Self::new()
        }
    }

    /// Whether the stream is played through the audio device ([`audible`](Self::audible)).
    pub fn is_audible(&self) -> bool {
        self.audible
    }

    /// This stream's id, unique among the streams made in this process.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Appends interleaved samples (`channels` per frame, `sample_rate_hz` in Hz, any supported rate).
    ///
    /// Errors, without changing the stream, when `channels` is 0, the rate is outside 1 kHz ..= 384 kHz,
    /// `samples.len()` is not a multiple of `channels`, or the stream is finished.
    pub fn push(
        &mut self,
        samples: &[f32],
        channels: u16,
        sample_rate_hz: u32,
    ) -> Result<(), AudioError> {
        if self.finished {
            return Err(AudioError::StreamFinished);
        }
        if channels == 0 {
            return Err(AudioError::NoChannels);
        }
        check_sample_rate(sample_rate_hz)?;
        let channel_count = usize::from(channels);
        if !samples.len().is_multiple_of(channel_count) {
            return Err(AudioError::PartialFrame {
                samples: samples.len(),
                channels,
            });
        }

        if self
            .resampler
            .as_ref()
            .is_some_and(|resampler| resampler.input_rate_hz() != sample_rate_hz)
        {
            self.flush_resampler()?;
        }
        let resampler = match self.resampler.as_mut() {
            Some(resampler) => resampler,
            None => self
                .resampler
                .insert(StreamingResampler::new(sample_rate_hz)?),
        };

        self.mono.clear();
        let scale = 1.0 / channel_count as f32;
        self.mono.extend(
            samples
                .chunks_exact(channel_count)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
        let repairs = repair_samples(&mut self.mono);
        if !repairs.is_clean() {
            if self.repairs.is_clean() {
                warn!(
                    "SpeechStream: replaced {} NaN/infinite samples by 0 and clamped {} samples to [-1, 1] \
                     (warned once per stream; see SpeechStream::repairs for totals)",
                    repairs.non_finite, repairs.clipped
                );
            }
            self.repairs.add(repairs);
        }
        let start = self.received.len();
        resampler.process(&self.mono, &mut self.received)?;
        self.keep_for_playback(start);
        Ok(())
    }

    /// Audible streams: copies the samples received from `start` on for the playback.
    fn keep_for_playback(&mut self, start: usize) {
        if self.audible {
            self.playback.extend_from_slice(&self.received[start..]);
        }
    }

    /// Audible streams: the 16 kHz samples not yet handed to the playback, the first being stream sample
    /// `total_16k() - playback_backlog().len()`.
    pub(crate) fn playback_backlog(&self) -> &[f32] {
        &self.playback
    }

    /// Drops the first `count` samples of the playback backlog (handed over, or nothing to play them on).
    pub(crate) fn drain_playback(&mut self, count: usize) {
        self.playback.drain(..count.min(self.playback.len()));
    }

    /// Marks the end of the stream and releases the samples held back by the resampler.
    ///
    /// Calling it again does nothing; pushing afterwards is an error.
    pub fn finish(&mut self) -> Result<(), AudioError> {
        if self.finished {
            return Ok(());
        }
        self.flush_resampler()?;
        self.finished = true;
        Ok(())
    }

    fn flush_resampler(&mut self) -> Result<(), AudioError> {
        if let Some(mut resampler) = self.resampler.take() {
            self.flushed_secs +=
                resampler.input_len() as f64 / f64::from(resampler.input_rate_hz());
            let start = self.received.len();
            resampler.flush(&mut self.received)?;
            self.keep_for_playback(start);
        }
        Ok(())
    }

    /// True once [`finish`](Self::finish) was called: no more audio will arrive.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Duration of all audio pushed so far, in seconds (at the rates it was pushed at).
    pub fn duration_secs(&self) -> f64 {
        let open = self.resampler.as_ref().map_or(0.0, |resampler| {
            resampler.input_len() as f64 / f64::from(resampler.input_rate_hz())
        });
        self.flushed_secs + open
    }

    /// 16 kHz mono samples received and not yet consumed; the first one is sample number
    /// [`consumed_16k`](Self::consumed_16k) of the stream.
    pub fn received_16k(&self) -> &[f32] {
        &self.received
    }

    /// Drops the first `count` samples of [`received_16k`](Self::received_16k) (all of them if fewer remain),
    /// once the consumer is done with them.
    pub fn consume_16k(&mut self, count: usize) {
        let count = count.min(self.received.len());
        self.received.drain(..count);
        self.consumed += count as u64;
    }

    /// Number of 16 kHz samples consumed so far (the stream position of `received_16k()[0]`).
    pub fn consumed_16k(&self) -> u64 {
        self.consumed
    }

    /// Number of 16 kHz samples produced so far, consumed or not.
    pub fn total_16k(&self) -> u64 {
        self.consumed + self.received.len() as u64
    }

    /// Seconds of 16 kHz audio produced so far, consumed or not (lags [`duration_secs`](Self::duration_secs)
    /// by the resampler's hold-back until [`finish`](Self::finish)).
    pub fn resampled_secs(&self) -> f64 {
        self.total_16k() as f64 / f64::from(SAMPLE_RATE_HZ)
    }

    /// Samples that had to be repaired so far (NaN/infinite replaced by 0, out of range clamped).
    pub fn repairs(&self) -> SampleRepairs {
        self.repairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_leave_the_stream_unchanged() {
        let mut stream = SpeechStream::new();
        stream.push(&[0.5; 320], 1, 16_000).expect("valid push");
        assert!(matches!(
            stream.push(&[0.0; 4], 0, 16_000),
            Err(AudioError::NoChannels)
        ));
        assert!(matches!(
            stream.push(&[0.0; 4], 1, 0),
            Err(AudioError::UnsupportedSampleRate(0))
        ));
        assert!(matches!(
            stream.push(&[0.0; 4], 1, 500_000),
            Err(AudioError::UnsupportedSampleRate(500_000))
        ));
        assert!(matches!(
            stream.push(&[0.0; 5], 2, 16_000),
            Err(AudioError::PartialFrame {
                samples: 5,
                channels: 2
            })
        ));
        assert_eq!(stream.received_16k().len(), 320);
        assert!((stream.duration_secs() - 0.02).abs() < 1e-12);
        stream.finish().expect("finish");
        stream.finish().expect("finish twice");
        assert!(stream.is_finished());
        assert!(matches!(
            stream.push(&[0.0; 2], 1, 16_000),
            Err(AudioError::StreamFinished)
        ));
    }

    #[test]
    fn audible_streams_keep_every_sample_for_playback_until_drained() {
        let mut silent = SpeechStream::new();
        silent.push(&[0.1; 4410], 1, 44_100).expect("push");
        assert!(silent.playback_backlog().is_empty());
        let mut audible = SpeechStream::audible();
        assert!(audible.is_audible() && !silent.is_audible());
        audible.push(&[0.1; 4410], 1, 44_100).expect("push");
        audible
            .push(&[0.1; 800], 1, 8_000)
            .expect("rate change flushes");
        audible.finish().expect("finish");
        assert_eq!(audible.playback_backlog(), audible.received_16k());
        assert_eq!(audible.playback_backlog().len(), 3200);
        audible.consume_16k(1000);
        assert_eq!(
            audible.playback_backlog().len(),
            3200,
            "the models' consumption is separate"
        );
        audible.drain_playback(3000);
        assert_eq!(audible.playback_backlog().len(), 200);
    }

    #[test]
    fn channels_are_averaged_and_repaired() {
        let mut stream = SpeechStream::new();
        stream
            .push(
                &[0.5, 0.0, -1.0, f32::NAN, 0.0, 0.0, 3.0, 3.0, 3.0],
                3,
                16_000,
            )
            .expect("valid push");
        assert_eq!(stream.received_16k(), &[-0.5 / 3.0, 0.0, 1.0]);
        assert_eq!(
            stream.repairs(),
            SampleRepairs {
                non_finite: 1,
                clipped: 1
            }
        );
    }

    #[test]
    fn rate_changes_flush_and_keep_time() {
        let mut stream = SpeechStream::new();
        stream
            .push(&vec![0.1; 4410], 1, 44_100)
            .expect("valid push");
        stream
            .push(&vec![0.1; 4800], 1, 48_000)
            .expect("valid push");
        stream.push(&vec![0.1; 800], 1, 8_000).expect("valid push");
        stream.finish().expect("finish");
        assert!((stream.duration_secs() - 0.3).abs() < 1e-9);
        assert_eq!(stream.total_16k(), 4800);
    }

    #[test]
    fn samples_come_out_within_50_ms_of_being_pushed() {
        for rate in [8_000, 22_050, 44_100, 48_000] {
            let mut stream = SpeechStream::new();
            let ten_ms = vec![0.1; 2 * (rate as usize / 100)];
            for _ in 0..100 {
                stream.push(&ten_ms, 2, rate).expect("valid push");
                let lag_secs = stream.duration_secs() - stream.resampled_secs();
                assert!(
                    lag_secs < 0.05,
                    "{rate} Hz: {:.1} ms held back",
                    lag_secs * 1000.0
                );
            }
        }
    }

    #[test]
    fn consuming_frees_samples_and_counts_them() {
        let mut stream = SpeechStream::new();
        stream.push(&[0.25; 100], 1, 16_000).expect("valid push");
        stream.consume_16k(40);
        assert_eq!(stream.received_16k().len(), 60);
        assert_eq!(stream.consumed_16k(), 40);
        stream.consume_16k(1000);
        assert!(stream.received_16k().is_empty());
        assert_eq!(stream.total_16k(), 100);
    }
}
