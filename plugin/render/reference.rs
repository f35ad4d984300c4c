//! CPU reference renderer: the maths of `shaders/head_march.wgsl`, step for step, in Rust.
//!
//! Tests compare GPU images against it, and benchmarks use it as the baseline on machines without a GPU. It marches
//! the rows in bands on all the machine's threads ([`ReferenceRenderer::with_threads`] for fewer).

use bevy::math::{Vec3, Vec4};
use half::f16;

use bevy::math::Vec2;

use super::empty_space::{CELLS, EmptySpace, cell_index, cell_of, footprint};
use super::march::MarchUniform;
use crate::identity::construct::{closed_form_decode, decodes_in_closed_form};
use crate::identity::layers::{Neck, SMEAR, STEEPNESS_UNIT};
use crate::identity::{
    BASIS_COMPONENTS, DECODER_OUTPUTS, Eye, HeadAsset, MAX_CHANNELS, MAX_HIDDEN, MOUTH_INTERIOR,
    OPENING_FULL, OPENING_START, PLANES, PortraitLayers, SHADE_RANGE, TEETH, TEETH_LIT_GAP,
    TEETH_SHOW, TOOTH_LENGTHS, TOOTH_WIDTHS,
};

/// Renders `asset` with `motion_code` into premultiplied linear RGBA (4 floats per pixel, row-major, top row
/// first), rounded to half floats exactly as the GPU's `Rgba16Float` target stores them. Missing motion-code entries
/// count as 0; extra ones are ignored. Bakes the asset's empty space first: to render several frames of one asset,
/// use a [`ReferenceRenderer`].
pub fn render_reference(asset: &HeadAsset, motion_code: &[f32], march: &MarchUniform) -> Vec<f32> {
    ReferenceRenderer::new(asset).render(motion_code, march)
}

/// [`render_reference`] with the portrait display: `march` made by [`MarchUniform::over_portrait`] for `layers`.
pub fn render_portrait_reference(
    asset: &HeadAsset,
    layers: &PortraitLayers,
    motion_code: &[f32],
    march: &MarchUniform,
) -> Vec<f32> {
    ReferenceRenderer::new(asset).render_portrait(layers, motion_code, march)
}

/// The CPU reference renderer for one head asset: what the GPU prepares once per asset (its empty space), then
/// any number of frames.
pub struct ReferenceRenderer<'a> {
    asset: &'a HeadAsset,
    space: EmptySpace,
    /// The tri-plane's features as single floats (converted once; the values are exact).
    features: Vec<f32>,
    /// Threads the rows are shared among.
    threads: usize,
    /// The asset's decoder is the constructed heads' one, evaluated in closed form.
    closed_form: bool,
}

impl<'a> ReferenceRenderer<'a> {
    /// Prepares `asset` (which must be valid: [`HeadAsset::validate`]).
    pub fn new(asset: &'a HeadAsset) -> Self {
        let features: Vec<f32> = asset.triplane.iter().map(|v| v.to_f32()).collect();
        Self {
            asset,
            space: EmptySpace::bake_features(asset, &features),
            features,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            closed_form: decodes_in_closed_form(asset),
        }
    }

    /// The same renderer on `threads` threads (at least one; by default all the machine has).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// One frame, as [`render_reference`].
    pub fn render(&self, motion_code: &[f32], march: &MarchUniform) -> Vec<f32> {
        render(self, None, motion_code, march)
    }

    /// One frame over a portrait's plates, as [`render_portrait_reference`].
    pub fn render_portrait(
        &self,
        layers: &PortraitLayers,
        motion_code: &[f32],
        march: &MarchUniform,
    ) -> Vec<f32> {
        render(self, Some(layers), motion_code, march)
    }
}

