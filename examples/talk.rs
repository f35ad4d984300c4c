//! `talk`: portrait + speech + emotion → a talking-head video (PNG frames, and an MP4 with the audio when ffmpeg is
//! installed), rendered headless.
//!
//! ```sh
//! cargo run --release --example talk -- --portrait assets/portraits/astronaut.png --audio assets/speech/hello.wav \
//!     --emotion happy --yaw 20 --size 512 --out out/talk.mp4
//! ```
//!
//! `--emotion-timeline FILE` changes the emotion during the clip instead (a RON list of changes, see USAGE and
//! `assets/timelines/hello.ron`).
//!
//! It checks its inputs and the models first, and stops with a clear message when something is missing: it never
//! renders motion that no model produced.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::time::{Duration, Instant};

use bevy::asset::RenderAssetUsages;
use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use bevy_kira_audio::AudioSource;
use bevy_talking_head::audio::decode_file;
use bevy_talking_head::contract::{FRAME_RATE_HZ, models};
use bevy_talking_head::identity::Background;
use bevy_talking_head::identity::portrait_head::PortraitHead;
use bevy_talking_head::inference::{Manifest, default_manifest_path};
use bevy_talking_head::motion::track_file::{TrackFormat, write_track};
use bevy_talking_head::offline::{
    VideoWriter, capture_head, finish_headless_app, headless_plugins,
};
use bevy_talking_head::prelude::*;
use bevy_talking_head::{Emotion, MotionTrack, SpeechMotion};
use kira::sound::static_sound::StaticSoundData;
use serde::Deserialize;

