//! Identity: what one portrait becomes — the head asset the renderer draws.

pub mod bust;
pub mod cache;
pub mod construct;
pub mod emotion_check;
mod error;
pub mod expression;
pub mod gltf;
mod head_asset;
pub mod landmarks;
pub mod layers;
mod maps;
pub mod portrait_head;
pub mod portrait_quality;
pub mod procedural;
pub mod quality;
pub mod rig;
pub mod segmentation;
pub mod triangulation;

pub use bust::{BustShape, build_bust};
pub use construct::{ConstructSettings, PortraitFrame, build_head};
pub use error::IdentityError;
pub use expression::{ExpressionBase, ExpressionLimit, PhotoExpression};
pub use layers::{Background, PortraitLayers, Segment, build_layers};
pub use portrait_head::{BuiltHead, head_from_portrait};
pub use segmentation::person_mask;

pub use head_asset::{
    BASIS_COMPONENTS, DECODER_OUTPUTS, DecoderMlp, EYE_FADE, EYEBALL_PER_WIDTH, EYEBALL_SHOWN, Eye,
    Eyes, HeadAsset, HeadAssetError, MAX_CHANNELS, MAX_HIDDEN, MOUTH_INTERIOR, Mouth, OPENING_FULL,
    OPENING_START, PLANES, SHADE_RANGE, TEETH, TEETH_LIT_GAP, TEETH_SHOW, TOOTH_LENGTHS,
    TOOTH_WIDTHS,
};
pub use landmarks::{
    FaceBox, FaceKeypoint, FaceLandmarks, MAX_PORTRAIT_YAW_DEG, detect_faces, face_landmarks,
    find_face_landmarks,
};
