//! `arkit_avatar`: a glTF avatar and a tri-plane talking head say the same line side by side.
//!
//! On the right, a `TalkingHead` made from `assets/portraits/astronaut.png` speaks `assets/speech/hello.wav`. On the
//! left, the glTF face `assets/avatars/arkit_head.glb` (the same face as a mesh with the 52 ARKit blendshapes as
//! morph targets, `tools/export_arkit_head.sh`) follows that head: `ArkitFace` copies the head's published
//! `FaceCoefficients` into the mesh's `MorphWeights` every frame, and `follow_head_pose` gives it the head's nods
//! and turns. Any avatar whose morph targets carry ARKit names can be driven the same way.
//!
//! The glTF is loaded by label (its mesh primitive and its texture) and the entities are built here the way Bevy's
//! scene spawner lays them out (`MorphWeights` on the node, `MeshMorphWeights` on the primitive pointing at it):
//! this crate builds Bevy without `reflect_auto_register`, with which spawning the glTF scene itself fails.
//!
//! Once the show has started the example prints where both faces are in the picture
//! (`arkit_avatar: layout {json}`), for tests.
//!
//! ```sh
//! cargo run --release --example arkit_avatar                 # a window, with sound
//! cargo run --release --example arkit_avatar -- --frames 50 --screenshot out/avatar.png --shots 10,15
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use bevy::gltf::GltfAssetLabel;
use bevy::mesh::morph::{MeshMorphWeights, MorphWeights};
use bevy::prelude::*;
use bevy_talking_head::contract::ARKIT_WEIGHT_COUNT;
use bevy_talking_head::prelude::*;
use common::{Options, Preload, SceneCamera, ScriptLine, preload};

const USAGE: &str = "usage: arkit_avatar [options]\n\n\
A glTF avatar with ARKit morph targets (left) follows a tri-plane talking head (right); both say the same line.\n";

/// The glTF face with the 52 ARKit morph targets.
const AVATAR_PATH: &str = "avatars/arkit_head.glb";
/// The portrait of the tri-plane head (the one the avatar was exported from).
const PORTRAIT_PATH: &str = "portraits/astronaut.png";
/// The clip both say, and its words (`assets/speech/README.md`).
const CLIP_PATH: &str = "speech/hello.wav";
const CLIP_WORDS: &str = "Hello, I am a talking head.";

/// Head centres, metres: the avatar on the left, the tri-plane head on the right.
const AVATAR_CENTRE: Vec3 = Vec3::new(-0.17, 1.6, 0.0);
const HEAD_CENTRE: Vec3 = Vec3::new(0.17, 1.6, 0.0);
/// Where the camera is and what it looks at (between the two faces), metres.
const CAMERA: Vec3 = Vec3::new(0.0, 1.56, 0.85);
const LOOK_AT: Vec3 = Vec3::new(0.0, 1.53, 0.0);
/// Vertical field of view, degrees.
const FOV_DEG: f32 = 30.0;
/// Points of the face in head space (metres, +Y up, facing +Z; the glTF's and the tri-plane head's common frame):
/// the middle of the face (between nose and eyes) and the middle of the mouth.
const FACE_POINT: Vec3 = Vec3::new(0.0, -0.04, 0.08);
const MOUTH_POINT: Vec3 = Vec3::new(0.0, -0.076, 0.068);
/// Seconds of silence before the line is said again (in a window).
const PAUSE_SECS: f64 = 1.0;

fn main() -> ExitCode {
    let options = match Options::from_env("arkit_avatar", USAGE, |_, _| Ok(false)) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let mut app = common::example_app(&options, "bevy_talking_head: ARKit avatar");
    app.insert_resource(Settings {
        head_size: options.head_size(384, 96),
        steps_per_ray: if options.is_headless() { 48 } else { 96 },
        looping: !options.is_headless(),
    })
    .insert_resource(ClearColor(Color::srgb(0.05, 0.06, 0.09)))
    .insert_resource(GlobalAmbientLight {
        brightness: 300.0,
        ..default()
    })
    .add_systems(Startup, set_up)
    .add_systems(
        Update,
        (
            follow_head_pose.after(TalkingHeadSystems::Motion),
            print_layout.run_if(common::show_started),
        ),
    );
    common::run(app, &options)
}

