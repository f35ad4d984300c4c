use bevy::prelude::*;
use serde::{Deserialize, Serialize};

use crate::contract::ARKIT_WEIGHT_COUNT;

/// The 52 Apple ARKit blendshape names, in ARKit's order: index `i` of [`FaceCoefficients::weights`] is
/// `ARKIT_NAMES[i]`.
pub const ARKIT_NAMES: [&str; ARKIT_WEIGHT_COUNT] = [
    "eyeBlinkLeft",
    "eyeLookDownLeft",
    "eyeLookInLeft",
    "eyeLookOutLeft",
    "eyeLookUpLeft",
    "eyeSquintLeft",
    "eyeWideLeft",
    "eyeBlinkRight",
    "eyeLookDownRight",
    "eyeLookInRight",
    "eyeLookOutRight",
    "eyeLookUpRight",
    "eyeSquintRight",
    "eyeWideRight",
    "jawForward",
    "jawLeft",
    "jawRight",
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthLeft",
    "mouthRight",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthDimpleLeft",
    "mouthDimpleRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugLower",
    "mouthShrugUpper",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "browDownLeft",
    "browDownRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "cheekPuff",
    "cheekSquintLeft",
    "cheekSquintRight",
    "noseSneerLeft",
    "noseSneerRight",
    "tongueOut",
];

/// The index of an ARKit blendshape name (exact, as in [`ARKIT_NAMES`]) in [`FaceCoefficients::weights`].
pub fn arkit_index(name: &str) -> Option<usize> {
    ARKIT_NAMES.iter().position(|n| *n == name)
}

/// How far an eye turns at an ARKit `eyeLook*` weight of 1, radians: sideways (in or out), then up or down.
pub const EYE_TURN: [f32; 2] = [0.5, 0.35];

/// One frame of facial motion: 52 ARKit blendshape weights (0..1) and the head's pose.
///
/// Every head publishes its current frame here, so the same speech can drive any rig with ARKit morph targets.
#[derive(Component, Clone, Copy, Debug, PartialEq, Reflect, Serialize, Deserialize)]
pub struct FaceCoefficients {
    /// Blendshape weights in [`ARKIT_NAMES`] order, each 0..1.
    #[serde(with = "weights_serde")]
    pub weights: [f32; ARKIT_WEIGHT_COUNT],
    /// Head rotation: pitch (positive nods down), yaw (positive turns towards the subject's left), roll, in radians;
    /// applied in yaw, pitch, roll order. Rendered heads turn by it.
    pub head_rotation: Vec3,
    /// Head translation from its rest position, metres.
    pub head_translation: Vec3,
}

/// serde supports arrays up to 32 elements; the 52 weights go through a sequence of exactly 52 numbers.
mod weights_serde {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::contract::ARKIT_WEIGHT_COUNT;

    pub fn serialize<S: Serializer>(
        weights: &[f32; ARKIT_WEIGHT_COUNT],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(weights)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<[f32; ARKIT_WEIGHT_COUNT], D::Error> {
        let weights = Vec::<f32>::deserialize(d)?;
        let count = weights.len();
        weights.try_into().map_err(|_| {
            D::Error::custom(format!(
                "expected {ARKIT_WEIGHT_COUNT} ARKit weights, got {count}"
            ))
        })
    }
}

impl Default for FaceCoefficients {
    fn default() -> Self {
        Self {
            weights: [0.0; ARKIT_WEIGHT_COUNT],
            head_rotation: Vec3::ZERO,
            head_translation: Vec3::ZERO,
        }
    }
}

impl FaceCoefficients {
    /// The weight of a blendshape by its ARKit name (`"jawOpen"`), or `None` for an unknown name.
    pub fn weight(&self, name: &str) -> Option<f32> {
        arkit_index(name).map(|i| self.weights[i])
    }

    /// How the eyes turn ([`EYE_TURN`] at a weight of 1): the left eye's yaw (towards the subject's left, +x in
    /// head space) and pitch (up), then the right eye's, radians, from the `eyeLook*` weights. What the renderer
    /// turns the eyeballs by (`MarchUniform::with_gaze`).
    pub fn eye_turns(&self) -> [f32; 4] {
        let w = |name: &str| self.weight(name).unwrap_or(0.0);
        let [sideways, vertical] = EYE_TURN;
        [
            sideways * (w("eyeLookOutLeft") - w("eyeLookInLeft")),
            vertical * (w("eyeLookUpLeft") - w("eyeLookDownLeft")),
            sideways * (w("eyeLookInRight") - w("eyeLookOutRight")),
            vertical * (w("eyeLookUpRight") - w("eyeLookDownRight")),
        ]
    }

    /// Linear interpolation towards `other` (`t` = 0 gives `self`, 1 gives `other`).
    pub fn lerp(&self, other: &Self, t: f32) -> Self {
        let mut weights = self.weights;
        for (w, o) in weights.iter_mut().zip(other.weights) {
            *w += (o - *w) * t;
        }
        Self {
            weights,
            head_rotation: self.head_rotation.lerp(other.head_rotation, t),
            head_translation: self.head_translation.lerp(other.head_translation, t),
        }
    }

    /// The CSV header matching [`FaceCoefficients::csv_row`]: time, the 52 names, then pose.
    pub fn csv_header() -> String {
        let pose = [
            "headPitch",
            "headYaw",
            "headRoll",
            "headX",
            "headY",
            "headZ",
        ];
        std::iter::once("time")
            .chain(ARKIT_NAMES)
            .chain(pose)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One CSV row at `time_secs`.
    pub fn csv_row(&self, time_secs: f64) -> String {
        let pose = self
            .head_rotation
            .to_array()
            .into_iter()
            .chain(self.head_translation.to_array());
        std::iter::once(format!("{time_secs:.4}"))
            .chain(
                self.weights
                    .iter()
                    .copied()
                    .chain(pose)
                    .map(|v| format!("{v:.5}")),
            )
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_in_arkit_order() {
        let mut sorted = ARKIT_NAMES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ARKIT_WEIGHT_COUNT);
        assert_eq!(ARKIT_NAMES[0], "eyeBlinkLeft");
        assert_eq!(ARKIT_NAMES[17], "jawOpen");
        assert_eq!(ARKIT_NAMES[51], "tongueOut");
    }

    #[test]
    fn round_trips_through_ron_and_rejects_wrong_counts() {
        let mut c = FaceCoefficients::default();
        c.weights[3] = 0.25;
        let text = ron::to_string(&c).expect("serialize");
        assert_eq!(
            ron::from_str::<FaceCoefficients>(&text).expect("deserialize"),
            c
        );
        let short = text.replacen("0.25,", "", 1);
        let error = ron::from_str::<FaceCoefficients>(&short)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("expected 52 ARKit weights, got 51"),
            "{error}"
        );
    }

    #[test]
    fn csv_row_matches_header() {
        let mut c = FaceCoefficients::default();
        c.weights[17] = 0.5;
        let header = FaceCoefficients::csv_header();
        let row = c.csv_row(0.04);
        assert_eq!(header.split(',').count(), row.split(',').count());
        assert_eq!(c.weight("jawOpen"), Some(0.5));
        assert_eq!(c.weight("nope"), None);
    }
}
