//! The pipeline's models as a Bevy resource: opened once when the app starts, or the reason they could not be.

use std::sync::Arc;

use bevy::prelude::*;

use super::ModelRegistry;

/// The pipeline's ONNX models, opened when the app starts, or why they could not be.
#[derive(Resource, Debug)]
pub enum Models {
    /// Every model of `assets/models/manifest.ron`, opened and checked.
    Loaded(Arc<ModelRegistry>),
    /// ONNX Runtime or the manifest failed; heads that need models fail with this reason.
    Unavailable(String),
}

impl Models {
    /// The models among `names` that are not loaded, or the reason no model is available.
    pub fn missing<'a>(&self, names: &[&'a str]) -> Result<Vec<&'a str>, String> {
        match self {
            Models::Loaded(registry) => Ok(names
                .iter()
                .copied()
                .filter(|name| registry.spec(name).is_none())
                .collect()),
            Models::Unavailable(reason) => Err(reason.clone()),
        }
    }

    /// The registry, when the models loaded.
    pub fn registry(&self) -> Option<Arc<ModelRegistry>> {
        match self {
            Models::Loaded(registry) => Some(registry.clone()),
            Models::Unavailable(_) => None,
        }
    }
}
