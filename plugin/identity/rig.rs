//! The rig: the motion bases a head moves with. Their names and order (the motion code's), the mapping from ARKit
//! weights to their weights, and their shapes: displacement, opening and shade fields built around a face's
//! landmarks (see [`HeadAsset::motion_bases`](super::HeadAsset::motion_bases)). Where the jaw and lips part, the
//! opening component marks the gap that the renderer fills with the mouth's interior (and, when the portrait's lips
//! are closed, synthesized upper teeth: [`Mouth`]); the blinks draw the closed lids from the skin below each eye;
//! the shade component casts the creases the muscles make.

use bevy::math::{Vec2, Vec3};
use half::f16;

use super::expression::{self, PhotoExpression};
use super::head_asset::{BASIS_COMPONENTS, Mouth, PLANES};
use super::landmarks::landmark_index as lm;
use super::maps::{smoothstep, texel_centre};

/// Skin beside the mouth that an open jaw stretches, metres below the lips' line on top of the jaw's drop.
const JAW_STRETCH: f32 = 0.02;
/// How deep the mouth's interior reaches behind the upper lip, metres: further back, the lips' opening is cancelled.
const INTERIOR_DEPTH: f32 = 0.03;

/// Indices of the head's motion bases, i.e. of its motion code, and the rig's mapping from ARKit weights.
///
/// "Left" and "right" are the subject's, as in ARKit. Each basis is a displacement field around the landmarks
/// (see `motion_bases`); they add up, so e.g. `JAW_OPEN` with `LOWER_LIP_DOWN` opens the mouth further.
pub mod bases {
    /// The jaw opens: everything below the lips' meeting line moves down, the mouth's interior shows.
    pub const JAW_OPEN: usize = 0;
    /// Corner of the mouth on the subject's left goes up and out.
    pub const SMILE_LEFT: usize = 1;
    /// Corner of the mouth on the subject's right goes up and out.
    pub const SMILE_RIGHT: usize = 2;
    /// The subject's left eye closes.
    pub const BLINK_LEFT: usize = 3;
    /// The subject's right eye closes.
    pub const BLINK_RIGHT: usize = 4;
    /// The inner halves of both brows go up, with the skin between them and the forehead above.
    pub const BROW_INNER_UP: usize = 5;
    /// Corner of the mouth on the subject's left goes down.
    pub const FROWN_LEFT: usize = 6;
    /// Corner of the mouth on the subject's right goes down.
    pub const FROWN_RIGHT: usize = 7;
    /// Both corners of the mouth go out (lips stretched).
    pub const STRETCH: usize = 8;
    /// The lips narrow towards the middle (kiss).
    pub const PUCKER: usize = 9;
    /// The lips narrow and part into a rounded opening ("oo").
    pub const FUNNEL: usize = 10;
    /// The upper lip rises, opening the mouth above the lips' line.
    pub const UPPER_LIP_UP: usize = 11;
    /// The lower lip drops, opening the mouth below the lips' line.
    pub const LOWER_LIP_DOWN: usize = 12;
    /// The lips press together and roll in: the red of the lips thins.
    pub const PRESS: usize = 13;
    /// The subject's left lower lid rises.
    pub const SQUINT_LEFT: usize = 14;
    /// The subject's right lower lid rises.
    pub const SQUINT_RIGHT: usize = 15;
    /// The subject's left brow goes down and in.
    pub const BROW_DOWN_LEFT: usize = 16;
    /// The subject's right brow goes down and in.
    pub const BROW_DOWN_RIGHT: usize = 17;
    /// The outer half of the subject's left brow goes up, with the forehead above it.
    pub const BROW_OUTER_UP_LEFT: usize = 18;
    /// The outer half of the subject's right brow goes up, with the forehead above it.
    pub const BROW_OUTER_UP_RIGHT: usize = 19;
    /// Both cheeks swell outwards.
    pub const CHEEK_PUFF: usize = 20;
    /// The nose wing on the subject's left rises (sneer).
    pub const SNEER_LEFT: usize = 21;
    /// The nose wing on the subject's right rises (sneer).
    pub const SNEER_RIGHT: usize = 22;
    /// The subject's left upper lid rises: more of the eye shows.
    pub const EYE_WIDE_LEFT: usize = 23;
    /// The subject's right upper lid rises: more of the eye shows.
    pub const EYE_WIDE_RIGHT: usize = 24;
    /// Number of bases.
    pub const COUNT: usize = 25;
    /// Each basis's name, in index order (for logs, tools and tests).
    pub const NAMES: [&str; COUNT] = [
        "jawOpen",
        "smileLeft",
        "smileRight",
        "blinkLeft",
        "blinkRight",
        "browInnerUp",
        "frownLeft",
        "frownRight",
        "stretch",
        "pucker",
        "funnel",
        "upperLipUp",
        "lowerLipDown",
        "press",
        "squintLeft",
        "squintRight",
        "browDownLeft",
        "browDownRight",
        "browOuterUpLeft",
        "browOuterUpRight",
        "cheekPuff",
        "sneerLeft",
        "sneerRight",
        "eyeWideLeft",
        "eyeWideRight",
    ];

