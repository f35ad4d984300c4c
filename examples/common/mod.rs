//! What the examples share: running in a window for users or headless for tests and CI, a virtual clock, screenshots
//! of the scene camera, and scripts of spoken lines with subtitles.
//!
//! An example includes it with `#[path = "common/mod.rs"] mod common;` and then:
//! 1. parses its command line with [`Options::parse`] (the flags in [`COMMON_USAGE`] plus its own),
//! 2. builds its app with [`example_app`] (window + audio, or headless),
//! 3. spawns its scene, marking the camera the user looks through with [`SceneCamera`] and naming each
//!    `TalkingHead` with a `Name`,
//! 4. loads its assets with [`preload`] (so that a missing file stops it with a clear message) and may play a
//!    [`Script`] of lines ([`ScriptLine`], text from `assets/speech/lines/lines.tsv`) shown by [`spawn_subtitles`],
//! 5. starts what moves once [`Showtime`] has started (heads ready, assets loaded) and ends `main` with [`run`].
//!
//! Headless (`--frames N`): no window, no audio; the scene camera renders into an image that is read back with
//! Bevy's `Readback`; time is virtual and advances exactly 1/25 s per frame (the motion frame rate), and stands
//! still while the app loads, while a head's speech motion is still being computed for the current time, and while
//! a screenshot is read back, so runs are deterministic however slow the renderer. Each screenshot gets a JSON
//! sidecar (`PATH.json`) with the frame, the show time, the line being spoken, and where each head is in the
//! picture (centre and radius in pixels, and how far it is turned away from the camera), for tests to check.
//!
//! Exit codes: 0 done, 1 the run failed (missing asset, failed head, no GPU adapter; the message says which), 2 bad
//! command line.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bevy::asset::{LoadState, UntypedAssetId};
use bevy::camera::RenderTarget;
use bevy::prelude::*;
use bevy::render::RenderPlugin;
use bevy::time::TimeUpdateStrategy;
use bevy::ui::IsDefaultUiCamera;
use bevy_kira_audio::AudioSource;
use bevy_talking_head::audio::SpeechStream;
use bevy_talking_head::contract::FRAME_RATE_HZ;
use bevy_talking_head::offline::{
    ImageCapture, camera_target, capture_head, capture_image, finish_headless_app, headless_plugins,
};
use bevy_talking_head::prelude::*;
use bevy_talking_head::{ClockSource, HeadOutput, MotionTrack, SpeechMotion};

/// The flags every example understands (printed in its `--help`).
pub const COMMON_USAGE: &str = "  --frames N          run headless (no window, no audio) for N frames of 1/25 s of show time, then exit
  --screenshot PATH   headless: write the scene camera's view as PNG at the last frame (and PATH.json)
  --shots A,B,..      headless: write screenshots at these frames instead, as PATH_stem_0012.png (+ .json)
  --size WxH          headless: picture size in pixels (default 320x240)
  --head-size PX      resolution of each head's texture in pixels (default: the example's)
  --help              this text";

/// Headless settings (`--frames`).
#[derive(Clone, Debug, PartialEq)]
pub struct Headless {
    /// Frames of show time to render, 1/25 s each.
    pub frames: u32,
    /// Where screenshots go; `None` renders without writing any.
    pub screenshot: Option<PathBuf>,
    /// Frames (1-based) at which to write screenshots; empty = only the last frame, written to `screenshot` as is.
    pub shots: Vec<u32>,
    /// Picture size, pixels.
    pub size: UVec2,
}

impl Headless {
    /// The frames to write and the file each goes to.
    pub fn screenshots(&self) -> Vec<(u32, PathBuf)> {
        let Some(path) = &self.screenshot else {
            return Vec::new();
        };
        if self.shots.is_empty() {
            return vec![(self.frames, path.clone())];
        }
        self.shots
            .iter()
            .map(|&frame| (frame, shot_path(path, frame)))
            .collect()
    }
}

/// `out/x.png` at frame 12 → `out/x_0012.png`.
pub fn shot_path(path: &Path, frame: u32) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("shot");
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("png");
    path.with_file_name(format!("{stem}_{frame:04}.{extension}"))
}

/// The command line of an example.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The example's name, for messages.
    pub name: &'static str,
    /// `Some` when running headless.
    pub headless: Option<Headless>,
    /// `--head-size`, if given.
    pub head_size: Option<u32>,
}

