//! A head publishes the coefficients of its motion track at its playback clock.

mod common;

use bevy::prelude::*;
use bevy_talking_head::identity::procedural::procedural_head;
use bevy_talking_head::prelude::*;
use common::{headless_app, run_until};

const JAW_OPEN: usize = 17;

#[test]
fn face_coefficients_follow_the_clock() {
    let mut app = headless_app();
    let asset = app
        .world_mut()
        .resource_mut::<Assets<HeadAsset>>()
        .add(procedural_head(16, 8));
    let mut track = MotionTrack::default();
    // Two seconds of a jaw that opens at 0.5 per second; frame i belongs to the centre of its 40 ms.
    for frame in 0..50 {
        let mut c = FaceCoefficients::default();
        c.weights[JAW_OPEN] = (frame as f32 + 0.5) / 25.0 * 0.5;
        track.push(c);
    }
    track.finish();
    let head = app
        .world_mut()
        .spawn((
            TalkingHead::from_asset(asset),
            track,
            PlaybackClock::manual(),
        ))
        .id();

    for clock in [0.3, 0.71, 1.5] {
        if let Some(mut c) = app.world_mut().get_mut::<PlaybackClock>(head) {
            c.time_secs = clock;
        }
        app.update();
        let jaw = app
            .world()
            .get::<FaceCoefficients>(head)
            .expect("coefficients")
            .weights[JAW_OPEN];
        assert!(
            (f64::from(jaw) - clock * 0.5).abs() < 1e-3,
            "jawOpen {jaw} at {clock} s"
        );
    }
    // Frames far behind the clock are gone.
    let held = app
        .world()
        .get::<MotionTrack>(head)
        .expect("track")
        .frames_held();
    assert!(held < 20, "{held} frames still held at 1.5 s");
}

/// A headless app whose time moves 40 ms per update, and a small procedural head asset in it.
fn app_with_40ms_updates() -> (App, Handle<HeadAsset>) {
    let mut app = headless_app();
    app.insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(
        std::time::Duration::from_millis(40),
    ));
    let asset = app
        .world_mut()
        .resource_mut::<Assets<HeadAsset>>()
        .add(procedural_head(16, 8));
    (app, asset)
}

fn clock_of(app: &App, head: Entity) -> PlaybackClock {
    app.world()
        .get::<PlaybackClock>(head)
        .cloned()
        .expect("clock")
}

#[test]
fn a_new_line_restarts_the_clock_and_the_same_line_can_be_said_again() {
    use bevy_kira_audio::AudioSource;
    use bevy_talking_head::ClockSource;

    let (mut app, asset) = app_with_40ms_updates();
    let server = app.world().resource::<AssetServer>().clone();
    let (first, second): (Handle<AudioSource>, Handle<AudioSource>) = (
        server.load("speech/hello.wav"),
        server.load("speech/hello_stereo_44k.wav"),
    );
    let head = app
        .world_mut()
        .spawn((
            TalkingHead::from_asset(asset),
            Speech::silent(first.clone()),
        ))
        .id();
    let clock = |app: &App| clock_of(app, head);
    assert!(
        run_until(&mut app, 600, |app| clock(app).time_secs > 0.8),
        "the first line did not play: {:?}",
        clock(&app)
    );
    let first_duration = clock(&app).duration_secs.expect("duration");

    // Another line: it starts from its beginning once loaded (not where the first one was).
    app.world_mut()
        .entity_mut(head)
        .insert(Speech::silent(second.clone()));
    let started = run_until(&mut app, 600, |app| {
        let c = clock(app);
        c.source == ClockSource::Virtual
            && c.duration_secs
                .is_some_and(|d| (d - first_duration).abs() > 1e-3)
    });
    let c = clock(&app);
    assert!(started, "the second line did not start: {c:?}");
    assert!(
        c.time_secs < 0.2,
        "the second line started at {} s",
        c.time_secs
    );

    // The same line again, after it ended: said again from the start.
    assert!(run_until(&mut app, 600, |app| clock(app).finished()
        && app
            .world()
            .get::<MotionTrack>(head)
            .is_some_and(MotionTrack::is_finished)));
    let full = app
        .world()
        .get::<MotionTrack>(head)
        .expect("track")
        .frames_produced();
    assert!(
        full >= 12,
        "{full} frames of motion for the second line (0.5 s)"
    );
    app.world_mut()
        .entity_mut(head)
        .insert(Speech::silent(second));
    app.update();
    let c = clock(&app);
    assert!(
        !c.finished() && c.time_secs < 0.2,
        "the repeated line did not start over: {c:?}"
    );
    // Its motion is computed again (the first time's frames are gone from the track once played): the track
    // starts empty and fills up to the whole clip again.
    let track = |app: &App| {
        app.world()
            .get::<MotionTrack>(head)
            .expect("track")
            .frames_produced()
    };
    assert!(
        track(&app) < full,
        "the track was not started over ({} frames)",
        track(&app)
    );
    assert!(
        run_until(&mut app, 600, |app| track(app) == full),
        "the repeated line's motion stopped at {} of {full} frames",
        track(&app)
    );
}

