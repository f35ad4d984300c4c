//! The photo's layers: what the portrait display ([`HeadDisplay::Portrait`](crate::HeadDisplay::Portrait))
//! composites the rendered head over, so that the whole photo talks and not only a mask of the face.
//!
//! Built once per portrait beside the head asset (and cached with it), at the portrait's own resolution (its long
//! side at most [`MAX_LAYER_SIDE`]), from the person mask, the face landmarks and the head's silhouette:
//! - **segments**: background, hair, face, skin (neck and body) and clothes, from the person mask, the landmarks'
//!   hull, the head's silhouette and a colour model of this face's own skin ([`Segment`]);
//! - **face plate**: the photo, and in alpha the head's matte: how much the rendered head covers (the person mask,
//!   feathered inside the head's silhouette). The renderer colours the head from it at the photo's full
//!   resolution and scales the head's coverage by the matte, both looked up where each ray meets the head at
//!   rest, so that they move with the head; where the head's surface is steep ([`PortraitLayers::steepness`]) and
//!   the head turns, the head's own colours take over;
//! - **body plate**: the person without the head (the photo, alpha the person mask with gaps of a few pixels
//!   closed, [`BODY_CLOSE_PX`]); behind the head, opaque: above the eyes the photo itself, below them the neck
//!   continued upward (each column's top neck colour, in the jaw's shadow) with the hair's colour beside it, and
//!   a rim of the photo a few pixels into the silhouette, so that an open jaw or a turned head uncovers the
//!   person, never background or a hole. The head's silhouette and the hair around it move with the head, the
//!   neck's top partly ([`Neck`], [`PortraitLayers::follow`]); the neck ring stays;
//! - **background plate**: the photo where the person mask is unsure or says background, filled from the sure
//!   background (push–pull) where the person stands and behind the whole head, so that no ghost of the person
//!   or of the head's outline remains.
//!
//! Where the mask is unsure ([`PERSON_COVER`]) outside the head, the body lets the background plate, which holds
//! the photo there, show through; inside the head's silhouette the opaque body plate holds the photo: the frame
//! at rest is the photo.
//!
//! Plates are packed RGBA8 (`r | g << 8 | b << 16 | a << 24`, sRGB colour, straight alpha), as the shader unpacks
//! them.

use std::sync::Arc;

use bevy::asset::Asset;
use bevy::log::info;
use bevy::math::{URect, UVec2, Vec2, Vec3};
use bevy::reflect::TypePath;
use image::{DynamicImage, RgbaImage, imageops::FilterType};
use serde::{Deserialize, Serialize};

use super::construct::{FaceHull, HeadSurfaces, PersonMask};
use super::landmarks::{FaceLandmarks, landmark_index as lm};
use super::maps::{distance_inside, median_colour, mix, push_pull, smoothstep, srgb_to_linear};
use super::{HeadAsset, IdentityError, PortraitFrame};

/// Longest side of the layers, pixels: larger portraits are downscaled to it.
pub const MAX_LAYER_SIDE: u32 = 1024;
/// The head's matte rises from 0 to the person mask between these distances inside the head's silhouette, in
/// plate pixels (the alpha feather of the seam).
pub const MATTE_FEATHER_PX: [f32; 2] = [0.5, 2.0];
/// The body plate keeps the person's pixels this far into the head's silhouette, plate pixels, so that the matte's
/// feather shows the photo at rest.
pub const BODY_RIM_PX: f32 = 2.0;
/// How far the photo reaches into the head's silhouette below the eyes in the body plate, face heights (at least
/// [`BODY_RIM_PX`]): where a turned head's outline draws in, the photo's own edge shows, not the neck's fill.
pub const BODY_UNDERLAY: f32 = 0.1;
/// Gaps in the person narrower than twice this many plate pixels are closed in the body plate.
pub const BODY_CLOSE_PX: usize = 2;
/// The person mask from which the head and body cover the photo fully (below the first value not at all): where
/// the mask is unsure, the background plate, which holds the photo there, shows through.
pub const PERSON_COVER: [f32; 2] = [0.3, 0.6];
/// The unit of [`PortraitLayers::steepness`]: metres of depth per metre across.
pub const STEEPNESS_UNIT: f32 = 1.0 / 32.0;
/// Where a surface's steepness times the sine of the head's turn from the photo's pose passes from the first value
/// to the second, the head's colour turns from the photo to its own.
pub const SMEAR: [f32; 2] = [0.25, 0.6];
/// How far below the chin the neck ring lies (where the neck stops following the head), in face heights.
pub const NECK_LENGTH: f32 = 0.6;
/// Beyond the head's silhouette the hair moves wholly with the head up to the first distance and not at all from
/// the second, in face heights (forehead to chin).
pub const HAIR_FOLLOW: [f32; 2] = [0.04, 0.2];
/// How much darker the neck continued behind the jaw is than the neck's top in the photo (the jaw's shadow).
pub const NECK_SHADE: f32 = 0.85;
/// How far the neck's top follows the head's motion (0 = the neck stays, 1 = it moves with the head); the
/// neck ring, lower down, never moves.
pub const NECK_FOLLOW: f32 = 0.6;
/// How far in front of the head's pivot the neck's front lies, metres (where the neck's top follows the head).
pub const NECK_FRONT: f32 = 0.04;

