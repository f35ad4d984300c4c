//! How good a head built from a portrait is: the measurements of `examples/head_quality.rs` and
//! `tests/quality.rs`.
//!
//! - Likeness from the front ([`frontal_fidelity`]): the head rendered with the camera that reproduces the
//!   portrait's framing ([`portrait_camera`]), one rendered pixel per portrait pixel, compared with the portrait
//!   inside the face region (the convex hull of the face landmarks) in 8-bit sRGB: [`psnr`] over R, G and B, and
//!   [`ssim_in_region`] on luma.
//! - Does it still look like a face from other angles ([`landmark_agreement`]): the plugin's own face detector and
//!   landmark model run on a render, and their landmarks are compared with the head's own landmarks projected
//!   through the render's camera ([`project`]), in % of the inter-ocular distance; landmarks whose point on the
//!   head's surface ([`front_surface_point`]) the head hides ([`transmittance_between`]) can be left out.
//! - Is it closed ([`find_holes`]): empty pixels enclosed by the head's silhouette, and see-through pixels inside it.
//! - How closely its shape follows the landmarks' depths ([`surface_depth_offsets`]).
//!
//! Images are 8-bit sRGB unless said otherwise; renders are the premultiplied linear RGBA of
//! [`render_reference`].

use bevy::math::{UVec2, Vec2, Vec3};
use image::{DynamicImage, RgbImage};

use super::construct::PortraitFrame;
use super::landmarks::landmark_index as index;
use super::{FaceLandmarks, HeadAsset, IdentityError, find_face_landmarks};
use crate::inference::ModelRegistry;
use crate::render::{HeadCamera, MarchUniform, decode, premultiplied_to_srgba8, render_reference};

/// Side of SSIM's Gaussian window, pixels (Wang et al. 2004).
pub const SSIM_WINDOW: usize = 11;
/// Standard deviation of SSIM's Gaussian window, pixels.
pub const SSIM_SIGMA: f64 = 1.5;
/// SSIM's luminance constant for 8-bit data, (0.01 · 255)².
pub const SSIM_C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
/// SSIM's contrast constant for 8-bit data, (0.03 · 255)².
pub const SSIM_C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);
/// Rendered pixels with less alpha than this are empty: background, or a hole when the head surrounds them.
pub const EMPTY_ALPHA: f32 = 0.5;
/// Pixels inside the silhouette with less alpha than this (and at least [`EMPTY_ALPHA`]) are see-through.
pub const OPAQUE_ALPHA: f32 = 0.95;
/// Pixels within this many pixels (Chebyshev distance) of the background are the silhouette's rim, whose soft
/// edge is not counted as see-through.
pub const RIM_PIXELS: usize = 2;
/// The grey renders are composited onto before the face models see them (sRGB).
pub const NEUTRAL_BACKGROUND: [u8; 3] = [128, 128, 128];
/// Distance of the frontal camera from the head, metres: far enough to be nearly orthographic, like the
/// projection that put the portrait onto the head.
pub const FRONTAL_DISTANCE_M: f32 = 30.0;
/// A landmark counts as hidden when less than this fraction of light passes between it and the camera.
pub const VISIBLE_TRANSMITTANCE: f32 = 0.5;
/// The occlusion test stops this far in front of the surface point it tests, metres (so that the surface's own
/// soft layer does not hide it when seen at a grazing angle).
pub const VISIBILITY_MARGIN_M: f32 = 0.005;
/// Step of the occlusion test along a ray, metres.
pub const VISIBILITY_STEP_M: f32 = 0.001;

/// Rec. 601 luma of each pixel (0.299 R + 0.587 G + 0.114 B on the sRGB values, 0..255, row-major), the grey
/// image SSIM is usually computed on (MATLAB's `rgb2gray`, as in Wang et al.'s reference code).
pub fn luma(image: &RgbImage) -> Vec<f64> {
    image
        .pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect()
}

/// Peak signal-to-noise ratio of two 8-bit images over the R, G and B values of the pixels where `region` is
/// true (all pixels without a region): 10 · log10(255² / MSE), in dB. Infinite for identical pixels; `None` when
/// the sizes differ, the region has the wrong length, or it selects no pixel.
pub fn psnr(a: &RgbImage, b: &RgbImage, region: Option<&[bool]>) -> Option<f64> {
    if a.dimensions() != b.dimensions() {
        return None;
    }
    let pixels = a.pixels().len();
    if region.is_some_and(|region| region.len() != pixels) {
        return None;
    }
    let (mut squared, mut count) = (0.0f64, 0usize);
    for (i, (pa, pb)) in a.pixels().zip(b.pixels()).enumerate() {
        if region.is_some_and(|region| !region[i]) {
            continue;
        }
        for c in 0..3 {
            squared += (f64::from(pa[c]) - f64::from(pb[c])).powi(2);
        }
        count += 3;
    }
    (count > 0).then(|| 10.0 * (255.0f64.powi(2) / (squared / count as f64)).log10())
}

/// The normalised 1D Gaussian of SSIM's window.
fn ssim_kernel() -> [f64; SSIM_WINDOW] {
    let radius = (SSIM_WINDOW / 2) as f64;
    let mut kernel = std::array::from_fn(|i| {
        let x = i as f64 - radius;
        (-x * x / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp()
    });
    let sum: f64 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= sum);
    kernel
}