const USAGE: &str = "\
usage: talk [--portrait IMAGE] [--audio CLIP | --text TEXT] [--emotion NAME] [--intensity 0..1]
            [--emotion-timeline FILE] [--display photo|head] [--background COLOR|IMAGE]
            [--yaw DEG] [--pitch DEG] [--camera-path orbit:FROM_DEG:TO_DEG]
            [--size PIXELS] [--out PATH] [--coefficients-out TRACK.json|TRACK.csv]

  --portrait     portrait image (PNG/JPEG)           default assets/portraits/astronaut.png
  --audio        speech clip (WAV, OGG, FLAC, MP3)    default assets/speech/hello.wav
  --text         words to speak instead, synthesized with espeak-ng (English) into a WAV next to --out
  --emotion      neutral, angry, contempt, disgusted, fear, happy, sad, surprised (default neutral, see below)
  --intensity    emotion strength 0..1                default 1
  --emotion-timeline  changes of emotion over the clip, instead of --emotion and --intensity: a RON list of
                 (at_secs: SECONDS, emotion: NAME, intensity: 0..1, blend_secs: SECONDS) entries in time order;
                 intensity defaults to 1, blend_secs (how long the change takes) to 0.6. The video starts with the
                 entry at 0 s (neutral until the first entry if none). With the default clip and no emotion
                 option: assets/timelines/hello.ron (neutral, then happy, then surprised)
  --display      photo: the whole photo talks, at its own framing (default); head: the head alone, turning
                 in front of the camera (--yaw, --pitch, --camera-path)
  --background   with --display photo, replaces what stands behind the person: a colour (#rrggbb, or
                 #rrggbbaa; #00000000 is transparent) or an image file, scaled to cover the photo
  --yaw, --pitch fixed camera direction in degrees    default 0, 0 (--display head)
  --camera-path  orbit:FROM:TO sweeps the yaw from FROM to TO degrees over the clip (--display head)
  --size         the video's long side in pixels      default: the photo's, at most 1024 (--display photo);
                 256 (--display head)
  --out          out.mp4 (needs ffmpeg) or a folder for PNG frames (default out/talk.mp4)
  --coefficients-out  the ARKit weights and head pose shown in each video frame, as JSON or CSV";

/// The emotion changes of the default clip, used when no emotion option and no other speech is given.
const DEFAULT_TIMELINE: &str = "assets/timelines/hello.ron";

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

/// What the video shows.
#[derive(Debug, PartialEq)]
enum Display {
    /// The whole photo talks.
    Photo { background: Option<String> },
    /// The head alone, from the camera path.
    Head,
}

#[derive(Debug)]
struct Options {
    portrait: PathBuf,
    audio: PathBuf,
    emotion: Emotion,
    intensity: f32,
    display: Display,
    camera: CameraPath,
    /// The long side; `None`: the default of the display.
    size: Option<u32>,
    out: PathBuf,
    text: Option<String>,
    coefficients_out: Option<PathBuf>,
    emotion_timeline: Option<PathBuf>,
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
        display: Display::Photo { background: None },
        camera: CameraPath::Fixed {
            yaw_deg: 0.0,
            pitch_deg: 0.0,
        },
        size: None,
        out: PathBuf::from("out/talk.mp4"),
        text: None,
        coefficients_out: None,
        emotion_timeline: None,
    };
    let (mut yaw, mut pitch, mut orbit) = (0.0f32, 0.0f32, None);
    let (mut display, mut background, mut camera_flag) = (None, None, None);
    let mut fixed_emotion = None;
    let mut own_speech = false;
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
            "--audio" => {
                options.audio = PathBuf::from(value);
                own_speech = true;
            }
            "--emotion" => {
                options.emotion = value.parse()?;
                fixed_emotion = Some(flag.clone());
            }
            "--emotion-timeline" => options.emotion_timeline = Some(PathBuf::from(value)),
            "--intensity" => {
                fixed_emotion = Some(flag.clone());
                let intensity: f32 = parse_number(&flag, &value)?;
                if !(0.0..=1.0).contains(&intensity) {
                    return Err(format!("--intensity must be within 0..1, got {intensity}"));
                }
                options.intensity = intensity;
            }
            "--display" => {
                display = Some(match value.as_str() {
                    "photo" => false,
                    "head" => true,
                    _ => return Err(format!("--display expects photo or head, got '{value}'")),
                })
            }
            "--background" => background = Some(value),
            "--yaw" => {
                yaw = parse_number(&flag, &value)?;
                camera_flag = Some(flag.clone());
            }
            "--pitch" => {
                pitch = parse_number(&flag, &value)?;
                camera_flag = Some(flag.clone());
            }
            "--camera-path" => {
                camera_flag = Some(flag.clone());
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
                options.size = Some(size);
            }
            "--out" => options.out = PathBuf::from(value),
            "--text" => {
                if value.trim().is_empty() {
                    return Err("--text needs words to speak".into());
                }
                options.text = Some(value);
                own_speech = true;
            }
            "--coefficients-out" => {
                let path = PathBuf::from(value);
                if TrackFormat::from_path(&path).is_none() {
                    return Err(format!(
                        "--coefficients-out {} must end in .json or .csv",
                        path.display()
                    ));
                }
                options.coefficients_out = Some(path);
            }
            _ => return Err(format!("unknown option {flag}\n\n{USAGE}")),
        }
    }
    if fixed_emotion.is_none() && options.emotion_timeline.is_none() && !own_speech {
        // The shipped clip comes with its shipped emotion changes.
        options.emotion_timeline = Some(PathBuf::from(DEFAULT_TIMELINE));
    }
    if let (Some(flag), Some(timeline)) = (fixed_emotion, &options.emotion_timeline) {
        return Err(format!(
            "{flag} and --emotion-timeline {} both set the emotion: give the emotion in the timeline, or drop the \
             timeline",
            timeline.display()
        ));
    }
    options.display = match (display, background) {
        (Some(true), Some(_)) => {
            return Err(
                "--background replaces the photo's background: it needs --display photo".into(),
            );
        }
        (Some(true), None) => Display::Head,
        (_, background) => Display::Photo { background },
    };
    if let (Display::Photo { .. }, Some(flag)) = (&options.display, camera_flag) {
        return Err(format!(
            "{flag} moves the camera around the head: it needs --display head (the photo keeps its own camera)"
        ));
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

/// One entry of an `--emotion-timeline` file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineEntry {
    at_secs: f64,
    emotion: String,
    #[serde(default = "full_intensity")]
    intensity: f32,
    #[serde(default)]
    blend_secs: Option<f32>,
}

fn full_intensity() -> f32 {
    1.0
}

/// A change of emotion at a time of the clip.
#[derive(Clone, Copy, Debug, PartialEq)]
struct EmotionChange {
    /// Seconds from the start of the clip.
    at_secs: f64,
    emotion: Emotion,
    /// Strength, 0..1.
    intensity: f32,
    /// Seconds the change takes to blend in; `None`: the head's [`MotionSettings::emotion_blend_secs`].
    blend_secs: Option<f32>,
}

impl EmotionChange {
    /// The first video frame that shows the change (the first frame starting at or after `at_secs`).
    fn first_frame(&self) -> u32 {
        // A hair of tolerance so that 0.52 s × 25 fps is frame 13, not 14.
        (self.at_secs * f64::from(FRAME_RATE_HZ) - 1e-6)
            .ceil()
            .max(0.0) as u32
    }
}

