//! Emotions as data: FACS action units mapped to ARKit weights, plus a motion style, read from RON.
//!
//! The shipped set is `assets/emotions.ron` (embedded in the crate, so it is always there); games add or replace
//! emotions with [`EmotionLibrary::extend_from_ron`]. Action unit → ARKit table ([`action_unit`]), after the FACS
//! descriptions of each unit and ARKit's blendshape definitions:
//!
//! | unit | FACS name | ARKit weights |
//! |---|---|---|
//! | AU1 | inner brow raiser | browInnerUp |
//! | AU2 | outer brow raiser | browOuterUpLeft, browOuterUpRight |
//! | AU4 | brow lowerer | browDownLeft, browDownRight |
//! | AU5 | upper lid raiser | eyeWideLeft, eyeWideRight |
//! | AU6 | cheek raiser | cheekSquintLeft/Right, eyeSquintLeft/Right × 0.4 |
//! | AU7 | lid tightener | eyeSquintLeft, eyeSquintRight |
//! | AU9 | nose wrinkler | noseSneerLeft, noseSneerRight |
//! | AU10 | upper lip raiser | mouthUpperUpLeft, mouthUpperUpRight |
//! | AU12 (L12, R12 one side) | lip corner puller | mouthSmileLeft, mouthSmileRight |
//! | AU14 (L14, R14 one side) | dimpler | mouthDimpleLeft, mouthDimpleRight |
//! | AU15 | lip corner depressor | mouthFrownLeft, mouthFrownRight |
//! | AU16 | lower lip depressor | mouthLowerDownLeft, mouthLowerDownRight |
//! | AU17 | chin raiser | mouthShrugLower |
//! | AU20 | lip stretcher | mouthStretchLeft, mouthStretchRight |
//! | AU23 | lip tightener | mouthPressLeft, mouthPressRight × 0.7 |
//! | AU24 | lip pressor | mouthPressLeft, mouthPressRight |
//! | AU25 | lips part | jawOpen × 0.15 |
//! | AU26 | jaw drop | jawOpen × 0.5 |
//! | AU27 | mouth stretch (jaw wide open) | jawOpen |
//! | AU43 | eyes closed | eyeBlinkLeft, eyeBlinkRight |

use std::collections::{BTreeMap, HashMap};

use bevy::prelude::*;
use serde::Deserialize;

use super::arkit_index;
use crate::contract::ARKIT_WEIGHT_COUNT;

/// The shipped emotions (`assets/emotions.ron`).
pub const SHIPPED_EMOTIONS: &str = include_str!("../../assets/emotions.ron");

/// ARKit weights of one action unit at full intensity, or `None` for a unit the table does not know.
pub fn action_unit(unit: &str) -> Option<&'static [(&'static str, f32)]> {
    Some(match unit {
        "AU1" => &[("browInnerUp", 1.0)],
        "AU2" => &[("browOuterUpLeft", 1.0), ("browOuterUpRight", 1.0)],
        "AU4" => &[("browDownLeft", 1.0), ("browDownRight", 1.0)],
        "AU5" => &[("eyeWideLeft", 1.0), ("eyeWideRight", 1.0)],
        "AU6" => &[
            ("cheekSquintLeft", 1.0),
            ("cheekSquintRight", 1.0),
            ("eyeSquintLeft", 0.4),
            ("eyeSquintRight", 0.4),
        ],
        "AU7" => &[("eyeSquintLeft", 1.0), ("eyeSquintRight", 1.0)],
        "AU9" => &[("noseSneerLeft", 1.0), ("noseSneerRight", 1.0)],
        "AU10" => &[("mouthUpperUpLeft", 1.0), ("mouthUpperUpRight", 1.0)],
        "AU12" => &[("mouthSmileLeft", 1.0), ("mouthSmileRight", 1.0)],
        "L12" => &[("mouthSmileLeft", 1.0)],
        "R12" => &[("mouthSmileRight", 1.0)],
        "AU14" => &[("mouthDimpleLeft", 1.0), ("mouthDimpleRight", 1.0)],
        "L14" => &[("mouthDimpleLeft", 1.0)],
        "R14" => &[("mouthDimpleRight", 1.0)],
        "AU15" => &[("mouthFrownLeft", 1.0), ("mouthFrownRight", 1.0)],
        "AU16" => &[("mouthLowerDownLeft", 1.0), ("mouthLowerDownRight", 1.0)],
        "AU17" => &[("mouthShrugLower", 1.0)],
        "AU20" => &[("mouthStretchLeft", 1.0), ("mouthStretchRight", 1.0)],
        "AU23" => &[("mouthPressLeft", 0.7), ("mouthPressRight", 0.7)],
        "AU24" => &[("mouthPressLeft", 1.0), ("mouthPressRight", 1.0)],
        "AU25" => &[("jawOpen", 0.15)],
        "AU26" => &[("jawOpen", 0.5)],
        "AU27" => &[("jawOpen", 1.0)],
        "AU43" => &[("eyeBlinkLeft", 1.0), ("eyeBlinkRight", 1.0)],
        _ => return None,
    })
}

