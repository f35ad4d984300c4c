//! Decoding audio files (WAV, Ogg Vorbis, FLAC, MP3) into mono `f32` samples.
//!
//! Decoding goes through kira, the same decoder bevy_kira_audio plays clips with, so the samples the models see
//! are the samples the listener hears (same length, same encoder delay handling).

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use bevy::log::warn;
use kira::sound::FromFileError;
use kira::sound::static_sound::StaticSoundData;
use thiserror::Error;

use super::resample::resample_to_16k;
use crate::contract::SAMPLE_RATE_HZ;

/// Lowest input sample rate the audio module accepts, in Hz.
pub const MIN_INPUT_SAMPLE_RATE_HZ: u32 = 1_000;
/// Highest input sample rate the audio module accepts, in Hz.
pub const MAX_INPUT_SAMPLE_RATE_HZ: u32 = 384_000;

/// What went wrong while decoding, resampling or streaming audio.
#[derive(Debug, Error)]
pub enum AudioError {
    /// The file could not be read from disk.
    #[error(
        "could not read audio file {path}: {source}; check that the path exists and is readable"
    )]
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not audio in a supported format, or the file is damaged.
    #[error(
        "could not decode audio{origin}: {reason}; supported formats are WAV, Ogg Vorbis, FLAC and MP3 with \
         1 or 2 channels (convert others, e.g. `ffmpeg -i in -ac 1 out.wav`)"
    )]
    Decode {
        /// Where the audio came from (` from <path>` or empty), ready to print.
        origin: String,
        /// What the decoder reported.
        reason: String,
    },
    /// The audio holds no samples at all.
    #[error("audio{origin} contains no samples; give a clip that is at least one sample long")]
    Empty {
        /// Where the audio came from (` from <path>` or empty), ready to print.
        origin: String,
    },
    /// Interleaved audio was given with a channel count of zero.
    #[error("channel count is 0; interleaved audio needs at least 1 channel")]
    NoChannels,
    /// The sample rate is outside the supported range.
    #[error(
        "sample rate {0} Hz is not supported; give audio between {MIN_INPUT_SAMPLE_RATE_HZ} and \
         {MAX_INPUT_SAMPLE_RATE_HZ} Hz (is the rate in Hz, not kHz?)"
    )]
    UnsupportedSampleRate(u32),
    /// An interleaved buffer does not hold whole frames.
    #[error(
        "{samples} interleaved samples are not a whole number of frames of {channels} channels; push complete \
         frames (samples.len() must be a multiple of the channel count)"
    )]
    PartialFrame {
        /// Number of samples that were given.
        samples: usize,
        /// Channel count that was given.
        channels: u16,
    },
    /// Audio was pushed into a stream after `finish()`.
    #[error(
        "audio was pushed after the stream was finished; start a new SpeechStream for new speech"
    )]
    StreamFinished,
    /// The resampler reported an internal error (a bug: please report it with the input sample rate).
    #[error(
        "resampling from {rate_hz} Hz to 16 kHz failed: {reason}; this is a bug, please report it"
    )]
    Resample {
        /// Input sample rate, in Hz.
        rate_hz: u32,
        /// What rubato reported.
        reason: String,
    },
}

/// Checks that `rate_hz` lies in the range the audio module accepts.
pub(crate) fn check_sample_rate(rate_hz: u32) -> Result<(), AudioError> {
    if (MIN_INPUT_SAMPLE_RATE_HZ..=MAX_INPUT_SAMPLE_RATE_HZ).contains(&rate_hz) {
        Ok(())
    } else {
        Err(AudioError::UnsupportedSampleRate(rate_hz))
    }
}

/// Mono audio: samples in [-1, 1] at one sample rate.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pcm {
    /// Mono samples, nominally in [-1, 1].
    pub samples: Vec<f32>,
    /// Sample rate of `samples`, in Hz.
    pub sample_rate_hz: u32,
}

