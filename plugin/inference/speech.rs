//! Speech → expression coefficients with the trained pair `audio_encoder` + `motion_generator`
//! (card: `assets/models/speech_to_motion.md`; the Python reference is `tools/speech/model.py`).
//!
//! The front end is [`LogMel`] (the FFT twin of `log_mel.onnx`); the encoder reads its rows. [`SpeechToMotion`]
//! runs the pair incrementally: push 16 kHz samples as they come, take the frames whose audio has arrived. Because
//! every layer is "valid" and the encoder's running level statistics look back a fixed 150 rows (1.5 s), encoding
//! a chunk with that much history gives the same frames as encoding the whole clip at once, so clips, live streams
//! and hours-long files all go through this one type with bounded memory.

use super::{InferenceError, LogMel, ModelRegistry};
use crate::contract::models::{AUDIO_ENCODER, MOTION_GENERATOR};
use crate::contract::{
    ARKIT_WEIGHT_COUNT, FEATURE_WINDOW_RADIUS, FRAME_RATE_HZ, MEL_BANDS, MEL_HOP_SAMPLES,
    MEL_WINDOW_SAMPLES, SAMPLE_RATE_HZ,
};

/// Zero samples put before a clip so that features `2t … 2t+4` are the window of motion frame `t`.
pub const SPEECH_PAD_SAMPLES: usize = 1080;
/// 16 kHz samples per motion frame (640 at 25 fps).
pub const SAMPLES_PER_FRAME: usize = (SAMPLE_RATE_HZ / FRAME_RATE_HZ) as usize;
/// Audio a motion frame needs past its centre: its last feature ends 1400 samples after the centre (87.5 ms).
pub const SPEECH_LOOKAHEAD_SECS: f64 = 1400.0 / SAMPLE_RATE_HZ as f64;

/// Log-mel rows per motion frame (4 at 100 Hz rows and 25 fps).
const ROWS_PER_FRAME: usize = SAMPLES_PER_FRAME / MEL_HOP_SAMPLES;
/// Rows of history the encoder's running maximum/minimum need before the first row of a chunk: its 150-row
/// window, rounded up to whole frames so that chunks start on a frame boundary.
const HISTORY_ROWS: usize = 152;
/// Zeros after the end of a clip so that its last frame's rows exist: the input is at least `640 T + 2160`
/// padded samples.
const SPEECH_TAIL_SAMPLES: usize = 2160;
/// Rows frame `t`'s window needs: rows `4t ..< 4t + FRAME_ROWS_END` (features `2t … 2t+4`, each reading 8 rows).
const FRAME_ROWS_END: usize = 16;

/// Motion frames for a clip of `samples` 16 kHz samples: frame `t` covers samples `[640 t, 640 t + 640)`.
pub fn speech_frame_count(samples: usize) -> usize {
    samples.div_ceil(SAMPLES_PER_FRAME)
}

/// ARKit weights (0..1) at 25 fps for a whole clip of 16 kHz mono samples, one row per frame, from one encoder
/// run over the whole clip (the reference that chunked and streamed runs are tested against).
pub fn speech_to_weights(
    registry: &ModelRegistry,
    samples: &[f32],
) -> Result<Vec<[f32; ARKIT_WEIGHT_COUNT]>, InferenceError> {
    let mut speech = SpeechToMotion::new();
    speech.push(samples);
    speech.finish();
    speech.take_frames(registry, usize::MAX)
}

/// The speech models run incrementally over 16 kHz mono audio, with bounded memory.
///
/// [`push`](Self::push) samples as they arrive (NaN/infinite samples count as 0, values are clipped to ±1),
/// [`finish`](Self::finish) at the end, and [`take_frames`](Self::take_frames) whenever you want the frames whose
/// audio is complete: frame `t` can be generated once the clip's samples up to `640 t + 1720` are in (67.5 ms after
/// the frame ends, [`SPEECH_LOOKAHEAD_SECS`] after its centre), or after `finish`. The frames are the same, within
/// float rounding, however the audio was cut into pushes and however many frames each call takes.
///
/// Memory: the samples of the last log-mel window, and log-mel rows back to 1.5 s before the next frame.
pub struct SpeechToMotion {
    log_mel: LogMel,
    /// Padded samples from `samples_start` on (the first sample of the next log-mel row's window).
    samples: Vec<f32>,
    samples_start: usize,
    /// Log-mel rows from `rows_start` on.
    rows: Vec<[f32; MEL_BANDS]>,
    rows_start: usize,
    clip_samples: u64,
    next_frame: usize,
    finished: bool,
}

impl Default for SpeechToMotion {
    fn default() -> Self {
        Self::new()
    }
}

impl SpeechToMotion {
    /// A new clip or stream, starting at frame 0.
    pub fn new() -> Self {
        Self {
            log_mel: LogMel::new(),
            samples: vec![0.0; SPEECH_PAD_SAMPLES],
            samples_start: 0,
            rows: Vec::new(),
            rows_start: 0,
            clip_samples: 0,
            next_frame: 0,
            finished: false,
        }
    }

    /// Appends 16 kHz mono samples. Ignored after [`finish`](Self::finish).
    pub fn push(&mut self, samples: &[f32]) {
        if self.finished {
            return;
        }
        self.samples.extend(samples.iter().map(|&s| {
            if s.is_finite() {
                s.clamp(-1.0, 1.0)
            } else {
                0.0
            }
        }));
        self.clip_samples += samples.len() as u64;
        self.analyse();
    }

