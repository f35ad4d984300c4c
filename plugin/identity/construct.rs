//! Portrait + face landmarks → a head asset (first version).
//!
//! Shape: the head is the volume between a front surface and a back surface over a silhouette in the head's
//! x–y plane. The front surface is the face itself where the landmarks are (their depths, interpolated with
//! Gaussian weights) and an ellipsoidal skull elsewhere, blended smoothly; the back surface is the back half of the
//! ellipsoid. The silhouette is the ellipse from the crown to the chin, cut by the portrait's person mask when one
//! is given. Colour: the front shows the portrait (projected straight along the head's z axis); the back shows the
//! hair colour measured above the forehead.
//!
//! Encoding in the tri-plane (all in normalised head coordinates `u`), with `f(x, y)` stored on plane 0 and the
//! z-dependent terms on plane 1, so that every channel is an exact sum of the two:
//! - `front - z`, `z - back` and `z - mid` (mid = half way between the surfaces);
//! - per colour channel `c_front + K (z - mid)` and `c_back - K (z - mid)` (logits of linear colour).
//!
//! The decoder (ReLU MLP) turns these into density `D · min(front - z, z - back)` and colour
//! `max(c_front + K v, c_back − K v) − K |v|` with `v = z − mid`, which is the front colour in front of the mid
//! surface and the back colour behind it. The head asset's motion bases are displacement fields built around the
//! landmarks ([`bases`]).

use std::sync::Arc;

use bevy::math::{Vec2, Vec3};
use half::f16;
use image::{DynamicImage, RgbImage};

use super::head_asset::{BASIS_COMPONENTS, DecoderMlp, HeadAsset, PLANES};
use super::landmarks::{FaceLandmarks, landmark_index as lm};

/// Typical distance between the pupils of an adult, metres; it sets the portrait's scale.
const EYE_DISTANCE_M: f32 = 0.063;
/// Feature channels: front − z, z − back, z − mid, front colour ×3, back colour ×3, one unused.
const CHANNELS: usize = 10;
/// Slope of the colour selector, in logits per normalised unit of depth.
const COLOUR_SLOPE: f32 = 40.0;
/// Density per normalised unit of depth inside the surface, per metre.
const DENSITY_SCALE: f32 = 20_000.0;
/// Standard deviation of the Gaussian weights that interpolate landmark depths, metres.
const DEPTH_SIGMA_M: f32 = 0.006;
/// Logits are clamped to this magnitude (colours 0.25 %..99.75 %).
const MAX_LOGIT: f32 = 6.0;

/// Indices of the head's motion bases, i.e. of its motion code.
pub mod bases {
    /// The jaw opens: everything below the lips' meeting line moves down.
    pub const JAW_OPEN: usize = 0;
    /// Corner of the mouth on the subject's left goes up and out.
    pub const SMILE_LEFT: usize = 1;
    /// Corner of the mouth on the subject's right goes up and out.
    pub const SMILE_RIGHT: usize = 2;
    /// The subject's left eye closes.
    pub const BLINK_LEFT: usize = 3;
    /// The subject's right eye closes.
    pub const BLINK_RIGHT: usize = 4;
    /// Both brows go up.
    pub const BROWS_UP: usize = 5;
    /// Number of bases.
    pub const COUNT: usize = 6;
}

/// Resolutions of a constructed head.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConstructSettings {
    /// Texels per side of the feature planes.
    pub resolution: usize,
    /// Texels per side of the motion-basis planes.
    pub motion_resolution: usize,
}

impl Default for ConstructSettings {
    fn default() -> Self {
        Self {
            resolution: 256,
            motion_resolution: 64,
        }
    }
}

/// How portrait pixels map to head space: head x = (px − origin.x)·scale, head y = (origin.y − py)·scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PortraitFrame {
    /// Image point (pixels) at the head's centre line.
    pub origin: Vec2,
    /// Metres per pixel.
    pub scale: f32,
    /// Landmark depth (pixels) that maps to head z = 0.
    pub depth_origin: f32,
}

impl PortraitFrame {
    /// Head-space point of a landmark (x, y in image pixels, z in pixels, smaller nearer).
    pub fn to_head(&self, p: Vec3) -> Vec3 {
        Vec3::new(
            (p.x - self.origin.x) * self.scale,
            (self.origin.y - p.y) * self.scale,
            (self.depth_origin - p.z) * self.scale,
        )
    }

    /// Image point (pixels) of a head-space x, y.
    pub fn to_image(&self, x: f32, y: f32) -> Vec2 {
        Vec2::new(
            self.origin.x + x / self.scale,
            self.origin.y - y / self.scale,
        )
    }
}