impl Options {
    /// Parses `args` (without the program name). Flags the harness does not know go to `extra(flag, value)`, which
    /// returns `Ok(true)` when it took the flag. `Err` holds the message to print (the usage for `--help`).
    pub fn parse(
        name: &'static str,
        usage: &str,
        args: impl IntoIterator<Item = String>,
        mut extra: impl FnMut(&str, &str) -> Result<bool, String>,
    ) -> Result<Self, String> {
        let usage = format!("{usage}\n{COMMON_USAGE}");
        let (mut frames, mut screenshot, mut shots, mut size, mut head_size) =
            (None, None, Vec::new(), None, None);
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err(usage);
            }
            let value = args
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n\n{usage}"))?;
            match flag.as_str() {
                "--frames" => {
                    let n: u32 = number(&flag, &value)?;
                    if !(1..=100_000).contains(&n) {
                        return Err(format!("--frames must be within 1..100000, got {n}"));
                    }
                    frames = Some(n);
                }
                "--screenshot" => screenshot = Some(PathBuf::from(value)),
                "--shots" => {
                    shots = value
                        .split(',')
                        .map(|s| number::<u32>(&flag, s.trim()))
                        .collect::<Result<_, _>>()?;
                }
                "--size" => {
                    let (w, h) = value.split_once('x').ok_or_else(|| {
                        format!("--size expects WIDTHxHEIGHT (e.g. 320x240), got '{value}'")
                    })?;
                    let (w, h): (u32, u32) = (number(&flag, w)?, number(&flag, h)?);
                    if !(16..=4096).contains(&w) || !(16..=4096).contains(&h) {
                        return Err(format!(
                            "--size must be within 16..4096 pixels, got {value}"
                        ));
                    }
                    size = Some(UVec2::new(w, h));
                }
                "--head-size" => {
                    let px: u32 = number(&flag, &value)?;
                    if !(16..=2048).contains(&px) {
                        return Err(format!(
                            "--head-size must be within 16..2048 pixels, got {px}"
                        ));
                    }
                    head_size = Some(px);
                }
                _ => {
                    if !extra(&flag, &value)? {
                        return Err(format!("unknown option {flag}\n\n{usage}"));
                    }
                }
            }
        }
        let headless = match frames {
            Some(frames) => {
                if let Some(bad) = shots.iter().find(|&&s| s == 0 || s > frames) {
                    return Err(format!(
                        "--shots: frame {bad} is outside 1..={frames} (--frames)"
                    ));
                }
                if !shots.is_empty() && screenshot.is_none() {
                    return Err("--shots needs --screenshot PATH".into());
                }
                Some(Headless {
                    frames,
                    screenshot,
                    shots,
                    size: size.unwrap_or(UVec2::new(320, 240)),
                })
            }
            None if screenshot.is_some() || !shots.is_empty() || size.is_some() => {
                return Err(
                    "--screenshot, --shots and --size are for headless runs: add --frames N".into(),
                );
            }
            None => None,
        };
        Ok(Self {
            name,
            headless,
            head_size,
        })
    }

    /// Parses the process's arguments; prints the message and returns the exit code (0 for `--help`, 2 for a bad
    /// command line) when there is nothing to run.
    pub fn from_env(
        name: &'static str,
        usage: &str,
        extra: impl FnMut(&str, &str) -> Result<bool, String>,
    ) -> Result<Self, ExitCode> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let help = args.iter().any(|a| a == "--help" || a == "-h");
        Self::parse(name, usage, args, extra).map_err(|message| {
            if help {
                println!("{message}");
                ExitCode::SUCCESS
            } else {
                eprintln!("{name}: {message}");
                ExitCode::from(2)
            }
        })
    }

    /// The head texture size: `--head-size`, else `windowed` or `headless` by mode.
    pub fn head_size(&self, windowed: u32, headless: u32) -> u32 {
        self.head_size.unwrap_or(if self.headless.is_some() {
            headless
        } else {
            windowed
        })
    }

    /// Whether this is a headless run.
    pub fn is_headless(&self) -> bool {
        self.headless.is_some()
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} expects a number, got '{value}'"))
}

/// The folder Bevy loads assets from: `$BEVY_ASSET_ROOT/assets`, `$CARGO_MANIFEST_DIR/assets` (under cargo), else
/// this crate's own `assets` folder (where the example was built), so the binary also runs when started directly.
pub fn asset_folder() -> PathBuf {
    ["BEVY_ASSET_ROOT", "CARGO_MANIFEST_DIR"]
        .into_iter()
        .filter_map(|var| std::env::var_os(var).filter(|v| !v.is_empty()))
        .map(PathBuf::from)
        .find(|root| root.join("assets").is_dir())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("assets")
}

