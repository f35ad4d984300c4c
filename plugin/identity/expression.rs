//! The photo's own expression: measured from its landmarks ([`PhotoExpression`]) and undone by the head's rest
//! field ([`rest_field`]), so that a head's rest state is a neutral face whatever the photo shows.
//!
//! The measures are in head space (metres, +y up), where the portrait's scale is set by the distance between the
//! eyes ([`EYE_DISTANCE_M`](super::construct)), so a millimetre means the same on every photo. What a neutral face
//! measures comes from facial anthropometry: in repose the mouth's corners sit level with the line where the lips
//! meet, the mouth is about 0.85 interpupillary distances wide, the lips touch, the eye opening is about 0.3 of
//! the eye's width. A smile lifts the corners 5–12 mm and widens the mouth; a laugh parts the lips over the teeth.
//!
//! The rest field is one more displacement field beside the motion bases (the head asset's basis
//! [`bases::COUNT`](super::rig::bases::COUNT), weighted 1 for [`ExpressionBase::Neutral`] and 0 for
//! [`ExpressionBase::Photo`]): it moves the mouth's corners back to where a neutral mouth has them and closes the
//! lips over a gap. Where closing needs pixels the photo does not have (the lips over the teeth of a smile) the
//! field stretches the lips' own colours over a small gap, and the synthesized teeth ([`Mouth`]) take over when
//! the mouth opens again. What it cannot undo is reported ([`ExpressionLimit`]) and left as the photo has it:
//! closed eyes (the photo has no picture of the eyes), lips apart over the teeth and the rest of a broad smile
//! (both need lip and skin texture the head does not synthesize yet).

use bevy::math::{Vec2, Vec3};
use half::f16;
use serde::{Deserialize, Serialize};

use super::construct::EYE_DISTANCE_M;
use super::head_asset::{BASIS_COMPONENTS, Mouth, PLANES};
use super::landmarks::FaceLandmarks;
use super::landmarks::landmark_index as lm;
use super::maps::{smoothstep, texel_centre};
use super::rig::bump;

/// Mouth corners of a neutral face sit this far above the lips' meeting line, metres (level with it).
const NEUTRAL_CORNER_RISE_M: f32 = 0.0;
/// How far a corner's rise above [`NEUTRAL_CORNER_RISE_M`] must go before it counts as a smile, metres: the
/// measure's noise on neutral photos.
const CORNER_DEAD_ZONE_M: f32 = 0.001;
/// Corner rise of a full smile (ARKit `mouthSmile*` = 1) above a neutral mouth's, metres: a broad smile on a
/// photo (the rig's smile basis, which also pulls the corner out, lifts it up to 8 mm).
const SMILE_RISE_M: f32 = 0.005;
/// Corner drop of a full frown (ARKit `mouthFrown*` = 1) below a neutral mouth's, metres (the rig's frown basis
/// lowers it up to 7 mm).
const FROWN_DROP_M: f32 = 0.004;
/// Half width of a neutral mouth, metres: 0.425 interpupillary distances.
const NEUTRAL_MOUTH_HALF_WIDTH_M: f32 = 0.0268;
/// Lip gap of a fully open jaw (ARKit `jawOpen` = 1), metres: the rig's jaw basis at weight 1.
const JAW_OPEN_GAP_M: f32 = 0.02;
/// Lips closer than this at the middle count as touching, metres.
const LIPS_TOUCH_M: f32 = 0.0008;
/// The widest gap the rest field closes, metres: lips barely apart, closed by stretching their own colours.
/// Beyond it the photo shows teeth, and closing over them needs lip texture the head does not synthesize yet (the
/// teeth squeeze into a bright line), so the lips stay apart and the head says so.
pub const MAX_CLOSED_GAP_M: f32 = 0.003;
/// How far the rest field moves a mouth corner at most, metres. Moving a broad smile's corners further drags the
/// smile's cheek folds into creases, so the smile is undone by this much and the head says so.
pub const MAX_CORNER_MOVE_M: f32 = 0.003;
/// Eye opening (lid to lid over the eye's width) at and below which an eye is closed, and from which it is open.
const EYE_CLOSED: f32 = 0.06;
const EYE_OPEN: f32 = 0.2;
/// Eye opening from which an eye is wide open (`eyeWide*` starts) and where it is fully wide.
const EYE_WIDE: (f32, f32) = (0.38, 0.5);
/// Height of the middle of a neutral brow above the upper lid, metres, and of a fully lowered one.
const BROW_HEIGHT_M: (f32, f32) = (0.0055, 0.0025);
/// Height of the inner end of a neutral brow above the upper lid, metres, and of a fully raised one.
const INNER_BROW_HEIGHT_M: (f32, f32) = (0.0075, 0.0135);

