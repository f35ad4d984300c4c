//! Model contract tests: the shipped manifest loads through the registry with ONNX Runtime, the ONNX log-mel
//! front end agrees with the Rust reference, and broken manifests fail with errors that name what is wrong.
//!
//! Nothing here is skipped: without ONNX Runtime the tests fail with the message that says how to install it.

use std::path::{Path, PathBuf};

use bevy_talking_head::{
    contract::{MEL_BANDS, SAMPLE_RATE_HZ},
    inference::{
        InferenceError, Manifest, ModelRegistry, default_manifest_path, log_mel,
        log_mel_frame_count,
    },
};

/// A test failure that prints the error's message (`Display`), so a missing ONNX Runtime reads as the
/// instruction to install it.
struct Failure(InferenceError);

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<InferenceError> for Failure {
    fn from(error: InferenceError) -> Self {
        Self(error)
    }
}

fn shipped_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/manifest.ron")
}

/// A fresh folder for one test's temporary manifests.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("models-{test}-{}", std::process::id()));
    // Best effort: a leftover from an earlier run is simply overwritten.
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(error) = std::fs::create_dir_all(&dir) {
        panic!("cannot create {}: {error}", dir.display());
    }
    dir
}

/// The shipped manifest with `edit` applied, written into `dir` with model files pointing at the shipped ones.
fn write_edited_manifest(
    dir: &Path,
    edit: impl FnOnce(&mut Manifest),
) -> Result<PathBuf, InferenceError> {
    let shipped = shipped_manifest();
    let mut manifest = Manifest::from_file(&shipped)?;
    let shipped_folder = shipped.parent().unwrap_or(Path::new("."));
    for spec in manifest.models.values_mut() {
        spec.file = shipped_folder.join(&spec.file);
    }
    edit(&mut manifest);
    let path = dir.join("manifest.ron");
    let text = manifest.to_ron()?;
    std::fs::write(&path, text).map_err(|error| InferenceError::ManifestRead {
        path: path.clone(),
        reason: error.to_string(),
    })?;
    Ok(path)
}

/// ~2 s of a deterministic, speech-like test signal: a 100 Hz → 4 kHz chirp with a slow amplitude envelope, white
/// noise at about -40 dBFS, and an exactly silent stretch from 0.75 s to 1.125 s.
fn test_signal() -> Vec<f32> {
    let rate = SAMPLE_RATE_HZ as f64;
    let mut state = 0x9e37_79b9_u32;
    (0..2 * SAMPLE_RATE_HZ as usize)
        .map(|i| {
            if (12_000..18_000).contains(&i) {
                return 0.0;
            }
            let t = i as f64 / rate;
            let phase = std::f64::consts::TAU * (100.0 * t + 0.25 * (4_000.0 - 100.0) * t * t);
            let envelope = 0.2 + 0.15 * (std::f64::consts::TAU * 3.0 * t).sin();
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = ((state >> 8) as f64 / (1 << 24) as f64 - 0.5) * 0.02;
            (envelope * phase.sin() + noise) as f32
        })
        .collect()
}

fn expect_err<T>(result: Result<T, InferenceError>, what: &str) -> InferenceError {
    match result {
        Ok(_) => panic!("{what}: expected an error, got Ok"),
        Err(error) => error,
    }
}

#[test]
fn shipped_manifest_loads_and_validates() -> Result<(), Failure> {
    let registry = ModelRegistry::load(shipped_manifest())?;
    let names: Vec<&str> = registry.names().collect();
    assert!(names.contains(&"log_mel"), "{names:?}");
    assert!(registry.manifest().motion_code_size > 0);
    for name in &names {
        let Some(spec) = registry.spec(name) else {
            panic!("'{name}' listed but has no spec");
        };
        let card = shipped_manifest().with_file_name(&spec.card);
        assert!(
            card.is_file(),
            "model '{name}': card {} missing",
            card.display()
        );
    }
    assert_eq!(
        default_manifest_path().canonicalize().ok(),
        shipped_manifest().canonicalize().ok(),
        "cargo test sets CARGO_MANIFEST_DIR, so the default manifest is the shipped one"
    );
    Ok(())
}