impl Pcm {
    /// Duration of the audio, in seconds (0 when the sample rate is 0).
    pub fn duration_secs(&self) -> f64 {
        if self.sample_rate_hz == 0 {
            return 0.0;
        }
        self.samples.len() as f64 / f64::from(self.sample_rate_hz)
    }

    /// Root mean square of the samples (0 for no samples), in full-scale units.
    pub fn rms(&self) -> f32 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let sum: f64 = self
            .samples
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum();
        (sum / self.samples.len() as f64).sqrt() as f32
    }

    /// The same audio resampled to the models' rate, [`SAMPLE_RATE_HZ`] (16 kHz).
    ///
    /// Output length is `round(len * 16000 / sample_rate_hz)` and timing is preserved (see
    /// [`super::StreamingResampler`]). Audio already at 16 kHz is copied unchanged.
    pub fn to_16k(&self) -> Result<Pcm, AudioError> {
        Ok(Pcm {
            samples: resample_to_16k(&self.samples, self.sample_rate_hz)?,
            sample_rate_hz: SAMPLE_RATE_HZ,
        })
    }
}

/// How many samples [`repair_samples`] had to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SampleRepairs {
    /// Samples that were NaN or infinite and were replaced by 0.
    pub non_finite: usize,
    /// Finite samples outside [-1, 1] that were clamped into it.
    pub clipped: usize,
}

impl SampleRepairs {
    /// True when no sample was changed.
    pub fn is_clean(&self) -> bool {
        self.non_finite == 0 && self.clipped == 0
    }

    /// Adds the counts of `other` to `self`.
    pub fn add(&mut self, other: SampleRepairs) {
        self.non_finite += other.non_finite;
        self.clipped += other.clipped;
    }
}

/// Replaces NaN/infinite samples by 0 and clamps the rest to [-1, 1], in place; returns what it changed.
pub fn repair_samples(samples: &mut [f32]) -> SampleRepairs {
    let mut repairs = SampleRepairs::default();
    for sample in samples {
        if !sample.is_finite() {
            *sample = 0.0;
            repairs.non_finite += 1;
        } else if sample.abs() > 1.0 {
            *sample = sample.clamp(-1.0, 1.0);
            repairs.clipped += 1;
        }
    }
    repairs
}

/// Decodes an audio file (WAV, Ogg Vorbis, FLAC or MP3; mono or stereo) into mono samples at the file's rate.
///
/// Stereo is mixed down to the mean of both channels. NaN/infinite samples become 0 and samples outside
/// [-1, 1] are clamped; when that happens a warning with the counts is logged.
pub fn decode_file(path: impl AsRef<Path>) -> Result<Pcm, AudioError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| AudioError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_with_origin(&bytes, &format!(" from {}", path.display()))
}

/// Decodes an in-memory audio file (WAV, Ogg Vorbis, FLAC or MP3; mono or stereo) into mono samples at its rate.
///
/// Same rules as [`decode_file`].
pub fn decode_bytes(bytes: &[u8]) -> Result<Pcm, AudioError> {
    decode_with_origin(bytes, "")
}

fn decode_with_origin(bytes: &[u8], origin: &str) -> Result<Pcm, AudioError> {
    // Malformed input must not take the app down; kira/symphonia report most damage as errors, this catches the rest.
    let decoded = catch_unwind(AssertUnwindSafe(|| {
        StaticSoundData::from_cursor(Cursor::new(bytes))
    }))
    .map_err(|_| AudioError::Decode {
        origin: origin.to_owned(),
        reason: "the decoder panicked on malformed data".to_owned(),
    })?;
    let sound = decoded.map_err(|error| AudioError::Decode {
        origin: origin.to_owned(),
        reason: describe_kira_error(&error),
    })?;
    pcm_from_sound(&sound, origin)
}

fn describe_kira_error(error: &FromFileError) -> String {
    match error {
        FromFileError::UnsupportedChannelConfiguration => {
            "the file has more than 2 channels (only mono and stereo are supported)".to_owned()
        }
        other => other.to_string(),
    }
}

