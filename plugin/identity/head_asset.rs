//! The head asset: everything the renderer needs to draw one identity (see docs/ARCHITECTURE.md, "Contracts").
//!
//! Space conventions, shared by the GPU shader (`shaders/head_march.wgsl`) and the CPU reference renderer:
//! - Head space is right-handed, +Y up, the face looks down +Z, units are metres; the asset occupies the box
//!   `[-half_extent, +half_extent]` centred on the origin.
//! - A point `p` maps to normalised coordinates `u = p / half_extent` in `[-1, 1]³`.
//! - Plane 0 is indexed by `(u.x, u.y)`, plane 1 by `(u.x, u.z)`, plane 2 by `(u.z, u.y)`; within a plane of
//!   resolution `R`, texel `(i, j)` (column `i` from the first coordinate, row `j` from the second) has its centre
//!   at `(i + 0.5) / R * 2 - 1`. Lookups are bilinear with clamping at the border.

use std::sync::Arc;

use bevy::asset::Asset;
use bevy::math::{Vec2, Vec3};
use bevy::reflect::TypePath;
use half::f16;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::expression::{ExpressionBase, PhotoExpression};
use super::maps::smoothstep;
use super::rig::bases;

/// Number of planes in a tri-plane.
pub const PLANES: usize = 3;
/// Components stored per motion-basis texel: displacement x, y, z, the opening, the shade and a zero that pads the
/// texel to whole f16 pairs (see [`HeadAsset::motion_bases`]).
pub const BASIS_COMPONENTS: usize = 6;
/// The blended shade darkens (or lightens) a point's colour by `exp(shade)`, the shade clamped to this range.
pub const SHADE_RANGE: [f32; 2] = [-2.0, 1.0];
/// Where the blended opening reaches this value a point starts to show the mouth's interior …
pub const OPENING_START: f32 = 0.8;
/// … and from this value on it shows only the interior.
pub const OPENING_FULL: f32 = 1.05;
/// Linear RGB of the mouth's interior, drawn where the lips part.
pub const MOUTH_INTERIOR: [f32; 3] = [0.04, 0.012, 0.012];
/// Linear RGB of the synthesized upper teeth (see [`Mouth`]) where they are fully lit.
pub const TEETH: [f32; 3] = [0.62, 0.56, 0.46];
/// How far the synthesized central incisors reach below the lips' line into a parted mouth, metres (how much of
/// the upper incisors a relaxed, parted upper lip shows: 2–3 mm in adults).
pub const TEETH_SHOW: f32 = 0.0028;
/// Widths of the synthesized upper teeth as seen from the front, from the middle outwards (central and lateral
/// incisor, canine, two premolars; the arch turns away, so the outer ones look narrower), metres.
pub const TOOTH_WIDTHS: [f32; 5] = [0.0085, 0.0065, 0.005, 0.004, 0.004];
/// How far each of them reaches below the lips' line, as a share of [`TEETH_SHOW`].
pub const TOOTH_LENGTHS: [f32; 5] = [1.0, 0.85, 0.95, 0.8, 0.75];
/// Gap (metres) over which the synthesized teeth come out of the mouth's shadow: in a thin gap, at the corners or
/// barely parted lips, they stay dim.
pub const TEETH_LIT_GAP: f32 = 0.004;
/// Largest feature channel count the shader supports.
pub const MAX_CHANNELS: usize = 32;
/// Largest decoder hidden width the shader supports.
pub const MAX_HIDDEN: usize = 64;
/// Decoder outputs: density then red, green, blue (before activation).
pub const DECODER_OUTPUTS: usize = 4;

/// A two-layer MLP that turns a summed tri-plane feature into density and colour.
///
/// `hidden = relu(w1 · f + b1)`, `out = w2 · hidden + b2`; density is `max(out[0], 0)` per metre and colour is
/// `sigmoid(out[1..4])` (linear RGB, 0..1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecoderMlp {
    /// Width of the hidden layer.
    pub hidden: usize,
    /// First-layer weights, row-major `hidden × channels`.
    pub w1: Vec<f32>,
    /// First-layer biases, `hidden` values.
    pub b1: Vec<f32>,
    /// Second-layer weights, row-major `4 × hidden`.
    pub w2: Vec<f32>,
    /// Second-layer biases, 4 values.
    pub b2: Vec<f32>,
}

