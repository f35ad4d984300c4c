//! Decoding the shipped speech clips, resampling them to 16 kHz, and streaming live audio.

mod common;

use std::path::PathBuf;

use bevy_talking_head::audio::{
    AudioError, Pcm, SpeechStream, decode_bytes, decode_file, expected_output_len, resample_to_16k,
};
use bevy_talking_head::contract::SAMPLE_RATE_HZ;
use common::Lcg;

fn speech(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets/speech")
        .join(name)
}

fn decode(name: &str) -> Pcm {
    match decode_file(speech(name)) {
        Ok(pcm) => pcm,
        Err(error) => panic!("{name}: {error}"),
    }
}

fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let dot = |x: &[f32], y: &[f32]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| f64::from(*p) * f64::from(*q))
            .sum::<f64>()
    };
    dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
}

#[test]
fn all_formats_decode_to_the_same_speech() {
    let reference = decode("hello.wav");
    assert_eq!(reference.sample_rate_hz, 22_050);
    assert!(
        (1.8..2.5).contains(&reference.duration_secs()),
        "{} s",
        reference.duration_secs()
    );
    assert!(reference.rms() > 0.01, "the clip should not be silent");
    for name in ["hello.ogg", "hello.flac", "hello.mp3"] {
        let pcm = decode(name);
        assert_eq!(pcm.sample_rate_hz, 22_050, "{name}");
        let drift_ms = (pcm.duration_secs() - reference.duration_secs()).abs() * 1000.0;
        assert!(
            drift_ms < 30.0,
            "{name}: duration differs from hello.wav by {drift_ms:.1} ms"
        );
        let rms_ratio = pcm.rms() / reference.rms();
        assert!(
            (0.9..1.1).contains(&rms_ratio),
            "{name}: rms ratio {rms_ratio}"
        );
        assert!(
            pcm.samples.iter().all(|s| (-1.0..=1.0).contains(s)),
            "{name}"
        );
        let at_16k = pcm.to_16k().expect("supported rate");
        assert_eq!(at_16k.sample_rate_hz, SAMPLE_RATE_HZ);
        assert_eq!(
            at_16k.samples.len() as u64,
            expected_output_len(pcm.samples.len() as u64, 22_050)
        );
    }
    // FLAC is lossless: identical samples.
    assert_eq!(decode("hello.flac").samples, reference.samples);
}

#[test]
fn decode_bytes_matches_decode_file() {
    let bytes = std::fs::read(speech("hello.ogg")).expect("shipped clip");
    assert_eq!(
        decode_bytes(&bytes).expect("valid ogg"),
        decode("hello.ogg")
    );
}

#[test]
fn stereo_44k_mixes_down_and_resamples() {
    let stereo = decode("hello_stereo_44k.wav");
    assert_eq!(stereo.sample_rate_hz, 44_100);
    assert_eq!(stereo.samples.len(), 22_050, "0.5 s at 44.1 kHz");
    let at_16k = stereo.to_16k().expect("supported rate");
    assert_eq!(at_16k.samples.len(), 8_000);

    // Left is the speech, right the speech at half amplitude: the mixdown is 0.75 x the mono clip.
    let mono = decode("hello.wav").to_16k().expect("supported rate");
    let mono = &mono.samples[..8_000];
    let corr = correlation(&at_16k.samples, mono);
    assert!(corr > 0.98, "correlation with the mono clip {corr}");
    let gain = at_16k.samples.iter().map(|s| s * s).sum::<f32>().sqrt()
        / mono.iter().map(|s| s * s).sum::<f32>().sqrt();
    assert!((gain - 0.75).abs() < 0.03, "mixdown gain {gain}");
}

#[test]
fn damaged_and_foreign_files_are_errors() {
    let wav = std::fs::read(speech("hello.wav")).expect("shipped clip");
    let ogg = std::fs::read(speech("hello.ogg")).expect("shipped clip");
    let flac = std::fs::read(speech("hello.flac")).expect("shipped clip");
    for (what, bytes) in [
        ("wav header only", &wav[..44]),
        ("wav cut inside the header", &wav[..20]),
        ("ogg cut inside the first page", &ogg[..60]),
        ("flac cut inside the stream info", &flac[..30]),
        ("empty", &[][..]),
        (
            "text",
            &b"Hello, I am a talking head. This is not audio at all."[..],
        ),
    ] {
        match decode_bytes(bytes) {
            Err(AudioError::Decode { .. } | AudioError::Empty { .. }) => {}
            other => panic!("{what}: expected a decode error, got {other:?}"),
        }
    }

    // Damage in the middle of a stream: an error, or (if the codec resyncs) clean samples; never a panic.
    for (name, bytes) in [
        ("hello.ogg", &ogg),
        ("hello.flac", &flac),
        ("hello.wav", &wav),
    ] {
        let mut damaged = bytes.clone();
        let middle = damaged.len() / 2;
        let end = (middle + 2_000).min(damaged.len());
        let mut noise = Lcg(7);
        for byte in &mut damaged[middle..end] {
            *byte = noise.below(256) as u8;
        }
        if let Ok(pcm) = decode_bytes(&damaged) {
            assert!(
                pcm.samples.iter().all(|s| (-1.0..=1.0).contains(s)),
                "{name}"
            );
        }
        // Truncated in the middle.
        if let Ok(pcm) = decode_bytes(&bytes[..bytes.len() / 2]) {
            assert!(
                pcm.samples.iter().all(|s| (-1.0..=1.0).contains(s)),
                "{name}"
            );
        }
    }

    let readme = decode_file(speech("README.md"));
    assert!(
        matches!(readme, Err(AudioError::Decode { .. })),
        "{readme:?}"
    );
    let missing = decode_file(speech("no_such_clip.ogg"));
    assert!(matches!(missing, Err(AudioError::Io { .. })), "{missing:?}");
    let message = missing.map(|_| ()).unwrap_err().to_string();
    assert!(message.contains("no_such_clip.ogg"), "{message}");
}

