//! Whether a render shows the emotion asked for, as a person would read it: an emotion classifier trained on
//! FER2013 (`assets/models/emotion_classifier.onnx`, see its card) reads the rendered face.
//!
//! The classifier is a check, not part of the pipeline: it has its own manifest (`assets/models/checks.ron`), so
//! the plugin never loads it. It sees a 64×64 grayscale square around the face found by the pipeline's face
//! detector: 1.4 times the detector box's side, its centre 0.1 side above the box's (the crop that the classifier's
//! own package cuts around an OpenCV Haar box, to within 0.004 in probability on the shipped portraits).

use std::path::PathBuf;

use bevy::math::{URect, UVec2, Vec2};
use image::{DynamicImage, RgbImage};

use super::head_asset::OPENING_START;
use super::landmarks::{Border, FaceBox, FaceCrop, detect_faces, sample_crop};
use super::rig::bases;
use super::{HeadAsset, PortraitLayers};
use crate::head::Emotion;
use crate::inference::{InferenceError, ModelRegistry};
use crate::motion::expression::{LifeFrame, compose};
use crate::motion::{EmotionLibrary, FaceCoefficients, MotionSettings};
use crate::render::blend_bases;

/// The classifier's classes, in its output order (FER2013's).
pub const FER_CLASSES: [&str; 7] = [
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
];
/// Side of the classifier's input, pixels.
const INPUT_SIDE: usize = 64;
/// The crop's side over the detector box's side, and how far above the box's centre its centre sits (in sides).
const CROP_SCALE: f32 = 1.4;
const CROP_RAISE: f32 = 0.1;

/// The FER class that stands for `emotion` (`None` for contempt, which FER2013 does not have).
pub fn fer_class(emotion: Emotion) -> Option<usize> {
    FER_EMOTIONS.iter().position(|&e| e == emotion)
}

/// The emotions the classifier knows, in [`FER_CLASSES`] order.
pub const FER_EMOTIONS: [Emotion; 7] = [
    Emotion::Angry,
    Emotion::Disgusted,
    Emotion::Fear,
    Emotion::Happy,
    Emotion::Sad,
    Emotion::Surprised,
    Emotion::Neutral,
];

/// The motion code of `emotion` at `intensity` over the speech frame `speech` (`FaceCoefficients::default()` for
/// none; any other frame counts as mid-sentence, so speech keeps the lips), with no blink, composed as the plugin
/// composes a frame (the motion encoder reproduces this mapping to within 1e-4).
pub fn emotion_code(
    library: &EmotionLibrary,
    emotion: Emotion,
    intensity: f32,
    speech: &FaceCoefficients,
) -> Vec<f32> {
    let neutral = library.neutral_style();
    let Some(profile) = library
        .get(emotion.name())
        .map(|profile| profile.at(intensity, &neutral))
    else {
        return vec![0.0; bases::COUNT];
    };
    let speaking = if *speech == FaceCoefficients::default() {
        0.0
    } else {
        1.0
    };
    let face = compose(
        speech,
        &profile,
        speaking,
        0.0,
        &LifeFrame::default(),
        &MotionSettings::default(),
    );
    bases::from_arkit(&face).to_vec()
}

/// How much the warp that `weights` blend (all the head's bases, as [`HeadAsset::basis_weights`] gives them)
/// squeezes the face at its worst: the least ratio of a small area's size after the warp to its size before,
/// `det(I + ∂d/∂u)` over the front plane by differences between neighbouring texels. 1 where nothing moves; near
/// 0 the photo's pixels smear into a streak; below 0 the field folds and the picture mirrors there. Where the lips
/// part (the blended opening reaches [`OPENING_START`] at either texel) the mouth's interior is drawn instead, and
/// the jump that parts them is left out.
pub fn least_area_ratio(asset: &HeadAsset, weights: &[f32]) -> f32 {
    let m = asset.motion_resolution;
    // Plane 0's texels come first: displacement in x, y and the opening in w.
    let blended = blend_bases(asset, weights);
    let step = 2.0 / m as f32; // texel spacing in normalised coordinates
    let mut least = f32::MAX;
    for row in 0..m - 1 {
        for col in 0..m - 1 {
            let i = row * m + col;
            let (d, right, up) = (blended[i], blended[i + 1], blended[i + m]);
            if d.w.max(right.w).max(up.w) >= OPENING_START {
                continue;
            }
            let along_x = (right - d).truncate().truncate() / step;
            let along_y = (up - d).truncate().truncate() / step;
            let ratio = (1.0 + along_x.x) * (1.0 + along_y.y) - along_x.y * along_y.x;
            least = least.min(ratio);
        }
    }
    least
}

