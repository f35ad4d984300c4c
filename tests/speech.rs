//! Speech → coefficients through ONNX Runtime: streaming equals offline, look-ahead, the plugin's stream path,
//! bounded memory over hours of audio, and bad input.

mod common;

use std::path::Path;

use bevy::prelude::*;
use bevy_talking_head::audio::{
    AudioError, SpeechStream, decode_bytes, decode_file, resample_to_16k,
};
use bevy_talking_head::contract::ARKIT_WEIGHT_COUNT;
use bevy_talking_head::inference::{
    ModelRegistry, SAMPLES_PER_FRAME, SPEECH_LOOKAHEAD_SECS, SpeechToMotion, speech_frame_count,
    speech_to_weights,
};
use bevy_talking_head::prelude::*;
use bevy_talking_head::{MotionTrack, SpeechMotion};

const JAW_OPEN: usize = 17;
/// The streaming-equals-offline limit of issue 3.
const SAME: f32 = 1e-3;

type Frames = Vec<[f32; ARKIT_WEIGHT_COUNT]>;

fn registry() -> ModelRegistry {
    ModelRegistry::load_default().expect("the shipped models load (run tools/setup.sh)")
}

/// A shipped clip, mono at 16 kHz.
fn clip_16k(name: &str) -> Vec<f32> {
    decode_file(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/speech")
            .join(name),
    )
    .expect("shipped clip")
    .to_16k()
    .expect("16 kHz")
    .samples
}

