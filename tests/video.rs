//! Rendered frames become PNG files and, with the speech, an MP4 of the right length.

mod common;

use std::process::Command;

use bevy::prelude::*;
use bevy_talking_head::identity::procedural::{JAW_OPEN, procedural_head};
use bevy_talking_head::offline::{CapturedFrame, VideoWriter};
use bevy_talking_head::prelude::*;
use common::{fresh_frame, headless_app, orbit_settings, spawn_captured_head};

/// Asserts that the media file has a video and an audio stream, each lasting `expected_secs` within `tolerance_secs`.
fn assert_streams_last(path: &std::path::Path, expected_secs: f64, tolerance_secs: f64) {
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&probe.stdout);
    println!("expected {expected_secs:.3} s; ffprobe: {text}");
    assert!(text.contains("video") && text.contains("audio"), "{text}");
    for line in text.lines() {
        let duration: f64 = line
            .split(',')
            .nth(1)
            .and_then(|d| d.trim().parse().ok())
            .expect("a duration");
        assert!(
            (duration - expected_secs).abs() <= tolerance_secs,
            "stream lasts {duration} s, expected {expected_secs} s in {text}"
        );
    }
}

/// Runs the `talk` example from the repository root with `args`; asserts that it succeeded and returns its stdout.
fn run_talk<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = Command::new(common::example_binary("talk"))
        .current_dir(root)
        .env("CARGO_MANIFEST_DIR", root)
        .args(args)
        .output()
        .expect("run talk");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    println!("{stdout}");
    assert!(
        run.status.success(),
        "talk failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}

/// The values of column `name` of a coefficient CSV written by `talk --coefficients-out`, one per frame.
fn csv_column(csv: &str, name: &str) -> Vec<f64> {
    let column = csv
        .lines()
        .next()
        .and_then(|header| header.split(',').position(|n| n == name))
        .unwrap_or_else(|| panic!("a {name} column"));
    csv.lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(column)
                .expect("a value")
                .parse()
                .expect("number")
        })
        .collect()
}

#[test]
fn frames_become_pngs_and_an_mp4_with_audio() {
    let mut app = headless_app();
    let (head, capture) = spawn_captured_head(
        &mut app,
        procedural_head(48, 24),
        orbit_settings(64, 11.0, 0.0),
    );

    let folder = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("video_frames");
    let _ = std::fs::remove_dir_all(&folder);
    let mut writer = VideoWriter::new(&folder, 25).expect("writer");
    for i in 0..12 {
        let mut code = vec![0.0; 3];
        code[JAW_OPEN] = (i as f32 / 11.0 * std::f32::consts::PI).sin();
        app.world_mut().entity_mut(head).insert(MotionCode(code));
        let frame = fresh_frame(&mut app, &capture, 3);
        writer.push(&frame).expect("write frame");
    }
    assert_eq!(writer.frames(), 12);
    let first = image::open(folder.join("frame_00000.png"))
        .expect("a PNG")
        .to_rgba8();
    assert_eq!(first.dimensions(), (64, 64));
    assert!(
        first.pixels().any(|p| p[3] == 255),
        "the frame has no opaque pixel"
    );

    // A frame of another size is refused, not written.
    let wrong = CapturedFrame {
        width: 8,
        height: 8,
        linear: vec![0.0; 8 * 8 * 4],
        sequence: 1,
    };
    assert!(writer.push(&wrong).is_err());

    let out = folder.join("talk.mp4");
    let audio = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/speech/hello.wav");
    writer
        .finish_mp4(&audio, &out, [30, 42, 58])
        .expect("mux the MP4");
    assert_streams_last(&out, 12.0 / 25.0, 0.05);
}