/// What a pixel of the portrait shows ([`PortraitLayers::segments`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Segment {
    /// Not the person.
    Background = 0,
    /// The head outside the face: hair, skull, ears.
    Hair = 1,
    /// The face (inside the landmarks' hull).
    Face = 2,
    /// Skin below the head: neck, shoulders, arms (coloured like this face's skin).
    Skin = 3,
    /// The rest of the person: clothes, and whatever the person holds.
    Clothes = 4,
}

impl Segment {
    /// All segments, in value order.
    pub const ALL: [Segment; 5] = [
        Segment::Background,
        Segment::Hair,
        Segment::Face,
        Segment::Skin,
        Segment::Clothes,
    ];

    /// The segment of a stored value (unknown values read as background).
    pub fn from_u8(value: u8) -> Self {
        Self::ALL
            .get(usize::from(value))
            .copied()
            .unwrap_or(Segment::Background)
    }
}

/// Where the head meets the neck in the portrait: how the head turns and how far the neck follows it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Neck {
    /// The point the head turns about, head space, metres (between the ears, at the mouth's height).
    pub pivot: Vec3,
    /// Plate row of the jaw line: from here up the neck follows the head by [`NECK_FOLLOW`].
    pub jaw_y: f32,
    /// Plate row of the neck ring (near the collar): from here down nothing moves.
    pub ring_y: f32,
    /// Plate column of the neck's middle.
    pub centre_x: f32,
    /// Half the neck's width, plate pixels.
    pub half_width: f32,
}

impl Neck {
    /// How far the neck at plate point `q` follows the head, 0..1 (times [`NECK_FOLLOW`] for the share of the
    /// head's motion): all of it at the jaw line and above, within the neck's width, falling smoothly to nothing at
    /// the neck ring and a neck's half width beside the neck.
    pub fn follow(&self, q: Vec2) -> f32 {
        let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
        let down = ((self.ring_y - q.y) / (self.ring_y - self.jaw_y).max(1e-3)).clamp(0.0, 1.0);
        let across = (((q.x - self.centre_x).abs() - self.half_width) / self.half_width.max(1e-3))
            .clamp(0.0, 1.0);
        smooth(down) * (1.0 - smooth(across))
    }
}

/// A replacement for the background plate ([`PortraitLayers::replace_background`]).
#[derive(Clone, Debug)]
pub enum Background {
    /// One colour, sRGB with straight alpha (alpha 0 leaves the background transparent).
    Colour([u8; 4]),
    /// An image, scaled to cover the plate and centred (cropped where its aspect differs).
    Image(DynamicImage),
}

