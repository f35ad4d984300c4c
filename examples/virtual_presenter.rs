//! `virtual_presenter`: a presenter on a stage gives a short briefing, with slides on a screen behind her and a
//! camera that slowly swings around the stage.
//!
//! The presenter's head is a `TalkingHead` made from `assets/portraits/astronaut.png`, shown as a billboard on a
//! bust made from the same photo (`HeadDisplay::Bust`), behind a lectern; it follows the camera (`HeadView::FollowCamera`), so as the camera moves around her the head is
//! rendered from the new angle. The slides are bevy_ui nodes rendered by a second camera into a texture on the
//! screen. She speaks the committed clips `assets/speech/lines/presenter_*.ogg`, one per slide.
//!
//! ```sh
//! cargo run --release --example virtual_presenter                 # a window, with sound
//! cargo run --release --example virtual_presenter -- --frames 50 --screenshot out/presenter.png --shots 10,50
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use bevy::camera::RenderTarget;
use bevy::prelude::*;
use bevy::render::render_resource::TextureFormat;
use bevy::ui::UiTargetCamera;
use bevy_talking_head::prelude::*;
use common::{Options, Preload, SceneCamera, Script, ScriptLine, Showtime, preload};

const USAGE: &str = "usage: virtual_presenter [options]\n\n\
A presenter on a stage speaks four lines with slides behind her; the camera swings slowly around her.\n";

/// Where the presenter's head is, metres.
const HEAD_CENTRE: Vec3 = Vec3::new(0.0, 1.85, 0.0);
/// The point the camera looks at.
const LOOK_AT: Vec3 = Vec3::new(0.0, 1.7, -0.8);
/// Camera distance from the presenter, metres, and height.
const CAMERA_DISTANCE: f32 = 2.0;
const CAMERA_HEIGHT: f32 = 1.8;
/// The camera swings ±`SWING` radians around her over `SWING_PERIOD_SECS`.
const SWING: f32 = 0.55;
const SWING_PERIOD_SECS: f32 = 16.0;

/// One slide per line: title, body, background colour (sRGB).
const SLIDES: [(&str, &str, [u8; 3]); 4] = [
    ("Mission briefing", "STS-63 crew update", [24, 52, 120]),
    ("Launch", "Friday, 06:00 at dawn\nPad 39B", [16, 96, 112]),
    (
        "Weather",
        "Clear skies, light wind\nStatus: GO",
        [20, 110, 70],
    ),
    ("Thank you", "Questions?", [70, 40, 120]),
];
/// The clip and emotion of each slide's line.
const LINES: [(&str, Emotion, f32); 4] = [
    ("presenter_01", Emotion::Happy, 0.7),
    ("presenter_02", Emotion::Neutral, 1.0),
    ("presenter_03", Emotion::Happy, 0.5),
    ("presenter_04", Emotion::Happy, 0.9),
];

fn main() -> ExitCode {
    let options = match Options::from_env("virtual_presenter", USAGE, |_, _| Ok(false)) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let mut app = common::example_app(&options, "bevy_talking_head: virtual presenter");
    app.insert_resource(Settings {
        head_size: options.head_size(384, 64),
        steps_per_ray: if options.is_headless() { 48 } else { 96 },
        slide_size: if options.is_headless() {
            UVec2::new(256, 144)
        } else {
            UVec2::new(640, 360)
        },
        looping: !options.is_headless(),
    })
    .insert_resource(ClearColor(Color::srgb(0.04, 0.05, 0.08)))
    .insert_resource(GlobalAmbientLight {
        brightness: 300.0,
        ..default()
    })
    .add_systems(Startup, set_up)
    .add_systems(Update, (swing_camera, show_slide));
    common::run(app, &options)
}

#[derive(Resource)]
struct Settings {
    head_size: u32,
    steps_per_ray: u32,
    slide_size: UVec2,
    looping: bool,
}

/// The slide's background node and its two texts.
#[derive(Component)]
struct SlideBackground;
#[derive(Component)]
struct SlideTitle;
#[derive(Component)]
struct SlideBody;

