//! The GPU volume renderer (real WGSL on the machine's adapter, lavapipe on CI) against the CPU reference, and
//! the plugin in a headless app.

mod common;

use bevy::prelude::*;
use bevy_talking_head::identity::ExpressionBase;
use bevy_talking_head::identity::portrait_head::PortraitHead;
use bevy_talking_head::identity::portrait_quality::{head_march, head_pose};
use bevy_talking_head::identity::procedural::{CHEEK_PUFF, JAW_OPEN, SMILE, procedural_head};
use bevy_talking_head::identity::rig::bases;
use bevy_talking_head::motion::{SpeechFace, arkit_index};
use bevy_talking_head::offline::{CapturedFrame, capture_head};
use bevy_talking_head::prelude::*;
use bevy_talking_head::render::empty_space::{cell_index, cell_of};
use bevy_talking_head::render::{
    EmptySpace, HeadCamera, HeadRenderCounts, HeadRenderJob, MarchUniform, ReferenceRenderer,
    WarpReach, blend_bases, decode, displacement_at, linear_to_srgb, render_portrait_reference,
    render_reference,
};
use common::{
    coverage, first_visible_frame, fresh_frame, headless_app, run_until, save_png,
    spawn_captured_head, wait_until_ready,
};

const SIZE: u32 = 64;

fn orbit_settings(yaw_deg: f32, pitch_deg: f32) -> HeadSettings {
    common::orbit_settings(SIZE, yaw_deg, pitch_deg)
}

/// Mean and max absolute difference per channel, in 1/255 units of the 8-bit output: colour compared after the
/// sRGB curve (premultiplied, so faint edges do not blow up), alpha as is.
fn difference(a: &[f32], b: &[f32]) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    let encode = |i: usize, v: f32| if i % 4 == 3 { v } else { linear_to_srgb(v) };
    let mut sum = 0.0f64;
    let mut max = 0.0f64;
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let d = f64::from((encode(i, *x) - encode(i, *y)).abs()) * 255.0;
        sum += d;
        max = max.max(d);
    }
    (sum / a.len() as f64, max)
}

/// Renders `asset` on the CPU with the head's current render job and holds the GPU frame to it.
fn assert_gpu_matches_cpu(
    app: &App,
    head: Entity,
    asset: &HeadAsset,
    frame: &CapturedFrame,
    name: &str,
) {
    let job = app
        .world()
        .get::<HeadRenderJob>(head)
        .expect("a render job");
    let cpu = render_reference(asset, &job.motion_code, &job.march);
    save_png(&format!("gpu_{name}"), SIZE, SIZE, &frame.linear);
    save_png(&format!("cpu_{name}"), SIZE, SIZE, &cpu);
    let (mean, max) = difference(&frame.linear, &cpu);
    println!("{name}: mean |gpu - cpu| = {mean:.4}/255, max = {max:.3}/255");
    assert!(mean < 1.0, "{name}: mean difference {mean}/255");
    assert!(max < 8.0, "{name}: max difference {max}/255");
}

#[test]
fn gpu_matches_cpu_reference_from_three_views_and_two_motion_codes() {
    let mut app = headless_app();
    let asset = procedural_head(64, 32);
    let (head, capture) = spawn_captured_head(&mut app, asset.clone(), orbit_settings(0.0, 0.0));

    let views = [(0.0, 0.0), (35.0, 10.0), (-60.0, -15.0)];
    let codes = [vec![0.0, 0.0, 0.0], vec![1.0, 0.6, 0.8]];
    for (yaw, pitch) in views {
        for code in &codes {
            let mut entity = app.world_mut().entity_mut(head);
            entity.get_mut::<TalkingHead>().expect("head").settings = orbit_settings(yaw, pitch);
            entity.insert(MotionCode(code.clone()));
            let frame = fresh_frame(&mut app, &capture, 3);
            let name = format!("yaw{yaw}_pitch{pitch}_jaw{}", code[0]);
            assert_gpu_matches_cpu(&app, head, &asset, &frame, &name);
            let covered = coverage(&frame);
            assert!(
                (0.15..0.9).contains(&covered),
                "{name}: the head covers {covered:.2} of the image"
            );
        }
    }
}

