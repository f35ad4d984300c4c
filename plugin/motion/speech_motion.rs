//! Speech → coefficient tracks: the speech models run on the async compute pool, a chunk at a time, ahead of the
//! playback clock, for clips ([`Speech`]) and live streams ([`SpeechStream`]) alike; their 25 fps frames fill the
//! head's [`MotionTrack`].

use std::sync::Arc;

use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task, futures::check_ready};
use bevy_kira_audio::AudioSource;
use kira::sound::static_sound::StaticSoundData;

use super::{FaceCoefficients, MotionTrack};
use crate::audio::clock::{PlaybackClock, Speech};
use crate::audio::{SpeechStream, StreamingResampler, repair_samples};
use crate::contract::ARKIT_WEIGHT_COUNT;
use crate::contract::models::{AUDIO_ENCODER, MOTION_GENERATOR};
use crate::inference::Models;
use crate::inference::{ModelRegistry, SpeechToMotion};

/// Seconds of motion computed ahead of the playback clock for clips; the next chunk starts when less is left.
pub const MOTION_LEAD_SECS: f64 = 10.0;
/// Seconds of clip audio per model run.
const CLIP_CHUNK_SECS: f64 = 10.0;

/// The speech motion of a head's clip or stream: computing, done, or why there is none. Added by the plugin.
#[derive(Component)]
pub struct SpeechMotion {
    source: MotionSource,
    state: MotionState,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum MotionSource {
    /// A clip, in one utterance of the head (saying the same clip again computes its motion again).
    Clip(AssetId<AudioSource>, u64),
    /// A stream, by id.
    Stream(u64),
}

enum MotionState {
    /// Waiting for the clock (clips) or for audio (streams).
    Waiting(Box<MotionJob>),
    Computing(Task<Result<Box<MotionJob>, String>>),
    Done,
    Unavailable(String),
}

/// Everything a chunk of work needs; moved into the task and back.
struct MotionJob {
    registry: Arc<ModelRegistry>,
    speech: SpeechToMotion,
    clip: Option<ClipReader>,
    /// Frames computed by the last chunk, not yet in the track.
    frames: Vec<[f32; ARKIT_WEIGHT_COUNT]>,
}

/// Reads a loaded clip a chunk at a time: mono mix, repair, resample to 16 kHz.
struct ClipReader {
    sound: StaticSoundData,
    next: usize,
    end: usize,
    resampler: StreamingResampler,
}

impl SpeechMotion {
    /// Why the speech drives no motion, if it does not (models missing, undecodable audio, model error).
    pub fn unavailable(&self) -> Option<&str> {
        match &self.state {
            MotionState::Unavailable(reason) => Some(reason),
            _ => None,
        }
    }

    /// Whether a chunk is being computed on the async compute pool right now.
    pub fn is_computing(&self) -> bool {
        matches!(self.state, MotionState::Computing(_))
    }

    /// Whether all of the speech's motion is in the head's track (a stream: once it is finished).
    pub fn is_done(&self) -> bool {
        matches!(self.state, MotionState::Done)
    }

    fn unavailable_because(source: MotionSource, reason: String) -> Self {
        Self {
            source,
            state: MotionState::Unavailable(reason),
        }
    }
}

impl std::fmt::Debug for SpeechMotion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            MotionState::Waiting(job) => format!("waiting at frame {}", job.speech.frames_taken()),
            MotionState::Computing(_) => "computing".to_owned(),
            MotionState::Done => "done".to_owned(),
            MotionState::Unavailable(reason) => format!("unavailable: {reason}"),
        };
        f.debug_struct("SpeechMotion")
            .field("source", &self.source)
            .field("state", &state)
            .finish()
    }
}

impl ClipReader {
    fn new(sound: &StaticSoundData) -> Result<Self, String> {
        let total = sound.frames.len();
        let (start, end) = sound
            .slice
            .map_or((0, total), |(s, e)| (s.min(total), e.min(total)));
        if start >= end {
            return Err("the clip contains no samples".into());
        }
        Ok(Self {
            sound: sound.clone(),
            next: start,
            end,
            resampler: StreamingResampler::new(sound.sample_rate).map_err(|e| e.to_string())?,
        })
    }

    /// The next chunk at 16 kHz and whether it was the last.
    fn read(&mut self) -> Result<(Vec<f32>, bool), String> {
        let chunk = (CLIP_CHUNK_SECS * f64::from(self.sound.sample_rate)) as usize;
        let stop = (self.next + chunk.max(1)).min(self.end);
        let mut mono: Vec<f32> = self.sound.frames[self.next..stop]
            .iter()
            .map(|frame| 0.5 * (frame.left + frame.right))
            .collect();
        self.next = stop;
        repair_samples(&mut mono);
        let mut out = Vec::with_capacity(mono.len());
        self.resampler
            .process(&mono, &mut out)
            .map_err(|e| e.to_string())?;
        let last = self.next == self.end;
        if last {
            self.resampler.flush(&mut out).map_err(|e| e.to_string())?;
        }
        Ok((out, last))
    }
}