/// The `talk` example end to end on a short clip: an MP4 whose video and audio last as long as the clip.
#[test]
fn talk_makes_a_video_as_long_as_its_clip() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("talk_short.mp4");
    let track = out.with_extension("csv");
    let _ = std::fs::remove_file(&out);
    run_talk(&[
        "--audio".as_ref(),
        "assets/speech/hello_stereo_44k.wav".as_ref(),
        "--size".as_ref(),
        "64".as_ref(),
        "--display".as_ref(),
        "head".as_ref(),
        "--yaw".as_ref(),
        "20".as_ref(),
        "--emotion".as_ref(),
        "happy".as_ref(),
        "--coefficients-out".as_ref(),
        track.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let clip =
        bevy_talking_head::audio::decode_file(root.join("assets/speech/hello_stereo_44k.wav"))
            .expect("clip")
            .duration_secs();
    assert_streams_last(&out, clip, 0.04 + 1e-6);
    // One row of coefficients per video frame, with the happy emotion's smile in it.
    let csv = std::fs::read_to_string(&track).expect("coefficients written");
    let smiles = csv_column(&csv, "mouthSmileLeft");
    assert_eq!(smiles.len(), (clip * 25.0).ceil() as usize);
    let smile = smiles.iter().copied().fold(0.0, f64::max);
    assert!(
        smile > 0.5,
        "happy, but mouthSmileLeft reached only {smile}"
    );

    // Words instead of a clip: spoken with espeak-ng, and the video lasts as long as the speech. The whole photo
    // talks (the default), at its aspect, over a replaced background.
    let spoken = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("talk_text.mp4");
    run_talk(&[
        "--text".as_ref(),
        "Hi.".as_ref(),
        "--portrait".as_ref(),
        "assets/portraits/grace_hopper.jpg".as_ref(),
        "--background".as_ref(),
        "#00ff00".as_ref(),
        "--size".as_ref(),
        "60".as_ref(),
        "--out".as_ref(),
        spoken.as_os_str(),
    ]);
    let first = image::open(spoken.with_extension("frames").join("frame_00000.png"))
        .expect("a frame")
        .to_rgba8();
    // 512×600 → 52×60 (even sides); the top right corner is the new background, the middle is her face.
    assert_eq!(first.dimensions(), (52, 60));
    let corner = first.get_pixel(50, 1).0;
    assert!(
        corner[1] > 200 && corner[0] < 60 && corner[2] < 60,
        "{corner:?}"
    );
    assert!(first.pixels().all(|p| p[3] == 255));
    let speech = bevy_talking_head::audio::decode_file(spoken.with_extension("speech.wav"))
        .expect("the synthesized speech")
        .duration_secs();
    assert_streams_last(&spoken, speech, 0.04 + 1e-6);
}

/// `talk --emotion-timeline`: the smile of a change to happy blends in over the entry's blend time from the frame
/// the change starts (video time, however many updates a frame takes); a bad timeline stops talk with exit code 2.
#[test]
fn talk_follows_an_emotion_timeline() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let timeline = tmp.join("talk_timeline.ron");
    // Frame 5 starts at 0.2 s; a 0.12 s blend is a third done there, two thirds in frame 6, complete in frame 7.
    std::fs::write(
        &timeline,
        "[(at_secs: 0, emotion: \"neutral\"), (at_secs: 0.2, emotion: \"happy\", blend_secs: 0.12)]",
    )
    .expect("write the timeline");
    let out = tmp.join("talk_timeline_frames");
    let track = tmp.join("talk_timeline.csv");
    let _ = std::fs::remove_dir_all(&out);
    run_talk(&[
        "--audio".as_ref(),
        "assets/speech/hello_stereo_44k.wav".as_ref(),
        "--size".as_ref(),
        "48".as_ref(),
        "--emotion-timeline".as_ref(),
        timeline.as_os_str(),
        "--coefficients-out".as_ref(),
        track.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let csv = std::fs::read_to_string(&track).expect("coefficients written");
    let smile = csv_column(&csv, "mouthSmileLeft");
    println!("mouthSmileLeft per frame: {smile:.3?}");
    assert!(smile.len() >= 10, "{smile:?}");
    let neutral = smile[..5].iter().copied().fold(0.0, f64::max);
    let happy = smile[7..].iter().copied().fold(f64::MAX, f64::min);
    assert!(
        happy > neutral + 0.4,
        "no smile after the change: {smile:?}"
    );
    let blended = |frame: usize| (smile[frame] - neutral) / (happy - neutral);
    assert!(
        (0.1..0.6).contains(&blended(5)) && (0.4..0.95).contains(&blended(6)),
        "the change should be a third blended in frame 5 and two thirds in frame 6: {smile:?}"
    );

    // A bad entry stops talk before anything is rendered, naming the file and the entry.
    std::fs::write(
        &timeline,
        "[(at_secs: 0, emotion: \"happy\"), (at_secs: 1, emotion: \"bored\")]",
    )
    .expect("write the timeline");
    let run = Command::new(common::example_binary("talk"))
        .current_dir(root)
        .arg("--emotion-timeline")
        .arg(&timeline)
        .output()
        .expect("run talk");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("talk_timeline.ron, entry 2") && stderr.contains("unknown emotion 'bored'"),
        "{stderr}"
    );
}