/// Reads an `--emotion-timeline` file (see [`parse_timeline`]).
fn read_timeline(file: &Path) -> Result<Vec<EmotionChange>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the emotion timeline {}: {e}", file.display()))?;
    parse_timeline(&text, file)
}

/// Parses and checks a timeline: a RON list of entries with times 0 or later in increasing order, known emotion
/// names, intensities within 0..1 and blend times 0 or more; errors name `file` and the entry (counted from 1).
fn parse_timeline(text: &str, file: &Path) -> Result<Vec<EmotionChange>, String> {
    // `blend_secs: 0.3`, not `blend_secs: Some(0.3)`.
    let ron =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let entries: Vec<TimelineEntry> = ron.from_str(text).map_err(|e| {
        format!(
            "the emotion timeline {} is not a list of (at_secs: SECONDS, emotion: NAME, intensity: 0..1, \
             blend_secs: SECONDS) entries: {e}",
            file.display()
        )
    })?;
    if entries.is_empty() {
        return Err(format!(
            "the emotion timeline {} has no entries",
            file.display()
        ));
    }
    let mut changes: Vec<EmotionChange> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let wrong = |problem: String| {
            format!(
                "the emotion timeline {}, entry {} (at_secs: {}): {problem}",
                file.display(),
                index + 1,
                entry.at_secs
            )
        };
        if !(entry.at_secs.is_finite() && entry.at_secs >= 0.0) {
            return Err(wrong("at_secs must be 0 or more seconds".into()));
        }
        if let Some(previous) = changes.last()
            && entry.at_secs <= previous.at_secs
        {
            return Err(wrong(format!(
                "at_secs must be later than entry {}'s {} s: list the changes in time order",
                index, previous.at_secs
            )));
        }
        let emotion: Emotion = entry.emotion.parse().map_err(wrong)?;
        if !(0.0..=1.0).contains(&entry.intensity) {
            return Err(wrong(format!(
                "intensity must be within 0..1, got {}",
                entry.intensity
            )));
        }
        if let Some(blend) = entry.blend_secs
            && !(blend.is_finite() && blend >= 0.0)
        {
            return Err(wrong(format!(
                "blend_secs must be 0 or more seconds, got {blend}"
            )));
        }
        changes.push(EmotionChange {
            at_secs: entry.at_secs,
            emotion,
            intensity: entry.intensity,
            blend_secs: entry.blend_secs,
        });
    }
    Ok(changes)
}

/// The emotion changes to show: the timeline's, or the one `--emotion`/`--intensity` gave, from the start.
fn emotion_changes(options: &Options) -> Result<Vec<EmotionChange>, String> {
    match &options.emotion_timeline {
        Some(file) => read_timeline(file),
        None => Ok(vec![EmotionChange {
            at_secs: 0.0,
            emotion: options.emotion,
            intensity: options.intensity,
            blend_secs: None,
        }]),
    }
}

/// How the changes read in the log line: `happy at 1.00`, or `neutral at 1.00 from 0.00 s, happy at 0.80 from 0.60 s`.
fn describe_changes(changes: &[EmotionChange]) -> String {
    let parts: Vec<_> = changes
        .iter()
        .map(|c| {
            if changes.len() == 1 && c.at_secs == 0.0 {
                format!("{} at {:.2}", c.emotion.name(), c.intensity)
            } else {
                format!(
                    "{} at {:.2} from {:.2} s",
                    c.emotion.name(),
                    c.intensity,
                    c.at_secs
                )
            }
        })
        .collect();
    parts.join(", ")
}

/// The models `talk` needs: speech → coefficients and portrait → head. (The coefficients drive the head's bases
/// through the rig mapping until the motion encoder exists.)
const NEEDED: [&str; 4] = [
    models::AUDIO_ENCODER,
    models::MOTION_GENERATOR,
    models::FACE_DETECTOR,
    models::FACE_LANDMARKS,
];

/// The models `talk` needs that the manifest does not list.
fn missing_models(manifest: &Path) -> Result<Vec<&'static str>, String> {
    let manifest = Manifest::from_file(manifest).map_err(|e| e.to_string())?;
    Ok(NEEDED
        .into_iter()
        .filter(|name| !manifest.models.contains_key(*name))
        .collect())
}