/// One identity, ready to render: canonical tri-plane features, motion-basis displacement planes blended by the
/// motion code, a decoder and the head's bounding box.
#[derive(Asset, TypePath, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadAsset {
    /// Half the size of the head's box along x, y, z, in metres.
    pub half_extent: Vec3,
    /// Feature channels per tri-plane texel (even, at most [`MAX_CHANNELS`]).
    pub channels: usize,
    /// Texels along each side of a feature plane.
    pub triplane_resolution: usize,
    /// Canonical features, layout `[plane][row][column][channel]`.
    pub triplane: Arc<[f16]>,
    /// Number of motion bases: the motion code's length, plus one for a head with a rest field (see
    /// [`rest_basis`](Self::rest_basis)).
    pub basis_count: usize,
    /// Texels along each side of a motion-basis plane.
    pub motion_resolution: usize,
    /// Displacement fields in normalised head coordinates, layout `[basis][plane][row][column][component]` with
    /// [`BASIS_COMPONENTS`] components. A rendered point `u` is drawn from the canonical point `u + Σ z_k d_k(u)`
    /// (components x, y, z). The fifth component is the shade: the blend `Σ z_k s_k(u)` scales the point's colour by
    /// its exponential (clamped to [`SHADE_RANGE`]), so that a basis brings the furrows and folds an expression casts,
    /// which moving the photo's colours cannot. The fourth component is the opening: where lips part, the size of the
    /// gap a basis opens at weight 1 over the point's distance from the lips' line, so that the blend `Σ z_k o_k(u)`
    /// exceeds 1 exactly inside the gap the blended bases open (0 where a basis opens nothing). The renderer draws such
    /// a point in [`MOUTH_INTERIOR`], blending from the decoded colour between [`OPENING_START`] and [`OPENING_FULL`]:
    /// a displacement field alone can only move colours, and at partial weights it would smear lips and teeth across
    /// the gap.
    pub motion_bases: Arc<[f16]>,
    /// The decoder.
    pub decoder: DecoderMlp,
    /// The mouth: where the renderer draws synthesized teeth inside the gap the lips open.
    pub mouth: Mouth,
    /// The photo's own expression, measured from its landmarks (all zero for a head not made from a photo).
    #[serde(default)]
    pub expression: PhotoExpression,
    /// The eyes the renderer turns with the gaze (none for a head not made from a photo).
    #[serde(default)]
    pub eyes: Eyes,
}

/// The eyeball's radius over the width of the eye's opening (about 12 mm behind a 30 mm wide eye).
pub const EYEBALL_PER_WIDTH: f32 = 0.4;
/// Inside an eye's opening the turn is whole up to this share of the way to the lids, then fades to nothing at
/// them, so that the lids and the skin around them stay.
pub const EYE_FADE: f32 = 0.65;
/// Where a turned eye shows what was hidden behind the lids at rest, it shows the eyeball at this share of the way
/// from the opening's middle to its rim (the sclera beside the iris) instead.
pub const EYEBALL_SHOWN: f32 = 0.75;

/// One eye: where its lids part at rest, and the eyeball behind the opening.
///
/// The renderer turns it by the gaze ([`MarchUniform::with_gaze`](crate::render::MarchUniform::with_gaze)): each
/// point inside the opening shows the colour that the turned eyeball's surface carries there, taken from the same
/// eyeball at rest (the photo's iris and sclera). The turn fades out towards the lids ([`EYE_FADE`]), so the iris
/// moves and the lids stay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Eye {
    /// The middle of the opening, head space x and y, metres.
    pub centre: Vec2,
    /// Half the opening's width and height, metres (zero: no eye to turn).
    pub half_size: Vec2,
    /// The eyeball's radius, metres.
    pub radius: f32,
}

/// The two eyes: `left` is the subject's left (+x in head space), as in ARKit's names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Eyes {
    /// The subject's left eye.
    pub left: Eye,
    /// The subject's right eye.
    pub right: Eye,
}

impl Eye {
    /// The four floats the shader reads per eye (`March::eye_left`, `March::eye_right`): centre x, y, half width,
    /// half height.
    pub fn to_array(self) -> [f32; 4] {
        [
            self.centre.x,
            self.centre.y,
            self.half_size.x,
            self.half_size.y,
        ]
    }

