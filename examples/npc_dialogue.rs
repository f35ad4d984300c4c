//! `npc_dialogue`: three NPCs in a room take turns speaking, each line with its own voice, emotion and subtitle.
//! The one speaking turns to face the player (the camera); the others turn to look at the speaker. As in RPGs, the
//! dialogue box shows the speaker's portrait: the whole photo talking (`HeadDisplay::Portrait`), moving as the
//! speaker's head in the room does.
//!
//! Each NPC is a `TalkingHead` on a bust made from its photo (`HeadDisplay::Bust`) over simple legs: turning the NPC
//! turns its head, and since heads follow
//! the camera (`HeadView::FollowCamera`), a listener is seen from the side and the speaker from the front. The three
//! faces come from the one shipped portrait (`assets/portraits/astronaut.png`: as is, mirrored, and with a warmer
//! tone). The lines are the committed clips `assets/speech/lines/npc_*.ogg` (`tools/make_example_speech.sh`).
//!
//! ```sh
//! cargo run --release --example npc_dialogue                 # a window, with sound
//! cargo run --release --example npc_dialogue -- --frames 70 --screenshot out/npc.png --shots 20,70
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use bevy::asset::RenderAssetUsages;
use bevy::prelude::*;
use bevy_talking_head::motion::SpeechFace;
use bevy_talking_head::prelude::*;
use common::{Options, Preload, SceneCamera, Script, ScriptLine, preload};

const USAGE: &str = "usage: npc_dialogue [options]\n\n\
Three NPCs take turns with six lines; the speaker faces you, the others look at the speaker.\n";

/// Where the player's eyes are (the camera), metres.
const PLAYER: Vec3 = Vec3::new(0.0, 1.6, 1.7);
/// Height of a head's centre above an NPC's feet, metres.
const HEAD_HEIGHT: f32 = 1.58;
/// How fast NPCs turn: the remaining angle shrinks by this factor per second.
const TURN_RATE: f32 = 7.0;

/// An NPC: name, where it stands, body colour (sRGB), how its face is made from the portrait.
const NPCS: [(&str, Vec3, [u8; 3], Look); 3] = [
    ("Mira", Vec3::new(-0.6, 0.0, 0.0), [140, 40, 40], Look::AsIs),
    (
        "Tova",
        Vec3::new(0.0, 0.0, -0.35),
        [40, 110, 70],
        Look::Mirrored,
    ),
    ("Sel", Vec3::new(0.6, 0.0, 0.0), [60, 70, 150], Look::Warm),
];

/// The dialogue: NPC index, clip, emotion, intensity.
const DIALOGUE: [(usize, &str, Emotion, f32); 6] = [
    (0, "npc_01", Emotion::Angry, 0.8),
    (1, "npc_02", Emotion::Happy, 0.8),
    (2, "npc_03", Emotion::Fear, 0.8),
    (0, "npc_04", Emotion::Sad, 0.7),
    (1, "npc_05", Emotion::Surprised, 0.7),
    (2, "npc_06", Emotion::Contempt, 0.6),
];

/// How an NPC's face is derived from the shipped portrait, so that the three differ a little.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Look {
    AsIs,
    Mirrored,
    Warm,
}

fn main() -> ExitCode {
    let options = match Options::from_env("npc_dialogue", USAGE, |_, _| Ok(false)) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let mut app = common::example_app(&options, "bevy_talking_head: NPC dialogue");
    app.insert_resource(Settings {
        head_size: options.head_size(256, 64),
        looping: !options.is_headless(),
    })
    .insert_resource(ClearColor(Color::srgb(0.02, 0.02, 0.03)))
    .insert_resource(GlobalAmbientLight {
        brightness: 250.0,
        color: Color::srgb(1.0, 0.9, 0.8),
        ..default()
    })
    .add_systems(Startup, set_up)
    .add_systems(Update, (make_faces, turn_npcs, show_speaker_portrait));
    common::run(app, &options)
}