fn set_up(
    mut commands: Commands,
    settings: Res<Settings>,
    assets: Res<AssetServer>,
    mut preload_list: ResMut<Preload>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    mut images: ResMut<Assets<Image>>,
) {
    let mut solid = |color: Color| {
        materials.add(StandardMaterial {
            base_color: color,
            perceptual_roughness: 0.8,
            ..default()
        })
    };
    // Floor, stage, back wall.
    commands.spawn((
        Mesh3d(meshes.add(Plane3d::default().mesh().size(14.0, 14.0))),
        MeshMaterial3d(solid(Color::srgb(0.13, 0.14, 0.2))),
    ));
    commands.spawn((
        Mesh3d(meshes.add(Cuboid::new(5.0, 0.25, 3.0))),
        MeshMaterial3d(solid(Color::srgb(0.22, 0.2, 0.3))),
        Transform::from_xyz(0.0, 0.125, -0.6),
    ));
    commands.spawn((
        Mesh3d(meshes.add(Cuboid::new(14.0, 6.0, 0.2))),
        MeshMaterial3d(solid(Color::srgb(0.1, 0.12, 0.22))),
        Transform::from_xyz(0.0, 3.0, -3.2),
    ));
    // A lectern in front of her: the bust made from her photo ends at her waist, behind it.
    let wood = solid(Color::srgb(0.32, 0.2, 0.12));
    commands.spawn((
        Mesh3d(meshes.add(Cuboid::new(0.9, 1.05, 0.5))),
        MeshMaterial3d(wood.clone()),
        Transform::from_xyz(0.0, 0.775, 0.35),
    ));
    commands.spawn((
        Mesh3d(meshes.add(Cuboid::new(1.0, 0.05, 0.6))),
        MeshMaterial3d(wood),
        Transform::from_xyz(0.0, 1.32, 0.35).with_rotation(Quat::from_rotation_x(0.15)),
    ));
    // Slides: bevy_ui drawn by their own camera into a texture shown on the screen behind her.
    let slide_texture = images.add(Image::new_target_texture(
        settings.slide_size.x,
        settings.slide_size.y,
        TextureFormat::Bgra8UnormSrgb,
        None,
    ));
    let slide_camera = commands
        .spawn((
            Camera2d,
            Camera {
                order: -1,
                ..default()
            },
            RenderTarget::Image(slide_texture.clone().into()),
        ))
        .id();
    let scale = settings.slide_size.y as f32 / 144.0;
    commands
        .spawn((
            SlideBackground,
            UiTargetCamera(slide_camera),
            Node {
                width: percent(100.0),
                height: percent(100.0),
                flex_direction: FlexDirection::Column,
                padding: UiRect::all(px(12.0 * scale)),
                row_gap: px(8.0 * scale),
                ..default()
            },
            BackgroundColor(Color::BLACK),
        ))
        .with_children(|slide| {
            slide.spawn((
                SlideTitle,
                Text::new(""),
                TextFont::from_font_size(24.0 * scale),
                TextColor(Color::WHITE),
            ));
            slide.spawn((
                SlideBody,
                Text::new(""),
                TextFont::from_font_size(14.0 * scale),
                TextColor(Color::srgb(0.85, 0.9, 1.0)),
            ));
        });
    commands.spawn((
        Mesh3d(meshes.add(Rectangle::new(3.2, 1.8))),
        MeshMaterial3d(materials.add(StandardMaterial {
            base_color_texture: Some(slide_texture),
            unlit: true,
            ..default()
        })),
        Transform::from_xyz(0.0, 2.45, -3.05),
    ));
    commands.spawn((
        Mesh3d(meshes.add(Cuboid::new(3.4, 2.0, 0.05))),
        MeshMaterial3d(materials.add(Color::srgb(0.05, 0.05, 0.06))),
        Transform::from_xyz(0.0, 2.45, -3.09),
    ));

    commands.spawn((
        DirectionalLight {
            illuminance: 6000.0,
            ..default()
        },
        Transform::from_xyz(2.0, 5.0, 4.0).looking_at(Vec3::ZERO, Vec3::Y),
    ));
    let camera = commands
        .spawn((SceneCamera, Camera3d::default(), camera_transform(0.0)))
        .id();

    // She looks into the (orbiting) camera.
    let presenter = commands
        .spawn((
            Name::new("presenter"),
            TalkingHead::new(preload(
                &assets,
                &mut preload_list,
                "portraits/astronaut.png",
            ))
            .with_settings(HeadSettings {
                resolution: settings.head_size,
                steps_per_ray: settings.steps_per_ray,
                display: HeadDisplay::Bust,
                ..HeadSettings::preset(Quality::Medium)
            }),
            Transform::from_translation(HEAD_CENTRE),
            LookAt::Entity(camera),
        ))
        .id();
    let lines = LINES
        .iter()
        .map(|&(clip, emotion, intensity)| {
            ScriptLine::new(
                &assets,
                &mut preload_list,
                presenter,
                "Presenter",
                clip,
                emotion,
                intensity,
            )
        })
        .collect::<Result<Vec<_>, _>>();
    common::start_script(
        &mut commands,
        "virtual_presenter",
        lines,
        0.6,
        settings.looping,
        4.5,
    );
}

/// The camera at show time `secs`: swinging around the stage, always looking at the presenter.
fn camera_transform(secs: f32) -> Transform {
    let yaw = SWING * (secs * std::f32::consts::TAU / SWING_PERIOD_SECS).sin();
    let position = Vec3::new(
        CAMERA_DISTANCE * yaw.sin(),
        CAMERA_HEIGHT,
        CAMERA_DISTANCE * yaw.cos(),
    );
    Transform::from_translation(position).looking_at(LOOK_AT, Vec3::Y)
}

fn swing_camera(
    time: Res<Time>,
    showtime: Res<Showtime>,
    mut cameras: Query<&mut Transform, With<SceneCamera>>,
) {
    let secs = showtime.secs(&time).unwrap_or(0.0) as f32;
    for mut transform in &mut cameras {
        *transform = camera_transform(secs);
    }
}

/// Shows the slide of the line being spoken (the first slide before the first line).
#[allow(clippy::type_complexity)]
fn show_slide(
    script: Res<Script>,
    mut shown: Local<Option<usize>>,
    mut background: Query<&mut BackgroundColor, With<SlideBackground>>,
    mut title: Query<&mut Text, (With<SlideTitle>, Without<SlideBody>)>,
    mut body: Query<&mut Text, (With<SlideBody>, Without<SlideTitle>)>,
) {
    let slide = script.current().map_or(shown.unwrap_or(0), |(i, _)| i) % SLIDES.len();
    if *shown == Some(slide) {
        return;
    }
    *shown = Some(slide);
    let (heading, text, [r, g, b]) = SLIDES[slide];
    for mut color in &mut background {
        color.0 = Color::srgb_u8(r, g, b);
    }
    for mut t in &mut title {
        t.0 = heading.to_string();
    }
    for mut t in &mut body {
        t.0 = text.to_string();
    }
}
