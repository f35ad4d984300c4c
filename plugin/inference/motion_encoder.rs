//! The motion encoder E_m: windows of [`MOTION_WINDOW`] final coefficient frames (25 fps, centred on the frame to
//! encode) → motion codes, the weights of a head asset's motion bases. One model run encodes a batch of windows.

use super::{InferenceError, ModelRegistry};
use crate::contract::models::MOTION_ENCODER;
use crate::contract::{ARKIT_WEIGHT_COUNT, MOTION_WINDOW};
use crate::motion::FaceCoefficients;

/// Values per frame in the encoder's window: the 52 ARKit weights, head rotation (pitch, yaw, roll) and head
/// translation (x, y, z).
pub const MOTION_FRAME_VALUES: usize = ARKIT_WEIGHT_COUNT + 6;

/// One window as the encoder reads it: [`MOTION_WINDOW`] frames of [`MOTION_FRAME_VALUES`], oldest first.
pub type MotionWindow = [[f32; MOTION_FRAME_VALUES]; MOTION_WINDOW];

/// A frame's row of the window. Non-finite values become 0 (the model never sees NaN).
pub fn motion_frame(face: &FaceCoefficients) -> [f32; MOTION_FRAME_VALUES] {
    let mut row = [0.0; MOTION_FRAME_VALUES];
    row[..ARKIT_WEIGHT_COUNT].copy_from_slice(&face.weights);
    row[ARKIT_WEIGHT_COUNT..ARKIT_WEIGHT_COUNT + 3].copy_from_slice(&face.head_rotation.to_array());
    row[ARKIT_WEIGHT_COUNT + 3..].copy_from_slice(&face.head_translation.to_array());
    row.map(|v| if v.is_finite() { v } else { 0.0 })
}

/// The window of `faces` (oldest first).
pub fn motion_window(faces: &[FaceCoefficients; MOTION_WINDOW]) -> MotionWindow {
    faces.each_ref().map(motion_frame)
}

/// Encodes `windows` in one model run; returns one motion code per window, each value finite and in 0..1 (a model
/// output that is not finite becomes 0). An empty batch runs nothing.
pub fn encode_motion(
    registry: &ModelRegistry,
    windows: &[MotionWindow],
) -> Result<Vec<Vec<f32>>, InferenceError> {
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    let input: Vec<f32> = windows.iter().flatten().flatten().copied().collect();
    let (codes, shape) = registry.run_f32(
        MOTION_ENCODER,
        &input,
        &[windows.len(), MOTION_WINDOW, MOTION_FRAME_VALUES],
    )?;
    let size = match shape[..] {
        [batch, size] if batch == windows.len() && size > 0 => size,
        _ => {
            return Err(InferenceError::Run {
                model: MOTION_ENCODER.to_owned(),
                reason: format!(
                    "output shape {shape:?} is not [{}, code size]",
                    windows.len()
                ),
            });
        }
    };
    Ok(codes
        .chunks_exact(size)
        .map(|code| {
            code.iter()
                .map(|&v| {
                    if v.is_finite() {
                        v.clamp(0.0, 1.0)
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect())
}