/// Separable convolution with SSIM's window; zero outside the image.
fn window_sum(values: &[f64], width: usize, height: usize) -> Vec<f64> {
    let kernel = ssim_kernel();
    let radius = SSIM_WINDOW / 2;
    let mut rows = vec![0.0; values.len()];
    for y in 0..height {
        for x in 0..width {
            let mut sum = 0.0;
            for (k, weight) in kernel.iter().enumerate() {
                let xx = x + k;
                if xx >= radius && xx - radius < width {
                    sum += weight * values[y * width + xx - radius];
                }
            }
            rows[y * width + x] = sum;
        }
    }
    let mut out = vec![0.0; values.len()];
    for y in 0..height {
        for x in 0..width {
            let mut sum = 0.0;
            for (k, weight) in kernel.iter().enumerate() {
                let yy = y + k;
                if yy >= radius && yy - radius < height {
                    sum += weight * rows[(yy - radius) * width + x];
                }
            }
            out[y * width + x] = sum;
        }
    }
    out
}

/// The SSIM map of two grey images with every window restricted to the pixels where `weight` is 1 (and
/// renormalised); 0 where a window holds no such pixel.
fn ssim_map(a: &[f64], b: &[f64], width: usize, height: usize, weight: &[f64]) -> Vec<f64> {
    let field = |f: &dyn Fn(usize) -> f64| {
        let values: Vec<f64> = (0..a.len()).map(|i| weight[i] * f(i)).collect();
        window_sum(&values, width, height)
    };
    let w = window_sum(weight, width, height);
    let sa = field(&|i| a[i]);
    let sb = field(&|i| b[i]);
    let saa = field(&|i| a[i] * a[i]);
    let sbb = field(&|i| b[i] * b[i]);
    let sab = field(&|i| a[i] * b[i]);
    (0..a.len())
        .map(|i| {
            if w[i] <= 1e-12 {
                return 0.0;
            }
            let (mean_a, mean_b) = (sa[i] / w[i], sb[i] / w[i]);
            // Population (not sample) variances and covariance, as in Wang et al.'s Gaussian-window SSIM.
            let var_a = saa[i] / w[i] - mean_a * mean_a;
            let var_b = sbb[i] / w[i] - mean_b * mean_b;
            let covariance = sab[i] / w[i] - mean_a * mean_b;
            ((2.0 * mean_a * mean_b + SSIM_C1) * (2.0 * covariance + SSIM_C2))
                / ((mean_a * mean_a + mean_b * mean_b + SSIM_C1) * (var_a + var_b + SSIM_C2))
        })
        .collect()
}

/// Mean structural similarity (Wang, Bovik, Sheikh and Simoncelli 2004) of two grey images of `width × height`
/// values (0..255, row-major): the SSIM map with an [`SSIM_WINDOW`]-wide Gaussian window of σ = [`SSIM_SIGMA`],
/// C1 = [`SSIM_C1`], C2 = [`SSIM_C2`] and population statistics, averaged over the pixels whose window lies wholly
/// inside the image (like Wang et al.'s reference code and scikit-image's `structural_similarity` with
/// `gaussian_weights=True, use_sample_covariance=False, data_range=255`). 1 for identical images. `None` when the
/// lengths do not match the size or the image is smaller than the window.
pub fn ssim(a: &[f64], b: &[f64], width: usize, height: usize) -> Option<f64> {
    if a.len() != width * height || b.len() != a.len() {
        return None;
    }
    if width < SSIM_WINDOW || height < SSIM_WINDOW {
        return None;
    }
    let map = ssim_map(a, b, width, height, &vec![1.0; a.len()]);
    let r = SSIM_WINDOW / 2;
    let (mut sum, mut count) = (0.0, 0usize);
    for y in r..height - r {
        for x in r..width - r {
            sum += map[y * width + x];
            count += 1;
        }
    }
    Some(sum / count as f64)
}

/// [`ssim`] inside a region: the mean of the SSIM map over the pixels where `region` is true, each window's
/// Gaussian weights restricted to the region's pixels and renormalised. Where the whole window lies in the region
/// this is the standard SSIM map; near the region's edge, pixels outside it (in a comparison with a render: the
/// background, or the neck the head does not have) do not count. `None` when the lengths do not match the size or
/// the region is empty.
pub fn ssim_in_region(
    a: &[f64],
    b: &[f64],
    width: usize,
    height: usize,
    region: &[bool],
) -> Option<f64> {
    let n = width * height;
    if a.len() != n || b.len() != n || region.len() != n {
        return None;
    }
    let weight: Vec<f64> = region.iter().map(|&r| if r { 1.0 } else { 0.0 }).collect();
    let map = ssim_map(a, b, width, height, &weight);
    let (sum, count) = map
        .iter()
        .zip(region)
        .filter(|(_, inside)| **inside)
        .fold((0.0, 0usize), |(s, c), (v, _)| (s + v, c + 1));
    (count > 0).then(|| sum / count as f64)
}

