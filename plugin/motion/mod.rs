//! Motion: expression coefficients (ARKit weights + head pose) and what turns them into a motion code.

mod arkit_face;
mod coefficients;
pub mod emotion;
pub mod expression;
mod motion_code;
mod speech_motion;
mod track;
pub mod track_file;

pub use arkit_face::ArkitFace;
pub(crate) use arkit_face::drive_arkit_faces;
pub use coefficients::{ARKIT_NAMES, EYE_TURN, FaceCoefficients, arkit_index};
pub use emotion::{EmotionLibrary, EmotionProfile, MotionStyle};
pub use expression::{MotionSettings, SpeechFace};
pub(crate) use expression::{compose_faces, look_at_targets};
pub use motion_code::MotionEncoding;
pub(crate) use motion_code::{apply_motion_codes, encode_motion_codes};
pub use speech_motion::SpeechMotion;
pub(crate) use speech_motion::generate_speech_motion;
pub use track::MotionTrack;
pub(crate) use track::{copy_speech_faces, sample_motion_tracks};