/// Points of the inner lips, upper and lower paired by their place along the mouth (MediaPipe's face mesh), from
/// the subject's right corner to the left one, middle included.
const INNER_LIP_PAIRS: [(usize, usize); 9] = [
    (191, 95),
    (80, 88),
    (81, 178),
    (82, 87),
    (lm::UPPER_LIP, lm::LOWER_LIP),
    (312, 317),
    (311, 402),
    (310, 318),
    (415, 324),
];

/// What the head's rest state shows.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, bevy::reflect::Reflect,
)]
pub enum ExpressionBase {
    /// A neutral face: the photo's smile, frown and parted lips undone (see [`PhotoExpression`]); emotions start
    /// from it, so "sad" on a smiling photo looks sad.
    #[default]
    Neutral,
    /// The photo's own face, expression and all: emotions and speech move what the photo shows.
    Photo,
}

/// Something in the photo's expression the rest field cannot undo.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum ExpressionLimit {
    /// The eyes are closed in the photo: the head has no picture of the eyes to open them with, so they stay
    /// closed at rest (blinks still work).
    EyesClosed,
    /// The lips are further apart than [`MAX_CLOSED_GAP_M`] (teeth or a laugh): they stay as the photo has them.
    LipsApart {
        /// The gap in the photo, metres.
        gap_m: f32,
    },
    /// A mouth corner sits further than [`MAX_CORNER_MOVE_M`] from a neutral mouth's (a broad smile): it moves
    /// back by that much only.
    BroadSmile {
        /// How far the corner is from a neutral mouth's, metres (the larger of the two).
        move_m: f32,
    },
}

impl std::fmt::Display for ExpressionLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EyesClosed => write!(
                f,
                "the photo's eyes are closed: the head cannot open them (the photo has no picture of the eyes), \
                 so they stay closed at rest; use a photo with open eyes"
            ),
            Self::LipsApart { gap_m } => write!(
                f,
                "the photo's lips are {:.0} mm apart (teeth show): the head cannot close them over the teeth yet, \
                 so they stay apart at rest; use a photo with the lips closed",
                gap_m * 1000.0
            ),
            Self::BroadSmile { move_m } => write!(
                f,
                "the photo smiles broadly (a mouth corner {:.0} mm from a neutral mouth's): the head undoes {:.0} mm \
                 of it; use a photo with a neutral mouth for emotions that read clearly",
                move_m * 1000.0,
                MAX_CORNER_MOVE_M * 1000.0
            ),
        }
    }
}

/// The photo's expression as ARKit-style weights (0..1, "left"/"right" the subject's, pairs `[left, right]`),
/// measured from the face's landmarks, and what the rest field could not undo.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhotoExpression {
    /// `mouthSmileLeft`, `mouthSmileRight`: the corners' rise above the lips' line.
    pub smile: [f32; 2],
    /// `mouthFrownLeft`, `mouthFrownRight`: the corners' drop below it.
    pub frown: [f32; 2],
    /// `jawOpen`: how far the lips are apart at the middle, as a share of the rig's open jaw.
    pub jaw_open: f32,
    /// The gap between the lips at the middle, metres.
    pub lips_apart_m: f32,
    /// `browInnerUp`.
    pub brow_inner_up: f32,
    /// `browDownLeft`, `browDownRight`.
    pub brow_down: [f32; 2],
    /// `eyeBlinkLeft`, `eyeBlinkRight`.
    pub eye_blink: [f32; 2],
    /// `eyeWideLeft`, `eyeWideRight`.
    pub eye_wide: [f32; 2],
    /// What the rest field cannot undo.
    pub limits: Vec<ExpressionLimit>,
}

