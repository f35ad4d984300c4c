//! The loaded models: every entry of the manifest opened with ONNX Runtime and checked against its declaration.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard, PoisonError},
};

use bevy::prelude::Resource;
use ort::{
    session::Session,
    value::{Outlet, TensorElementType, TensorRef, ValueType},
};

use super::{ElementType, InferenceError, Manifest, ModelSpec, TensorSpec, runtime};

/// Where the shipped manifest sits below the asset root.
const MANIFEST_IN_ASSETS: &str = "assets/models/manifest.ron";

/// The shipped manifest, `assets/models/manifest.ron`, found the way Bevy finds its asset folder: below
/// `BEVY_ASSET_ROOT` if set, else below `CARGO_MANIFEST_DIR` (set by `cargo run`/`cargo test`), else next to the
/// executable; then, as a fallback, below this crate's own folder at build time (where the models ship when the
/// crate is a dependency). Returns the first of these that exists, or the first one tried when none does.
pub fn default_manifest_path() -> PathBuf {
    let mut roots: Vec<PathBuf> = ["BEVY_ASSET_ROOT", "CARGO_MANIFEST_DIR"]
        .into_iter()
        .filter_map(|var| std::env::var_os(var).filter(|value| !value.is_empty()))
        .map(PathBuf::from)
        .collect();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        roots.push(exe_dir);
    }
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let candidates: Vec<PathBuf> = roots
        .iter()
        .map(|root| root.join(MANIFEST_IN_ASSETS))
        .collect();
    candidates
        .iter()
        .find(|path| path.is_file())
        .or(candidates.first())
        .cloned()
        .unwrap_or_else(|| PathBuf::from(MANIFEST_IN_ASSETS))
}

/// One opened model. Sessions run one call at a time (`ort` needs `&mut Session`), hence the mutex.
struct LoadedModel {
    spec: ModelSpec,
    path: PathBuf,
    session: Mutex<Session>,
}

/// Every model of a manifest, opened and validated: inputs and outputs match the manifest by name, element
/// type and shape, or loading fails with an [`InferenceError`] that names the model and tensor.
///
/// Shape rule: same rank; each fixed dimension of the manifest equals the model's, or the model's is dynamic
/// (a model that accepts any size also accepts the declared one); a dynamic (`-1`) dimension in the manifest
/// needs a dynamic one in the model.
#[derive(Resource)]
pub struct ModelRegistry {
    manifest_path: PathBuf,
    manifest: Manifest,
    models: BTreeMap<String, LoadedModel>,
}