#[test]
fn a_new_stream_starts_the_clock_and_motion_over() {
    use bevy_talking_head::ClockSource;
    use bevy_talking_head::audio::SpeechStream;

    let (mut app, asset) = app_with_40ms_updates();
    // Half a second of a 200 Hz tone, then the end of the stream.
    let tone: Vec<f32> = (0..8000)
        .map(|i| 0.3 * (i as f32 * 200.0 * std::f32::consts::TAU / 16_000.0).sin())
        .collect();
    let said = |stream: &mut SpeechStream| {
        stream.push(&tone, 1, 16_000).expect("push");
        stream.finish().expect("finish");
    };
    let mut stream = SpeechStream::new();
    said(&mut stream);
    let head = app
        .world_mut()
        .spawn((TalkingHead::from_asset(asset), stream))
        .id();
    let clock = |app: &App| clock_of(app, head);
    assert!(
        run_until(&mut app, 600, |app| clock(app).finished()),
        "the first stream did not play: {:?}",
        clock(&app)
    );

    // A new, still empty stream: the clock waits for its audio from 0 s.
    app.world_mut().entity_mut(head).insert(SpeechStream::new());
    app.update();
    let c = clock(&app);
    assert_eq!(
        (c.source, c.time_secs, c.duration_secs),
        (ClockSource::Idle, 0.0, None),
        "{c:?}"
    );
    // Its audio arrives: it plays to its end, with its own motion.
    if let Some(mut stream) = app.world_mut().get_mut::<SpeechStream>(head) {
        said(&mut stream);
    }
    assert!(
        run_until(&mut app, 600, |app| clock(app).finished()
            && app
                .world()
                .get::<MotionTrack>(head)
                .is_some_and(MotionTrack::is_finished)),
        "the second stream did not play: {:?}",
        clock(&app)
    );
}