#[test]
fn a_head_that_holds_still_is_not_redrawn_and_still_shows_its_picture() {
    let mut app = headless_app();
    let asset = procedural_head(64, 32);
    let (head, capture) = spawn_captured_head(&mut app, asset.clone(), orbit_settings(20.0, 0.0));
    let counts = |app: &App| {
        *app.get_sub_app(bevy::render::RenderApp)
            .expect("a render app")
            .world()
            .resource::<HeadRenderCounts>()
    };
    let before = counts(&app);
    let still = fresh_frame(&mut app, &capture, 5);
    let after = counts(&app);
    println!("holding still: {before:?} -> {after:?}");
    assert_eq!(
        after.rendered, before.rendered,
        "a still head was drawn again"
    );
    assert!(after.unchanged >= before.unchanged + 5, "{after:?}");
    // What it shows is still the picture of its current inputs.
    assert_gpu_matches_cpu(&app, head, &asset, &still, "still");

    // Any change draws it again, once.
    app.world_mut()
        .entity_mut(head)
        .insert(MotionCode(vec![1.0, 0.0, 0.0]));
    let moved = fresh_frame(&mut app, &capture, 3);
    let drawn = counts(&app);
    assert_eq!(drawn.rendered, after.rendered + 1, "{after:?} -> {drawn:?}");
    assert_gpu_matches_cpu(&app, head, &asset, &moved, "moved");
}

#[test]
fn motion_code_moves_the_lower_face_only() {
    let mut app = headless_app();
    let (head, capture) =
        spawn_captured_head(&mut app, procedural_head(64, 32), orbit_settings(0.0, 0.0));
    let closed = fresh_frame(&mut app, &capture, 3);

    let mut code = vec![0.0; 3];
    code[JAW_OPEN] = 1.0;
    app.world_mut().entity_mut(head).insert(MotionCode(code));
    let open = fresh_frame(&mut app, &capture, 3);
    save_png("jaw_closed", SIZE, SIZE, &closed.linear);
    save_png("jaw_open", SIZE, SIZE, &open.linear);

    let row_values = SIZE as usize * 4;
    let half = SIZE as usize / 2;
    let (upper_closed, lower_closed) = closed.linear.split_at(half * row_values);
    let (upper_open, lower_open) = open.linear.split_at(half * row_values);
    let (upper_change, _) = difference(upper_closed, upper_open);
    let (lower_change, _) = difference(lower_closed, lower_open);
    println!(
        "jaw open: mean change upper half {upper_change:.3}/255, lower half {lower_change:.3}/255"
    );
    assert!(
        lower_change > 4.0,
        "opening the jaw barely changed the lower face"
    );
    assert!(
        upper_change < lower_change / 4.0,
        "opening the jaw changed the upper face"
    );
    // The other bases are wired too.
    for basis in [SMILE, CHEEK_PUFF] {
        let mut code = vec![0.0; 3];
        code[basis] = 1.0;
        app.world_mut().entity_mut(head).insert(MotionCode(code));
        let moved = fresh_frame(&mut app, &capture, 3);
        assert_ne!(moved.linear, closed.linear, "basis {basis} changed nothing");
    }
}