/// Where the head-space point `point` appears in a `width × height` image rendered from `camera` (the renderer's
/// pinhole model, as in [`MarchUniform::new`]): continuous image pixels, x right, y down, the centre of pixel
/// (i, j) at (i + 0.5, j + 0.5) — the face models' convention. `None` for points at or behind the camera.
pub fn project(camera: &HeadCamera, width: u32, height: u32, point: Vec3) -> Option<Vec2> {
    let axes = camera.axes();
    let d = point - camera.position;
    let depth = d.dot(axes.z_axis);
    if depth <= 1e-6 {
        return None;
    }
    let tan_half = (camera.fov_y * 0.5).tan();
    let aspect = width.max(1) as f32 / height.max(1) as f32;
    let x = d.dot(axes.x_axis) / depth / (tan_half * aspect);
    let y = d.dot(axes.y_axis) / depth / tan_half;
    Some(Vec2::new(
        (x + 1.0) * 0.5 * width as f32,
        (1.0 - y) * 0.5 * height as f32,
    ))
}

/// The nearly orthographic camera whose `size` image shows the head exactly where the portrait's pixels
/// `min .. min + size` are: rendered pixel (i, j) falls on portrait pixel (min.x + i, min.y + j).
pub fn portrait_camera(frame: &PortraitFrame, min: UVec2, size: UVec2) -> HeadCamera {
    let centre = min.as_vec2() + size.as_vec2() * 0.5;
    let target = frame.image_to_head(centre).extend(0.0);
    let half_height = size.y.max(1) as f32 * 0.5 * frame.scale;
    HeadCamera {
        position: target + Vec3::Z * FRONTAL_DISTANCE_M,
        up: Vec3::Y,
        target,
        fov_y: 2.0 * (half_height / FRONTAL_DISTANCE_M).atan(),
    }
}

/// A render (premultiplied linear RGBA, `width × height`) in 8-bit sRGB over an opaque background colour, blended
/// in sRGB as an image viewer shows a PNG with alpha.
pub fn composite_over(pixels: &[f32], width: u32, height: u32, background: [u8; 3]) -> RgbImage {
    let rgba = premultiplied_to_srgba8(pixels);
    RgbImage::from_fn(width, height, |x, y| {
        let i = ((y * width + x) * 4) as usize;
        let alpha = rgba.get(i + 3).map_or(0.0, |&a| f32::from(a) / 255.0);
        image::Rgb(std::array::from_fn(|c| {
            let colour = rgba.get(i + c).map_or(0.0, |&v| f32::from(v));
            (colour * alpha + f32::from(background[c]) * (1.0 - alpha)).round() as u8
        }))
    })
}

/// The convex hull of some points, counter-clockwise (y up) — clockwise on screen with y down.
fn convex_hull(points: &[Vec2]) -> Vec<Vec2> {
    let mut points = points.to_vec();
    points.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    let cross = |o: Vec2, a: Vec2, b: Vec2| (a - o).perp_dot(b - o);
    let mut hull: Vec<Vec2> = Vec::with_capacity(points.len() + 1);
    for pass in 0..2 {
        let start = hull.len();
        let mut add = |p: Vec2| {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        };
        if pass == 0 {
            points.iter().copied().for_each(&mut add);
        } else {
            points.iter().rev().copied().for_each(&mut add);
        }
        hull.pop();
    }
    hull
}

fn inside_hull(hull: &[Vec2], p: Vec2) -> bool {
    hull.len() >= 3
        && (0..hull.len())
            .all(|i| (hull[(i + 1) % hull.len()] - hull[i]).perp_dot(p - hull[i]) >= 0.0)
}

/// How the frontal render compares with the portrait inside the face region.
#[derive(Clone, Debug)]
pub struct FrontalFidelity {
    /// [`psnr`] over the face region, dB.
    pub psnr_db: f64,
    /// [`ssim_in_region`] of the luma over the face region.
    pub ssim: f64,
    /// The standard SSIM map of the luma (windows not restricted to the face region, so near its edge they also
    /// see what lies outside it: the grey background where the head ends, e.g. under the chin) averaged over the
    /// face region; lower than [`ssim`](Self::ssim) by what the region's surroundings differ.
    pub ssim_whole_windows: f64,
    /// Pixels in the face region (portrait pixels whose centre lies in the landmarks' convex hull).
    pub pixels: usize,
    /// Pixels of the face region the head does not cover (alpha below [`OPAQUE_ALPHA`]).
    pub uncovered: usize,
    /// The portrait pixels compared: `min .. min + render.dimensions()`.
    pub min: UVec2,
    /// The render of that part of the portrait, over [`NEUTRAL_BACKGROUND`].
    pub render: RgbImage,
    /// The same part of the portrait.
    pub portrait: RgbImage,
    /// Which pixels of `render` and `portrait` are in the face region (row-major).
    pub region: Vec<bool>,
}

