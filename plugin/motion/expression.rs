//! What a head shows each frame: the speech's coefficients, the emotion (blended in over time) and life (blinks,
//! gaze, head motion), combined so that speech keeps priority on the mouth.
//!
//! Combination per ARKit weight (all inputs cleaned: NaN/∞ → 0, clamped to 0..1):
//! - weights that open the lips (`jawOpen`, `mouthFunnel`, `mouthLowerDown*`, `mouthUpperUp*`): speech × the
//!   emotion's expression amplitude, plus the emotion's weight × (1 − speaking), where *speaking* is 1 while the
//!   speech moved the mouth in the last 0.3 s and falls to 0 over the next 0.3 s. An open-mouthed emotion (surprise)
//!   shows in pauses, and never opens the lips that speech closes for /p b m/;
//! - `mouthClose`: speech only;
//! - other mouth, cheek and nose weights: speech × amplitude + emotion × expression scale;
//! - eyes: the emotion's, with the blink closing them (`eyeBlink*` = max(emotion, blink), `eyeWide*` reduced while
//!   the lid is down) and the gaze in `eyeLook*`;
//! - head pose: the speech's (when a model gives one) plus idle sway and speech-driven nods, scaled by the
//!   emotion's head-motion energy and [`MotionSettings::head_motion_scale`].
//!
//! Blinks are a Poisson process (the emotion's rate × [`MotionSettings::blink_rate`], at least 0.6 s apart; each
//! closes in 70 ms, holds 30 ms, opens in 160 ms) with their own random stream: nothing about head motion changes
//! when they happen.

use std::collections::VecDeque;

use bevy::prelude::*;

use super::emotion::{EmotionLibrary, EmotionProfile, MotionStyle};
use super::{ARKIT_NAMES, EYE_TURN, FaceCoefficients, arkit_index};
use crate::contract::{ARKIT_WEIGHT_COUNT, FRAME_RATE_HZ, MOTION_WINDOW};
use crate::head::{LookAt, TalkingHead};

/// Per-head motion settings: scales of each kind of movement.
#[derive(Clone, Copy, Debug, PartialEq, Reflect)]
pub struct MotionSettings {
    /// Scale of idle and speech-driven head motion (0 = the head keeps still).
    pub head_motion_scale: f32,
    /// Scale of the emotion's expression (0 = speech only).
    pub expression_scale: f32,
    /// Scale of the emotion's blink rate (0 = no blinks).
    pub blink_rate: f32,
    /// Seconds a change of emotion or intensity takes to blend in.
    pub emotion_blend_secs: f32,
    /// Scale of the eyes' darting about (saccades) around where they look (0 = the gaze holds still).
    pub saccades: f32,
}

impl Default for MotionSettings {
    fn default() -> Self {
        Self {
            head_motion_scale: 1.0,
            expression_scale: 1.0,
            blink_rate: 1.0,
            emotion_blend_secs: 0.6,
            saccades: 1.0,
        }
    }
}

impl MotionSettings {
    /// No head motion; expressions and blinks as usual (a still camera shot, a portrait UI).
    pub fn still() -> Self {
        Self {
            head_motion_scale: 0.0,
            ..default()
        }
    }
}

/// The speech's coefficients at the head's clock, before emotion and life are added (written from the head's
/// [`super::MotionTrack`]).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq)]
pub struct SpeechFace(pub FaceCoefficients);

/// A head's running expression state: the emotion blend, the speaking envelope and life. Added by the plugin.
#[derive(Component, Clone, Debug)]
pub struct Expression {
    from: EmotionProfile,
    to: EmotionProfile,
    blend: f32,
    target: Option<(String, f32)>,
    speaking: f32,
    since_speech: f32,
    nod: f32,
    life: Life,
    /// Recent faces with the life time they were shown at, oldest first (enough for the encoder's window).
    shown: VecDeque<(f64, FaceCoefficients)>,
}

/// Blinks, gaze and idle sway of one head.
#[derive(Clone, Debug)]
pub struct Life {
    time: f64,
    blink_rng: u64,
    gaze_rng: u64,
    next_blink: f64,
    blink_started: Option<f64>,
    gaze: Vec2,
    /// Where the eyes look when not darting aside ([`LookAt`]), gaze units.
    look: Vec2,
    /// The current saccade's offset from `look`.
    saccade: Vec2,
    /// How much of the saccade's offset the eyes follow ([`MotionSettings::saccades`]).
    saccade_scale: f32,
    next_saccade: f64,
    phases: [f32; 6],
}