#[test]
fn headless_app_with_a_clip_becomes_ready_and_renders() {
    let mut app = headless_app();
    let clip = app
        .world()
        .resource::<AssetServer>()
        .load("speech/hello.wav");
    let handle = app
        .world_mut()
        .resource_mut::<Assets<HeadAsset>>()
        .add(procedural_head(48, 24));
    let head = app
        .world_mut()
        .spawn((
            TalkingHead::from_asset(handle).with_settings(HeadSettings {
                display: HeadDisplay::Billboard,
                ..orbit_settings(0.0, 0.0)
            }),
            // Audible: with no audio device (CI) bevy_kira_audio only warns and the clock runs virtually.
            Speech::clip(clip),
        ))
        .id();
    wait_until_ready(&mut app, head, 600);
    let (capture, _) = capture_head(&mut app, head).expect("capture");
    let frame = first_visible_frame(&mut app, &capture);
    assert!(coverage(&frame) > 0.15);

    // The clock runs (virtually here: no audio device) and knows the clip's length.
    let clock = app
        .world()
        .get::<PlaybackClock>(head)
        .expect("clock")
        .clone();
    assert!(clock.time_secs > 0.0, "{clock:?}");
    if std::env::var_os("CI").is_some() {
        assert_eq!(
            clock.source,
            bevy_talking_head::ClockSource::Virtual,
            "{clock:?}"
        );
    }
    assert!(
        clock
            .duration_secs
            .is_some_and(|d| (1.0..10.0).contains(&d)),
        "{clock:?}"
    );

    app.world_mut()
        .entity_mut(head)
        .insert(MotionCode(vec![1.0, 0.0, 0.0]));
    let moved = fresh_frame(&mut app, &capture, 3);
    assert_ne!(
        moved.linear, frame.linear,
        "the texture did not change with the motion code"
    );
    // The billboard quad exists, faces the viewer (+Z for a frontal orbit) and has the head's size.
    let output = app
        .world()
        .get::<bevy_talking_head::HeadOutput>(head)
        .expect("output");
    let quad = output.quad().expect("a billboard quad");
    let transform = app.world().get::<Transform>(quad).expect("quad transform");
    assert!(
        (transform.rotation * Vec3::Z).dot(Vec3::Z) > 0.99,
        "{transform:?}"
    );
    assert!((0.2..0.6).contains(&transform.scale.x), "{transform:?}");
}

fn failed_reason(app: &App, head: Entity) -> Option<String> {
    match app.world().get::<TalkingHeadStatus>(head) {
        Some(TalkingHeadStatus::Failed(reason)) => Some(reason.clone()),
        _ => None,
    }
}

#[test]
fn bad_heads_fail_with_reasons_and_the_app_keeps_running() {
    let mut app = headless_app();
    let server = app.world().resource::<AssetServer>().clone();
    let good = app
        .world_mut()
        .resource_mut::<Assets<HeadAsset>>()
        .add(procedural_head(32, 16));
    let mut broken = procedural_head(32, 16);
    broken.decoder.b2.pop();
    let broken = app
        .world_mut()
        .resource_mut::<Assets<HeadAsset>>()
        .add(broken);

    let world = app.world_mut();
    let missing_portrait = world
        .spawn(TalkingHead::new(
            server.load("portraits/does_not_exist.png"),
        ))
        .id();
    let portrait = world
        .spawn(TalkingHead::new(server.load("test/portrait.png")))
        .id();
    let corrupt_portrait = world
        .spawn(TalkingHead::new(server.load("test/corrupt.png")))
        .id();
    let invalid_asset = world.spawn(TalkingHead::from_asset(broken)).id();
    let missing_clip = world
        .spawn((
            TalkingHead::from_asset(good.clone()),
            Speech::silent(server.load("speech/does_not_exist.ogg")),
        ))
        .id();
    let corrupt_clip = world
        .spawn((
            TalkingHead::from_asset(good.clone()),
            Speech::silent(server.load("test/corrupt.wav")),
        ))
        .id();
    let fine = world
        .spawn(
            TalkingHead::from_asset(good)
                .with_settings(orbit_settings(0.0, 0.0))
                .with_motion(common::frozen()),
        )
        .id();

    let heads = [
        missing_portrait,
        corrupt_portrait,
        portrait,
        invalid_asset,
        missing_clip,
        corrupt_clip,
    ];
    let settled = run_until(&mut app, 600, |app| {
        heads.iter().all(|&h| failed_reason(app, h).is_some())
    });
    for h in heads {
        println!("{h}: {:?}", app.world().get::<TalkingHeadStatus>(h));
    }
    assert!(settled, "not every bad head failed");
    assert!(
        failed_reason(&app, missing_portrait)
            .is_some_and(|r| r.contains("portrait could not be loaded"))
    );
    assert!(failed_reason(&app, portrait).is_some_and(|r| r.contains("16×16 pixels")));
    assert!(
        failed_reason(&app, corrupt_portrait)
            .is_some_and(|r| r.contains("portrait could not be loaded"))
    );
    assert!(failed_reason(&app, invalid_asset).is_some_and(|r| r.contains("decoder.b2")));
    assert!(failed_reason(&app, missing_clip).is_some_and(|r| r.contains("speech clip")));
    assert!(failed_reason(&app, corrupt_clip).is_some_and(|r| r.contains("speech clip")));

    // The good head next to them still renders.
    wait_until_ready(&mut app, fine, 100);
    let (capture, _) = capture_head(&mut app, fine).expect("capture");
    assert!(coverage(&first_visible_frame(&mut app, &capture)) > 0.15);
}