    /// Where the head's point `p` (head space x and y, metres) takes its colour from when this eye is turned by
    /// `turn` (yaw towards +x, pitch up, radians): the point of the eyeball at rest that the turn brings to `p`
    /// (kept inside the opening), moved only as far as the fade towards the lids allows. `p` itself outside the
    /// opening.
    pub fn source(&self, p: Vec2, turn: Vec2) -> Vec2 {
        let half = self.half_size;
        if half.x <= 0.0 || half.y <= 0.0 || turn == Vec2::ZERO {
            return p;
        }
        let d = (p - self.centre) / half;
        let t = d.length();
        if t >= 1.0 {
            return p;
        }
        let fade = 1.0 - smoothstep(EYE_FADE, 1.0, t);
        let q = p - self.centre;
        let z = (self.radius * self.radius - q.length_squared())
            .max(0.0)
            .sqrt();
        let (sin_yaw, cos_yaw) = turn.x.sin_cos();
        let (sin_pitch, cos_pitch) = turn.y.sin_cos();
        // Undo the yaw (about +y), then the pitch (about +x): the eyeball's point at rest.
        let a = Vec3::new(
            q.x * cos_yaw - z * sin_yaw,
            q.y,
            q.x * sin_yaw + z * cos_yaw,
        );
        let rest = Vec2::new(a.x, a.y * cos_pitch - a.z * sin_pitch);
        // Kept inside the part of the opening that shows the eyeball (not the corners and lids).
        let inside = rest / half;
        let rest = if inside.length() > EYEBALL_SHOWN {
            inside / inside.length() * EYEBALL_SHOWN * half
        } else {
            rest
        };
        p + (self.centre + rest - p) * fade
    }
}

/// Where a head's lips meet, and whether its open mouth shows synthesized upper teeth.
///
/// Where the lips part, the renderer draws the mouth's interior ([`MOUTH_INTERIOR`]) and, with `teeth` > 0, a row
/// of upper teeth ([`TEETH`], [`TOOTH_WIDTHS`]) hanging from the lips' line: they fill the gap above it (a raised
/// upper lip) and reach [`TEETH_SHOW`] below it (an open jaw), receding into shadow towards the corners and in
/// gaps thinner than [`TEETH_LIT_GAP`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Mouth {
    /// The middle of the lips' line, head space x and y, metres.
    pub centre: Vec2,
    /// Half the mouth's width, metres.
    pub half_width: f32,
    /// How strongly the teeth show, 0..1: 1 for a portrait with closed lips (it has no teeth to show), 0 for one
    /// that shows its own (they move with the lips).
    pub teeth: f32,
}

impl Mouth {
    /// The four floats the shader reads (`March::mouth`): centre x, y, half width, teeth.
    pub fn to_array(self) -> [f32; 4] {
        [self.centre.x, self.centre.y, self.half_width, self.teeth]
    }
}

/// Why a head asset cannot be used.
#[derive(Debug, Error, PartialEq)]
pub enum HeadAssetError {
    /// Some array does not have the length its dimensions say.
    #[error("head asset: {what} has {actual} values but its dimensions need {expected}")]
    Length {
        /// Which array.
        what: &'static str,
        /// Values the dimensions call for.
        expected: usize,
        /// Values present.
        actual: usize,
    },
    /// A dimension is zero, odd where it must be even, or above what the renderer supports.
    #[error("head asset: {0}")]
    Dimension(String),
}

impl HeadAsset {
    /// Checks that every dimension is supported and every array has the length its dimensions imply.
    pub fn validate(&self) -> Result<(), HeadAssetError> {
        let c = self.channels;
        if c == 0 || !c.is_multiple_of(2) || c > MAX_CHANNELS {
            return Err(HeadAssetError::Dimension(format!(
                "channels must be even and in 2..={MAX_CHANNELS}, got {c}"
            )));
        }
        let h = self.decoder.hidden;
        if h == 0 || h > MAX_HIDDEN {
            return Err(HeadAssetError::Dimension(format!(
                "decoder hidden width must be in 1..={MAX_HIDDEN}, got {h}"
            )));
        }
        if self.triplane_resolution < 2 || self.motion_resolution < 2 {
            return Err(HeadAssetError::Dimension(format!(
                "plane resolutions must be at least 2, got {} and {}",
                self.triplane_resolution, self.motion_resolution
            )));
        }
        let mouth = self.mouth;
        if !((0.0..=1.0).contains(&mouth.teeth)
            && mouth.half_width >= 0.0
            && mouth.half_width.is_finite()
            && mouth.centre.is_finite())
        {
            return Err(HeadAssetError::Dimension(format!(
                "mouth must have a finite centre and half width >= 0 and teeth in 0..=1, got {mouth:?}"
            )));
        }
        if !(self.half_extent.min_element() > 0.0 && self.half_extent.is_finite()) {
            return Err(HeadAssetError::Dimension(format!(
                "half_extent must be positive and finite, got {}",
                self.half_extent
            )));
        }
        let r = self.triplane_resolution;
        let m = self.motion_resolution;
        let checks = [
            ("triplane", PLANES * r * r * c, self.triplane.len()),
            (
                "motion_bases",
                self.basis_count * PLANES * m * m * BASIS_COMPONENTS,
                self.motion_bases.len(),
            ),
            ("decoder.w1", h * c, self.decoder.w1.len()),
            ("decoder.b1", h, self.decoder.b1.len()),
            ("decoder.w2", DECODER_OUTPUTS * h, self.decoder.w2.len()),
            ("decoder.b2", DECODER_OUTPUTS, self.decoder.b2.len()),
        ];
        for (what, expected, actual) in checks {
            if expected != actual {
                return Err(HeadAssetError::Length {
                    what,
                    expected,
                    actual,
                });
            }
        }
        Ok(())
    }