#[test]
fn onnx_log_mel_matches_the_rust_reference() -> Result<(), Failure> {
    let registry = ModelRegistry::load(shipped_manifest())?;
    let signal = test_signal();
    let (onnx, shape) = registry.run_f32("log_mel", &signal, &[1, signal.len()])?;
    let frames = log_mel_frame_count(signal.len());
    assert_eq!(shape, [1, frames, MEL_BANDS]);
    let rust = log_mel(&signal);
    assert_eq!(rust.len(), frames);
    let (mut max_diff, mut at) = (0.0_f32, (0, 0));
    for (t, frame) in rust.iter().enumerate() {
        for (band, &value) in frame.iter().enumerate() {
            let diff = (onnx[t * MEL_BANDS + band] - value).abs();
            if diff > max_diff {
                (max_diff, at) = (diff, (t, band));
            }
        }
    }
    println!(
        "log_mel: {frames} frames x {MEL_BANDS} bands, max |onnx - rust| = {max_diff:.3e} (frame {}, band {})",
        at.0, at.1
    );
    assert!(
        max_diff <= 1e-3,
        "max abs difference {max_diff} at frame {}, band {}",
        at.0,
        at.1
    );
    // The silent stretch really is silent in both: frames fully inside 12 000..18 000 samples sit at ln(eps).
    let floor = bevy_talking_head::inference::LOG_MEL_EPS.ln();
    assert!(rust[80].iter().all(|&value| value == floor));
    assert!(
        onnx[80 * MEL_BANDS..81 * MEL_BANDS]
            .iter()
            .all(|&value| (value - floor).abs() < 1e-6)
    );
    Ok(())
}

#[test]
fn run_f32_rejects_inputs_that_do_not_fit() -> Result<(), Failure> {
    let registry = ModelRegistry::load(shipped_manifest())?;
    let samples = vec![0.0_f32; 800];
    let error = expect_err(
        registry.run_f32("log_mel", &samples, &[2, 400]),
        "batch of 2",
    );
    assert!(error.to_string().contains("'samples'"), "{error}");
    let error = expect_err(
        registry.run_f32("log_mel", &samples, &[1, 700]),
        "wrong length",
    );
    assert!(error.to_string().contains("800 values"), "{error}");
    let error = expect_err(
        registry.run_f32("wav2lip", &samples, &[1, 800]),
        "unknown model",
    );
    assert!(
        error.to_string().contains("'wav2lip'") && error.to_string().contains("log_mel"),
        "{error}"
    );
    // Shorter than one window: ONNX Runtime refuses, and that is an error, not a panic.
    let error = expect_err(
        registry.run_f32("log_mel", &samples[..100], &[1, 100]),
        "too short",
    );
    assert!(matches!(error, InferenceError::Run { .. }), "{error}");
    Ok(())
}

#[test]
fn wrong_shape_in_the_manifest_is_named() -> Result<(), Failure> {
    let dir = scratch_dir("shape");
    let path = write_edited_manifest(&dir, |manifest| {
        if let Some(spec) = manifest.models.get_mut("log_mel") {
            spec.inputs[0].shape = vec![-1];
        }
    })?;
    let error = expect_err(ModelRegistry::load(&path), "wrong shape");
    assert_eq!(
        error.to_string(),
        "model 'log_mel': input 'samples' is [-1] in manifest.ron but [1, -1] in log_mel.onnx"
    );

    let path = write_edited_manifest(&dir, |manifest| {
        if let Some(spec) = manifest.models.get_mut("log_mel") {
            spec.outputs[0].shape = vec![1, -1, 64];
        }
    })?;
    let error = expect_err(ModelRegistry::load(&path), "wrong band count");
    assert_eq!(
        error.to_string(),
        "model 'log_mel': output 'log_mel' is [1, -1, 64] in manifest.ron but [1, -1, 80] in log_mel.onnx"
    );
    Ok(())
}

#[test]
fn wrong_tensor_name_or_type_in_the_manifest_is_named() -> Result<(), Failure> {
    let dir = scratch_dir("name");
    let path = write_edited_manifest(&dir, |manifest| {
        if let Some(spec) = manifest.models.get_mut("log_mel") {
            spec.inputs[0].name = "audio".into();
        }
    })?;
    let error = expect_err(ModelRegistry::load(&path), "wrong name");
    let message = error.to_string();
    assert!(
        message.starts_with(
            "model 'log_mel': input 'audio' is in manifest.ron but not in log_mel.onnx"
        ),
        "{message}"
    );
    assert!(message.contains("samples"), "{message}");

    let path = write_edited_manifest(&dir, |manifest| {
        if let Some(spec) = manifest.models.get_mut("log_mel") {
            spec.outputs[0].element_type = bevy_talking_head::inference::ElementType::I64;
        }
    })?;
    let error = expect_err(ModelRegistry::load(&path), "wrong element type");
    assert_eq!(
        error.to_string(),
        "model 'log_mel': output 'log_mel' is i64 in manifest.ron but f32 in log_mel.onnx"
    );
    Ok(())
}

