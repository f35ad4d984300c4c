//! Speech clips and streams on heads, and the playback clock that motion follows.
//!
//! With an audio device, a head's clock is the playback position of its kira audio instance. Without one (CI,
//! tests, offline rendering) bevy_kira_audio only logs a warning and never creates the instance; the clock then
//! runs virtually with the app's time, so the same code drives both.

use bevy::prelude::*;
use bevy_kira_audio::prelude::SpatialAudioReceiver;
use bevy_kira_audio::{Audio, AudioControl, AudioInstance, AudioSource, AudioTween, PlaybackState};

use super::SpeechStream;
use super::playback::{StreamAudioOutput, StreamPlayback};
use super::voice::{SpatialVoice, SpeechVolume, VoiceMix};
use crate::contract::SAMPLE_RATE_HZ;
use crate::inference::SPEECH_LOOKAHEAD_SECS;

/// A voice clip the head speaks, played through bevy_kira_audio from the moment the head appears. Insert another
/// `Speech` to say another line (or the same one again): the clip playing stops and the clock starts over.
#[derive(Component, Clone, Debug)]
#[require(PlaybackClock)]
pub struct Speech {
    /// The clip (WAV, OGG/Vorbis, FLAC or MP3).
    pub clip: Handle<AudioSource>,
    /// Whether the clip is played through the audio device (turn off for offline rendering).
    pub audible: bool,
}

impl Speech {
    /// Speak `clip` through the audio device (when there is one).
    pub fn clip(clip: Handle<AudioSource>) -> Self {
        Self {
            clip,
            audible: true,
        }
    }

    /// Follow `clip`'s timeline without playing it (offline rendering, tests).
    pub fn silent(clip: Handle<AudioSource>) -> Self {
        Self {
            clip,
            audible: false,
        }
    }
}

/// Where a head's clock comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Reflect)]
pub enum ClockSource {
    /// Nothing plays yet (clip loading).
    #[default]
    Idle,
    /// The playback position of the head's audio instance.
    AudioDevice,
    /// App time since the clip was ready (no audio device, or a silent clip).
    Virtual,
    /// Set by the app every frame (offline rendering at a fixed frame rate); the plugin never moves it.
    Manual,
}

/// The time of a head's speech, in seconds from its start; motion is sampled at this time.
#[derive(Component, Clone, Debug, Default, PartialEq, Reflect)]
pub struct PlaybackClock {
    /// Seconds since the speech started.
    pub time_secs: f64,
    /// What drives the clock.
    pub source: ClockSource,
    /// Length of the clip in seconds, once known.
    pub duration_secs: Option<f64>,
    instance: Option<Handle<AudioInstance>>,
    /// Counts the times the head's speech started over (a new [`Speech`] or [`SpeechStream`]): motion computed
    /// for an earlier utterance is not reused.
    utterance: u64,
    /// The stream the clock follows ([`SpeechStream`]'s id).
    stream: Option<u64>,
    /// The level and panning last given to the clip's audio instance.
    #[reflect(ignore)]
    instance_mix: VoiceMix,
}

impl PlaybackClock {
    /// A clock the app sets itself ([`ClockSource::Manual`]), starting at 0 s.
    pub fn manual() -> Self {
        Self {
            source: ClockSource::Manual,
            ..default()
        }
    }

    /// Which utterance of the head the clock times (see the field).
    pub(crate) fn utterance(&self) -> u64 {
        self.utterance
    }

    /// The clock of the next utterance: at its start, waiting for it.
    fn start_over(&self) -> Self {
        Self {
            utterance: self.utterance + 1,
            ..default()
        }
    }

    /// Whether the speech has played to its end.
    pub fn finished(&self) -> bool {
        self.duration_secs.is_some_and(|d| self.time_secs >= d)
    }

    /// Moves the clock by `delta_secs` of app time (virtual clock), or to the audio instance's position.
    fn advance(&mut self, delta_secs: f64, instance_state: Option<PlaybackState>) {
        let position = match instance_state {
            Some(PlaybackState::Queued) => Some(0.0),
            Some(PlaybackState::Stopped) => self.duration_secs,
            Some(state) => state.position(),
            None => None,
        };
        match position {
            Some(position) => {
                self.source = ClockSource::AudioDevice;
                self.time_secs = position;
            }
            None => {
                self.source = ClockSource::Virtual;
                self.time_secs += delta_secs;
            }
        }
        if let Some(duration) = self.duration_secs {
            self.time_secs = self.time_secs.min(duration);
        }
    }
}