#[derive(Resource)]
struct Settings {
    head_size: u32,
    looping: bool,
}

/// An NPC's root (feet); its body and head are children.
#[derive(Component)]
struct Npc {
    head: Entity,
}

/// An NPC's face in the dialogue box: a second head from the same portrait shown as the whole photo (head and
/// shoulders), with the speech and emotion of the NPC's head in the room.
#[derive(Component)]
struct DialoguePortrait {
    head: Entity,
}

/// The dialogue box's picture: the speaker's [`DialoguePortrait`] texture.
#[derive(Component)]
struct DialogueBox;

/// The dialogue box's picture, as a share of the view: height; its width is 4/5 of that (head and shoulders).
const PORTRAIT_HEIGHT: f32 = 0.24;

/// The shipped portrait and the reserved images of the faces made from it once it has loaded.
#[derive(Resource)]
struct Faces {
    portrait: Handle<Image>,
    derived: Vec<(Handle<Image>, Look)>,
}

fn set_up(
    mut commands: Commands,
    settings: Res<Settings>,
    assets: Res<AssetServer>,
    mut preload_list: ResMut<Preload>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    images: Res<Assets<Image>>,
) {
    // The room: floor, back and side walls, a lantern.
    commands.spawn((
        Mesh3d(meshes.add(Plane3d::default().mesh().size(8.0, 8.0))),
        MeshMaterial3d(matte(&mut materials, Color::srgb(0.3, 0.22, 0.15))),
    ));
    let wall = matte(&mut materials, Color::srgb(0.22, 0.27, 0.36));
    for (position, size) in [
        (Vec3::new(0.0, 1.75, -2.0), Vec3::new(6.0, 3.5, 0.2)),
        (Vec3::new(-3.0, 1.75, 0.5), Vec3::new(0.2, 3.5, 5.0)),
        (Vec3::new(3.0, 1.75, 0.5), Vec3::new(0.2, 3.5, 5.0)),
    ] {
        commands.spawn((
            Mesh3d(meshes.add(Cuboid::from_size(size))),
            MeshMaterial3d(wall.clone()),
            Transform::from_translation(position),
        ));
    }
    commands.spawn((
        Mesh3d(meshes.add(Sphere::new(0.08))),
        MeshMaterial3d(materials.add(StandardMaterial {
            base_color: Color::srgb(1.0, 0.8, 0.4),
            emissive: LinearRgba::rgb(6.0, 4.0, 1.5),
            ..default()
        })),
        Transform::from_xyz(-1.6, 2.4, -1.2),
        PointLight {
            intensity: 400_000.0,
            range: 12.0,
            color: Color::srgb(1.0, 0.85, 0.6),
            ..default()
        },
    ));
    commands.spawn((
        DirectionalLight {
            illuminance: 2500.0,
            ..default()
        },
        Transform::from_xyz(1.0, 4.0, 3.0).looking_at(Vec3::new(0.0, 1.0, 0.0), Vec3::Y),
    ));
    commands.spawn((
        SceneCamera,
        Camera3d::default(),
        Projection::Perspective(PerspectiveProjection {
            fov: 40f32.to_radians(),
            ..default()
        }),
        Transform::from_translation(PLAYER).looking_at(Vec3::new(0.0, 1.42, 0.0), Vec3::Y),
    ));

    let portrait: Handle<Image> = preload(&assets, &mut preload_list, "portraits/astronaut.png");
    let mut derived = Vec::new();
    let mut speakers = Vec::new();
    for (name, position, [r, g, b], look) in NPCS {
        // Derived faces are filled in by `make_faces` once the portrait has loaded; the head waits for them.
        let face = if look == Look::AsIs {
            portrait.clone()
        } else {
            let handle = images.reserve_handle();
            derived.push((handle.clone(), look));
            handle
        };
        let head = commands
            .spawn((
                Name::new(name),
                TalkingHead::new(face.clone()).with_settings(HeadSettings {
                    resolution: settings.head_size,
                    display: HeadDisplay::Bust,
                    ..HeadSettings::preset(Quality::Low)
                }),
                Transform::from_xyz(0.0, HEAD_HEIGHT, 0.0),
            ))
            .id();
        let clothes = matte(&mut materials, Color::srgb_u8(r, g, b));
        commands
            .spawn((
                Npc { head },
                Transform::from_translation(position).with_rotation(facing(position, PLAYER)),
                Visibility::default(),
            ))
            .add_children(&[head])
            .with_children(|npc| {
                // Legs under the bust, which the head's photo gives down to the waist.
                npc.spawn((
                    Mesh3d(meshes.add(Capsule3d::new(0.14, 0.6))),
                    MeshMaterial3d(clothes),
                    Transform::from_xyz(0.0, 0.5, 0.0).with_scale(Vec3::new(1.0, 1.0, 0.65)),
                ));
            });
        commands.spawn((
            Name::new(format!("{name}'s portrait")),
            DialoguePortrait { head },
            TalkingHead::new(face).with_settings(HeadSettings {
                resolution: settings.head_size,
                min_resolution: settings.head_size,
                steps_per_ray: 64,
                view: HeadView::FollowCamera,
                display: HeadDisplay::Portrait(PortraitCrop::HeadAndShoulders),
                expression_base: Default::default(),
            }),
            Visibility::Hidden,
        ));
        speakers.push(head);
    }
    commands.spawn((
        DialogueBox,
        ImageNode::default(),
        Node {
            position_type: PositionType::Absolute,
            left: Val::Percent(2.0),
            bottom: Val::Percent(14.0),
            height: Val::Percent(100.0 * PORTRAIT_HEIGHT),
            aspect_ratio: Some(0.8),
            border: UiRect::all(Val::Px(2.0)),
            ..default()
        },
        BorderColor::all(Color::srgb(0.85, 0.75, 0.5)),
        Visibility::Hidden,
    ));
    commands.insert_resource(Faces { portrait, derived });

    let lines = DIALOGUE
        .iter()
        .map(|&(npc, clip, emotion, intensity)| {
            ScriptLine::new(
                &assets,
                &mut preload_list,
                speakers[npc],
                NPCS[npc].0,
                clip,
                emotion,
                intensity,
            )
        })
        .collect::<Result<Vec<_>, _>>();
    common::start_script(
        &mut commands,
        "npc_dialogue",
        lines,
        0.4,
        settings.looping,
        4.5,
    );
}

