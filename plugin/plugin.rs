//! [`TalkingHeadPlugin`] and its system sets.

use std::sync::Arc;

use bevy::asset::{LoadState, RenderAssetUsages};
use bevy::camera::primitives::{Frustum, Sphere};
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureUsages};
use bevy_kira_audio::{AudioPlugin, AudioSource};

use crate::audio::clock::{Speech, advance_playback, follow_speech_streams, start_speech};
use crate::audio::playback::StreamAudioOutput;
use crate::display::{attach_busts, pose_busts};
use crate::head::{
    HeadDisplay, HeadSource, HeadView, MotionCode, PortraitCrop, TalkingHead, TalkingHeadStatus,
    TalkingHeadTexture,
};
use crate::identity::portrait_head::{PortraitHead, build_portrait_heads};
use crate::identity::{HeadAsset, PortraitLayers};
use crate::inference::{ModelRegistry, Models};
use crate::motion::{
    EmotionLibrary, FaceCoefficients, MotionEncoding, apply_motion_codes, compose_faces,
    copy_speech_faces, drive_arkit_faces, encode_motion_codes, generate_speech_motion,
    look_at_targets, sample_motion_tracks,
};
use crate::render::{
    HEAD_TEXTURE_FORMAT, HeadCamera, HeadRenderJob, MarchOptions, MarchUniform,
    TalkingHeadRenderPlugin, portrait_view, posed_about_pivot,
};

/// Default camera distance for a head with no 3D camera to follow, metres.
const DEFAULT_VIEW_DISTANCE: f32 = 0.6;

/// Adds talking heads to an app: loading and status, speech playback and its clock, motion, and the GPU renderer.
///
/// Works with `DefaultPlugins` and in headless apps (no window; `ScheduleRunnerPlugin`). The audio device is
/// optional: without one, heads follow a virtual clock.
#[derive(Default)]
pub struct TalkingHeadPlugin;

/// The plugin's systems, in the order they run in `Update`.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TalkingHeadSystems {
    /// Output textures and quads for new heads; status from the loading of portraits, assets and clips.
    Load,
    /// Speech playback and each head's clock.
    Playback,
    /// Expression coefficients and motion codes at the clock's time.
    Motion,
    /// Per-head render jobs (camera in head space, motion code) and billboard quads.
    Render,
}

impl Plugin for TalkingHeadPlugin {
    fn build(&self, app: &mut App) {
        if !app.is_plugin_added::<AudioPlugin>() {
            app.add_plugins(AudioPlugin);
        }
        app.init_asset::<HeadAsset>()
            .init_asset::<PortraitLayers>()
            .register_type::<TalkingHeadStatus>()
            .configure_sets(
                Update,
                (
                    TalkingHeadSystems::Load,
                    TalkingHeadSystems::Playback,
                    TalkingHeadSystems::Motion,
                    TalkingHeadSystems::Render,
                )
                    .chain(),
            )
            .init_non_send::<StreamAudioOutput>()
            .init_resource::<EmotionLibrary>()
            .init_resource::<MotionEncoding>()
            .add_systems(Startup, load_models)
            .add_systems(
                Update,
                (
                    (
                        build_portrait_heads,
                        attach_head_outputs,
                        attach_busts,
                        update_head_status,
                    )
                        .chain()
                        .in_set(TalkingHeadSystems::Load),
                    (start_speech, advance_playback, follow_speech_streams)
                        .chain()
                        .in_set(TalkingHeadSystems::Playback),
                    (
                        generate_speech_motion,
                        sample_motion_tracks,
                        ((look_at_targets, compose_faces).chain(), copy_speech_faces),
                        (encode_motion_codes, drive_arkit_faces),
                    )
                        .chain()
                        .in_set(TalkingHeadSystems::Motion),
                    (apply_motion_codes, update_render_jobs, pose_busts)
                        .chain()
                        .in_set(TalkingHeadSystems::Render),
                ),
            )
            .add_plugins(TalkingHeadRenderPlugin);
    }
}

fn load_models(mut commands: Commands) {
    let models = match ModelRegistry::load_default() {
        Ok(registry) => {
            info!(
                "talking_head: models loaded: {}",
                registry.names().collect::<Vec<_>>().join(", ")
            );
            Models::Loaded(Arc::new(registry))
        }
        Err(error) => {
            error!("talking_head: no models: {error}");
            Models::Unavailable(error.to_string())
        }
    };
    commands.insert_resource(models);
}