/// Moves the clock of a streamed head: it starts with the first audio, runs with app time, and never passes
/// `playable_secs` (it waits for more audio); the duration is known once the stream finished.
fn follow_stream(
    clock: &mut PlaybackClock,
    delta_secs: f64,
    playable_secs: f64,
    finished_secs: Option<f64>,
) {
    if clock.source == ClockSource::Manual {
        return;
    }
    if clock.source == ClockSource::Idle {
        if playable_secs <= 0.0 {
            return;
        }
        clock.source = ClockSource::Virtual;
    }
    clock.time_secs = (clock.time_secs + delta_secs).min(playable_secs);
    clock.duration_secs = finished_secs;
}

/// What [`follow_speech_streams`] reads and moves on a head fed by a stream.
type StreamedHead<'a> = (
    Entity,
    &'a mut SpeechStream,
    &'a mut PlaybackClock,
    Option<&'a mut StreamPlayback>,
    Voice<'a>,
);

/// What decides how a head's voice sounds (see [`VoiceMix::of`]).
type Voice<'a> = (
    Option<&'a SpeechVolume>,
    Option<&'a SpatialVoice>,
    Option<&'a GlobalTransform>,
);

/// The listener of spatial voices: the one entity with a [`SpatialAudioReceiver`].
type Listener<'w, 's> = Query<'w, 's, &'static GlobalTransform, With<SpatialAudioReceiver>>;

fn mix_of((volume, spatial, head): Voice, listener: Option<&GlobalTransform>) -> VoiceMix {
    VoiceMix::of(volume, spatial, head, listener)
}

/// Advances the clocks of heads fed by a [`SpeechStream`]. While the stream is open, the clock stays
/// [`SPEECH_LOOKAHEAD_SECS`] behind the 16 kHz audio received, so the motion for the clock time can already be
/// computed: that is the latency a stream adds (plus the resampler's hold-back for rates other than 16 kHz).
/// An audible stream is played through the audio device, never further than that, and the clock is its playback
/// position; without a device its clock runs with app time like a silent stream's.
pub(crate) fn follow_speech_streams(
    time: Res<Time>,
    mut output: NonSendMut<StreamAudioOutput>,
    mut commands: Commands,
    mut heads: Query<StreamedHead>,
    orphans: Query<Entity, (With<StreamPlayback>, Without<SpeechStream>)>,
    listener: Listener,
) {
    for entity in &orphans {
        // The stream was taken off the head: its sound stops.
        commands.entity(entity).remove::<StreamPlayback>();
    }
    let listener = listener.single().ok();
    for (entity, mut stream, mut clock, playback, voice) in &mut heads {
        if clock.stream != Some(stream.id()) {
            // Another stream: the clock starts over with it (a clock the app sets stays the app's).
            if clock.stream.is_some() && clock.source != ClockSource::Manual {
                *clock = clock.start_over();
            }
            clock.stream = Some(stream.id());
        }
        let finished = stream.is_finished().then(|| stream.duration_secs());
        let had_playback = playback.is_some();
        let playback = playback.filter(|playback| playback.stream == stream.id());
        let plays = stream.is_audible() && clock.source != ClockSource::Manual;
        match playback {
            Some(mut playback) if plays => {
                let lookahead = (SPEECH_LOOKAHEAD_SECS * f64::from(SAMPLE_RATE_HZ)).round() as u64;
                let total = stream.total_16k();
                let releasable = if finished.is_some() {
                    total
                } else {
                    total.saturating_sub(lookahead)
                };
                playback.set_mix(mix_of(voice, listener));
                let fed = playback.feed(stream.playback_backlog(), releasable, finished.is_some());
                stream.drain_playback(fed);
                clock.source = ClockSource::AudioDevice;
                clock.duration_secs = finished;
                clock.time_secs = match finished {
                    Some(duration) if playback.played_all() => duration,
                    Some(duration) => playback.position_secs().min(duration),
                    None => playback.position_secs(),
                };
            }
            _ => {
                if had_playback {
                    // An earlier stream's playback, or a clock the app took over: stop playing it.
                    commands.entity(entity).remove::<StreamPlayback>();
                }
                if plays
                    && let Some(started) = output
                        .manager()
                        .and_then(|manager| StreamPlayback::start(manager, stream.id()))
                {
                    // Plays from the next frame on; the clock waits for it.
                    commands.entity(entity).insert(started);
                    continue;
                }
                // Nothing plays the samples kept for playback (no device, or not audible).
                let backlog = stream.playback_backlog().len();
                stream.drain_playback(backlog);
                let playable = finished.unwrap_or(stream.resampled_secs() - SPEECH_LOOKAHEAD_SECS);
                follow_stream(&mut clock, time.delta_secs_f64(), playable, finished);
            }
        }
    }
}