/// The photo's layers (see the module docs). Built by [`build_layers`], cached with the head asset.
#[derive(Asset, TypePath, Clone, Debug, PartialEq)]
pub struct PortraitLayers {
    /// Size of the portrait the layers were built from, pixels.
    pub portrait_size: UVec2,
    /// Plate width, pixels.
    pub width: u32,
    /// Plate height, pixels.
    pub height: u32,
    /// Plate pixels ↔ head space (the head asset's frame, at the plates' scale).
    pub frame: PortraitFrame,
    /// The photo (sRGB) and the head's matte (alpha), packed RGBA8, row-major.
    pub face: Arc<[u32]>,
    /// The body plate: colour (sRGB) and coverage (alpha), packed RGBA8, row-major.
    pub body: Arc<[u32]>,
    /// The background plate, packed RGBA8 (alpha 255 unless the portrait or a replacement is transparent).
    pub background: Arc<[u32]>,
    /// How steeply the head's surface turns away from the photo's camera outside the face, one byte per plate
    /// pixel (|∇depth| in units of [`STEEPNESS_UNIT`], 0 in the face), row-major. Seen from another angle than
    /// the photo's, a steep surface would smear the photo into streaks along it: the renderer turns from the
    /// photo to the head's own (softened) colours there, the more so the further the head turns.
    pub steepness: Arc<[u8]>,
    /// How far the body plate moves with the head, one byte per plate pixel (255: as the head moves), row-major:
    /// all of it inside the head's silhouette and the hair around it, fading out between [`HAIR_FOLLOW`] face
    /// heights beyond the silhouette and towards the chin, so that no strand of it stays behind when the head
    /// turns. The renderer moves it at the depth of the head's pivot (`MarchUniform::hair`), where a turn moves
    /// the head's outline least.
    pub follow: Arc<[u8]>,
    /// One [`Segment`] value per plate pixel, row-major.
    pub segments: Arc<[u8]>,
    /// The neck: the head's pivot and the neck's extent.
    pub neck: Neck,
    /// The default framing of a portrait display: the head and shoulders, plate pixels.
    pub head_and_shoulders: URect,
}

/// Packs an sRGB colour and an alpha, all 0..1, as the shader's `unpack4x8unorm` reads them.
pub fn pack_rgba(rgb: [f32; 3], alpha: f32) -> u32 {
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u32;
    byte(rgb[0]) | byte(rgb[1]) << 8 | byte(rgb[2]) << 16 | byte(alpha) << 24
}

/// The four bytes of a packed pixel: r, g, b, a.
pub fn unpack_rgba(pixel: u32) -> [u8; 4] {
    pixel.to_le_bytes()
}

fn linear_to_srgb(c: f32) -> f32 {
    let c = c.clamp(0.0, 1.0);
    if c <= 0.003_130_8 {
        c * 12.92
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    }
}

impl PortraitLayers {
    /// Number of plate pixels.
    pub fn pixels(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// Checks that every plate has one value per pixel and the sizes are usable.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.pixels();
        if self.width == 0 || self.height == 0 || self.width.max(self.height) > MAX_LAYER_SIDE {
            return Err(format!(
                "portrait layers of {}×{} pixels: each side must be within 1..={MAX_LAYER_SIDE}",
                self.width, self.height
            ));
        }
        for (what, len) in [
            ("face", self.face.len()),
            ("body", self.body.len()),
            ("background", self.background.len()),
            ("segments", self.segments.len()),
            ("steepness", self.steepness.len()),
            ("follow", self.follow.len()),
        ] {
            if len != n {
                return Err(format!(
                    "portrait layers: the {what} plate has {len} values for {n} pixels"
                ));
            }
        }
        if !(self.frame.scale > 0.0 && self.frame.scale.is_finite()) {
            return Err(format!(
                "portrait layers: the frame's scale must be positive, got {}",
                self.frame.scale
            ));
        }
        Ok(())
    }

    /// Replaces the background plate (what shows where the person is not), e.g. with a colour or another picture.
    pub fn replace_background(&mut self, background: &Background) {
        let (w, h) = (self.width, self.height);
        let plate: Vec<u32> = match background {
            Background::Colour([r, g, b, a]) => {
                vec![u32::from_le_bytes([*r, *g, *b, *a]); self.pixels()]
            }
            Background::Image(image) => {
                let filled = image.resize_to_fill(w, h, FilterType::Triangle).to_rgba8();
                filled.pixels().map(|p| u32::from_le_bytes(p.0)).collect()
            }
        };
        self.background = Arc::from(plate);
    }

    /// The plates' box showing the portrait's pixels `rect`, clamped to the plates (at least one pixel).
    pub fn plate_rect(&self, rect: URect) -> URect {
        let scale = Vec2::new(self.width as f32, self.height as f32)
            / self.portrait_size.max(UVec2::ONE).as_vec2();
        let size = UVec2::new(self.width, self.height);
        let min = (rect.min.as_vec2() * scale)
            .round()
            .as_uvec2()
            .min(size - UVec2::ONE);
        let max = (rect.max.as_vec2() * scale)
            .round()
            .as_uvec2()
            .min(size)
            .max(min + UVec2::ONE);
        URect::from_corners(min, max)
    }