#[test]
fn streaming_in_random_chunks_equals_resampling_at_once() {
    let clip = decode("hello.wav");
    let whole = clip.to_16k().expect("supported rate").samples;
    let mut rng = Lcg(42);

    // Mono, chunks of 1 to 2000 frames.
    let mut stream = SpeechStream::new();
    let mut rest = &clip.samples[..];
    while !rest.is_empty() {
        let take = (1 + rng.below(2_000)).min(rest.len());
        stream
            .push(&rest[..take], 1, clip.sample_rate_hz)
            .expect("valid push");
        rest = &rest[take..];
    }
    assert!(!stream.is_finished());
    assert!(
        stream.received_16k().len() < whole.len(),
        "the resampler holds the tail back until finish"
    );
    stream.finish().expect("finish");
    assert!(stream.is_finished());
    assert!((stream.duration_secs() - clip.duration_secs()).abs() < 1e-9);
    assert_eq!(stream.received_16k().len(), whole.len());
    let worst = stream
        .received_16k()
        .iter()
        .zip(&whole)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst <= 1e-4, "largest difference {worst}");

    // The same audio as interleaved stereo (both channels equal), consumed while it arrives.
    let interleaved: Vec<f32> = clip.samples.iter().flat_map(|&s| [s, s]).collect();
    let mut stream = SpeechStream::new();
    let mut collected = Vec::new();
    let mut rest = &interleaved[..];
    while !rest.is_empty() {
        let take = 2 * (1 + rng.below(700)).min(rest.len() / 2);
        stream
            .push(&rest[..take], 2, clip.sample_rate_hz)
            .expect("valid push");
        rest = &rest[take..];
        let ready = stream.received_16k().len();
        collected.extend_from_slice(stream.received_16k());
        stream.consume_16k(ready);
    }
    stream.finish().expect("finish");
    collected.extend_from_slice(stream.received_16k());
    assert_eq!(
        stream.consumed_16k() + stream.received_16k().len() as u64,
        whole.len() as u64
    );
    assert_eq!(collected.len(), whole.len());
    let worst = collected
        .iter()
        .zip(&whole)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst <= 1e-4, "largest difference {worst}");
}

#[test]
fn bad_push_arguments_are_errors() {
    let mut stream = SpeechStream::new();
    assert!(matches!(
        stream.push(&[0.0; 4], 0, 22_050),
        Err(AudioError::NoChannels)
    ));
    assert!(matches!(
        stream.push(&[0.0; 4], 1, 0),
        Err(AudioError::UnsupportedSampleRate(0))
    ));
    assert!(matches!(
        stream.push(&[0.0; 4], 1, 384_001),
        Err(AudioError::UnsupportedSampleRate(384_001))
    ));
    assert!(matches!(
        stream.push(&[0.0; 3], 2, 22_050),
        Err(AudioError::PartialFrame {
            samples: 3,
            channels: 2
        })
    ));
    assert_eq!(stream.duration_secs(), 0.0);
    assert!(stream.received_16k().is_empty());
    stream.push(&[], 2, 22_050).expect("an empty push is fine");
    stream.push(&[0.0; 6], 3, 384_000).expect("valid push");
    stream.finish().expect("finish");
    assert!(matches!(
        stream.push(&[0.0; 2], 1, 16_000),
        Err(AudioError::StreamFinished)
    ));
    for error in [
        AudioError::NoChannels,
        AudioError::UnsupportedSampleRate(0),
        AudioError::StreamFinished,
    ] {
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn whole_buffer_resampling_rejects_bad_rates() {
    assert!(matches!(
        resample_to_16k(&[0.0; 10], 0),
        Err(AudioError::UnsupportedSampleRate(0))
    ));
    let pcm = Pcm {
        samples: vec![0.0; 10],
        sample_rate_hz: 999_999,
    };
    assert!(matches!(
        pcm.to_16k(),
        Err(AudioError::UnsupportedSampleRate(999_999))
    ));
}