/// Starts playback of each head's clip once it has loaded. A [`Speech`] inserted (or changed) while the head's clock
/// runs starts over: the clip playing stops, and the new one plays from its start once loaded (the same clip again
/// is said again).
pub(crate) fn start_speech(
    audio: Option<Res<Audio>>,
    sources: Res<Assets<AudioSource>>,
    mut instances: Option<ResMut<Assets<AudioInstance>>>,
    mut heads: Query<(Ref<Speech>, &mut PlaybackClock, Voice)>,
    listener: Listener,
) {
    let listener = listener.single().ok();
    for (speech, mut clock, voice) in &mut heads {
        if speech.is_changed()
            && matches!(
                clock.source,
                ClockSource::Virtual | ClockSource::AudioDevice
            )
        {
            if let Some(mut instance) = clock
                .instance
                .take()
                .and_then(|handle| instances.as_mut()?.get_mut(&handle))
            {
                instance.stop(default());
            }
            *clock = clock.start_over();
        }
        let Some(source) = sources.get(&speech.clip) else {
            continue;
        };
        if clock.source == ClockSource::Manual && clock.duration_secs.is_none() {
            clock.duration_secs = Some(source.sound.duration().as_secs_f64());
        }
        if clock.source != ClockSource::Idle {
            continue;
        }
        clock.duration_secs = Some(source.sound.duration().as_secs_f64());
        clock.time_secs = 0.0;
        clock.source = ClockSource::Virtual;
        if speech.audible
            && let Some(audio) = audio.as_ref()
        {
            let mix = mix_of(voice, listener);
            clock.instance = Some(
                audio
                    .play(speech.clip.clone())
                    .with_volume(mix.decibels)
                    .with_panning(mix.panning)
                    .handle(),
            );
            clock.instance_mix = mix;
        }
    }
}

/// Advances the clock of every head speaking a clip: audio position where an instance plays, app time otherwise;
/// a changed voice mix ([`SpeechVolume`], [`SpatialVoice`]) is passed on to the instance.
pub(crate) fn advance_playback(
    time: Res<Time>,
    mut instances: Option<ResMut<Assets<AudioInstance>>>,
    mut clocks: Query<(&mut PlaybackClock, Voice), With<Speech>>,
    listener: Listener,
) {
    let listener = listener.single().ok();
    for (mut clock, voice) in &mut clocks {
        if matches!(clock.source, ClockSource::Idle | ClockSource::Manual) {
            continue;
        }
        let mix = mix_of(voice, listener);
        if mix.differs_from(&clock.instance_mix)
            && let Some(mut instance) = clock
                .instance
                .as_ref()
                .and_then(|h| instances.as_mut()?.get_mut(h))
        {
            instance.set_decibels(mix.decibels, AudioTween::default());
            instance.set_panning(mix.panning, AudioTween::default());
            clock.instance_mix = mix;
        }
        let state = clock
            .instance
            .as_ref()
            .and_then(|h| instances.as_ref()?.get(h))
            .map(AudioInstance::state);
        clock.advance(time.delta_secs_f64(), state);
    }
}

#[cfg(test)]
mod tests {
    use kira::backend::mock::MockBackend;

    use super::*;

    /// An app that runs [`follow_speech_streams`] without a device, and a mock manager to start playbacks on.
    fn stream_app() -> (kira::AudioManager<MockBackend>, App) {
        let manager =
            kira::AudioManager::<MockBackend>::new(default()).expect("mock audio manager");
        let mut app = App::new();
        app.init_resource::<Time>()
            .insert_non_send(StreamAudioOutput::without_device())
            .add_systems(Update, follow_speech_streams);
        (manager, app)
    }

    /// The gain and panning the head's stream playback was last given.
    fn playback_mix(app: &App, head: Entity) -> (f32, f32) {
        app.world()
            .get::<StreamPlayback>(head)
            .expect("plays")
            .gain_and_panning()
    }

    #[test]
    fn an_earlier_streams_playback_stops_with_a_new_stream_or_without_one() {
        let (mut manager, mut app) = stream_app();
        let old = StreamPlayback::start(&mut manager, u64::MAX).expect("playing");
        let new_stream = app.world_mut().spawn((SpeechStream::new(), old)).id();
        let old = StreamPlayback::start(&mut manager, u64::MAX).expect("playing");
        let no_stream = app.world_mut().spawn(old).id();
        app.update();
        assert!(app.world().get::<StreamPlayback>(new_stream).is_none());
        assert!(app.world().get::<StreamPlayback>(no_stream).is_none());
    }