/// Renders the head (rest pose, `steps` samples per ray, CPU reference renderer) with [`portrait_camera`] over the
/// face region's bounding box plus SSIM's window radius, and compares it with the portrait there. `landmarks` are
/// the portrait's own (those the head was built from). `None` when the face region is empty.
pub fn frontal_fidelity(
    asset: &HeadAsset,
    frame: &PortraitFrame,
    portrait: &DynamicImage,
    landmarks: &FaceLandmarks,
    steps: u32,
) -> Option<FrontalFidelity> {
    let portrait = portrait.to_rgb8();
    let (width, height) = portrait.dimensions();
    let hull = convex_hull(
        &landmarks
            .points
            .iter()
            .map(|p| p.truncate())
            .collect::<Vec<_>>(),
    );
    let (lo, hi) = hull.iter().fold(
        (Vec2::splat(f32::MAX), Vec2::splat(f32::MIN)),
        |(lo, hi), p| (lo.min(*p), hi.max(*p)),
    );
    let pad = (SSIM_WINDOW / 2) as f32;
    let min = (lo - pad).floor().max(Vec2::ZERO).as_uvec2();
    let max = (hi + pad)
        .ceil()
        .min(Vec2::new(width as f32, height as f32))
        .as_uvec2();
    if hull.len() < 3 || max.cmple(min).any() {
        return None;
    }
    let size = max - min;
    let camera = portrait_camera(frame, min, size);
    let march = MarchUniform::new(asset, &camera, size.x, size.y, steps);
    let pixels = render_reference(asset, &[], &march);
    let render = composite_over(&pixels, size.x, size.y, NEUTRAL_BACKGROUND);
    let crop = image::imageops::crop_imm(&portrait, min.x, min.y, size.x, size.y).to_image();
    let region: Vec<bool> = (0..size.x * size.y)
        .map(|i| {
            let p = Vec2::new((min.x + i % size.x) as f32, (min.y + i / size.x) as f32) + 0.5;
            inside_hull(&hull, p)
        })
        .collect();
    let count = region.iter().filter(|&&r| r).count();
    let uncovered = region
        .iter()
        .enumerate()
        .filter(|&(i, &r)| r && pixels[i * 4 + 3] < OPAQUE_ALPHA)
        .count();
    let (w, h) = (size.x as usize, size.y as usize);
    let (render_luma, crop_luma) = (luma(&render), luma(&crop));
    // The box reaches SSIM's window radius past the region (unless the portrait ends first), so these windows are
    // whole.
    let whole_map = ssim_map(&render_luma, &crop_luma, w, h, &vec![1.0; w * h]);
    let ssim_whole_windows = region
        .iter()
        .zip(&whole_map)
        .filter(|(inside, _)| **inside)
        .map(|(_, v)| v)
        .sum::<f64>()
        / count.max(1) as f64;
    Some(FrontalFidelity {
        psnr_db: psnr(&render, &crop, Some(&region))?,
        ssim: ssim_in_region(&render_luma, &crop_luma, w, h, &region)?,
        ssim_whole_windows,
        pixels: count,
        uncovered,
        min,
        render,
        portrait: crop,
        region,
    })
}

/// Fraction of light (0..1) that passes through the head at rest on the way from `from` to `to`, stopping
/// `margin` metres before `to`; 1 when nothing of the head lies in between. Density as in the renderer, sampled
/// every `step` metres.
pub fn transmittance_between(
    asset: &HeadAsset,
    from: Vec3,
    to: Vec3,
    margin: f32,
    step: f32,
) -> f32 {
    let offset = to - from;
    let length = offset.length() - margin;
    if length <= 0.0 || step <= 0.0 {
        return 1.0;
    }
    let dir = offset.normalize();
    let half_extent = asset.half_extent;
    let safe = Vec3::select(dir.abs().cmplt(Vec3::splat(1e-9)), Vec3::splat(1e-9), dir);
    let t0 = (-half_extent - from) / safe;
    let t1 = (half_extent - from) / safe;
    let t_near = t0.min(t1).max_element().max(0.0);
    let t_far = t0.max(t1).min_element().min(length);
    let mut transmittance = 1.0f32;
    let mut t = t_near + 0.5 * step;
    while t < t_far {
        let u = (from + t * dir) / half_extent;
        if u.abs().cmple(Vec3::ONE).all() {
            transmittance *= (-decode(asset, u).w * step).exp();
            if transmittance < 1e-4 {
                return 0.0;
            }
        }
        t += step;
    }
    transmittance
}

/// The point of the head at rest that shows what the portrait shows at head-space x, y: looking along −z (the
/// portrait's viewing direction), the first point where the head's opacity reaches 1 − [`VISIBLE_TRANSMITTANCE`].
/// The head's colours are the portrait projected along z onto this surface, so a landmark's feature is drawn here,
/// not at the landmark's own depth (the surface only interpolates the landmarks' depths). `None` where the head
/// does not cover x, y.
pub fn front_surface_point(asset: &HeadAsset, x: f32, y: f32) -> Option<Vec3> {
    let half_extent = asset.half_extent;
    if x.abs() > half_extent.x || y.abs() > half_extent.y {
        return None;
    }
    let mut transmittance = 1.0f32;
    let mut z = half_extent.z - 0.5 * VISIBILITY_STEP_M;
    while z > -half_extent.z {
        let density = decode(asset, Vec3::new(x, y, z) / half_extent).w;
        transmittance *= (-density * VISIBILITY_STEP_M).exp();
        if transmittance < VISIBLE_TRANSMITTANCE {
            return Some(Vec3::new(x, y, z));
        }
        z -= VISIBILITY_STEP_M;
    }
    None
}

