//! A head in a 3D scene: its billboard quad shows the rendered head to an ordinary Bevy camera, and the head is
//! rendered from that camera's direction.

mod common;

use std::sync::{Arc, Mutex};

use bevy::prelude::*;
use bevy::render::gpu_readback::{Readback, ReadbackComplete};
use bevy_talking_head::identity::procedural::procedural_head;
use bevy_talking_head::prelude::*;
use bevy_talking_head::render::HeadRenderJob;
use bevy_talking_head::{HeadBust, HeadOutput};
use common::{headless_app, run_until};

const SIZE: u32 = 128;
const CLEAR: [u8; 3] = [20, 40, 80];
/// Side of the bust test's views, pixels.
const BUST_VIEW: u32 = 192;

#[test]
fn camera_sees_the_head_on_its_billboard_from_its_own_direction() {
    let mut app = headless_app();
    app.insert_resource(ClearColor(Color::srgb_u8(CLEAR[0], CLEAR[1], CLEAR[2])));
    let camera_position = Vec3::new(0.35, 1.7, 0.7);
    let (_, target) = common::camera_into_image(
        &mut app,
        (SIZE, SIZE),
        Transform::from_translation(camera_position).looking_at(Vec3::new(0.0, 1.6, 0.0), Vec3::Y),
    );
    let asset = app
        .world_mut()
        .resource_mut::<Assets<HeadAsset>>()
        .add(procedural_head(48, 24));
    let settings = HeadSettings {
        resolution: 96,
        steps_per_ray: 64,
        ..HeadSettings::preset(Quality::Low)
    };
    let head = app
        .world_mut()
        .spawn((
            TalkingHead::from_asset(asset).with_settings(settings),
            Transform::from_xyz(0.0, 1.6, 0.0),
        ))
        .id();

    let pixels = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = pixels.clone();
    app.world_mut()
        .spawn(Readback::texture(target))
        .observe(move |event: On<ReadbackComplete>| {
            if let Ok(mut p) = sink.lock() {
                *p = event.data.clone();
            }
        });

    let centre_is_face = |p: &[u8]| {
        let i = ((SIZE / 2) * SIZE + SIZE / 2) as usize * 4;
        p.len() > i + 3 && p[i..i + 3] != CLEAR && p[i] > p[i + 2]
    };
    let seen = run_until(&mut app, 3000, |_| {
        pixels.lock().is_ok_and(|p| centre_is_face(&p))
    });
    let image = pixels.lock().map(|p| p.clone()).unwrap_or_default();
    if image.len() >= (SIZE * SIZE * 4) as usize {
        common::save_png_srgb8(
            "scene_billboard",
            SIZE,
            SIZE,
            &image[..(SIZE * SIZE * 4) as usize],
        );
    }
    assert!(
        seen,
        "the camera never saw a face-coloured pixel at the centre of its view"
    );

    // Corners stay background: the quad covers the head, not the view.
    let corner = &image[..3];
    assert_eq!(corner, CLEAR, "corner pixel {corner:?}");

    // The head was rendered from the camera's side: the render camera sits along the camera's direction.
    let job = app.world().get::<HeadRenderJob>(head).expect("render job");
    let from = Vec3::new(
        job.march.origin[0],
        job.march.origin[1],
        job.march.origin[2],
    )
    .normalize();
    let expected = (camera_position - Vec3::new(0.0, 1.6, 0.0)).normalize();
    assert!(
        from.dot(expected) > 0.999,
        "rendered from {from}, camera at {expected}"
    );
}

/// Renders the scene's camera into an image of `size`² and returns the first read-back that `done` accepts (or the
/// last one after `frames` updates).
fn camera_frames(
    app: &mut App,
    size: u32,
    camera: Transform,
    frames: usize,
    mut done: impl FnMut(&[u8]) -> bool,
) -> Vec<u8> {
    let (camera, target) = common::camera_into_image(app, (size, size), camera);
    let pixels = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = pixels.clone();
    let readback = app
        .world_mut()
        .spawn(Readback::texture(target))
        .observe(move |event: On<ReadbackComplete>| {
            if let Ok(mut p) = sink.lock() {
                *p = event.data.clone();
            }
        })
        .id();
    run_until(app, frames, |_| pixels.lock().is_ok_and(|p| done(&p)));
    app.world_mut().despawn(camera);
    app.world_mut().despawn(readback);
    pixels.lock().map(|p| p.clone()).unwrap_or_default()
}