fn check_inputs(options: &Options, changes: Vec<EmotionChange>) -> Result<Inputs, String> {
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
    let shown = match &options.display {
        Display::Photo { background } => format!(
            "the whole photo{}, long side {} px",
            background
                .as_ref()
                .map_or(String::new(), |b| format!(" over {b}")),
            long_side(options, &portrait)
        ),
        Display::Head => format!(
            "the head, camera {:?}, {}²",
            options.camera,
            long_side(options, &portrait)
        ),
    };
    println!(
        "talk: portrait {} ({}x{}), speech {} ({:.2} s at {} Hz), emotion {}, {shown} -> {}",
        options.portrait.display(),
        portrait.width(),
        portrait.height(),
        options.audio.display(),
        pcm.duration_secs(),
        pcm.sample_rate_hz,
        describe_changes(&changes),
        options.out.display()
    );
    let sound = StaticSoundData::from_file(&options.audio).map_err(|e| {
        format!(
            "cannot read the speech clip {}: {e}",
            options.audio.display()
        )
    })?;
    let frames = video_frames(pcm.duration_secs());
    for change in changes.iter().filter(|c| c.first_frame() >= frames) {
        eprintln!(
            "talk: note: the change to {} at {} s comes after the last frame of the {:.2} s clip and will not show",
            change.emotion.name(),
            change.at_secs,
            pcm.duration_secs()
        );
    }
    Ok(Inputs {
        portrait,
        sound,
        duration_secs: pcm.duration_secs(),
        changes,
    })
}

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let changes = match emotion_changes(&options) {
        Ok(changes) => changes,
        Err(message) => {
            eprintln!("talk: {message}");
            return ExitCode::from(2);
        }
    };
    let manifest = default_manifest_path();
    match missing_models(&manifest) {
        Ok(missing) if missing.is_empty() => {}
        Ok(missing) => {
            eprintln!(
                "talk: cannot make a video: the model manifest {} lacks {}. These models are built by the scripts \
                 in tools/ (see assets/models/*.md); no video is written without them.",
                manifest.display(),
                missing.join(", ")
            );
            return ExitCode::from(3);
        }
        Err(message) => {
            eprintln!("talk: {message}");
            return ExitCode::from(3);
        }
    }
    let mut options = options;
    if let Some(text) = options.text.clone() {
        match speak(&text, &options.out) {
            Ok(wav) => options.audio = wav,
            Err(message) => {
                eprintln!("talk: {message}");
                return ExitCode::from(2);
            }
        }
    }
    let inputs = match check_inputs(&options, changes) {
        Ok(inputs) => inputs,
        Err(message) => {
            eprintln!("talk: {message}");
            return ExitCode::from(2);
        }
    };
    match render(&options, inputs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("talk: {message}");
            ExitCode::from(1)
        }
    }
}

/// Writes the coefficients shown in each video frame as JSON or CSV (by the path's extension).
fn write_coefficients(path: &Path, frames: &[FaceCoefficients]) -> Result<(), String> {
    let format = TrackFormat::from_path(path).ok_or("the track must end in .json or .csv")?;
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    }
    let file = std::fs::File::create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    write_track(&mut out, frames, FRAME_RATE_HZ, format)
        .and_then(|()| std::io::Write::flush(&mut out))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Synthesizes `text` with espeak-ng into a WAV next to `out` and returns its path.
fn speak(text: &str, out: &Path) -> Result<PathBuf, String> {
    let wav = out.with_extension("speech.wav");
    if let Some(folder) = wav.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    }
    let status = std::process::Command::new("espeak-ng")
        .arg("-w")
        .arg(&wav)
        .arg("--")
        .arg(text)
        .status()
        .map_err(|e| {
            format!(
                "--text needs espeak-ng ({e}); run tools/setup.sh or `apt-get install espeak-ng`"
            )
        })?;
    if !status.success() {
        return Err(format!("espeak-ng failed ({status}) on the --text given"));
    }
    Ok(wav)
}

/// The decoded inputs.
/// The video's long side: `--size`, or the display's default (the photo's own, at most 1024; 256 for the head).
fn long_side(options: &Options, portrait: &image::DynamicImage) -> u32 {
    options.size.unwrap_or(match options.display {
        Display::Photo { .. } => portrait.width().max(portrait.height()).clamp(16, 1024),
        Display::Head => 256,
    })
}