/// How an emotion moves besides its expression.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Reflect)]
pub struct MotionStyle {
    /// Scale of the speech's mouth movements (1 = as the speech model gives them).
    pub expression_amplitude: f32,
    /// Scale of idle and speech-driven head motion.
    pub head_motion_energy: f32,
    /// Blinks per minute.
    pub blink_rate_per_min: f32,
}

impl Default for MotionStyle {
    fn default() -> Self {
        Self {
            expression_amplitude: 1.0,
            head_motion_energy: 1.0,
            blink_rate_per_min: 17.0,
        }
    }
}

/// One emotion as written in RON.
#[derive(Clone, Debug, Deserialize)]
struct EmotionSpec {
    #[serde(default)]
    units: BTreeMap<String, f32>,
    /// Extra ARKit weights by name, added after the units.
    #[serde(default)]
    arkit: BTreeMap<String, f32>,
    #[serde(default)]
    style: MotionStyle,
}

/// An emotion ready to use: its ARKit weights at full intensity and its motion style.
#[derive(Clone, Debug, PartialEq)]
pub struct EmotionProfile {
    /// ARKit weights at intensity 1, in [`ARKIT_NAMES`](super::ARKIT_NAMES) order, each 0..1.
    pub weights: [f32; ARKIT_WEIGHT_COUNT],
    /// Motion style at intensity 1.
    pub style: MotionStyle,
}

impl EmotionProfile {
    /// The profile at `intensity` (0..1): weights scaled, style interpolated from neutral's.
    pub fn at(&self, intensity: f32, neutral: &MotionStyle) -> Self {
        let t = intensity.clamp(0.0, 1.0);
        let mix = |a: f32, b: f32| a + (b - a) * t;
        Self {
            weights: self.weights.map(|w| w * t),
            style: MotionStyle {
                expression_amplitude: mix(
                    neutral.expression_amplitude,
                    self.style.expression_amplitude,
                ),
                head_motion_energy: mix(neutral.head_motion_energy, self.style.head_motion_energy),
                blink_rate_per_min: mix(neutral.blink_rate_per_min, self.style.blink_rate_per_min),
            },
        }
    }
}

/// Why an emotion file could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmotionError {
    /// The text is not valid RON for a map of emotions.
    #[error("emotions RON could not be read: {0}")]
    Parse(String),
    /// An action unit the table does not know.
    #[error(
        "emotion '{emotion}': unknown action unit '{unit}'; known: AU1 AU2 AU4 AU5 AU6 AU7 AU9 AU10 AU12 \
             AU14 AU15 AU16 AU17 AU20 AU23 AU24 AU25 AU26 AU27 AU43 L12 R12 L14 R14"
    )]
    UnknownUnit {
        /// The emotion that names it.
        emotion: String,
        /// The unit's name as written.
        unit: String,
    },
    /// An ARKit weight name that is not one of the 52.
    #[error("emotion '{emotion}': '{name}' is not an ARKit blendshape name")]
    UnknownWeight {
        /// The emotion that names it.
        emotion: String,
        /// The name as written.
        name: String,
    },
    /// A number that is not finite, or a style value out of its range.
    #[error("emotion '{emotion}': {what} must be {range}, got {value}")]
    OutOfRange {
        /// The emotion.
        emotion: String,
        /// Which value.
        what: String,
        /// The accepted range.
        range: &'static str,
        /// The value given.
        value: f32,
    },
}

/// The emotions heads can show, by lower-case name. Inserted by the plugin with the shipped set.
#[derive(Resource, Clone, Debug)]
pub struct EmotionLibrary {
    profiles: HashMap<String, EmotionProfile>,
}

