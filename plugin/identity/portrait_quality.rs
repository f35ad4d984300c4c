//! How well the whole photo talks ([`HeadDisplay::Portrait`](crate::HeadDisplay::Portrait)): the measures of
//! `examples/portrait_quality.rs` and `tests/portrait.rs`, on renders of the CPU reference renderer.
//!
//! - [`render_portrait`]: one frame of the portrait display (the head at the photo's camera, turned about its
//!   neck, over the body and background plates), as the plugin draws it.
//! - [`head_coverage`]: how much of each pixel the head covers (the same frame over transparent plates).
//! - [`seam_gradient_ratio`]: the mean gradient magnitude of a frame within a few pixels of the head's boundary,
//!   over the photo's at the same pixels: 1 where the seam adds no edge and blurs nothing.
//! - [`person_holes`]: pixels inside the person's silhouette (head and body plate) that show the background plate.

use std::path::Path;

use bevy::math::{EulerRot, Quat, URect, UVec2, Vec2, Vec3};

use image::{DynamicImage, RgbImage};

use super::layers::NECK_LENGTH;
use super::quality::{EMPTY_ALPHA, grow, luma, outside_silhouette};
use super::{BuiltHead, ExpressionBase, HeadAsset, PortraitLayers, head_from_portrait};
use crate::inference::ModelRegistry;
use crate::render::{
    MarchUniform, portrait_view, posed_about_pivot, premultiplied_to_srgba8,
    render_portrait_reference,
};

/// A frame of the portrait display: premultiplied linear RGBA, `width × height`.
#[derive(Clone, Debug, PartialEq)]
pub struct PortraitFrameRender {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Premultiplied linear RGBA, row-major.
    pub pixels: Vec<f32>,
}

impl PortraitFrameRender {
    /// The frame in 8-bit sRGB (over black where it is transparent).
    pub fn to_rgb(&self) -> RgbImage {
        let rgba = premultiplied_to_srgba8(&self.pixels);
        RgbImage::from_fn(self.width, self.height, |x, y| {
            let i = ((y * self.width + x) * 4) as usize;
            image::Rgb([rgba[i], rgba[i + 1], rgba[i + 2]])
        })
    }
}

/// A head's pose from degrees (yaw about +Y, pitch, roll; no translation), as the plugin reads it from
/// `FaceCoefficients::head_rotation`.
pub fn head_pose(yaw_deg: f32, pitch_deg: f32, roll_deg: f32) -> (Quat, Vec3) {
    (
        Quat::from_euler(
            EulerRot::YXZ,
            yaw_deg.to_radians(),
            pitch_deg.to_radians(),
            roll_deg.to_radians(),
        ),
        Vec3::ZERO,
    )
}

/// The output size of a portrait display of `crop` with `long_side` pixels along its longer side.
pub fn portrait_size(crop: URect, long_side: u32) -> UVec2 {
    let size = crop.size().max(UVec2::ONE).as_vec2();
    (size / size.max_element() * long_side as f32)
        .round()
        .as_uvec2()
        .max(UVec2::ONE)
}

/// Renders the portrait display of `crop` (plate pixels) with the motion `code` over the expression `base` and
/// the head's `pose` (rotation, and translation in metres, about the neck's pivot), `long_side` pixels long,
/// `steps` samples per ray, as the plugin draws it.
pub fn render_portrait(
    asset: &HeadAsset,
    layers: &PortraitLayers,
    (code, base): (&[f32], ExpressionBase),
    pose: (Quat, Vec3),
    crop: URect,
    (long_side, steps): (u32, u32),
) -> PortraitFrameRender {
    let march = head_march(asset, layers, base, pose, crop, (long_side, steps))
        .over_portrait(layers, crop, pose);
    let weights = asset.basis_weights(code, base);
    PortraitFrameRender {
        width: march.width(),
        height: march.height(),
        pixels: render_portrait_reference(asset, layers, &weights, &march),
    }
}

