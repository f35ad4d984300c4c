//! Portrait + face landmarks (+ person mask) → a head asset.
//!
//! Shape: the head is the volume between a front surface and a back surface over a silhouette in the head's
//! x–y plane. The front surface is the face itself where the landmarks are (inside their hull the Delaunay
//! triangulation of the 468 points, linear in each triangle — see [`super::triangulation`] —, carried on past the
//! hull by Gaussian-weighted landmark depths) and an ellipsoidal skull elsewhere, blended smoothly; the back surface is the back half of the
//! ellipsoid. Without a person mask the skull runs from a crown guessed above the forehead to the chin and the
//! silhouette is its ellipse. With a mask ([`person_mask`](super::person_mask)) the crown is the top of the
//! person's outline above the face and the skull is wide enough for the outline (hair volume) between crown and
//! eyes; the silhouette is the ellipse cut by the mask, and below the nose by the face's landmark hull (the mask
//! holds neck and shoulders there). Where the mask cuts the skull, both surfaces round off towards the cut
//! over `EDGE_ROUNDING_M`.
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
use half::f16;
use image::{DynamicImage, RgbImage};

use super::expression;
use super::head_asset::{DecoderMlp, EYEBALL_PER_WIDTH, Eye, Eyes, HeadAsset, Mouth, PLANES};
use super::landmarks::{FaceLandmarks, landmark_index as lm};
use super::maps::{
    blur, distance_inside, median_colour, mix, push_pull, smoothstep, srgb_to_linear, texel_centre,
};
use super::rig::{Palette, bases, motion_bases};
use super::triangulation::FaceMesh;

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

/// The person mask with its image size.
pub(super) struct PersonMask<'a> {
    pub(super) values: &'a [f32],
    pub(super) width: u32,
    pub(super) height: u32,
}

impl PersonMask<'_> {
    /// The mask at image point `p` (pixels), bilinear between pixel centres; 0 outside the image.
    pub(super) fn at(&self, p: Vec2) -> f32 {
        let (w, h) = (self.width as f32, self.height as f32);
        if p.x < 0.0 || p.y < 0.0 || p.x >= w || p.y >= h {
            return 0.0;
        }
        let x = (p.x - 0.5).clamp(0.0, w - 1.0);
        let y = (p.y - 0.5).clamp(0.0, h - 1.0);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = (
            (x0 + 1).min(self.width as usize - 1),
            (y0 + 1).min(self.height as usize - 1),
        );
        let (tx, ty) = (x - x0 as f32, y - y0 as f32);
        let v = |px: usize, py: usize| {
            self.values
                .get(py * self.width as usize + px)
                .copied()
                .unwrap_or(0.0)
        };
        let top = v(x0, y0) + (v(x1, y0) - v(x0, y0)) * tx;
        let bottom = v(x0, y1) + (v(x1, y1) - v(x0, y1)) * tx;
        top + (bottom - top) * ty
    }

    /// The highest image row (pixels) reached by the person going straight up from `start_y`, over columns within
    /// `half_span` of `x`; `None` when the mask is empty there.
    fn top_above(&self, x: f32, start_y: f32, half_span: f32) -> Option<f32> {
        let mut top: Option<f32> = None;
        for k in -4..=4 {
            let column = x + half_span * k as f32 / 4.0;
            let mut y = start_y;
            if self.at(Vec2::new(column, y)) < 0.5 {
                continue;
            }
            while y > 0.0 && self.at(Vec2::new(column, y - 1.0)) >= 0.5 {
                y -= 1.0;
            }
            top = Some(top.map_or(y, |t: f32| t.min(y)));
        }
        top
    }

    /// Half width (pixels) of the ellipse centred at (x, centre_y) with half height `half_height` that holds the
    /// person's outline on every row from `top` to `bottom` (rows near the crown, where the ellipse narrows to
    /// nothing, are left out).
    fn ellipse_half_width(
        &self,
        x: f32,
        centre_y: f32,
        half_height: f32,
        top: f32,
        bottom: f32,
    ) -> Option<f32> {
        let mut widest: Option<f32> = None;
        let mut y = top;
        while y <= bottom {
            let t = (y - centre_y) / half_height.max(1.0);
            let room = (1.0 - t * t).max(0.0).sqrt();
            if room > 0.6 && self.at(Vec2::new(x, y)) >= 0.5 {
                let reach = |direction: f32| {
                    let mut d = 0.0;
                    while d < self.width as f32
                        && self.at(Vec2::new(x + direction * (d + 1.0), y)) >= 0.5
                    {
                        d += 1.0;
                    }
                    d
                };
                let half = reach(-1.0).max(reach(1.0)) / room;
                widest = Some(widest.map_or(half, |w: f32| w.max(half)));
            }
            y += 1.0;
        }
        widest
    }
}

