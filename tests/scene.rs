//! A head in a 3D scene: its billboard quad shows the rendered head to an ordinary Bevy camera, and the head is
//! rendered from that camera's direction.

mod common;

use std::sync::{Arc, Mutex};

use bevy::camera::RenderTarget;
use bevy::prelude::*;
use bevy::render::gpu_readback::{Readback, ReadbackComplete};
use bevy::render::render_resource::{TextureFormat, TextureUsages};
use bevy_talking_head::identity::procedural::procedural_head;
use bevy_talking_head::prelude::*;
use bevy_talking_head::render::HeadRenderJob;
use common::{headless_app, run_until};

const SIZE: u32 = 128;
const CLEAR: [u8; 3] = [20, 40, 80];

#[test]
fn camera_sees_the_head_on_its_billboard_from_its_own_direction() {
    let mut app = headless_app();
    app.insert_resource(ClearColor(Color::srgb_u8(CLEAR[0], CLEAR[1], CLEAR[2])));
    let mut target = Image::new_target_texture(SIZE, SIZE, TextureFormat::Rgba8UnormSrgb, None);
    target.texture_descriptor.usage |= TextureUsages::COPY_SRC;
    let target = app.world_mut().resource_mut::<Assets<Image>>().add(target);
    let camera_position = Vec3::new(0.35, 1.7, 0.7);
    app.world_mut().spawn((
        Camera3d::default(),
        RenderTarget::Image(target.clone().into()),
        Transform::from_translation(camera_position).looking_at(Vec3::new(0.0, 1.6, 0.0), Vec3::Y),
    ));
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
