//! `live_tts`: type a line and the astronaut says it. The words go to espeak-ng, whose WAV output is read from its
//! pipe a small piece at a time on a reader thread and pushed into the head's `SpeechStream` while espeak-ng is
//! still producing it, so the mouth starts moving before the synthesis has ended.
//!
//! Lines come from `--text` (repeatable), `--script FILE` (one line per line; blank lines and `#` comments are
//! skipped) and, in a window, from the keyboard (type a line, Enter). Each line is shown as a subtitle.
//!
//! Timing: in a window, every piece is pushed the moment it arrives into an audible stream
//! (`SpeechStream::audible`): the plugin plays it through the audio device 87.5 ms behind the audio received (the
//! speech models' look-ahead), and the head's clock follows that playback (without a device, the audio received).
//! Headless (`--frames N`), the pieces are still read as espeak-ng writes them, but they are pushed at the pace of
//! the virtual clock: at show time `t` after a line began, exactly the samples up to `t + PUSH_LEAD_SECS` (the
//! feeding system waits for espeak-ng when it has not produced them yet). So what the head has received at each
//! frame does not depend on how fast espeak-ng or the renderer ran, and runs are repeatable.
//!
//! On stdout, per line: when it started, when the mouth began to move (with how much audio had been pushed and
//! whether the stream was still open), and what was streamed in the end.
//!
//! ```sh
//! cargo run --release --example live_tts                                  # a window: type, Enter
//! cargo run --release --example live_tts -- --text "Hello there!" --frames 50 --screenshot out/tts.png --shots 12,40
//! ```

#[path = "common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use bevy::input::ButtonState;
use bevy::input::keyboard::{Key, KeyboardInput};
use bevy::prelude::*;
use bevy_talking_head::MotionTrack;
use bevy_talking_head::audio::SpeechStream;
use bevy_talking_head::prelude::*;
use common::{Mode, Options, Preload, SceneCamera, Showtime, preload};

const USAGE: &str = "usage: live_tts [options]