#[test]
fn a_portrait_head_speaks_its_clip() {
    use bevy_talking_head::identity::rig::bases;
    use bevy_talking_head::motion::{MotionEncoding, SpeechMotion};
    use bevy_talking_head::offline::capture_head;

    let mut app = headless_app();
    let server = app.world().resource::<AssetServer>().clone();
    let settings = HeadSettings {
        resolution: 96,
        min_resolution: 96,
        steps_per_ray: 96,
        view: HeadView::Orbit {
            yaw: 0.0,
            pitch: 0.0,
            distance: 0.7,
        },
        display: HeadDisplay::TextureOnly,
        expression_base: Default::default(),
    };
    let head = app
        .world_mut()
        .spawn((
            TalkingHead::new(server.load("portraits/astronaut.png")).with_settings(settings),
            Speech::clip(server.load("speech/hello.wav")),
            // Stepped by the test: the head may take longer to build than the clip lasts.
            PlaybackClock::manual(),
        ))
        .id();
    common::wait_until_ready(&mut app, head, 3000);
    let motion_done = run_until(&mut app, 3000, |app| {
        app.world()
            .get::<SpeechMotion>(head)
            .is_some_and(SpeechMotion::is_done)
    });
    assert!(motion_done, "{:?}", app.world().get::<SpeechMotion>(head));
    let (capture, _) = capture_head(&mut app, head).expect("capture");
    common::first_visible_frame(&mut app, &capture);

    // Over the clip the jaw opens and closes, the motion code follows, and the face in the texture moves.
    let mut jaw_codes = Vec::new();
    let mut worst_code_error = 0.0f32;
    let encoded_before = app.world().resource::<MotionEncoding>().windows_encoded();
    let mut frames = Vec::new();
    let mut time = 0.0;
    let finished = run_until(&mut app, 4000, |app| {
        time += 0.02;
        if let Some(mut clock) = app.world_mut().get_mut::<PlaybackClock>(head) {
            clock.time_secs = time;
        }
        let world = app.world();
        if let (Some(code), Some(face)) = (
            world.get::<MotionCode>(head),
            world.get::<FaceCoefficients>(head),
        ) {
            jaw_codes.push(code.0.first().copied().unwrap_or(0.0));
            // The motion encoder reproduces the rig's mapping of the face shown.
            let mapped = bases::from_arkit(face);
            let off = code
                .0
                .iter()
                .zip(mapped)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            worst_code_error = worst_code_error.max(off);
        }
        let latest = capture.latest();
        if frames
            .last()
            .is_none_or(|f: &bevy_talking_head::offline::CapturedFrame| {
                f.sequence != latest.sequence
            })
        {
            frames.push(latest);
        }
        world
            .get::<PlaybackClock>(head)
            .is_some_and(PlaybackClock::finished)
    });
    assert!(finished, "the clip never finished playing");
    let open = jaw_codes.iter().copied().fold(0.0, f32::max);
    println!(
        "{} updates, jaw code up to {open:.3}, {} frames read back",
        jaw_codes.len(),
        frames.len()
    );
    assert!(open > 0.15, "the jaw never opened (max {open})");
    let encoded = app.world().resource::<MotionEncoding>().windows_encoded() - encoded_before;
    println!(
        "motion encoder: {encoded} windows, codes within {worst_code_error:.4} of the rig's mapping"
    );
    assert!(
        encoded as usize >= jaw_codes.len() - 1,
        "{encoded} windows for {} updates",
        jaw_codes.len()
    );
    assert!(
        worst_code_error < 0.03,
        "codes off the rig's mapping by {worst_code_error}"
    );
    // Fraction of pixels that changed visibly (by more than 0.03 in some channel) against the first frame.
    let changed = |f: &bevy_talking_head::offline::CapturedFrame| {
        let moved = f
            .linear
            .chunks_exact(4)
            .zip(frames[0].linear.chunks_exact(4))
            .filter(|(a, b)| a.iter().zip(*b).any(|(x, y)| (x - y).abs() > 0.03))
            .count();
        moved as f32 / (f.linear.len() / 4) as f32
    };
    let (index, most) = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (i, changed(f)))
        .fold(
            (0, 0.0f32),
            |best, next| if next.1 > best.1 { next } else { best },
        );
    common::save_png("speaking_first", 96, 96, &frames[0].linear);
    common::save_png("speaking_most_open", 96, 96, &frames[index].linear);
    println!("most changed frame: {:.2} % of the pixels", most * 100.0);
    assert!(most > 0.005, "the rendered face did not move: {most}");
}