#[test]
fn a_portrait_head_fails_with_the_model_error_when_models_are_unavailable() {
    let mut app = headless_app();
    app.update();
    let reason = "ONNX Runtime 1.31.1 was not found; run tools/setup.sh";
    app.insert_resource(bevy_talking_head::Models::Unavailable(reason.to_string()));
    let portrait = app
        .world()
        .resource::<AssetServer>()
        .load("test/portrait.png");
    let head = app
        .world_mut()
        .spawn(TalkingHead::new(portrait).with_motion(common::frozen()))
        .id();
    let failed = run_until(&mut app, 600, |app| failed_reason(app, head).is_some());
    assert!(failed);
    let message = failed_reason(&app, head).unwrap_or_default();
    assert!(message.contains(reason), "{message}");
    // The app keeps running.
    for _ in 0..5 {
        app.update();
    }
}

#[test]
fn the_whole_photo_renders_the_same_on_gpu_and_cpu() {
    let mut app = headless_app();
    let portrait = app
        .world()
        .resource::<AssetServer>()
        .load("portraits/grace_hopper.jpg");
    let head = app
        .world_mut()
        .spawn(
            TalkingHead::new(portrait)
                .with_settings(HeadSettings {
                    resolution: 80,
                    min_resolution: 80,
                    steps_per_ray: 64,
                    view: HeadView::FollowCamera,
                    display: HeadDisplay::Portrait(PortraitCrop::HeadAndShoulders),
                    expression_base: Default::default(),
                })
                .with_motion(common::frozen()),
        )
        .id();
    wait_until_ready(&mut app, head, 3000);
    let (capture, _) = capture_head(&mut app, head).expect("capture");
    first_visible_frame(&mut app, &capture);
    let mut face = FaceCoefficients::default();
    face.weights[arkit_index("jawOpen").expect("jawOpen")] = 0.6;
    app.world_mut().entity_mut(head).insert(SpeechFace(face));
    let frame = fresh_frame(&mut app, &capture, 3);
    // The head-and-shoulders framing is 4:5: 64×80.
    assert_eq!((frame.width, frame.height), (64, 80));
    let built = app.world().get::<PortraitHead>(head).expect("a built head");
    let (asset, layers) = (
        app.world()
            .resource::<Assets<HeadAsset>>()
            .get(built.asset().expect("asset"))
            .expect("asset")
            .clone(),
        app.world()
            .resource::<Assets<PortraitLayers>>()
            .get(built.layers().expect("layers"))
            .expect("layers")
            .clone(),
    );
    let job = app
        .world()
        .get::<HeadRenderJob>(head)
        .expect("a render job");
    assert!(job.march.is_portrait());
    let cpu = render_portrait_reference(&asset, &layers, &job.motion_code, &job.march);
    save_png("gpu_whole_photo", frame.width, frame.height, &frame.linear);
    save_png("cpu_whole_photo", frame.width, frame.height, &cpu);
    let (mean, max) = difference(&frame.linear, &cpu);
    println!("whole photo: mean |gpu - cpu| = {mean:.4}/255, max = {max:.3}/255");
    assert!(mean < 1.0, "mean difference {mean}/255");
    assert!(max < 8.0, "max difference {max}/255");
    // Opaque everywhere: the photo's background, body and head.
    assert!(frame.linear.chunks_exact(4).all(|p| p[3] > 0.99));
}

