//! `assets/models/manifest.ron`: which ONNX models the pipeline uses and the contract each one meets.
//!
//! ```ron
//! (
//!     motion_code_size: 32,
//!     models: {
//!         "log_mel": (
//!             file: "log_mel.onnx",
//!             version: "1.0.0",
//!             card: "log_mel.md",
//!             sample_rate_hz: 16000,
//!             frame_rate_hz: 100,
//!             inputs: [(name: "samples", element_type: f32, shape: [1, -1])],
//!             outputs: [(name: "log_mel", element_type: f32, shape: [1, -1, 80])],
//!         ),
//!     },
//! )
//! ```
//! Paths are relative to the manifest's folder; `-1` is a dimension fixed only at run time. Optional fields
//! (`sample_rate_hz`, `frame_rate_hz`) may be written bare, without `Some(..)`.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::InferenceError;
use crate::contract::models::MOTION_ENCODER;
use crate::contract::{FEATURE_RATE_HZ, FRAME_RATE_HZ, MEL_HOP_SAMPLES, SAMPLE_RATE_HZ};

/// The whole manifest: every model the pipeline may load, by name, and the sizes the models agree on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Length of the motion code z_m, the per-frame f32 vector that blends a head's motion bases (absent, 0, in a
    /// manifest of models outside the pipeline, such as `checks.ron`).
    #[serde(default)]
    pub motion_code_size: usize,
    /// The models, keyed by the name the pipeline asks for (e.g. `"log_mel"`).
    pub models: BTreeMap<String, ModelSpec>,
}

/// One model: its file and the tensors it takes and gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The `.onnx` file, relative to the manifest's folder (an absolute path is used as is).
    pub file: PathBuf,
    /// The model's own version (e.g. `"1.0.0"`), for logs and caches.
    pub version: String,
    /// The model card (Markdown), relative to the manifest's folder.
    pub card: PathBuf,
    /// Sample rate of audio inputs, in Hz; must be [`SAMPLE_RATE_HZ`] when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate_hz: Option<u32>,
    /// Rate of the output frames along the time axis, in Hz (frames per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate_hz: Option<u32>,
    /// Inputs, by name.
    pub inputs: Vec<TensorSpec>,
    /// Outputs, by name.
    pub outputs: Vec<TensorSpec>,
}

/// One input or output tensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    /// The tensor's name in the ONNX graph.
    pub name: String,
    /// Element type.
    pub element_type: ElementType,
    /// Dimensions; `-1` is dynamic (any size at run time).
    pub shape: Vec<i64>,
}

/// Element types the pipeline's models use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementType {
    /// 32-bit float.
    F32,
    /// 64-bit signed integer.
    I64,
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::I64 => "i64",
        })
    }
}

impl TensorSpec {
    /// Whether a concrete shape fits this one (same rank, equal fixed dimensions; `-1` takes any size).
    pub fn accepts(&self, shape: &[usize]) -> bool {
        self.shape.len() == shape.len()
            && self
                .shape
                .iter()
                .zip(shape)
                .all(|(&declared, &actual)| declared < 0 || usize::try_from(declared) == Ok(actual))
    }
}