/// Mixes a kira sound (for instance bevy_kira_audio's `AudioSource::sound`) down to mono samples at its rate.
///
/// Honours the sound's slice. Channels are averaged; NaN/infinite samples become 0 and samples outside [-1, 1]
/// are clamped, with a logged warning giving the counts.
pub fn from_static_sound(sound: &StaticSoundData) -> Result<Pcm, AudioError> {
    pcm_from_sound(sound, "")
}

fn pcm_from_sound(sound: &StaticSoundData, origin: &str) -> Result<Pcm, AudioError> {
    check_sample_rate(sound.sample_rate)?;
    let all = &sound.frames[..];
    let frames = match sound.slice {
        Some((start, end)) => all
            .get(start.min(all.len())..end.min(all.len()))
            .unwrap_or(&[]),
        None => all,
    };
    if frames.is_empty() {
        return Err(AudioError::Empty {
            origin: origin.to_owned(),
        });
    }
    let mut samples: Vec<f32> = frames
        .iter()
        .map(|frame| 0.5 * (frame.left + frame.right))
        .collect();
    let repairs = repair_samples(&mut samples);
    if !repairs.is_clean() {
        warn!(
            "audio{origin}: replaced {} NaN/infinite samples by 0 and clamped {} samples to [-1, 1]",
            repairs.non_finite, repairs.clipped
        );
    }
    Ok(Pcm {
        samples,
        sample_rate_hz: sound.sample_rate,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kira::Frame;

    use super::*;

    fn sound(frames: Vec<Frame>, sample_rate: u32) -> StaticSoundData {
        StaticSoundData {
            sample_rate,
            frames: Arc::from(frames),
            settings: Default::default(),
            slice: None,
        }
    }

    #[test]
    fn stereo_is_mixed_to_the_mean() {
        let pcm = from_static_sound(&sound(
            vec![Frame::new(0.5, -0.25), Frame::new(1.0, 0.0)],
            8000,
        ))
        .expect("valid sound");
        assert_eq!(pcm.samples, vec![0.125, 0.5]);
        assert_eq!(pcm.sample_rate_hz, 8000);
    }

    #[test]
    fn non_finite_and_loud_samples_are_repaired_and_counted() {
        let mut samples = vec![f32::NAN, f32::INFINITY, 2.0, -3.0, 0.5];
        let repairs = repair_samples(&mut samples);
        assert_eq!(
            repairs,
            SampleRepairs {
                non_finite: 2,
                clipped: 2
            }
        );
        assert_eq!(samples, vec![0.0, 0.0, 1.0, -1.0, 0.5]);
        let pcm = from_static_sound(&sound(
            vec![Frame::new(f32::NAN, 0.0), Frame::new(4.0, 4.0)],
            8000,
        ))
        .expect("valid sound");
        assert_eq!(pcm.samples, vec![0.0, 1.0]);
    }

    #[test]
    fn slices_are_honoured_and_empty_sounds_rejected() {
        let full = sound(
            (0..10).map(|i| Frame::from_mono(i as f32 / 10.0)).collect(),
            16_000,
        );
        let sliced = StaticSoundData {
            slice: Some((2, 4)),
            ..full.clone()
        };
        let pcm = from_static_sound(&sliced).expect("valid slice");
        let backwards = StaticSoundData {
            slice: Some((4, 2)),
            ..full
        };
        assert!(matches!(
            from_static_sound(&backwards),
            Err(AudioError::Empty { .. })
        ));
        assert_eq!(pcm.samples, vec![0.2, 0.3]);
        assert!(matches!(
            from_static_sound(&sound(vec![], 16_000)),
            Err(AudioError::Empty { .. })
        ));
        assert!(matches!(
            from_static_sound(&sound(vec![Frame::ZERO], 0)),
            Err(AudioError::UnsupportedSampleRate(0))
        ));
    }

    #[test]
    fn garbage_bytes_are_an_error() {
        assert!(matches!(
            decode_bytes(b"definitely not audio"),
            Err(AudioError::Decode { .. })
        ));
        assert!(matches!(decode_bytes(&[]), Err(AudioError::Decode { .. })));
    }
}
