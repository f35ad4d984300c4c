//! The bust a [`HeadDisplay::Bust`] head stands on: built from the photo's layers once they are ready, spawned as
//! a child of the head, its neck bent with the head's pose every frame.

use bevy::asset::RenderAssetUsages;
use bevy::mesh::{Indices, PrimitiveTopology};
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};

use crate::head::{HeadDisplay, HeadSource, TalkingHead};
use crate::identity::portrait_head::PortraitHead;
use crate::identity::{BustShape, PortraitLayers, build_bust};
use crate::motion::FaceCoefficients;
use crate::plugin::{head_pose, portrait_layers};

/// The bust under a head shown with [`HeadDisplay::Bust`], on the head's entity: `None` inside when the photo
/// allows no bust (logged once).
#[derive(Component, Debug)]
pub struct HeadBust(Option<SpawnedBust>);

/// A bust in the scene.
#[derive(Debug)]
struct SpawnedBust {
    /// The bust's mesh entity (a child of the head).
    entity: Entity,
    mesh: Handle<Mesh>,
    shape: BustShape,
    /// The head pose the mesh shows.
    shown: (Quat, Vec3),
}

impl HeadBust {
    /// The bust's mesh entity, if the head has a bust.
    pub fn entity(&self) -> Option<Entity> {
        self.0.as_ref().map(|bust| bust.entity)
    }
}

/// Builds and spawns the bust of each head shown as one whose layers are ready; removes it when the display
/// changes.
pub(crate) fn attach_busts(
    mut commands: Commands,
    layer_assets: Res<Assets<PortraitLayers>>,
    mut meshes: Option<ResMut<Assets<Mesh>>>,
    mut materials: Option<ResMut<Assets<StandardMaterial>>>,
    mut images: ResMut<Assets<Image>>,
    heads: Query<(
        Entity,
        &TalkingHead,
        Option<&PortraitHead>,
        Option<&HeadBust>,
    )>,
) {
    for (entity, head, built, bust) in &heads {
        if head.settings.display != HeadDisplay::Bust {
            if let Some(bust) = bust {
                if let Some(child) = bust.entity() {
                    commands.entity(child).despawn();
                }
                commands.entity(entity).remove::<HeadBust>();
            }
            continue;
        }
        if bust.is_some() {
            continue;
        }
        let (Some(meshes), Some(materials)) = (meshes.as_mut(), materials.as_mut()) else {
            continue;
        };
        let Some(layers) = portrait_layers(head, built, &layer_assets) else {
            if matches!(head.source, HeadSource::Asset(_)) {
                warn_once!(
                    "talking_head: HeadDisplay::Bust needs a head made from a portrait; showing the head alone"
                );
            }
            continue;
        };
        let shape = match build_bust(layers) {
            Ok(shape) => shape,
            Err(error) => {
                warn!("talking head {entity}: no bust, the head is shown alone: {error}");
                commands.entity(entity).insert(HeadBust(None));
                continue;
            }
        };
        let mesh = meshes.add(bust_mesh(&shape));
        let texture = images.add(bust_image(&shape));
        let material = materials.add(StandardMaterial {
            base_color_texture: Some(texture),
            unlit: true,
            alpha_mode: AlphaMode::Mask(0.5),
            cull_mode: None,
            double_sided: true,
            ..default()
        });
        let child = commands
            .spawn((
                Name::new("talking_head:bust"),
                Mesh3d(mesh.clone()),
                MeshMaterial3d(material),
                Transform::default(),
                ChildOf(entity),
            ))
            .id();
        commands.entity(entity).insert(HeadBust(Some(SpawnedBust {
            entity: child,
            mesh,
            shape,
            shown: (Quat::IDENTITY, Vec3::ZERO),
        })));
    }
}

/// Bends each bust's neck with its head's pose (only when the pose changed).
pub(crate) fn pose_busts(
    mut meshes: Option<ResMut<Assets<Mesh>>>,
    mut heads: Query<(&mut HeadBust, Option<&FaceCoefficients>)>,
) {
    let Some(meshes) = meshes.as_mut() else {
        return;
    };
    for (mut bust, face) in &mut heads {
        let Some(bust) = bust.0.as_mut() else {
            continue;
        };
        let pose = head_pose(face);
        if pose == bust.shown {
            continue;
        }
        let positions = bust.shape.posed(pose.0, pose.1);
        if let Some(mut mesh) = meshes.get_mut(&bust.mesh) {
            mesh.insert_attribute(Mesh::ATTRIBUTE_POSITION, positions);
        }
        bust.shown = pose;
    }
}

fn bust_mesh(shape: &BustShape) -> Mesh {
    Mesh::new(
        PrimitiveTopology::TriangleList,
        RenderAssetUsages::default(),
    )
    .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, shape.positions.clone())
    .with_inserted_attribute(Mesh::ATTRIBUTE_NORMAL, shape.normals.clone())
    .with_inserted_attribute(Mesh::ATTRIBUTE_UV_0, shape.uvs.clone())
    .with_inserted_indices(Indices::U32(shape.indices.clone()))
}

fn bust_image(shape: &BustShape) -> Image {
    Image::new(
        Extent3d {
            width: shape.texture.width(),
            height: shape.texture.height(),
            depth_or_array_layers: 1,
        },
        TextureDimension::D2,
        shape.texture.as_raw().clone(),
        TextureFormat::Rgba8UnormSrgb,
        RenderAssetUsages::RENDER_WORLD,
    )
}