impl std::fmt::Debug for ModelRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelRegistry")
            .field("manifest_path", &self.manifest_path)
            .field("models", &self.models.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ModelRegistry {
    /// Loads the manifest at `manifest_path`, then opens and validates every model it lists. Starts ONNX Runtime
    /// if needed ([`ensure_onnx_runtime`](super::ensure_onnx_runtime)).
    pub fn load(manifest_path: impl AsRef<Path>) -> Result<Self, InferenceError> {
        let manifest_path = manifest_path.as_ref();
        let manifest = Manifest::from_file(manifest_path)?;
        Self::from_manifest(manifest, manifest_path)
    }

    /// Loads the shipped manifest ([`default_manifest_path`]).
    pub fn load_default() -> Result<Self, InferenceError> {
        Self::load(default_manifest_path())
    }

    /// Opens and validates the models of an already parsed manifest; model paths are relative to
    /// `manifest_path`'s folder.
    pub fn from_manifest(manifest: Manifest, manifest_path: &Path) -> Result<Self, InferenceError> {
        let folder = manifest_path.parent().unwrap_or(Path::new(""));
        // Missing files first: that error needs no ONNX Runtime and is the likelier one to fix.
        if let Some((name, spec)) = manifest
            .models
            .iter()
            .find(|(_, spec)| !folder.join(&spec.file).is_file())
        {
            return Err(InferenceError::ModelMissing {
                model: name.clone(),
                path: folder.join(&spec.file),
            });
        }
        let environment = runtime::environment()?;
        let mut models = BTreeMap::new();
        for (name, spec) in &manifest.models {
            let path = folder.join(&spec.file);
            let load_error = |reason: String| InferenceError::ModelLoad {
                model: name.clone(),
                path: path.clone(),
                reason,
            };
            // One thread per session: models run on Bevy's task pool, which already spreads work over the cores.
            let mut builder = Session::builder(environment)
                .map_err(|error| load_error(error.to_string()))?
                .with_intra_threads(1)
                .map_err(|error| load_error(error.to_string()))?;
            let session = builder
                .commit_from_file(&path)
                .map_err(|error| load_error(error.to_string()))?;
            let file = path.file_name().map_or_else(
                || path.display().to_string(),
                |file| file.to_string_lossy().into_owned(),
            );
            check_tensors("input", &spec.inputs, session.inputs(), &file)
                .and_then(|()| check_tensors("output", &spec.outputs, session.outputs(), &file))
                .map_err(|detail| InferenceError::Mismatch {
                    model: name.clone(),
                    detail,
                })?;
            models.insert(
                name.clone(),
                LoadedModel {
                    spec: spec.clone(),
                    path,
                    session: Mutex::new(session),
                },
            );
        }
        Ok(Self {
            manifest_path: manifest_path.to_path_buf(),
            manifest,
            models,
        })
    }

    /// The manifest the models were loaded from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest file's path.
    pub fn manifest_path(&self) -> &Path {
        &self.manifest_path
    }

    /// Names of the loaded models, in alphabetical order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    /// A model's declaration, if the registry holds it.
    pub fn spec(&self, name: &str) -> Option<&ModelSpec> {
        self.models.get(name).map(|model| &model.spec)
    }

    /// A model's `.onnx` file, if the registry holds it.
    pub fn model_path(&self, name: &str) -> Option<&Path> {
        self.models.get(name).map(|model| model.path.as_path())
    }

    /// Exclusive access to a model's session, for models [`ModelRegistry::run_f32`] does not fit. Blocks while
    /// another thread runs the same model.
    pub fn session(&self, name: &str) -> Result<MutexGuard<'_, Session>, InferenceError> {
        // A panic while another caller held the lock leaves the session itself intact.
        Ok(self
            .model(name)?
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs a model with one f32 input and one f32 output: `input` is row-major data of `shape`; returns the output
    /// data and its shape. The shape must fit the manifest's declaration of the input.
    pub fn run_f32(
        &self,
        name: &str,
        input: &[f32],
        shape: &[usize],
    ) -> Result<(Vec<f32>, Vec<usize>), InferenceError> {
        let model = self.model(name)?;
        let run_error = |reason: String| InferenceError::Run {
            model: name.to_owned(),
            reason,
        };
        let (input_spec, output_spec) = match (&model.spec.inputs[..], &model.spec.outputs[..]) {
            ([input], [output])
                if input.element_type == ElementType::F32
                    && output.element_type == ElementType::F32 =>
            {
                (input, output)
            }
            _ => {
                return Err(run_error(
                    "run_f32 needs exactly one f32 input and one f32 output; use ModelRegistry::session".into(),
                ));
            }
        };
        if shape.iter().product::<usize>() != input.len() {
            return Err(run_error(format!(
                "input '{}' has {} values but shape {shape:?} needs {}",
                input_spec.name,
                input.len(),
                shape.iter().product::<usize>()
            )));
        }
        if !input_spec.accepts(shape) {
            return Err(run_error(format!(
                "input '{}' must be {:?} (-1: any size), got {shape:?}",
                input_spec.name, input_spec.shape
            )));
        }
        let tensor = TensorRef::from_array_view((shape, input))
            .map_err(|error| run_error(error.to_string()))?;
        let mut session = model.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session
            .run(ort::inputs![input_spec.name.as_str() => tensor])
            .map_err(|error| run_error(error.to_string()))?;
        let value = outputs.get(&output_spec.name).ok_or_else(|| {
            run_error(format!(
                "output '{}' missing from the results",
                output_spec.name
            ))
        })?;
        let (out_shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|error| run_error(format!("output '{}': {error}", output_spec.name)))?;
        let out_shape: Vec<usize> = out_shape
            .iter()
            .map(|&dim| usize::try_from(dim).unwrap_or(0))
            .collect();
        if !output_spec.accepts(&out_shape) {
            return Err(run_error(format!(
                "output '{}' is {out_shape:?} but manifest.ron declares {:?}",
                output_spec.name, output_spec.shape
            )));
        }
        Ok((data.to_vec(), out_shape))
    }

    fn model(&self, name: &str) -> Result<&LoadedModel, InferenceError> {
        self.models
            .get(name)
            .ok_or_else(|| InferenceError::UnknownModel {
                name: name.to_owned(),
                known: self.names().collect::<Vec<_>>().join(", "),
            })
    }
}

/// Checks the declared tensors of one kind ("input"/"output") against the model's; `Err` is the detail message.
fn check_tensors(
    kind: &str,
    declared: &[TensorSpec],
    actual: &[Outlet],
    file: &str,
) -> Result<(), String> {
    for spec in declared {
        let Some(outlet) = actual.iter().find(|outlet| outlet.name() == spec.name) else {
            let names: Vec<&str> = actual.iter().map(Outlet::name).collect();
            return Err(format!(
                "{kind} '{}' is in manifest.ron but not in {file} (its {kind}s: {})",
                spec.name,
                names.join(", ")
            ));
        };
        let ValueType::Tensor { ty, shape, .. } = outlet.dtype() else {
            return Err(format!(
                "{kind} '{}' is a tensor in manifest.ron but {} in {file}",
                spec.name,
                outlet.dtype()
            ));
        };
        let expected = match spec.element_type {
            ElementType::F32 => TensorElementType::Float32,
            ElementType::I64 => TensorElementType::Int64,
        };
        if *ty != expected {
            return Err(format!(
                "{kind} '{}' is {} in manifest.ron but {ty} in {file}",
                spec.name, spec.element_type
            ));
        }
        let fits = shape.len() == spec.shape.len()
            && spec
                .shape
                .iter()
                .zip(shape.iter())
                .all(|(&declared, &model)| declared == model || (declared >= 0 && model < 0));
        if !fits {
            return Err(format!(
                "{kind} '{}' is {:?} in manifest.ron but {:?} in {file}",
                spec.name,
                spec.shape,
                &shape[..]
            ));
        }
    }
    if let Some(extra) = actual
        .iter()
        .find(|outlet| !declared.iter().any(|spec| spec.name == outlet.name()))
    {
        return Err(format!(
            "{kind} '{}' is in {file} but not in manifest.ron",
            extra.name()
        ));
    }
    Ok(())
}