impl Default for EmotionLibrary {
    /// The shipped emotions (the eight MEAD labels).
    fn default() -> Self {
        let mut library = Self {
            profiles: HashMap::new(),
        };
        if let Err(error) = library.extend_from_ron(SHIPPED_EMOTIONS) {
            // The shipped file is tested; this only guards against a broken edit of it.
            error!("talking_head: the shipped emotions are broken: {error}");
        }
        library
    }
}

impl EmotionLibrary {
    /// Adds the emotions of a RON text (the format of `assets/emotions.ron`), replacing ones of the same name.
    /// Nothing is added when any emotion in the text is invalid. Intensities outside 0..1 are clamped with a
    /// warning. Returns the names added.
    ///
    /// ```
    /// use bevy_talking_head::motion::EmotionLibrary;
    ///
    /// let mut library = EmotionLibrary::default();
    /// let added = library
    ///     .extend_from_ron(
    ///         r#"{ "smug": (units: {"L12": 0.7, "AU14": 0.4},
    ///                       style: (expression_amplitude: 0.9, head_motion_energy: 0.8, blink_rate_per_min: 12.0)) }"#,
    ///     )
    ///     .expect("valid RON");
    /// assert_eq!(added, ["smug"]);
    /// assert!(library.get("Smug").is_some());
    /// // A head shows it with `TalkingHead::set_custom_emotion("smug", 0.8)`.
    /// assert!(library.extend_from_ron("{ \"bad\": (units: {\"AU99\": 1.0}) }").is_err());
    /// ```
    pub fn extend_from_ron(&mut self, text: &str) -> Result<Vec<String>, EmotionError> {
        let specs: BTreeMap<String, EmotionSpec> =
            ron::from_str(text).map_err(|e| EmotionError::Parse(e.to_string()))?;
        let mut added = Vec::new();
        let mut profiles = Vec::new();
        for (name, spec) in specs {
            let name = name.trim().to_ascii_lowercase();
            profiles.push((name.clone(), resolve(&name, &spec)?));
            added.push(name);
        }
        self.profiles.extend(profiles);
        Ok(added)
    }

    /// The emotion called `name` (any case), or `None`.
    pub fn get(&self, name: &str) -> Option<&EmotionProfile> {
        self.profiles.get(&name.trim().to_ascii_lowercase())
    }

    /// Names of all emotions, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Neutral's motion style (the default when it is missing).
    pub fn neutral_style(&self) -> MotionStyle {
        self.get("neutral").map(|p| p.style).unwrap_or_default()
    }
}