/// What life adds to a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LifeFrame {
    /// How closed the lids are from blinking, 0..1.
    pub blink: f32,
    /// Gaze direction: x towards the subject's left, y up, −1..1 (1: the `eyeLook*` weights at 1); about
    /// −0.3..0.3 around where the head looks.
    pub gaze: Vec2,
    /// Idle head sway (pitch, yaw, roll), radians, before scaling.
    pub sway: Vec3,
}

const BLINK_CLOSE_SECS: f64 = 0.07;
const BLINK_HOLD_SECS: f64 = 0.03;
const BLINK_OPEN_SECS: f64 = 0.16;
const MIN_BLINK_GAP_SECS: f64 = 0.6;
/// How far back the motion encoder's window reaches: half the window, 1/25 s per frame.
const WINDOW_REACH_SECS: f64 = (MOTION_WINDOW / 2) as f64 / FRAME_RATE_HZ as f64;
/// Speech keeps the mouth "speaking" this long after it last moved it, then lets go over the same time.
const SPEAKING_HOLD_SECS: f32 = 0.3;

fn splitmix(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

impl Life {
    /// Life with its own random streams from `seed` (e.g. the entity's bits), starting at time 0.
    pub fn new(seed: u64) -> Self {
        let mut phase_rng = seed ^ 0x5151_5151;
        let mut life = Self {
            time: 0.0,
            blink_rng: seed.wrapping_mul(3),
            gaze_rng: seed.wrapping_mul(7) ^ 0xABCD,
            next_blink: 0.0,
            blink_started: None,
            gaze: Vec2::ZERO,
            look: Vec2::ZERO,
            saccade: Vec2::ZERO,
            saccade_scale: 1.0,
            next_saccade: 1.0,
            phases: std::array::from_fn(|_| {
                (splitmix(&mut phase_rng) * std::f64::consts::TAU) as f32
            }),
        };
        life.next_blink = 1.0 + splitmix(&mut life.blink_rng) * 2.0;
        life
    }

    /// Advances by `delta_secs` with a blink rate (per minute) and returns the frame.
    pub fn step(&mut self, delta_secs: f64, blinks_per_min: f32) -> LifeFrame {
        let delta_secs = if delta_secs.is_finite() {
            delta_secs.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.time += delta_secs;
        let t = self.time;
        // Blinks: exponential gaps at the current rate, never closer than MIN_BLINK_GAP_SECS.
        let rate = f64::from(blinks_per_min.max(0.0)) / 60.0;
        if self.blink_started.is_none() && t >= self.next_blink {
            if rate > 0.0 {
                self.blink_started = Some(t);
            }
            let u = splitmix(&mut self.blink_rng).max(1e-9);
            let gap = if rate > 0.0 { -u.ln() / rate } else { 1.0 };
            self.next_blink = t + gap.max(MIN_BLINK_GAP_SECS);
        }
        let blink = match self.blink_started {
            Some(start) => {
                let s = t - start;
                let closed = if s < BLINK_CLOSE_SECS {
                    s / BLINK_CLOSE_SECS
                } else if s < BLINK_CLOSE_SECS + BLINK_HOLD_SECS {
                    1.0
                } else {
                    1.0 - (s - BLINK_CLOSE_SECS - BLINK_HOLD_SECS) / BLINK_OPEN_SECS
                };
                if closed <= 0.0 && s > BLINK_CLOSE_SECS {
                    self.blink_started = None;
                }
                closed.clamp(0.0, 1.0) as f32
            }
            None => 0.0,
        };
        // Saccades: a new small gaze target every 0.6–2.5 s, reached in about 40 ms.
        if t >= self.next_saccade {
            let x = splitmix(&mut self.gaze_rng) * 2.0 - 1.0;
            let y = splitmix(&mut self.gaze_rng) * 2.0 - 1.0;
            self.saccade = Vec2::new(0.25 * x as f32, 0.15 * y as f32);
            self.next_saccade = t + 0.6 + 1.9 * splitmix(&mut self.gaze_rng);
        }
        let target =
            (self.look + self.saccade * self.saccade_scale).clamp(Vec2::NEG_ONE, Vec2::ONE);
        let follow = 1.0 - (-delta_secs / 0.015).exp() as f32;
        self.gaze += (target - self.gaze) * follow;
        // Idle sway: slow sines per axis, a few degrees.
        let wave = |f: f32, phase: f32| (std::f32::consts::TAU * f * t as f32 + phase).sin();
        let p = self.phases;
        let sway = Vec3::new(
            1.5 * wave(0.11, p[0]) + 0.6 * wave(0.29, p[1]),
            2.0 * wave(0.07, p[2]) + 0.7 * wave(0.23, p[3]),
            0.8 * wave(0.13, p[4]) + 0.3 * wave(0.31, p[5]),
        ) * std::f32::consts::PI
            / 180.0;
        LifeFrame {
            blink,
            gaze: self.gaze,
            sway,
        }
    }
}

fn index(name: &str) -> usize {
    arkit_index(name).unwrap_or(0)
}

/// Whether ARKit weight `i` opens the lips.
fn opens_lips(i: usize) -> bool {
    matches!(
        ARKIT_NAMES[i],
        "jawOpen"
            | "mouthFunnel"
            | "mouthLowerDownLeft"
            | "mouthLowerDownRight"
            | "mouthUpperUpLeft"
            | "mouthUpperUpRight"
    )
}

fn clean(value: f32) -> f32 {
    if value.is_finite() {
        value.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Combines one frame (see the module documentation): `emotion` at its current intensity, `speaking` 0..1.
pub fn compose(
    speech: &FaceCoefficients,
    emotion: &EmotionProfile,
    speaking: f32,
    nod: f32,
    life: &LifeFrame,
    settings: &MotionSettings,
) -> FaceCoefficients {
    let amplitude = clean(emotion.style.expression_amplitude / 3.0) * 3.0;
    let scale = settings.expression_scale.max(0.0);
    let speaking = clean(speaking);
    let mut out = FaceCoefficients::default();
    for (i, w) in out.weights.iter_mut().enumerate() {
        let (s, e) = (clean(speech.weights[i]), clean(emotion.weights[i]) * scale);
        let name = ARKIT_NAMES[i];
        *w = clean(if opens_lips(i) {
            s * amplitude + e * (1.0 - speaking)
        } else if name == "mouthClose" {
            s
        } else if name.starts_with("eye") {
            e
        } else {
            s * amplitude + e
        });
    }
    let blink = clean(life.blink);
    for (blink_name, wide_name) in [
        ("eyeBlinkLeft", "eyeWideLeft"),
        ("eyeBlinkRight", "eyeWideRight"),
    ] {
        let (b, w) = (index(blink_name), index(wide_name));
        out.weights[b] = out.weights[b].max(blink);
        out.weights[w] *= 1.0 - blink;
    }
    let gaze = if life.gaze.is_finite() {
        life.gaze
    } else {
        Vec2::ZERO
    };
    for (name, value) in [
        ("eyeLookOutLeft", gaze.x),
        ("eyeLookInRight", gaze.x),
        ("eyeLookInLeft", -gaze.x),
        ("eyeLookOutRight", -gaze.x),
        ("eyeLookUpLeft", gaze.y),
        ("eyeLookUpRight", gaze.y),
        ("eyeLookDownLeft", -gaze.y),
        ("eyeLookDownRight", -gaze.y),
    ] {
        let i = index(name);
        out.weights[i] = clean(out.weights[i] + value.max(0.0));
    }
    let energy =
        clean(emotion.style.head_motion_energy / 3.0) * 3.0 * settings.head_motion_scale.max(0.0);
    let finite = |v: Vec3| if v.is_finite() { v } else { Vec3::ZERO };
    let nod = if nod.is_finite() { nod } else { 0.0 };
    out.head_rotation = finite(speech.head_rotation)
        + (finite(life.sway) + Vec3::new(nod * 3.0_f32.to_radians(), 0.0, 0.0)) * energy;
    out.head_translation = finite(speech.head_translation);
    out
}

impl Expression {
    /// A head showing `emotion` (at the intensity it was made with), with life from `seed`, before its first step.
    pub fn new(seed: u64, emotion: &EmotionProfile) -> Self {
        Self {
            from: emotion.clone(),
            to: emotion.clone(),
            blend: 1.0,
            target: None,
            speaking: 0.0,
            since_speech: f32::MAX,
            nod: 0.0,
            life: Life::new(seed),
            shown: VecDeque::new(),
        }
    }

    /// The emotion as shown now (blending from the previous one towards the current one).
    pub fn current(&self) -> EmotionProfile {
        let t = self.blend.clamp(0.0, 1.0);
        let t = t * t * (3.0 - 2.0 * t);
        let mix = |a: f32, b: f32| a + (b - a) * t;
        EmotionProfile {
            weights: std::array::from_fn(|i| mix(self.from.weights[i], self.to.weights[i])),
            style: MotionStyle {
                expression_amplitude: mix(
                    self.from.style.expression_amplitude,
                    self.to.style.expression_amplitude,
                ),
                head_motion_energy: mix(
                    self.from.style.head_motion_energy,
                    self.to.style.head_motion_energy,
                ),
                blink_rate_per_min: mix(
                    self.from.style.blink_rate_per_min,
                    self.to.style.blink_rate_per_min,
                ),
            },
        }
    }

    /// Sets the emotion to blend towards (starting from what is shown now).
    fn retarget(&mut self, profile: EmotionProfile, key: (String, f32), blend_secs: f32) {
        self.from = self.current();
        self.to = profile;
        self.blend = if blend_secs > 0.0 { 0.0 } else { 1.0 };
        self.target = Some(key);
    }

    /// Where the eyes look between saccades, in gaze units (x towards the subject's left, y up; −1..1, where the
    /// `eyeLook*` weights are 1): (0, 0) ahead.
    pub fn look_towards(&mut self, look: Vec2) {
        self.life.look = if look.is_finite() {
            look.clamp(Vec2::NEG_ONE, Vec2::ONE)
        } else {
            Vec2::ZERO
        };
    }

    /// One frame: advances the blend, the speaking envelope, nods and life by `delta_secs`, returns the face.
    pub fn step(
        &mut self,
        speech: &FaceCoefficients,
        settings: &MotionSettings,
        delta_secs: f32,
    ) -> FaceCoefficients {
        let dt = if delta_secs.is_finite() {
            delta_secs.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let blend_secs = settings.emotion_blend_secs;
        self.blend = if blend_secs > 0.0 && blend_secs.is_finite() {
            (self.blend + dt / blend_secs).min(1.0)
        } else {
            1.0
        };
        let moving = (0..ARKIT_WEIGHT_COUNT)
            .filter(|&i| opens_lips(i))
            .map(|i| clean(speech.weights[i]))
            .fold(0.0, f32::max);
        self.since_speech = if moving > 0.08 {
            0.0
        } else {
            self.since_speech + dt
        };
        self.speaking =
            1.0 - ((self.since_speech - SPEAKING_HOLD_SECS) / SPEAKING_HOLD_SECS).clamp(0.0, 1.0);
        // Nods follow the jaw's energy, smoothed over about 150 ms.
        let jaw = clean(speech.weights[index("jawOpen")]);
        self.nod += (jaw - self.nod) * (1.0 - (-dt / 0.15).exp());
        let emotion = self.current();
        let rate = emotion.style.blink_rate_per_min * settings.blink_rate.max(0.0);
        self.life.saccade_scale = if settings.saccades.is_finite() {
            settings.saccades.max(0.0)
        } else {
            0.0
        };
        let life = self.life.step(f64::from(dt), rate);
        let face = compose(speech, &emotion, self.speaking, self.nod, &life, settings);
        let now = self.life.time;
        self.shown.push_back((now, face));
        while self.shown.len() > 2 && self.shown[1].0 <= now - WINDOW_REACH_SECS {
            self.shown.pop_front();
        }
        face
    }

    /// The motion encoder's window, centred on the face shown now, frames 1/25 s apart: the faces shown before it
    /// (interpolated between the frames that showed them), this one, and the faces to come as they will be if the
    /// emotion and settings stay as they are: a copy of this state is stepped ahead (with the same random streams,
    /// so the blinks and saccades in the window are the ones that will happen), with the speech `ahead(secs)` gives
    /// for `secs` after now. Before the first step every frame is the rest face.
    pub fn motion_window(
        &self,
        settings: &MotionSettings,
        ahead: impl Fn(f32) -> FaceCoefficients,
    ) -> [FaceCoefficients; MOTION_WINDOW] {
        let half = MOTION_WINDOW / 2;
        let step = 1.0 / FRAME_RATE_HZ as f32;
        let mut faces = [self.shown_at(self.life.time); MOTION_WINDOW];
        for (k, face) in faces[..half].iter_mut().enumerate() {
            *face = self.shown_at(self.life.time - f64::from(step) * (half - k) as f64);
        }
        let mut future = self.clone();
        for k in 1..=half {
            faces[half + k] = future.step(&ahead(step * k as f32), settings, step);
        }
        faces
    }

    /// The face shown at life time `time`, interpolated; the oldest one kept before it, the latest after it.
    fn shown_at(&self, time: f64) -> FaceCoefficients {
        let Some(&(first_time, first)) = self.shown.front() else {
            return FaceCoefficients::default();
        };
        if time <= first_time {
            return first;
        }
        for ((t0, a), (t1, b)) in self.shown.iter().zip(self.shown.iter().skip(1)) {
            if time <= *t1 {
                let span = t1 - t0;
                let t = if span > 0.0 { (time - t0) / span } else { 1.0 };
                return a.lerp(b, t as f32);
            }
        }
        self.shown.back().map_or(first, |&(_, face)| face)
    }
}

/// Turns the eyes of heads with a [`LookAt`] towards its target: the direction from the head's origin in its own
/// frame (+z ahead, +x the subject's left), as gaze units of [`EYE_TURN`]. A head whose target entity is gone, or
/// that lost its `LookAt`, looks ahead again.
pub(crate) fn look_at_targets(
    mut heads: Query<(&GlobalTransform, Option<&LookAt>, &mut Expression)>,
    targets: Query<&GlobalTransform>,
) {
    for (transform, look_at, mut expression) in &mut heads {
        let target = match look_at {
            Some(LookAt::Point(point)) => Some(*point),
            Some(LookAt::Entity(entity)) => targets.get(*entity).ok().map(|t| t.translation()),
            None => None,
        };
        let look = target
            .map(|target| {
                let local = transform.affine().inverse().transform_point3(target);
                let yaw = local.x.atan2(local.z);
                let pitch = local.y.atan2(Vec2::new(local.x, local.z).length());
                Vec2::new(yaw / EYE_TURN[0], pitch / EYE_TURN[1])
            })
            .unwrap_or(Vec2::ZERO);
        expression.look_towards(look);
    }
}

/// Adds expression state to new heads, retargets emotions that changed, and writes each head's face.
pub(crate) fn compose_faces(
    mut commands: Commands,
    time: Res<Time>,
    library: Option<Res<EmotionLibrary>>,
    mut heads: Query<(
        Entity,
        &TalkingHead,
        &SpeechFace,
        &mut FaceCoefficients,
        Option<&mut Expression>,
    )>,
) {
    let default_library;
    let library = match &library {
        Some(library) => library.as_ref(),
        None => {
            default_library = EmotionLibrary::default();
            &default_library
        }
    };
    let neutral_style = library.neutral_style();
    let neutral = library.get("neutral").cloned().unwrap_or(EmotionProfile {
        weights: [0.0; ARKIT_WEIGHT_COUNT],
        style: neutral_style,
    });
    for (entity, head, speech, mut face, expression) in &mut heads {
        let Some(mut expression) = expression else {
            commands
                .entity(entity)
                .insert(Expression::new(entity.to_bits(), &neutral));
            *face = speech.0;
            continue;
        };
        let name = head.emotion_name();
        let key = (name.to_owned(), head.intensity);
        if expression.target.as_ref() != Some(&key) {
            let profile = match library.get(name) {
                Some(profile) => profile.at(head.intensity, &neutral_style),
                None => {
                    warn!(
                        "talking head {entity}: unknown emotion '{name}' (known: {}); showing neutral",
                        library.names().join(", ")
                    );
                    neutral.clone()
                }
            };
            expression.retarget(profile, key, head.motion.emotion_blend_secs);
        }
        *face = expression.step(&speech.0, &head.motion, time.delta_secs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lip_opening(face: &FaceCoefficients) -> f32 {
        let w = |n: &str| face.weights[index(n)];
        (w("jawOpen") - w("mouthClose")).max(0.0)
            + 0.125
                * (w("mouthLowerDownLeft")
                    + w("mouthLowerDownRight")
                    + w("mouthUpperUpLeft")
                    + w("mouthUpperUpRight"))
            + 0.5 * w("mouthFunnel")
    }

    /// The shipped neutral profile and the happy one at `intensity`.
    fn neutral_and_happy(intensity: f32) -> (EmotionProfile, EmotionProfile) {
        let library = EmotionLibrary::default();
        let neutral = library.get("neutral").expect("shipped").clone();
        let happy = library
            .get("happy")
            .expect("shipped")
            .at(intensity, &library.neutral_style());
        (neutral, happy)
    }

    fn largest_difference(a: &FaceCoefficients, b: &FaceCoefficients) -> f32 {
        a.weights
            .iter()
            .zip(b.weights)
            .map(|(x, y)| (x - y).abs())
            .fold(
                (a.head_rotation - b.head_rotation).abs().max_element(),
                f32::max,
            )
    }

    fn speech_frame(open: f32) -> FaceCoefficients {
        let mut face = FaceCoefficients::default();
        face.weights[index("jawOpen")] = open;
        face.weights[index("mouthLowerDownLeft")] = 0.5 * open;
        face.weights[index("mouthLowerDownRight")] = 0.5 * open;
        face
    }

    #[test]
    fn bilabial_closures_survive_every_emotion_at_full_intensity() {
        let library = EmotionLibrary::default();
        let neutral = library.neutral_style();
        // 25 fps: an open vowel, /m/ closed for 3 frames (120 ms), open again.
        let frames: Vec<f32> = [vec![0.6; 10], vec![0.0; 3], vec![0.5; 10]].concat();
        for name in library.names() {
            let profile = library.get(name).expect("listed").at(1.0, &neutral);
            let mut expression = Expression::new(1, &profile);
            let mut closed = Vec::new();
            for (i, &open) in frames.iter().enumerate() {
                let face = expression.step(&speech_frame(open), &MotionSettings::default(), 0.04);
                if (10..13).contains(&i) {
                    closed.push(lip_opening(&face));
                }
            }
            let worst = closed.iter().copied().fold(0.0, f32::max);
            assert!(worst <= 0.1, "{name}: lips open {worst} during /m/");
        }
        // In a pause the open-mouthed emotion shows.
        let surprised = library.get("surprised").expect("shipped").at(1.0, &neutral);
        let mut expression = Expression::new(1, &surprised);
        let mut face = FaceCoefficients::default();
        for _ in 0..50 {
            face = expression.step(&speech_frame(0.0), &MotionSettings::default(), 0.04);
        }
        assert!(
            face.weights[index("jawOpen")] > 0.3,
            "{:?}",
            face.weights[index("jawOpen")]
        );
    }

    #[test]
    fn emotion_changes_blend_over_the_configured_time() {
        let (neutral, happy) = neutral_and_happy(1.0);
        let settings = MotionSettings {
            emotion_blend_secs: 1.0,
            ..MotionSettings::still()
        };
        let mut expression = Expression::new(3, &neutral);
        expression.retarget(happy, ("happy".into(), 1.0), 1.0);
        let smile = |e: &mut Expression| {
            e.step(&FaceCoefficients::default(), &settings, 0.1).weights[index("mouthSmileLeft")]
        };
        let early = smile(&mut expression);
        for _ in 0..3 {
            smile(&mut expression);
        }
        let middle = smile(&mut expression);
        for _ in 0..10 {
            smile(&mut expression);
        }
        let done = smile(&mut expression);
        assert!(
            early < 0.1 && (0.3..0.7).contains(&middle) && done > 0.99,
            "{early} {middle} {done}"
        );
    }

    #[test]
    fn the_encoder_window_holds_the_faces_shown_before_and_those_that_will_be_shown() {
        let (neutral, happy) = neutral_and_happy(0.8);
        let settings = MotionSettings::default();
        let speech_at = |t: f32| speech_frame((0.5 + 0.5 * (t * 9.0).sin()).max(0.0));
        // At 25 fps the window's past frames are the frames shown and its future frames are exactly the frames
        // that will be shown: blinks, saccades, sway, the emotion blend and the speech included.
        let dt = 1.0 / 25.0;
        let mut expression = Expression::new(11, &neutral);
        expression.retarget(happy, ("happy".into(), 0.8), 0.6);
        let mut shown = Vec::new();
        let mut windows = Vec::new();
        for i in 0..300 {
            shown.push(expression.step(&speech_at(i as f32 * dt), &settings, dt));
            windows.push(
                expression.motion_window(&settings, |ahead| speech_at(i as f32 * dt + ahead)),
            );
        }
        let blinks = shown
            .iter()
            .filter(|f| f.weights[index("eyeBlinkLeft")] > 0.9)
            .count();
        assert!(blinks > 0, "no blink in 12 s to check the window with");
        let half = MOTION_WINDOW / 2;
        for (i, window) in windows.iter().enumerate().take(300 - half).skip(half) {
            for (k, face) in window.iter().enumerate() {
                let diff = largest_difference(face, &shown[i + k - half]);
                assert!(diff < 1e-5, "frame {i}, window slot {k}: off by {diff}");
            }
        }
        // Shown at 60 Hz, the past frames are interpolated between the frames that showed them.
        let mut expression = Expression::new(5, &neutral);
        let mut shown = Vec::new();
        for i in 0..120 {
            shown.push(expression.step(&speech_at(i as f32 / 60.0), &settings, 1.0 / 60.0));
        }
        let window = expression.motion_window(&settings, |ahead| speech_at(2.0 + ahead));
        // Slot 0 is 0.2 s (12 frames at 60 Hz) before the latest frame; slot 1 is 0.16 s = 9.6 frames before.
        let between = shown[119 - 10].lerp(&shown[119 - 9], 0.4);
        for (slot, expected) in [(0, shown[119 - 12]), (1, between), (half, shown[119])] {
            let diff = largest_difference(&window[slot], &expected);
            assert!(diff < 1e-4, "slot {slot}: off by {diff}");
        }
        // Before any step the window is the rest face.
        let fresh = Expression::new(5, &neutral);
        let window = fresh.motion_window(&settings, speech_at);
        assert_eq!(window[0], FaceCoefficients::default());
    }

    #[test]
    fn blinks_come_at_a_human_rate_whatever_the_head_does() {
        let mut still = Life::new(42);
        let mut moving = Life::new(42);
        let (mut blinks, mut closed_frames, mut was_closed) = (0, 0, false);
        let dt = 1.0 / 60.0;
        let minutes = 10.0;
        for _ in 0..(minutes * 60.0 / dt) as usize {
            let a = still.step(dt, 17.0);
            // Head motion is a scale applied later; the life stream itself is the same.
            let b = moving.step(dt, 17.0);
            assert_eq!(a.blink, b.blink);
            let closed = a.blink > 0.5;
            blinks += usize::from(closed && !was_closed);
            closed_frames += usize::from(closed);
            was_closed = closed;
        }
        let per_minute = blinks as f64 / minutes;
        let closed_ms = closed_frames as f64 * dt * 1000.0 / blinks.max(1) as f64;
        println!(
            "{per_minute:.1} blinks per minute, lids more than half closed for {closed_ms:.0} ms each"
        );
        assert!((12.0..=22.0).contains(&per_minute), "{per_minute}");
        assert!((60.0..=250.0).contains(&closed_ms), "{closed_ms}");
        // Zero rate: no blinks.
        let mut none = Life::new(1);
        assert!((0..6000).all(|_| none.step(dt, 0.0).blink == 0.0));
    }

    #[test]
    fn still_keeps_the_head_still_and_the_eyes_blinking_and_nan_is_cleaned() {
        let library = EmotionLibrary::default();
        let neutral = library.get("neutral").expect("shipped").clone();
        let mut expression = Expression::new(9, &neutral);
        let mut blinked = false;
        let mut speech = speech_frame(0.4);
        speech.weights[index("mouthSmileLeft")] = f32::NAN;
        speech.head_rotation = Vec3::NAN;
        for _ in 0..(30 * 25) {
            let face = expression.step(&speech, &MotionSettings::still(), 0.04);
            assert_eq!(face.head_rotation, Vec3::ZERO);
            assert!(
                face.weights
                    .iter()
                    .all(|w| w.is_finite() && (0.0..=1.0).contains(w))
            );
            blinked |= face.weights[index("eyeBlinkLeft")] > 0.9;
        }
        assert!(blinked, "no blink in 30 s");
        let mut moving = Expression::new(9, &neutral);
        let turned = (0..250)
            .map(|_| {
                moving
                    .step(&speech, &MotionSettings::default(), 0.04)
                    .head_rotation
                    .length()
            })
            .fold(0.0, f32::max);
        assert!(turned > 0.01, "the head never moved: {turned}");
    }
}