#[test]
fn missing_model_file_is_named() -> Result<(), Failure> {
    let dir = scratch_dir("missing");
    let path = write_edited_manifest(&dir, |manifest| {
        if let Some(spec) = manifest.models.get_mut("log_mel") {
            spec.file = PathBuf::from("no_such_model.onnx");
        }
    })?;
    let error = expect_err(ModelRegistry::load(&path), "missing file");
    let InferenceError::ModelMissing {
        model,
        path: missing,
    } = &error
    else {
        panic!("expected ModelMissing, got {error}");
    };
    assert_eq!(model, "log_mel");
    assert_eq!(missing, &dir.join("no_such_model.onnx"));
    assert!(error.to_string().contains("no_such_model.onnx"), "{error}");
    Ok(())
}

#[test]
fn malformed_or_missing_manifest_is_an_error_not_a_panic() {
    let dir = scratch_dir("malformed");
    let path = dir.join("manifest.ron");
    let broken = "(motion_code_size: 32, models: { \"log_mel\": (file: \"log_mel.onnx\", ";
    if let Err(error) = std::fs::write(&path, broken) {
        panic!("cannot write {}: {error}", path.display());
    }
    let error = expect_err(ModelRegistry::load(&path), "malformed RON");
    assert!(
        matches!(error, InferenceError::ManifestParse { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );

    let error = expect_err(
        ModelRegistry::load(dir.join("absent.ron")),
        "absent manifest",
    );
    assert!(
        matches!(error, InferenceError::ManifestRead { .. }),
        "{error}"
    );
}

#[test]
fn speech_models_give_a_moving_jaw_for_speech_and_rest_for_silence() {
    use bevy_talking_head::audio::decode_file;
    use bevy_talking_head::inference::{speech_frame_count, speech_to_weights};
    let registry = ModelRegistry::load_default().expect("models");
    let clip = decode_file(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/speech/hello.wav"),
    )
    .expect("clip")
    .to_16k()
    .expect("16 kHz");
    let weights = speech_to_weights(&registry, &clip.samples).expect("weights");
    assert_eq!(weights.len(), speech_frame_count(clip.samples.len()));
    assert!(weights.iter().flatten().all(|w| (0.0..=1.0).contains(w)));
    let jaw: Vec<f32> = weights.iter().map(|w| w[17]).collect();
    let max = jaw.iter().copied().fold(0.0, f32::max);
    let min = jaw.iter().copied().fold(1.0, f32::min);
    println!(
        "hello.wav: {} frames, jawOpen {min:.3}..{max:.3}",
        jaw.len()
    );
    assert!(max > 0.2 && min < 0.05, "jawOpen {min}..{max}");

    let silence = speech_to_weights(&registry, &vec![0.0; 16_000]).expect("weights");
    assert_eq!(silence.len(), 25);
    let loudest = silence.iter().flatten().copied().fold(0.0, f32::max);
    assert!(loudest < 0.01, "silence moves the face: {loudest}");
    assert!(speech_to_weights(&registry, &[]).expect("empty").is_empty());
    let short = speech_to_weights(&registry, &[0.1; 10]).expect("ten samples");
    assert_eq!(short.len(), 1);
}

/// Root-mean-square of the third difference along time (the jerk of a 25 fps track), averaged over its columns.
fn jerk(track: &[Vec<f32>]) -> f64 {
    let columns = track.first().map_or(0, Vec::len);
    let mut sum = 0.0;
    let mut count = 0usize;
    for c in 0..columns {
        for w in track.windows(4) {
            let d = f64::from(w[3][c] - 3.0 * w[2][c] + 3.0 * w[1][c] - w[0][c]);
            sum += d * d;
            count += 1;
        }
    }
    (sum / count.max(1) as f64).sqrt()
}

#[test]
fn motion_encoder_reproduces_the_rig_mapping_without_adding_jerk() {
    use bevy_talking_head::FaceCoefficients;
    use bevy_talking_head::audio::decode_file;
    use bevy_talking_head::contract::MOTION_WINDOW;
    use bevy_talking_head::identity::rig::bases;
    use bevy_talking_head::inference::{encode_motion, motion_window, speech_to_weights};
    use bevy_talking_head::motion::expression::{Expression, MotionSettings};
    use bevy_talking_head::motion::{EmotionLibrary, arkit_index};

    let registry = ModelRegistry::load_default().expect("models");
    let clip = decode_file(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/speech/hello.wav"))
        .expect("clip")
        .to_16k()
        .expect("16 kHz");
    let speech = speech_to_weights(&registry, &clip.samples).expect("speech");
    let library = EmotionLibrary::default();
    let neutral = library.neutral_style();
    let blink = arkit_index("eyeBlinkLeft").expect("ARKit name");
    println!(
        "| emotion | RMSE | max error | jerk encoded / mapped | blink peak encoded / mapped |"
    );
    println!("|---|---|---|---|---|");
    for (seed, name) in library.names().iter().enumerate() {
        // The clip, then two seconds of rest, shown with the emotion, its blinks and head motion at 25 fps.
        let profile = library.get(name).expect("listed").at(1.0, &neutral);
        let mut expression = Expression::new(seed as u64 + 3, &profile);
        let faces: Vec<FaceCoefficients> = (0..speech.len() + 50)
            .map(|i| {
                let mut frame = FaceCoefficients::default();
                if let Some(weights) = speech.get(i) {
                    frame.weights = *weights;
                }
                expression.step(&frame, &MotionSettings::default(), 0.04)
            })
            .collect();
        let half = MOTION_WINDOW as isize / 2;
        let last = faces.len() as isize - 1;
        let windows: Vec<_> = (0..faces.len() as isize)
            .map(|i| {
                motion_window(&std::array::from_fn(|k| {
                    faces[(i + k as isize - half).clamp(0, last) as usize]
                }))
            })
            .collect();
        let encoded = encode_motion(&registry, &windows).expect("encoder");
        let mapped: Vec<Vec<f32>> = faces
            .iter()
            .map(|f| bases::from_arkit(f).to_vec())
            .collect();
        assert_eq!(encoded.len(), mapped.len());
        assert!(encoded.iter().all(|c| c.len() == bases::COUNT));
        let errors: Vec<f32> = encoded
            .iter()
            .flatten()
            .zip(mapped.iter().flatten())
            .map(|(a, b)| a - b)
            .collect();
        let rmse =
            (errors.iter().map(|e| f64::from(e * e)).sum::<f64>() / errors.len() as f64).sqrt();
        let worst = errors.iter().map(|e| e.abs()).fold(0.0, f32::max);
        let ratio = jerk(&encoded) / jerk(&mapped);
        let peak = |codes: &[Vec<f32>]| {
            codes
                .iter()
                .map(|c| c[bases::BLINK_LEFT])
                .fold(0.0, f32::max)
        };
        let blinked = faces.iter().any(|f| f.weights[blink] > 0.9);
        let blink_ratio = peak(&encoded) / peak(&mapped).max(1e-6);
        println!("| {name} | {rmse:.4} | {worst:.3} | {ratio:.3} | {blink_ratio:.3} |");
        assert!(
            rmse < 0.005 && worst < 0.03,
            "{name}: RMSE {rmse}, max {worst} against the rig's mapping"
        );
        assert!(ratio <= 1.01, "{name}: the encoder adds jerk ({ratio})");
        assert!(blinked, "{name}: no blink in the track to check");
        assert!(
            blink_ratio > 0.95,
            "{name}: blinks shrink to {blink_ratio} of their peak"
        );
    }
    // A NaN in the window is read as 0, and codes stay in 0..1.
    let mut broken = [FaceCoefficients::default(); MOTION_WINDOW];
    broken[5].weights[0] = f32::NAN;
    let codes = encode_motion(&registry, &[motion_window(&broken)]).expect("encoder");
    let rest = encode_motion(
        &registry,
        &[motion_window(&[FaceCoefficients::default(); MOTION_WINDOW])],
    )
    .expect("encoder");
    assert_eq!(codes, rest);
    assert!(codes[0].iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(encode_motion(&registry, &[]).expect("empty").is_empty());
}