impl PhotoExpression {
    /// The measured weights by ARKit name.
    pub fn arkit_weights(&self) -> [(&'static str, f32); 13] {
        [
            ("mouthSmileLeft", self.smile[0]),
            ("mouthSmileRight", self.smile[1]),
            ("mouthFrownLeft", self.frown[0]),
            ("mouthFrownRight", self.frown[1]),
            ("jawOpen", self.jaw_open),
            ("browInnerUp", self.brow_inner_up),
            ("browDownLeft", self.brow_down[0]),
            ("browDownRight", self.brow_down[1]),
            ("eyeBlinkLeft", self.eye_blink[0]),
            ("eyeBlinkRight", self.eye_blink[1]),
            ("eyeWideLeft", self.eye_wide[0]),
            ("eyeWideRight", self.eye_wide[1]),
            ("mouthClose", 0.0),
        ]
    }
}

/// The face's landmarks in head space, with the measures both the expression and the rest field need.
struct Face<'a> {
    points: &'a [Vec3],
    /// Middle of the lips' meeting line.
    centre: Vec2,
}

impl<'a> Face<'a> {
    fn new(points: &'a [Vec3]) -> Self {
        let centre = (points[lm::UPPER_LIP].truncate() + points[lm::LOWER_LIP].truncate()) * 0.5;
        Self { points, centre }
    }

    fn at(&self, index: usize) -> Vec2 {
        self.points[index].truncate()
    }

    /// The subject's left and right mouth corners.
    fn corners(&self) -> [Vec2; 2] {
        [self.at(lm::MOUTH_LEFT), self.at(lm::MOUTH_RIGHT)]
    }

    /// Where a neutral mouth has the corner that the photo has at `corner`: level with the lips' line and, as far
    /// as the corner's rise says the mouth is smiling, at a neutral mouth's width.
    fn neutral_corner(&self, corner: Vec2) -> Vec2 {
        let rise = corner.y - self.centre.y - NEUTRAL_CORNER_RISE_M;
        let smiling = smoothstep(CORNER_DEAD_ZONE_M, 4.0 * CORNER_DEAD_ZONE_M, rise);
        let offset = corner.x - self.centre.x;
        let narrower = offset.abs().min(NEUTRAL_MOUTH_HALF_WIDTH_M) * offset.signum();
        let y = if rise.abs() > CORNER_DEAD_ZONE_M {
            self.centre.y + NEUTRAL_CORNER_RISE_M + CORNER_DEAD_ZONE_M * rise.signum()
        } else {
            corner.y
        };
        Vec2::new(self.centre.x + offset + (narrower - offset) * smiling, y)
    }

    /// The inner lips along the mouth: (x, gap, middle of the gap y) at each point pair and at the corners
    /// (where the gap closes), sorted by x, for [`lips_at`].
    fn lip_profile(&self) -> Vec<(f32, f32, f32)> {
        let pairs = INNER_LIP_PAIRS.map(|(upper, lower)| {
            let (u, l) = (self.at(upper), self.at(lower));
            (0.5 * (u.x + l.x), (u.y - l.y).max(0.0), 0.5 * (u.y + l.y))
        });
        let corners = self.corners().map(|c| (c.x, 0.0, c.y));
        let mut sorted: Vec<(f32, f32, f32)> = pairs.into_iter().chain(corners).collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        sorted
    }
}

/// The lips' gap and the middle of the gap (y) at `x`, interpolated along `profile` ([`Face::lip_profile`]); no
/// gap beyond the corners.
fn lips_at(profile: &[(f32, f32, f32)], x: f32) -> (f32, f32) {
    let first = profile[0];
    let last = profile[profile.len() - 1];
    if x <= first.0 {
        return (0.0, first.2);
    }
    if x >= last.0 {
        return (0.0, last.2);
    }
    let k = profile.windows(2).position(|w| x <= w[1].0).unwrap_or(0);
    let (a, b) = (profile[k], profile[k + 1]);
    let t = ((x - a.0) / (b.0 - a.0).max(1e-9)).clamp(0.0, 1.0);
    (a.1 + (b.1 - a.1) * t, a.2 + (b.2 - a.2) * t)
}