/// What the plugin made for a head: its image and, for billboards, the quad that shows it.
#[derive(Component, Debug)]
pub struct HeadOutput {
    size: UVec2,
    quad: Option<Entity>,
    material: Option<Handle<StandardMaterial>>,
}

impl HeadOutput {
    /// The billboard quad entity (a child of the head), if the head is displayed as a billboard.
    pub fn quad(&self) -> Option<Entity> {
        self.quad
    }

    /// Width and height of the head's image, pixels.
    pub fn size(&self) -> UVec2 {
        self.size
    }
}

/// The plates' box a portrait display shows.
pub(crate) fn portrait_crop(layers: &PortraitLayers, crop: PortraitCrop) -> URect {
    match crop {
        PortraitCrop::HeadAndShoulders => layers.head_and_shoulders,
        PortraitCrop::Whole => layers.whole(),
        PortraitCrop::Pixels(rect) => layers.plate_rect(rect),
    }
}

/// The image side a head with a quad takes on screen, from its last view (set by the plugin each frame): see
/// [`crate::HeadSettings::min_resolution`].
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadScreenFit(pub u32);

/// Images are fitted to the screen in steps of this many pixels.
const FIT_STEP: u32 = 32;

/// The size of a head's image: `resolution`² for a head alone (with a quad, fitted to its size on screen); for a
/// portrait display whose layers are built, the crop's aspect with `resolution` as the long side (both sides even,
/// as video encoders want them).
fn output_size(
    head: &TalkingHead,
    layers: Option<&PortraitLayers>,
    fit: Option<&HeadScreenFit>,
) -> UVec2 {
    let resolution = head.settings.resolution.clamp(8, 4096);
    if let Some(fit) = fit.filter(|_| head.settings.display.has_quad()) {
        let least = head.settings.min_resolution.clamp(8, resolution);
        return UVec2::splat(fit.0.clamp(least, resolution));
    }
    match (head.settings.display, layers) {
        (HeadDisplay::Portrait(crop), Some(layers)) => {
            let size = portrait_crop(layers, crop).size().as_vec2();
            (size / size.max_element().max(1.0) * resolution as f32 * 0.5)
                .round()
                .as_uvec2()
                .max(UVec2::ONE)
                * 2
        }
        _ => UVec2::splat(resolution),
    }
}

/// The layers of a head shown as a portrait or a bust, once built.
pub(crate) fn portrait_layers<'a>(
    head: &TalkingHead,
    built: Option<&PortraitHead>,
    layers: &'a Assets<PortraitLayers>,
) -> Option<&'a PortraitLayers> {
    if !head.settings.display.uses_layers() {
        return None;
    }
    built
        .and_then(PortraitHead::layers)
        .and_then(|handle| layers.get(handle))
}

/// An image the compute pass can write and materials can sample ([`HEAD_TEXTURE_FORMAT`]).
fn head_image(size: UVec2) -> Image {
    let size = Extent3d {
        width: size.x,
        height: size.y,
        depth_or_array_layers: 1,
    };
    let mut image = Image::new_fill(
        size,
        TextureDimension::D2,
        &[0; 8],
        HEAD_TEXTURE_FORMAT,
        RenderAssetUsages::RENDER_WORLD,
    );
    image.texture_descriptor.usage |=
        TextureUsages::STORAGE_BINDING | TextureUsages::TEXTURE_BINDING | TextureUsages::COPY_SRC;
    image
}