    /// The plates' whole box.
    pub fn whole(&self) -> URect {
        URect::new(0, 0, self.width, self.height)
    }

    /// The plates as the shader reads them: face, body, background (one u32 per pixel each), then the steepness
    /// and the follow weights (one byte per pixel each, four to a u32).
    pub fn gpu_words(&self) -> Vec<u32> {
        let bytes = |plane: &Arc<[u8]>| {
            plane
                .chunks(4)
                .map(|bytes| {
                    let mut word = [0u8; 4];
                    word[..bytes.len()].copy_from_slice(bytes);
                    u32::from_le_bytes(word)
                })
                .collect::<Vec<u32>>()
        };
        [&self.face, &self.body, &self.background]
            .iter()
            .flat_map(|plate| plate.iter().copied())
            .chain(bytes(&self.steepness))
            .chain(bytes(&self.follow))
            .collect()
    }

    /// Bytes the plates occupy on the GPU.
    pub fn gpu_bytes(&self) -> usize {
        3 * 4 * self.pixels() + 2 * 4 * self.pixels().div_ceil(4)
    }

    /// How many plate pixels each segment covers, in [`Segment::ALL`]'s order.
    pub fn segment_counts(&self) -> [usize; 5] {
        let mut counts = [0; 5];
        for &s in self.segments.iter() {
            counts[usize::from(s).min(4)] += 1;
        }
        counts
    }
}

/// A plate-sized map of floats or colours.
struct Plate {
    width: usize,
    height: usize,
}

impl Plate {
    fn len(&self) -> usize {
        self.width * self.height
    }

    /// Minimum of `values` over a square window of `radius` pixels.
    fn min_filter(&self, values: &[f32], radius: usize) -> Vec<f32> {
        let negated: Vec<f32> = values.iter().map(|v| -v).collect();
        self.max_filter(&negated, radius)
            .iter()
            .map(|v| -v)
            .collect()
    }

    /// Maximum of `values` over a square window of `radius` pixels (separable).
    fn max_filter(&self, values: &[f32], radius: usize) -> Vec<f32> {
        let (w, h) = (self.width, self.height);
        let mut rows = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let (lo, hi) = (x.saturating_sub(radius), (x + radius).min(w - 1));
                rows[y * w + x] = values[y * w + lo..=y * w + hi]
                    .iter()
                    .copied()
                    .fold(f32::MIN, f32::max);
            }
        }
        let mut out = vec![0.0f32; w * h];
        for y in 0..h {
            let (lo, hi) = (y.saturating_sub(radius), (y + radius).min(h - 1));
            for x in 0..w {
                out[y * w + x] = (lo..=hi).map(|k| rows[k * w + x]).fold(f32::MIN, f32::max);
            }
        }
        out
    }
}