/// The convex hull of the face landmarks in head x–y (metres), counter-clockwise.
pub(super) struct FaceHull {
    corners: Vec<Vec2>,
}

impl FaceHull {
    pub(super) fn new(face: &[Vec3]) -> Self {
        let mut points: Vec<Vec2> = face.iter().map(|p| p.truncate()).collect();
        points.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
        let cross = |o: Vec2, a: Vec2, b: Vec2| (a - o).perp_dot(b - o);
        let mut corners: Vec<Vec2> = Vec::with_capacity(points.len() + 1);
        for pass in 0..2 {
            let start = corners.len();
            let ordered: Box<dyn Iterator<Item = &Vec2>> = if pass == 0 {
                Box::new(points.iter())
            } else {
                Box::new(points.iter().rev())
            };
            for &p in ordered {
                while corners.len() >= start + 2
                    && cross(corners[corners.len() - 2], corners[corners.len() - 1], p) <= 0.0
                {
                    corners.pop();
                }
                corners.push(p);
            }
            corners.pop();
        }
        Self { corners }
    }

    /// Signed distance (metres) inside the hull: positive inside, negative outside (exact inside, a lower bound
    /// of the distance outside).
    pub(super) fn inside(&self, p: Vec2) -> f32 {
        let n = self.corners.len();
        if n < 3 {
            return -1.0;
        }
        (0..n)
            .map(|i| {
                let (a, b) = (self.corners[i], self.corners[(i + 1) % n]);
                let edge = b - a;
                edge.perp_dot(p - a) / edge.length().max(1e-9)
            })
            .fold(f32::MAX, f32::min)
    }
}

/// Front and back depth (normalised z) per plane-0 texel (row-major from the top); front < back where the head
/// is absent. Also the distance of each texel from the silhouette's edge.
struct Surfaces {
    front: Vec<f32>,
    back: Vec<f32>,
    /// Distance (metres) from the silhouette's edge inside it, 0 outside.
    edge_distance: Vec<f32>,
}