    /// Ends the clip: the last frames become ready (the audio after the clip counts as silence).
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let frames = self.total_frames().unwrap_or(0);
        let needed = SAMPLES_PER_FRAME * frames + SPEECH_TAIL_SAMPLES;
        let have = self.samples_start + self.samples.len();
        self.samples
            .resize(self.samples.len() + needed.saturating_sub(have), 0.0);
        self.analyse();
    }

    /// Whether [`finish`](Self::finish) was called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Samples pushed so far (16 kHz).
    pub fn samples_pushed(&self) -> u64 {
        self.clip_samples
    }

    /// Frames taken so far; the next call to [`take_frames`](Self::take_frames) starts at this frame.
    pub fn frames_taken(&self) -> usize {
        self.next_frame
    }

    /// The clip's frame count once finished.
    pub fn total_frames(&self) -> Option<usize> {
        self.finished
            .then(|| speech_frame_count(self.clip_samples as usize))
    }

    /// Frames whose audio is complete and that have not been taken yet.
    pub fn ready_frames(&self) -> usize {
        let rows = self.rows_start + self.rows.len();
        let computable = (rows + ROWS_PER_FRAME).saturating_sub(FRAME_ROWS_END) / ROWS_PER_FRAME;
        let limit = self
            .total_frames()
            .map_or(computable, |t| computable.min(t));
        limit.saturating_sub(self.next_frame)
    }

    /// Log-mel rows and samples held in memory (for tests of bounded memory).
    pub fn held(&self) -> (usize, usize) {
        (self.rows.len(), self.samples.len())
    }

    /// Generates up to `max_frames` of the ready frames (all of them with `usize::MAX`), one encoder and one
    /// generator run, and frees what later frames no longer need. Returns the frames' 52 ARKit weights in 0..1.
    pub fn take_frames(
        &mut self,
        registry: &ModelRegistry,
        max_frames: usize,
    ) -> Result<Vec<[f32; ARKIT_WEIGHT_COUNT]>, InferenceError> {
        let count = self.ready_frames().min(max_frames);
        if count == 0 {
            return Ok(Vec::new());
        }
        let (first, end) = (self.next_frame, self.next_frame + count);
        let row_from = (ROWS_PER_FRAME * first).saturating_sub(HISTORY_ROWS);
        let row_to = ROWS_PER_FRAME * (end - 1) + FRAME_ROWS_END;
        let local = &self.rows[row_from - self.rows_start..row_to - self.rows_start];
        let skip = first - row_from / ROWS_PER_FRAME;
        let frames = generate(registry, local.as_flattened(), local.len(), skip)?;
        debug_assert_eq!(frames.len(), count);
        self.next_frame = end;
        let keep_from = (ROWS_PER_FRAME * end).saturating_sub(HISTORY_ROWS);
        self.rows.drain(..keep_from.saturating_sub(self.rows_start));
        self.rows_start = self.rows_start.max(keep_from);
        Ok(frames)
    }

    /// Turns every complete log-mel window of the held samples into a row and drops samples no row needs.
    fn analyse(&mut self) {
        let new_rows = self.log_mel.frames(&self.samples);
        let used = new_rows.len() * MEL_HOP_SAMPLES;
        self.samples.drain(..used);
        self.samples_start += used;
        self.rows.extend_from_slice(&new_rows);
        debug_assert!(self.samples.len() < MEL_WINDOW_SAMPLES);
    }
}

/// Runs the encoder over `row_count` log-mel rows and the generator over frames `skip ..` of them, where local
/// frame `f` has the window of features `2f … 2f+4`.
fn generate(
    registry: &ModelRegistry,
    rows: &[f32],
    row_count: usize,
    skip: usize,
) -> Result<Vec<[f32; ARKIT_WEIGHT_COUNT]>, InferenceError> {
    let (features, shape) = registry.run_f32(AUDIO_ENCODER, rows, &[1, row_count, MEL_BANDS])?;
    let run_error = |model: &str, reason: String| InferenceError::Run {
        model: model.to_string(),
        reason,
    };
    let [_, available, channels] = shape[..] else {
        return Err(run_error(
            AUDIO_ENCODER,
            format!("features have shape {shape:?}, expected [1, T, F]"),
        ));
    };
    let window = 2 * FEATURE_WINDOW_RADIUS + 1;
    let expected = (row_count / 2).saturating_sub(3);
    if available != expected || available < window + 2 * skip {
        return Err(run_error(
            AUDIO_ENCODER,
            format!("{available} feature frames for {row_count} log-mel rows, expected {expected}"),
        ));
    }
    let frames = (available - window) / 2 + 1 - skip;
    let mut windows = Vec::with_capacity(frames * window * channels);
    for f in skip..skip + frames {
        windows.extend_from_slice(&features[2 * f * channels..(2 * f + window) * channels]);
    }
    let (weights, shape) =
        registry.run_f32(MOTION_GENERATOR, &windows, &[frames, window, channels])?;
    if shape != [frames, ARKIT_WEIGHT_COUNT] {
        return Err(run_error(
            MOTION_GENERATOR,
            format!("weights have shape {shape:?}, expected [{frames}, {ARKIT_WEIGHT_COUNT}]"),
        ));
    }
    Ok(weights
        .chunks_exact(ARKIT_WEIGHT_COUNT)
        .map(|row| {
            std::array::from_fn(|i| {
                let value = row[i];
                if value.is_finite() {
                    value.clamp(0.0, 1.0)
                } else {
                    0.0
                }
            })
        })
        .collect())
}
