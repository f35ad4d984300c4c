//! What can go wrong while turning a portrait into a head.

use crate::inference::InferenceError;

/// Why a portrait could not be turned into face landmarks (and so into a head).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IdentityError {
    /// No detection reached the detector's minimum score.
    #[error(
        "no face found in the portrait (best face-detector score {best_score:.2}, a face needs {min_score:.2}); use \
         a photo of one face seen roughly from the front that fills at least a fifth of the image's shorter side"
    )]
    NoFace {
        /// The highest score (0..1) of any detector anchor.
        best_score: f32,
        /// The score a face needs (`landmarks::MIN_DETECTION_SCORE`).
        min_score: f32,
    },
    /// The landmark model did not confirm the detected face.
    #[error(
        "the face-landmark model does not see a face where the detector found one (presence {presence:.2}, needs \
         {min_presence:.2}); the face may be cut off, turned too far or covered: use a clearer frontal portrait"
    )]
    FaceNotConfirmed {
        /// The landmark model's face presence score (0..1).
        presence: f32,
        /// The score it needs (`landmarks::MIN_FACE_PRESENCE`).
        min_presence: f32,
    },
    /// The face is turned too far from the camera to build a head from (the far side would be guessed).
    #[error(
        "the face in the portrait is turned about {yaw_deg:.0}° away from the camera; a head can be built from          faces turned at most {max_deg:.0}°: use a portrait that looks at the camera"
    )]
    FaceTurned {
        /// The landmark model's yaw estimate ([`FaceLandmarks::yaw_degrees`](super::FaceLandmarks::yaw_degrees)).
        yaw_deg: f32,
        /// The limit (`landmarks::MAX_PORTRAIT_YAW_DEG`).
        max_deg: f32,
    },
    /// The image is too small to hold a face the models can find.
    #[error("the portrait is {width}×{height} pixels; at least {min_side}×{min_side} is needed")]
    ImageTooSmall {
        /// Width of the image, in pixels.
        width: u32,
        /// Height of the image, in pixels.
        height: u32,
        /// The smallest side accepted (`landmarks::MIN_IMAGE_SIDE`), in pixels.
        min_side: u32,
    },
    /// A face box handed in cannot be cropped (not finite, or of zero size).
    #[error("face box cannot be used: {0}")]
    InvalidFaceBox(String),
    /// The photo's layers (plates for the portrait display) could not be built.
    #[error("the portrait's layers could not be built: {0}")]
    Layers(String),
    /// A face model could not be run or gave output of the wrong size.
    #[error("face model failed: {0}")]
    Model(#[from] InferenceError),
}