/// The march of the head alone, seen as [`render_portrait`] sees it (the photo's camera, the crop's framing, the
/// head at `pose`) without the photo around it: [`MarchUniform::over_portrait`] makes it the whole photo's.
pub fn head_march(
    asset: &HeadAsset,
    layers: &PortraitLayers,
    base: ExpressionBase,
    pose: (Quat, Vec3),
    crop: URect,
    (long_side, steps): (u32, u32),
) -> MarchUniform {
    let size = portrait_size(crop, long_side);
    let (rotation, translation) = posed_about_pivot(pose.0, pose.1, layers.neck.pivot);
    let camera = portrait_view(layers, crop).posed(rotation, translation);
    MarchUniform::new(asset, &camera, size.x, size.y, steps).with_mouth(asset.mouth_for(base))
}

/// [`render_portrait`] at rest: the photo's own face ([`ExpressionBase::Photo`]), no speech, the head's rest pose.
pub fn render_at_rest(
    asset: &HeadAsset,
    layers: &PortraitLayers,
    crop: URect,
    sizes: (u32, u32),
) -> PortraitFrameRender {
    render_portrait(
        asset,
        layers,
        (&[], ExpressionBase::Photo),
        head_pose(0.0, 0.0, 0.0),
        crop,
        sizes,
    )
}

/// `layers` with a transparent background plate, and with `body` false a transparent body plate too.
fn transparent(layers: &PortraitLayers, body: bool) -> PortraitLayers {
    let empty: std::sync::Arc<[u32]> = vec![0u32; layers.pixels()].into();
    let mut bare = layers.clone();
    if !body {
        bare.body = empty.clone();
    }
    bare.background = empty;
    bare
}

/// A portrait file opened and made into a head, with its name (the file's stem), for the check examples
/// (`portrait_quality`, `emotion_check`); the error names the file.
pub fn open_portrait(
    registry: &ModelRegistry,
    path: &Path,
) -> Result<(String, DynamicImage, BuiltHead), String> {
    let portrait = image::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let built =
        head_from_portrait(registry, &portrait).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path
        .file_stem()
        .map_or("portrait".into(), |s| s.to_string_lossy().into_owned());
    Ok((name, portrait, built))
}

/// The alpha of a frame, one value per pixel.
fn alpha(frame: &PortraitFrameRender) -> Vec<f32> {
    frame.pixels.chunks_exact(4).map(|p| p[3]).collect()
}

/// How much of each pixel of [`render_portrait`]'s frame over the photo's own face the head covers (0..1): the
/// same frame over transparent body and background plates.
pub fn head_coverage(
    asset: &HeadAsset,
    layers: &PortraitLayers,
    code: &[f32],
    pose: (Quat, Vec3),
    crop: URect,
    sizes: (u32, u32),
) -> Vec<f32> {
    alpha(&render_portrait(
        asset,
        &transparent(layers, false),
        (code, ExpressionBase::Photo),
        pose,
        crop,
        sizes,
    ))
}

/// Pixels within `reach` pixels (square neighbourhood) of the head's boundary: where `coverage` crosses 0.5
/// between neighbours.
pub fn seam_band(coverage: &[f32], width: usize, height: usize, reach: usize) -> Vec<bool> {
    let covered = |i: usize| coverage[i] >= 0.5;
    let boundary: Vec<bool> = (0..width * height)
        .map(|i| {
            let (x, y) = (i % width, i / width);
            (x + 1 < width && covered(i) != covered(i + 1))
                || (y + 1 < height && covered(i) != covered(i + width))
        })
        .collect();
    grow(&boundary, width, height, reach)
}

/// Mean gradient magnitude (central differences of luma, 0..255) over the pixels of `region`; `None` for an
/// empty region.
pub fn mean_gradient(image: &RgbImage, region: &[bool]) -> Option<f64> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let l = luma(image);
    let (mut sum, mut count) = (0.0, 0usize);
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let i = y * w + x;
            if !region[i] {
                continue;
            }
            let gx = (l[i + 1] - l[i - 1]) * 0.5;
            let gy = (l[i + w] - l[i - w]) * 0.5;
            sum += (gx * gx + gy * gy).sqrt();
            count += 1;
        }
    }
    (count > 0).then(|| sum / count as f64)
}