fn render(
    renderer: &ReferenceRenderer,
    layers: Option<&PortraitLayers>,
    motion_code: &[f32],
    march: &MarchUniform,
) -> Vec<f32> {
    let asset = renderer.asset;
    let displacement = blend_bases(asset, motion_code);
    let plates = layers.filter(|_| march.is_portrait()).map(Plates::new);
    let reach = WarpReach::new(asset, &displacement);
    let (width, height) = (march.width() as usize, march.height() as usize);
    let mut pixels = vec![0.0f32; width * height * 4];
    // Rows in one band per thread; every pixel is independent of the others.
    let band = height.div_ceil(renderer.threads).max(1) * width * 4;
    std::thread::scope(|scope| {
        for (b, rows) in pixels.chunks_mut(band).enumerate() {
            let (displacement, reach, plates) = (&displacement, &reach, plates.as_ref());
            scope.spawn(move || {
                for (k, pixel) in rows.chunks_exact_mut(4).enumerate() {
                    let index = b * band / 4 + k;
                    let (px, py) = (index % width, index / width);
                    let rgba = march_ray(renderer, (displacement, reach), march, plates, px, py);
                    for (out, value) in pixel.iter_mut().zip(rgba.to_array()) {
                        *out = f16::from_f32(value).to_f32();
                    }
                }
            });
        }
    });
    pixels
}

/// How far blended motion bases (`blend_bases`' output) move points at most, metres (`reach_cells` in the shader):
/// a bilinear lookup is never longer than its longest texel, so a point moves at most the sum over the planes of
/// the longest displacement its lookups can touch.
pub struct WarpReach {
    /// Anywhere: per plane the longest displacement, summed.
    pub bound: f32,
    /// Per plane and pair of cell indices along the plane's two axes (`[plane][b][a]`, the axes as the planes'
    /// lookups take them), the longest displacement of the texels that lookups of points there can touch.
    pub cells: Vec<f32>,
}

impl WarpReach {
    /// The reach of `blended` (for `asset`).
    pub fn new(asset: &HeadAsset, blended: &[Vec4]) -> Self {
        let m = asset.motion_resolution;
        let half = asset.half_extent;
        let spans: Vec<(usize, usize)> = (0..CELLS).map(|i| footprint(i, m)).collect();
        let mut cells = vec![0.0f32; PLANES * CELLS * CELLS];
        let mut planes = [0.0f32; PLANES];
        for (k, longest) in cells.iter_mut().enumerate() {
            let (plane, b, a) = (k / (CELLS * CELLS), k / CELLS % CELLS, k % CELLS);
            let ((x0, x1), (y0, y1)) = (spans[a], spans[b]);
            for y in y0..=y1 {
                for x in x0..=x1 {
                    let d = blended[(plane * m + y) * m + x];
                    *longest = longest.max((d.truncate() * half).length());
                }
            }
            planes[plane] = planes[plane].max(*longest);
        }
        Self {
            bound: planes.iter().sum(),
            cells,
        }
    }

    /// How far the motion moves points of `cell` (x, y, z indices) at most.
    pub fn at(&self, [x, y, z]: [usize; 3]) -> f32 {
        let n = CELLS;
        self.cells[y * n + x] + self.cells[(n + z) * n + x] + self.cells[(2 * n + y) * n + z]
    }
}

/// The motion code applied to the bases (`blend` in the shader): one displacement and opening per motion-basis
/// texel, then one shade per texel (in x).
pub fn blend_bases(asset: &HeadAsset, motion_code: &[f32]) -> Vec<Vec4> {
    let m = asset.motion_resolution;
    let texels = PLANES * m * m;
    let mut blended = vec![Vec4::ZERO; 2 * texels];
    let (displacement, shade) = blended.split_at_mut(texels);
    for k in 0..asset.basis_count {
        let weight = motion_code.get(k).copied().unwrap_or(0.0);
        if weight == 0.0 {
            continue;
        }
        for t in 0..texels {
            let base = (k * texels + t) * BASIS_COMPONENTS;
            let v = &asset.motion_bases[base..base + BASIS_COMPONENTS];
            displacement[t] +=
                weight * Vec4::new(v[0].into(), v[1].into(), v[2].into(), v[3].into());
            shade[t].x += weight * f32::from(v[4]);
        }
    }
    blended
}

struct Bilinear {
    index: [usize; 4],
    weight: [f32; 4],
}