#[test]
fn a_portrait_becomes_a_head_that_renders_the_same_on_gpu_and_cpu() {
    // One portrait shows its teeth, the other has closed lips (its open mouth shows synthesized teeth).
    for (path, name) in [
        ("portraits/astronaut.png", "astronaut"),
        ("portraits/grace_hopper.jpg", "grace_hopper"),
    ] {
        portrait_renders_the_same_on_gpu_and_cpu(path, name);
    }
}

fn portrait_renders_the_same_on_gpu_and_cpu(path: &'static str, portrait_name: &str) {
    let mut app = headless_app();
    let portrait = app.world().resource::<AssetServer>().load(path);
    let head = app
        .world_mut()
        .spawn(
            TalkingHead::new(portrait)
                .with_settings(orbit_settings(25.0, 5.0))
                .with_motion(common::frozen()),
        )
        .id();
    wait_until_ready(&mut app, head, 3000);
    let (capture, _) = capture_head(&mut app, head).expect("capture");
    first_visible_frame(&mut app, &capture);
    // A portrait head's motion code comes from its face (the motion encoder), so the jaw is set there; half open,
    // the edges of the mouth's gap blend the face into the interior colour. The last face casts creases (the
    // bases' shade): a smile's folds, lowered brows' furrows, a wrinkled nose; with it the eyes look aside and
    // up at a point (`LookAt`).
    let creases: &[(&str, f32)] = &[
        ("mouthSmileLeft", 1.0),
        ("mouthSmileRight", 1.0),
        ("browDownLeft", 1.0),
        ("browDownRight", 1.0),
        ("noseSneerLeft", 1.0),
    ];
    let mut rest_code = None;
    for (weights, name) in [
        (&[][..], "rest"),
        (&[("jawOpen", 0.5)][..], "jaw_half_open"),
        (&[("jawOpen", 1.0)][..], "jaw_open"),
        (creases, "creases"),
    ] {
        let mut face = FaceCoefficients::default();
        for &(weight, value) in weights {
            face.weights[arkit_index(weight).expect(weight)] = value;
        }
        app.world_mut().entity_mut(head).insert(SpeechFace(face));
        if name == "creases" {
            let point = LookAt::Point(Vec3::new(0.6, 0.3, 1.0));
            app.world_mut().entity_mut(head).insert(point);
        }
        let frame = fresh_frame(&mut app, &capture, 3);
        let code = app
            .world()
            .get::<MotionCode>(head)
            .expect("a code")
            .0
            .clone();
        match &rest_code {
            None => rest_code = Some(code),
            Some(rest) => assert_ne!(&code, rest, "{name}: the face did not move the head"),
        }
        let handle = app
            .world()
            .get::<PortraitHead>(head)
            .and_then(|p| p.asset().cloned())
            .expect("a built head");
        let asset = app
            .world()
            .resource::<Assets<HeadAsset>>()
            .get(&handle)
            .expect("asset")
            .clone();
        assert_gpu_matches_cpu(
            &app,
            head,
            &asset,
            &frame,
            &format!("{portrait_name}_{name}"),
        );
        if name == "creases" {
            let gaze = app
                .world()
                .get::<HeadRenderJob>(head)
                .expect("a job")
                .march
                .gaze;
            assert!(
                gaze[0] > 0.2 && gaze[2] > 0.2,
                "the eyes did not turn: {gaze:?}"
            );
        }
        assert!(
            coverage(&frame) > 0.1,
            "{name}: coverage {}",
            coverage(&frame)
        );
    }
}