/// Builds the layers of `portrait` (any colour type; transparency counts as not-the-person), whose head
/// `asset` was built by [`build_head`](super::build_head) with `frame`, from its `landmarks` and person mask (one
/// value per portrait pixel, as from [`person_mask`](super::person_mask)).
///
/// Errors: [`IdentityError::Layers`] when the asset was not made by `build_head` or the mask has the wrong size.
pub fn build_layers(
    portrait: &DynamicImage,
    landmarks: &FaceLandmarks,
    mask: &[f32],
    asset: &HeadAsset,
    frame: &PortraitFrame,
) -> Result<PortraitLayers, IdentityError> {
    let (w0, h0) = (portrait.width(), portrait.height());
    if mask.len() != w0 as usize * h0 as usize {
        return Err(IdentityError::Layers(format!(
            "the person mask has {} values for a {w0}×{h0} portrait",
            mask.len()
        )));
    }
    let surfaces = HeadSurfaces::of(asset).ok_or_else(|| {
        IdentityError::Layers("the head asset was not built from a portrait".into())
    })?;
    let shrink = (MAX_LAYER_SIDE as f32 / w0.max(h0) as f32).min(1.0);
    let (w, h) = (
        ((w0 as f32 * shrink).round() as u32).max(1),
        ((h0 as f32 * shrink).round() as u32).max(1),
    );
    let rgba: RgbaImage = if (w, h) == (w0, h0) {
        portrait.to_rgba8()
    } else {
        image::imageops::resize(&portrait.to_rgba8(), w, h, FilterType::Triangle)
    };
    let plate = Plate {
        width: w as usize,
        height: h as usize,
    };
    let n = plate.len();
    let at = |i: usize| {
        Vec2::new(
            (i % plate.width) as f32 + 0.5,
            (i / plate.width) as f32 + 0.5,
        )
    };
    let pframe = PortraitFrame {
        origin: frame.origin * shrink,
        scale: frame.scale / shrink,
        depth_origin: frame.depth_origin * shrink,
    };
    let head_xy = |p: Vec2| pframe.image_to_head(p);
    let person_mask = PersonMask {
        values: mask,
        width: w0,
        height: h0,
    };
    // The person: the mask (at the plate's pixel centres), less whatever the portrait makes transparent.
    let person: Vec<f32> = (0..n)
        .map(|i| {
            let alpha = f32::from(rgba.as_raw()[i * 4 + 3]) / 255.0;
            person_mask.at(at(i) / shrink) * alpha
        })
        .collect();
    let photo: Vec<[f32; 3]> = rgba
        .pixels()
        .map(|p| [0, 1, 2].map(|c| srgb_to_linear(p.0[c])))
        .collect();

    let face: Vec<Vec3> = landmarks.points.iter().map(|p| frame.to_head(*p)).collect();
    let hull = FaceHull::new(&face);
    let px = 1.0 / pframe.scale; // plate pixels per metre
    let in_face: Vec<f32> = (0..n)
        .map(|i| smoothstep(0.0, 2.0 / px, hull.inside(head_xy(at(i)))))
        .collect();
    // The head's silhouette at rest: where the constructed head has both surfaces.
    let r = surfaces.resolution;
    let he = surfaces.half_extent;
    // The surfaces' texel under plate pixel i, if the head's box reaches there.
    let texel = |i: usize| {
        let p = head_xy(at(i));
        let col = ((p.x / he.x + 1.0) * 0.5 * r as f32).floor();
        let row = ((1.0 - p.y / he.y) * 0.5 * r as f32).floor();
        ((0.0..r as f32).contains(&col) && (0.0..r as f32).contains(&row))
            .then(|| row as usize * r + col as usize)
    };
    let silhouette: Vec<bool> = (0..n)
        .map(|i| texel(i).is_some_and(|t| surfaces.depths[t].is_some()))
        .collect();
    let inside = distance_inside(&silhouette, (plate.width, plate.height), Vec2::ONE, false);
    let slopes = front_slopes(&surfaces);
    let steepness: Vec<u8> = (0..n)
        .map(|i| {
            // Bilinear between the surfaces' texel centres: the nearest texel's value would step at every texel
            // edge, and the turned head's colour would change in stairs.
            let p = head_xy(at(i));
            let last = (r - 1) as f32;
            let col = ((p.x / he.x + 1.0) * 0.5 * r as f32 - 0.5).clamp(0.0, last);
            let row = ((1.0 - p.y / he.y) * 0.5 * r as f32 - 0.5).clamp(0.0, last);
            let (c0, r0) = (col.floor() as usize, row.floor() as usize);
            let (c1, r1) = ((c0 + 1).min(r - 1), (r0 + 1).min(r - 1));
            let (tc, tr) = (col.fract(), row.fract());
            let top = slopes[r0 * r + c0] + (slopes[r0 * r + c1] - slopes[r0 * r + c0]) * tc;
            let bottom = slopes[r1 * r + c0] + (slopes[r1 * r + c1] - slopes[r1 * r + c0]) * tc;
            let slope = (top + (bottom - top) * tr) * (1.0 - in_face[i]);
            (slope / STEEPNESS_UNIT).round().clamp(0.0, 255.0) as u8
        })
        .collect();

    // Where the photo surely shows the person, and surely not.
    let window = ((0.006 * w.max(h) as f32).round() as usize).max(2);
    let person_min = plate.min_filter(&person, 2);
    let person_max = plate.max_filter(&person, window);
    let sure_person: Vec<f32> = (0..n)
        .map(|i| smoothstep(0.85, 0.97, person_min[i]).max(in_face[i]))
        .collect();
    let sure_background: Vec<f32> = (0..n)
        .map(|i| (1.0 - smoothstep(0.05, PERSON_COVER[0], person_max[i])) * (1.0 - in_face[i]))
        .collect();

    // The person's own colour everywhere near the person.
    let colour = fill(&photo, &sure_person, &plate).unwrap_or_else(|| photo.clone());
    let background = fill(&photo, &sure_background, &plate).unwrap_or_else(|| {
        info!(
            "talking_head: the portrait shows no background beside the person; the background plate is the \
             photo's mean colour"
        );
        let mean = photo
            .iter()
            .fold([0.0f32; 3], |a, c| [a[0] + c[0], a[1] + c[1], a[2] + c[2]])
            .map(|v| v / n.max(1) as f32);
        vec![mean; n]
    });

    // A transparent portrait keeps its transparency behind the person.
    let alpha: Vec<[f32; 3]> = rgba
        .pixels()
        .map(|p| [f32::from(p.0[3]) / 255.0; 3])
        .collect();
    let background_alpha: Vec<f32> = if alpha.iter().all(|a| a[0] >= 1.0) {
        vec![1.0; n]
    } else {
        fill(&alpha, &sure_background, &plate)
            .unwrap_or(alpha)
            .iter()
            .map(|a| a[0])
            .collect()
    };

    // The neck: its middle and width from the face, its colour per column from the photo under the jaw.
    let points = &landmarks.points;
    let scaled = |i: usize| points[i].truncate() * shrink;
    let face_height = (scaled(lm::CHIN).y - scaled(lm::FOREHEAD).y).max(1.0);
    let face_width = scaled(lm::LEFT_FACE_SIDE).x - scaled(lm::RIGHT_FACE_SIDE).x;
    let chin = scaled(lm::CHIN);
    let neck = Neck {
        pivot: Vec3::new(
            0.0,
            0.5 * (face[lm::NOSE_TIP].y + face[lm::CHIN].y),
            face.iter().map(|p| p.z).sum::<f32>() / face.len() as f32 - 0.09,
        ),
        jaw_y: chin.y,
        ring_y: chin.y + NECK_LENGTH * face_height,
        centre_x: chin.x,
        half_width: 0.4 * face_width.abs().max(1.0),
    };
    let skin = median_colour((0..n).filter_map(|i| {
        let p = head_xy(at(i));
        (hull.inside(p) > 0.004 && p.y < face[lm::NOSE_TIP].y && p.y > face[lm::UPPER_LIP].y)
            .then_some(colour[i])
    }))
    .unwrap_or([0.3, 0.2, 0.15]);
    let neck_colour = neck_colours(
        &plate,
        &colour,
        &person,
        &silhouette,
        neck,
        face_height,
        skin,
    );

    let above_eyes = |i: usize| head_xy(at(i)).y > face[lm::RIGHT_EYE_OUTER].y;
    let hair = median_colour(
        (0..n)
            .filter(|&i| silhouette[i] && person[i] > 0.9 && in_face[i] <= 0.0 && above_eyes(i))
            .map(|i| colour[i]),
    )
    .unwrap_or(skin);
    let eyes_y = 0.5 * (scaled(lm::RIGHT_EYE_OUTER).y + scaled(lm::LEFT_EYE_OUTER).y);

    let rim_px = BODY_RIM_PX.max(BODY_UNDERLAY * face_height);
    // The hair around the head moves with it, down to the chin.
    let outside: Vec<bool> = silhouette.iter().map(|s| !s).collect();
    let from_head = distance_inside(&outside, (plate.width, plate.height), Vec2::ONE, false);
    let chin_y = scaled(lm::CHIN).y;
    let follow: Vec<u8> = (0..n)
        .map(|i| {
            let near = if silhouette[i] {
                1.0
            } else {
                1.0 - smoothstep(
                    HAIR_FOLLOW[0] * face_height,
                    HAIR_FOLLOW[1] * face_height,
                    from_head[i],
                )
            };
            let above_chin = 1.0 - smoothstep(chin_y - 0.15 * face_height, chin_y, at(i).y);
            (near * above_chin * 255.0).round() as u8
        })
        .collect();

    // The body's cover with gaps narrower than a few pixels closed (dilated, then eroded): a gap between strands
    // that the mask left open would show the still background through hair that moves with the head. The body
    // plate holds the photo there, so the frame at rest does not change.
    let cover: Vec<f32> = person
        .iter()
        .map(|&p| smoothstep(PERSON_COVER[0], PERSON_COVER[1], p))
        .collect();
    let closed = plate.min_filter(&plate.max_filter(&cover, BODY_CLOSE_PX), BODY_CLOSE_PX);
    let mut face_plate = Vec::with_capacity(n);
    let mut body_plate = Vec::with_capacity(n);
    let mut background_plate = Vec::with_capacity(n);
    for i in 0..n {
        let p = at(i);
        let srgb = |c: [f32; 3]| c.map(linear_to_srgb);
        // Head and body show the photo itself where the mask is sure enough; where it is not, the background
        // plate (the photo, there) shows through, so that the frame at rest is the photo.
        let person_cover = cover[i];
        let matte = person_cover.max(in_face[i])
            * smoothstep(MATTE_FEATHER_PX[0], MATTE_FEATHER_PX[1], inside[i]);
        face_plate.push(pack_rgba(srgb(photo[i]), matte));
        // The person outside the head, and a rim into it that the matte's feather shows at rest.
        let rim = person_cover * (1.0 - smoothstep(rim_px - 1.0, rim_px, inside[i]));
        let (body_colour, body_alpha) = if silhouette[i] {
            // Behind the head below the eyes: the neck in its columns, beside it the hair's colour above the nose
            // turning to the neck's below the chin.
            let below_eyes = smoothstep(eyes_y, eyes_y + 4.0, p.y);
            let column = (p.x as usize).min(plate.width - 1);
            let in_neck = 1.0
                - smoothstep(
                    neck.half_width - 2.0,
                    neck.half_width + 1.0,
                    (p.x - neck.centre_x).abs(),
                );
            let down = smoothstep(scaled(lm::NOSE_TIP).y, scaled(lm::CHIN).y, p.y);
            let beside = mix(hair, neck_colour[column], down);
            let hidden = mix(beside, neck_colour[column], in_neck);
            (mix(hidden, photo[i], rim.max(1.0 - below_eyes)), 1.0)
        } else {
            (photo[i], person_cover.max(closed[i]))
        };
        body_plate.push(pack_rgba(srgb(body_colour), body_alpha));
        let behind = if silhouette[i] { 1.0 } else { person_cover };
        background_plate.push(pack_rgba(
            srgb(mix(photo[i], background[i], behind)),
            background_alpha[i],
        ));
    }

    let segments = segment(
        &plate,
        &colour,
        &person,
        &silhouette,
        (&in_face, skin),
        above_eyes,
    );
    let head_and_shoulders =
        head_and_shoulders(UVec2::new(w, h), chin, scaled(lm::FOREHEAD), face_height);
    let layers = PortraitLayers {
        portrait_size: UVec2::new(w0, h0),
        width: w,
        height: h,
        frame: pframe,
        face: Arc::from(face_plate),
        body: Arc::from(body_plate),
        background: Arc::from(background_plate),
        steepness: Arc::from(steepness),
        follow: Arc::from(follow),
        segments: Arc::from(segments),
        neck,
        head_and_shoulders,
    };
    Ok(layers)
}

