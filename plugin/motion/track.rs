//! The coefficient track of a head: motion frames at 25 fps, computed ahead of playback and sampled at the clock.

use std::collections::VecDeque;

use bevy::prelude::*;

use super::{FaceCoefficients, SpeechFace};
use crate::audio::clock::PlaybackClock;
use crate::contract::{FRAME_RATE_HZ, MOTION_WINDOW};
use crate::head::TalkingHead;

/// Frames kept behind the playback position, so the motion encoder's window (centred on the current frame) stays
/// complete.
const FRAMES_KEPT_BEHIND: u64 = MOTION_WINDOW as u64 / 2 + 1;

/// Expression coefficients at [`FRAME_RATE_HZ`], frame `i` at time `(i + ½) / 25` s: the centre of the 40 ms of
/// audio `[i / 25, (i + 1) / 25)` it was computed from. Producers append frames as they are computed; the head
/// samples the track at its clock, interpolating between frames; frames far behind the clock are dropped, so
/// memory stays bounded however long the speech runs. A video frame shown from `k / 25` to `(k + 1) / 25` s is
/// sampled at its middle and gets motion frame `k` exactly.
#[derive(Component, Clone, Debug, Default, PartialEq)]
pub struct MotionTrack {
    /// Index of `frames[0]` in the whole track.
    first: u64,
    frames: VecDeque<FaceCoefficients>,
    finished: bool,
}

impl MotionTrack {
    /// Appends the next frame.
    pub fn push(&mut self, frame: FaceCoefficients) {
        self.frames.push_back(frame);
    }

    /// Marks the track complete: past its last frame it holds that frame instead of waiting for more.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// Whether [`MotionTrack::finish`] was called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Number of frames produced so far, dropped ones included.
    pub fn frames_produced(&self) -> u64 {
        self.first + self.frames.len() as u64
    }

    /// Number of frames held in memory.
    pub fn frames_held(&self) -> usize {
        self.frames.len()
    }

    /// Seconds of motion produced so far.
    pub fn produced_secs(&self) -> f64 {
        self.frames_produced() as f64 / f64::from(FRAME_RATE_HZ)
    }

    /// The frame at `time_secs`, interpolated linearly between the two nearest frames. Between the newest frame's
    /// time and the next frame's, the newest frame is held (a live stream shows it before its successor exists).
    /// `None` while that time is not computed yet (the caller keeps the previous frame) or before anything was
    /// produced. Times before the frames still held give the oldest one.
    pub fn sample(&self, time_secs: f64) -> Option<FaceCoefficients> {
        let last = self.frames.len().checked_sub(1)?;
        let position = (time_secs * f64::from(FRAME_RATE_HZ) - 0.5 - self.first as f64).max(0.0);
        let index = position.floor() as usize;
        if index >= last {
            let beyond = position >= (last + 1) as f64;
            return (!beyond || self.finished).then(|| self.frames[last]);
        }
        let t = (position - index as f64) as f32;
        Some(self.frames[index].lerp(&self.frames[index + 1], t))
    }

    /// Drops frames no longer needed once playback has reached `time_secs`.
    pub fn release_before(&mut self, time_secs: f64) {
        let current = (time_secs.max(0.0) * f64::from(FRAME_RATE_HZ)).floor() as u64;
        let keep_from = current.saturating_sub(FRAMES_KEPT_BEHIND);
        while self.first < keep_from && self.frames.len() > 1 {
            self.frames.pop_front();
            self.first += 1;
        }
    }
}

/// Samples each track at its clock time into [`SpeechFace`] (the speech layer; heads add emotion and life on top)
/// and releases frames the clock has passed.
pub(crate) fn sample_motion_tracks(
    mut commands: Commands,
    mut heads: Query<(
        Entity,
        &PlaybackClock,
        &mut MotionTrack,
        Option<&mut SpeechFace>,
    )>,
) {
    for (entity, clock, mut track, speech) in &mut heads {
        if let Some(frame) = track.sample(clock.time_secs) {
            match speech {
                Some(mut speech) => speech.0 = frame,
                None => {
                    commands.entity(entity).insert(SpeechFace(frame));
                }
            }
        }
        track.release_before(clock.time_secs);
    }
}

/// Entities with a changed speech layer that are not talking heads.
type SpeechOnly = (Without<TalkingHead>, Changed<SpeechFace>);

/// Entities that are not talking heads (an avatar driven by speech alone) publish the speech layer as it is.
pub(crate) fn copy_speech_faces(
    mut faces: Query<(&SpeechFace, &mut FaceCoefficients), SpeechOnly>,
) {
    for (speech, mut face) in &mut faces {
        *face = speech.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jaw(value: f32) -> FaceCoefficients {
        let mut c = FaceCoefficients::default();
        c.weights[17] = value;
        c
    }

    #[test]
    fn samples_interpolate_between_frames() {
        let mut track = MotionTrack::default();
        for i in 0..5 {
            track.push(jaw(i as f32 * 0.1));
        }
        // Frame i sits at the centre of its 40 ms: 0.02 s, 0.06 s, … 0.18 s.
        let at = |track: &MotionTrack, t: f64| track.sample(t).map(|c| c.weights[17]);
        assert_eq!(at(&track, 0.0), Some(0.0));
        assert_eq!(at(&track, 0.02), Some(0.0));
        let between = at(&track, 0.07).unwrap_or(f32::NAN);
        assert!((between - 0.125).abs() < 1e-6, "{between}");
        assert_eq!(at(&track, 0.18), Some(0.4));
        assert_eq!(
            at(&track, 0.21),
            Some(0.4),
            "the newest frame is held until the next one's time"
        );
        assert_eq!(
            at(&track, 0.23),
            None,
            "past the last frame of an unfinished track"
        );
        track.finish();
        assert_eq!(at(&track, 3.0), Some(0.4));
    }

    #[test]
    fn memory_stays_bounded_as_playback_advances() {
        let mut track = MotionTrack::default();
        let frames = 25 * 3600; // an hour of motion, produced ahead and consumed as it plays
        for i in 0..frames {
            track.push(jaw((i % 7) as f32 / 7.0));
            let now = i as f64 / 25.0 - 1.0;
            assert!(track.sample(now.max(0.0)).is_some());
            track.release_before(now);
            // One second of lookahead, the frames kept behind, and one for rounding of the clock.
            assert!(track.frames_held() <= 25 + FRAMES_KEPT_BEHIND as usize + 2);
        }
        assert_eq!(track.frames_produced(), frames);
        // Sampling behind what is held returns the oldest frame kept instead of failing.
        assert!(track.sample(0.0).is_some());
    }

    #[test]
    fn empty_track_has_nothing_to_say() {
        assert_eq!(MotionTrack::default().sample(1.0), None);
    }
}
