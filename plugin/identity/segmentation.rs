//! Person vs background: MediaPipe's selfie segmentation (general model, 256×256), converted to ONNX
//! (`tools/convert_face_models.py`, card `assets/models/face_models.md`) and run through the [`ModelRegistry`].
//!
//! The image is letterboxed into the model's square input (its longer side fills the input, centred, black around,
//! values 0..1, downscaled with a triangle filter so that thin hair is averaged rather than aliased); the 256×256
//! probability map is then sampled bilinearly back at every image pixel's centre, so the mask lines up with the
//! portrait whatever its aspect ratio. Alpha is composited onto black first, as for the face models.

use image::{DynamicImage, RgbImage, imageops::FilterType};
use ort::value::TensorRef;

use super::IdentityError;
use super::landmarks::check_image_size;
use crate::contract::models::SELFIE_SEGMENTATION;
use crate::inference::{InferenceError, ModelRegistry};

/// Side of the segmentation model's square input and output, in pixels.
pub const SEGMENTATION_INPUT_SIDE: u32 = 256;

/// Probability (0..1) that each pixel of `image` shows the person (hair, head, body), row-major, one value per
/// pixel of `image` (`width × height` values).
///
/// Errors: [`IdentityError::ImageTooSmall`] below [`MIN_IMAGE_SIDE`](super::landmarks::MIN_IMAGE_SIDE) pixels a side, [`IdentityError::Model`] when the
/// model is missing or fails.
pub fn person_mask(
    registry: &ModelRegistry,
    image: &DynamicImage,
) -> Result<Vec<f32>, IdentityError> {
    check_image_size(image)?;
    let (width, height) = (image.width(), image.height());
    let side = SEGMENTATION_INPUT_SIDE;
    let longest = width.max(height) as f32;
    // The scaled image's size inside the letterbox, and where it sits.
    let scaled_width = ((width as f32 * side as f32 / longest).round() as u32).clamp(1, side);
    let scaled_height = ((height as f32 * side as f32 / longest).round() as u32).clamp(1, side);
    let offset_x = (side - scaled_width) / 2;
    let offset_y = (side - scaled_height) / 2;
    let scaled = image::imageops::resize(
        &opaque_rgb(image),
        scaled_width,
        scaled_height,
        FilterType::Triangle,
    );
    let mut input = vec![0.0f32; (side * side * 3) as usize];
    for (x, y, pixel) in scaled.enumerate_pixels() {
        let i = (((y + offset_y) * side + x + offset_x) * 3) as usize;
        for (slot, value) in input[i..i + 3].iter_mut().zip(pixel.0) {
            *slot = f32::from(value) / 255.0;
        }
    }
    let mask = run(registry, &input)?;

    // Image pixel centre → continuous letterbox position → bilinear lookup between mask pixel centres.
    let (fx, fy) = (
        scaled_width as f32 / width as f32,
        scaled_height as f32 / height as f32,
    );
    let n = side as usize;
    let at = |col: usize, row: usize| mask[row * n + col];
    let mut out = Vec::with_capacity(width as usize * height as usize);
    for y in 0..height {
        let my = ((y as f32 + 0.5) * fy + offset_y as f32 - 0.5).clamp(0.0, (n - 1) as f32);
        let (y0, ty) = (my.floor() as usize, my.fract());
        let y1 = (y0 + 1).min(n - 1);
        for x in 0..width {
            let mx = ((x as f32 + 0.5) * fx + offset_x as f32 - 0.5).clamp(0.0, (n - 1) as f32);
            let (x0, tx) = (mx.floor() as usize, mx.fract());
            let x1 = (x0 + 1).min(n - 1);
            let top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * tx;
            let bottom = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * tx;
            out.push((top + (bottom - top) * ty).clamp(0.0, 1.0));
        }
    }
    Ok(out)
}

/// The image as RGB8, transparent pixels composited onto black (like the face models' input).
fn opaque_rgb(image: &DynamicImage) -> RgbImage {
    if image.color().has_alpha() {
        let rgba = image.to_rgba8();
        RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
            let [r, g, b, a] = rgba.get_pixel(x, y).0;
            let over_black = |c: u8| ((u32::from(c) * u32::from(a) + 127) / 255) as u8;
            image::Rgb([over_black(r), over_black(g), over_black(b)])
        })
    } else {
        image.to_rgb8()
    }
}

/// Runs the model on one letterboxed `[1, 256, 256, 3]` input and returns its `[1, 256, 256, 1]` mask, flattened.
fn run(registry: &ModelRegistry, input: &[f32]) -> Result<Vec<f32>, IdentityError> {
    let model = SELFIE_SEGMENTATION;
    let run_error = |reason: String| {
        IdentityError::Model(InferenceError::Run {
            model: model.to_owned(),
            reason,
        })
    };
    let (input_name, output_name) = match registry
        .spec(model)
        .map(|spec| (spec.inputs.as_slice(), spec.outputs.as_slice()))
    {
        Some(([input], [output])) => (input.name.clone(), output.name.clone()),
        Some((inputs, outputs)) => {
            return Err(run_error(format!(
                "expected one input and one output in manifest.ron, found {} and {}",
                inputs.len(),
                outputs.len()
            )));
        }
        None => {
            return Err(IdentityError::Model(InferenceError::UnknownModel {
                name: model.to_owned(),
                known: registry.names().collect::<Vec<_>>().join(", "),
            }));
        }
    };
    let side = SEGMENTATION_INPUT_SIDE as usize;
    let shape = [1, side, side, 3];
    let tensor = TensorRef::from_array_view((shape.as_slice(), input))
        .map_err(|error| run_error(error.to_string()))?;
    let mut session = registry.session(model)?;
    let results = session
        .run(ort::inputs![input_name.as_str() => tensor])
        .map_err(|error| run_error(error.to_string()))?;
    let value = results
        .get(output_name.as_str())
        .ok_or_else(|| run_error(format!("output '{output_name}' missing from the results")))?;
    let (_, data) = value
        .try_extract_tensor::<f32>()
        .map_err(|error| run_error(format!("output '{output_name}': {error}")))?;
    if data.len() != side * side {
        return Err(run_error(format!(
            "output '{output_name}' has {} values, expected {}",
            data.len(),
            side * side
        )));
    }
    Ok(data.to_vec())
}