/// Marks the 3D camera the user looks through. Headless, it renders into the image that screenshots read; UI
/// without a `UiTargetCamera` shows on it.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct SceneCamera;

/// When the show started: set once every head is ready and every preloaded asset has loaded.
#[derive(Resource, Clone, Copy, Debug, Default)]
pub struct Showtime {
    started_at: Option<f64>,
}

impl Showtime {
    /// Seconds of (virtual) time since the show started, `None` before.
    pub fn secs(&self, time: &Time) -> Option<f64> {
        self.started_at
            .map(|start| (time.elapsed_secs_f64() - start).max(0.0))
    }

    /// Whether the show has started.
    pub fn started(&self) -> bool {
        self.started_at.is_some()
    }
}

/// Run condition: the show has started.
pub fn show_started(showtime: Res<Showtime>) -> bool {
    showtime.started()
}

/// Assets the show waits for, with the paths they came from (for error messages).
#[derive(Resource, Default, Debug)]
pub struct Preload(Vec<(String, UntypedAssetId)>);

/// Loads `path` (relative to the assets folder) and makes the show wait for it; a file that fails to load stops
/// the example with a message naming it.
pub fn preload<A: Asset>(assets: &AssetServer, preload: &mut Preload, path: &str) -> Handle<A> {
    let handle: Handle<A> = assets.load(path.to_string());
    preload.0.push((path.to_string(), handle.id().untyped()));
    handle
}

/// Whether this is a headless run (for systems).
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// The example's name, for messages.
    pub name: &'static str,
    /// No window, no audio, virtual time.
    pub headless: bool,
}

/// The image the scene camera renders into when headless.
#[derive(Resource, Clone, Debug)]
struct HeadlessTarget(Handle<Image>);

/// The app of an example: a window (or none, headless), the talking-head plugin, assets from [`asset_folder`], and
/// the harness's systems (start of the show, failures, scripts, subtitles).
pub fn example_app(options: &Options, title: &str) -> App {
    let mut app = App::new();
    let assets = AssetPlugin {
        file_path: asset_folder().to_string_lossy().into_owned(),
        ..default()
    };
    match &options.headless {
        None => {
            app.add_plugins(
                DefaultPlugins
                    .set(WindowPlugin {
                        primary_window: Some(Window {
                            title: title.to_string(),
                            resolution: (1280, 720).into(),
                            ..default()
                        }),
                        ..default()
                    })
                    .set(assets),
            );
        }
        Some(headless) => {
            app.add_plugins(
                headless_plugins()
                    .disable::<bevy::winit::WinitPlugin>()
                    .set(assets)
                    // Pipelines compile when first needed, so no frame is rendered with a mesh still missing.
                    .set(RenderPlugin {
                        synchronous_pipeline_compilation: true,
                        ..default()
                    }),
            )
            .insert_resource(TimeUpdateStrategy::ManualDuration(frame_duration()));
            let target = app
                .world_mut()
                .resource_mut::<Assets<Image>>()
                .add(camera_target(headless.size.x, headless.size.y));
            app.insert_resource(HeadlessTarget(target));
        }
    }
    app.add_plugins(TalkingHeadPlugin)
        .insert_resource(Mode {
            name: options.name,
            headless: options.headless.is_some(),
        })
        .init_resource::<Showtime>()
        .init_resource::<Preload>()
        .init_resource::<Script>()
        .add_observer(set_up_scene_camera)
        .add_systems(
            Update,
            (
                report_failures,
                start_show.run_if(|mode: Res<Mode>| !mode.headless),
                play_script
                    .run_if(show_started)
                    .before(TalkingHeadSystems::Playback),
                show_subtitles,
            )
                .chain(),
        );
    app
}

/// One frame of show time, 1/25 s.
pub fn frame_duration() -> Duration {
    Duration::from_secs_f64(1.0 / f64::from(FRAME_RATE_HZ))
}

fn set_up_scene_camera(
    add: On<Add, SceneCamera>,
    target: Option<Res<HeadlessTarget>>,
    mut commands: Commands,
) {
    let mut camera = commands.entity(add.entity);
    camera.insert(IsDefaultUiCamera);
    if let Some(target) = target {
        // Headless runs (CI, screenshots) often render on a software adapter, where 4× multisampling costs more
        // than anything else in these scenes.
        camera.insert((RenderTarget::Image(target.0.clone().into()), Msaa::Off));
    }
}