/// A speech frame from the middle of an open vowel ("ah"), for reading emotions while a head talks.
pub fn open_vowel() -> FaceCoefficients {
    let mut face = FaceCoefficients::default();
    for (name, weight) in [
        ("jawOpen", 0.35),
        ("mouthLowerDownLeft", 0.3),
        ("mouthLowerDownRight", 0.3),
    ] {
        if let Some(i) = crate::motion::arkit_index(name) {
            face.weights[i] = weight;
        }
    }
    face
}

/// A square of the plates around the head (its box, 1.3 times its height on a side), clamped to the plates: what
/// the emotion check renders.
pub fn face_square(asset: &HeadAsset, layers: &PortraitLayers) -> URect {
    let frame = layers.frame;
    let centre = frame.to_image(0.0, 0.0);
    let half = 1.3 * asset.half_extent.y / frame.scale;
    let size = Vec2::new(layers.width as f32, layers.height as f32);
    let min = (centre - half).clamp(Vec2::ZERO, size - 1.0);
    let max = (centre + half).clamp(min + 1.0, size);
    URect::from_corners(
        min.as_uvec2(),
        max.as_uvec2().max(min.as_uvec2() + UVec2::ONE),
    )
}

/// The manifest of the check models (`assets/models/checks.ron`).
pub fn checks_manifest_path() -> PathBuf {
    crate::inference::default_manifest_path().with_file_name("checks.ron")
}

/// The emotion classifier, loaded through ONNX Runtime.
pub struct EmotionClassifier {
    registry: ModelRegistry,
}

/// What the classifier read on one face.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmotionReading {
    /// Probability of each of [`FER_CLASSES`].
    pub probabilities: [f32; 7],
    /// The face the detector found.
    pub face: FaceBox,
}

impl EmotionReading {
    /// The most probable class (an index into [`FER_CLASSES`]).
    pub fn top(&self) -> usize {
        (0..FER_CLASSES.len())
            .max_by(|&a, &b| self.probabilities[a].total_cmp(&self.probabilities[b]))
            .unwrap_or(0)
    }
}

impl EmotionClassifier {
    /// Loads the classifier named in [`checks_manifest_path`].
    pub fn load() -> Result<Self, InferenceError> {
        Ok(Self {
            registry: ModelRegistry::load(checks_manifest_path())?,
        })
    }

    /// Reads the largest face in `image`; `detector` is a registry with the pipeline's face detector.
    pub fn read(
        &self,
        detector: &ModelRegistry,
        image: &RgbImage,
    ) -> Result<EmotionReading, ReadError> {
        let faces = detect_faces(detector, &DynamicImage::ImageRgb8(image.clone()))
            .map_err(|error| ReadError::NoFace(error.to_string()))?;
        let face = faces
            .into_iter()
            .max_by(|a, b| a.area().total_cmp(&b.area()))
            .ok_or_else(|| ReadError::NoFace("no face found".into()))?;
        let probabilities = self.classify(image, &face)?;
        Ok(EmotionReading {
            probabilities,
            face,
        })
    }

    /// The class probabilities of the face in `face` (a detector box on `image`).
    pub fn classify(&self, image: &RgbImage, face: &FaceBox) -> Result<[f32; 7], InferenceError> {
        let side = face.size.max_element() * CROP_SCALE;
        let crop = FaceCrop {
            centre: face.centre() - Vec2::new(0.0, CROP_RAISE * side),
            side,
            rotation: 0.0,
        };
        let rgb = sample_crop(image, &crop, INPUT_SIDE, Border::Replicate, |v| v);
        let gray: Vec<f32> = rgb
            .chunks_exact(3)
            .map(|c| ((0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) / 255.0 - 0.5) * 2.0)
            .collect();
        let (out, _) =
            self.registry
                .run_f32("emotion_classifier", &gray, &[1, 1, INPUT_SIDE, INPUT_SIDE])?;
        let mut probabilities = [0.0; 7];
        for (p, v) in probabilities.iter_mut().zip(out) {
            *p = v;
        }
        Ok(probabilities)
    }
}

/// Why a render could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The face detector found no face in the render.
    #[error("no face to read: {0}")]
    NoFace(String),
    /// The classifier failed.
    #[error(transparent)]
    Model(#[from] InferenceError),
}