/// Steepness of the head's front surface per texel of its surfaces' grid: |∇depth| (metres per metre), by
/// central differences (one-sided at the silhouette's edge); 0 outside the head.
fn front_slopes(surfaces: &HeadSurfaces) -> Vec<f32> {
    let r = surfaces.resolution;
    let texel = surfaces.half_extent.truncate() * 2.0 / r as f32;
    let front = |row: usize, col: usize| surfaces.depths[row * r + col].map(|(front, _)| front);
    (0..r * r)
        .map(|i| {
            let (row, col) = (i / r, i % r);
            let Some(here) = front(row, col) else {
                return 0.0;
            };
            let (c0, c1) = (col.saturating_sub(1), (col + 1).min(r - 1));
            let (r0, r1) = (row.saturating_sub(1), (row + 1).min(r - 1));
            let at = |rr: usize, cc: usize| front(rr, cc).unwrap_or(here);
            let dx = (at(row, c1) - at(row, c0)) / (texel.x * (c1 - c0).max(1) as f32);
            let dy = (at(r1, col) - at(r0, col)) / (texel.y * (r1 - r0).max(1) as f32);
            Vec2::new(dx, dy).length()
        })
        .collect()
}

/// The photo's colours where `weight` is 1, filled from there (push–pull) where it is less.
fn fill(photo: &[[f32; 3]], weight: &[f32], plate: &Plate) -> Option<Vec<[f32; 3]>> {
    let filled = push_pull(photo, weight, plate.width, plate.height)?;
    Some(
        filled
            .iter()
            .zip(photo)
            .zip(weight)
            .map(|((&f, &p), &w)| mix(f, p, w))
            .collect(),
    )
}