/// Random points of cells whose clearance exceeds how far a motion code moves points there: the decoder gives them
/// no density wherever that code's warp sends them (the empty space is conservative).
#[test]
fn empty_space_is_empty_under_any_motion_within_its_bound() {
    let (_, built) = common::built_portrait("astronaut.png");
    let mut rng = common::Lcg(7);
    for asset in [procedural_head(48, 24), built.asset] {
        let space = EmptySpace::bake(&asset);
        let half = asset.half_extent;
        let empty = space.clearance.iter().filter(|&&c| c > 0.0).count();
        println!("{} of {} cells clear", empty, space.clearance.len());
        assert!(
            empty * 4 > space.clearance.len(),
            "too little empty space found"
        );
        for trial in 0..6 {
            let code: Vec<f32> = (0..asset.basis_count)
                .map(|k| {
                    if k % 3 == trial % 3 {
                        rng.below(1001) as f32 / 1000.0
                    } else {
                        0.0
                    }
                })
                .collect();
            let blended = blend_bases(&asset, &code);
            let reach = WarpReach::new(&asset, &blended);
            let mut checked = 0;
            while checked < 3000 {
                let u = Vec3::new(
                    rng.below(20001) as f32 / 10000.0 - 1.0,
                    rng.below(20001) as f32 / 10000.0 - 1.0,
                    rng.below(20001) as f32 / 10000.0 - 1.0,
                );
                let cell = cell_of(u * half, half);
                if space.clearance[cell_index(cell)] <= reach.at(cell) {
                    continue;
                }
                checked += 1;
                let warp = displacement_at(&asset, &blended, u);
                let density = decode(&asset, u + warp.truncate()).w;
                assert!(
                    density == 0.0,
                    "density {density} at {u}, reach {}",
                    reach.at(cell)
                );
            }
        }
    }
}

/// Skipping the empty space changes no pixel, alone or over the photo, at rest and speaking, from several views.
#[test]
fn skipping_the_empty_space_draws_the_same_picture() {
    let asset = procedural_head(48, 24);
    for (yaw, pitch, code) in [
        (0.0f32, 0.0f32, vec![0.0, 0.0, 0.0]),
        (35.0, 10.0, vec![1.0, 0.6, 0.0]),
        (-120.0, -20.0, vec![0.3, 0.0, 1.0]),
    ] {
        let camera = HeadCamera::orbit(
            yaw.to_radians(),
            pitch.to_radians(),
            0.6,
            asset.half_extent.length(),
        );
        let march = MarchUniform::new(&asset, &camera, 48, 48, 64);
        let started = std::time::Instant::now();
        let skipped = render_reference(&asset, &code, &march);
        let fast = started.elapsed();
        let started = std::time::Instant::now();
        let every = render_reference(&asset, &code, &march.without_skipping());
        println!(
            "yaw {yaw}: {fast:?} skipping vs {:?} every sample",
            started.elapsed()
        );
        assert_eq!(skipped, every, "yaw {yaw}");
    }
    // The astronaut's head over her photo, the jaw open and the head turned.
    let (_, built) = common::built_portrait("astronaut.png");
    let (asset, layers) = (&built.asset, &built.layers);
    let renderer = ReferenceRenderer::new(asset);
    let crop = layers.head_and_shoulders;
    let pose = head_pose(12.0, -4.0, 3.0);
    let mut code = vec![0.0; asset.basis_count];
    code[bases::JAW_OPEN] = 0.9;
    code[bases::SMILE_LEFT] = 0.5;
    let code = asset.basis_weights(&code, ExpressionBase::Neutral);
    let alone = head_march(asset, layers, ExpressionBase::Neutral, pose, crop, (96, 64));
    let whole = alone.over_portrait(layers, crop, pose);
    assert_eq!(
        renderer.render(&code, &alone),
        renderer.render(&code, &alone.without_skipping())
    );
    assert_eq!(
        renderer.render_portrait(layers, &code, &whole),
        renderer.render_portrait(layers, &code, &whole.without_skipping())
    );
    // A constructed head's decoder in closed form draws what its dense MLP draws (to rounding).
    let draw = |march: &MarchUniform| {
        if march.is_portrait() {
            renderer.render_portrait(layers, &code, march)
        } else {
            renderer.render(&code, march)
        }
    };
    for (name, march) in [("alone", alone), ("whole photo", whole)] {
        let closed = draw(&march);
        let dense = draw(&march.with_dense_decoder());
        let worst = closed
            .iter()
            .zip(&dense)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!("{name}: closed form vs dense decoder, largest difference {worst:e}");
        assert!(worst < 1e-3, "{name}: {worst}");
    }
}