The astronaut speaks lines synthesized by espeak-ng, streamed into her head while espeak-ng produces them.
In a window, type a line and press Enter (lines from --text and --script are spoken first).

  --text WORDS        a line to speak (repeat for more lines)
  --script FILE       lines to speak, one per line (blank lines and # comments skipped)
  --voice NAME        espeak-ng voice (default en-us)
  --wpm N             speaking rate in words per minute, 80..450 (default 165)
  --volume DB         how loud the voice plays, in dB, -60..24 (default 0: as espeak-ng made it)
";

/// The line spoken headless when no `--text` or `--script` is given.
const DEFAULT_LINE: &str = "Hello! My words stream in as I speak.";
/// Headless: samples are pushed up to this many seconds ahead of the show time of the line (more than the speech
/// models' 87.5 ms look-ahead plus the resampler's 25 ms hold-back, so the head's clock never waits for audio).
const PUSH_LEAD_SECS: f64 = 0.3;
/// Bytes read from espeak-ng's pipe at a time: 1024 bytes are 23 ms of its 22.05 kHz 16-bit mono.
const PIPE_READ_BYTES: usize = 1024;
/// Seconds of silence between two lines.
const PAUSE_SECS: f64 = 0.3;
/// Longest wait for espeak-ng to produce audio the headless clock needs.
const SYNTHESIS_TIMEOUT: Duration = Duration::from_secs(20);
/// Where the head is, metres.
const HEAD_CENTRE: Vec3 = Vec3::new(0.0, 1.6, 0.0);

/// What the command line asked for.
#[derive(Resource, Clone, Debug)]
struct TtsSettings {
    voice: String,
    wpm: u32,
    volume: SpeechVolume,
    head_size: u32,
    steps_per_ray: u32,
}

/// Lines waiting to be spoken, in order.
#[derive(Resource, Default, Debug)]
struct Queue(VecDeque<String>);

fn main() -> ExitCode {
    let mut lines = Vec::new();
    let mut voice = "en-us".to_string();
    let mut wpm = 165;
    let mut volume = SpeechVolume::default();
    let options = match Options::from_env("live_tts", USAGE, |flag, value| {
        match flag {
            "--text" => {
                let text = one_line(value);
                if text.is_empty() {
                    return Err("--text needs some words".into());
                }
                lines.push(text);
            }
            "--script" => {
                let content = std::fs::read_to_string(value)
                    .map_err(|e| format!("cannot read --script {value}: {e}"))?;
                let before = lines.len();
                lines.extend(
                    content
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(one_line),
                );
                if lines.len() == before {
                    return Err(format!("--script {value} has no lines to speak"));
                }
            }
            "--voice" => {
                if value.is_empty() || value.starts_with('-') {
                    return Err(format!(
                        "--voice expects a voice name (e.g. en-us), got '{value}'"
                    ));
                }
                voice = value.to_string();
            }
            "--wpm" => {
                wpm = value
                    .parse()
                    .ok()
                    .filter(|n| (80..=450).contains(n))
                    .ok_or_else(|| {
                        format!("--wpm expects a number within 80..450, got '{value}'")
                    })?;
            }
            "--volume" => {
                volume = value
                    .parse()
                    .ok()
                    .filter(|db: &f32| {
                        (SpeechVolume::MIN_DECIBELS..=SpeechVolume::MAX_DECIBELS).contains(db)
                    })
                    .map(SpeechVolume::new)
                    .ok_or_else(|| format!("--volume expects dB within -60..24, got '{value}'"))?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }) {
        Ok(options) => options,
        Err(code) => return code,
    };
    if let Err(message) = check_espeak(&voice) {
        eprintln!("live_tts: {message}");
        return ExitCode::from(1);
    }
    if lines.is_empty() && options.is_headless() {
        lines.push(DEFAULT_LINE.to_string());
    }

    let mut app = common::example_app(&options, "bevy_talking_head: live TTS");
    app.insert_resource(TtsSettings {
        voice,
        wpm,
        volume,
        head_size: options.head_size(384, 64),
        steps_per_ray: if options.is_headless() { 48 } else { 96 },
    })
    .insert_resource(Queue(lines.into()))
    .init_resource::<Speaking>()
    .init_resource::<Typing>()
    .insert_resource(ClearColor(Color::srgb(0.05, 0.06, 0.09)))
    .insert_resource(GlobalAmbientLight {
        brightness: 300.0,
        ..default()
    })
    .add_systems(Startup, set_up)
    .add_systems(
        Update,
        (
            type_lines.run_if(|mode: Res<Mode>| !mode.headless),
            feed_speech.run_if(common::show_started),
        )
            .chain()
            .before(TalkingHeadSystems::Playback),
    )
    .add_systems(
        Update,
        (watch_motion, show_text).after(TalkingHeadSystems::Motion),
    );
    common::run(app, &options)
}

/// Line breaks and runs of spaces become single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// espeak-ng runs and knows `voice`; else what to do about it.
fn check_espeak(voice: &str) -> Result<(), String> {
    let output = Command::new("espeak-ng")
        .args(["-q", "-v", voice, "x"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!("cannot run espeak-ng ({e}); install it with `apt-get install espeak-ng`")
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !stderr.trim().is_empty() {
        return Err(format!(
            "espeak-ng cannot speak with voice '{voice}' ({}): {}; `espeak-ng --voices` lists the voices",
            output.status,
            stderr.trim()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// espeak-ng → pieces of PCM, on a reader thread.

/// What the reader thread sends.
#[derive(Debug)]
enum Piece {
    /// The WAV header was read, this many seconds (wall time) after espeak-ng was started: the format of the
    /// samples to come.
    Format {
        rate_hz: u32,
        channels: u16,
        after_secs: f64,
    },
    /// Interleaved samples in [-1, 1].
    Samples(Vec<f32>),
    /// espeak-ng ended normally, this many seconds (wall time) after it was started.
    End(f64),
    /// Something went wrong; the message says what.
    Failed(String),
}

/// Starts espeak-ng on `text` and a thread that reads its WAV output from the pipe in small pieces.
fn synthesize(text: &str, settings: &TtsSettings) -> Receiver<Piece> {
    let (sender, receiver) = channel();
    let text = text.to_string();
    let (voice, wpm) = (settings.voice.clone(), settings.wpm);
    std::thread::spawn(move || {
        if let Err(message) = read_espeak(&text, &voice, wpm, &sender) {
            let _ = sender.send(Piece::Failed(message));
        }
    });
    receiver
}

fn read_espeak(text: &str, voice: &str, wpm: u32, sender: &Sender<Piece>) -> Result<(), String> {
    let started = Instant::now();
    let mut child = Command::new("espeak-ng")
        .args(["--stdout", "--stdin", "-v", voice, "-s", &wpm.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot run espeak-ng ({e}); install it with `apt-get install espeak-ng`")
        })?;
    // The text goes in through stdin, so words starting with '-' are not taken for options.
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .map_err(|e| format!("cannot write to espeak-ng: {e}"))?;
    }
    let mut stdout = child.stdout.take().ok_or("espeak-ng has no output pipe")?;
    let (rate_hz, channels) = read_wav_header(&mut stdout)?;
    if sender
        .send(Piece::Format {
            rate_hz,
            channels,
            after_secs: started.elapsed().as_secs_f64(),
        })
        .is_err()
    {
        let _ = child.kill();
        return Ok(());
    }
    let mut bytes = vec![0u8; PIPE_READ_BYTES];
    let mut odd_byte: Option<u8> = None;
    loop {
        let n = stdout
            .read(&mut bytes)
            .map_err(|e| format!("cannot read espeak-ng's output: {e}"))?;
        if n == 0 {
            break;
        }
        let mut data: Vec<u8> = odd_byte.take().into_iter().collect();
        data.extend_from_slice(&bytes[..n]);
        if data.len() % 2 == 1 {
            odd_byte = data.pop();
        }
        let samples = data
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
            .collect();
        if sender.send(Piece::Samples(samples)).is_err() {
            // The app moved on (it exits): stop espeak-ng.
            let _ = child.kill();
            let _ = child.wait();
            return Ok(());
        }
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let status = child
        .wait()
        .map_err(|e| format!("espeak-ng did not end: {e}"))?;
    if !status.success() {
        return Err(format!("espeak-ng failed ({status}): {}", stderr.trim()));
    }
    let _ = sender.send(Piece::End(started.elapsed().as_secs_f64()));
    Ok(())
}

/// Reads a WAV header (RIFF, `fmt ` of 16-bit PCM, up to the `data` chunk) and returns the rate and channels. The
/// `data` size is ignored: espeak-ng writes a placeholder when its output is a pipe.
fn read_wav_header(input: &mut impl Read) -> Result<(u32, u16), String> {
    let mut exact = |n: usize| -> Result<Vec<u8>, String> {
        let mut buffer = vec![0u8; n];
        input
            .read_exact(&mut buffer)
            .map_err(|e| format!("espeak-ng wrote no complete WAV header ({e})"))?;
        Ok(buffer)
    };
    let riff = exact(12)?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err("espeak-ng's output is not a WAV stream".into());
    }
    let mut format = None;
    loop {
        let chunk = exact(8)?;
        let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]) as usize;
        match &chunk[0..4] {
            b"data" => break,
            b"fmt " if size >= 16 => {
                let fmt = exact(size + size % 2)?;
                let tag = u16::from_le_bytes([fmt[0], fmt[1]]);
                let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
                let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
                let bits = u16::from_le_bytes([fmt[14], fmt[15]]);
                if tag != 1 || bits != 16 || channels == 0 || rate == 0 {
                    return Err(format!(
                        "espeak-ng's WAV is not 16-bit PCM (format {tag}, {bits} bits, {channels} channels, \
                         {rate} Hz)"
                    ));
                }
                format = Some((rate, channels));
            }
            _ if size > 1 << 20 => return Err("espeak-ng's WAV header is damaged".into()),
            _ => {
                exact(size + size % 2)?;
            }
        }
    }
    format.ok_or_else(|| "espeak-ng's WAV has no format chunk before its data".into())
}

// ---------------------------------------------------------------------------------------------------------------
// Feeding the head's SpeechStream.

/// The line being spoken: its synthesis and what was pushed so far.
#[derive(Resource, Default)]
struct Speaking(Option<Line>);

struct Line {
    number: usize,
    text: String,
    /// From the reader thread (in a `Mutex` only so that the resource is `Sync`; never contended).
    pieces: Mutex<Receiver<Piece>>,
    /// Show time the line began, seconds.
    started_secs: f64,
    format: Option<(u32, u16)>,
    /// Wall seconds from starting espeak-ng to its WAV header.
    header_secs: f64,
    /// Samples read from the pipe and not pushed yet (interleaved).
    pending: VecDeque<f32>,
    /// espeak-ng ended (its End was received), seconds of wall time it ran.
    synthesis_secs: Option<f64>,
    pieces_read: usize,
    pushes: usize,
    /// Interleaved samples pushed into the stream.
    pushed: u64,
    /// When the mouth began to move, show seconds into the line.
    motion_began: Option<f64>,
    /// Frames, after the mouth began to move, at which the head spoke with no motion computed for its clock yet
    /// (headless runs are repeatable while this stays 0).
    lagging_frames: u32,
    reported: bool,
}

impl Line {
    /// Takes what the reader thread sent; with `wait`, blocks until something comes. `Err` when the synthesis
    /// failed.
    fn receive(&mut self, wait: bool) -> Result<(), String> {
        let mut first = wait;
        let pieces = self
            .pieces
            .get_mut()
            .map_err(|_| "the speech reader stopped".to_string())?;
        loop {
            let piece = if first {
                first = false;
                match pieces.recv_timeout(SYNTHESIS_TIMEOUT) {
                    Ok(piece) => piece,
                    Err(RecvTimeoutError::Timeout) => {
                        return Err(format!(
                            "espeak-ng produced nothing for {} s",
                            SYNTHESIS_TIMEOUT.as_secs()
                        ));
                    }
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                }
            } else {
                match pieces.try_recv() {
                    Ok(piece) => piece,
                    Err(_) => return Ok(()),
                }
            };
            match piece {
                Piece::Format {
                    rate_hz,
                    channels,
                    after_secs,
                } => {
                    self.format = Some((rate_hz, channels));
                    self.header_secs = after_secs;
                }
                Piece::Samples(samples) => {
                    self.pieces_read += 1;
                    self.pending.extend(samples);
                }
                Piece::End(secs) => self.synthesis_secs = Some(secs),
                Piece::Failed(message) => return Err(message),
            }
        }
    }

    fn synthesis_done(&self) -> bool {
        self.synthesis_secs.is_some()
    }
}

/// Starts the next line once the head is done with the last one, reads espeak-ng's pieces and pushes them into
/// the head's `SpeechStream`: as they come (window) or at the pace of the virtual clock (headless).
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn feed_speech(
    mut commands: Commands,
    mode: Res<Mode>,
    time: Res<Time>,
    showtime: Res<Showtime>,
    settings: Res<TtsSettings>,
    mut queue: ResMut<Queue>,
    mut speaking: ResMut<Speaking>,
    mut finished_at: Local<Option<f64>>,
    mut count: Local<usize>,
    mut heads: Query<
        (Entity, Option<&mut SpeechStream>, Option<&PlaybackClock>),
        With<TalkingHead>,
    >,
) {
    let Some(now) = showtime.secs(&time) else {
        return;
    };
    let Ok((head, stream, clock)) = heads.single_mut() else {
        return;
    };
    if let Some(line) = &speaking.0 {
        let done = line.reported && clock.is_some_and(PlaybackClock::finished);
        if done {
            speaking.0 = None;
            *finished_at = Some(now);
        }
    }
    let Some(line) = speaking.0.as_mut() else {
        let pause_over = finished_at.is_none_or(|t| now - t >= PAUSE_SECS);
        if pause_over && let Some(text) = queue.0.pop_front() {
            *count += 1;
            println!("live_tts: line {} at {now:.2} s: {text}", *count);
            speaking.0 = Some(Line {
                number: *count,
                pieces: Mutex::new(synthesize(&text, &settings)),
                text,
                started_secs: now,
                format: None,
                header_secs: f64::NAN,
                pending: VecDeque::new(),
                synthesis_secs: None,
                pieces_read: 0,
                pushes: 0,
                pushed: 0,
                motion_began: None,
                lagging_frames: 0,
                reported: false,
            });
            // A fresh stream for the new utterance (a finished stream takes no more audio); the head's clock and
            // motion start over with it. In a window it is heard too (the clock then follows its playback);
            // headless runs keep the virtual clock, so they do not depend on an audio device.
            let stream = if mode.headless {
                SpeechStream::new()
            } else {
                SpeechStream::audible()
            };
            commands.entity(head).insert(stream);
        }
        return;
    };
    // The stream inserted with the line is there from the next frame on.
    let Some(mut stream) = stream else {
        return;
    };
    if stream.is_finished() {
        return;
    }
    let result = if mode.headless {
        feed_at_clock_pace(line, &mut stream, now - line.started_secs)
    } else {
        line.receive(false)
            .and_then(|()| push_pending(line, &mut stream, usize::MAX))
    };
    if let Err(message) = result {
        common::fail(&mut commands, format!("line {}: {message}", line.number));
        return;
    }
    if line.synthesis_done()
        && line.pending.is_empty()
        && let Err(e) = stream.finish()
    {
        common::fail(&mut commands, format!("line {}: {e}", line.number));
    }
}

/// Headless: pushes exactly the samples up to `line_secs + PUSH_LEAD_SECS`, waiting for espeak-ng as needed.
fn feed_at_clock_pace(
    line: &mut Line,
    stream: &mut SpeechStream,
    line_secs: f64,
) -> Result<(), String> {
    loop {
        line.receive(false)?;
        if let Some((rate, channels)) = line.format {
            let due = ((line_secs + PUSH_LEAD_SECS) * f64::from(rate)).floor() as u64
                * u64::from(channels);
            let wanted = due.saturating_sub(line.pushed) as usize;
            if line.pending.len() >= wanted || line.synthesis_done() {
                return push_pending(line, stream, wanted);
            }
        }
        if line.synthesis_done() {
            return Ok(());
        }
        line.receive(true)?;
    }
}

/// Pushes up to `most` pending samples (whole frames) into the stream.
fn push_pending(line: &mut Line, stream: &mut SpeechStream, most: usize) -> Result<(), String> {
    let Some((rate, channels)) = line.format else {
        return Ok(());
    };
    let frame = usize::from(channels);
    let count = most.min(line.pending.len()) / frame * frame;
    if count == 0 {
        return Ok(());
    }
    let samples: Vec<f32> = line.pending.drain(..count).collect();
    stream
        .push(&samples, channels, rate)
        .map_err(|e| format!("the stream refused espeak-ng's audio: {e}"))?;
    line.pushes += 1;
    line.pushed += count as u64;
    Ok(())
}

/// Prints when the mouth starts moving (and whether the stream was still open) and a summary once the line has been
/// streamed; headless, counts frames whose motion was not computed yet (expected: none).
fn watch_motion(
    mode: Res<Mode>,
    time: Res<Time>,
    showtime: Res<Showtime>,
    mut speaking: ResMut<Speaking>,
    heads: Query<(&SpeechStream, &PlaybackClock, &MotionTrack), With<TalkingHead>>,
) {
    let (Some(line), Some(now)) = (speaking.0.as_mut(), showtime.secs(&time)) else {
        return;
    };
    let Ok((stream, clock, track)) = heads.single() else {
        return;
    };
    let speaking_now = clock.time_secs > 0.0 && !clock.finished();
    let computed = track.sample(clock.time_secs).is_some();
    if line.motion_began.is_none() && speaking_now && computed && track.frames_produced() > 0 {
        let open = !stream.is_finished();
        let done = line.synthesis_done();
        line.motion_began = Some(now - line.started_secs);
        println!(
            "live_tts: line {}: mouth moving {:.2} s into the line, {} samples pushed so far, stream open: {open}, \
             espeak-ng done: {done}",
            line.number,
            now - line.started_secs,
            line.pushed
        );
    }
    if line.motion_began.is_some() && speaking_now && !computed && time.delta_secs() > 0.0 {
        line.lagging_frames += 1;
    }
    if stream.is_finished() && !line.reported {
        line.reported = true;
        let (rate, channels) = line.format.unwrap_or((0, 1));
        println!(
            "live_tts: line {} streamed: {} samples ({:.2} s at {rate} Hz, {channels} channel(s)) in {} pushes from \
             {} pipe pieces; espeak-ng's header came after {:.3} s, its end after {:.3} s; stream finished {:.2} s into the line{}",
            line.number,
            line.pushed,
            stream.duration_secs(),
            line.pushes,
            line.pieces_read,
            line.header_secs,
            line.synthesis_secs.unwrap_or(f64::NAN),
            now - line.started_secs,
            if mode.headless {
                format!("; {} frames without motion since", line.lagging_frames)
            } else {
                String::new()
            }
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Scene, typing, subtitles.

/// The line being typed (window).
#[derive(Resource, Default)]
struct Typing(String);

/// The subtitle of the line being spoken.
#[derive(Component)]
struct Subtitle;
/// The prompt with the line being typed.
#[derive(Component)]
struct Prompt;

fn set_up(
    mut commands: Commands,
    mode: Res<Mode>,
    settings: Res<TtsSettings>,
    assets: Res<AssetServer>,
    mut preload_list: ResMut<Preload>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    commands.spawn((
        Mesh3d(meshes.add(Rectangle::new(6.0, 4.0))),
        MeshMaterial3d(materials.add(StandardMaterial {
            base_color: Color::srgb(0.12, 0.16, 0.3),
            perceptual_roughness: 0.9,
            ..default()
        })),
        Transform::from_xyz(0.0, 1.6, -1.5),
    ));
    commands.spawn((
        DirectionalLight {
            illuminance: 5000.0,
            ..default()
        },
        Transform::from_xyz(1.0, 3.0, 4.0).looking_at(HEAD_CENTRE, Vec3::Y),
    ));
    commands.spawn((
        SceneCamera,
        Camera3d::default(),
        Transform::from_xyz(0.0, 1.56, 0.8).looking_at(HEAD_CENTRE - Vec3::Y * 0.07, Vec3::Y),
    ));
    commands.spawn((
        Name::new("astronaut"),
        TalkingHead::new(preload(
            &assets,
            &mut preload_list,
            "portraits/astronaut.png",
        ))
        .with_emotion(Emotion::Happy, 0.4)
        .with_settings(HeadSettings {
            resolution: settings.head_size,
            steps_per_ray: settings.steps_per_ray,
            ..HeadSettings::preset(Quality::Medium)
        }),
        settings.volume,
        Transform::from_translation(HEAD_CENTRE),
    ));

    // Subtitle at the bottom; in a window, the prompt at the top.
    let subtitle_bar = common::spawn_caption_bar(&mut commands, false);
    commands
        .entity(subtitle_bar)
        .with_child((Subtitle, common::caption_text(5.0)));
    if !mode.headless {
        let prompt_bar = common::spawn_caption_bar(&mut commands, true);
        commands.entity(prompt_bar).with_child((
            Prompt,
            Text::new(""),
            TextFont::from_font_size(FontSize::Vh(3.5)),
            TextColor(Color::srgb(0.8, 0.9, 1.0)),
            BackgroundColor(Color::srgba(0.0, 0.0, 0.0, 0.5)),
            Node {
                padding: UiRect::axes(px(10.0), px(4.0)),
                ..default()
            },
        ));
    }
}

/// Window: typed characters build a line; Enter queues it, Backspace deletes, Escape clears.
fn type_lines(
    mut keys: MessageReader<KeyboardInput>,
    mut typing: ResMut<Typing>,
    mut queue: ResMut<Queue>,
) {
    for key in keys.read() {
        if key.state != ButtonState::Pressed {
            continue;
        }
        match &key.logical_key {
            Key::Enter => {
                let line = one_line(&typing.0);
                typing.0.clear();
                if !line.is_empty() {
                    queue.0.push_back(line);
                }
            }
            Key::Backspace => {
                typing.0.pop();
            }
            Key::Escape => typing.0.clear(),
            _ => {
                if let Some(text) = &key.text {
                    typing.0.extend(text.chars().filter(|c| !c.is_control()));
                }
            }
        }
    }
}

#[allow(clippy::type_complexity)]
fn show_text(
    speaking: Res<Speaking>,
    typing: Res<Typing>,
    queue: Res<Queue>,
    mut subtitles: Query<(&mut Text, &mut BackgroundColor), (With<Subtitle>, Without<Prompt>)>,
    mut prompts: Query<&mut Text, (With<Prompt>, Without<Subtitle>)>,
) {
    let words = speaking
        .0
        .as_ref()
        .map(|line| format!("Astronaut: {}", line.text))
        .unwrap_or_default();
    for (mut text, mut background) in &mut subtitles {
        if text.0 != words {
            background.0 = Color::srgba(0.0, 0.0, 0.0, if words.is_empty() { 0.0 } else { 0.6 });
            text.0.clone_from(&words);
        }
    }
    let waiting = match queue.0.len() {
        0 => String::new(),
        n => format!("  ({n} waiting)"),
    };
    let prompt = format!("Type a line, Enter to speak: {}_{waiting}", typing.0);
    for mut text in &mut prompts {
        if text.0 != prompt {
            text.0 = prompt.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_headers() {
        let mut wav = Vec::new();
        wav.extend_from_slice(b"RIFF\x24\xf0\xff\x7fWAVEfmt \x10\0\0\0\x01\0\x01\0\x22\x56\0\0\x44\xac\0\0\x02\0\x10\0");
        wav.extend_from_slice(b"data\0\xf0\xff\x7f");
        assert_eq!(read_wav_header(&mut wav.as_slice()), Ok((22_050, 1)));
        assert!(read_wav_header(&mut &wav[..20]).is_err());
        assert!(read_wav_header(&mut &b"RIFX0000WAVE"[..]).is_err());
    }
}