fn bilinear(a: f32, b: f32, res: usize) -> Bilinear {
    let r = res as f32;
    let sx = ((a + 1.0) * 0.5 * r - 0.5).clamp(0.0, r - 1.0);
    let sy = ((b + 1.0) * 0.5 * r - 0.5).clamp(0.0, r - 1.0);
    // Both are clamped to 0 or more, where the cast's truncation is the floor (without a call to `floorf`, which
    // the baseline x86-64 target makes for `f32::floor`; it took a tenth of the renderer's time).
    let x0 = (sx as usize).min(res - 2);
    let y0 = (sy as usize).min(res - 2);
    let fx = sx - x0 as f32;
    let fy = sy - y0 as f32;
    let i00 = y0 * res + x0;
    Bilinear {
        index: [i00, i00 + 1, i00 + res, i00 + res + 1],
        weight: [
            (1.0 - fx) * (1.0 - fy),
            fx * (1.0 - fy),
            (1.0 - fx) * fy,
            fx * fy,
        ],
    }
}

fn plane_coords(u: Vec3, plane: usize) -> (f32, f32) {
    match plane {
        0 => (u.x, u.y),
        1 => (u.x, u.z),
        _ => (u.z, u.y),
    }
}

/// The blended displacement (xyz) and opening (w) at `u`: the first of `blend_bases`'s halves sampled.
pub fn displacement_at(asset: &HeadAsset, displacement: &[Vec4], u: Vec3) -> Vec4 {
    let m = asset.motion_resolution;
    let mut d = Vec4::ZERO;
    for plane in 0..PLANES {
        let (a, b) = plane_coords(u, plane);
        let s = bilinear(a, b, m);
        let offset = plane * m * m;
        for (index, weight) in s.index.iter().zip(s.weight) {
            d += weight * displacement[offset + index];
        }
    }
    d
}

/// The factor by which the blended shade scales the colour at `u` (`shade_at` in the shader).
fn shade_at(asset: &HeadAsset, blended: &[Vec4], u: Vec3) -> f32 {
    let texels = PLANES * asset.motion_resolution * asset.motion_resolution;
    let shade = displacement_at(asset, &blended[texels..], u).x;
    shade.clamp(SHADE_RANGE[0], SHADE_RANGE[1]).exp()
}

/// Density (per metre) in w and linear colour in xyz at canonical point `u` (`decode` in the shader).
pub fn decode(asset: &HeadAsset, u: Vec3) -> Vec4 {
    decode_features(asset, |i| f32::from(asset.triplane[i]), u)
}

/// [`decode`] with the tri-plane's values read through `feature` (index into [`HeadAsset::triplane`]).
fn decode_features(asset: &HeadAsset, feature: impl Fn(usize) -> f32, u: Vec3) -> Vec4 {
    let channels = asset.channels;
    let feat = summed_features(asset, feature, u);
    let decoder = &asset.decoder;
    let width = decoder.hidden;
    let mut hidden = [0.0f32; MAX_HIDDEN];
    for (h, out) in hidden.iter_mut().enumerate().take(width) {
        let row = &decoder.w1[h * channels..(h + 1) * channels];
        let s = row
            .iter()
            .zip(&feat[..channels])
            .fold(decoder.b1[h], |s, (w, f)| s + w * f);
        *out = s.max(0.0);
    }
    let mut out = [0.0f32; DECODER_OUTPUTS];
    for (o, value) in out.iter_mut().enumerate() {
        let row = &decoder.w2[o * width..(o + 1) * width];
        *value = row
            .iter()
            .zip(&hidden[..width])
            .fold(decoder.b2[o], |s, (w, h)| s + h * w);
    }
    let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
    Vec4::new(
        sigmoid(out[1]),
        sigmoid(out[2]),
        sigmoid(out[3]),
        out[0].max(0.0),
    )
}