/// The colour the neck continues upward with, per plate column: the median of the first few person pixels under
/// the head's silhouette in that column (within a third of the face's height), in the jaw's shadow; columns that
/// find none take their nearest neighbour's, or the face's skin.
fn neck_colours(
    plate: &Plate,
    colour: &[[f32; 3]],
    person: &[f32],
    silhouette: &[bool],
    neck: Neck,
    face_height: f32,
    skin: [f32; 3],
) -> Vec<[f32; 3]> {
    let (w, h) = (plate.width, plate.height);
    let reach = (0.35 * face_height) as usize;
    let band = ((0.03 * face_height) as usize).max(2);
    let first = (neck.centre_x - neck.half_width - 2.0).max(0.0) as usize;
    let last = ((neck.centre_x + neck.half_width + 2.0) as usize).min(w - 1);
    let mut found: Vec<Option<[f32; 3]>> = vec![None; w];
    for (x, slot) in found.iter_mut().enumerate().take(last + 1).skip(first) {
        let Some(bottom) = (0..h).rev().find(|&y| silhouette[y * w + x]) else {
            continue;
        };
        let start = (bottom + 1..(bottom + 1 + reach).min(h))
            .find(|&y| person[y * w + x] >= 0.5 && !silhouette[y * w + x]);
        *slot =
            start.and_then(|y| median_colour((y..(y + band).min(h)).map(|k| colour[k * w + x])));
    }
    // Columns without a neck pixel take the nearest column's colour.
    let any: Vec<usize> = (0..w).filter(|&x| found[x].is_some()).collect();
    let mut row: Vec<[f32; 3]> = (0..w)
        .map(|x| {
            let nearest = any.iter().min_by_key(|&&k| k.abs_diff(x));
            nearest
                .and_then(|&k| found[k])
                .unwrap_or(skin)
                .map(|v| v * NECK_SHADE)
        })
        .collect();
    // A little horizontal smoothing, so that single columns do not streak.
    let radius = ((0.04 * neck.half_width) as usize).max(1);
    row = super::maps::blur(&row, w, 1, radius);
    row
}