/// A `--background`: `#rrggbb`, `#rrggbbaa` or an image file.
fn read_background(value: &str) -> Result<Background, String> {
    if let Some(hex) = value.strip_prefix('#') {
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
            })
            .collect();
        return match bytes.as_deref() {
            Some(&[r, g, b]) => Ok(Background::Colour([r, g, b, 255])),
            Some(&[r, g, b, a]) => Ok(Background::Colour([r, g, b, a])),
            _ => Err(format!(
                "--background {value}: a colour is #rrggbb or #rrggbbaa in hexadecimal"
            )),
        };
    }
    image::open(value).map(Background::Image).map_err(|e| {
        format!("--background {value}: not a colour (#rrggbb) nor a readable image: {e}")
    })
}

struct Inputs {
    portrait: image::DynamicImage,
    sound: StaticSoundData,
    duration_secs: f64,
    /// At least one, in time order.
    changes: Vec<EmotionChange>,
}

/// How many video frames a clip of `duration_secs` makes: the last one may be partly past its end.
fn video_frames(duration_secs: f64) -> u32 {
    (duration_secs * f64::from(FRAME_RATE_HZ)).ceil().max(1.0) as u32
}

fn yaw_pitch_at(camera: &CameraPath, progress: f32) -> (f32, f32) {
    match *camera {
        CameraPath::Fixed { yaw_deg, pitch_deg } => (yaw_deg, pitch_deg),
        CameraPath::Orbit {
            from_deg,
            to_deg,
            pitch_deg,
        } => (from_deg + (to_deg - from_deg) * progress, pitch_deg),
    }
}

/// Steps `app` until `done` holds; `what` names the wait in the error after `max_updates`.
fn wait(
    app: &mut App,
    max_updates: usize,
    what: &str,
    mut done: impl FnMut(&App) -> bool,
) -> Result<(), String> {
    for _ in 0..max_updates {
        bevy_talking_head::offline::step(app);
        if done(app) {
            return Ok(());
        }
    }
    Err(format!("gave up waiting for {what}"))
}

