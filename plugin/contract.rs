//! Numbers that every part of the pipeline agrees on (see docs/ARCHITECTURE.md, "Contracts").
//!
//! They live here, once; models declare their own copies in `assets/models/manifest.ron` and the
//! registry checks them against these at load time.

/// Sample rate of every audio signal that enters the models, in Hz.
pub const SAMPLE_RATE_HZ: u32 = 16_000;
/// Rate of the audio encoder's output features, in Hz (two per motion frame).
pub const FEATURE_RATE_HZ: u32 = 50;
/// Rate of motion frames (expression coefficients, motion codes), in frames per second.
pub const FRAME_RATE_HZ: u32 = 25;
/// Audio feature frames on each side of a motion frame that the motion generator sees (δa in the paper).
pub const FEATURE_WINDOW_RADIUS: usize = 2;
/// Motion frames in the motion encoder's window (δm in the paper).
pub const MOTION_WINDOW: usize = 11;
/// Number of ARKit blendshape weights in [`crate::FaceCoefficients`].
pub const ARKIT_WEIGHT_COUNT: usize = 52;
/// Log-mel front end: number of mel bands.
pub const MEL_BANDS: usize = 80;
/// Log-mel front end: analysis window length in samples (25 ms at 16 kHz).
pub const MEL_WINDOW_SAMPLES: usize = 400;
/// Log-mel front end: hop between windows in samples (10 ms at 16 kHz).
pub const MEL_HOP_SAMPLES: usize = 160;

/// Names of the pipeline's models in `assets/models/manifest.ron`.
pub mod models {
    /// 16 kHz samples → log-mel features (the audio encoder's front end).
    pub const LOG_MEL: &str = "log_mel";
    /// 16 kHz samples → audio features at [`super::FEATURE_RATE_HZ`].
    pub const AUDIO_ENCODER: &str = "audio_encoder";
    /// Audio feature window → 52 ARKit weights per motion frame.
    pub const MOTION_GENERATOR: &str = "motion_generator";
    /// Window of [`super::MOTION_WINDOW`] coefficient frames → motion code.
    pub const MOTION_ENCODER: &str = "motion_encoder";
    /// Portrait → face boxes.
    pub const FACE_DETECTOR: &str = "face_detector";
    /// Face crop → 468 3D landmarks.
    pub const FACE_LANDMARKS: &str = "face_landmarks";
    /// Eye crop → eye contour, brow and iris landmarks.
    pub const IRIS_LANDMARKS: &str = "iris_landmarks";
    /// Portrait → person-versus-background mask (hair and head outline).
    pub const SELFIE_SEGMENTATION: &str = "selfie_segmentation";
    /// Models a talking head needs from speech to motion code.
    pub const SPEECH_TO_MOTION: [&str; 3] = [AUDIO_ENCODER, MOTION_GENERATOR, MOTION_ENCODER];
    /// Models that turn a portrait into a head.
    pub const PORTRAIT_TO_HEAD: [&str; 2] = [FACE_DETECTOR, FACE_LANDMARKS];
}
