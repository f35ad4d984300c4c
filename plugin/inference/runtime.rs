//! Finding and starting ONNX Runtime, once per process.
//!
//! `ort` is built with `load-dynamic`: nothing is linked at build time and the shared library is opened at run
//! time. Left to itself `ort` panics on first use when the library is missing; here the search is explicit and a
//! missing library is an [`InferenceError::RuntimeNotFound`] that says where we looked and what to do.

use std::{
    env::consts::{DLL_PREFIX, DLL_SUFFIX},
    path::{Path, PathBuf},
    sync::OnceLock,
};

use ort::environment::Environment;

use super::InferenceError;

/// The ONNX Runtime release this crate is built and tested against; `tools/setup.sh` installs it into the cache
/// folder searched by [`ensure_onnx_runtime`]. `ort` accepts any 1.31.x or newer.
pub const ONNX_RUNTIME_VERSION: &str = "1.31.1";

/// The loaded library and the process-wide `ort` environment (`ort` allows only one per process).
struct OnnxRuntime {
    path: PathBuf,
    environment: Environment,
}

/// The first outcome is kept for the life of the process, error included, so every caller gets the same answer.
static RUNTIME: OnceLock<Result<OnnxRuntime, InferenceError>> = OnceLock::new();

/// Finds and initialises ONNX Runtime once per process and returns the path of the library in use.
///
/// Search order, first usable file wins:
/// 1. the environment variable `ORT_DYLIB_PATH`, if set;
/// 2. `${XDG_CACHE_HOME:-$HOME/.cache}/bevy_talking_head/onnxruntime/1.31.1/libonnxruntime.so.1.31.1`
///    (where `tools/setup.sh` puts it);
/// 3. next to the current executable, then in its parent folder (cargo runs tests and examples from `deps/` and
///    `examples/` below the folder a shipped binary would sit in).
///
/// Calling it again is cheap and returns the first call's result. Never panics; call it (or load a
/// [`ModelRegistry`](super::ModelRegistry), which does) before any other use of `ort`.
pub fn ensure_onnx_runtime() -> Result<&'static Path, InferenceError> {
    runtime().map(|runtime| runtime.path.as_path())
}

/// The process-wide `ort` environment, for building sessions.
pub(crate) fn environment() -> Result<&'static Environment, InferenceError> {
    runtime().map(|runtime| &runtime.environment)
}

fn runtime() -> Result<&'static OnnxRuntime, InferenceError> {
    RUNTIME
        .get_or_init(|| start(&candidates()))
        .as_ref()
        .map_err(Clone::clone)
}

/// Library file names to look for in a folder, most specific first.
fn library_file_names() -> Vec<String> {
    let generic = format!("{DLL_PREFIX}onnxruntime{DLL_SUFFIX}");
    if cfg!(target_os = "macos") {
        vec![
            format!("libonnxruntime.{ONNX_RUNTIME_VERSION}.dylib"),
            generic,
        ]
    } else if cfg!(windows) {
        vec![generic]
    } else {
        vec![format!("{generic}.{ONNX_RUNTIME_VERSION}"), generic]
    }
}

/// `${XDG_CACHE_HOME:-$HOME/.cache}`.
fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })
}

/// Every path [`ensure_onnx_runtime`] tries, in order.
fn candidates() -> Vec<PathBuf> {
    let names = library_file_names();
    let mut paths = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|path| !path.is_empty()) {
        paths.push(PathBuf::from(path));
    }
    if let (Some(cache), Some(name)) = (cache_dir(), names.first()) {
        paths.push(
            cache
                .join("bevy_talking_head")
                .join("onnxruntime")
                .join(ONNX_RUNTIME_VERSION)
                .join(name),
        );
    }
    if let Ok(exe) = std::env::current_exe() {
        let folder = exe.parent();
        for dir in folder.into_iter().chain(folder.and_then(Path::parent)) {
            paths.extend(names.iter().map(|name| dir.join(name)));
        }
    }
    paths
}

/// Loads the first candidate that exists and is a compatible ONNX Runtime, then creates the environment.
fn start(candidates: &[PathBuf]) -> Result<OnnxRuntime, InferenceError> {
    let mut searched = Vec::with_capacity(candidates.len());
    for path in candidates {
        if !path.is_file() {
            searched.push(format!("{} (not found)", path.display()));
            continue;
        }
        // A failed load leaves `ort` without a library, so the next candidate can still be tried.
        match ort::init_from(path) {
            Ok(builder) => {
                let environment = builder
                    .with_name("bevy_talking_head")
                    .with_telemetry(false)
                    .build()
                    .map_err(|error| InferenceError::RuntimeInit {
                        path: path.clone(),
                        reason: error.to_string(),
                    })?;
                bevy::log::info!("ONNX Runtime loaded from {}", path.display());
                return Ok(OnnxRuntime {
                    path: path.clone(),
                    environment,
                });
            }
            Err(error) => searched.push(format!("{} ({error})", path.display())),
        }
    }
    if searched.is_empty() {
        searched
            .push("nothing: ORT_DYLIB_PATH, HOME and the executable's path are all unknown".into());
    }
    Err(InferenceError::RuntimeNotFound {
        searched: searched.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_include_the_setup_cache_path() {
        let Some(cache) = cache_dir() else {
            return;
        };
        let expected = cache
            .join("bevy_talking_head/onnxruntime")
            .join(ONNX_RUNTIME_VERSION)
            .join(&library_file_names()[0]);
        assert!(
            candidates().contains(&expected),
            "{expected:?} not in {:?}",
            candidates()
        );
    }

    #[test]
    fn nothing_found_lists_every_place_and_says_what_to_do() {
        let missing = [
            PathBuf::from("/nonexistent/a/libonnxruntime.so"),
            PathBuf::from("/nonexistent/b/libonnxruntime.so"),
        ];
        let Err(error) = start(&missing) else {
            panic!("found a library at a path that does not exist");
        };
        let message = error.to_string();
        for path in &missing {
            assert!(message.contains(&path.display().to_string()), "{message}");
        }
        assert!(message.contains("not found"), "{message}");
        assert!(message.contains("tools/setup.sh"), "{message}");
        assert!(message.contains("ORT_DYLIB_PATH"), "{message}");
    }
}