/// The decoder's input at canonical point `u`: the three planes' features, bilinear, summed.
fn summed_features(
    asset: &HeadAsset,
    feature: impl Fn(usize) -> f32,
    u: Vec3,
) -> [f32; MAX_CHANNELS] {
    let r = asset.triplane_resolution;
    let channels = asset.channels;
    let mut feat = [0.0f32; MAX_CHANNELS];
    for plane in 0..PLANES {
        let (a, b) = plane_coords(u, plane);
        let s = bilinear(a, b, r);
        let offset = plane * r * r;
        for (c, value) in feat.iter_mut().enumerate().take(channels) {
            let texel = |i: usize| feature((offset + s.index[i]) * channels + c);
            *value += s.weight[0] * texel(0)
                + s.weight[1] * texel(1)
                + s.weight[2] * texel(2)
                + s.weight[3] * texel(3);
        }
    }
    feat
}

/// WGSL's `smoothstep`.
fn smoothstep(edge0: f32, edge1: f32, x: f32) -> f32 {
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// What shows inside the mouth where the lips part (`mouth_colour` in the shader) at head-space point `p`
/// (metres), from the blended warp there (its y is the gap the bases open on the point's side of the lips' line,
/// normalised by the box's half height `half_height`) and the head's mouth (`March::mouth`): the interior, and the
/// synthesized upper teeth that hang from the lips' line (see [`crate::identity::Mouth`]).
fn mouth_colour(p: Vec3, warp: Vec4, half_height: f32, mouth: [f32; 4]) -> Vec3 {
    let [centre_x, line_y, half_width, teeth] = mouth;
    let across = (p.x - centre_x).abs();
    let below = line_y - p.y;
    // The tooth at `across`, the distance to its nearer side and how far it reaches below the line.
    let mut inner = 0.0;
    let mut tooth = None;
    for (width, length) in TOOTH_WIDTHS.iter().zip(TOOTH_LENGTHS) {
        if across < inner + width {
            tooth = Some(((across - inner).min(inner + width - across), length));
            break;
        }
        inner += width;
    }
    let Some((side, length)) = tooth else {
        return Vec3::from_array(MOUTH_INTERIOR);
    };
    // Each tooth's lower corners are rounded off and the seams between teeth are shaded.
    let rounded = 1.0 - 0.35 * (1.0 - smoothstep(0.0, 0.0015, side));
    let reach = TEETH_SHOW * length * rounded;
    let band = 1.0 - smoothstep(reach - 0.0005, reach, below);
    let seam = 1.0 - 0.45 * (1.0 - smoothstep(0.0, 0.0007, side));
    // Towards the corners the row turns away into the mouth's shadow, as it does in thin gaps.
    let recede = 1.0 - 0.75 * smoothstep(0.3 * half_width, 0.95 * half_width, across);
    let lit = 0.25 + 0.75 * smoothstep(0.0, TEETH_LIT_GAP, warp.y.abs() * half_height);
    // Shadow is the mouth's interior showing through.
    Vec3::from_array(MOUTH_INTERIOR)
        .lerp(Vec3::from_array(TEETH), teeth * band * seam * recede * lit)
}

/// The plates of a portrait (`plate_texel`, `plate_at`, `behind_head` in the shader).
struct Plates<'a> {
    layers: &'a PortraitLayers,
}

fn srgb_to_linear(c: f32) -> f32 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

impl<'a> Plates<'a> {
    fn new(layers: &'a PortraitLayers) -> Self {
        Self { layers }
    }

    /// Premultiplied linear RGBA of texel (x, y) of plate k (0 face, 1 body, 2 background), clamped.
    fn texel(&self, k: usize, x: i64, y: i64) -> Vec4 {
        let (w, h) = (self.layers.width as i64, self.layers.height as i64);
        let i = (y.clamp(0, h - 1) * w + x.clamp(0, w - 1)) as usize;
        let plate = match k {
            0 => &self.layers.face,
            1 => &self.layers.body,
            _ => &self.layers.background,
        };
        let [r, g, b, a] = plate[i].to_le_bytes().map(|v| f32::from(v) / 255.0);
        Vec4::new(
            srgb_to_linear(r) * a,
            srgb_to_linear(g) * a,
            srgb_to_linear(b) * a,
            a,
        )
    }