/// Once the portrait has loaded, makes the mirrored and the warmer face from it.
fn make_faces(
    mut commands: Commands,
    faces: Option<Res<Faces>>,
    mut images: ResMut<Assets<Image>>,
) {
    let Some(faces) = faces else {
        return;
    };
    let Some(portrait) = images.get(&faces.portrait) else {
        return;
    };
    let Ok(rgba) = portrait
        .clone()
        .try_into_dynamic()
        .map(|image| image.to_rgba8())
    else {
        common::fail(
            &mut commands,
            "the portrait assets/portraits/astronaut.png is not an RGB(A) image".into(),
        );
        commands.remove_resource::<Faces>();
        return;
    };
    let made: Vec<_> = faces
        .derived
        .iter()
        .map(|(handle, look)| {
            let mut face = match look {
                Look::Mirrored => image::imageops::flip_horizontal(&rgba),
                Look::AsIs | Look::Warm => rgba.clone(),
            };
            if *look == Look::Warm {
                for pixel in face.pixels_mut() {
                    let [r, g, b, _] = &mut pixel.0;
                    *r = (f32::from(*r) * 0.9) as u8;
                    *g = (f32::from(*g) * 0.72) as u8;
                    *b = (f32::from(*b) * 0.6) as u8;
                }
            }
            let image = Image::from_dynamic(face.into(), true, RenderAssetUsages::default());
            (handle.clone(), image)
        })
        .collect();
    for (handle, image) in made {
        if let Err(error) = images.insert(&handle, image) {
            common::fail(&mut commands, format!("cannot add a derived face: {error}"));
        }
    }
    commands.remove_resource::<Faces>();
}

