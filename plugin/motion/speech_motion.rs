//! Clips → coefficient tracks: the speech models run on the async compute pool once a head's clip has loaded, and
//! their 25 fps frames fill the head's [`MotionTrack`].

use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task, futures::check_ready};
use bevy_kira_audio::AudioSource;

use super::{FaceCoefficients, MotionTrack};
use crate::audio::clock::Speech;
use crate::audio::from_static_sound;
use crate::contract::models::{AUDIO_ENCODER, MOTION_GENERATOR};
use crate::head::MotionCode;
use crate::identity::construct::bases;
use crate::identity::portrait_head::PortraitHead;
use crate::inference::speech_to_weights;
use crate::plugin::Models;

/// The speech motion of a head's clip: computing, done, or why there is none. Added by the plugin.
#[derive(Component, Debug)]
pub struct SpeechMotion {
    clip: AssetId<AudioSource>,
    state: SpeechMotionState,
}

#[derive(Debug)]
enum SpeechMotionState {
    Computing(Task<Result<Vec<FaceCoefficients>, String>>),
    Done,
    Unavailable(String),
}

impl SpeechMotion {
    /// Why the clip drives no motion, if it does not (models missing, undecodable audio, model error).
    pub fn unavailable(&self) -> Option<&str> {
        match &self.state {
            SpeechMotionState::Unavailable(reason) => Some(reason),
            _ => None,
        }
    }

    /// Whether the whole clip's motion is in the head's track.
    pub fn is_done(&self) -> bool {
        matches!(self.state, SpeechMotionState::Done)
    }
}

/// Starts the speech models on each newly loaded clip and moves finished results into the heads' tracks.
pub(crate) fn generate_speech_motion(
    mut commands: Commands,
    sources: Res<Assets<AudioSource>>,
    models: Option<Res<Models>>,
    mut heads: Query<(Entity, &Speech, &mut MotionTrack, Option<&mut SpeechMotion>)>,
) {
    for (entity, speech, mut track, motion) in &mut heads {
        match motion {
            Some(mut motion) if motion.clip == speech.clip.id() => {
                let SpeechMotionState::Computing(task) = &mut motion.state else {
                    continue;
                };
                let Some(result) = check_ready(task) else {
                    continue;
                };
                motion.state = match result {
                    Ok(frames) => {
                        *track = MotionTrack::default();
                        frames.into_iter().for_each(|frame| track.push(frame));
                        track.finish();
                        SpeechMotionState::Done
                    }
                    Err(reason) => {
                        error!("talking head {entity}: no speech motion: {reason}");
                        SpeechMotionState::Unavailable(reason)
                    }
                };
            }
            _ => {
                let (Some(source), Some(models)) = (sources.get(&speech.clip), models.as_ref())
                else {
                    continue;
                };
                let state = match start(models, source) {
                    Ok(task) => SpeechMotionState::Computing(task),
                    Err(reason) => {
                        warn!("talking head {entity}: the mouth stays at rest: {reason}");
                        SpeechMotionState::Unavailable(reason)
                    }
                };
                commands.entity(entity).insert(SpeechMotion {
                    clip: speech.clip.id(),
                    state,
                });
            }
        }
    }
}

fn start(
    models: &Models,
    source: &AudioSource,
) -> Result<Task<Result<Vec<FaceCoefficients>, String>>, String> {
    let missing = models.missing(&[AUDIO_ENCODER, MOTION_GENERATOR])?;
    if !missing.is_empty() {
        return Err(format!(
            "speech models {} are not in assets/models/manifest.ron",
            missing.join(", ")
        ));
    }
    let registry = models.registry().ok_or("no models are loaded")?;
    let pcm = from_static_sound(&source.sound).map_err(|e| e.to_string())?;
    Ok(AsyncComputeTaskPool::get().spawn(async move {
        let pcm = pcm.to_16k().map_err(|e| e.to_string())?;
        let weights = speech_to_weights(&registry, &pcm.samples).map_err(|e| e.to_string())?;
        Ok(weights
            .into_iter()
            .map(|weights| FaceCoefficients {
                weights,
                ..default()
            })
            .collect())
    }))
}

/// Heads built from portraits: their motion code is the rig's mapping of the current coefficients.
pub(crate) fn drive_portrait_motion_codes(
    mut heads: Query<(&FaceCoefficients, &mut MotionCode), With<PortraitHead>>,
) {
    for (coefficients, mut code) in &mut heads {
        let next = bases::from_arkit(coefficients);
        if code.0 != next {
            code.0 = next.to_vec();
        }
    }
}