/// How far each landmark (head space) lies in front of the head's [`front_surface_point`] at its x, y (landmark
/// z − surface z, metres; negative: behind the surface); `None` where the head does not cover it. The head's
/// shape only interpolates the landmarks' depths, and this is how closely.
pub fn surface_depth_offsets(asset: &HeadAsset, head_landmarks: &[Vec3]) -> Vec<Option<f32>> {
    head_landmarks
        .iter()
        .map(|p| front_surface_point(asset, p.x, p.y).map(|s| p.z - s.z))
        .collect()
}

/// The head's own landmarks as a camera sees them.
#[derive(Clone, Debug)]
pub struct ReprojectedLandmarks {
    /// Each landmark's image position (see [`project`]); `None` behind the camera.
    pub points: Vec<Option<Vec2>>,
    /// The image position of each landmark's [`front_surface_point`], where the head draws its feature; `None`
    /// where the head does not cover the landmark or behind the camera.
    pub surface: Vec<Option<Vec2>>,
    /// Whether each landmark's feature is in view: its [`front_surface_point`] (the landmark itself where there is
    /// none) is not hidden by the head ([`VISIBLE_TRANSMITTANCE`], [`VISIBILITY_MARGIN_M`]).
    pub visible: Vec<bool>,
    /// Distance between the projected eye centres (mean of each eye's corners), pixels. It shrinks as the head
    /// turns (about cos yaw).
    pub inter_ocular_px: f32,
}

/// Projects the head's landmarks (head space, e.g. [`PortraitFrame::to_head`] of the portrait's landmarks) and
/// their [`front_surface_point`]s into a `width × height` render from `camera`, and tests which of them the head at
/// rest hides.
pub fn reproject_landmarks(
    asset: &HeadAsset,
    camera: &HeadCamera,
    width: u32,
    height: u32,
    head_landmarks: &[Vec3],
) -> ReprojectedLandmarks {
    let points: Vec<Option<Vec2>> = head_landmarks
        .iter()
        .map(|&p| project(camera, width, height, p))
        .collect();
    let on_surface: Vec<Option<Vec3>> = head_landmarks
        .iter()
        .map(|p| front_surface_point(asset, p.x, p.y))
        .collect();
    let surface = on_surface
        .iter()
        .map(|p| p.and_then(|p| project(camera, width, height, p)))
        .collect();
    let visible = head_landmarks
        .iter()
        .zip(&on_surface)
        .zip(&points)
        .map(|((&landmark, &on_surface), projected)| {
            projected.is_some()
                && transmittance_between(
                    asset,
                    camera.position,
                    on_surface.unwrap_or(landmark),
                    VISIBILITY_MARGIN_M,
                    VISIBILITY_STEP_M,
                ) >= VISIBLE_TRANSMITTANCE
        })
        .collect();
    let eye = |a: usize, b: usize| {
        head_landmarks
            .get(a)
            .zip(head_landmarks.get(b))
            .and_then(|(&a, &b)| project(camera, width, height, (a + b) * 0.5))
    };
    let inter_ocular_px = match (
        eye(index::RIGHT_EYE_OUTER, index::RIGHT_EYE_INNER),
        eye(index::LEFT_EYE_OUTER, index::LEFT_EYE_INNER),
    ) {
        (Some(right), Some(left)) => right.distance(left),
        _ => 0.0,
    };
    ReprojectedLandmarks {
        points,
        surface,
        visible,
        inter_ocular_px,
    }
}

/// Mean distance between detected and expected landmarks, in % of the expected inter-ocular distance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LandmarkError {
    /// Over all landmarks in front of the camera, %.
    pub all_percent: f32,
    /// Over the visible landmarks only, % (NaN when none is visible).
    pub visible_percent: f32,
    /// Over the visible landmarks that have a [`front_surface_point`], measured from its projection (where the
    /// head draws the feature) instead of the landmark's, % (NaN when there are none).
    pub surface_percent: f32,
    /// How many landmarks are visible.
    pub visible: usize,
    /// How many landmarks were compared.
    pub compared: usize,
}

/// Compares detected landmarks (x, y in image pixels, e.g. [`FaceLandmarks::points`]) with the expected ones,
/// index by index. `None` when nothing can be compared or the inter-ocular distance is 0.
pub fn landmark_error(expected: &ReprojectedLandmarks, detected: &[Vec3]) -> Option<LandmarkError> {
    if expected.inter_ocular_px <= 0.0 {
        return None;
    }
    let (mut all, mut compared, mut seen, mut visible) = (0.0f32, 0usize, 0.0f32, 0usize);
    let (mut on_surface, mut surface_count) = (0.0f32, 0usize);
    let expected_points = expected
        .points
        .iter()
        .zip(&expected.surface)
        .zip(&expected.visible);
    for (((point, surface), &is_visible), found) in expected_points.zip(detected) {
        let Some(point) = point else {
            continue;
        };
        let found = found.truncate();
        let distance = point.distance(found);
        all += distance;
        compared += 1;
        if is_visible {
            seen += distance;
            visible += 1;
            if let Some(surface) = surface {
                on_surface += surface.distance(found);
                surface_count += 1;
            }
        }
    }
    let percent = |sum: f32, count: usize| {
        if count > 0 {
            100.0 * sum / count as f32 / expected.inter_ocular_px
        } else {
            f32::NAN
        }
    };
    (compared > 0).then(|| LandmarkError {
        all_percent: percent(all, compared),
        visible_percent: percent(seen, visible),
        surface_percent: percent(on_surface, surface_count),
        visible,
        compared,
    })
}