    use crate::motion::FaceCoefficients;

    /// The rig's own mapping from ARKit weights to these bases' weights (what the motion encoder learns to
    /// reproduce with temporal consistency). The jaw opens by `jawOpen` less `mouthClose` (closed lips on an open
    /// jaw stay closed); paired ARKit weights without a per-side basis are averaged.
    pub fn from_arkit(c: &FaceCoefficients) -> [f32; COUNT] {
        let w = |name: &str| c.weight(name).unwrap_or(0.0);
        let both = |left: &str, right: &str| 0.5 * (w(left) + w(right));
        let mut code = [0.0; COUNT];
        code[JAW_OPEN] = w("jawOpen") - w("mouthClose");
        code[SMILE_LEFT] = w("mouthSmileLeft");
        code[SMILE_RIGHT] = w("mouthSmileRight");
        code[BLINK_LEFT] = w("eyeBlinkLeft");
        code[BLINK_RIGHT] = w("eyeBlinkRight");
        code[BROW_INNER_UP] = w("browInnerUp");
        code[FROWN_LEFT] = w("mouthFrownLeft");
        code[FROWN_RIGHT] = w("mouthFrownRight");
        code[STRETCH] = both("mouthStretchLeft", "mouthStretchRight");
        code[PUCKER] = w("mouthPucker");
        code[FUNNEL] = w("mouthFunnel");
        code[UPPER_LIP_UP] = both("mouthUpperUpLeft", "mouthUpperUpRight");
        code[LOWER_LIP_DOWN] = both("mouthLowerDownLeft", "mouthLowerDownRight");
        code[PRESS] =
            both("mouthPressLeft", "mouthPressRight").max(both("mouthRollUpper", "mouthRollLower"));
        code[SQUINT_LEFT] = w("eyeSquintLeft").max(w("cheekSquintLeft"));
        code[SQUINT_RIGHT] = w("eyeSquintRight").max(w("cheekSquintRight"));
        code[BROW_DOWN_LEFT] = w("browDownLeft");
        code[BROW_DOWN_RIGHT] = w("browDownRight");
        code[BROW_OUTER_UP_LEFT] = w("browOuterUpLeft");
        code[BROW_OUTER_UP_RIGHT] = w("browOuterUpRight");
        code[CHEEK_PUFF] = w("cheekPuff");
        code[SNEER_LEFT] = w("noseSneerLeft");
        code[SNEER_RIGHT] = w("noseSneerRight");
        code[EYE_WIDE_LEFT] = w("eyeWideLeft");
        code[EYE_WIDE_RIGHT] = w("eyeWideRight");
        code.map(|v| {
            if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            }
        })
    }
}

/// A smooth bump: 1 at distance 0, 0 from `radius` on.
pub(super) fn bump(distance: f32, radius: f32) -> f32 {
    1.0 - smoothstep(0.0, radius, distance)
}

/// What the motion bases need to know of the head's colours.
pub(super) struct Palette<'a> {
    /// Front colour (linear RGB) at a head-space x, y (metres).
    pub(super) colour_at: &'a dyn Fn(Vec2) -> [f32; 3],
    /// Median skin colour of the face.
    pub(super) skin: [f32; 3],
}

/// A plateau: 0 at `a` and `d`, 1 between `b` and `c`, smooth in between.
pub(super) fn plateau(a: f32, b: f32, c: f32, d: f32, x: f32) -> f32 {
    smoothstep(a, b, x) * (1.0 - smoothstep(c, d, x))
}