    /// Decoder weights flattened as the shader reads them: `w1, b1, w2, b2`.
    pub fn decoder_buffer(&self) -> Vec<f32> {
        let d = &self.decoder;
        [&d.w1[..], &d.b1[..], &d.w2[..], &d.b2[..]].concat()
    }

    /// The basis that undoes the photo's expression (the rest field, see [`crate::identity::expression`]), when
    /// the head has one: the one after the motion code's [`bases::COUNT`].
    pub fn rest_basis(&self) -> Option<usize> {
        (self.basis_count > bases::COUNT).then_some(bases::COUNT)
    }

    /// The weights of all the head's bases for `motion_code` (the motion encoder's output) shown over `base`:
    /// the code, zeros for missing or non-finite weights, and the rest field's weight (1 for a neutral base).
    pub fn basis_weights(&self, motion_code: &[f32], base: ExpressionBase) -> Vec<f32> {
        let mut weights: Vec<f32> = (0..self.basis_count.max(1))
            .map(|k| {
                motion_code
                    .get(k)
                    .copied()
                    .filter(|w| w.is_finite())
                    .unwrap_or(0.0)
            })
            .collect();
        if let Some(rest) = self.rest_basis() {
            weights[rest] = if base == ExpressionBase::Neutral {
                1.0
            } else {
                0.0
            };
        }
        weights
    }

    /// The mouth as drawn over `base`: a neutral base closes the photo's lips, so its teeth are the synthesized
    /// ones.
    pub fn mouth_for(&self, base: ExpressionBase) -> Mouth {
        match (base, self.rest_basis()) {
            (ExpressionBase::Neutral, Some(_))
                if super::expression::closes_lips(&self.expression) =>
            {
                Mouth {
                    teeth: 1.0,
                    ..self.mouth
                }
            }
            _ => self.mouth,
        }
    }

    /// Bytes this asset occupies on the GPU (features, bases, decoder), for memory budgets.
    pub fn gpu_bytes(&self) -> usize {
        self.triplane.len() * 2 + self.motion_bases.len() * 2 + self.decoder_buffer().len() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::procedural::procedural_head;

    #[test]
    fn validate_names_what_is_wrong() {
        let good = procedural_head(8, 4);
        let mut odd = good.clone();
        odd.channels = 7;
        assert!(
            matches!(odd.validate(), Err(HeadAssetError::Dimension(m)) if m.contains("channels"))
        );
        let mut wide = good.clone();
        wide.decoder.hidden = MAX_HIDDEN + 1;
        assert!(
            matches!(wide.validate(), Err(HeadAssetError::Dimension(m)) if m.contains("hidden"))
        );
        let mut flat = good.clone();
        flat.half_extent.y = 0.0;
        assert!(
            matches!(flat.validate(), Err(HeadAssetError::Dimension(m)) if m.contains("half_extent"))
        );
        for mouth in [
            Mouth {
                teeth: 1.5,
                ..good.mouth
            },
            Mouth {
                teeth: f32::NAN,
                ..good.mouth
            },
            Mouth {
                half_width: -0.01,
                ..good.mouth
            },
            Mouth {
                centre: Vec2::new(f32::INFINITY, 0.0),
                ..good.mouth
            },
        ] {
            let bad = HeadAsset {
                mouth,
                ..good.clone()
            };
            assert!(
                matches!(bad.validate(), Err(HeadAssetError::Dimension(m)) if m.contains("mouth")),
                "{mouth:?}"
            );
        }
        let mut short = good.clone();
        short.motion_bases = Arc::from(&short.motion_bases[1..]);
        assert!(matches!(
            short.validate(),
            Err(HeadAssetError::Length {
                what: "motion_bases",
                ..
            })
        ));
        assert_eq!(good.validate(), Ok(()));
    }
}