impl MotionJob {
    fn new(models: &Models, clip: Option<ClipReader>) -> Result<Box<Self>, String> {
        let missing = models.missing(&[AUDIO_ENCODER, MOTION_GENERATOR])?;
        if !missing.is_empty() {
            return Err(format!(
                "speech models {} are not in assets/models/manifest.ron",
                missing.join(", ")
            ));
        }
        Ok(Box::new(Self {
            registry: models.registry().ok_or("no models are loaded")?,
            speech: SpeechToMotion::new(),
            clip,
            frames: Vec::new(),
        }))
    }

    /// Whether every frame of the speech has been computed and handed over.
    fn is_complete(&self) -> bool {
        self.frames.is_empty() && self.speech.total_frames() == Some(self.speech.frames_taken())
    }

    /// One chunk: the next piece of the clip (or the given stream samples) through the models.
    fn step(
        mut self: Box<Self>,
        stream_samples: Vec<f32>,
        stream_finished: bool,
    ) -> Result<Box<Self>, String> {
        match self.clip.as_mut() {
            Some(clip) => {
                let (samples, last) = clip.read()?;
                self.speech.push(&samples);
                if last {
                    self.speech.finish();
                }
            }
            None => {
                self.speech.push(&stream_samples);
                if stream_finished {
                    self.speech.finish();
                }
            }
        }
        let frames = self
            .speech
            .take_frames(&self.registry, usize::MAX)
            .map_err(|e| e.to_string())?;
        self.frames.extend(frames);
        Ok(self)
    }
}

/// What [`generate_speech_motion`] reads and writes per head.
type SpeakingHead<'a> = (
    Entity,
    Option<&'a Speech>,
    Option<&'a mut SpeechStream>,
    &'a PlaybackClock,
    &'a mut MotionTrack,
    Option<&'a mut SpeechMotion>,
);

/// Starts the speech models on each head's clip or stream, keeps them ahead of the clock, and moves finished
/// chunks into the heads' tracks.
pub(crate) fn generate_speech_motion(
    mut commands: Commands,
    sources: Res<Assets<AudioSource>>,
    models: Option<Res<Models>>,
    mut heads: Query<SpeakingHead>,
) {
    for (entity, speech, stream, clock, mut track, motion) in &mut heads {
        let source = match (speech, &stream) {
            (Some(speech), _) => MotionSource::Clip(speech.clip.id(), clock.utterance()),
            (None, Some(stream)) => MotionSource::Stream(stream.id()),
            (None, None) => continue,
        };
        let Some(mut motion) = motion.filter(|motion| motion.source == source) else {
            let Some(models) = models.as_ref() else {
                continue;
            };
            let job = match source {
                MotionSource::Clip(id, _) => {
                    let Some(audio) = sources.get(id) else {
                        continue;
                    };
                    ClipReader::new(&audio.sound)
                        .and_then(|clip| MotionJob::new(models, Some(clip)))
                }
                MotionSource::Stream(_) => MotionJob::new(models, None),
            };
            *track = MotionTrack::default();
            commands.entity(entity).insert(match job {
                Ok(job) => SpeechMotion {
                    source,
                    state: MotionState::Waiting(job),
                },
                Err(reason) => {
                    warn!("talking head {entity}: the mouth stays at rest: {reason}");
                    SpeechMotion::unavailable_because(source, reason)
                }
            });
            continue;
        };

        if let MotionState::Computing(task) = &mut motion.state {
            let Some(result) = check_ready(task) else {
                continue;
            };
            motion.state = match result {
                Ok(mut job) => {
                    for weights in job.frames.drain(..) {
                        track.push(FaceCoefficients {
                            weights,
                            ..default()
                        });
                    }
                    if job.is_complete() {
                        track.finish();
                        MotionState::Done
                    } else {
                        MotionState::Waiting(job)
                    }
                }
                Err(reason) => {
                    error!("talking head {entity}: speech motion stopped: {reason}");
                    MotionState::Unavailable(reason)
                }
            };
        }

        let MotionState::Waiting(_) = &motion.state else {
            continue;
        };
        let (samples, finished) = match stream {
            Some(mut stream) if matches!(source, MotionSource::Stream(_)) => {
                let samples = stream.received_16k().to_vec();
                stream.consume_16k(samples.len());
                let finished = stream.is_finished();
                if samples.is_empty() && !finished {
                    continue;
                }
                (samples, finished)
            }
            _ => {
                if track.produced_secs() >= clock.time_secs + MOTION_LEAD_SECS {
                    continue;
                }
                (Vec::new(), false)
            }
        };
        if let MotionState::Waiting(job) = std::mem::replace(&mut motion.state, MotionState::Done) {
            motion.state = MotionState::Computing(
                AsyncComputeTaskPool::get().spawn(async move { job.step(samples, finished) }),
            );
        }
    }
}