/// What the face models make of one render.
#[derive(Debug)]
pub struct LandmarkAgreement {
    /// The face models' landmarks on the render, or why they found none.
    pub detected: Result<FaceLandmarks, IdentityError>,
    /// The head's own landmarks as the render's camera sees them.
    pub expected: ReprojectedLandmarks,
    /// How far apart the two are, when a face was found.
    pub error: Option<LandmarkError>,
}

/// Runs the plugin's face detector and landmark model ([`find_face_landmarks`]) on `view` (a render from
/// `camera`, already composited over an opaque background, e.g. with [`composite_over`]) and compares the result
/// with the head's landmarks reprojected through the same camera.
pub fn landmark_agreement(
    registry: &ModelRegistry,
    asset: &HeadAsset,
    head_landmarks: &[Vec3],
    camera: &HeadCamera,
    view: &RgbImage,
) -> LandmarkAgreement {
    let (width, height) = view.dimensions();
    let expected = reproject_landmarks(asset, camera, width, height, head_landmarks);
    let detected = find_face_landmarks(registry, &DynamicImage::ImageRgb8(view.clone()));
    let error = detected
        .as_ref()
        .ok()
        .and_then(|found| landmark_error(&expected, &found.points));
    LandmarkAgreement {
        detected,
        expected,
        error,
    }
}

/// Holes in a rendered head: see [`find_holes`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Holes {
    /// Pixels inside the silhouette: everything the background does not reach.
    pub silhouette: usize,
    /// Empty pixels (alpha below [`EMPTY_ALPHA`]) enclosed by the silhouette.
    pub holes: usize,
    /// See-through pixels inside the silhouette away from its rim: alpha from [`EMPTY_ALPHA`] to below
    /// [`OPAQUE_ALPHA`], more than [`RIM_PIXELS`] from the background.
    pub translucent: usize,
}

/// The background of a render's alpha (`width × height` values, row-major): every empty pixel (alpha below
/// [`EMPTY_ALPHA`]) that can be reached from the image's border through empty pixels (4-connected). Empty pixels
/// that are not background are holes (see [`find_holes`]).
pub fn outside_silhouette(alpha: &[f32], width: usize, height: usize) -> Vec<bool> {
    let empty = |i: usize| alpha[i] < EMPTY_ALPHA;
    let mut background = vec![false; alpha.len()];
    if alpha.len() != width * height {
        return background;
    }
    let mut stack: Vec<usize> = (0..alpha.len())
        .filter(|&i| {
            let (x, y) = (i % width, i / width);
            (x == 0 || y == 0 || x + 1 == width || y + 1 == height) && empty(i)
        })
        .collect();
    for &i in &stack {
        background[i] = true;
    }
    while let Some(i) = stack.pop() {
        let (x, y) = (i % width, i / width);
        let neighbours = [
            (x > 0).then(|| i - 1),
            (x + 1 < width).then(|| i + 1),
            (y > 0).then(|| i - width),
            (y + 1 < height).then(|| i + width),
        ];
        for j in neighbours.into_iter().flatten() {
            if !background[j] && empty(j) {
                background[j] = true;
                stack.push(j);
            }
        }
    }
    background
}

/// The pixels within `reach` pixels of a flagged pixel of `mask` (`width × height`, row-major), the
/// neighbourhood a square: a dilation, done along rows and then along columns.
pub fn grow(mask: &[bool], width: usize, height: usize, reach: usize) -> Vec<bool> {
    let spread = |source: &[bool], step: usize, count: usize, lines: usize, line_step: usize| {
        let mut out = vec![false; source.len()];
        for line in 0..lines {
            let at = |k: usize| line * line_step + k * step;
            for k in (0..count).filter(|&k| source[at(k)]) {
                for j in k.saturating_sub(reach)..=(k + reach).min(count - 1) {
                    out[at(j)] = true;
                }
            }
        }
        out
    };
    if mask.len() != width * height || mask.is_empty() {
        return mask.to_vec();
    }
    let rows = spread(mask, 1, width, height, width);
    spread(&rows, width, height, width, 1)
}