/// The dialogue box's picture and visibility.
type DialogueBoxes<'w, 's> = Query<
    'w,
    's,
    (&'static mut ImageNode, &'static mut Visibility),
    (With<DialogueBox>, Without<DialoguePortrait>),
>;

/// The dialogue box shows the speaker's portrait, which speaks the speaker's line with the speaker's emotion; the
/// other portraits are not drawn.
fn show_speaker_portrait(
    script: Res<Script>,
    heads: Query<(&SpeechFace, &TalkingHead), Without<DialoguePortrait>>,
    mut portraits: Query<(
        &DialoguePortrait,
        &mut SpeechFace,
        &mut TalkingHead,
        &mut Visibility,
        Option<&TalkingHeadTexture>,
    )>,
    mut boxes: DialogueBoxes,
) {
    let speaker = script.current().map(|(_, line)| line.speaker);
    let mut shown = None;
    for (portrait, mut face, mut head, mut visibility, texture) in &mut portraits {
        let speaking = Some(portrait.head) == speaker;
        visibility.set_if_neq(if speaking {
            Visibility::Inherited
        } else {
            Visibility::Hidden
        });
        let Ok((speech, original)) = heads.get(portrait.head) else {
            continue;
        };
        face.set_if_neq(*speech);
        if (head.emotion, head.intensity) != (original.emotion, original.intensity) {
            head.set_emotion(original.emotion, original.intensity);
        }
        if speaking {
            shown = texture.map(|t| t.0.clone());
        }
    }
    for (mut image, mut visibility) in &mut boxes {
        visibility.set_if_neq(if shown.is_some() {
            Visibility::Inherited
        } else {
            Visibility::Hidden
        });
        if let Some(texture) = &shown
            && image.image != *texture
        {
            image.image = texture.clone();
        }
    }
}

/// The speaker turns to face the player; the others look at the speaker (at the player when nobody speaks). The
/// eyes get there first (`LookAt`), the body follows.
fn turn_npcs(
    mut commands: Commands,
    time: Res<Time>,
    script: Res<Script>,
    mut npcs: Query<(&Npc, &mut Transform)>,
    looks: Query<&LookAt>,
) {
    let speaker = script.current().map(|(_, line)| line.speaker);
    let speaker_at = npcs
        .iter()
        .find(|(npc, _)| Some(npc.head) == speaker)
        .map(|(_, transform)| transform.translation);
    let blend = 1.0 - (-TURN_RATE * time.delta_secs()).exp();
    for (npc, mut transform) in &mut npcs {
        let (target, look) = match (speaker_at, speaker) {
            (Some(at), Some(head)) if Some(npc.head) != speaker => (at, LookAt::Entity(head)),
            _ => (PLAYER, LookAt::Point(PLAYER)),
        };
        if looks.get(npc.head).ok() != Some(&look) {
            commands.entity(npc.head).insert(look);
        }
        let wanted = facing(transform.translation, target);
        transform.rotation = transform.rotation.slerp(wanted, blend);
    }
}

/// The turn about +Y that points an NPC standing at `from` towards `to` (faces look along the local +Z).
fn facing(from: Vec3, to: Vec3) -> Quat {
    let to = (to - from).with_y(0.0);
    Quat::from_rotation_y(to.x.atan2(to.z))
}

/// A plain, rough material.
fn matte(materials: &mut Assets<StandardMaterial>, color: Color) -> Handle<StandardMaterial> {
    materials.add(StandardMaterial {
        base_color: color,
        perceptual_roughness: 0.9,
        ..default()
    })
}
