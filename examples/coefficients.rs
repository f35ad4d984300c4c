//! `coefficients`: speech → 25 fps ARKit blendshape weights, written as JSON or CSV, for driving other rigs and for
//! evaluation. No window, no GPU: only the speech models through ONNX Runtime.
//!
//! ```sh
//! cargo run --release --example coefficients -- assets/speech/hello.wav --out out/hello.json
//! cargo run --release --example coefficients -- assets/speech/hello.wav --out out/hello.csv
//! ```
//!
//! Frame `i` describes the audio from `i / 25` to `(i + 1) / 25` seconds; its `time` is `i / 25`.
//! JSON: `{"frame_rate_hz": 25, "names": [52 ARKit names], "frames": [{"time": t, "weights": [52 numbers], …}, …]}`;
//! CSV: the header `time,eyeBlinkLeft,…,tongueOut,headPitch,headYaw,headRoll,headX,headY,headZ`, one row per frame
//! (see `bevy_talking_head::motion::track_file`).
//! The audio is processed 10 s at a time, so the models' memory stays bounded however long the file is.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use bevy_talking_head::FaceCoefficients;
use bevy_talking_head::audio::decode_file;
use bevy_talking_head::contract::{ARKIT_WEIGHT_COUNT, FRAME_RATE_HZ, SAMPLE_RATE_HZ};
use bevy_talking_head::inference::{ModelRegistry, SpeechToMotion};
use bevy_talking_head::motion::track_file::{TrackFormat, write_track};

const USAGE: &str = "\
usage: coefficients SPEECH --out TRACK.json|TRACK.csv

  SPEECH   speech clip: WAV, Ogg Vorbis, FLAC or MP3, mono or stereo, 1-384 kHz
  --out    output file; the extension picks the format (.json or .csv)";

/// Exit codes: 2 bad arguments or input, 3 models unavailable, 4 output could not be written.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("coefficients: {message}");
            ExitCode::from(code)
        }
    }
}

fn arguments() -> Result<(PathBuf, PathBuf, TrackFormat), String> {
    let mut input = None;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = Some(PathBuf::from(args.next().ok_or("--out needs a path")?)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            flag if flag.starts_with("--") => {
                return Err(format!("unknown option {flag}\n{USAGE}"));
            }
            path if input.is_none() => input = Some(PathBuf::from(path)),
            extra => return Err(format!("unexpected argument {extra}\n{USAGE}")),
        }
    }
    let input = input.ok_or_else(|| format!("no speech file given\n{USAGE}"))?;
    let out = out.ok_or_else(|| format!("no --out file given\n{USAGE}"))?;
    let format = TrackFormat::from_path(&out)
        .ok_or_else(|| format!("--out {} must end in .json or .csv", out.display()))?;
    Ok((input, out, format))
}

fn run() -> Result<(), (u8, String)> {
    let (input, out, format) = arguments().map_err(|m| (2, m))?;
    let started = Instant::now();
    let clip = decode_file(&input)
        .and_then(|pcm| pcm.to_16k())
        .map_err(|e| (2, e.to_string()))?;
    let decoded = started.elapsed();
    let registry = ModelRegistry::load_default().map_err(|e| (3, e.to_string()))?;

    let inference = Instant::now();
    let mut speech = SpeechToMotion::new();
    let mut frames: Vec<[f32; ARKIT_WEIGHT_COUNT]> = Vec::new();
    let chunk = 10 * SAMPLE_RATE_HZ as usize;
    for piece in clip.samples.chunks(chunk) {
        speech.push(piece);
        frames.extend(
            speech
                .take_frames(&registry, usize::MAX)
                .map_err(|e| (3, e.to_string()))?,
        );
    }
    speech.finish();
    frames.extend(
        speech
            .take_frames(&registry, usize::MAX)
            .map_err(|e| (3, e.to_string()))?,
    );
    let inference = inference.elapsed();

    if let Some(folder) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .map_err(|e| (4, format!("cannot create {}: {e}", folder.display())))?;
    }
    let file = std::fs::File::create(&out)
        .map_err(|e| (4, format!("cannot create {}: {e}", out.display())))?;
    let mut writer = BufWriter::new(file);
    let frames: Vec<FaceCoefficients> = frames
        .into_iter()
        .map(|weights| FaceCoefficients {
            weights,
            ..Default::default()
        })
        .collect();
    write_track(&mut writer, &frames, FRAME_RATE_HZ, format)
        .and_then(|()| writer.flush())
        .map_err(|e| (4, format!("cannot write {}: {e}", out.display())))?;

    let seconds = clip.duration_secs();
    println!(
        "{}: {:.2} s of speech -> {} frames at {FRAME_RATE_HZ} fps in {}; decode {:.0} ms, models {:.0} ms \
         ({:.0}x real time)",
        input.display(),
        seconds,
        frames.len(),
        out.display(),
        decoded.as_secs_f64() * 1000.0,
        inference.as_secs_f64() * 1000.0,
        seconds / inference.as_secs_f64().max(1e-9)
    );
    Ok(())
}