/// Creates (or re-creates, when its size changed) each head's image, and the billboard quad.
#[allow(clippy::type_complexity)]
fn attach_head_outputs(
    mut commands: Commands,
    mut images: ResMut<Assets<Image>>,
    mut meshes: Option<ResMut<Assets<Mesh>>>,
    mut materials: Option<ResMut<Assets<StandardMaterial>>>,
    layers: Res<Assets<PortraitLayers>>,
    mut heads: Query<(
        Entity,
        &TalkingHead,
        Option<&PortraitHead>,
        Option<&HeadScreenFit>,
        Option<&mut HeadOutput>,
    )>,
) {
    for (entity, head, built, fit, output) in &mut heads {
        let size = output_size(head, portrait_layers(head, built, &layers), fit);
        if output.as_ref().is_some_and(|o| o.size == size) {
            continue;
        }
        let texture = images.add(head_image(size));
        commands
            .entity(entity)
            .insert(TalkingHeadTexture(texture.clone()));
        if let Some(mut output) = output {
            output.size = size;
            if let (Some(material), Some(materials)) = (&output.material, materials.as_mut())
                && let Some(mut material) = materials.get_mut(material)
            {
                material.base_color_texture = Some(texture);
            }
            continue;
        }
        let mut output = HeadOutput {
            size,
            quad: None,
            material: None,
        };
        if head.settings.display.has_quad()
            && let (Some(meshes), Some(materials)) = (meshes.as_mut(), materials.as_mut())
        {
            let material = materials.add(StandardMaterial {
                base_color_texture: Some(texture),
                unlit: true,
                alpha_mode: AlphaMode::Premultiplied,
                cull_mode: None,
                ..default()
            });
            let quad = commands
                .spawn((
                    Name::new("talking_head:quad"),
                    Mesh3d(meshes.add(Rectangle::new(1.0, 1.0))),
                    MeshMaterial3d(material.clone()),
                    Transform::default(),
                    ChildOf(entity),
                ))
                .id();
            output.quad = Some(quad);
            output.material = Some(material);
        }
        commands.entity(entity).insert(output);
    }
}

fn load_failure(
    asset_server: &AssetServer,
    id: impl Into<bevy::asset::UntypedAssetId>,
) -> Option<String> {
    let id = id.into();
    match asset_server.get_load_state(id)? {
        LoadState::Failed(error) => Some(without_backtrace(&error.to_string())),
        _ => None,
    }
}

/// Bevy's asset errors append a backtrace ("   1: <frame>" lines); a status keeps only the message.
fn without_backtrace(message: &str) -> String {
    let is_frame = |line: &str| {
        let line = line.trim_start();
        line.split_once(':')
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            || line.starts_with("note: ")
    };
    message
        .lines()
        .take_while(|line| !is_frame(line))
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string()
}

/// Loading → Ready or Failed, from the state of each head's identity source and speech clip.
#[allow(clippy::type_complexity)]
fn update_head_status(
    asset_server: Res<AssetServer>,
    head_assets: Res<Assets<HeadAsset>>,
    clips: Res<Assets<AudioSource>>,
    mut heads: Query<(
        Entity,
        Ref<TalkingHead>,
        Option<&Speech>,
        Option<&PortraitHead>,
        &mut TalkingHeadStatus,
    )>,
) {
    for (entity, head, speech, portrait_head, mut status) in &mut heads {
        if matches!(*status, TalkingHeadStatus::Failed(_)) && !head.is_changed() {
            continue;
        }
        let speech_state = speech.map(|s| {
            if let Some(error) = load_failure(&asset_server, &s.clip) {
                Err(format!("speech clip could not be loaded: {error}"))
            } else {
                Ok(clips.contains(&s.clip))
            }
        });
        let identity_state = match &head.source {
            HeadSource::Asset(handle) => match head_assets.get(handle) {
                Some(asset) => asset
                    .validate()
                    .map(|()| true)
                    .map_err(|e| format!("head asset cannot be rendered: {e}")),
                None => match load_failure(&asset_server, handle) {
                    Some(error) => Err(format!("head asset could not be loaded: {error}")),
                    None => Ok(false),
                },
            },
            HeadSource::Portrait(handle) => match load_failure(&asset_server, handle) {
                Some(error) => Err(format!("portrait could not be loaded: {error}")),
                None => match portrait_head {
                    Some(built) if built.portrait_matches(handle) => {
                        match (built.asset(), built.failure()) {
                            (_, Some(reason)) => Err(reason.to_string()),
                            (Some(asset), None) => Ok(head_assets.contains(asset)),
                            (None, None) => Ok(false),
                        }
                    }
                    _ => Ok(false),
                },
            },
        };
        let next = match (identity_state, speech_state.unwrap_or(Ok(true))) {
            (Err(reason), _) | (_, Err(reason)) => TalkingHeadStatus::Failed(reason),
            (Ok(true), Ok(true)) => TalkingHeadStatus::Ready,
            _ => TalkingHeadStatus::Loading,
        };
        if *status != next {
            if let TalkingHeadStatus::Failed(reason) = &next {
                error!("talking head {entity}: {reason}");
            }
            *status = next;
        }
    }
}