/// Largest absolute difference between two frame lists of the same length.
fn max_diff(a: &Frames, b: &Frames) -> f32 {
    assert_eq!(a.len(), b.len(), "frame counts differ");
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn streaming_in_chunks_equals_offline_with_a_fixed_lookahead() {
    let registry = registry();
    let clip = clip_16k("hello.wav");
    let offline = speech_to_weights(&registry, &clip).expect("offline");
    assert_eq!(offline.len(), speech_frame_count(clip.len()));

    // 87.5 ms at 16 kHz: within the 100 ms of latency a stream may add.
    let lookahead = 1400;
    assert_eq!(
        (SPEECH_LOOKAHEAD_SECS * 16_000.0).round() as usize,
        lookahead
    );
    let mut rng = common::Lcg(3);
    let mut speech = SpeechToMotion::new();
    let mut streamed = Frames::new();
    let mut pushed = 0;
    while pushed < clip.len() {
        let take = (1 + rng.below(3000)).min(clip.len() - pushed);
        speech.push(&clip[pushed..pushed + take]);
        pushed += take;
        // Exactly the frames whose window of audio is in are ready: frame t needs samples up to its centre
        // (640 t + 320) plus the look-ahead.
        let available = streamed.len() + speech.ready_frames();
        let expected = (pushed + 1)
            .saturating_sub(SAMPLES_PER_FRAME / 2 + lookahead)
            .div_ceil(SAMPLES_PER_FRAME);
        assert_eq!(available, expected, "after {pushed} samples");
        let frames = speech
            .take_frames(&registry, 1 + rng.below(8))
            .expect("chunk");
        streamed.extend(frames);
    }
    speech.finish();
    streamed.extend(speech.take_frames(&registry, usize::MAX).expect("tail"));
    let diff = max_diff(&streamed, &offline);
    println!(
        "{} frames, streamed in random chunks vs offline: max |diff| {diff:.2e}; look-ahead {:.1} ms after the \
         frame centre",
        offline.len(),
        SPEECH_LOOKAHEAD_SECS * 1000.0
    );
    assert!(diff <= SAME, "max |diff| {diff}");
}

#[test]
fn a_streamed_head_gets_the_offline_coefficients() {
    let registry = registry();
    // The 44.1 kHz clip, streamed at its own rate; offline = the same file resampled as a whole.
    let file = decode_file(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/speech/hello_stereo_44k.wav"),
    )
    .expect("shipped clip");
    let offline =
        speech_to_weights(&registry, &file.to_16k().expect("16 kHz").samples).expect("offline");

    let mut app = common::headless_app();
    let head = app
        .world_mut()
        .spawn((
            SpeechStream::new(),
            MotionTrack::default(),
            FaceCoefficients::default(),
            // A manual clock stays at 0, so the track keeps every frame for the comparison.
            PlaybackClock::manual(),
        ))
        .id();
    // 20 ms of audio at a time, as a live source would deliver it; after each piece the app runs until the
    // plugin's chunk on the async compute pool is through (that pool also compiles the renderer's pipelines at
    // start-up, seconds on lavapipe, so its timing is not what this test is about).
    let mut growth_steps = 0;
    let mut produced = 0;
    for chunk in file.samples.chunks(882) {
        let mut entity = app.world_mut().entity_mut(head);
        let mut stream = entity.get_mut::<SpeechStream>().expect("stream");
        stream.push(chunk, 1, file.sample_rate_hz).expect("push");
        app.update();
        let through = common::run_until(&mut app, 5000, |app| {
            app.world()
                .get::<SpeechMotion>(head)
                .is_some_and(|m| !m.is_computing())
        });
        assert!(through, "{:?}", app.world().get::<SpeechMotion>(head));
        let now = app
            .world()
            .get::<MotionTrack>(head)
            .expect("track")
            .frames_produced();
        growth_steps += usize::from(now > produced);
        produced = now;
    }
    println!(
        "the track grew in {growth_steps} steps while {} pieces of audio arrived",
        file.samples.len().div_ceil(882)
    );
    // 44.1 kHz pieces of 882 samples are 20 ms: a 40 ms frame completes every other piece.
    let pieces = file.samples.len().div_ceil(882);
    assert!(
        growth_steps >= pieces / 2 - 5,
        "{growth_steps} of {pieces} pieces"
    );
    if let Some(mut stream) = app.world_mut().get_mut::<SpeechStream>(head) {
        stream.finish().expect("finish");
    }
    let done = common::run_until(&mut app, 2000, |app| {
        app.world()
            .get::<SpeechMotion>(head)
            .is_some_and(|m| m.is_done() || m.unavailable().is_some())
    });
    assert!(done, "{:?}", app.world().get::<SpeechMotion>(head));
    let track = app.world().get::<MotionTrack>(head).expect("track");
    assert_eq!(track.frames_produced() as usize, offline.len());
    let streamed: Frames = (0..offline.len())
        .map(|i| {
            track
                .sample((i as f64 + 0.5) / 25.0)
                .expect("frame")
                .weights
        })
        .collect();
    let diff = max_diff(&streamed, &offline);
    println!("plugin stream at 44.1 kHz vs offline: max |diff| {diff:.2e}");
    assert!(diff <= SAME, "max |diff| {diff}");
}

#[test]
fn an_hour_of_audio_streams_through_in_bounded_memory() {
    let registry = registry();
    let clip = clip_16k("hello.wav");
    let mut speech = SpeechToMotion::new();
    let seconds = 3600;
    let mut frames = 0;
    let mut most_held = (0, 0);
    let mut jaw_max = 0.0f32;
    let mut chunk = Vec::with_capacity(16_000);
    let mut position = 0;
    for _ in 0..seconds {
        chunk.clear();
        while chunk.len() < 16_000 {
            let take = (16_000 - chunk.len()).min(clip.len() - position);
            chunk.extend_from_slice(&clip[position..position + take]);
            position = (position + take) % clip.len();
        }
        speech.push(&chunk);
        let out = speech.take_frames(&registry, usize::MAX).expect("chunk");
        frames += out.len();
        jaw_max = out.iter().map(|f| f[JAW_OPEN]).fold(jaw_max, f32::max);
        let held = speech.held();
        most_held = (most_held.0.max(held.0), most_held.1.max(held.1));
    }
    speech.finish();
    frames += speech
        .take_frames(&registry, usize::MAX)
        .expect("tail")
        .len();
    println!(
        "1 h in 1 s chunks: {frames} frames, at most {} log-mel rows and {} samples held, jawOpen up to {jaw_max:.2}",
        most_held.0, most_held.1
    );
    assert_eq!(frames, seconds * 25);
    // The history of the running statistics (152 rows) plus one chunk of rows, and less than one mel window.
    assert!(most_held.0 <= 152 + 100 + 16, "{most_held:?}");
    assert!(most_held.1 < 400, "{most_held:?}");
    assert!(jaw_max > 0.2, "the speech never opened the jaw");
}

#[test]
fn bad_samples_silence_and_empty_input_are_handled() {
    let registry = registry();
    let clip = clip_16k("hello.wav");
    let reference = speech_to_weights(&registry, &clip).expect("clip");

    // NaN and infinities count as silence.
    let mut broken = clip.clone();
    let mut zeroed = clip.clone();
    for i in (0..clip.len()).step_by(97) {
        broken[i] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][i % 3];
        zeroed[i] = 0.0;
    }
    let repaired = speech_to_weights(&registry, &broken).expect("NaN/Inf");
    let diff = max_diff(
        &repaired,
        &speech_to_weights(&registry, &zeroed).expect("zeroed"),
    );
    assert!(diff <= SAME, "NaN/Inf vs zeros: {diff}");
    assert!(repaired.iter().flatten().all(|w| w.is_finite()));

    // Hard clipping: 20 dB too loud still moves the jaw like the clean clip (level-invariant front end).
    let loud: Vec<f32> = clip.iter().map(|s| (s * 10.0).clamp(-1.0, 1.0)).collect();
    let clipped = speech_to_weights(&registry, &loud).expect("clipped");
    let jaw = |frames: &Frames| frames.iter().map(|f| f[JAW_OPEN]).collect::<Vec<_>>();
    let r = correlation(&jaw(&clipped), &jaw(&reference));
    println!("hard-clipped (+20 dB) vs clean: jawOpen correlation {r:.3}");
    assert!(r > 0.8, "clipped speech: jawOpen correlation {r}");
    // Out-of-range samples are clipped to ±1 on the way in.
    let overrange: Vec<f32> = clip.iter().map(|s| s * 10.0).collect();
    let diff = max_diff(
        &speech_to_weights(&registry, &overrange).expect("over range"),
        &clipped,
    );
    assert!(diff <= SAME, "over-range vs clipped: {diff}");

    // Silence and faint noise leave the face at rest.
    for (what, samples) in [
        ("digital silence", vec![0.0; 48_000]),
        (
            "-70 dBFS noise",
            (0..48_000)
                .map(|i| 3e-4 * (((i * 7919) % 1000) as f32 / 500.0 - 1.0))
                .collect(),
        ),
    ] {
        let frames = speech_to_weights(&registry, &samples).expect(what);
        assert_eq!(frames.len(), 75);
        let loudest = frames.iter().flatten().copied().fold(0.0, f32::max);
        assert!(loudest < 0.02, "{what} moves the face: {loudest}");
    }

    // Empty and tiny inputs.
    assert!(speech_to_weights(&registry, &[]).expect("empty").is_empty());
    assert_eq!(
        speech_to_weights(&registry, &[0.2; 3])
            .expect("3 samples")
            .len(),
        1
    );
    let mut speech = SpeechToMotion::new();
    speech.finish();
    speech.finish();
    speech.push(&[0.5; 100]);
    assert_eq!(
        speech.total_frames(),
        Some(0),
        "pushes after finish are ignored"
    );
    assert!(
        speech
            .take_frames(&registry, 10)
            .expect("nothing")
            .is_empty()
    );
}