impl Surfaces {
    fn new(
        frame: &PortraitFrame,
        skull: Skull,
        face: &[Vec3],
        hull: &FaceHull,
        nose_y: f32,
        grid: Grid,
        mask: Option<&PersonMask>,
    ) -> Self {
        let r = grid.r;
        let half_extent = grid.half_extent;
        let two_sigma2 = 2.0 * DEPTH_SIGMA_M * DEPTH_SIGMA_M;
        // Inside the landmarks' hull the face is their triangulated surface; the Gaussian-weighted depths carry it
        // on past the hull (and their weight blends it into the skull).
        let texel = grid.texel();
        let mesh_depth = FaceMesh::delaunay(face).depth_grid(
            r,
            r,
            grid.point(0, 0),
            Vec2::new(texel.x, -texel.y),
        );
        let mut face_depth = vec![0.0f32; r * r];
        let mut face_weight = vec![0.0f32; r * r];
        let mut shell = vec![0.0f32; r * r];
        let mut inside = vec![false; r * r];
        for row in 0..r {
            for col in 0..r {
                let Vec2 { x, y } = grid.point(row, col);
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
                face_depth[i] =
                    mesh_depth[i].unwrap_or(if weight > 0.0 { sum / weight } else { 0.0 });
                face_weight[i] = weight;
                let rim = skull.inside(x, y);
                shell[i] = skull.half_depth * rim.max(0.0).sqrt();
                let mut solid = rim > 0.0;
                if let Some(mask) = mask {
                    solid &= mask.at(frame.to_image(x, y)) >= 0.5;
                    // Below the nose the head is the face itself (the mask there holds neck and shoulders).
                    solid &= y > nose_y || hull.inside(Vec2::new(x, y)) > -0.004;
                }
                inside[i] = solid;
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
        let edge_distance = distance_inside(&inside, (r, r), grid.texel(), true);

        let mut front = vec![-2.0f32; r * r];
        let mut back = vec![2.0f32; r * r];
        for i in 0..r * r {
            if !inside[i] {
                continue;
            }
            let blend = smoothstep(0.2, 0.8, face_weight[i]);
            let mut z_front = blend * face_depth[i] + (1.0 - blend) * (shell[i] + shift);
            let mut z_back = -shell[i];
            // Where the mask cuts the skull, the head rounds off towards its edge instead of ending in a wall.
            let round = 0.3 + 0.7 * smoothstep(0.0, EDGE_ROUNDING_M, edge_distance[i]).sqrt();
            z_front *= round;
            z_back *= round;
            // Thin rims still get a little thickness, so the silhouette's edge is solid.
            let thickness = (z_front - z_back).max(0.004);
            front[i] = (z_back + thickness) / half_extent.z;
            back[i] = z_back / half_extent.z;
        }
        Self {
            front,
            back,
            edge_distance,
        }
    }
}

/// The colours the construction needs besides the portrait itself.
#[derive(Clone, Copy)]
struct Colours {
    /// Linear RGB of the hair, measured above the forehead (the fallback when no colour can be extrapolated).
    hair: [f32; 3],
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
        mask: Option<&PersonMask>,
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
                if mask.is_some_and(|mask| mask.at(p) < 0.5) {
                    continue;
                }
                let pixel = image.get_pixel(p.x as u32, p.y as u32);
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

/// Heights (head-space y, metres) of the face's nose tip, mouth and chin.
#[derive(Clone, Copy)]
struct FaceLevels {
    nose: f32,
    mouth: f32,
    chin: f32,
}

/// The two colour maps of the head (linear RGB per plane-0 texel, row-major from the top): what the front
/// surface shows and what the back surface shows.
///
/// - Front: the portrait, only where it shows the person well inside the mask and the silhouette; elsewhere filled
///   from the surroundings ([`push_pull`]), so the background is never baked in. Where the front surface turns
///   sideways outside the face (it is seen from the side, and a straight projection would smear the portrait's
///   detail into streaks) it fades to a blurred version of the same colours.
/// - Back: extrapolated from the front colours outside the face (hair above and beside the face, skin at its
///   lower border), blurred, made mirror-symmetric, and equal to the front colours near the silhouette's rim, so
///   that the colour runs on from the front round the sides to the back without a seam.
struct ColourMaps {
    /// Median skin colour of the face (between nose and mouth), linear RGB.
    skin: [f32; 3],
    front: Vec<[f32; 3]>,
    back: Vec<[f32; 3]>,
}

impl ColourMaps {
    fn new(
        image: &RgbImage,
        frame: &PortraitFrame,
        surfaces: &Surfaces,
        (hull, levels): (&FaceHull, FaceLevels),
        colours: Colours,
        grid: Grid,
        mask: Option<&PersonMask>,
    ) -> Self {
        let r = grid.r;
        let texel = grid.texel();
        // The background's colour: the median of what the portrait shows outside the person near the head.
        let background = mask.and_then(|mask| {
            median_colour((0..r * r).filter_map(|i| {
                let p = grid.point(i / r, i % r);
                let q = frame.to_image(p.x, p.y);
                (mask.at(q) < 0.05).then(|| sample_linear(image, q))
            }))
        });
        let mut portrait = vec![[0.0f32; 3]; r * r];
        let mut reliable = vec![0.0f32; r * r];
        let mut outside_face = vec![0.0f32; r * r];
        for row in 0..r {
            for col in 0..r {
                let p = grid.point(row, col);
                let i = row * r + col;
                let q = frame.to_image(p.x, p.y);
                portrait[i] = sample_linear(image, q);
                // Trust a pixel well inside the silhouette and, with a mask, only where the mask is sure on a
                // neighbourhood of a few pixels (its edge blends hair into the background).
                let mut trust =
                    smoothstep(0.5 * EDGE_TRUST_M, EDGE_TRUST_M, surfaces.edge_distance[i]);
                // Below the nose, beyond the face's outline, the portrait shows neck or background.
                if p.y < levels.nose {
                    trust *= smoothstep(-0.001, 0.001, hull.inside(p));
                }
                if let Some(mask) = mask {
                    let reach = 2.5;
                    let sure = [
                        (0.0, 0.0),
                        (-reach, 0.0),
                        (reach, 0.0),
                        (0.0, -reach),
                        (0.0, reach),
                    ]
                    .iter()
                    .map(|&(dx, dy)| mask.at(q + Vec2::new(dx, dy)))
                    .fold(1.0f32, f32::min);
                    trust *= smoothstep(0.85, 0.97, sure);
                }
                // Near the edge, a pixel of the background's colour is background the mask let through.
                if let Some(background) = background {
                    let near_edge = 1.0 - smoothstep(0.01, 0.02, surfaces.edge_distance[i]);
                    let difference = portrait[i]
                        .iter()
                        .zip(background)
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f32>()
                        .sqrt();
                    trust *= 1.0 - near_edge * (1.0 - smoothstep(0.06, 0.12, difference));
                }
                reliable[i] = trust;
                // Hair: outside the face and above the mouth.
                outside_face[i] = trust
                    * smoothstep(0.0, 0.006, -hull.inside(p))
                    * smoothstep(levels.mouth, levels.nose, p.y);
            }
        }
        let fallback = vec![colours.hair; r * r];
        let filled = push_pull(&portrait, &reliable, r, r).unwrap_or_else(|| fallback.clone());
        let front: Vec<[f32; 3]> = portrait
            .iter()
            .zip(&filled)
            .zip(&reliable)
            .map(|((&p, &f), &w)| mix(f, p, w))
            .collect();
        let soft = blur(&front, r, r, (0.008 / texel.x).round().max(1.0) as usize);
        let front: Vec<[f32; 3]> = (0..r * r)
            .map(|i| {
                let (row, col) = (i / r, i % r);
                let p = grid.point(row, col);
                let slope = surface_slope(&surfaces.front, grid, row, col);
                // The wall where the silhouette cuts the head is seen from the side too, and outside the
                // silhouette only the rim's bilinear lookups read the map: both soft.
                let steep = smoothstep(1.2, 3.0, slope)
                    .max(1.0 - smoothstep(0.002, 0.006, surfaces.edge_distance[i]));
                let sideways = steep * smoothstep(0.0, 0.01, -hull.inside(p) + 0.015);
                mix(front[i], soft[i], sideways)
            })
            .collect();

        // Skin: the median of the face between the nose and the mouth (cheeks, lip, nose).
        let skin = median_colour((0..r * r).filter_map(|i| {
            let p = grid.point(i / r, i % r);
            (hull.inside(p) > 0.005 && p.y < levels.nose && p.y > levels.mouth).then_some(front[i])
        }))
        .unwrap_or(colours.hair);
        let hair = push_pull(&front, &outside_face, r, r).unwrap_or(fallback);
        let hair = blur(&hair, r, r, (0.006 / texel.x).round().max(1.0) as usize);
        let back: Vec<[f32; 3]> = (0..r * r)
            .map(|i| {
                let (row, col) = (i / r, i % r);
                let mirrored = hair[row * r + (r - 1 - col)];
                let symmetric = mix(hair[i], mirrored, 0.5);
                // The nape below the hair shows skin.
                let y = grid.point(row, col).y;
                let symmetric = mix(
                    symmetric,
                    skin,
                    0.8 * smoothstep(levels.mouth, levels.chin, y),
                );
                let rim = 1.0 - smoothstep(0.0, BACK_RIM_M, surfaces.edge_distance[i]);
                mix(symmetric, front[i], rim)
            })
            .collect();
        Self { front, back, skin }
    }
}

/// Steepness of a depth map (normalised z per plane-0 texel) at a texel: |∇z| in metres per metre, by central
/// differences (one-sided at the silhouette's edge).
fn surface_slope(depth: &[f32], grid: Grid, row: usize, col: usize) -> f32 {
    let r = grid.r;
    let hz = grid.half_extent.z;
    let texel = grid.texel();
    let here = depth[row * r + col];
    let at = |rr: usize, cc: usize| {
        let v = depth[rr * r + cc];
        // Outside the head the depth is a sentinel: use this texel's.
        if v < -1.5 { here } else { v }
    };
    let (c0, c1) = (col.saturating_sub(1), (col + 1).min(r - 1));
    let (r0, r1) = (row.saturating_sub(1), (row + 1).min(r - 1));
    let dx = (at(row, c1) - at(row, c0)) * hz / (texel.x * (c1 - c0).max(1) as f32);
    let dy = (at(r1, col) - at(r0, col)) * hz / (texel.y * (r1 - r0).max(1) as f32);
    Vec2::new(dx, dy).length()
}

fn encode_triplane(surfaces: &Surfaces, maps: &ColourMaps, grid: Grid) -> Vec<f16> {
    let r = grid.r;
    let mut triplane = vec![f16::ZERO; PLANES * r * r * CHANNELS];
    for row in 0..r {
        for col in 0..r {
            let i = row * r + col;
            let (front, back) = (surfaces.front[i], surfaces.back[i]);
            let mid = (front + back) * 0.5;
            let front_colour = maps.front[i].map(logit);
            let back_colour = maps.back[i].map(logit);
            let mut f = [0.0f32; CHANNELS];
            f[0] = front;
            f[1] = -back;
            f[2] = -mid;
            for c in 0..3 {
                f[3 + c] = front_colour[c] - COLOUR_SLOPE * mid;
                f[6 + c] = back_colour[c] + COLOUR_SLOPE * mid;
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

/// Whether `asset` decodes with the decoder every constructed head has ([`build_head`]): the renderers then
/// evaluate it in closed form ([`closed_form_decode`]) instead of as a dense MLP.
pub fn decodes_in_closed_form(asset: &HeadAsset) -> bool {
    asset.channels == CHANNELS && asset.decoder == decoder()
}

/// The constructed heads' decoder applied to summed tri-plane features `feat` (at least 10 values):
/// density (per metre) in w, linear colour in xyz. Its hidden units come in pairs that cancel to simple terms,
/// relu(x) − relu(−x) = x and relu(a − b) + b = max(a, b), so the same function as the constructed MLP is
/// `DENSITY_SCALE · max(min(f0, f1), 0)` and `sigmoid(max(front, back colour) − COLOUR_SLOPE · |f2|)` per colour:
/// a few operations instead of 14 × 10 + 4 × 14 multiply-adds (the shader's `CONSTRUCTED_DECODER`).
pub fn closed_form_decode(feat: &[f32]) -> Vec4 {
    let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
    let colour = |c: usize| sigmoid(feat[3 + c].max(feat[6 + c]) - COLOUR_SLOPE * feat[2].abs());
    Vec4::new(
        colour(0),
        colour(1),
        colour(2),
        DENSITY_SCALE * feat[0].min(feat[1]).max(0.0),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed form is the constructed decoder's MLP: on random features (either sign, a range wider than a
    /// head's) both give the same density and colour.
    #[test]
    fn the_closed_form_decodes_as_the_mlp() {
        let mlp = decoder();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut random = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f32 / (1u64 << 53) as f32 * 4.0 - 2.0
        };
        for _ in 0..10_000 {
            let feat: Vec<f32> = (0..CHANNELS).map(|_| random() * 0.05).collect();
            let hidden: Vec<f32> = (0..mlp.hidden)
                .map(|h| {
                    (0..CHANNELS)
                        .fold(mlp.b1[h], |s, c| s + mlp.w1[h * CHANNELS + c] * feat[c])
                        .max(0.0)
                })
                .collect();
            let out: Vec<f32> = (0..4)
                .map(|o| {
                    (0..mlp.hidden)
                        .fold(mlp.b2[o], |s, h| s + mlp.w2[o * mlp.hidden + h] * hidden[h])
                })
                .collect();
            let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
            let dense = Vec4::new(
                sigmoid(out[1]),
                sigmoid(out[2]),
                sigmoid(out[3]),
                out[0].max(0.0),
            );
            let closed = closed_form_decode(&feat);
            assert!(
                // The dense MLP cancels DENSITY_SCALE·f0 against itself: its rounding is the size's ulp.
                (dense.truncate() - closed.truncate()).abs().max_element() < 1e-5
                    && (dense.w - closed.w).abs()
                        <= 1e-6 * DENSITY_SCALE * (feat[0].abs() + feat[1].abs()) + 1e-6,
                "{feat:?}: {dense} vs {closed}"
            );
        }
    }
}
