//! Inference: finding ONNX Runtime, the model manifest and registry, and the models' CPU references.
//!
//! Everything that touches `ort` starts with [`ensure_onnx_runtime`] (the [`ModelRegistry`] calls it for you): it
//! finds `libonnxruntime` once per process and turns a missing library into an [`InferenceError`] instead of the
//! panic `ort` would raise on first use.

mod log_mel;
mod manifest;
mod models;
mod motion_encoder;
mod registry;
mod runtime;
mod speech;

use std::path::PathBuf;

pub use log_mel::{LOG_MEL_EPS, LogMel, log_mel, log_mel_frame_count};
pub use manifest::{ElementType, Manifest, ModelSpec, TensorSpec};
pub use models::Models;
pub use motion_encoder::{
    MOTION_FRAME_VALUES, MotionWindow, encode_motion, motion_frame, motion_window,
};
pub use registry::{ModelRegistry, default_manifest_path};
pub use runtime::{ONNX_RUNTIME_VERSION, ensure_onnx_runtime};
pub use speech::{
    SAMPLES_PER_FRAME, SPEECH_LOOKAHEAD_SECS, SPEECH_PAD_SAMPLES, SpeechToMotion,
    speech_frame_count, speech_to_weights,
};

/// Everything that can go wrong while finding ONNX Runtime, reading the model manifest, opening or running models.
///
/// Messages name the file, model and tensor involved and say what to do; the error is `Clone` so one cached
/// failure (e.g. ONNX Runtime not found) can be reported to every caller.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferenceError {
    /// No usable ONNX Runtime shared library was found.
    #[error(
        "ONNX Runtime {} was not found; searched: {searched}. Run tools/setup.sh, or set ORT_DYLIB_PATH to \
         libonnxruntime.so 1.31.x",
        ONNX_RUNTIME_VERSION
    )]
    RuntimeNotFound {
        /// The places searched, in order, each with why it was not used.
        searched: String,
    },
    /// ONNX Runtime loaded but its environment could not be created.
    #[error("ONNX Runtime at {path} loaded but could not start: {reason}")]
    RuntimeInit {
        /// The library that was loaded.
        path: PathBuf,
        /// ONNX Runtime's message.
        reason: String,
    },
    /// The manifest file could not be read.
    #[error("cannot read model manifest {path}: {reason}")]
    ManifestRead {
        /// The manifest's path.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The manifest is not valid RON for [`Manifest`].
    #[error("cannot parse model manifest {path}: {reason}")]
    ManifestParse {
        /// The manifest's path.
        path: PathBuf,
        /// The parser's message, with line and column.
        reason: String,
    },
    /// The manifest parses but contradicts the pipeline's fixed contracts (`crate::contract`).
    #[error("model manifest {path}: {reason}")]
    ManifestInvalid {
        /// The manifest's path.
        path: PathBuf,
        /// What is wrong and where.
        reason: String,
    },
    /// A model file named by the manifest does not exist.
    #[error(
        "model '{model}': file {path} not found (named in manifest.ron); rebuild it with its script in tools/"
    )]
    ModelMissing {
        /// The model's name in the manifest.
        model: String,
        /// The path that was looked for.
        path: PathBuf,
    },
    /// ONNX Runtime could not open a model file.
    #[error("model '{model}': ONNX Runtime cannot open {path}: {reason}")]
    ModelLoad {
        /// The model's name in the manifest.
        model: String,
        /// The model file.
        path: PathBuf,
        /// ONNX Runtime's message.
        reason: String,
    },
    /// A model's inputs or outputs differ from what the manifest declares.
    #[error("model '{model}': {detail}")]
    Mismatch {
        /// The model's name in the manifest.
        model: String,
        /// Which tensor differs and how, e.g. "input 'samples' is [1, -1] in manifest.ron but [-1] in log_mel.onnx".
        detail: String,
    },
    /// A model name that the registry does not hold.
    #[error("no model named '{name}' in the registry (it has: {known})")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The names the registry holds, comma-separated.
        known: String,
    },
    /// Running a model failed, or its input did not fit.
    #[error("model '{model}': {reason}")]
    Run {
        /// The model's name in the manifest.
        model: String,
        /// What went wrong.
        reason: String,
    },
}