/// The segment of each plate pixel (see [`Segment`]).
fn segment(
    plate: &Plate,
    colour: &[[f32; 3]],
    person: &[f32],
    silhouette: &[bool],
    (in_face, skin): (&[f32], [f32; 3]),
    above_eyes: impl Fn(usize) -> bool,
) -> Vec<u8> {
    // Skin: close to the face's skin colour in chroma and not far in brightness.
    let luma = |c: [f32; 3]| 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    let chroma = |c: [f32; 3]| {
        let y = luma(c).max(1e-4);
        Vec2::new(c[0] / y, c[2] / y)
    };
    let (skin_luma, skin_chroma) = (luma(skin), chroma(skin));
    let is_skin = |c: [f32; 3]| {
        chroma(c).distance(skin_chroma) < 0.35 && (luma(c) / skin_luma.max(1e-4)).ln().abs() < 1.2
    };
    (0..plate.len())
        .map(|i| {
            let s = if person[i] < 0.5 {
                Segment::Background
            } else if in_face[i] > 0.5 {
                Segment::Face
            } else if silhouette[i] || above_eyes(i) {
                Segment::Hair
            } else if is_skin(colour[i]) {
                Segment::Skin
            } else {
                Segment::Clothes
            };
            s as u8
        })
        .collect()
}

/// The head-and-shoulders framing: 3.4 face heights tall from above the crown, 4:5, the face centred across,
/// moved (and where needed shrunk) to lie inside the plate.
fn head_and_shoulders(size: UVec2, chin: Vec2, forehead: Vec2, face_height: f32) -> URect {
    let size_f = size.as_vec2();
    let height = (3.4 * face_height).min(size_f.y);
    let width = (0.8 * height).min(size_f.x);
    let top = (forehead.y - 0.9 * face_height).clamp(0.0, size_f.y - height);
    let left = (chin.x - 0.5 * width).clamp(0.0, size_f.x - width);
    let min = Vec2::new(left, top).round().as_uvec2();
    let max = (Vec2::new(left + width, top + height).round().as_uvec2()).min(size);
    URect::from_corners(min, max.max(min + UVec2::ONE))
}