    /// How much of the head's colour at plate point q comes from the face plate: all of it unless the surface
    /// there (the nearest texel) is steep and the head turned by an angle whose sine is `turn`.
    fn photo_weight(&self, q: Vec2, turn: f32) -> f32 {
        let steepness = self.byte(&self.layers.steepness, q) * STEEPNESS_UNIT;
        1.0 - smoothstep(SMEAR[0], SMEAR[1], steepness * turn)
    }

    /// The byte of `plane` at the texel nearest plate point q.
    fn byte(&self, plane: &[u8], q: Vec2) -> f32 {
        let (w, h) = (self.layers.width as i64, self.layers.height as i64);
        // The cast truncates: clamped to 0 or more first, that is the floor.
        let x = (q.x.max(0.0) as i64).min(w - 1);
        let y = (q.y.max(0.0) as i64).min(h - 1);
        f32::from(plane[(y * w + x) as usize])
    }

    /// Plate k at plate point q, bilinear, premultiplied.
    fn at(&self, k: usize, q: Vec2) -> Vec4 {
        let s = q - 0.5;
        let f = s.floor();
        let t = s - f;
        let (x, y) = (f.x as i64, f.y as i64);
        let top = self.texel(k, x, y).lerp(self.texel(k, x + 1, y), t.x);
        let bottom = self
            .texel(k, x, y + 1)
            .lerp(self.texel(k, x + 1, y + 1), t.x);
        top.lerp(bottom, t.y)
    }

    /// The body plate (its neck's top and the hair around the head moved with the head) over the background plate
    /// at plate point q.
    fn behind_head(&self, march: &MarchUniform, q: Vec2) -> Vec4 {
        let [jaw_y, ring_y, centre_x, half_width] = march.neck;
        let neck = Neck {
            pivot: Vec3::ZERO,
            jaw_y,
            ring_y,
            centre_x,
            half_width,
        };
        let shift = Vec2::new(march.hair[0], march.hair[1]);
        // The body plate's point that the motion takes to q: q moved back by the share of the motion that the
        // point follows, read where the point sat (two fixed-point steps), so that hair moving out past the
        // head's outline at rest keeps up with the head.
        let source = |p: Vec2| {
            let hair = self.byte(&self.layers.follow, p) / 255.0;
            let weight = (march.neck_x[3] * neck.follow(p)).max(hair);
            let row = |r: [f32; 4]| r[0] * p.x + r[1] * p.y + r[2];
            let moved = Vec2::new(row(march.neck_x), row(march.neck_y));
            q - weight * (moved - p) - hair * shift
        };
        let body = self.at(1, source(source(q)));
        let background = self.at(2, q);
        body + (1.0 - body.w) * background
    }
}

/// Canonical point `u` (normalised) with the eyes turned by `march.gaze` ([`Eye::source`]).
fn gazed(asset: &HeadAsset, march: &MarchUniform, u: Vec3) -> Vec3 {
    let h = asset.half_extent.truncate();
    let eye = |[x, y, half_width, half_height]: [f32; 4], radius: f32| Eye {
        centre: Vec2::new(x, y),
        half_size: Vec2::new(half_width, half_height),
        radius,
    };
    let [yaw_left, pitch_left, yaw_right, pitch_right] = march.gaze;
    let p = eye(march.eye_left, march.eyeballs[0])
        .source(u.truncate() * h, Vec2::new(yaw_left, pitch_left));
    let p = eye(march.eye_right, march.eyeballs[1]).source(p, Vec2::new(yaw_right, pitch_right));
    (p / h).extend(u.z)
}