/// Finds holes in a render's alpha (`width × height` values, row-major): the background is every empty pixel
/// (alpha below [`EMPTY_ALPHA`]) that can be reached from the image's border through empty pixels (4-connected);
/// the silhouette is everything else, and empty pixels inside it are holes.
pub fn find_holes(alpha: &[f32], width: usize, height: usize) -> Holes {
    if alpha.len() != width * height {
        return Holes::default();
    }
    let empty = |i: usize| alpha[i] < EMPTY_ALPHA;
    let background = outside_silhouette(alpha, width, height);
    let near_background = grow(&background, width, height, RIM_PIXELS);
    let mut holes = Holes::default();
    for i in (0..alpha.len()).filter(|&i| !background[i]) {
        holes.silhouette += 1;
        if empty(i) {
            holes.holes += 1;
        } else if alpha[i] < OPAQUE_ALPHA && !near_background[i] {
            holes.translucent += 1;
        }
    }
    holes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grow_flags_the_square_around_each_pixel_clipped_at_the_border() {
        let (w, h) = (7, 5);
        let mut mask = vec![false; w * h];
        mask[w + 1] = true; // (1, 1)
        let grown = grow(&mask, w, h, 2);
        for y in 0..h {
            for x in 0..w {
                assert_eq!(grown[y * w + x], x <= 3 && y <= 3, "({x}, {y})");
            }
        }
        assert_eq!(grow(&mask, w, h, 0), mask);
    }

    fn grey(width: usize, height: usize, f: impl Fn(usize, usize) -> f64) -> Vec<f64> {
        (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect()
    }

    #[test]
    fn psnr_of_a_known_error() {
        let a = RgbImage::from_pixel(4, 4, image::Rgb([100, 100, 100]));
        let b = RgbImage::from_pixel(4, 4, image::Rgb([110, 90, 110]));
        // MSE 100 → 10·log10(255² / 100) = 28.1308 dB.
        let value = psnr(&a, &b, None).expect("same size");
        assert!((value - 28.130_803_6).abs() < 1e-6, "{value}");
        assert_eq!(psnr(&a, &a, None), Some(f64::INFINITY));
        // Only the region counts: one pixel off by 255 outside it changes nothing.
        let mut c = b.clone();
        c.put_pixel(0, 0, image::Rgb([255, 0, 255]));
        let mut region = vec![true; 16];
        region[0] = false;
        assert_eq!(psnr(&a, &c, Some(&region)), psnr(&a, &b, Some(&region)));
        assert!(psnr(&a, &c, None) < psnr(&a, &b, None));
        assert_eq!(psnr(&a, &b, Some(&[false; 16])), None);
        assert_eq!(psnr(&a, &RgbImage::new(3, 4), None), None);
    }

    #[test]
    fn ssim_of_identical_and_flat_images() {
        let a = grey(16, 16, |x, y| ((x * 17 + y * 5) % 256) as f64);
        assert!((ssim(&a, &a, 16, 16).expect("size") - 1.0).abs() < 1e-12);
        // Flat images: only the luminance term, (2·100·200 + C1) / (100² + 200² + C1).
        let dark = vec![100.0; 256];
        let bright = vec![200.0; 256];
        let expected =
            (2.0 * 100.0 * 200.0 + SSIM_C1) / (100.0f64.powi(2) + 200.0f64.powi(2) + SSIM_C1);
        let value = ssim(&dark, &bright, 16, 16).expect("size");
        assert!((value - expected).abs() < 1e-9, "{value} vs {expected}");
        assert_eq!(ssim(&a, &a, 10, 16), None);
        assert_eq!(ssim(&a[..100], &a[..100], 10, 10), None);
    }

    #[test]
    fn ssim_matches_scikit_image() {
        // scikit-image 0.26.0: structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
        // use_sample_covariance=False) on the same float64 images.
        let (w, h) = (32, 24);
        let a = grey(w, h, |x, y| ((x * x * 3 + y * 7 + x * y) % 256) as f64);
        let b = grey(w, h, |x, y| {
            let v = ((x * x * 3 + y * 7 + x * y) % 256) as i64;
            (v + ((x * 13 + y * 29) % 41) as i64 - 20).clamp(0, 255) as f64
        });
        let value = ssim(&a, &b, w, h).expect("size");
        assert!((value - 0.987_852_019_314_084_2).abs() < 1e-9, "{value}");
        let c = grey(w, h, |x, y| {
            128.0 + 60.0 * (x as f64 * 0.3).sin() * (y as f64 * 0.2).cos()
        });
        let d = grey(w, h, |x, y| {
            c[y * w + x] * 0.8 + 20.0 + ((x * 7 + y * 3) % 5) as f64
        });
        let value = ssim(&c, &d, w, h).expect("size");
        assert!((value - 0.973_119_527_820_471_2).abs() < 1e-9, "{value}");
    }

    #[test]
    fn ssim_in_region_ignores_what_lies_outside() {
        let (w, h) = (24, 24);
        let a = grey(w, h, |x, y| ((x * 31 + y * 11) % 200) as f64);
        // Left half identical, right half inverted.
        let b = grey(w, h, |x, y| {
            if x < 12 {
                a[y * w + x]
            } else {
                255.0 - a[y * w + x]
            }
        });
        let left: Vec<bool> = (0..w * h).map(|i| i % w < 12).collect();
        assert!((ssim_in_region(&a, &b, w, h, &left).expect("region") - 1.0).abs() < 1e-12);
        assert!(ssim(&a, &b, w, h).expect("size") < 0.9);
        // Where the window lies wholly inside the region, the map is the standard one: leaving out column 0
        // changes the map only within the window's radius (5 pixels) of it.
        let c: Vec<f64> = a.iter().map(|v| 0.5 * v + ((v * 7.0) % 13.0)).collect();
        let standard = ssim_map(&a, &c, w, h, &vec![1.0; w * h]);
        let without_column: Vec<f64> = (0..w * h)
            .map(|i| if i % w == 0 { 0.0 } else { 1.0 })
            .collect();
        let restricted = ssim_map(&a, &c, w, h, &without_column);
        for i in (0..w * h).filter(|i| i % w >= 6) {
            assert!((standard[i] - restricted[i]).abs() < 1e-12);
        }
        assert!((standard[w + 1] - restricted[w + 1]).abs() > 1e-6);
        assert_eq!(ssim_in_region(&a, &b, w, h, &vec![false; w * h]), None);
    }

    #[test]
    fn projection_inverts_the_renderers_rays() {
        let camera = HeadCamera::orbit(0.5, 0.2, 0.6, 0.15);
        let (width, height) = (64u32, 48u32);
        let centre = project(&camera, width, height, camera.target).expect("in front");
        assert!((centre - Vec2::new(32.0, 24.0)).length() < 1e-3, "{centre}");
        // The ray through the centre of pixel (10, 40), built as the renderer builds it, projects back there.
        let march = MarchUniform {
            origin: [0.0, 0.0, 0.0, (camera.fov_y * 0.5).tan()],
            right: camera
                .axes()
                .x_axis
                .extend(width as f32 / height as f32)
                .to_array(),
            up: camera.axes().y_axis.extend(0.0).to_array(),
            forward: camera.axes().z_axis.extend(0.0).to_array(),
            size: [width, height, 1, 2],
            ..Default::default()
        };
        let (px, py) = (10.0f32, 40.0f32);
        let x = ((px + 0.5) / width as f32 * 2.0 - 1.0) * march.origin[3] * march.right[3];
        let y = (1.0 - (py + 0.5) / height as f32 * 2.0) * march.origin[3];
        let axes = camera.axes();
        let dir = (axes.z_axis + x * axes.x_axis + y * axes.y_axis).normalize();
        let projected =
            project(&camera, width, height, camera.position + 0.4 * dir).expect("in front");
        assert!(
            (projected - Vec2::new(10.5, 40.5)).length() < 1e-3,
            "{projected}"
        );
        assert_eq!(
            project(&camera, width, height, camera.position - axes.z_axis),
            None
        );
    }

    #[test]
    fn portrait_camera_puts_pixels_on_portrait_pixels() {
        let frame = PortraitFrame {
            origin: Vec2::new(200.0, 150.0),
            scale: 0.001,
            depth_origin: 0.0,
        };
        let (min, size) = (UVec2::new(180, 100), UVec2::new(40, 60));
        let camera = portrait_camera(&frame, min, size);
        // The head point under portrait pixel (190, 130)'s centre lands on render pixel (10, 30)'s centre.
        let head = frame.to_head(Vec3::new(190.5, 130.5, 0.0));
        let seen =
            project(&camera, size.x, size.y, Vec3::new(head.x, head.y, 0.0)).expect("in front");
        assert!((seen - Vec2::new(10.5, 30.5)).length() < 1e-3, "{seen}");
    }

    #[test]
    fn holes_are_empty_pixels_the_head_surrounds() {
        // A 12×12 image with an opaque ring around a 2×2 empty hole, and an opening cut to the border elsewhere.
        let (w, h) = (12, 12);
        let mut alpha = vec![0.0f32; w * h];
        for y in 2..10 {
            for x in 2..10 {
                alpha[y * w + x] = 1.0;
            }
        }
        for y in 5..7 {
            for x in 5..7 {
                alpha[y * w + x] = 0.1;
            }
        }
        let closed = find_holes(&alpha, w, h);
        assert_eq!(
            closed,
            Holes {
                silhouette: 64,
                holes: 4,
                translucent: 0
            }
        );
        // A channel from the hole to the border: no longer a hole.
        for x in 7..12 {
            alpha[5 * w + x] = 0.0;
        }
        let open = find_holes(&alpha, w, h);
        assert_eq!(open.holes, 0);
        assert_eq!(open.silhouette, 64 - 4 - 3);
        // A see-through pixel deep inside, and one on the rim (not counted).
        let mut alpha = vec![0.0f32; w * h];
        for y in 1..11 {
            for x in 1..11 {
                alpha[y * w + x] = 1.0;
            }
        }
        alpha[6 * w + 6] = 0.7;
        alpha[w + 5] = 0.7;
        assert_eq!(
            find_holes(&alpha, w, h),
            Holes {
                silhouette: 100,
                holes: 0,
                translucent: 1
            }
        );
    }

    #[test]
    fn composite_blends_in_srgb() {
        // Opaque white, transparent, and half-transparent white (premultiplied linear 0.5).
        let pixels = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5];
        let image = composite_over(&pixels, 3, 1, [0, 0, 0]);
        assert_eq!(image.get_pixel(0, 0).0, [255; 3]);
        assert_eq!(image.get_pixel(1, 0).0, [0; 3]);
        assert_eq!(image.get_pixel(2, 0).0, [128; 3]);
    }

    #[test]
    fn hull_contains_its_inside_only() {
        let hull = convex_hull(&[
            Vec2::new(0.0, 0.0),
            Vec2::new(4.0, 0.0),
            Vec2::new(2.0, 1.0),
            Vec2::new(4.0, 4.0),
            Vec2::new(0.0, 4.0),
        ]);
        assert_eq!(hull.len(), 4);
        assert!(inside_hull(&hull, Vec2::new(1.0, 3.0)));
        assert!(!inside_hull(&hull, Vec2::new(5.0, 3.0)));
    }
}