    #[test]
    fn an_audible_streams_sound_follows_the_heads_volume() {
        let (mut manager, mut app) = stream_app();
        let stream = SpeechStream::audible();
        let playing = StreamPlayback::start(&mut manager, stream.id()).expect("playing");
        let head = app
            .world_mut()
            .spawn((stream, playing, SpeechVolume::new(-6.0206)))
            .id();
        app.update();
        let gain = |app: &App| playback_mix(app, head).0;
        assert!((gain(&app) - 0.5).abs() < 1e-4, "{}", gain(&app));
        app.world_mut().entity_mut(head).insert(SpeechVolume::MUTED);
        app.update();
        assert_eq!(gain(&app), 0.0);
        app.world_mut().entity_mut(head).remove::<SpeechVolume>();
        app.update();
        assert_eq!(
            gain(&app),
            1.0,
            "without a volume the stream plays unchanged"
        );
    }

    #[test]
    fn a_spatial_streams_sound_is_placed_by_the_listener() {
        let (mut manager, mut app) = stream_app();
        let stream = SpeechStream::audible();
        let playing = StreamPlayback::start(&mut manager, stream.id()).expect("playing");
        let head = app
            .world_mut()
            .spawn((
                stream,
                playing,
                SpatialVoice::new(10.0),
                GlobalTransform::from_xyz(2.0, 0.0, 0.0),
            ))
            .id();
        app.update();
        assert_eq!(
            playback_mix(&app, head),
            (1.0, 0.0),
            "no listener: as if at the listener"
        );
        app.world_mut()
            .spawn((SpatialAudioReceiver, GlobalTransform::IDENTITY));
        app.update();
        let (gain, panning) = playback_mix(&app, head);
        // 2 m of a 10 m radius: -12 dB; to the listener's right.
        assert!(
            (gain - 0.2512).abs() < 1e-3 && (panning - 1.0).abs() < 1e-6,
            "{gain} {panning}"
        );
    }

    #[test]
    fn an_audible_stream_without_a_device_runs_like_a_silent_one_and_keeps_no_samples() {
        let mut app = App::new();
        app.init_resource::<Time>()
            .insert_non_send(StreamAudioOutput::without_device())
            .add_systems(Update, follow_speech_streams);
        let mut stream = SpeechStream::audible();
        stream.push(&[0.1; 16_000], 1, 16_000).expect("push");
        assert_eq!(stream.playback_backlog().len(), 16_000);
        let head = app.world_mut().spawn(stream).id();
        app.update();
        let clock = app.world().get::<PlaybackClock>(head).expect("clock");
        assert_eq!(clock.source, ClockSource::Virtual);
        let stream = app.world().get::<SpeechStream>(head).expect("stream");
        assert!(
            stream.playback_backlog().is_empty(),
            "samples kept with nothing to play them"
        );
        assert!(app.world().get::<StreamPlayback>(head).is_none());
    }

    #[test]
    fn virtual_clock_advances_and_stops_at_the_end() {
        let mut clock = PlaybackClock {
            source: ClockSource::Virtual,
            duration_secs: Some(1.0),
            ..default()
        };
        clock.advance(0.4, None);
        assert_eq!(clock.time_secs, 0.4);
        assert_eq!(clock.source, ClockSource::Virtual);
        clock.advance(0.8, None);
        assert_eq!(clock.time_secs, 1.0);
        assert!(clock.finished());
    }

    #[test]
    fn stream_clock_waits_for_audio_and_learns_the_duration_at_the_end() {
        let mut clock = PlaybackClock::default();
        follow_stream(&mut clock, 0.1, 0.0, None);
        assert_eq!((clock.source, clock.time_secs), (ClockSource::Idle, 0.0));
        follow_stream(&mut clock, 0.1, 0.25, None);
        assert_eq!(clock.time_secs, 0.1);
        follow_stream(&mut clock, 0.5, 0.25, None);
        assert_eq!(
            clock.time_secs, 0.25,
            "the clock ran ahead of the audio received"
        );
        assert_eq!(clock.duration_secs, None);
        follow_stream(&mut clock, 0.5, 1.0, Some(1.0));
        assert_eq!((clock.time_secs, clock.duration_secs), (0.75, Some(1.0)));
    }

    #[test]
    fn audio_position_overrides_app_time() {
        let mut clock = PlaybackClock {
            source: ClockSource::Virtual,
            duration_secs: Some(3.0),
            ..default()
        };
        clock.advance(0.5, Some(PlaybackState::Playing { position: 1.25 }));
        assert_eq!(clock.time_secs, 1.25);
        assert_eq!(clock.source, ClockSource::AudioDevice);
        clock.advance(0.5, Some(PlaybackState::Stopped));
        assert_eq!(clock.time_secs, 3.0);
    }
}
