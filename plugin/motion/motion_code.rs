//! Motion codes of heads built from portraits, from the motion encoder.
//!
//! Each frame every such head's encoder window is built ([`Expression::motion_window`]: the faces shown in the last
//! 0.2 s, the face now, the faces of the next 0.2 s as they will be) and the windows of all heads go to the motion
//! encoder in one batch, run on the async compute pool while the app's other systems run. The codes are written
//! before the render jobs are made; if the batch is not done by then, the main thread waits for it (one batch of
//! a few windows takes well under a millisecond). Without the encoder (models missing or failed) the codes are the
//! rig's own mapping ([`bases::from_arkit`]) of the face shown.

use bevy::ecs::entity::EntityHashMap;
use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task, block_on};

use super::expression::Expression;
use super::{FaceCoefficients, MotionTrack, SpeechFace};
use crate::audio::clock::PlaybackClock;
use crate::head::{MotionCode, TalkingHead};
use crate::identity::portrait_head::PortraitHead;
use crate::identity::rig::bases;
use crate::inference::Models;
use crate::inference::{MotionWindow, encode_motion, motion_window};

/// The motion encoder's work: the batch being encoded this frame, and counts of what it did.
#[derive(Resource, Default)]
pub struct MotionEncoding {
    batch: Option<Task<EncodedBatch>>,
    windows_encoded: u64,
    failure_reported: bool,
}

impl MotionEncoding {
    /// Windows the motion encoder has encoded so far (one per portrait head per frame).
    pub fn windows_encoded(&self) -> u64 {
        self.windows_encoded
    }
}

type EncodedBatch = Result<Vec<(Entity, Vec<f32>)>, String>;

/// What a head's encoder window is built from.
type EncoderInputs = (
    Entity,
    &'static TalkingHead,
    &'static Expression,
    &'static SpeechFace,
    Option<&'static MotionTrack>,
    Option<&'static PlaybackClock>,
);

/// Builds each portrait head's window and starts encoding them all in one batch.
pub(crate) fn encode_motion_codes(
    models: Option<Res<Models>>,
    mut encoding: ResMut<MotionEncoding>,
    heads: Query<EncoderInputs, With<PortraitHead>>,
) {
    let Some(registry) = models.and_then(|m| m.registry()) else {
        return;
    };
    let mut entities = Vec::new();
    let mut windows: Vec<MotionWindow> = Vec::new();
    for (entity, head, expression, speech, track, clock) in &heads {
        let ahead = |secs: f32| {
            track
                .zip(clock)
                .and_then(|(track, clock)| track.sample(clock.time_secs + f64::from(secs)))
                .unwrap_or(speech.0)
        };
        entities.push(entity);
        windows.push(motion_window(
            &expression.motion_window(&head.motion, ahead),
        ));
    }
    if windows.is_empty() {
        return;
    }
    encoding.batch = Some(AsyncComputeTaskPool::get().spawn(async move {
        encode_motion(&registry, &windows)
            .map(|codes| entities.into_iter().zip(codes).collect())
            .map_err(|error| error.to_string())
    }));
}

/// Writes the encoded codes (waiting for the batch if it is still running); heads without one get the rig's mapping
/// of their face.
pub(crate) fn apply_motion_codes(
    mut encoding: ResMut<MotionEncoding>,
    mut heads: Query<(Entity, &FaceCoefficients, &mut MotionCode), With<PortraitHead>>,
) {
    let mut encoded: EntityHashMap<Vec<f32>> = match encoding.batch.take().map(block_on) {
        Some(Ok(codes)) => {
            encoding.windows_encoded += codes.len() as u64;
            codes.into_iter().collect()
        }
        Some(Err(reason)) => {
            if !encoding.failure_reported {
                error!("motion encoder failed ({reason}); heads use the rig's own mapping instead");
                encoding.failure_reported = true;
            }
            EntityHashMap::default()
        }
        None => EntityHashMap::default(),
    };
    for (entity, face, mut code) in &mut heads {
        let next = encoded
            .remove(&entity)
            .unwrap_or_else(|| bases::from_arkit(face).to_vec());
        if code.0 != next {
            code.0 = next;
        }
    }
}
