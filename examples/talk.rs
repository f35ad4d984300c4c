//! `talk`: portrait + speech + emotion → a talking-head video (PNG frames, and an MP4 with the audio when ffmpeg is
//! installed), rendered headless.
//!
//! ```sh
//! cargo run --release --example talk -- --portrait assets/portraits/astronaut.png --audio assets/speech/hello.wav \
//!     --emotion happy --yaw 20 --size 512 --out out/talk.mp4
//! ```
//!
//! It checks its inputs and the models first, and stops with a clear message when something is missing: it never
//! renders motion that no model produced.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bevy_talking_head::Emotion;
use bevy_talking_head::audio::decode_file;
use bevy_talking_head::contract::models;
use bevy_talking_head::inference::{Manifest, default_manifest_path};

const USAGE: &str = "\
usage: talk [--portrait IMAGE] [--audio CLIP] [--emotion NAME] [--intensity 0..1]
            [--yaw DEG] [--pitch DEG] [--camera-path orbit:FROM_DEG:TO_DEG] [--size PIXELS] [--out PATH]

  --portrait     portrait image (PNG/JPEG)           default assets/portraits/astronaut.png
  --audio        speech clip (WAV, OGG, FLAC, MP3)    default assets/speech/hello.wav
  --emotion      neutral, angry, contempt, disgusted, fear, happy, sad, surprised (default neutral)
  --intensity    emotion strength 0..1                default 1
  --yaw, --pitch fixed camera direction in degrees    default 0, 0
  --camera-path  orbit:FROM:TO sweeps the yaw from FROM to TO degrees over the clip
  --size         output width and height in pixels    default 512
  --out          out.mp4 (needs ffmpeg) or a folder for PNG frames (default out/talk.mp4)";

/// How the camera moves over the clip.
#[derive(Debug, PartialEq)]
enum CameraPath {
    Fixed {
        yaw_deg: f32,
        pitch_deg: f32,
    },
    Orbit {
        from_deg: f32,
        to_deg: f32,
        pitch_deg: f32,
    },
}

#[derive(Debug)]
struct Options {
    portrait: PathBuf,
    audio: PathBuf,
    emotion: Emotion,
    intensity: f32,
    camera: CameraPath,
    size: u32,
    out: PathBuf,
}

fn parse_number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} expects a number, got '{value}'"))
}

fn parse_options(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        portrait: PathBuf::from("assets/portraits/astronaut.png"),
        audio: PathBuf::from("assets/speech/hello.wav"),
        emotion: Emotion::Neutral,
        intensity: 1.0,
        camera: CameraPath::Fixed {
            yaw_deg: 0.0,
            pitch_deg: 0.0,
        },
        size: 512,
        out: PathBuf::from("out/talk.mp4"),
    };
    let (mut yaw, mut pitch, mut orbit) = (0.0f32, 0.0f32, None);
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_string());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        match flag.as_str() {
            "--portrait" => options.portrait = PathBuf::from(value),
            "--audio" => options.audio = PathBuf::from(value),
            "--emotion" => options.emotion = value.parse()?,
            "--intensity" => {
                let intensity: f32 = parse_number(&flag, &value)?;
                if !(0.0..=1.0).contains(&intensity) {
                    return Err(format!("--intensity must be within 0..1, got {intensity}"));
                }
                options.intensity = intensity;
            }
            "--yaw" => yaw = parse_number(&flag, &value)?,
            "--pitch" => pitch = parse_number(&flag, &value)?,
            "--camera-path" => {
                let parts: Vec<_> = value.split(':').collect();
                let ["orbit", from, to] = parts.as_slice() else {
                    return Err(format!(
                        "--camera-path expects orbit:FROM_DEG:TO_DEG, got '{value}'"
                    ));
                };
                orbit = Some((parse_number(&flag, from)?, parse_number(&flag, to)?));
            }
            "--size" => {
                let size: u32 = parse_number(&flag, &value)?;
                if !(16..=4096).contains(&size) {
                    return Err(format!("--size must be within 16..4096 pixels, got {size}"));
                }
                options.size = size;
            }
            "--out" => options.out = PathBuf::from(value),
            _ => return Err(format!("unknown option {flag}\n\n{USAGE}")),
        }
    }
    options.camera = match orbit {
        Some((from_deg, to_deg)) => CameraPath::Orbit {
            from_deg,
            to_deg,
            pitch_deg: pitch,
        },
        None => CameraPath::Fixed {
            yaw_deg: yaw,
            pitch_deg: pitch,
        },
    };
    Ok(options)
}

