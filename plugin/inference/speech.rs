//! Speech → expression coefficients with the trained pair `audio_encoder` + `motion_generator`
//! (card: `assets/models/speech_to_motion.md`; the Python reference is `tools/speech/model.py`).

use super::{InferenceError, ModelRegistry};
use crate::contract::models::{AUDIO_ENCODER, MOTION_GENERATOR};
use crate::contract::{ARKIT_WEIGHT_COUNT, FEATURE_WINDOW_RADIUS, FRAME_RATE_HZ, SAMPLE_RATE_HZ};

/// Zero samples put before a clip so that features `2t … 2t+4` are the window of motion frame `t`.
pub const SPEECH_PAD_SAMPLES: usize = 1080;
/// 16 kHz samples per motion frame (640 at 25 fps).
pub const SAMPLES_PER_FRAME: usize = (SAMPLE_RATE_HZ / FRAME_RATE_HZ) as usize;
/// Extra samples the encoder needs past the last frame (its look-ahead plus the padding): input length is
/// `SAMPLES_PER_FRAME · frames + SPEECH_TAIL_SAMPLES`.
const SPEECH_TAIL_SAMPLES: usize = 2160;

/// Motion frames for a clip of `samples` 16 kHz samples: frame `t` covers samples `[640 t, 640 t + 640)`.
pub fn speech_frame_count(samples: usize) -> usize {
    samples.div_ceil(SAMPLES_PER_FRAME)
}

/// ARKit weights (0..1) at 25 fps for a whole clip of 16 kHz mono samples, one row per frame.
pub fn speech_to_weights(
    registry: &ModelRegistry,
    samples: &[f32],
) -> Result<Vec<[f32; ARKIT_WEIGHT_COUNT]>, InferenceError> {
    let frames = speech_frame_count(samples.len());
    if frames == 0 {
        return Ok(Vec::new());
    }
    let mut input = vec![
        0.0f32;
        (SAMPLES_PER_FRAME * frames + SPEECH_TAIL_SAMPLES)
            .max(SPEECH_PAD_SAMPLES + samples.len())
    ];
    input[SPEECH_PAD_SAMPLES..SPEECH_PAD_SAMPLES + samples.len()].copy_from_slice(samples);
    let (features, shape) = registry.run_f32(AUDIO_ENCODER, &input, &[1, input.len()])?;
    let run_error = |reason: String| InferenceError::Run {
        model: AUDIO_ENCODER.to_string(),
        reason,
    };
    let [_, available, channels] = shape[..] else {
        return Err(run_error(format!(
            "features have shape {shape:?}, expected [1, T, F]"
        )));
    };
    let window = 2 * FEATURE_WINDOW_RADIUS + 1;
    if available < 2 * (frames - 1) + window {
        return Err(run_error(format!(
            "{available} feature frames for {frames} motion frames"
        )));
    }
    let mut windows = Vec::with_capacity(frames * window * channels);
    for t in 0..frames {
        windows.extend_from_slice(&features[2 * t * channels..(2 * t + window) * channels]);
    }
    let (weights, shape) =
        registry.run_f32(MOTION_GENERATOR, &windows, &[frames, window, channels])?;
    if shape != [frames, ARKIT_WEIGHT_COUNT] {
        return Err(InferenceError::Run {
            model: MOTION_GENERATOR.to_string(),
            reason: format!(
                "weights have shape {shape:?}, expected [{frames}, {ARKIT_WEIGHT_COUNT}]"
            ),
        });
    }
    Ok(weights
        .chunks_exact(ARKIT_WEIGHT_COUNT)
        .map(|row| {
            let mut frame = [0.0; ARKIT_WEIGHT_COUNT];
            for (out, value) in frame.iter_mut().zip(row) {
                *out = if value.is_finite() {
                    value.clamp(0.0, 1.0)
                } else {
                    0.0
                };
            }
            frame
        })
        .collect())
}