#[derive(Resource)]
struct Settings {
    head_size: u32,
    steps_per_ray: u32,
    looping: bool,
}

/// The avatar's face node: it follows the head pose of `head` around its rest transform.
#[derive(Component)]
struct AvatarFace {
    head: Entity,
}

/// The two figures, for [`print_layout`].
#[derive(Component)]
struct Figure(&'static str);

/// Turned about +Y so that its +Z (where faces look) points at the camera.
fn facing_camera(centre: Vec3) -> Transform {
    let to_camera = CAMERA - centre;
    Transform::from_translation(centre)
        .with_rotation(Quat::from_rotation_y(to_camera.x.atan2(to_camera.z)))
}

fn set_up(
    mut commands: Commands,
    settings: Res<Settings>,
    assets: Res<AssetServer>,
    mut preload_list: ResMut<Preload>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    // A back wall, and a simple bust (shoulders, neck) under each face, lit from the front left.
    commands.spawn((
        Mesh3d(meshes.add(Cuboid::new(3.0, 2.0, 0.1))),
        MeshMaterial3d(materials.add(StandardMaterial {
            base_color: Color::srgb(0.16, 0.2, 0.3),
            perceptual_roughness: 0.9,
            ..default()
        })),
        Transform::from_xyz(0.0, 1.6, -0.7),
    ));
    let suit = materials.add(StandardMaterial {
        base_color: Color::srgb(0.85, 0.85, 0.88),
        perceptual_roughness: 0.7,
        ..default()
    });
    let skin = materials.add(StandardMaterial {
        base_color: Color::srgb(0.8, 0.6, 0.5),
        perceptual_roughness: 0.8,
        ..default()
    });
    for figure in [AVATAR_CENTRE, HEAD_CENTRE].map(facing_camera) {
        commands.spawn((
            Mesh3d(meshes.add(Capsule3d::new(0.07, 0.2))),
            MeshMaterial3d(suit.clone()),
            figure
                * Transform::from_xyz(0.0, -0.27, -0.06)
                    .with_rotation(Quat::from_rotation_z(std::f32::consts::FRAC_PI_2)),
        ));
        commands.spawn((
            Mesh3d(meshes.add(Cylinder::new(0.035, 0.14))),
            MeshMaterial3d(skin.clone()),
            figure * Transform::from_xyz(0.0, -0.17, -0.06),
        ));
    }
    commands.spawn((
        DirectionalLight {
            illuminance: 5000.0,
            ..default()
        },
        Transform::from_xyz(-1.0, 3.0, 2.0).looking_at(LOOK_AT, Vec3::Y),
    ));
    commands.spawn((
        SceneCamera,
        Camera3d::default(),
        Projection::Perspective(PerspectiveProjection {
            fov: FOV_DEG.to_radians(),
            ..default()
        }),
        Transform::from_translation(CAMERA).looking_at(LOOK_AT, Vec3::Y),
    ));

    // The tri-plane head on the right.
    let head = commands
        .spawn((
            Name::new("head"),
            Figure("head"),
            TalkingHead::new(preload(&assets, &mut preload_list, PORTRAIT_PATH))
                .with_emotion(Emotion::Happy, 0.5)
                .with_settings(HeadSettings {
                    resolution: settings.head_size,
                    steps_per_ray: settings.steps_per_ray,
                    ..HeadSettings::preset(Quality::Medium)
                }),
            facing_camera(HEAD_CENTRE),
        ))
        .id();

    // The glTF avatar on the left: its mesh primitive (with the morph targets) and its base-colour texture. The
    // material is unlit in the file (KHR_materials_unlit): the texture is the portrait, lighting already in it.
    let mesh: Handle<Mesh> = preload(
        &assets,
        &mut preload_list,
        &GltfAssetLabel::Primitive {
            mesh: 0,
            primitive: 0,
        }
        .from_asset(AVATAR_PATH)
        .to_string(),
    );
    let texture: Handle<Image> = preload(
        &assets,
        &mut preload_list,
        &GltfAssetLabel::Texture(0)
            .from_asset(AVATAR_PATH)
            .to_string(),
    );
    let material = materials.add(StandardMaterial {
        base_color_texture: Some(texture),
        unlit: true,
        ..default()
    });
    let weights = match MorphWeights::new(vec![0.0; ARKIT_WEIGHT_COUNT], Some(mesh.clone())) {
        Ok(weights) => weights,
        Err(error) => {
            common::fail(
                &mut commands,
                format!("the avatar's morph weights: {error}"),
            );
            return;
        }
    };
    // The rest of the head (skull and hair): the file's second mesh, coloured per vertex.
    let shell: Handle<Mesh> = preload(
        &assets,
        &mut preload_list,
        &GltfAssetLabel::Primitive {
            mesh: 1,
            primitive: 0,
        }
        .from_asset(AVATAR_PATH)
        .to_string(),
    );
    let shell_material = materials.add(StandardMaterial {
        unlit: true,
        ..default()
    });
    commands
        .spawn((
            Name::new("avatar"),
            Figure("avatar"),
            facing_camera(AVATAR_CENTRE),
            Visibility::default(),
        ))
        .with_children(|avatar| {
            let face = avatar
                .spawn((
                    AvatarFace { head },
                    ArkitFace::following(head),
                    weights,
                    Transform::default(),
                    Visibility::default(),
                ))
                .id();
            avatar.commands().spawn((
                Mesh3d(mesh),
                MeshMaterial3d(material),
                MeshMorphWeights::Reference(face),
                ChildOf(face),
            ));
            avatar
                .commands()
                .spawn((Mesh3d(shell), MeshMaterial3d(shell_material), ChildOf(face)));
        });

    let line = ScriptLine {
        speaker: head,
        speaker_name: "Both".into(),
        clip: preload(&assets, &mut preload_list, CLIP_PATH),
        clip_name: "hello".into(),
        words: CLIP_WORDS.into(),
        emotion: Emotion::Happy,
        intensity: 0.5,
    };
    common::start_script(
        &mut commands,
        "arkit_avatar",
        Ok(vec![line]),
        PAUSE_SECS,
        settings.looping,
        5.0,
    );
}

/// Gives the avatar's face the head's pose (the rotation and offset the tri-plane head is rendered with), so that
/// it nods and turns with it.
fn follow_head_pose(
    heads: Query<&FaceCoefficients>,
    mut faces: Query<(&AvatarFace, &mut Transform)>,
) {
    for (face, mut transform) in &mut faces {
        let Ok(coefficients) = heads.get(face.head) else {
            continue;
        };
        let [pitch, yaw, roll] = coefficients.head_rotation.to_array();
        if coefficients.head_rotation.is_finite() && coefficients.head_translation.is_finite() {
            transform.rotation = Quat::from_euler(EulerRot::YXZ, yaw, pitch, roll);
            transform.translation = coefficients.head_translation;
        }
    }
}

/// Prints, once, where each figure's face and mouth are in the picture (pixels) and how many pixels a metre
/// spans there: `arkit_avatar: layout {"avatar": {"face": [x, y], "mouth": [x, y], "px_per_m": s}, "head": …}`.
fn print_layout(
    mut printed: Local<bool>,
    cameras: Query<(&Camera, &GlobalTransform), With<SceneCamera>>,
    figures: Query<(&Figure, &GlobalTransform)>,
) {
    if *printed {
        return;
    }
    let Some((camera, camera_transform)) = cameras.iter().next() else {
        return;
    };
    let project = |p: Vec3| camera.world_to_viewport(camera_transform, p).ok();
    let mut entries = Vec::new();
    for (figure, transform) in &figures {
        let face = transform.transform_point(FACE_POINT);
        let mouth = transform.transform_point(MOUTH_POINT);
        let (Some(f), Some(m), Some(side)) = (
            project(face),
            project(mouth),
            project(face + camera_transform.right() * 0.1),
        ) else {
            return;
        };
        entries.push(format!(
            r#""{}": {{"face": [{:.1}, {:.1}], "mouth": [{:.1}, {:.1}], "px_per_m": {:.1}}}"#,
            figure.0,
            f.x,
            f.y,
            m.x,
            m.y,
            (side - f).length() * 10.0
        ));
    }
    entries.sort();
    println!("arkit_avatar: layout {{{}}}", entries.join(", "));
    *printed = true;
}