/// `ArkitFace` copies a head's coefficients into a mesh's morph weights by ARKit name, lists the names the mesh
/// lacks, and reports (without panicking) a mesh without morph targets or an entity without morph weights.
#[test]
fn arkit_faces_drive_morph_targets_by_name() {
    use bevy::asset::RenderAssetUsages;
    use bevy::mesh::PrimitiveTopology;
    use bevy::mesh::morph::{MorphAttributes, MorphWeights};

    let mut app = headless_app();
    let triangle = || {
        Mesh::new(
            PrimitiveTopology::TriangleList,
            RenderAssetUsages::default(),
        )
        .with_inserted_attribute(
            Mesh::ATTRIBUTE_POSITION,
            vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
        )
    };
    let mut morphed = triangle();
    morphed.set_morph_targets(vec![
        MorphAttributes::new(Vec3::Y, Vec3::ZERO, Vec3::ZERO);
        9
    ]);
    morphed.set_morph_target_names(vec![
        "jawOpen".into(),
        "blendShape1.mouthSmileLeft".into(),
        "freckles".into(),
    ]);
    let mut meshes = app.world_mut().resource_mut::<Assets<Mesh>>();
    let morphed = meshes.add(morphed);
    let plain = meshes.add(triangle());

    let mut coefficients = FaceCoefficients::default();
    coefficients.weights[JAW_OPEN] = 0.7;
    coefficients.weights[23] = 0.4; // mouthSmileLeft
    let world = app.world_mut();
    let head = world.spawn(coefficients).id();
    let avatar = world
        .spawn((
            MorphWeights::new(vec![0.0; 3], Some(morphed)).expect("weights"),
            ArkitFace::following(head),
        ))
        .id();
    let no_targets = world
        .spawn((
            MorphWeights::new(vec![0.0; 3], Some(plain)).expect("weights"),
            ArkitFace::following(head),
        ))
        .id();
    let no_weights = world.spawn(ArkitFace::following(head)).id();
    app.update();
    app.update();

    let world = app.world();
    let weights = world
        .get::<MorphWeights>(avatar)
        .expect("weights")
        .weights();
    assert_eq!(weights, &[0.7, 0.4, 0.0]);
    let face = world.get::<ArkitFace>(avatar).expect("face");
    assert_eq!(face.missing().len(), 50);
    assert!(face.problem().is_none(), "{:?}", face.problem());
    let problem = |e| {
        world
            .get::<ArkitFace>(e)
            .and_then(|f| f.problem().map(str::to_owned))
    };
    assert!(problem(no_targets).is_some_and(|p| p.contains("no named morph targets")));
    assert!(problem(no_weights).is_some_and(|p| p.contains("no MorphWeights")));
}

/// A head with `LookAt` turns its eyes towards a point or an entity (the eyeLook weights), saccades around it,
/// and looks ahead again when the component goes or its entity is despawned.
#[test]
fn a_head_looks_at_a_point_or_an_entity() {
    let (mut app, asset) = app_with_40ms_updates();
    let head = app
        .world_mut()
        .spawn((
            TalkingHead::from_asset(asset),
            LookAt::Point(Vec3::new(1.0, 0.0, 1.0)),
        ))
        .id();
    let weight = |app: &App, name: &str| {
        app.world()
            .get::<FaceCoefficients>(head)
            .expect("coefficients")
            .weight(name)
            .expect("a name")
    };
    // Over a few seconds (saccades come and go), the eyes stay turned towards the subject's left, 45° aside
    // (after the first frames, which add the head's expression state and transforms).
    for _ in 0..3 {
        app.update();
    }
    let mut least = f32::MAX;
    for _ in 0..100 {
        app.update();
        least = least
            .min(weight(&app, "eyeLookOutLeft"))
            .min(weight(&app, "eyeLookInRight"));
        assert_eq!(weight(&app, "eyeLookInLeft"), 0.0);
    }
    assert!(least >= 0.7, "the eyes looked aside only {least}");
    // An entity above, straight ahead: the eyes look up, not aside.
    let target = app
        .world_mut()
        .spawn(Transform::from_xyz(0.0, 1.0, 1.0))
        .id();
    app.world_mut()
        .entity_mut(head)
        .insert(LookAt::Entity(target));
    // (its transform reaches the world's at the end of the first frame)
    for _ in 0..2 {
        app.update();
    }
    for _ in 0..50 {
        app.update();
        assert!(weight(&app, "eyeLookUpLeft") >= 0.7);
        assert!(weight(&app, "eyeLookOutLeft") <= 0.3);
    }
    // Its entity gone, the eyes look ahead again (saccades only).
    app.world_mut().entity_mut(target).despawn();
    for _ in 0..50 {
        app.update();
        for name in ["eyeLookUpLeft", "eyeLookOutLeft", "eyeLookInLeft"] {
            assert!(weight(&app, name) <= 0.3, "{name}");
        }
    }
}