fn render(options: &Options, inputs: Inputs) -> Result<(), String> {
    let started = Instant::now();
    let frame_step = Duration::from_secs_f64(1.0 / f64::from(FRAME_RATE_HZ));
    let mut app = App::new();
    app.add_plugins((headless_plugins(), TalkingHeadPlugin))
        .insert_resource(TimeUpdateStrategy::ManualDuration(frame_step));
    finish_headless_app(&mut app).map_err(|e| e.to_string())?;
    let size = long_side(options, &inputs.portrait);
    let background = match &options.display {
        Display::Photo {
            background: Some(value),
        } => Some(read_background(value)?),
        _ => None,
    };
    let portrait = Image::from_dynamic(inputs.portrait, true, RenderAssetUsages::default());
    let portrait = app
        .world_mut()
        .resource_mut::<Assets<Image>>()
        .add(portrait);
    let clip = app
        .world_mut()
        .resource_mut::<Assets<AudioSource>>()
        .add(AudioSource {
            sound: inputs.sound,
        });
    let (yaw, pitch) = yaw_pitch_at(&options.camera, 0.0);
    let mut settings = HeadSettings {
        resolution: size,
        min_resolution: size,
        steps_per_ray: 96,
        view: HeadView::Orbit {
            yaw: yaw.to_radians(),
            pitch: pitch.to_radians(),
            distance: 0.7,
        },
        display: match options.display {
            Display::Photo { .. } => HeadDisplay::Portrait(PortraitCrop::Whole),
            Display::Head => HeadDisplay::TextureOnly,
        },
        expression_base: Default::default(),
    };
    // The video opens on the emotion of 0 s, already shown (no blend), and each later change blends in from its frame.
    let mut talking_head = TalkingHead::new(portrait).with_settings(settings);
    let default_blend_secs = talking_head.motion.emotion_blend_secs;
    talking_head.motion.emotion_blend_secs = 0.0;
    let mut next_change = 0;
    if let Some(first) = inputs.changes.first().filter(|c| c.first_frame() == 0) {
        talking_head.set_emotion(first.emotion, first.intensity);
        next_change = 1;
    }
    let head = app
        .world_mut()
        .spawn((talking_head, Speech::silent(clip), PlaybackClock::manual()))
        .id();
    wait(&mut app, 20_000, "the head", |app| {
        !matches!(
            app.world().get::<TalkingHeadStatus>(head),
            Some(TalkingHeadStatus::Loading)
        )
    })?;
    if let Some(TalkingHeadStatus::Failed(reason)) = app.world().get::<TalkingHeadStatus>(head) {
        return Err(reason.clone());
    }
    if let Some(background) = background {
        let layers = app
            .world()
            .get::<PortraitHead>(head)
            .and_then(|built| built.layers().cloned())
            .ok_or_else(|| "the photo's layers were not built".to_string())?;
        let mut assets = app.world_mut().resource_mut::<Assets<PortraitLayers>>();
        let mut layers = assets
            .get_mut(&layers)
            .ok_or_else(|| "the photo's layers were not built".to_string())?;
        layers.replace_background(&background);
    }
    // Motion is computed in chunks ahead of the clock; wait for the first one.
    wait(&mut app, 20_000, "the speech motion", |app| {
        let started = app
            .world()
            .get::<MotionTrack>(head)
            .is_some_and(|track| track.frames_produced() > 0);
        started
            || app
                .world()
                .get::<SpeechMotion>(head)
                .is_some_and(|m| m.is_done() || m.unavailable().is_some())
    })?;
    if let Some(reason) = app
        .world()
        .get::<SpeechMotion>(head)
        .and_then(SpeechMotion::unavailable)
    {
        return Err(format!("no speech motion: {reason}"));
    }
    let prepared = started.elapsed();
    let (capture, _) = capture_head(&mut app, head).map_err(|e| e.to_string())?;
    // The compute pipeline compiles in the background: record only once the head shows.
    wait(&mut app, 20_000, "the first rendered frame", |_| {
        capture.latest().coverage() > 0.0
    })?;

    let frames = video_frames(inputs.duration_secs);
    let to_mp4 = options
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mp4"));
    let folder = if to_mp4 {
        options.out.with_extension("frames")
    } else {
        options.out.clone()
    };
    let mut writer = VideoWriter::new(&folder, FRAME_RATE_HZ).map_err(|e| e.to_string())?;
    let mut shown = Vec::with_capacity(frames as usize);
    // From here the app's time (blends, blinks, sway) moves exactly one video frame per video frame, however many
    // updates a frame takes to compute and render.
    app.insert_resource(TimeUpdateStrategy::ManualDuration(Duration::ZERO));
    let render_start = Instant::now();
    for frame in 0..frames {
        let (yaw, pitch) = yaw_pitch_at(
            &options.camera,
            frame as f32 / frames.max(2).saturating_sub(1) as f32,
        );
        settings.view = HeadView::Orbit {
            yaw: yaw.to_radians(),
            pitch: pitch.to_radians(),
            distance: 0.7,
        };
        let mut entity = app.world_mut().entity_mut(head);
        if let Some(mut talking_head) = entity.get_mut::<TalkingHead>() {
            talking_head.settings = settings;
            while let Some(change) = inputs
                .changes
                .get(next_change)
                .filter(|c| c.first_frame() <= frame)
            {
                talking_head.set_emotion(change.emotion, change.intensity);
                talking_head.motion.emotion_blend_secs =
                    change.blend_secs.unwrap_or(default_blend_secs);
                next_change += 1;
            }
        }
        if let Some(mut clock) = entity.get_mut::<PlaybackClock>() {
            // The middle of the video frame: motion frame `frame` exactly.
            clock.time_secs = (f64::from(frame) + 0.5) / f64::from(FRAME_RATE_HZ);
        }
        wait(&mut app, 20_000, "the motion of this frame", |app| {
            app.world().get::<MotionTrack>(head).is_none_or(|track| {
                track.is_finished() || track.frames_produced() > u64::from(frame)
            })
        })?;
        app.insert_resource(TimeUpdateStrategy::ManualDuration(frame_step));
        app.update();
        app.insert_resource(TimeUpdateStrategy::ManualDuration(Duration::ZERO));
        // A frame counts once it was rendered after the change: the readback lags the update by up to two frames.
        let start = capture.latest().sequence;
        wait(&mut app, 1000, "a rendered frame", |_| {
            capture.latest().sequence >= start + 3
        })?;
        writer.push(&capture.latest()).map_err(|e| e.to_string())?;
        if let Some(face) = app.world().get::<FaceCoefficients>(head) {
            shown.push(*face);
        }
        let done = frame + 1;
        let rate = f64::from(done) / render_start.elapsed().as_secs_f64().max(1e-9);
        let eta = f64::from(frames - done) / rate;
        let bar = (done as usize * 30) / frames as usize;
        eprint!(
            "\rtalk: [{}{}] frame {done}/{frames}, {rate:.1} frames/s, ETA {eta:.0} s   ",
            "#".repeat(bar),
            " ".repeat(30 - bar)
        );
    }
    eprintln!();
    let rendered = render_start.elapsed();
    if to_mp4 {
        writer
            .finish_mp4(&options.audio, &options.out, [30, 42, 58])
            .map_err(|e| format!("{e} (frames are in {})", folder.display()))?;
    }
    if let Some(path) = &options.coefficients_out {
        write_coefficients(path, &shown)?;
        println!(
            "talk: wrote the coefficients of {} frames to {}",
            shown.len(),
            path.display()
        );
    }
    println!(
        "talk: wrote {} ({frames} frames at {FRAME_RATE_HZ} fps). Time: set-up + head + speech motion {:.1} s, \
         rendering {:.1} s ({:.2} frames/s), total {:.1} s",
        options.out.display(),
        prepared.as_secs_f64(),
        rendered.as_secs_f64(),
        f64::from(frames) / rendered.as_secs_f64().max(1e-9),
        started.elapsed().as_secs_f64()
    );
    Ok(())
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
        assert_eq!(o.size, None);
        assert_eq!(o.display, Display::Photo { background: None });
        assert_eq!(o.emotion, Emotion::Neutral);
        // The default clip comes with its emotion timeline; other speech, or an emotion option, without it.
        assert_eq!(o.emotion_timeline, Some(PathBuf::from(DEFAULT_TIMELINE)));
        for args in [
            &["--audio", "x.wav"][..],
            &["--text", "Hello"],
            &["--emotion", "sad"],
            &["--intensity", "0.5"],
        ] {
            assert_eq!(
                parse(args).expect("valid").emotion_timeline,
                None,
                "{args:?}"
            );
        }
        let o = parse(&[
            "--emotion",
            "Happy",
            "--display",
            "head",
            "--camera-path",
            "orbit:-30:45",
            "--pitch",
            "5",
        ])
        .expect("flags");
        assert_eq!(o.emotion, Emotion::Happy);
        assert_eq!(o.display, Display::Head);
        // The photo keeps its own camera; a background needs the photo.
        assert!(
            parse(&["--yaw", "10"])
                .unwrap_err()
                .contains("--display head")
        );
        assert!(
            parse(&["--display", "head", "--background", "#ffffff"])
                .unwrap_err()
                .contains("--display photo")
        );
        assert!(
            parse(&["--display", "both"])
                .unwrap_err()
                .contains("photo or head")
        );
        assert_eq!(
            parse(&["--background", "#102030"])
                .expect("a colour")
                .display,
            Display::Photo {
                background: Some("#102030".into())
            }
        );
        assert!(matches!(
            read_background("#10203040"),
            Ok(Background::Colour([16, 32, 48, 64]))
        ));
        assert!(read_background("#1020").is_err());
        assert!(read_background("no_such_file.png").is_err());
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
            parse(&["--coefficients-out", "track.txt"])
                .unwrap_err()
                .contains(".json or .csv")
        );
        assert!(parse(&["--text", " "]).unwrap_err().contains("--text"));
        let o = parse(&["--text", "Hello there", "--coefficients-out", "t.json"]).expect("flags");
        assert_eq!(o.text.as_deref(), Some("Hello there"));
        assert_eq!(o.coefficients_out, Some(PathBuf::from("t.json")));
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

    fn timeline(text: &str) -> Result<Vec<EmotionChange>, String> {
        parse_timeline(text, Path::new("t.ron"))
    }

    #[test]
    fn the_shipped_timeline_fits_the_default_clip() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let changes = read_timeline(&root.join("assets/timelines/hello.ron")).expect("parses");
        let clip = decode_file(root.join("assets/speech/hello.wav"))
            .expect("clip")
            .duration_secs();
        assert!(changes.len() >= 3, "{changes:?}");
        assert_eq!(changes[0].at_secs, 0.0);
        assert!(changes.iter().all(|c| c.at_secs < clip), "{changes:?}");
        let mut emotions: Vec<_> = changes.iter().map(|c| c.emotion).collect();
        emotions.dedup();
        assert_eq!(emotions.len(), changes.len(), "{changes:?}");
    }

    #[test]
    fn timelines_parse_with_defaults_and_frames() {
        let changes = timeline(
            "[(at_secs: 0, emotion: \"Neutral\"), (at_secs: 0.52, emotion: \"sad\", intensity: 0.5, \
             blend_secs: 0)]",
        )
        .expect("parses");
        assert_eq!(
            changes,
            vec![
                EmotionChange {
                    at_secs: 0.0,
                    emotion: Emotion::Neutral,
                    intensity: 1.0,
                    blend_secs: None
                },
                EmotionChange {
                    at_secs: 0.52,
                    emotion: Emotion::Sad,
                    intensity: 0.5,
                    blend_secs: Some(0.0)
                },
            ]
        );
        assert_eq!(changes[0].first_frame(), 0);
        assert_eq!(changes[1].first_frame(), 13);
        let later = EmotionChange {
            at_secs: 0.53,
            ..changes[1]
        };
        assert_eq!(later.first_frame(), 14);
        // The default clip's 2.13 s make 54 frames; a change at 2.125 s would start in a 55th.
        assert_eq!(video_frames(2.13), 54);
        let too_late = EmotionChange {
            at_secs: 2.125,
            ..changes[1]
        };
        assert_eq!(too_late.first_frame(), 54);
        assert_eq!(
            describe_changes(&changes),
            "neutral at 1.00 from 0.00 s, sad at 0.50 from 0.52 s"
        );
        // Without a timeline, --emotion and --intensity make the one change at 0 s.
        let o = parse(&["--emotion", "fear", "--intensity", "0.3"]).expect("flags");
        let changes = emotion_changes(&o).expect("no file needed");
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].emotion, changes[0].intensity),
            (Emotion::Fear, 0.3)
        );
        assert_eq!(describe_changes(&changes), "fear at 0.30");
    }

    #[test]
    fn bad_timelines_name_the_file_and_the_entry() {
        let expect_error = |text: &str, wanted: &[&str]| {
            let message = timeline(text).expect_err(text);
            for part in wanted {
                assert!(message.contains(part), "'{part}' missing from: {message}");
            }
        };
        expect_error("[(at_secs: 0, emotion: \"happy\"", &["t.ron", "not a list"]);
        expect_error(
            "[(at_secs: 0, emotion: \"happy\", mood: 1)]",
            &["t.ron", "mood"],
        );
        expect_error("[]", &["t.ron", "no entries"]);
        expect_error(
            "[(at_secs: 0, emotion: \"happy\"), (at_secs: 1, emotion: \"bored\")]",
            &["t.ron, entry 2", "unknown emotion 'bored'", "surprised"],
        );
        expect_error(
            "[(at_secs: 1, emotion: \"happy\"), (at_secs: 0.5, emotion: \"sad\")]",
            &[
                "t.ron, entry 2 (at_secs: 0.5)",
                "later than entry 1",
                "time order",
            ],
        );
        expect_error(
            "[(at_secs: 1, emotion: \"happy\"), (at_secs: 1, emotion: \"sad\")]",
            &["entry 2", "later than entry 1"],
        );
        expect_error(
            "[(at_secs: -0.5, emotion: \"happy\")]",
            &["t.ron, entry 1", "0 or more"],
        );
        expect_error(
            "[(at_secs: 0, emotion: \"happy\", intensity: 1.5)]",
            &["t.ron, entry 1", "intensity must be within 0..1, got 1.5"],
        );
        expect_error(
            "[(at_secs: 0, emotion: \"happy\", blend_secs: -1)]",
            &["entry 1", "blend_secs"],
        );
        let missing = read_timeline(Path::new("no/such/timeline.ron")).unwrap_err();
        assert!(
            missing.contains("cannot read the emotion timeline no/such/timeline.ron"),
            "{missing}"
        );
    }

    #[test]
    fn a_timeline_replaces_the_emotion_flags() {
        let o = parse(&["--emotion-timeline", "t.ron"]).expect("flags");
        assert_eq!(o.emotion_timeline, Some(PathBuf::from("t.ron")));
        for flag in [["--emotion", "happy"], ["--intensity", "0.5"]] {
            let message = parse(&[flag[0], flag[1], "--emotion-timeline", "t.ron"]).unwrap_err();
            assert!(
                message.contains(flag[0]) && message.contains("--emotion-timeline t.ron"),
                "{message}"
            );
            let message = parse(&["--emotion-timeline", "t.ron", flag[0], flag[1]]).unwrap_err();
            assert!(message.contains("both set the emotion"), "{message}");
        }
    }

    #[test]
    fn missing_models_are_named() {
        let dir = std::env::temp_dir().join(format!("talk_manifest_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("manifest.ron");
        std::fs::write(&path, "(motion_code_size: 8, models: {})").expect("write manifest");
        let missing = missing_models(&path).expect("manifest parses");
        assert_eq!(missing.len(), 4, "{missing:?}");
        assert!(
            missing.contains(&models::AUDIO_ENCODER) && missing.contains(&models::FACE_LANDMARKS)
        );
        std::fs::write(&path, "(motion_code_size: oops").expect("write manifest");
        assert!(missing_models(&path).is_err());
    }
}