/// The ellipsoid that stands for the skull, in head space (metres).
#[derive(Clone, Copy, Debug)]
struct Skull {
    half_width: f32,
    half_height: f32,
    half_depth: f32,
}

impl Skull {
    /// How far inside the silhouette ellipse (x, y) is: 1 at the centre, 0 on the rim, negative outside.
    fn inside(&self, x: f32, y: f32) -> f32 {
        1.0 - (x / self.half_width).powi(2) - (y / self.half_height).powi(2)
    }
}

/// Builds a head asset from a portrait, its face landmarks and optionally a person mask (one value 0..1 per
/// pixel, row-major, the image's size). Returns the asset and the portrait's mapping to head space.
pub fn build_head(
    portrait: &DynamicImage,
    landmarks: &FaceLandmarks,
    person_mask: Option<&[f32]>,
    settings: ConstructSettings,
) -> (HeadAsset, PortraitFrame) {
    let image = portrait.to_rgb8();
    let points = &landmarks.points;
    let at = |i: usize| points[i];
    let eye = |a: usize, b: usize| (at(a) + at(b)) * 0.5;
    let right_eye = eye(lm::RIGHT_EYE_OUTER, lm::RIGHT_EYE_INNER);
    let left_eye = eye(lm::LEFT_EYE_OUTER, lm::LEFT_EYE_INNER);
    let eye_distance_px = right_eye.truncate().distance(left_eye.truncate()).max(1.0);
    let scale = EYE_DISTANCE_M / eye_distance_px;
    let forehead = at(lm::FOREHEAD);
    let chin = at(lm::CHIN);
    let face_height_px = (chin.y - forehead.y).max(1.0);
    let face_width_px = points.iter().map(|p| p.x).fold(f32::MIN, f32::max)
        - points.iter().map(|p| p.x).fold(f32::MAX, f32::min);
    // The crown sits about 0.45 face heights above the top landmark; the silhouette runs from there to the chin.
    let crown_y = forehead.y - 0.45 * face_height_px;
    let centre_y = (crown_y + chin.y) * 0.5;
    let mean_depth = points.iter().map(|p| p.z).sum::<f32>() / points.len() as f32;
    let frame = PortraitFrame {
        origin: Vec2::new((right_eye.x + left_eye.x) * 0.5, centre_y),
        scale,
        // The face's mean depth lies 6 cm in front of the head's centre.
        depth_origin: mean_depth + 0.06 / scale,
    };
    let skull = Skull {
        half_width: 0.55 * face_width_px * scale,
        half_height: (chin.y - crown_y) * 0.5 * scale,
        half_depth: 0.6 * face_width_px * scale * 1.15,
    };
    let face: Vec<Vec3> = points.iter().map(|p| frame.to_head(*p)).collect();
    let half_extent = Vec3::new(
        skull.half_width * 1.08,
        skull.half_height * 1.05,
        face.iter()
            .map(|p| p.z.abs())
            .fold(skull.half_depth, f32::max)
            * 1.08,
    );

    let r = settings.resolution.max(8);
    let surfaces = Surfaces::new(&frame, skull, &face, half_extent, r, &image, person_mask);
    let colours = Colours::measure(&image, &frame, &face, person_mask);
    let triplane = encode_triplane(&surfaces, &colours, &image, &frame, half_extent, r);
    let m = settings.motion_resolution.max(4);
    let motion_bases = motion_bases(&face, half_extent, m);
    let asset = HeadAsset {
        half_extent,
        channels: CHANNELS,
        triplane_resolution: r,
        triplane: Arc::from(triplane),
        basis_count: bases::COUNT,
        motion_resolution: m,
        motion_bases: Arc::from(motion_bases),
        decoder: decoder(),
    };
    (asset, frame)
}

fn texel_centre(index: usize, resolution: usize) -> f32 {
    (index as f32 + 0.5) / resolution as f32 * 2.0 - 1.0
}