/// Computes each ready head's render job for this frame and turns its billboard towards the camera.
#[allow(clippy::type_complexity)]
fn update_render_jobs(
    mut commands: Commands,
    head_assets: Res<Assets<HeadAsset>>,
    layer_assets: Res<Assets<PortraitLayers>>,
    cameras: Query<(&Camera, &GlobalTransform, &Frustum), With<Camera3d>>,
    options: Option<Res<MarchOptions>>,
    heads: Query<(
        (
            Entity,
            &TalkingHead,
            &TalkingHeadStatus,
            &TalkingHeadTexture,
        ),
        (&MotionCode, &GlobalTransform, Option<&InheritedVisibility>),
        (
            Option<&HeadOutput>,
            Option<&PortraitHead>,
            Option<&FaceCoefficients>,
            Option<&HeadScreenFit>,
        ),
    )>,
    mut quads: Query<&mut Transform>,
) {
    let active = cameras
        .iter()
        .filter(|(camera, ..)| camera.is_active)
        .max_by_key(|(camera, ..)| camera.order);
    let camera = active.map(|(_, transform, _)| transform.translation());
    for (
        (entity, head, status, texture),
        (motion, head_transform, visibility),
        (output, portrait_head, face, fit),
    ) in &heads
    {
        let handle = match (&head.source, portrait_head) {
            (HeadSource::Asset(handle), _) => Some(handle),
            (HeadSource::Portrait(_), Some(built)) => built.asset(),
            (HeadSource::Portrait(_), None) => None,
        };
        let asset = handle
            .filter(|_| *status == TalkingHeadStatus::Ready)
            .and_then(|handle| head_assets.get(handle).map(|a| (handle, a)));
        let Some((handle, asset)) = asset else {
            commands.entity(entity).remove::<HeadRenderJob>();
            continue;
        };
        let radius = asset.half_extent.length();
        // A head on a quad is drawn at its size on screen, and not at all where nothing shows it.
        if head.settings.display.has_quad()
            && let Some((camera, camera_transform, frustum)) = active
        {
            let centre = head_transform.translation();
            let world_radius = radius * head_transform.scale().max_element();
            let sphere = Sphere {
                center: centre.into(),
                radius: world_radius,
            };
            if visibility.is_some_and(|v| !v.get()) || !frustum.intersects_sphere(&sphere, true) {
                commands.entity(entity).remove::<HeadRenderJob>();
                continue;
            }
            let side = screen_side(camera, camera_transform, centre, world_radius);
            let shown = output.map_or(0, |o| o.size.x);
            // Grow at once; shrink only past a step below, so that a head at a step's edge keeps its image.
            if let Some(side) = side
                && (side > shown || side + FIT_STEP < shown)
                && fit.map(|f| f.0) != Some(side)
            {
                commands.entity(entity).insert(HeadScreenFit(side));
            }
        }
        let view = match (head.settings.view, camera) {
            (
                HeadView::Orbit {
                    yaw,
                    pitch,
                    distance,
                },
                _,
            ) => HeadCamera::orbit(yaw, pitch, distance, radius),
            (HeadView::FollowCamera, Some(camera)) => {
                let local = head_transform.affine().inverse().transform_point3(camera);
                HeadCamera::framing(local, radius)
            }
            (HeadView::FollowCamera, None) => {
                HeadCamera::orbit(0.0, 0.0, DEFAULT_VIEW_DISTANCE, radius)
            }
        };
        let pose = head_pose(face);
        let gaze = face.map_or([0.0; 4], FaceCoefficients::eye_turns);
        let size = output.map_or(UVec2::splat(head.settings.resolution), |o| o.size);
        let base = head.settings.expression_base;
        let motion_code = asset.basis_weights(&motion.0, base);
        let layers_handle = portrait_head.and_then(PortraitHead::layers);
        let layers = portrait_layers(head, portrait_head, &layer_assets);
        let march = match (head.settings.display, layers) {
            // The photo's own camera; the head turns about its neck.
            (HeadDisplay::Portrait(crop), Some(layers)) => {
                let crop = portrait_crop(layers, crop);
                let (rotation, translation) = posed_about_pivot(pose.0, pose.1, layers.neck.pivot);
                let view = portrait_view(layers, crop).posed(rotation, translation);
                MarchUniform::new(asset, &view, size.x, size.y, head.settings.steps_per_ray)
                    .with_mouth(asset.mouth_for(base))
                    .with_gaze(gaze)
                    .over_portrait(layers, crop, pose)
            }
            // On a bust the head turns about its neck too, which keeps the chin on the neck.
            (display, layers) => {
                let (rotation, translation) = match (display, layers) {
                    (HeadDisplay::Bust, Some(layers)) => {
                        posed_about_pivot(pose.0, pose.1, layers.neck.pivot)
                    }
                    _ => pose,
                };
                let posed = view.posed(rotation, translation);
                MarchUniform::new(asset, &posed, size.x, size.y, head.settings.steps_per_ray)
                    .with_mouth(asset.mouth_for(base))
                    .with_gaze(gaze)
            }
        };
        let options = options.as_deref().copied().unwrap_or_default();
        let march = if options.skip_empty_space {
            march
        } else {
            march.without_skipping()
        };
        let march = if options.closed_form_decoder {
            march
        } else {
            march.with_dense_decoder()
        };
        commands.entity(entity).insert(HeadRenderJob {
            asset: handle.id(),
            layers: layers_handle.map(Handle::id),
            target: texture.0.id(),
            march,
            motion_code,
        });
        if let Some(mut quad) = output
            .and_then(|o| o.quad)
            .and_then(|q| quads.get_mut(q).ok())
        {
            *quad = billboard(&view, asset.half_extent.z);
        }
    }
}