#[test]
fn every_rate_from_8_to_96_khz_gives_the_same_motion() {
    let registry = registry();
    let clip = clip_16k("hello.wav");
    let reference = speech_to_weights(&registry, &clip).expect("16 kHz");
    let jaw = |frames: &Frames| frames.iter().map(|f| f[JAW_OPEN]).collect::<Vec<_>>();
    for rate in [8_000, 11_025, 22_050, 32_000, 44_100, 48_000, 96_000] {
        // The clip at `rate` by linear interpolation (a band-limited test signal is not needed: the resampler's
        // low-pass and the models see the same speech either way), then back through the plugin's resampler.
        let len = (clip.len() as f64 * f64::from(rate) / 16_000.0).round() as usize;
        let at_rate: Vec<f32> = (0..len)
            .map(|i| {
                let x = i as f64 * 16_000.0 / f64::from(rate);
                let j = (x.floor() as usize).min(clip.len() - 1);
                let k = (j + 1).min(clip.len() - 1);
                let t = (x - j as f64) as f32;
                clip[j] * (1.0 - t) + clip[k] * t
            })
            .collect();
        let back = resample_to_16k(&at_rate, rate).expect("resample");
        // Lengths round twice (16 kHz -> rate -> 16 kHz): within one sample.
        assert!(
            back.len().abs_diff(clip.len()) <= 1,
            "{rate} Hz: {}",
            back.len()
        );
        let frames = speech_to_weights(&registry, &back).expect("weights");
        assert_eq!(frames.len(), reference.len());
        let r = correlation(&jaw(&frames), &jaw(&reference));
        println!("{rate} Hz: jawOpen correlation with the 16 kHz clip {r:.3}");
        assert!(r > 0.8, "{rate} Hz: jawOpen correlation {r}");
    }
}