/// One side of the face (the subject's left or right): the landmarks its bases are built around, head-space x, y.
struct Side {
    /// The eye's centre (between its corners) and half its width.
    eye: Vec2,
    eye_half: f32,
    eye_outer: Vec2,
    /// Where a blink draws the closed lid from: the height of the skin band next to the eye closest to skin colour.
    closed_lid_y: f32,
    upper_lid: Vec2,
    lower_lid: Vec2,
    brow_inner: Vec2,
    brow_outer: Vec2,
    mouth_corner: Vec2,
    nose_wing: Vec2,
    cheek: Vec2,
}

/// Motion bases as backward displacement fields on plane 0 (x, y), in normalised units: the point drawn at `u`
/// comes from `u + d`; the fourth component is the opening where the lips part (see `HeadAsset::motion_bases`),
/// around the lips' line of `mouth`. The [`bases::COUNT`] bases of the motion code, then the rest field
/// ([`expression::rest_field`] of `photo_expression`).
pub(super) fn motion_bases(
    face: &[Vec3],
    (mouth, photo_expression): (Mouth, &PhotoExpression),
    half_extent: Vec3,
    m: usize,
    palette: &Palette,
) -> Vec<f16> {
    let at = |i: usize| face[i].truncate();
    let (mouth_centre, mouth_half_width) = (mouth.centre, mouth.half_width);
    let jaw_drop = 0.02;
    // How far the lips part (metres) for the bases that only move the lips, above and below their line.
    const FUNNEL_UP: f32 = 0.0015;
    const FUNNEL_DOWN: f32 = 0.0025;
    const UPPER_LIP_UP: f32 = 0.003;
    const LOWER_LIP_DOWN: f32 = 0.004;
    // How far a lowered brow's inner end moves down and towards the other brow, metres.
    const BROW_LOWER: f32 = 0.009;
    const BROW_KNIT: f32 = 0.004;
    // How far a smile moves its corner out and up, and a frown its corner in and down, metres.
    const SMILE_MOVE: Vec2 = Vec2::new(0.005, 0.008);
    const FROWN_MOVE: Vec2 = Vec2::new(0.002, 0.007);
    // How much a crease darkens the colour at its deepest, at full weight (log of the factor).
    const FOLD_SHADE: f32 = 0.5;
    // The lips part at once (their displacement jumps at the lips' line) but the field can only change over one
    // motion texel: the jump is spread over the texel next to the line on the side that moves.
    let texel = 2.0 * half_extent.y / m as f32;
    // The closed lid: the skin band around each eye (above or below it) closest to the face's skin colour.
    let lid_source = |centre: Vec2, half: f32| {
        let mut best = (f32::MAX, centre.y - half * 0.75);
        for k in [-0.75, -0.9, -1.05, -1.2] {
            let y = centre.y + half * k;
            let distance: f32 = (0..=8)
                .map(|i| {
                    let x = centre.x + half * 1.2 * (i as f32 / 4.0 - 1.0);
                    let c = (palette.colour_at)(Vec2::new(x, y));
                    (0..3)
                        .map(|j| (c[j] - palette.skin[j]).powi(2))
                        .sum::<f32>()
                })
                .fold(0.0, f32::max);
            if distance < best.0 {
                best = (distance, y);
            }
        }
        best.1
    };
    let side_marks = |left: bool| {
        let pick = |l: usize, r: usize| at(if left { l } else { r });
        let (outer, inner) = (
            pick(lm::LEFT_EYE_OUTER, lm::RIGHT_EYE_OUTER),
            pick(lm::LEFT_EYE_INNER, lm::RIGHT_EYE_INNER),
        );
        let (eye, eye_half) = ((outer + inner) * 0.5, outer.distance(inner) * 0.5);
        Side {
            eye,
            eye_half,
            eye_outer: outer,
            closed_lid_y: lid_source(eye, eye_half),
            upper_lid: pick(lm::LEFT_UPPER_LID, lm::RIGHT_UPPER_LID),
            lower_lid: pick(lm::LEFT_LOWER_LID, lm::RIGHT_LOWER_LID),
            brow_inner: pick(lm::LEFT_BROW_INNER, lm::RIGHT_BROW_INNER),
            brow_outer: pick(lm::LEFT_BROW_OUTER, lm::RIGHT_BROW_OUTER),
            mouth_corner: pick(lm::MOUTH_LEFT, lm::MOUTH_RIGHT),
            nose_wing: pick(lm::LEFT_NOSE_WING, lm::RIGHT_NOSE_WING),
            cheek: pick(lm::LEFT_CHEEK, lm::RIGHT_CHEEK),
        }
    };
    let (left_side, right_side) = (side_marks(true), side_marks(false));
    // The subject's left side (or right).
    let side = |left: bool| if left { &left_side } else { &right_side };
    let (upper_lip_outer, lower_lip_outer) = (at(lm::UPPER_LIP_OUTER), at(lm::LOWER_LIP_OUTER));
    // How much a raised brow basis lifts a point on the subject's left (or right) side, with the part of the brow
    // it lifts given as a weight along the brow (`along(t)`, t = 0 at the inner end, 1 at the outer end):
    // nothing half way between the eye's centre line and its upper lid, all from 2 mm above the brow's lower edge
    // to 12 mm above it, fading out over the forehead by 35 mm. The lid's skin stretches (the lid itself rises a
    // little, as it does), the forehead's compresses; the ramps are long enough that the field never folds.
    let brow_raise = 0.006;
    // Where `p` lies along the subject's left (or right) brow (t, as above), the height of the brow's lower edge
    // there and the height half way between the eye's centre line and its upper lid.
    let brow_frame = |p: Vec2, left: bool| -> (f32, f32, f32) {
        let s = side(left);
        let axis = s.brow_outer - s.brow_inner;
        let t = (p - s.brow_inner).dot(axis) / axis.length_squared().max(1e-9);
        (
            t,
            s.brow_inner.y + axis.y * t.clamp(0.0, 1.0),
            0.5 * (s.upper_lid.y + s.eye.y),
        )
    };
    let brow_lift = |p: Vec2, left: bool, along: &dyn Fn(f32) -> f32| -> f32 {
        let (t, brow_y, below) = brow_frame(p, left);
        let vertical = smoothstep(below, brow_y + 0.002, p.y)
            * (1.0 - smoothstep(brow_y + 0.012, brow_y + 0.035, p.y));
        // A smoothstep's steepest slope is 1.5 times its mean: the lift stays under half the span it stretches
        // (a brow set close to its eye lifts less), so the lid's skin stretches at most 75 % and never folds.
        let room = (0.5 * (brow_y + 0.002 - below) / brow_raise).clamp(0.0, 1.0);
        along(t) * vertical * room
    };
    // The mouth's corner on the subject's left (or right) and the sign of x away from the mouth's middle there.
    let corner_of = |left: bool| -> (Vec2, f32) {
        let corner = side(left).mouth_corner;
        (corner, (corner.x - mouth_centre.x).signum())
    };
    let on_left = |p: Vec2| (p.x >= mouth_centre.x) == (left_side.brow_inner.x >= mouth_centre.x);
    // The inner part of the brow (and the skin between the brows) against the outer part: the two add up to one
    // along the whole brow, so raising both lifts it evenly; past the outer end the lift fades over the temple.
    let inner_part = |t: f32| 1.0 - smoothstep(0.2, 0.8, t);
    let outer_part = |t: f32| smoothstep(0.2, 0.8, t) * (1.0 - smoothstep(1.0, 1.4, t));
    // How much a lowered brow basis moves a point on the subject's left (or right) side: all of it along the
    // brow's lower edge and 10 mm above, most at its inner end (the brows lower and knit into a V, AU4), fading
    // out to the eye's upper lid (whose skin bunches up) and over the forehead by 35 mm.
    let brow_lower = |p: Vec2, left: bool| -> f32 {
        let (t, brow_y, below) = brow_frame(p, left);
        let vertical = plateau(below, brow_y - 0.002, brow_y + 0.010, brow_y + 0.035, p.y);
        let along = smoothstep(-0.5, 0.0, t)
            * (1.0 - 0.6 * smoothstep(0.0, 1.0, t))
            * (1.0 - smoothstep(1.0, 1.3, t));
        along * vertical
    };

    // The jaw moves the face below the mouth as a whole, fading out from 0.8 to 2.4 half widths of the mouth either
    // side of its middle (`across`); the share of its drop by which the lips part (`parted`) falls off as a
    // parabola to nothing just inside the corners, so the open mouth is rounded at the bottom.
    let jaw_spread = |p: Vec2| {
        let dx = (p.x - mouth_centre.x).abs();
        let corner = dx / (mouth_half_width * 0.95);
        (
            1.0 - smoothstep(0.8 * mouth_half_width, 2.4 * mouth_half_width, dx),
            (1.0 - corner * corner).max(0.0),
        )
    };
    // The lips part around their meeting line: the upper lip and the skin above it move up by `up`, the lower lip
    // and the skin below down by `down` (fading out over 8 mm), both tapering to nothing at `width` from the
    // middle. What shows in the gap is the mouth's interior: see `lips_opening`.
    let lip_taper = |p: Vec2, width: f32| bump((p.x - mouth_centre.x).abs(), width);
    let open_lips = |p: Vec2, up: f32, down: f32, width: f32| -> Vec2 {
        let taper = lip_taper(p, width);
        let (up, down) = (up * taper, down * taper);
        let dy = p.y - mouth_centre.y;
        let reach = 0.008;
        let parting = (dy.abs() / texel).min(1.0);
        if dy >= 0.0 {
            Vec2::new(0.0, -up * parting * (1.0 - smoothstep(up, up + reach, dy)))
        } else {
            Vec2::new(
                0.0,
                down * parting * (1.0 - smoothstep(down, down + reach, -dy)),
            )
        }
    };
    // The opening component of a basis that parts the lips by `up` above their line and `down` below it (at this
    // x): the gap on the point's side over the point's distance from the line (at least half a texel, so the
    // stored values stay finite). Blended over the bases it exceeds 1 inside the gap the blend opens (to within the
    // texels' interpolation), where the renderer draws the mouth's interior (see `HeadAsset::motion_bases`).
    let lips_opening = |p: Vec2, up: f32, down: f32| -> f32 {
        let dy = p.y - mouth_centre.y;
        let gap = if dy >= 0.0 { up } else { down };
        gap / dy.abs().max(0.5 * texel)
    };
    // The lips narrow towards the middle by `amount` of their half width: each point shows what lies further out.
    let narrow = |p: Vec2, amount: f32| -> Vec2 {
        let offset = p - mouth_centre;
        let reach = (offset / Vec2::new(mouth_half_width * 1.3, 0.012)).length();
        Vec2::new(offset.x * amount * bump(reach, 1.0), 0.0)
    };

    let displacement = |basis: usize, p: Vec2| -> Vec2 {
        match basis {
            bases::JAW_OPEN => {
                // Everything below the lips' line is drawn from `jaw_drop` higher up (less down the neck).
                // Between the lips the drop comes at once, so they part and the gap shows the mouth's interior;
                // beside the mouth it grows over `jaw_drop` + `JAW_STRETCH` below the line, so the skin stretches
                // (over `jaw_drop` alone, a fully open jaw would draw that whole band from the lips' line: streaks).
                let below = mouth_centre.y - p.y;
                let (across, parted) = jaw_spread(p);
                let lift = jaw_drop
                    * (parted * (below / texel).clamp(0.0, 1.0)
                        + (1.0 - parted) * (below / (jaw_drop + JAW_STRETCH)).clamp(0.0, 1.0));
                let chin_fade = 1.0 - smoothstep(0.06, 0.09, below);
                Vec2::new(0.0, lift * chin_fade.max(0.35) * across)
            }
            bases::SMILE_LEFT | bases::SMILE_RIGHT => {
                let (corner, outward) = corner_of(basis == bases::SMILE_LEFT);
                let w = bump(p.distance(corner), mouth_half_width * 0.9);
                -Vec2::new(SMILE_MOVE.x * outward, SMILE_MOVE.y) * w
            }
            bases::BLINK_LEFT | bases::BLINK_RIGHT => {
                let s = side(basis == bases::BLINK_LEFT);
                let (centre, half, source) = (s.eye, s.eye_half, s.closed_lid_y);
                // Inside the eye opening, points are drawn from the skin next to the eye (the lid's colour),
                // except at the opening's top and bottom edges, which stay as the lashes' line.
                let lid = centre.y + half * 0.55;
                let across = bump((p.x - centre.x).abs(), half * 1.25);
                let span = half * 0.55;
                let closing = plateau(
                    centre.y - span,
                    centre.y - 0.4 * span,
                    lid - 0.3 * span,
                    lid,
                    p.y,
                );
                Vec2::new(0.0, (source - p.y) * closing * across)
            }
            bases::BROW_INNER_UP => {
                Vec2::new(0.0, -brow_raise * brow_lift(p, on_left(p), &inner_part))
            }
            bases::FROWN_LEFT | bases::FROWN_RIGHT => {
                let (corner, outward) = corner_of(basis == bases::FROWN_LEFT);
                let w = bump(p.distance(corner), mouth_half_width * 0.9);
                Vec2::new(-FROWN_MOVE.x * outward, FROWN_MOVE.y) * w
            }
            bases::STRETCH => {
                let (corner, outward) = corner_of(
                    (p.x >= mouth_centre.x) == (left_side.mouth_corner.x >= mouth_centre.x),
                );
                let w = bump(p.distance(corner), mouth_half_width * 0.9);
                Vec2::new(-0.006 * outward, 0.0) * w
            }
            bases::PUCKER => narrow(p, 0.35),
            bases::FUNNEL => {
                narrow(p, 0.2) + open_lips(p, FUNNEL_UP, FUNNEL_DOWN, mouth_half_width * 0.6)
            }
            bases::UPPER_LIP_UP => open_lips(p, UPPER_LIP_UP, 0.0, mouth_half_width),
            bases::LOWER_LIP_DOWN => open_lips(p, 0.0, LOWER_LIP_DOWN, mouth_half_width),
            bases::PRESS => {
                // The red of each lip is drawn from further out, so it thins towards the lips' line.
                let dy = p.y - mouth_centre.y;
                let band = if dy >= 0.0 {
                    upper_lip_outer.y - mouth_centre.y
                } else {
                    mouth_centre.y - lower_lip_outer.y
                }
                .max(0.002);
                let w = (1.0 - smoothstep(band, 2.0 * band, dy.abs()))
                    * bump((p.x - mouth_centre.x).abs(), mouth_half_width * 1.1);
                Vec2::new(0.0, 0.5 * dy * w)
            }
            bases::SQUINT_LEFT | bases::SQUINT_RIGHT => {
                let s = side(basis == bases::SQUINT_LEFT);
                let (centre, half, lid) = (s.eye, s.eye_half, s.lower_lid);
                // The lower lid and the cheek under it move up by 55 % of the eye's lower half.
                let rise = 0.55 * (centre.y - lid.y).max(0.001);
                let w = plateau(lid.y - 0.016, lid.y - 0.006, lid.y, centre.y, p.y)
                    * bump((p.x - centre.x).abs(), half * 1.3);
                Vec2::new(0.0, -rise * w)
            }
            bases::BROW_DOWN_LEFT | bases::BROW_DOWN_RIGHT => {
                let left = basis == bases::BROW_DOWN_LEFT;
                let inward = (mouth_centre.x - side(left).brow_inner.x).signum();
                let w = brow_lower(p, left);
                Vec2::new(-BROW_KNIT * inward, BROW_LOWER) * w
            }
            bases::BROW_OUTER_UP_LEFT | bases::BROW_OUTER_UP_RIGHT => {
                let left = basis == bases::BROW_OUTER_UP_LEFT;
                if on_left(p) == left {
                    Vec2::new(0.0, -brow_raise * brow_lift(p, left, &outer_part))
                } else {
                    Vec2::ZERO
                }
            }
            bases::EYE_WIDE_LEFT | bases::EYE_WIDE_RIGHT => {
                let s = side(basis == bases::EYE_WIDE_LEFT);
                let (centre, half, lid) = (s.eye, s.eye_half, s.upper_lid);
                // The upper lid rises by 35 % of the eye's upper half; the opening below it stretches up from
                // the eye's centre line, the skin above compresses towards the brow.
                let rise = 0.35 * (lid.y - centre.y).max(0.001);
                let brow_y = 0.5 * (s.brow_inner.y + s.brow_outer.y);
                let w = plateau(
                    centre.y,
                    lid.y,
                    lid.y + 0.001,
                    brow_y.max(lid.y + 0.004),
                    p.y,
                ) * bump((p.x - centre.x).abs(), half * 1.3);
                Vec2::new(0.0, -rise * w)
            }
            bases::CHEEK_PUFF => {
                let cheek =
                    side((p.x >= mouth_centre.x) == (left_side.cheek.x >= mouth_centre.x)).cheek;
                let outward = (cheek.x - mouth_centre.x).signum();
                Vec2::new(-0.004 * outward * bump(p.distance(cheek), 0.025), 0.0)
            }
            bases::SNEER_LEFT | bases::SNEER_RIGHT => {
                let wing = side(basis == bases::SNEER_LEFT).nose_wing;
                let w = bump(p.distance(wing - Vec2::new(0.0, 0.004)), 0.012);
                Vec2::new(0.0, -0.005 * w)
            }
            _ => Vec2::ZERO,
        }
    };

    // The shade a basis casts (log of the factor on the colour; below 0 darker), where it shows: the furrows,
    // folds and wrinkles the skin makes as the muscles move it (see `HeadAsset::motion_bases`). Each is a soft
    // line of `width` along a segment, at full weight FOLD_SHADE deep.
    let crease = |p: Vec2, a: Vec2, b: Vec2, width: f32| -> f32 {
        let ab = b - a;
        let t = ((p - a).dot(ab) / ab.length_squared().max(1e-12)).clamp(0.0, 1.0);
        let d = p.distance(a + ab * t) / width;
        (-d * d).exp()
    };
    let brow_middle_x = 0.5 * (left_side.brow_inner.x + right_side.brow_inner.x);
    let shade = |basis: usize, p: Vec2| -> f32 {
        match basis {
            bases::BROW_DOWN_LEFT | bases::BROW_DOWN_RIGHT => {
                // AU4: a vertical furrow between the knit brows on this side, and the shadow the lowered brow
                // casts over the upper lid.
                let s = side(basis == bases::BROW_DOWN_LEFT);
                let (inner, eye, half) = (s.brow_inner, s.eye, s.eye_half);
                let x = brow_middle_x + 0.35 * (inner.x - brow_middle_x);
                let furrow = crease(
                    p,
                    Vec2::new(x, inner.y - BROW_LOWER),
                    Vec2::new(x, inner.y + 0.008),
                    0.0012,
                );
                let lid = plateau(
                    eye.y,
                    eye.y + 0.4 * half,
                    inner.y - BROW_LOWER,
                    inner.y,
                    p.y,
                ) * bump((p.x - eye.x).abs(), 1.3 * half);
                -FOLD_SHADE * furrow - 0.5 * FOLD_SHADE * lid
            }
            bases::BROW_INNER_UP | bases::BROW_OUTER_UP_LEFT | bases::BROW_OUTER_UP_RIGHT => {
                // AU1 and AU2: lines across the forehead over the raised part of the brows.
                let brow_y = 0.5 * (left_side.brow_inner.y + right_side.brow_inner.y);
                let reach = 0.6 * left_side.brow_inner.distance(left_side.brow_outer);
                let across = match basis {
                    bases::BROW_INNER_UP => bump((p.x - brow_middle_x).abs(), reach),
                    _ => {
                        let outer = side(basis == bases::BROW_OUTER_UP_LEFT).brow_outer;
                        bump((p.x - (outer.x + brow_middle_x) * 0.5).abs(), reach)
                    }
                };
                let lines: f32 = [0.014, 0.022, 0.030]
                    .iter()
                    .map(|rise| {
                        let d = (p.y - brow_y - brow_raise - rise) / 0.0012;
                        (-d * d).exp()
                    })
                    .sum();
                -0.6 * FOLD_SHADE * lines * across
            }
            bases::SMILE_LEFT | bases::SMILE_RIGHT => {
                // AU12: the nasolabial fold from above the nose wing to beside the raised corner.
                let left = basis == bases::SMILE_LEFT;
                let (corner, outward) = corner_of(left);
                let wing = side(left).nose_wing;
                let raised = corner + Vec2::new(SMILE_MOVE.x * outward, SMILE_MOVE.y);
                -FOLD_SHADE
                    * crease(
                        p,
                        wing + Vec2::new(0.003 * outward, 0.002),
                        raised + Vec2::new(0.005 * outward, -0.005),
                        0.0015,
                    )
            }
            bases::SQUINT_LEFT | bases::SQUINT_RIGHT => {
                // AU6 and AU7: crow's feet fanning out from the eye's outer corner, a fold under the lower lid.
                let s = side(basis == bases::SQUINT_LEFT);
                let (outer, eye, half, lid) = (s.eye_outer, s.eye, s.eye_half, s.lower_lid);
                let outward = (outer - eye).normalize_or_zero();
                let feet: f32 = [-0.5f32, 0.0, 0.5]
                    .iter()
                    .map(|angle| {
                        let (s, c) = angle.sin_cos();
                        let dir =
                            Vec2::new(outward.x * c - outward.y * s, outward.x * s + outward.y * c);
                        crease(p, outer + dir * 0.003, outer + dir * 0.010, 0.0008)
                    })
                    .fold(0.0, f32::max);
                let under = crease(
                    p,
                    Vec2::new(eye.x - half * 0.8, lid.y - 0.003),
                    Vec2::new(eye.x + half * 0.8, lid.y - 0.003),
                    0.0012,
                );
                -0.6 * FOLD_SHADE * (feet + under)
            }
            bases::SNEER_LEFT | bases::SNEER_RIGHT => {
                // AU9: wrinkles across the bridge of the nose, and the fold beside the raised nose wing.
                let wing = side(basis == bases::SNEER_LEFT).nose_wing;
                let eye_y = 0.5 * (left_side.eye.y + right_side.eye.y);
                // Short lines slanting down and out from the bridge's middle.
                let bridge: f32 = [0.006, 0.011]
                    .iter()
                    .map(|below| {
                        let start = Vec2::new(brow_middle_x, eye_y - below);
                        let reach = Vec2::new(0.5 * (wing.x - brow_middle_x), -0.002);
                        0.8 * crease(p, start, start + reach, 0.0015)
                    })
                    .fold(0.0, f32::max);
                let outward = (wing.x - brow_middle_x).signum();
                let fold = crease(
                    p,
                    wing + Vec2::new(0.002 * outward, 0.001),
                    wing + Vec2::new(0.006 * outward, -0.012),
                    0.0015,
                );
                -FOLD_SHADE * bridge.max(fold)
            }
            bases::FROWN_LEFT | bases::FROWN_RIGHT => {
                // AU15: the fold running down from the lowered corner.
                let (corner, outward) = corner_of(basis == bases::FROWN_LEFT);
                let lowered = corner - Vec2::new(FROWN_MOVE.x * outward, FROWN_MOVE.y);
                -0.8 * FOLD_SHADE
                    * crease(
                        p,
                        lowered + Vec2::new(0.002 * outward, 0.0),
                        lowered + Vec2::new(0.004 * outward, -0.012),
                        0.0015,
                    )
            }
            _ => 0.0,
        }
    };

    let opening = |basis: usize, p: Vec2| -> f32 {
        match basis {
            bases::JAW_OPEN => {
                let (across, parted) = jaw_spread(p);
                lips_opening(p, 0.0, jaw_drop * parted * across)
            }
            bases::FUNNEL => {
                let taper = lip_taper(p, mouth_half_width * 0.6);
                lips_opening(p, FUNNEL_UP * taper, FUNNEL_DOWN * taper)
            }
            bases::UPPER_LIP_UP => {
                lips_opening(p, UPPER_LIP_UP * lip_taper(p, mouth_half_width), 0.0)
            }
            bases::LOWER_LIP_DOWN => {
                lips_opening(p, 0.0, LOWER_LIP_DOWN * lip_taper(p, mouth_half_width))
            }
            _ => 0.0,
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
                let index = ((basis * PLANES * m + row) * m + col) * BASIS_COMPONENTS;
                out[index] = f16::from_f32(d.x / half_extent.x);
                out[index + 1] = f16::from_f32(d.y / half_extent.y);
                out[index + 3] = f16::from_f32(opening(basis, p));
                out[index + 4] = f16::from_f32(shade(basis, p));
            }
        }
    }
    // The rest field goes after the bases the motion code weights (see `HeadAsset::rest_basis`).
    out.extend(expression::rest_field(
        face,
        photo_expression,
        mouth,
        half_extent,
        m,
    ));
    // The fields above do not depend on z, so their opening would also darken the back of the head and the neck
    // behind the mouth. Plane 2 (z, y) cancels it from `INTERIOR_DEPTH` behind the lips on: there it holds minus
    // the basis's largest opening, so the blend stays under 1 whatever the weights.
    let cut = face[lm::UPPER_LIP].z - INTERIOR_DEPTH; // +z faces the camera
    for basis in 0..=bases::COUNT {
        let plane0 = basis * PLANES * m * m * BASIS_COMPONENTS;
        let largest = (0..m * m)
            .map(|t| out[plane0 + t * BASIS_COMPONENTS + 3].to_f32())
            .fold(0.0f32, f32::max);
        if largest == 0.0 {
            continue;
        }
        for row in 0..m {
            for col in 0..m {
                if texel_centre(col, m) * half_extent.z < cut {
                    let index = (((basis * PLANES + 2) * m + row) * m + col) * BASIS_COMPONENTS;
                    out[index + 3] = f16::from_f32(-largest);
                }
            }
        }
    }
    out
}