#[test]
fn a_bust_head_stands_on_the_photos_shoulders_from_every_side() {
    let mut app = headless_app();
    app.insert_resource(ClearColor(Color::srgb_u8(CLEAR[0], CLEAR[1], CLEAR[2])));
    let portrait = app
        .world()
        .resource::<AssetServer>()
        .load("portraits/astronaut.png");
    let centre = Vec3::new(0.0, 1.6, 0.0);
    let head = app
        .world_mut()
        .spawn((
            TalkingHead::new(portrait)
                .with_settings(HeadSettings {
                    resolution: 96,
                    steps_per_ray: 48,
                    display: HeadDisplay::Bust,
                    ..HeadSettings::preset(Quality::Low)
                })
                .with_motion(common::frozen()),
            Transform::from_translation(centre),
        ))
        .id();
    common::wait_until_ready(&mut app, head, 3000);
    let bust = run_until(&mut app, 200, |app| {
        app.world()
            .get::<HeadBust>(head)
            .is_some_and(|b| b.entity().is_some())
    });
    assert!(bust, "no bust was attached to the head");

    // The camera 1.2 m away at the head's height, looking at the neck, from the front, the side, behind.
    let look_at = centre - Vec3::Y * 0.15;
    let size = BUST_VIEW as usize;
    let pixel = |p: &[u8], x: usize, y: usize| {
        let i = (y * size + x) * 4;
        [p[i], p[i + 1], p[i + 2]]
    };
    // The column under the view's centre, from the head down: how many pixels are not the clear colour.
    let below_head = |p: &[u8]| {
        (size / 2..size)
            .filter(|&y| pixel(p, size / 2, y) != CLEAR)
            .count()
    };
    for yaw_deg in [0.0f32, 60.0, 90.0, 180.0] {
        let yaw = yaw_deg.to_radians();
        let position = centre + Vec3::new(yaw.sin(), 0.0, yaw.cos()) * 1.2;
        let camera = Transform::from_translation(position).looking_at(look_at, Vec3::Y);
        // The head: the middle of the view's upper third.
        let head_seen = |p: &[u8]| {
            (size / 4..size / 2)
                .filter(|&y| pixel(p, size / 2, y) != CLEAR)
                .count()
        };
        let image = camera_frames(&mut app, BUST_VIEW, camera, 600, |p| {
            p.len() >= size * size * 4 && below_head(p) > size / 4 && head_seen(p) > size / 8
        });
        assert!(image.len() >= size * size * 4, "no frame came back");
        common::save_png_srgb8(
            &format!("scene_bust_{yaw_deg:.0}"),
            BUST_VIEW,
            BUST_VIEW,
            &image[..size * size * 4],
        );
        let covered = below_head(&image);
        println!(
            "yaw {yaw_deg}°: {covered} of {} pixels under the head show the bust",
            size / 2
        );
        // A body under the head, from every side: the lower half of the view's middle column is mostly bust.
        assert!(
            covered > size / 4,
            "yaw {yaw_deg}°: only {covered} pixels under the head are not background"
        );
        if yaw_deg == 0.0 {
            // From the front the bust is the photo's orange suit.
            let chest = pixel(&image, size / 2, size * 7 / 8);
            assert!(
                chest[0] > 120 && chest[0] > chest[2] + 60,
                "the chest is {chest:?}, not the suit's orange"
            );
        }
    }
}

#[test]
fn heads_are_drawn_at_their_size_on_screen_and_not_at_all_off_screen() {
    let mut app = headless_app();
    common::camera_into_image(
        &mut app,
        (SIZE, SIZE),
        Transform::from_xyz(0.0, 1.6, 1.0).looking_at(Vec3::new(0.0, 1.6, 0.0), Vec3::Y),
    );
    let asset = app
        .world_mut()
        .resource_mut::<Assets<HeadAsset>>()
        .add(procedural_head(48, 24));
    let settings = HeadSettings {
        resolution: 256,
        min_resolution: 16,
        steps_per_ray: 32,
        ..HeadSettings::preset(Quality::Low)
    };
    let mut spawn = |position: Vec3, visibility: Visibility| {
        app.world_mut()
            .spawn((
                TalkingHead::from_asset(asset.clone())
                    .with_settings(settings)
                    .with_motion(common::frozen()),
                Transform::from_translation(position),
                visibility,
            ))
            .id()
    };
    // In view near and far, behind the camera, and hidden.
    let near = spawn(Vec3::new(0.0, 1.6, 0.0), Visibility::Inherited);
    let far = spawn(Vec3::new(0.6, 1.6, -5.0), Visibility::Inherited);
    let behind = spawn(Vec3::new(0.0, 1.6, 3.0), Visibility::Inherited);
    let hidden = spawn(Vec3::new(-0.3, 1.6, -1.0), Visibility::Hidden);
    for head in [near, far, behind, hidden] {
        common::wait_until_ready(&mut app, head, 2000);
    }
    run_until(&mut app, 10, |_| false);
    let size = |head: Entity| {
        app.world()
            .get::<HeadOutput>(head)
            .map_or(UVec2::ZERO, HeadOutput::size)
    };
    let drawn = |head: Entity| app.world().get::<HeadRenderJob>(head).is_some();
    println!(
        "image sides: near {}, far {}; drawn: near {}, far {}, behind {}, hidden {}",
        size(near).x,
        size(far).x,
        drawn(near),
        drawn(far),
        drawn(behind),
        drawn(hidden)
    );
    // The near head fills most of the 128² view: its image is about that size, a multiple of 32, below the
    // 256 asked for; the far one is small.
    assert!((96..=192).contains(&size(near).x), "near: {}", size(near));
    assert_eq!(size(near).x % 32, 0);
    assert!(size(far).x <= 32, "far: {}", size(far));
    assert!(drawn(near) && drawn(far));
    assert!(!drawn(behind), "a head behind the camera is drawn");
    assert!(!drawn(hidden), "a hidden head is drawn");
}