impl Manifest {
    /// Reads and checks a manifest file; errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, InferenceError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| InferenceError::ManifestRead {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks manifest text; `origin` is the file it came from, used in error messages.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, InferenceError> {
        let manifest: Self = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str(text)
            .map_err(|error| InferenceError::ManifestParse {
                path: origin.to_path_buf(),
                reason: error.to_string(),
            })?;
        manifest
            .check()
            .map_err(|reason| InferenceError::ManifestInvalid {
                path: origin.to_path_buf(),
                reason,
            })?;
        Ok(manifest)
    }

    /// Writes the manifest as pretty RON (what [`Manifest::parse`] reads back).
    pub fn to_ron(&self) -> Result<String, InferenceError> {
        ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::default()).map_err(|error| {
            InferenceError::ManifestInvalid {
                path: PathBuf::from("manifest.ron"),
                reason: format!("cannot write as RON: {error}"),
            }
        })
    }

    /// The checks that need no model file: sizes and rates against `crate::contract`.
    fn check(&self) -> Result<(), String> {
        if self.motion_code_size == 0 && self.models.contains_key(MOTION_ENCODER) {
            return Err(
                "motion_code_size is 0; it must be the length of the motion code z_m".into(),
            );
        }
        let frame_rates = [
            SAMPLE_RATE_HZ / MEL_HOP_SAMPLES as u32,
            FEATURE_RATE_HZ,
            FRAME_RATE_HZ,
        ];
        for (name, model) in &self.models {
            if let Some(rate) = model.sample_rate_hz.filter(|&rate| rate != SAMPLE_RATE_HZ) {
                return Err(format!(
                    "model '{name}': sample_rate_hz is {rate} but the pipeline feeds audio at {SAMPLE_RATE_HZ} Hz"
                ));
            }
            if let Some(rate) = model
                .frame_rate_hz
                .filter(|rate| !frame_rates.contains(rate))
            {
                return Err(format!(
                    "model '{name}': frame_rate_hz is {rate} but the pipeline's rates are {frame_rates:?} Hz \
                     (log-mel frames, audio features, motion frames)"
                ));
            }
            for (kind, tensors) in [("input", &model.inputs), ("output", &model.outputs)] {
                if tensors.is_empty() {
                    return Err(format!("model '{name}': no {kind}s declared"));
                }
                for tensor in tensors {
                    if let Some(dim) = tensor.shape.iter().find(|&&dim| dim == 0 || dim < -1) {
                        return Err(format!(
                            "model '{name}': {kind} '{}' has dimension {dim} in {:?}; use a size > 0 or -1 \
                             for dynamic",
                            tensor.name, tensor.shape
                        ));
                    }
                }
            }
        }
        if let Some(encoder) = self.models.get(MOTION_ENCODER) {
            let code = encoder
                .outputs
                .first()
                .and_then(|t| t.shape.last().copied());
            if code != Some(self.motion_code_size as i64) {
                return Err(format!(
                    "model '{MOTION_ENCODER}': its output's last dimension ({code:?}) must be motion_code_size \
                     ({})",
                    self.motion_code_size
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"(
        motion_code_size: 32,
        models: {
            "log_mel": (
                file: "log_mel.onnx",
                version: "1.0.0",
                card: "log_mel.md",
                sample_rate_hz: 16000,
                frame_rate_hz: 100,
                inputs: [(name: "samples", element_type: f32, shape: [1, -1])],
                outputs: [(name: "log_mel", element_type: f32, shape: [1, -1, 80])],
            ),
            "ids": (
                file: "ids.onnx",
                version: "0.1.0",
                card: "ids.md",
                inputs: [(name: "tokens", element_type: i64, shape: [-1])],
                outputs: [(name: "logits", element_type: f32, shape: [-1, 4])],
            ),
        },
    )"#;

    fn origin() -> &'static Path {
        Path::new("test/manifest.ron")
    }

    #[test]
    fn parses_models_tensors_and_optional_rates() -> Result<(), InferenceError> {
        let manifest = Manifest::parse(GOOD, origin())?;
        assert_eq!(manifest.motion_code_size, 32);
        let log_mel = &manifest.models["log_mel"];
        assert_eq!(log_mel.sample_rate_hz, Some(16_000));
        assert_eq!(log_mel.frame_rate_hz, Some(100));
        assert_eq!(
            log_mel.outputs[0],
            TensorSpec {
                name: "log_mel".into(),
                element_type: ElementType::F32,
                shape: vec![1, -1, 80],
            }
        );
        let ids = &manifest.models["ids"];
        assert_eq!(ids.sample_rate_hz, None);
        assert_eq!(ids.inputs[0].element_type, ElementType::I64);
        Ok(())
    }

    #[test]
    fn round_trips_through_ron() -> Result<(), InferenceError> {
        let manifest = Manifest::parse(GOOD, origin())?;
        assert_eq!(Manifest::parse(&manifest.to_ron()?, origin())?, manifest);
        Ok(())
    }

    #[test]
    fn syntax_errors_name_the_file_and_position() {
        let result = Manifest::parse("(motion_code_size: 32, models: {", origin());
        let Err(InferenceError::ManifestParse { path, reason }) = result else {
            panic!("expected a parse error, got {result:?}");
        };
        assert_eq!(path, origin());
        assert!(reason.contains(':'), "{reason}");
    }

    #[test]
    fn unknown_fields_and_element_types_are_rejected() {
        let typo = GOOD.replace("version:", "verison:");
        assert!(matches!(
            Manifest::parse(&typo, origin()),
            Err(InferenceError::ManifestParse { .. })
        ));
        let f16 = GOOD.replace("element_type: i64", "element_type: f16");
        assert!(matches!(
            Manifest::parse(&f16, origin()),
            Err(InferenceError::ManifestParse { .. })
        ));
    }

    #[test]
    fn contract_violations_are_named() {
        let rate = GOOD.replace("sample_rate_hz: 16000", "sample_rate_hz: 22050");
        let message = Manifest::parse(&rate, origin())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("'log_mel'") && message.contains("22050"),
            "{message}"
        );
        let zero_dim = GOOD.replace("[-1, 4]", "[0, 4]");
        let message = Manifest::parse(&zero_dim, origin())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("'ids'") && message.contains("'logits'"),
            "{message}"
        );
        // The motion encoder's code must be as long as the manifest says.
        let encoder = |size: usize| {
            GOOD.replace(
                "\"ids\": (",
                &format!(
                    "\"motion_encoder\": (file: \"m.onnx\", version: \"1\", card: \"m.md\", \
                     inputs: [(name: \"window\", element_type: f32, shape: [-1, 11, 58])], \
                     outputs: [(name: \"code\", element_type: f32, shape: [-1, {size}])]),\n\"ids\": ("
                ),
            )
        };
        assert!(Manifest::parse(&encoder(32), origin()).is_ok());
        let message = Manifest::parse(&encoder(23), origin())
            .expect_err("code size differs")
            .to_string();
        assert!(message.contains("motion_code_size"), "{message}");
        // Without a motion encoder (a manifest of check models) the code size may be left out; with one it may not.
        let no_code = GOOD.replace("motion_code_size: 32,", "");
        assert_eq!(
            Manifest::parse(&no_code, origin())
                .expect("no encoder, no code size")
                .motion_code_size,
            0
        );
        let no_code = encoder(32).replace("motion_code_size: 32,", "");
        assert!(matches!(
            Manifest::parse(&no_code, origin()),
            Err(InferenceError::ManifestInvalid { .. })
        ));
    }

    #[test]
    fn dynamic_dimensions_accept_any_size() {
        let spec = TensorSpec {
            name: "samples".into(),
            element_type: ElementType::F32,
            shape: vec![1, -1],
        };
        assert!(spec.accepts(&[1, 16_000]));
        assert!(!spec.accepts(&[2, 16_000]));
        assert!(!spec.accepts(&[16_000]));
    }
}
