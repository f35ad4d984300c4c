//! 60 s of speech → 25 fps ARKit weights on one thread (the Rust log-mel front end, then `audio_encoder` and
//! `motion_generator` through ONNX Runtime with one intra-op thread), as the plugin runs it: offline in one
//! chunk, in 10 s chunks (clips), and in 40 ms pushes (a live stream). Prints × real time; the goal is ≥ 1000×.

mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use bevy_talking_head::audio::decode_file;
use bevy_talking_head::inference::{LogMel, ModelRegistry, SpeechToMotion};
use common::bench;
use criterion::Criterion;

const SECONDS: usize = 60;
const RATE: usize = 16_000;

/// The shipped clip repeated to 60 s at 16 kHz.
fn minute_of_speech() -> Vec<f32> {
    let clip = decode_file(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/speech/hello.wav"))
        .and_then(|pcm| pcm.to_16k())
        .expect("the shipped clip");
    clip.samples
        .iter()
        .copied()
        .cycle()
        .take(SECONDS * RATE)
        .collect()
}

/// Speech → frames, pushing `chunk` samples at a time and taking the ready frames after each push.
fn coefficients(registry: &ModelRegistry, samples: &[f32], chunk: usize) -> usize {
    let mut speech = SpeechToMotion::new();
    let mut frames = 0;
    for piece in samples.chunks(chunk) {
        speech.push(piece);
        frames += speech
            .take_frames(registry, usize::MAX)
            .expect("frames")
            .len();
    }
    speech.finish();
    frames
        + speech
            .take_frames(registry, usize::MAX)
            .expect("frames")
            .len()
}

fn main() {
    let registry = match ModelRegistry::load_default() {
        Ok(registry) => registry,
        Err(error) => {
            eprintln!("no speech benchmark: {error}");
            return;
        }
    };
    let samples = minute_of_speech();
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();
    let log_mel = LogMel::new();
    bench(&mut criterion, "log_mel_60s", || {
        black_box(log_mel.frames(&samples));
    });
    bench(&mut criterion, "speech_60s_one_chunk", || {
        black_box(coefficients(&registry, &samples, samples.len()));
    });
    bench(&mut criterion, "speech_60s_10s_chunks", || {
        black_box(coefficients(&registry, &samples, 10 * RATE));
    });
    bench(&mut criterion, "speech_60s_40ms_pushes", || {
        black_box(coefficients(&registry, &samples, RATE / 25));
    });
    criterion.final_summary();

    println!("60 s of speech, one thread:");
    for (name, each) in common::means() {
        let each = each.as_secs_f64();
        println!(
            "  {name:<24} {:>8.1} ms  {:>7.0}x real time",
            each * 1e3,
            SECONDS as f64 / each
        );
    }
}