#[test]
fn five_point_one_files_are_a_clear_error_and_streams_mix_any_channel_count() {
    // A 6-channel 16-bit WAV: the file decoder (kira, as bevy_kira_audio plays it) takes mono and stereo only.
    let frames = 16_000;
    let mut wav = Vec::new();
    let data_len = frames * 6 * 2;
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&6u16.to_le_bytes()); // channels
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&(16_000u32 * 12).to_le_bytes());
    wav.extend_from_slice(&12u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data_len as u32).to_le_bytes());
    for i in 0..frames * 6 {
        let value = ((i as f32 * 0.01).sin() * 8000.0) as i16;
        wav.extend_from_slice(&value.to_le_bytes());
    }
    let error = decode_bytes(&wav).expect_err("5.1 is not decoded");
    let message = error.to_string();
    println!("5.1 WAV: {message}");
    assert!(matches!(error, AudioError::Decode { .. }), "{error:?}");
    assert!(message.contains("more than 2 channels"), "{message}");

    // Streams take any channel count: 5.1 is averaged to mono.
    let mut stream = SpeechStream::new();
    let interleaved: Vec<f32> = (0..4800 * 6)
        .map(|i| if i % 6 == 0 { 0.6 } else { 0.0 })
        .collect();
    stream.push(&interleaved, 6, 48_000).expect("5.1 push");
    stream.finish().expect("finish");
    let received = stream.received_16k();
    assert_eq!(received.len(), 1600);
    let middle = received[800];
    assert!((middle - 0.1).abs() < 1e-3, "5.1 mixdown: {middle}");
}

fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    let mean = |x: &[f32]| x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x) - ma, f64::from(y) - mb);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt().max(1e-12)
}

/// The `coefficients` example: JSON and CSV tracks with ARKit names that hold the offline frames; bad arguments
/// and missing files are errors with a message.
#[test]
fn coefficients_cli_writes_json_and_csv_tracks() {
    use std::process::Command;
    let cli = common::example_binary("coefficients");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("coefficients");
    let _ = std::fs::remove_dir_all(&out);
    let run = |args: &[&str]| {
        Command::new(&cli)
            .current_dir(root)
            .args(args)
            .output()
            .expect("run coefficients")
    };
    let offline = speech_to_weights(&registry(), &clip_16k("hello.wav")).expect("offline");

    let json_path = out.join("hello.json");
    let done = run(&[
        "assets/speech/hello.wav",
        "--out",
        json_path.to_str().expect("path"),
    ]);
    println!("{}", String::from_utf8_lossy(&done.stdout));
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("JSON written"))
            .expect("valid JSON");
    assert_eq!(json["frame_rate_hz"], 25);
    assert_eq!(json["names"][17], "jawOpen");
    assert_eq!(json["names"].as_array().map(Vec::len), Some(52));
    let frames = json["frames"].as_array().expect("frames");
    assert_eq!(frames.len(), offline.len());
    for (i, (frame, expected)) in frames.iter().zip(&offline).enumerate() {
        assert!((frame["time"].as_f64().expect("time") - i as f64 / 25.0).abs() < 1e-9);
        let weights = frame["weights"].as_array().expect("weights");
        assert_eq!(weights.len(), 52);
        for (w, e) in weights.iter().zip(expected) {
            assert!((w.as_f64().expect("number") - f64::from(*e)).abs() < 1e-6);
        }
    }

    let csv_path = out.join("hello.csv");
    let done = run(&[
        "assets/speech/hello.wav",
        "--out",
        csv_path.to_str().expect("path"),
    ]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let csv = std::fs::read_to_string(&csv_path).expect("CSV written");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    assert_eq!(header.len(), 1 + 52 + 6);
    assert_eq!((header[0], header[18]), ("time", "jawOpen"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().expect("number")).collect())
        .collect();
    assert_eq!(rows.len(), offline.len());
    let jaw_error = rows
        .iter()
        .zip(&offline)
        .map(|(row, e)| (row[18] - f64::from(e[JAW_OPEN])).abs())
        .fold(0.0, f64::max);
    assert!(jaw_error < 1e-5, "CSV jawOpen off by {jaw_error}");

    for (args, expect) in [
        (
            vec!["assets/speech/no_such.wav", "--out", "x.json"],
            "no_such.wav",
        ),
        (
            vec!["assets/speech/hello.wav", "--out", "x.txt"],
            ".json or .csv",
        ),
        (vec!["assets/speech/hello.wav"], "--out"),
        (
            vec!["assets/speech/README.md", "--out", "x.csv"],
            "could not decode",
        ),
    ] {
        let failed = run(&args);
        let message = String::from_utf8_lossy(&failed.stderr);
        assert_eq!(failed.status.code(), Some(2), "{args:?}: {message}");
        assert!(message.contains(expect), "{args:?}: {message}");
    }
}
