//! Portrait + face landmarks (+ person mask) → a head asset.
//!
//! Shape: the head is the volume between a front surface and a back surface over a silhouette in the head's x–y plane.
//! The front surface is the face itself where the landmarks are (inside their hull the Delaunay triangulation of the
//! 468 points, linear in each triangle — see [`super::triangulation`] —, carried on past the hull by Gaussian-weighted
//! landmark depths) and an ellipsoidal skull elsewhere, blended smoothly; the back surface is the back half of the
//! ellipsoid. Without a person mask the skull runs from a crown guessed above the forehead to the chin and the
//! silhouette is its ellipse. With a mask ([`person_mask`](super::person_mask)) the crown is the top of the person's
//! outline above the face and the skull is wide enough for the outline (hair volume) between crown and eyes; the
//! silhouette is the ellipse cut by the mask, and below the nose by the face's landmark hull (the mask holds neck and
//! shoulders there). Where the mask cuts the skull, both surfaces round off towards the cut over `EDGE_ROUNDING_M`.
//!
//! Colour: two maps over x–y, one per surface (linear RGB, `ColourMaps`):
//! - `c_front`: the portrait projected along z, only where it surely shows the person (well inside the mask and
//!   the silhouette, not of the background's colour near the edge); elsewhere filled from the surroundings by
//!   push–pull, so the portrait's background never reaches the head. Where the front surface turns sideways
//!   outside the face (seen from the side, where a projection smears detail into streaks) it fades to a blurred
//!   version of the same colours.
//! - `c_back`: hair extrapolated from the front colours outside the face and above the mouth, blurred and made
//!   mirror-symmetric (x → −x), turning to skin at the nape, and equal to `c_front` near the silhouette's edge, so
//!   that seen from the side the colour runs on from the face round to the back without a seam.
//!
//! Encoding in the tri-plane (all in normalised head coordinates `u`), with `f(x, y)` stored on plane 0 and the
//! z-dependent terms on plane 1, so that every channel is an exact sum of the two:
//! - `front - z`, `z - back` and `z - mid` (mid = half way between the surfaces);
//! - per colour channel `c_front + K (z - mid)` and `c_back - K (z - mid)` (logits of linear colour).
//!
//! The decoder (ReLU MLP) turns these into density `D · min(front - z, z - back)` and colour
//! `max(c_front + K v, c_back − K v) − K |v|` with `v = z − mid`, which is the front colour in front of the mid
//! surface and the back colour behind it. Each surface is a graph over x–y, so what one sees is `c_front` on the
//! front surface and `c_back` on the back one whatever `mid` is; the switch shows only where the two surfaces
//! meet, at the silhouette's edge, and there the two maps agree. The head asset's motion bases come from the rig
//! ([`super::rig`]): displacement, opening and shade fields built around the landmarks.

use std::sync::Arc;

use bevy::math::{Vec2, Vec3, Vec4};
use image::{DynamicImage, RgbImage};

use super::expression;
use super::head_asset::{DecoderMlp, EYEBALL_PER_WIDTH, Eye, Eyes, HeadAsset, Mouth, PLANES};
use super::landmarks::{FaceLandmarks, landmark_index as lm};
use super::maps::{
    blur, distance_inside, median_colour, mix, push_pull, smoothstep, srgb_to_linear, texel_centre,
};
use super::rig::{Palette, bases, motion_bases};
use super::triangulation::FaceMesh;

mod colours;
mod encoding;
mod shape;

use colours::{ColourMaps, Colours, FaceLevels};
pub use encoding::{closed_form_decode, decodes_in_closed_form};
use encoding::{decoder, encode_triplane};
use shape::Surfaces;
pub(super) use shape::{FaceHull, PersonMask};