/// Where the show stands.
enum Readiness {
    Waiting(String),
    Ready,
    Failed(String),
}

/// Every preloaded asset loaded, every head ready; or what is still awaited, or what failed.
fn readiness(world: &mut World) -> Readiness {
    let assets = world.resource::<AssetServer>();
    let mut waiting = Vec::new();
    for (path, id) in &world.resource::<Preload>().0 {
        match assets.get_load_state(*id) {
            Some(LoadState::Loaded) => {}
            Some(LoadState::Failed(error)) => {
                return Readiness::Failed(format!(
                    "cannot load {} (under {}): {}",
                    path,
                    asset_folder().display(),
                    first_line(&error.to_string())
                ));
            }
            _ => waiting.push(path.clone()),
        }
    }
    let mut heads = world.query::<(Entity, &TalkingHeadStatus, Option<&Name>)>();
    for (entity, status, name) in heads.iter(world) {
        let name = name.map_or_else(|| entity.to_string(), |n| n.as_str().to_string());
        match status {
            TalkingHeadStatus::Ready => {}
            TalkingHeadStatus::Loading => waiting.push(format!("head {name}")),
            TalkingHeadStatus::Failed(reason) => {
                return Readiness::Failed(format!("head {name} failed: {reason}"));
            }
        }
    }
    if waiting.is_empty() {
        Readiness::Ready
    } else {
        Readiness::Waiting(waiting.join(", "))
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text).trim()
}

/// Something that stops the show: an asset or head that failed, or speech that drives no motion.
fn failure(world: &mut World) -> Option<String> {
    if let Readiness::Failed(reason) = readiness(world) {
        return Some(reason);
    }
    let mut motions = world.query::<(Entity, &SpeechMotion, Option<&Name>)>();
    motions.iter(world).find_map(|(entity, motion, name)| {
        motion.unavailable().map(|reason| {
            let name = name.map_or_else(|| entity.to_string(), |n| n.as_str().to_string());
            format!("head {name} cannot move its mouth: {reason}")
        })
    })
}

/// The reason the run stopped, once one was reported.
#[derive(Resource, Debug)]
struct Failure(String);

fn report_failures(world: &mut World) {
    if world.contains_resource::<Failure>() {
        return;
    }
    if let Some(reason) = failure(world) {
        stop(world, reason);
    }
}

/// Prints why the example stops and exits with code 1 (once).
fn stop(world: &mut World, reason: String) {
    if world.contains_resource::<Failure>() {
        return;
    }
    let mode = *world.resource::<Mode>();
    // Headless, `run` prints the reason as the run's error.
    if !mode.headless {
        eprintln!("{}: {reason}", mode.name);
    }
    world.insert_resource(Failure(reason));
    world.write_message(AppExit::from_code(1));
}

/// Stops the example with `message` (exit code 1), for a problem found while setting up the scene.
pub fn fail(commands: &mut Commands, message: String) {
    commands.queue(move |world: &mut World| stop(world, message));
}