fn smoothstep(edge0: f32, edge1: f32, x: f32) -> f32 {
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Front and back depth (normalised z) per plane-0 texel; front < back where the head is absent.
struct Surfaces {
    front: Vec<f32>,
    back: Vec<f32>,
}

impl Surfaces {
    fn new(
        frame: &PortraitFrame,
        skull: Skull,
        face: &[Vec3],
        half_extent: Vec3,
        r: usize,
        image: &RgbImage,
        person_mask: Option<&[f32]>,
    ) -> Self {
        let two_sigma2 = 2.0 * DEPTH_SIGMA_M * DEPTH_SIGMA_M;
        let mut face_depth = vec![0.0f32; r * r];
        let mut face_weight = vec![0.0f32; r * r];
        let mut shell = vec![0.0f32; r * r];
        for row in 0..r {
            let y = -texel_centre(row, r) * half_extent.y;
            for col in 0..r {
                let x = texel_centre(col, r) * half_extent.x;
                let i = row * r + col;
                let (mut sum, mut weight) = (0.0f32, 0.0f32);
                for p in face {
                    let d2 = (p.x - x).powi(2) + (p.y - y).powi(2);
                    if d2 < 9.0 * two_sigma2 {
                        let w = (-d2 / two_sigma2).exp();
                        sum += w * p.z;
                        weight += w;
                    }
                }
                face_depth[i] = if weight > 0.0 { sum / weight } else { 0.0 };
                face_weight[i] = weight;
                shell[i] = skull.half_depth * skull.inside(x, y).max(0.0).sqrt();
            }
        }
        // The skull meets the face where the face's landmarks thin out: shift it to the face's depth there.
        let rim: Vec<f32> = (0..r * r)
            .filter(|&i| (0.3..0.6).contains(&face_weight[i]))
            .map(|i| face_depth[i] - shell[i])
            .collect();
        let shift = if rim.is_empty() {
            0.0
        } else {
            rim.iter().sum::<f32>() / rim.len() as f32
        };

        let mut front = vec![-2.0f32; r * r];
        let mut back = vec![2.0f32; r * r];
        for row in 0..r {
            let y = -texel_centre(row, r) * half_extent.y;
            for col in 0..r {
                let x = texel_centre(col, r) * half_extent.x;
                let i = row * r + col;
                let mut inside = skull.inside(x, y);
                if let Some(mask) = person_mask {
                    let p = frame.to_image(x, y);
                    let (px, py) = (p.x.floor() as i64, p.y.floor() as i64);
                    let (w, h) = (image.width() as i64, image.height() as i64);
                    let person = if (0..w).contains(&px) && (0..h).contains(&py) {
                        mask.get((py * w + px) as usize).copied().unwrap_or(0.0)
                    } else {
                        0.0
                    };
                    inside = inside.min(person - 0.5);
                }
                if inside <= 0.0 {
                    continue;
                }
                let blend = smoothstep(0.2, 0.8, face_weight[i]);
                let z_front = blend * face_depth[i] + (1.0 - blend) * (shell[i] + shift);
                let z_back = -shell[i];
                // Thin rims still get a little thickness, so the silhouette's edge is solid.
                let thickness = (z_front - z_back).max(0.004);
                front[i] = (z_back + thickness) / half_extent.z;
                back[i] = z_back / half_extent.z;
            }
        }
        Self { front, back }
    }
}

/// The colours the construction needs besides the portrait itself.
struct Colours {
    /// Linear RGB of the hair, for the back of the head.
    hair: [f32; 3],
}

fn srgb_to_linear(c: u8) -> f32 {
    let c = f32::from(c) / 255.0;
    if c <= 0.040_45 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn logit(linear: f32) -> f32 {
    let p = linear.clamp(0.0025, 0.9975);
    (p / (1.0 - p)).ln().clamp(-MAX_LOGIT, MAX_LOGIT)
}

impl Colours {
    /// Hair: the median colour of the band above the forehead (inside the person mask when there is one).
    fn measure(
        image: &RgbImage,
        frame: &PortraitFrame,
        face: &[Vec3],
        person_mask: Option<&[f32]>,
    ) -> Self {
        let top = face[lm::FOREHEAD];
        let half_width = 0.3 * (face[lm::LEFT_EYE_OUTER].x - face[lm::RIGHT_EYE_OUTER].x).abs();
        let mut samples: [Vec<f32>; 3] = Default::default();
        for step in 0..40 {
            let y = top.y + 0.01 + 0.03 * step as f32 / 40.0;
            for across in 0..20 {
                let x = -half_width + 2.0 * half_width * across as f32 / 19.0;
                let p = frame.to_image(x, y);
                if p.x < 0.0
                    || p.y < 0.0
                    || p.x >= image.width() as f32
                    || p.y >= image.height() as f32
                {
                    continue;
                }
                let (px, py) = (p.x as u32, p.y as u32);
                if let Some(mask) = person_mask
                    && mask
                        .get((py * image.width() + px) as usize)
                        .copied()
                        .unwrap_or(0.0)
                        < 0.5
                {
                    continue;
                }
                let pixel = image.get_pixel(px, py);
                for (channel, values) in samples.iter_mut().enumerate() {
                    values.push(srgb_to_linear(pixel[channel]));
                }
            }
        }
        let median = |values: &mut Vec<f32>| {
            if values.is_empty() {
                return 0.05;
            }
            values.sort_by(f32::total_cmp);
            values[values.len() / 2]
        };
        let [r, g, b] = &mut samples;
        Self {
            hair: [median(r), median(g), median(b)],
        }
    }
}

/// Bilinear sample of the portrait at image point `p` (pixels), linear RGB; clamps at the border.
fn sample_linear(image: &RgbImage, p: Vec2) -> [f32; 3] {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let x = (p.x - 0.5).clamp(0.0, w - 1.0);
    let y = (p.y - 0.5).clamp(0.0, h - 1.0);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = (
        (x0 + 1).min(image.width() - 1),
        (y0 + 1).min(image.height() - 1),
    );
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let mut out = [0.0; 3];
    for (c, value) in out.iter_mut().enumerate() {
        let v = |px: u32, py: u32| srgb_to_linear(image.get_pixel(px, py)[c]);
        *value = (1.0 - fy) * ((1.0 - fx) * v(x0, y0) + fx * v(x1, y0))
            + fy * ((1.0 - fx) * v(x0, y1) + fx * v(x1, y1));
    }
    out
}

fn encode_triplane(
    surfaces: &Surfaces,
    colours: &Colours,
    image: &RgbImage,
    frame: &PortraitFrame,
    half_extent: Vec3,
    r: usize,
) -> Vec<f16> {
    let mut triplane = vec![f16::ZERO; PLANES * r * r * CHANNELS];
    let hair = colours.hair.map(logit);
    for row in 0..r {
        let y = -texel_centre(row, r) * half_extent.y;
        for col in 0..r {
            let x = texel_centre(col, r) * half_extent.x;
            let i = row * r + col;
            let (front, back) = (surfaces.front[i], surfaces.back[i]);
            let mid = (front + back) * 0.5;
            let portrait = sample_linear(image, frame.to_image(x, y)).map(logit);
            let mut f = [0.0f32; CHANNELS];
            f[0] = front;
            f[1] = -back;
            f[2] = -mid;
            for c in 0..3 {
                f[3 + c] = portrait[c] - COLOUR_SLOPE * mid;
                f[6 + c] = hair[c] + COLOUR_SLOPE * mid;
            }
            // Plane 0 is indexed (x, y) with rows along y from −1 at the bottom: row j has v = texel_centre(j).
            let plane_row = r - 1 - row;
            let texel = (plane_row * r + col) * CHANNELS;
            for (slot, value) in triplane[texel..texel + CHANNELS].iter_mut().zip(f) {
                *slot = f16::from_f32(value);
            }
        }
    }
    // Plane 1 (x, z) carries the z terms, the same for every x.
    for row in 0..r {
        let z = texel_centre(row, r);
        let mut f = [0.0f32; CHANNELS];
        f[0] = -z;
        f[1] = z;
        f[2] = z;
        for c in 0..3 {
            f[3 + c] = COLOUR_SLOPE * z;
            f[6 + c] = -COLOUR_SLOPE * z;
        }
        for col in 0..r {
            let texel = ((r + row) * r + col) * CHANNELS;
            for (slot, value) in triplane[texel..texel + CHANNELS].iter_mut().zip(f) {
                *slot = f16::from_f32(value);
            }
        }
    }
    triplane
}

/// The decoder that reads [`encode_triplane`]'s channels (see the module docs).
fn decoder() -> DecoderMlp {
    // Hidden units: 0 relu(f0), 1 relu(−f0), 2 relu(f0 − f1), 3 relu(v), 4 relu(−v),
    // then per colour c: 5+3c relu(u1 − u2), 6+3c relu(u2), 7+3c relu(−u2).
    let hidden = 14;
    let mut w1 = vec![0.0f32; hidden * CHANNELS];
    let mut set = |h: usize, c: usize, w: f32| w1[h * CHANNELS + c] = w;
    set(0, 0, 1.0);
    set(1, 0, -1.0);
    set(2, 0, 1.0);
    set(2, 1, -1.0);
    set(3, 2, 1.0);
    set(4, 2, -1.0);
    for c in 0..3 {
        set(5 + 3 * c, 3 + c, 1.0);
        set(5 + 3 * c, 6 + c, -1.0);
        set(6 + 3 * c, 6 + c, 1.0);
        set(7 + 3 * c, 6 + c, -1.0);
    }
    let mut w2 = vec![0.0f32; 4 * hidden];
    w2[0] = DENSITY_SCALE;
    w2[1] = -DENSITY_SCALE;
    w2[2] = -DENSITY_SCALE;
    for c in 0..3 {
        let row = (1 + c) * hidden;
        w2[row + 5 + 3 * c] = 1.0;
        w2[row + 6 + 3 * c] = 1.0;
        w2[row + 7 + 3 * c] = -1.0;
        w2[row + 3] = -COLOUR_SLOPE;
        w2[row + 4] = -COLOUR_SLOPE;
    }
    DecoderMlp {
        hidden,
        w1,
        b1: vec![0.0; hidden],
        w2,
        b2: vec![0.0; 4],
    }
}

/// A smooth bump: 1 at distance 0, 0 from `radius` on.
fn bump(distance: f32, radius: f32) -> f32 {
    1.0 - smoothstep(0.0, radius, distance)
}

/// Motion bases as backward displacement fields on plane 0 (x, y), in normalised units: the point drawn at `u`
/// comes from `u + d`.
fn motion_bases(face: &[Vec3], half_extent: Vec3, m: usize) -> Vec<f16> {
    let at = |i: usize| face[i].truncate();
    let mouth_left = at(lm::MOUTH_LEFT);
    let mouth_right = at(lm::MOUTH_RIGHT);
    let mouth_centre = (at(lm::UPPER_LIP) + at(lm::LOWER_LIP)) * 0.5;
    let mouth_half_width = mouth_left.distance(mouth_right) * 0.5;
    let eye = |outer: usize, inner: usize| {
        let (a, b) = (at(outer), at(inner));
        ((a + b) * 0.5, a.distance(b) * 0.5)
    };
    let (left_eye, left_eye_half) = eye(lm::LEFT_EYE_OUTER, lm::LEFT_EYE_INNER);
    let (right_eye, right_eye_half) = eye(lm::RIGHT_EYE_OUTER, lm::RIGHT_EYE_INNER);
    let jaw_drop = 0.014;
    let gap = 0.002;

    let displacement = |basis: usize, p: Vec2| -> Vec2 {
        match basis {
            bases::JAW_OPEN => {
                // Points just below the lips' line are drawn from the line itself (the dark gap between the lips
                // stretches open); everything lower is drawn from `jaw_drop` higher up.
                let below = mouth_centre.y - p.y;
                let across = bump((p.x - mouth_centre.x).abs(), mouth_half_width * 2.2);
                let lift = below.clamp(0.0, jaw_drop + gap).min(jaw_drop);
                let chin_fade = 1.0 - smoothstep(0.06, 0.09, below);
                Vec2::new(0.0, lift * across * chin_fade.max(0.35))
            }
            bases::SMILE_LEFT | bases::SMILE_RIGHT => {
                let corner = if basis == bases::SMILE_LEFT {
                    mouth_left
                } else {
                    mouth_right
                };
                let outward = (corner.x - mouth_centre.x).signum();
                let w = bump(p.distance(corner), mouth_half_width * 0.9);
                -Vec2::new(0.004 * outward, 0.005) * w
            }
            bases::BLINK_LEFT | bases::BLINK_RIGHT => {
                let (centre, half) = if basis == bases::BLINK_LEFT {
                    (left_eye, left_eye_half)
                } else {
                    (right_eye, right_eye_half)
                };
                // Inside the eye opening, points are drawn from the upper lid just above it.
                let lid = centre.y + half * 0.55;
                let across = bump((p.x - centre.x).abs(), half * 1.25);
                let span = half * 0.55;
                if p.y > lid || p.y < centre.y - span {
                    Vec2::ZERO
                } else {
                    Vec2::new(0.0, (lid + 0.001 - p.y) * across)
                }
            }
            bases::BROWS_UP => {
                let above = |centre: Vec2, half: f32| {
                    bump(p.distance(centre + Vec2::new(0.0, half * 1.2)), half * 1.6)
                };
                let w = above(left_eye, left_eye_half).max(above(right_eye, right_eye_half));
                Vec2::new(0.0, -0.005 * w)
            }
            _ => Vec2::ZERO,
        }
    };

    let mut out = vec![f16::ZERO; bases::COUNT * PLANES * m * m * BASIS_COMPONENTS];
    for basis in 0..bases::COUNT {
        for row in 0..m {
            let v = texel_centre(row, m);
            for col in 0..m {
                let u = texel_centre(col, m);
                let p = Vec2::new(u * half_extent.x, v * half_extent.y);
                let d = displacement(basis, p);
                let texel = ((basis * PLANES * m + row) * m + col) * BASIS_COMPONENTS;
                out[texel] = f16::from_f32(d.x / half_extent.x);
                out[texel + 1] = f16::from_f32(d.y / half_extent.y);
            }
        }
    }
    out
}