/// Typical distance between the pupils of an adult, metres; it sets the portrait's scale.
pub(super) const EYE_DISTANCE_M: f32 = 0.063;
/// Feature channels: front − z, z − back, z − mid, front colour ×3, back colour ×3, one unused.
const CHANNELS: usize = 10;
/// Slope of the colour selector, in logits per normalised unit of depth.
pub const COLOUR_SLOPE: f32 = 40.0;
/// Density per normalised unit of depth inside the surface, per metre.
pub const DENSITY_SCALE: f32 = 20_000.0;
/// Standard deviation of the Gaussian weights that interpolate landmark depths, metres.
const DEPTH_SIGMA_M: f32 = 0.006;
/// Logits are clamped to this magnitude (colours 0.25 %..99.75 %).
const MAX_LOGIT: f32 = 6.0;
/// Where the person mask cuts the skull, the head's thickness rounds off over this distance from the edge, metres.
const EDGE_ROUNDING_M: f32 = 0.02;
/// Portrait colours are trusted from this distance inside the silhouette's edge on, metres.
const EDGE_TRUST_M: f32 = 0.003;
/// The back colour equals the front colour at the silhouette's edge and blends into the back's own colour over
/// this distance, metres.
const BACK_RIM_M: f32 = 0.015;

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
            motion_resolution: 128,
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
        self.image_to_head(p.truncate())
            .extend((self.depth_origin - p.z) * self.scale)
    }

    /// Image point (pixels) of a head-space x, y.
    pub fn to_image(&self, x: f32, y: f32) -> Vec2 {
        Vec2::new(
            self.origin.x + x / self.scale,
            self.origin.y - y / self.scale,
        )
    }

    /// Head-space x, y (metres) of image point `p` (pixels): the inverse of [`to_image`](Self::to_image).
    pub fn image_to_head(&self, p: Vec2) -> Vec2 {
        Vec2::new(
            (p.x - self.origin.x) * self.scale,
            (self.origin.y - p.y) * self.scale,
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
/// pixel, row-major, the image's size, e.g. from [`person_mask`](super::person_mask)). Returns the asset and the
/// portrait's mapping to head space.
///
/// With a mask, the skull is fitted to the person's outline above the face (crown and hair width), the silhouette
/// follows the mask, and colours are only taken from pixels well inside it. A mask of the wrong length is ignored.
pub fn build_head(
    portrait: &DynamicImage,
    landmarks: &FaceLandmarks,
    person_mask: Option<&[f32]>,
    settings: ConstructSettings,
) -> (HeadAsset, PortraitFrame) {
    let image = portrait.to_rgb8();
    let mask = person_mask
        .filter(|mask| mask.len() == image.width() as usize * image.height() as usize)
        .map(|values| PersonMask {
            values,
            width: image.width(),
            height: image.height(),
        });
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
    let centre_x = (right_eye.x + left_eye.x) * 0.5;
    let eyes_y = (right_eye.y + left_eye.y) * 0.5;
    // Without a mask the crown sits about 0.45 face heights above the top landmark; with one, at the top of the
    // person's outline above the face (hair volume), within a plausible range.
    let crown_y = mask
        .as_ref()
        .and_then(|mask| mask.top_above(centre_x, forehead.y, 0.15 * face_width_px))
        .map_or(forehead.y - 0.45 * face_height_px, |top| {
            top.clamp(
                forehead.y - 0.8 * face_height_px,
                forehead.y - 0.3 * face_height_px,
            )
        });
    let centre_y = (crown_y + chin.y) * 0.5;
    let half_height_px = (chin.y - crown_y) * 0.5;
    // The skull's half width: wide enough for the person's outline between the crown and the eyes.
    let half_width_px = mask
        .as_ref()
        .and_then(|mask| {
            mask.ellipse_half_width(centre_x, centre_y, half_height_px, crown_y, eyes_y)
        })
        .map_or(0.55 * face_width_px, |w| {
            w.clamp(0.5 * face_width_px, 0.8 * face_width_px)
        });
    let mean_depth = points.iter().map(|p| p.z).sum::<f32>() / points.len() as f32;
    let frame = PortraitFrame {
        origin: Vec2::new(centre_x, centre_y),
        scale,
        // The face's mean depth lies 6 cm in front of the head's centre.
        depth_origin: mean_depth + 0.06 / scale,
    };
    let skull = Skull {
        half_width: half_width_px * scale,
        half_height: half_height_px * scale,
        // Hair thickens the head all round as much as it widens it.
        half_depth: (0.69 * face_width_px + (half_width_px - 0.55 * face_width_px).max(0.0))
            * scale,
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
    let grid = Grid { r, half_extent };
    let hull = FaceHull::new(&face);
    let nose_y = face[lm::NOSE_TIP].y;
    let surfaces = Surfaces::new(&frame, skull, &face, &hull, nose_y, grid, mask.as_ref());
    let colours = Colours::measure(&image, &frame, &face, mask.as_ref());
    let levels = FaceLevels {
        nose: nose_y,
        mouth: (face[lm::UPPER_LIP].y + face[lm::LOWER_LIP].y) * 0.5,
        chin: face[lm::CHIN].y,
    };
    let maps = ColourMaps::new(
        &image,
        &frame,
        &surfaces,
        (&hull, levels),
        colours,
        grid,
        mask.as_ref(),
    );
    let triplane = encode_triplane(&surfaces, &maps, grid);
    let m = settings.motion_resolution.max(4);
    let palette = Palette {
        colour_at: &|p: Vec2| {
            let col = ((p.x / half_extent.x + 1.0) * 0.5 * r as f32).floor();
            let row = ((1.0 - p.y / half_extent.y) * 0.5 * r as f32).floor();
            let (col, row) = (
                col.clamp(0.0, (r - 1) as f32) as usize,
                row.clamp(0.0, (r - 1) as f32) as usize,
            );
            maps.front[row * r + col]
        },
        skin: maps.skin,
    };
    let mouth = mouth_of(&face);
    let expression = expression::measure(&face);
    let motion_bases = motion_bases(&face, (mouth, &expression), half_extent, m, &palette);
    let asset = HeadAsset {
        half_extent,
        channels: CHANNELS,
        triplane_resolution: r,
        triplane: Arc::from(triplane),
        basis_count: bases::COUNT + 1,
        motion_resolution: m,
        motion_bases: Arc::from(motion_bases),
        decoder: decoder(),
        mouth,
        expression,
        eyes: eyes_of(&face),
    };
    (asset, frame)
}

/// The head's eyes ([`Eyes`]): each opening between its corners and lids, and an eyeball
/// [`EYEBALL_PER_WIDTH`] of its width in radius.
fn eyes_of(face: &[Vec3]) -> Eyes {
    let eye = |outer: usize, inner: usize, upper: usize, lower: usize| {
        let at = |i: usize| face[i].truncate();
        let width = at(outer).distance(at(inner));
        Eye {
            centre: Vec2::new(
                0.5 * (at(outer).x + at(inner).x),
                0.5 * (at(upper).y + at(lower).y),
            ),
            half_size: Vec2::new(0.5 * width, 0.5 * (at(upper).y - at(lower).y).max(0.0)),
            radius: EYEBALL_PER_WIDTH * width,
        }
    };
    Eyes {
        left: eye(
            lm::LEFT_EYE_OUTER,
            lm::LEFT_EYE_INNER,
            lm::LEFT_UPPER_LID,
            lm::LEFT_LOWER_LID,
        ),
        right: eye(
            lm::RIGHT_EYE_OUTER,
            lm::RIGHT_EYE_INNER,
            lm::RIGHT_UPPER_LID,
            lm::RIGHT_LOWER_LID,
        ),
    }
}

/// The head's mouth ([`Mouth`]): the lips' line through the middle of the inner lips (where the motion bases
/// part them) and synthesized teeth when the portrait's lips are closed (the inner lips less than 1 mm apart at
/// the middle; none from 3 mm on, where the portrait shows its own teeth).
fn mouth_of(face: &[Vec3]) -> Mouth {
    let at = |i: usize| face[i].truncate();
    let apart = at(lm::UPPER_LIP).y - at(lm::LOWER_LIP).y;
    Mouth {
        centre: (at(lm::UPPER_LIP) + at(lm::LOWER_LIP)) * 0.5,
        half_width: at(lm::MOUTH_LEFT).distance(at(lm::MOUTH_RIGHT)) * 0.5,
        teeth: 1.0 - smoothstep(0.001, 0.003, apart),
    }
}

/// A constructed head's front and back surfaces and their colours, read back from its tri-plane, where plane 0
/// holds them exactly (see the module docs): what a mesh exporter needs to give the head a skull and hair.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadSurfaces {
    /// Texels per side of the grid (the tri-plane's resolution); row 0 is the top (+y).
    pub resolution: usize,
    /// The head box's half size, metres.
    pub half_extent: Vec3,
    /// Per texel (row-major): front and back depth (metres, +z towards the face's viewer), `None` outside the head.
    pub depths: Vec<Option<(f32, f32)>>,
    /// Per texel: linear RGB of the front and back surfaces.
    pub colours: Vec<([f32; 3], [f32; 3])>,
}

impl HeadSurfaces {
    /// Reads the surfaces back from `asset`; `None` unless it was made by [`build_head`] (its channels and
    /// decoder).
    pub fn of(asset: &HeadAsset) -> Option<Self> {
        if asset.channels != CHANNELS || asset.decoder != decoder() || asset.validate().is_err() {
            return None;
        }
        let r = asset.triplane_resolution;
        let (mut depths, mut colours) = (Vec::with_capacity(r * r), Vec::with_capacity(r * r));
        let sigmoid = |logit: f32| 1.0 / (1.0 + (-logit).exp());
        for row in 0..r {
            for col in 0..r {
                // Plane 0 stores rows from the bottom (see `encode_triplane`).
                let texel = ((r - 1 - row) * r + col) * CHANNELS;
                let f = |c: usize| asset.triplane[texel + c].to_f32();
                let (front, back, mid) = (f(0), -f(1), -f(2));
                depths.push(
                    (front > back)
                        .then_some((front * asset.half_extent.z, back * asset.half_extent.z)),
                );
                colours.push((
                    std::array::from_fn(|c| sigmoid(f(3 + c) + COLOUR_SLOPE * mid)),
                    std::array::from_fn(|c| sigmoid(f(6 + c) - COLOUR_SLOPE * mid)),
                ));
            }
        }
        Some(Self {
            resolution: r,
            half_extent: asset.half_extent,
            depths,
            colours,
        })
    }

    /// Head-space x, y (metres) of texel (`row`, `col`).
    pub fn point(&self, row: usize, col: usize) -> Vec2 {
        Grid {
            r: self.resolution,
            half_extent: self.half_extent,
        }
        .point(row, col)
    }
}

/// The plane-0 texel grid: `r × r` texels over the head box's x–y face, row 0 at the top (+y).
#[derive(Clone, Copy)]
struct Grid {
    r: usize,
    half_extent: Vec3,
}

impl Grid {
    /// Head-space x, y (metres) of texel (row, col).
    fn point(&self, row: usize, col: usize) -> Vec2 {
        Vec2::new(
            texel_centre(col, self.r) * self.half_extent.x,
            -texel_centre(row, self.r) * self.half_extent.y,
        )
    }

    /// Texel size along x and y, metres.
    fn texel(&self) -> Vec2 {
        self.half_extent.truncate() * 2.0 / self.r as f32
    }
}