/// Measures the expression of a face from its landmarks in head space (metres, +y up, e.g.
/// [`PortraitFrame::to_head`](super::PortraitFrame::to_head) of the 468 points).
pub fn measure(points: &[Vec3]) -> PhotoExpression {
    let face = Face::new(points);
    let at = |i: usize| face.at(i);
    let corner_rise = face
        .corners()
        .map(|c| c.y - face.centre.y - NEUTRAL_CORNER_RISE_M);
    let gap = (at(lm::UPPER_LIP).y - at(lm::LOWER_LIP).y).max(0.0);
    let eye_opening = |upper: usize, lower: usize, outer: usize, inner: usize| {
        (at(upper).y - at(lower).y) / at(outer).distance(at(inner)).max(1e-6)
    };
    let openings = [
        eye_opening(
            lm::LEFT_UPPER_LID,
            lm::LEFT_LOWER_LID,
            lm::LEFT_EYE_OUTER,
            lm::LEFT_EYE_INNER,
        ),
        eye_opening(
            lm::RIGHT_UPPER_LID,
            lm::RIGHT_LOWER_LID,
            lm::RIGHT_EYE_OUTER,
            lm::RIGHT_EYE_INNER,
        ),
    ];
    let brow = |inner: usize, outer: usize, lid: usize| {
        (
            0.5 * (at(inner).y + at(outer).y) - at(lid).y,
            at(inner).y - at(lid).y,
        )
    };
    let brows = [
        brow(lm::LEFT_BROW_INNER, lm::LEFT_BROW_OUTER, lm::LEFT_UPPER_LID),
        brow(
            lm::RIGHT_BROW_INNER,
            lm::RIGHT_BROW_OUTER,
            lm::RIGHT_UPPER_LID,
        ),
    ];
    let unit = |x: f32| {
        if x.is_finite() {
            x.clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let eye_blink = openings.map(|o| unit(1.0 - smoothstep(EYE_CLOSED, EYE_OPEN, o)));
    let mut limits = Vec::new();
    if eye_blink.iter().any(|&b| b > 0.5) {
        limits.push(ExpressionLimit::EyesClosed);
    }
    if gap > MAX_CLOSED_GAP_M {
        limits.push(ExpressionLimit::LipsApart { gap_m: gap });
    }
    let corner_move = face
        .corners()
        .map(|c| c.distance(face.neutral_corner(c)))
        .into_iter()
        .fold(0.0, f32::max);
    if corner_move > MAX_CORNER_MOVE_M {
        limits.push(ExpressionLimit::BroadSmile {
            move_m: corner_move,
        });
    }
    let inner_height = 0.5 * (brows[0].1 + brows[1].1);
    PhotoExpression {
        smile: corner_rise.map(|r| unit((r - CORNER_DEAD_ZONE_M) / SMILE_RISE_M)),
        frown: corner_rise.map(|r| unit((-r - CORNER_DEAD_ZONE_M) / FROWN_DROP_M)),
        jaw_open: unit(gap / JAW_OPEN_GAP_M),
        lips_apart_m: if gap.is_finite() { gap } else { 0.0 },
        brow_inner_up: unit(
            (inner_height - INNER_BROW_HEIGHT_M.0)
                / (INNER_BROW_HEIGHT_M.1 - INNER_BROW_HEIGHT_M.0),
        ),
        brow_down: brows
            .map(|(h, _)| unit((BROW_HEIGHT_M.0 - h) / (BROW_HEIGHT_M.0 - BROW_HEIGHT_M.1))),
        eye_blink,
        eye_wide: openings.map(|o| unit(smoothstep(EYE_WIDE.0, EYE_WIDE.1, o))),
        limits,
    }
}

/// Measures the expression of `landmarks` (e.g. of a render): the points scaled to head space as a head built
/// from the same picture would have them (eye distance [`EYE_DISTANCE_M`](super::construct), +y up).
pub fn measure_landmarks(landmarks: &FaceLandmarks) -> PhotoExpression {
    let p = &landmarks.points;
    let eye = |a: usize, b: usize| (p[a] + p[b]) * 0.5;
    let eyes = eye(lm::LEFT_EYE_OUTER, lm::LEFT_EYE_INNER).truncate()
        - eye(lm::RIGHT_EYE_OUTER, lm::RIGHT_EYE_INNER).truncate();
    let scale = EYE_DISTANCE_M / eyes.length().max(1.0);
    let points: Vec<Vec3> = p
        .iter()
        .map(|q| Vec3::new(q.x, -q.y, -q.z) * scale)
        .collect();
    measure(&points)
}

/// Whether the rest field closes the lips (the photo's lips are apart at the middle, by no more than
/// [`MAX_CLOSED_GAP_M`]).
pub fn closes_lips(expression: &PhotoExpression) -> bool {
    expression.lips_apart_m > LIPS_TOUCH_M && expression.lips_apart_m <= MAX_CLOSED_GAP_M
}

/// The rest field of a face (landmarks in head space, metres): one motion basis (layout `[plane][row][column]
/// [component]`, resolution `m`, normalised units, see `HeadAsset::motion_bases`; plane 0 only) that moves the
/// mouth's corners back to a neutral mouth's and closes the lips, so that at weight 1 the head shows a neutral
/// mouth. `expression` is [`measure`] of the same points.
pub fn rest_field(
    points: &[Vec3],
    expression: &PhotoExpression,
    mouth: Mouth,
    half_extent: Vec3,
    m: usize,
) -> Vec<f16> {
    let face = Face::new(points);
    let lips = face.lip_profile();
    // Each corner: the point drawn at its neutral place comes from where the photo has it (at most
    // `MAX_CORNER_MOVE_M` away); the move fades over most of the mouth's half width.
    let corner_moves: Vec<(Vec2, Vec2, f32)> = face
        .corners()
        .into_iter()
        .map(|corner| {
            let target = face.neutral_corner(corner);
            let shift = (corner - target).clamp_length_max(MAX_CORNER_MOVE_M);
            let radius = 0.9 * mouth.half_width;
            (target, shift, radius)
        })
        .collect();
    let close = closes_lips(expression);
    let upper_lip = face.at(lm::UPPER_LIP_OUTER).y - face.centre.y;
    let lower_lip = face.centre.y - face.at(lm::LOWER_LIP_OUTER).y;
    // Where the lips meet, the field jumps from drawing the upper lip to drawing the lower one: within that texel
    // it would squeeze the photo's whole gap (teeth) into a bright line, so there it opens onto the mouth's dark
    // interior instead, the line between closed lips.
    let texel = 2.0 * half_extent.y / m as f32;
    let seam = |p: Vec2| -> f32 {
        if !close {
            return 0.0;
        }
        let (gap, middle) = lips_at(&lips, p.x);
        let open = smoothstep(LIPS_TOUCH_M, 2.0 * LIPS_TOUCH_M, gap);
        let near = 1.0 - smoothstep(0.5 * texel, 1.5 * texel, (p.y - middle).abs());
        2.0 * open * near
    };
    let field = |p: Vec2| -> Vec2 {
        let mut d = Vec2::ZERO;
        for (target, shift, radius) in &corner_moves {
            d += *shift * bump(p.distance(*target), *radius);
        }
        if close {
            // The upper lip comes down and the lower lip up by half the gap each, meeting at the gap's middle; the
            // skin above the upper lip and below the lower one stretches over 10 mm.
            let (gap, middle) = lips_at(&lips, p.x);
            let half = 0.5 * gap.min(MAX_CLOSED_GAP_M);
            let across = 1.0
                - smoothstep(
                    mouth.half_width,
                    mouth.half_width * 1.25 + 0.004,
                    (p.x - face.centre.x).abs(),
                );
            let dy = p.y - middle;
            if dy >= 0.0 {
                let fade = 1.0 - smoothstep(upper_lip + 0.001, upper_lip + 0.011, dy);
                d.y += half * fade * across;
            } else {
                let fade = 1.0 - smoothstep(lower_lip + 0.001, lower_lip + 0.011, -dy);
                d.y -= half * fade * across;
            }
        }
        d
    };
    let mut out = vec![f16::ZERO; PLANES * m * m * BASIS_COMPONENTS];
    for row in 0..m {
        for col in 0..m {
            let p = Vec2::new(
                texel_centre(col, m) * half_extent.x,
                texel_centre(row, m) * half_extent.y,
            );
            let d = field(p);
            let index = (row * m + col) * BASIS_COMPONENTS;
            out[index] = f16::from_f32(d.x / half_extent.x);
            out[index + 1] = f16::from_f32(d.y / half_extent.y);
            out[index + 3] = f16::from_f32(seam(p));
        }
    }
    out
}
