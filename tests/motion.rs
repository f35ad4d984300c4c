//! A head publishes the coefficients of its motion track at its playback clock.

mod common;

use bevy::prelude::*;
use bevy_talking_head::audio::SpeechStream;
use bevy_talking_head::identity::procedural::procedural_head;
use bevy_talking_head::prelude::*;
use common::{headless_app, run_until};

const JAW_OPEN: usize = 17;

#[test]
fn face_coefficients_follow_the_stream_clock() {
    let mut app = headless_app();
    let asset = app
        .world_mut()
        .resource_mut::<Assets<HeadAsset>>()
        .add(procedural_head(16, 8));
    let mut track = MotionTrack::default();
    // Two seconds of a jaw that opens at 0.5 per second.
    for frame in 0..50 {
        let mut c = FaceCoefficients::default();
        c.weights[JAW_OPEN] = frame as f32 / 25.0 * 0.5;
        track.push(c);
    }
    track.finish();
    let mut stream = SpeechStream::new();
    stream
        .push(&vec![0.0; 48_000], 1, 24_000)
        .expect("push two seconds");
    stream.finish().expect("finish");
    let head = app
        .world_mut()
        .spawn((TalkingHead::from_asset(asset), stream, track))
        .id();

    let moved = run_until(&mut app, 2000, |app| {
        app.world()
            .get::<PlaybackClock>(head)
            .is_some_and(|c| c.time_secs > 0.3)
    });
    assert!(moved, "the stream clock did not advance");
    // The frame after the clock moved: coefficients were sampled at the clock's time of that update.
    let clock = app
        .world()
        .get::<PlaybackClock>(head)
        .expect("clock")
        .time_secs;
    let jaw = app
        .world()
        .get::<FaceCoefficients>(head)
        .expect("coefficients")
        .weights[JAW_OPEN];
    assert!(
        (f64::from(jaw) - clock * 0.5).abs() < 1e-3,
        "jawOpen {jaw} at {clock} s"
    );
    // Frames far behind the clock are gone.
    let held = app
        .world()
        .get::<MotionTrack>(head)
        .expect("track")
        .frames_held();
    assert!(held < 50, "{held} frames still held at {clock} s");
}