/// The frame's mean gradient in `band` over the photo's at the same pixels (same size); `None` when the band is
/// empty or the photo has no gradient there.
pub fn seam_gradient_ratio(frame: &RgbImage, photo: &RgbImage, band: &[bool]) -> Option<f64> {
    let photo_gradient = mean_gradient(photo, band)?;
    (photo_gradient > 1e-9).then_some(mean_gradient(frame, band)? / photo_gradient)
}

/// Pixels inside the person's silhouette (head over body plate, the background plate transparent) that are
/// empty: where the background shows through the person. One flag per output pixel.
pub fn person_holes(
    asset: &HeadAsset,
    layers: &PortraitLayers,
    code: &[f32],
    pose: (Quat, Vec3),
    crop: URect,
    sizes: (u32, u32),
) -> Vec<bool> {
    let frame = render_portrait(
        asset,
        &transparent(layers, true),
        (code, ExpressionBase::Photo),
        pose,
        crop,
        sizes,
    );
    let alpha = alpha(&frame);
    let outside = outside_silhouette(&alpha, frame.width as usize, frame.height as usize);
    alpha
        .iter()
        .zip(outside)
        .map(|(&a, outside)| a < EMPTY_ALPHA && !outside)
        .collect()
}

/// The head's poses the holes are checked at, degrees (yaw, pitch, roll): ±20° yaw, ±10° pitch, ±10° roll.
pub const HOLE_POSES_DEG: [(f32, f32, f32); 6] = [
    (20.0, 0.0, 0.0),
    (-20.0, 0.0, 0.0),
    (0.0, 10.0, 0.0),
    (0.0, -10.0, 0.0),
    (0.0, 0.0, 10.0),
    (0.0, 0.0, -10.0),
];

/// For each of `poses` (with the motion `code`), the pixels where the background shows through the person that
/// it does not show through at rest (where the person mask alone leaves gaps): the holes the head's motion
/// opens, one flag per output pixel. The frame at rest is rendered once for all poses.
pub fn holes_opened(
    asset: &HeadAsset,
    layers: &PortraitLayers,
    (code, poses): (&[f32], &[(Quat, Vec3)]),
    crop: URect,
    sizes: (u32, u32),
) -> Vec<Vec<bool>> {
    let rest_code = vec![0.0; asset.basis_count];
    let at_rest = person_holes(
        asset,
        layers,
        &rest_code,
        head_pose(0.0, 0.0, 0.0),
        crop,
        sizes,
    );
    poses
        .iter()
        .map(|&pose| {
            person_holes(asset, layers, code, pose, crop, sizes)
                .iter()
                .zip(&at_rest)
                .map(|(posed, rest)| *posed && !rest)
                .collect()
        })
        .collect()
}

/// The output pixels of a `size` frame of `crop` where the head and neck may move: the head's matte at rest grown
/// by a fifth of the face's height (forehead to chin), and the neck's band (twice its half width either side of
/// its middle, down to its ring).
pub fn head_and_neck(layers: &PortraitLayers, crop: URect, size: UVec2) -> Vec<bool> {
    let (w, h) = (size.x as usize, size.y as usize);
    let per_pixel = crop.size().as_vec2() / size.max(UVec2::ONE).as_vec2();
    let neck = layers.neck;
    let grow = 0.2 * (neck.ring_y - neck.jaw_y) / NECK_LENGTH;
    let matte = |q: Vec2| {
        let (px, py) = (q.x.floor() as i64, q.y.floor() as i64);
        (0..layers.width as i64).contains(&px)
            && (0..layers.height as i64).contains(&py)
            && layers.face[(py * layers.width as i64 + px) as usize] >> 24 > 0
    };
    (0..w * h)
        .map(|i| {
            let q =
                crop.min.as_vec2() + (Vec2::new((i % w) as f32, (i / w) as f32) + 0.5) * per_pixel;
            let in_neck = (q.x - neck.centre_x).abs() < 2.0 * neck.half_width && q.y < neck.ring_y;
            in_neck
                || matte(q)
                || (0..16).any(|k| {
                    let angle = k as f32 / 16.0 * std::f32::consts::TAU;
                    matte(q + grow * Vec2::new(angle.cos(), angle.sin()))
                })
        })
        .collect()
}