/// The models `talk` needs that the manifest does not list.
fn missing_models(manifest: &Path) -> Result<Vec<&'static str>, String> {
    let manifest = Manifest::from_file(manifest).map_err(|e| e.to_string())?;
    Ok(models::SPEECH_TO_MOTION
        .into_iter()
        .chain(models::PORTRAIT_TO_HEAD)
        .filter(|name| !manifest.models.contains_key(*name))
        .collect())
}

fn check_inputs(options: &Options) -> Result<(), String> {
    let portrait = image::open(&options.portrait).map_err(|e| {
        format!(
            "cannot read the portrait {}: {e}",
            options.portrait.display()
        )
    })?;
    let pcm = decode_file(&options.audio).map_err(|e| {
        format!(
            "cannot read the speech clip {}: {e}",
            options.audio.display()
        )
    })?;
    println!(
        "talk: portrait {} ({}x{}), speech {} ({:.2} s at {} Hz), emotion {} at {:.2}, camera {:?}, {}² -> {}",
        options.portrait.display(),
        portrait.width(),
        portrait.height(),
        options.audio.display(),
        pcm.duration_secs(),
        pcm.sample_rate_hz,
        options.emotion.name(),
        options.intensity,
        options.camera,
        options.size,
        options.out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let manifest = default_manifest_path();
    match missing_models(&manifest) {
        Ok(missing) if missing.is_empty() => {}
        Ok(missing) => {
            eprintln!(
                "talk: cannot make a video yet: the model manifest {} lacks {}. Speech -> motion needs {}; portrait \
                 -> head needs {}. These models are built by the scripts in tools/ (see the open issues); no \
                 video is written without them.",
                manifest.display(),
                missing.join(", "),
                models::SPEECH_TO_MOTION.join(", "),
                models::PORTRAIT_TO_HEAD.join(", ")
            );
            return ExitCode::from(3);
        }
        Err(message) => {
            eprintln!("talk: {message}");
            return ExitCode::from(3);
        }
    }
    if let Err(message) = check_inputs(&options) {
        eprintln!("talk: {message}");
        return ExitCode::from(2);
    }
    // Reached only once every model is in the manifest; rendering arrives with the models (issue: the product).
    eprintln!("talk: all models are listed, but video rendering is not built yet");
    ExitCode::from(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_options(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_flags() {
        let o = parse(&[]).expect("defaults");
        assert_eq!(o.size, 512);
        assert_eq!(o.emotion, Emotion::Neutral);
        let o = parse(&[
            "--emotion",
            "Happy",
            "--camera-path",
            "orbit:-30:45",
            "--pitch",
            "5",
        ])
        .expect("flags");
        assert_eq!(o.emotion, Emotion::Happy);
        assert_eq!(
            o.camera,
            CameraPath::Orbit {
                from_deg: -30.0,
                to_deg: 45.0,
                pitch_deg: 5.0
            }
        );
    }

    #[test]
    fn bad_flags_are_explained() {
        assert!(
            parse(&["--emotion", "bored"])
                .unwrap_err()
                .contains("unknown emotion")
        );
        assert!(
            parse(&["--size", "big"])
                .unwrap_err()
                .contains("expects a number")
        );
        assert!(parse(&["--intensity", "2"]).unwrap_err().contains("0..1"));
        assert!(
            parse(&["--camera-path", "spin"])
                .unwrap_err()
                .contains("orbit:FROM_DEG:TO_DEG")
        );
        assert!(parse(&["--yaw"]).unwrap_err().contains("needs a value"));
        assert!(
            parse(&["--frobnicate", "1"])
                .unwrap_err()
                .contains("unknown option")
        );
    }

    #[test]
    fn missing_models_are_named() {
        let dir = std::env::temp_dir().join(format!("talk_manifest_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("manifest.ron");
        std::fs::write(&path, "(motion_code_size: 8, models: {})").expect("write manifest");
        let missing = missing_models(&path).expect("manifest parses");
        assert_eq!(missing.len(), 5, "{missing:?}");
        assert!(
            missing.contains(&models::AUDIO_ENCODER) && missing.contains(&models::FACE_LANDMARKS)
        );
        std::fs::write(&path, "(motion_code_size: oops").expect("write manifest");
        assert!(missing_models(&path).is_err());
    }
}