/// Windowed: the show starts as soon as everything is ready.
fn start_show(world: &mut World) {
    if world.resource::<Showtime>().started() {
        return;
    }
    if let Readiness::Ready = readiness(world) {
        let now = world.resource::<Time>().elapsed_secs_f64();
        world.resource_mut::<Showtime>().started_at = Some(now);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Scripts of spoken lines.

/// The examples' lines: `assets/speech/lines/lines.tsv` (clip, voice, words per minute, pitch, words), made into
/// clips by `tools/make_example_speech.sh`.
const LINES_TSV: &str = include_str!("../../assets/speech/lines/lines.tsv");

/// The words of clip `clip` (file stem in `assets/speech/lines/`), from `lines.tsv`.
pub fn line_words(clip: &str) -> Option<&'static str> {
    LINES_TSV
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .find(|fields| fields.len() == 5 && fields[0] == clip)
        .map(|fields| fields[4])
}

/// One line of a script: who says it, the clip, and the emotion they show while saying it.
#[derive(Clone, Debug)]
pub struct ScriptLine {
    /// The `TalkingHead` entity that speaks.
    pub speaker: Entity,
    /// The speaker's name, for subtitles.
    pub speaker_name: String,
    /// The clip, preloaded.
    pub clip: Handle<AudioSource>,
    /// The clip's file stem (`npc_01`).
    pub clip_name: String,
    /// The words, for subtitles.
    pub words: String,
    /// Emotion shown from the start of the line.
    pub emotion: Emotion,
    /// Its intensity, 0..1.
    pub intensity: f32,
}

impl ScriptLine {
    /// The line of `assets/speech/lines/<clip>.ogg`, preloaded, with its words from `lines.tsv`; `Err` names a clip
    /// that `lines.tsv` does not list.
    pub fn new(
        assets: &AssetServer,
        preload_list: &mut Preload,
        speaker: Entity,
        speaker_name: &str,
        clip: &str,
        emotion: Emotion,
        intensity: f32,
    ) -> Result<Self, String> {
        let words = line_words(clip).ok_or_else(|| {
            format!("clip '{clip}' is not listed in assets/speech/lines/lines.tsv")
        })?;
        Ok(Self {
            speaker,
            speaker_name: speaker_name.to_string(),
            clip: preload(assets, preload_list, &format!("speech/lines/{clip}.ogg")),
            clip_name: clip.to_string(),
            words: words.to_string(),
            emotion,
            intensity,
        })
    }
}

/// Lines spoken one after another once the show starts, with a pause between them. Each line gives its speaker a
/// new `Speech` (and a fresh `PlaybackClock`) and its emotion; headless, speech is silent and follows virtual time.
#[derive(Resource, Debug)]
pub struct Script {
    /// The example's name (messages and the lines printed on stdout).
    pub example: &'static str,
    /// The lines, in order.
    pub lines: Vec<ScriptLine>,
    /// Seconds of silence between two lines.
    pub pause_secs: f64,
    /// Start again after the last line.
    pub looping: bool,
    next: usize,
    current: Option<usize>,
    /// Show time at which the last line ended.
    ended_at: Option<f64>,
}

impl Default for Script {
    fn default() -> Self {
        Self::new("example", Vec::new())
    }
}

impl Script {
    /// A script of `lines` with a 0.4 s pause between lines, played once.
    pub fn new(example: &'static str, lines: Vec<ScriptLine>) -> Self {
        Self {
            example,
            lines,
            pause_secs: 0.4,
            looping: false,
            next: 0,
            current: None,
            ended_at: None,
        }
    }

    /// The line being spoken and its index.
    pub fn current(&self) -> Option<(usize, &ScriptLine)> {
        self.current.map(|i| (i, &self.lines[i]))
    }

    /// Whether every line has been spoken (never, when looping).
    pub fn finished(&self) -> bool {
        !self.looping && self.current.is_none() && self.next >= self.lines.len()
    }
}

/// Plays `lines` (or fails with the message that says which line is wrong) with `pause_secs` between them, looping
/// when asked, and shows them as subtitles of `font_size`.
pub fn start_script(
    commands: &mut Commands,
    example: &'static str,
    lines: Result<Vec<ScriptLine>, String>,
    pause_secs: f64,
    looping: bool,
    font_size: f32,
) {
    match lines {
        Ok(lines) => {
            let mut script = Script::new(example, lines);
            script.pause_secs = pause_secs;
            script.looping = looping;
            commands.insert_resource(script);
        }
        Err(message) => fail(commands, message),
    }
    spawn_subtitles(commands, font_size);
}

/// Starts each line when the previous one has ended and the pause has passed.
fn play_script(
    mut commands: Commands,
    mode: Res<Mode>,
    time: Res<Time>,
    showtime: Res<Showtime>,
    mut script: ResMut<Script>,
    mut heads: Query<(&mut TalkingHead, Option<&PlaybackClock>)>,
) {
    let Some(now) = showtime.secs(&time) else {
        return;
    };
    if let Some((_, line)) = script.current() {
        let done = heads.get(line.speaker).map_or(true, |(_, clock)| {
            clock.is_some_and(|c| c.source != ClockSource::Idle && c.finished())
        });
        if !done {
            return;
        }
        script.current = None;
        script.ended_at = Some(now);
    }
    if script.looping && script.next >= script.lines.len() {
        script.next = 0;
    }
    let pause_over = script
        .ended_at
        .is_none_or(|ended| now - ended >= script.pause_secs);
    if !pause_over || script.next >= script.lines.len() {
        return;
    }
    let index = script.next;
    let line = script.lines[index].clone();
    script.next += 1;
    script.current = Some(index);
    if let Ok((mut head, _)) = heads.get_mut(line.speaker) {
        head.set_emotion(line.emotion, line.intensity);
    }
    let speech = if mode.headless {
        Speech::silent(line.clip.clone())
    } else {
        Speech::clip(line.clip.clone())
    };
    // A new Speech restarts the head's clock (and the same clip is said again).
    commands.entity(line.speaker).insert(speech);
    println!(
        "{}: line {} at {now:.2} s: {} ({} {:.1}): {}",
        script.example,
        index + 1,
        line.speaker_name,
        line.emotion.name(),
        line.intensity,
        line.words
    );
}

/// The subtitle text node made by [`spawn_subtitles`].
#[derive(Component)]
struct Subtitle;

/// A subtitle bar at the bottom of the scene camera's view showing "Speaker: words" of the script's current line;
/// `font_size` in percent of the view's height.
pub fn spawn_subtitles(commands: &mut Commands, font_size: f32) {
    let bar = spawn_caption_bar(commands, false);
    commands
        .entity(bar)
        .with_child((Subtitle, caption_text(font_size)));
}

/// An empty bar across the scene camera's view, 4 % from its top or bottom, that centres the text put in it.
pub fn spawn_caption_bar(commands: &mut Commands, top: bool) -> Entity {
    commands
        .spawn(Node {
            position_type: PositionType::Absolute,
            top: if top { percent(4.0) } else { Val::Auto },
            bottom: if top { Val::Auto } else { percent(4.0) },
            width: percent(100.0),
            justify_content: JustifyContent::Center,
            ..default()
        })
        .id()
}

/// A subtitle's text node (white, centred, empty and without background until a line shows); `font_size` in percent
/// of the view's height.
pub fn caption_text(font_size: f32) -> impl Bundle {
    (
        Text::new(""),
        TextFont::from_font_size(FontSize::Vh(font_size)),
        TextColor(Color::WHITE),
        TextLayout::justify(Justify::Center),
        Node {
            padding: UiRect::axes(px(10.0), px(4.0)),
            max_width: percent(90.0),
            ..default()
        },
        BackgroundColor(Color::NONE),
    )
}

fn show_subtitles(
    script: Res<Script>,
    mut subtitles: Query<(&mut Text, &mut BackgroundColor), With<Subtitle>>,
) {
    if !script.is_changed() {
        return;
    }
    let text = script
        .current()
        .map(|(_, line)| format!("{}: {}", line.speaker_name, line.words))
        .unwrap_or_default();
    for (mut subtitle, mut background) in &mut subtitles {
        if subtitle.0 != text {
            background.0 = Color::srgba(0.0, 0.0, 0.0, if text.is_empty() { 0.0 } else { 0.6 });
            subtitle.0.clone_from(&text);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Running.

/// Runs the app: in a window until it is closed, or headless for `--frames` frames with screenshots. Returns the
/// process's exit code.
pub fn run(mut app: App, options: &Options) -> ExitCode {
    let Some(headless) = &options.headless else {
        return match app.run() {
            AppExit::Success => ExitCode::SUCCESS,
            AppExit::Error(code) => ExitCode::from(code.get()),
        };
    };
    let started = Instant::now();
    match run_headless(&mut app, options, headless) {
        Ok(()) => {
            println!(
                "{}: {} frames in {:.1} s",
                options.name,
                headless.frames,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{}: {message}", options.name);
            ExitCode::from(1)
        }
    }
}

/// Most updates spent waiting for one thing (loading, a head's first image, speech motion, a screenshot).
const MAX_WAIT_UPDATES: usize = 3000;

fn set_paused(app: &mut App, paused: bool) {
    let mut time = app.world_mut().resource_mut::<Time<Virtual>>();
    if paused {
        time.pause();
    } else {
        time.unpause();
    }
}

/// Updates (with time standing still) until `done`; fails with what was awaited, or with the failure the app
/// reported.
fn wait_for(
    app: &mut App,
    what: &str,
    mut done: impl FnMut(&mut App) -> Result<bool, String>,
) -> Result<(), String> {
    for _ in 0..MAX_WAIT_UPDATES {
        if done(app)? {
            return Ok(());
        }
        bevy_talking_head::offline::step(app);
        if let Some(failure) = app.world().get_resource::<Failure>() {
            return Err(failure.0.clone());
        }
    }
    Err(format!(
        "gave up waiting for {what} after {MAX_WAIT_UPDATES} updates"
    ))
}

fn run_headless(app: &mut App, options: &Options, headless: &Headless) -> Result<(), String> {
    finish_headless_app(app).map_err(|e| e.to_string())?;
    set_paused(app, true);
    let loading = Instant::now();
    // The first update runs the example's Startup systems, which spawn the scene.
    app.update();
    if app
        .world_mut()
        .query_filtered::<(), With<SceneCamera>>()
        .iter(app.world())
        .next()
        .is_none()
    {
        return Err("the example spawned no SceneCamera: nothing to take screenshots with".into());
    }
    let mut awaited = String::new();
    wait_for(app, "the scene to load", |app| {
        Ok(match readiness(app.world_mut()) {
            Readiness::Ready => true,
            Readiness::Waiting(what) => {
                awaited = what;
                false
            }
            Readiness::Failed(reason) => return Err(reason),
        })
    })
    .map_err(|e| format!("{e} ({awaited})"))?;
    // Each head's compute pipeline compiles on its own: wait until every visible head has drawn itself once.
    let heads: Vec<Entity> = app
        .world_mut()
        .query_filtered::<(Entity, &InheritedVisibility), With<TalkingHead>>()
        .iter(app.world())
        .filter(|(_, visibility)| visibility.get())
        .map(|(head, _)| head)
        .collect();
    let mut captures = Vec::new();
    for &head in &heads {
        captures.push(capture_head(app, head).map_err(|e| e.to_string())?);
    }
    wait_for(app, "every head's first image", |_| {
        Ok(captures
            .iter()
            .all(|(capture, _)| capture.latest().coverage() > 0.0))
    })?;
    for (_, reader) in captures {
        app.world_mut().despawn(reader);
    }
    let target = app.world().resource::<HeadlessTarget>().0.clone();
    let loaded = loading.elapsed();
    let now = app.world().resource::<Time>().elapsed_secs_f64();
    app.world_mut().resource_mut::<Showtime>().started_at = Some(now);
    println!(
        "{}: scene ready in {:.1} s; rendering {} frames at {}x{}",
        options.name,
        loaded.as_secs_f64(),
        headless.frames,
        headless.size.x,
        headless.size.y
    );

    let shots = headless.screenshots();
    let rendering = Instant::now();
    for frame in 1..=headless.frames {
        set_paused(app, false);
        app.update();
        set_paused(app, true);
        if let Some(failure) = app.world().get_resource::<Failure>() {
            return Err(failure.0.clone());
        }
        wait_for(app, "speech motion", |app| {
            Ok(!motion_lags(app.world_mut()))
        })?;
        for (_, path) in shots.iter().filter(|(at, _)| *at == frame) {
            screenshot(app, &target, frame, path)?;
        }
        if frame % 25 == 0 {
            eprintln!(
                "{}: frame {frame}/{} ({:.2} frames/s)",
                options.name,
                headless.frames,
                f64::from(frame) / rendering.elapsed().as_secs_f64().max(1e-9)
            );
        }
    }
    Ok(())
}

/// Whether some head speaks (a clip or a stream) at a time its motion is not computed for yet (its frame would show
/// a stale face).
fn motion_lags(world: &mut World) -> bool {
    let mut heads = world.query_filtered::<
        (&PlaybackClock, &MotionTrack, Option<&SpeechMotion>),
        Or<(With<Speech>, With<SpeechStream>)>,
    >();
    heads.iter(world).any(|(clock, track, motion)| {
        let speaking = !matches!(clock.source, ClockSource::Idle) && !clock.finished();
        let possible = motion.is_none_or(|m| m.unavailable().is_none());
        speaking && possible && track.sample(clock.time_secs).is_none()
    })
}

/// Reads the scene camera's picture back (time stands still meanwhile), writes it as PNG and its JSON sidecar.
fn screenshot(
    app: &mut App,
    target: &Handle<Image>,
    frame: u32,
    path: &Path,
) -> Result<(), String> {
    let (capture, reader): (ImageCapture, Entity) =
        capture_image(app, target.clone()).map_err(|e| e.to_string())?;
    // The second image read back is rendered entirely after the request (heads render before they are shown).
    wait_for(app, "the screenshot", |_| Ok(capture.sequence() >= 2))?;
    app.world_mut().despawn(reader);
    let image = capture.latest();
    image.save_png(path).map_err(|e| e.to_string())?;
    let sidecar = describe_shot(app.world_mut(), frame);
    let json_path = PathBuf::from(format!("{}.json", path.display()));
    std::fs::write(&json_path, sidecar)
        .map_err(|e| format!("cannot write {}: {e}", json_path.display()))?;
    println!("screenshot: frame {frame} -> {}", path.display());
    Ok(())
}

/// JSON: frame, show time, current line, and each head's place in the picture.
fn describe_shot(world: &mut World, frame: u32) -> String {
    let time = *world.resource::<Time>();
    let show_secs = world.resource::<Showtime>().secs(&time).unwrap_or(0.0);
    let line = world
        .resource::<Script>()
        .current()
        .map(|(i, line)| {
            format!(
                r#"{{"index": {}, "speaker": {:?}, "clip": {:?}, "emotion": {:?}}}"#,
                i + 1,
                line.speaker_name,
                line.clip_name,
                line.emotion.name()
            )
        })
        .unwrap_or_else(|| "null".into());
    let mut cameras = world.query_filtered::<(&Camera, &GlobalTransform), With<SceneCamera>>();
    let Some((camera, camera_transform)) = cameras.iter(world).next().map(|(c, t)| (c.clone(), *t))
    else {
        return format!(
            r#"{{"frame": {frame}, "show_secs": {show_secs:.3}, "line": {line}, "heads": []}}"#
        );
    };
    let mut heads = world.query_filtered::<(
        Entity,
        &GlobalTransform,
        Option<&Name>,
        Option<&HeadOutput>,
        Option<&PlaybackClock>,
    ), With<TalkingHead>>();
    let found: Vec<_> = heads
        .iter(world)
        .map(|(e, t, name, output, clock)| {
            let name = name.map_or_else(|| e.to_string(), |n| n.as_str().to_string());
            let speaking =
                clock.is_some_and(|c| !matches!(c.source, ClockSource::Idle) && !c.finished());
            (*t, name, output.and_then(HeadOutput::quad), speaking)
        })
        .collect();
    let mut entries = Vec::new();
    for (transform, name, quad, speaking) in found {
        let centre = transform.translation();
        let side = quad
            .and_then(|q| world.get::<GlobalTransform>(q))
            .map_or(0.5, |t| t.to_scale_rotation_translation().0.x);
        let right = camera_transform.right();
        let project = |p: Vec3| camera.world_to_viewport(&camera_transform, p).ok();
        let (Some(c), Some(edge)) = (project(centre), project(centre + right * side * 0.5)) else {
            continue;
        };
        // Faces look along their head's local +Z; measured in the ground plane.
        let to_camera = (camera_transform.translation() - centre)
            .with_y(0.0)
            .normalize_or_zero();
        let face = transform
            .affine()
            .transform_vector3(Vec3::Z)
            .with_y(0.0)
            .normalize_or_zero();
        let facing = face.dot(to_camera).clamp(-1.0, 1.0).acos().to_degrees();
        entries.push(format!(
            r#"{{"name": {name:?}, "x": {:.1}, "y": {:.1}, "radius": {:.1}, "turned_away_deg": {facing:.1}, "speaking": {speaking}}}"#,
            c.x,
            c.y,
            (edge - c).length()
        ));
    }
    format!(
        r#"{{"frame": {frame}, "show_secs": {show_secs:.3}, "line": {line}, "heads": [{}]}}"#,
        entries.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(
            "test",
            "usage",
            args.iter().map(|s| s.to_string()),
            |_, _| Ok(false),
        )
    }

    #[test]
    fn flags() {
        assert_eq!(parse(&[]).map(|o| o.headless), Ok(None));
        let o = parse(&[
            "--frames",
            "30",
            "--screenshot",
            "a/b.png",
            "--shots",
            "10,30",
        ])
        .expect("flags");
        let h = o.headless.expect("headless");
        assert_eq!(
            h.screenshots(),
            vec![
                (10, PathBuf::from("a/b_0010.png")),
                (30, PathBuf::from("a/b_0030.png"))
            ]
        );
        assert!(
            parse(&["--shots", "40", "--frames", "30", "--screenshot", "x.png"])
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            parse(&["--screenshot", "x.png"])
                .unwrap_err()
                .contains("--frames")
        );
        assert!(parse(&["--frames", "ten"]).unwrap_err().contains("number"));
        assert!(
            parse(&["--frames", "3", "--size", "3x"])
                .unwrap_err()
                .contains("number")
        );
        assert!(
            parse(&["--bogus", "1"])
                .unwrap_err()
                .contains("unknown option")
        );
        assert!(parse(&["--frames"]).unwrap_err().contains("needs a value"));
    }

    #[test]
    fn every_line_has_words() {
        assert_eq!(line_words("npc_01"), Some("Halt! Who goes there?"));
        assert_eq!(line_words("nope"), None);
    }
}