/// The image side (pixels, a multiple of [`FIT_STEP`]) that shows a sphere of `radius` metres at `centre` at
/// the camera's resolution: its projected diameter, rounded up.
fn screen_side(
    camera: &Camera,
    camera_transform: &GlobalTransform,
    centre: Vec3,
    radius: f32,
) -> Option<u32> {
    let size = camera.physical_viewport_size()?.as_vec2();
    let up = camera_transform.up() * radius;
    let a = camera.world_to_ndc(camera_transform, centre)?;
    let b = camera.world_to_ndc(camera_transform, centre + up)?;
    let diameter = ((b - a).truncate() * size * 0.5).length() * 2.0;
    diameter
        .is_finite()
        .then(|| (diameter.ceil() as u32).div_ceil(FIT_STEP).max(1) * FIT_STEP)
}

/// The head's rigid pose from its coefficients (pitch, yaw, roll in radians; translation in metres), or rest when
/// there are none or they are not finite.
pub(crate) fn head_pose(face: Option<&FaceCoefficients>) -> (Quat, Vec3) {
    face.filter(|face| face.head_rotation.is_finite() && face.head_translation.is_finite())
        .map_or((Quat::IDENTITY, Vec3::ZERO), |face| {
            let [pitch, yaw, roll] = face.head_rotation.to_array();
            (
                Quat::from_euler(EulerRot::YXZ, yaw, pitch, roll),
                face.head_translation,
            )
        })
}

/// The billboard quad's transform (head space) for the head's image rendered by `view` (the view at rest, aimed at
/// the head's centre): facing the camera, moved `lift` metres towards it (the depth of the head's front, so that
/// a neck or a collar inside the head's outline does not cut into the chin) and shrunk to keep the image's size
/// on screen.
fn billboard(view: &HeadCamera, lift: f32) -> Transform {
    let axes = view.axes();
    let distance = (view.target - view.position).length();
    let lift = lift.clamp(0.0, 0.9 * distance);
    Transform {
        translation: view.target - axes.z_axis * lift,
        rotation: Quat::from_mat3(&Mat3::from_cols(axes.x_axis, axes.y_axis, -axes.z_axis)),
        scale: Vec3::splat(view.image_side_at_target() * (distance - lift) / distance.max(1e-6)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backtraces_are_cut_from_load_errors() {
        let raw = "Failed to load asset 'a.wav': malformed stream\n   1: <L as Loader>::load\n   2: run\nnote: noisy";
        assert_eq!(
            without_backtrace(raw),
            "Failed to load asset 'a.wav': malformed stream"
        );
        assert_eq!(
            without_backtrace("Error reading x:\ninvalid signature"),
            "Error reading x: invalid signature"
        );
    }
}