fn march_ray(
    renderer: &ReferenceRenderer,
    (displacement, reach): (&[Vec4], &WarpReach),
    march: &MarchUniform,
    plates: Option<&Plates>,
    px: usize,
    py: usize,
) -> Vec4 {
    let (asset, space) = (renderer.asset, &renderer.space);
    let (width, height) = (march.width() as f32, march.height() as f32);
    let tan_half = march.origin[3];
    let x = ((px as f32 + 0.5) / width * 2.0 - 1.0) * tan_half * march.right[3];
    let y = (1.0 - (py as f32 + 0.5) / height * 2.0) * tan_half;
    let axis = |v: [f32; 4]| Vec3::new(v[0], v[1], v[2]);
    let dir = (axis(march.forward) + x * axis(march.right) + y * axis(march.up)).normalize();
    let origin = axis(march.origin);
    let half_extent = axis(march.half_extent);

    let safe = Vec3::select(dir.abs().cmplt(Vec3::splat(1e-9)), Vec3::splat(1e-9), dir);
    let t0 = (-half_extent - origin) / safe;
    let t1 = (half_extent - origin) / safe;
    let t_near = t0.min(t1).max_element().max(0.0);
    let t_far = t0.max(t1).min_element();

    let step = march.up[3];
    let stop = march.forward[3];
    let density_factor = march.frame[3];
    let mut color = Vec3::ZERO;
    let mut transmittance = 1.0f32;
    let mut coverage = 0.0f32;
    let skipping = march.half_extent[3] >= 0.0;
    if t_near < t_far {
        let mut i = 0;
        while i < march.size[2] {
            let t = t_near + (i as f32 + 0.5) * step;
            if t > t_far {
                break;
            }
            if skipping {
                let cell = cell_of(origin + t * dir, half_extent);
                let clear = space.clearance[cell_index(cell)];
                // Nothing within `free` of this sample can show: skip every sample nearer than that.
                let free = clear - reach.bound;
                if free > 0.0 {
                    i += ((free / step).ceil().min(march.size[2] as f32) as u32).max(1);
                    continue;
                }
                // This sample shows nothing if the motion around it cannot reach the head.
                if clear > reach.at(cell) {
                    i += 1;
                    continue;
                }
            }
            i += 1;
            let u = (origin + t * dir) / half_extent;
            let warp = displacement_at(asset, displacement, u);
            let canonical = gazed(asset, march, u + warp.truncate());
            if canonical.abs().cmpgt(Vec3::ONE).any() {
                continue;
            }
            let sample = if renderer.closed_form && march.closed_form_allowed() {
                closed_form_decode(&summed_features(asset, |i| renderer.features[i], canonical))
            } else {
                decode_features(asset, |i| renderer.features[i], canonical)
            };
            let alpha = 1.0 - (-sample.w * density_factor * step).exp();
            if alpha <= 0.0 {
                continue;
            }
            let (mut rgb, mut matte) = (sample.truncate(), 1.0);
            if let Some(plates) = plates {
                // The photo's own colour and the head's matte where this point sat at rest; where the surface
                // is steep and the head turned, the head's own colour and opacity instead.
                let p = canonical * half_extent;
                let q = Vec2::new(
                    march.frame[0] + p.x * march.frame[2],
                    march.frame[1] - p.y * march.frame[2],
                );
                let face = plates.at(0, q);
                let weight = plates.photo_weight(q, march.neck_y[3]);
                let photo = if face.w > 1e-3 {
                    face.truncate() / face.w
                } else {
                    rgb
                };
                matte = 1.0 + (face.w - 1.0) * weight;
                rgb = rgb.lerp(photo, weight);
            }
            rgb *= shade_at(asset, displacement, u);
            let interior = smoothstep(OPENING_START, OPENING_FULL, warp.w);
            if interior > 0.0 {
                let mouth = mouth_colour(u * half_extent, warp, half_extent.y, march.mouth);
                rgb = rgb.lerp(mouth, interior);
            }
            color += transmittance * alpha * matte * rgb;
            coverage += transmittance * alpha * matte;
            transmittance *= 1.0 - alpha;
            if transmittance < stop {
                break;
            }
        }
    }
    match plates {
        Some(plates) => {
            let q = Vec2::new(
                march.crop[0] + (px as f32 + 0.5) * march.crop[2],
                march.crop[1] + (py as f32 + 0.5) * march.crop[3],
            );
            color.extend(coverage) + (1.0 - coverage) * plates.behind_head(march, q)
        }
        None => color.extend(1.0 - transmittance),
    }
}