fn resolve(emotion: &str, spec: &EmotionSpec) -> Result<EmotionProfile, EmotionError> {
    let out_of_range = |what: String, range, value| EmotionError::OutOfRange {
        emotion: emotion.to_owned(),
        what,
        range,
        value,
    };
    let clamped = |what: &str, value: f32| -> Result<f32, EmotionError> {
        if !value.is_finite() {
            return Err(out_of_range(
                what.to_owned(),
                "a finite number in 0..1",
                value,
            ));
        }
        if !(0.0..=1.0).contains(&value) {
            warn!("talking_head: emotion '{emotion}': {what} {value} clamped to 0..1");
        }
        Ok(value.clamp(0.0, 1.0))
    };
    let mut weights = [0.0f32; ARKIT_WEIGHT_COUNT];
    let mut add = |name: &str, amount: f32| {
        let index = arkit_index(name);
        if let Some(i) = index {
            weights[i] = (weights[i] + amount).min(1.0);
        }
        index.is_some()
    };
    for (unit, &intensity) in &spec.units {
        let intensity = clamped(unit, intensity)?;
        let table = action_unit(unit.trim()).ok_or_else(|| EmotionError::UnknownUnit {
            emotion: emotion.to_owned(),
            unit: unit.clone(),
        })?;
        for &(name, amount) in table {
            add(name, amount * intensity);
        }
    }
    for (name, &value) in &spec.arkit {
        let value = clamped(name, value)?;
        if !add(name, value) {
            return Err(EmotionError::UnknownWeight {
                emotion: emotion.to_owned(),
                name: name.clone(),
            });
        }
    }
    let style = spec.style;
    for (what, value, range) in [
        (
            "expression_amplitude",
            style.expression_amplitude,
            0.0..=3.0,
        ),
        ("head_motion_energy", style.head_motion_energy, 0.0..=3.0),
        ("blink_rate_per_min", style.blink_rate_per_min, 0.0..=60.0),
    ] {
        if !value.is_finite() || !range.contains(&value) {
            return Err(out_of_range(
                what.to_owned(),
                "finite and in its range (0..3, blinks 0..60)",
                value,
            ));
        }
    }
    Ok(EmotionProfile { weights, style })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Emotion;

    fn weight(profile: &EmotionProfile, name: &str) -> f32 {
        profile.weights[arkit_index(name).expect("ARKit name")]
    }

    #[test]
    fn the_shipped_file_has_the_eight_mead_emotions_with_their_signatures() {
        let library = EmotionLibrary::default();
        for emotion in Emotion::ALL {
            assert!(library.get(emotion.name()).is_some(), "{}", emotion.name());
        }
        let get = |name| library.get(name).expect("shipped");
        assert!(get("neutral").weights.iter().all(|&w| w == 0.0));
        assert!(weight(get("happy"), "mouthSmileLeft") > 0.9);
        assert!(
            weight(get("sad"), "browInnerUp") > 0.9 && weight(get("sad"), "mouthFrownRight") > 0.9
        );
        let surprised = get("surprised");
        assert!(
            weight(surprised, "browOuterUpLeft") > 0.9 && weight(surprised, "eyeWideRight") > 0.9
        );
        assert!(weight(surprised, "jawOpen") > 0.3);
        assert!(weight(get("angry"), "browDownLeft") > 0.9);
        assert!(weight(get("disgusted"), "noseSneerLeft") > 0.9);
        let contempt = get("contempt");
        assert!(
            weight(contempt, "mouthSmileRight") > 0.5 && weight(contempt, "mouthSmileLeft") == 0.0
        );
        // All eight differ from each other.
        let names = library.names();
        for a in &names {
            for b in &names {
                if a < b {
                    assert_ne!(
                        library.get(a).map(|p| p.weights),
                        library.get(b).map(|p| p.weights)
                    );
                }
            }
        }
    }

    #[test]
    fn intensity_scales_weights_and_moves_the_style_from_neutral() {
        let library = EmotionLibrary::default();
        let neutral = library.neutral_style();
        let sad = library.get("sad").expect("sad");
        let half = sad.at(0.5, &neutral);
        assert!((weight(&half, "browInnerUp") - 0.5 * weight(sad, "browInnerUp")).abs() < 1e-6);
        let expected = 0.5 * (neutral.blink_rate_per_min + sad.style.blink_rate_per_min);
        assert!((half.style.blink_rate_per_min - expected).abs() < 1e-4);
        assert_eq!(sad.at(7.0, &neutral), sad.at(1.0, &neutral));
        assert!(sad.at(-1.0, &neutral).weights.iter().all(|&w| w == 0.0));
    }

    #[test]
    fn users_add_emotions_and_bad_ones_are_errors_that_change_nothing() {
        let mut library = EmotionLibrary::default();
        let added = library
            .extend_from_ron(
                r#"{ "Smug": (units: {"L12": 0.7}, arkit: {"browOuterUpLeft": 0.3}) }"#,
            )
            .expect("a valid emotion");
        assert_eq!(added, ["smug"]);
        let smug = library.get("SMUG").expect("added");
        assert!((weight(smug, "mouthSmileLeft") - 0.7).abs() < 1e-6);
        assert_eq!(smug.style, MotionStyle::default());

        let before = library.names().len();
        for (text, expected) in [
            (
                "{ \"x\": (units: {\"AU99\": 1.0}) }",
                "unknown action unit 'AU99'",
            ),
            (
                "{ \"x\": (arkit: {\"smileLeft\": 1.0}) }",
                "'smileLeft' is not an ARKit",
            ),
            (
                "{ \"x\": (style: (expression_amplitude: 1.0, head_motion_energy: 1.0, blink_rate_per_min: -3.0)) }",
                "blink_rate_per_min",
            ),
            ("{ \"x\": (units: {\"AU1\": 1.0}, ", "could not be read"),
            ("not ron at all", "could not be read"),
        ] {
            let error = library.extend_from_ron(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        assert_eq!(
            library.names().len(),
            before,
            "a failed file added something"
        );
        // Intensities outside 0..1 are clamped.
        library
            .extend_from_ron(r#"{ "loud": (units: {"AU12": 3.0}) }"#)
            .expect("clamped");
        assert_eq!(
            weight(library.get("loud").expect("added"), "mouthSmileLeft"),
            1.0
        );
    }
}
