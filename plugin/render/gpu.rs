//! Render-world side: head assets on the GPU, pipelines, per-head buffers and the compute dispatch.

use std::num::NonZeroU64;

use bevy::asset::{AssetId, uuid_handle};
use bevy::ecs::system::SystemParamItem;
use bevy::ecs::system::lifetimeless::SRes;
use bevy::prelude::*;
use bevy::render::render_asset::{
    PrepareAssetError, RenderAsset, RenderAssetPlugin, RenderAssets, prepare_assets,
};
use bevy::render::render_resource::binding_types::{
    storage_buffer_read_only_sized, storage_buffer_sized, texture_storage_2d,
};
use bevy::render::render_resource::*;
use bevy::render::renderer::{RenderContext, RenderDevice, RenderGraph, RenderQueue};
use bevy::render::texture::GpuImage;
use bevy::render::{Render, RenderApp, RenderStartup, RenderSystems};
use bevy::shader::{Shader, ShaderDefVal};

use super::empty_space::{CELLS, EmptySpace};
use super::{HeadRenderJob, MarchUniform};
use crate::identity::construct::{COLOUR_SLOPE, DENSITY_SCALE, decodes_in_closed_form};
use crate::identity::layers::{SMEAR, STEEPNESS_UNIT};
use crate::identity::{
    EYE_FADE, EYEBALL_SHOWN, HeadAsset, MAX_CHANNELS, MAX_HIDDEN, MOUTH_INTERIOR, OPENING_FULL,
    OPENING_START, PortraitLayers, SHADE_RANGE, TEETH, TEETH_LIT_GAP, TEETH_SHOW, TOOTH_LENGTHS,
    TOOTH_WIDTHS,
};

/// The embedded volume-rendering shader (`shaders/head_march.wgsl`).
const MARCH_SHADER: Handle<Shader> = uuid_handle!("3f0b5a9e-6a41-4c57-9d0e-1b7f2e8a5c31");
/// Threads per workgroup of the `blend` entry point.
const BLEND_WORKGROUP: u32 = 64;
/// Side of the `march_rays` workgroup.
const MARCH_WORKGROUP: u32 = 8;
/// Format the compute pass writes: premultiplied linear RGBA in half floats, which materials and UI sample as is.
pub const HEAD_TEXTURE_FORMAT: TextureFormat = TextureFormat::Rgba16Float;

/// `shaders/head_march.wgsl` behind the constants it shares with the CPU reference renderer, written from the
/// Rust ones.
fn shader_source() -> String {
    let [r, g, b] = MOUTH_INTERIOR;
    let [tr, tg, tb] = TEETH;
    let teeth = TOOTH_WIDTHS.len();
    let [smear_from, smear_to] = SMEAR;
    let [shade_from, shade_to] = SHADE_RANGE;
    let list = |values: &[f32]| {
        values
            .iter()
            .map(|v| format!("{v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "const EMPTY_SPACE_CELLS: u32 = {CELLS}u;\n\
         const MAX_CHANNELS: u32 = {MAX_CHANNELS}u;\n\
         const MAX_HIDDEN: u32 = {MAX_HIDDEN}u;\n\
         const OPENING_START: f32 = {OPENING_START:?};\n\
         const OPENING_FULL: f32 = {OPENING_FULL:?};\n\
         const MOUTH_INTERIOR: vec3<f32> = vec3<f32>({r:?}, {g:?}, {b:?});\n\
         const TEETH: vec3<f32> = vec3<f32>({tr:?}, {tg:?}, {tb:?});\n\
         const TEETH_SHOW: f32 = {TEETH_SHOW:?};\n\
         const TEETH_LIT_GAP: f32 = {TEETH_LIT_GAP:?};\n\
         const TOOTH_COUNT: u32 = {teeth}u;\n\
         const STEEPNESS_UNIT: f32 = {STEEPNESS_UNIT:?};\n\
         const SMEAR: vec2<f32> = vec2<f32>({smear_from:?}, {smear_to:?});\n\
         const SHADE_RANGE: vec2<f32> = vec2<f32>({shade_from:?}, {shade_to:?});\n\
         const EYE_FADE: f32 = {EYE_FADE:?};\n\
         const DENSITY_SCALE: f32 = {DENSITY_SCALE:?};\n\
         const COLOUR_SLOPE: f32 = {COLOUR_SLOPE:?};\n\
         const EYEBALL_SHOWN: f32 = {EYEBALL_SHOWN:?};\n\
         const TOOTH_WIDTHS = array<f32, {teeth}>({});\n\
         const TOOTH_LENGTHS = array<f32, {teeth}>({});\n\
         {}",
        list(&TOOTH_WIDTHS),
        list(&TOOTH_LENGTHS),
        include_str!("../../shaders/head_march.wgsl")
    )
}

/// Adds the GPU volume renderer to the render app (no-op in apps without rendering).
pub struct TalkingHeadRenderPlugin;

impl Plugin for TalkingHeadRenderPlugin {
    fn build(&self, app: &mut App) {
        let shader =
            Shader::from_wgsl(shader_source(), "bevy_talking_head/shaders/head_march.wgsl");
        if let Some(mut shaders) = app.world_mut().get_resource_mut::<Assets<Shader>>() {
            // Inserting under a fixed id cannot fail for a uuid handle; ignore the Result explicitly.
            let _ = shaders.insert(MARCH_SHADER.id(), shader);
        }
        super::build_extraction(app);
        app.add_plugins((
            RenderAssetPlugin::<GpuHeadAsset>::default(),
            RenderAssetPlugin::<GpuPortraitLayers>::default(),
        ));
        let Some(render_app) = app.get_sub_app_mut(RenderApp) else {
            return;
        };
        render_app
            .init_resource::<HeadRenderCounts>()
            .add_systems(RenderStartup, init_head_pipeline)
            .add_systems(
                Render,
                prepare_head_bind_groups
                    .in_set(RenderSystems::PrepareBindGroups)
                    .after(prepare_assets::<GpuHeadAsset>)
                    .after(prepare_assets::<GpuPortraitLayers>)
                    .after(prepare_assets::<GpuImage>),
            )
            .add_systems(RenderGraph, march_heads);
    }
}

/// A head asset's features, bases, decoder and empty space in GPU storage buffers.
pub struct GpuHeadAsset {
    triplane: Buffer,
    bases: Buffer,
    decoder: Buffer,
    clearance: Buffer,
    motion_texels: u32,
    /// The decoder is the constructed heads' one (the shader's `CONSTRUCTED_DECODER`).
    closed_form: bool,
}

impl RenderAsset for GpuHeadAsset {
    type SourceAsset = HeadAsset;
    type Param = SRes<RenderDevice>;

    fn byte_len(asset: &HeadAsset) -> Option<usize> {
        Some(asset.gpu_bytes())
    }

    fn prepare_asset(
        asset: HeadAsset,
        _id: AssetId<HeadAsset>,
        device: &mut SystemParamItem<Self::Param>,
        _previous: Option<&Self>,
    ) -> Result<Self, PrepareAssetError<HeadAsset>> {
        if let Err(error) = asset.validate() {
            // The main world reports invalid assets through TalkingHeadStatus; nothing to upload.
            warn_once!("talking_head: not uploading an invalid head asset: {error}");
            return Err(PrepareAssetError::RetryNextUpdate(asset));
        }
        let storage = |label: &str, contents: &[u8]| {
            device.create_buffer_with_data(&BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: BufferUsages::STORAGE,
            })
        };
        let bases: &[u8] = if asset.motion_bases.is_empty() {
            // A storage binding may not be empty.
            &[0u8; 8]
        } else {
            bytemuck::cast_slice(&asset.motion_bases)
        };
        let m = asset.motion_resolution as u32;
        let space = EmptySpace::bake(&asset);
        Ok(Self {
            clearance: storage(
                "talking_head:buffer:clearance",
                bytemuck::cast_slice(&space.clearance),
            ),
            triplane: storage(
                "talking_head:buffer:triplane",
                bytemuck::cast_slice(&asset.triplane),
            ),
            bases: storage("talking_head:buffer:motion_bases", bases),
            decoder: storage(
                "talking_head:buffer:decoder",
                bytemuck::cast_slice(&asset.decoder_buffer()),
            ),
            motion_texels: 3 * m * m,
            closed_form: decodes_in_closed_form(&asset),
        })
    }
}

/// A portrait's face, body and background plates in one GPU storage buffer (the shader's `plates`).
pub struct GpuPortraitLayers {
    plates: Buffer,
}

impl RenderAsset for GpuPortraitLayers {
    type SourceAsset = PortraitLayers;
    type Param = SRes<RenderDevice>;

    fn byte_len(layers: &PortraitLayers) -> Option<usize> {
        Some(layers.gpu_bytes())
    }

    fn prepare_asset(
        layers: PortraitLayers,
        _id: AssetId<PortraitLayers>,
        device: &mut SystemParamItem<Self::Param>,
        _previous: Option<&Self>,
    ) -> Result<Self, PrepareAssetError<PortraitLayers>> {
        if let Err(error) = layers.validate() {
            warn_once!("talking_head: not uploading invalid portrait layers: {error}");
            return Err(PrepareAssetError::RetryNextUpdate(layers));
        }
        let contents = layers.gpu_words();
        Ok(Self {
            plates: device.create_buffer_with_data(&BufferInitDescriptor {
                label: Some("talking_head:buffer:plates"),
                contents: bytemuck::cast_slice(&contents),
                usage: BufferUsages::STORAGE,
            }),
        })
    }
}

/// Pipelines and bind group layout of the volume renderer.
#[derive(Resource)]
struct HeadPipeline {
    layout: BindGroupLayoutDescriptor,
    blend: CachedComputePipelineId,
    /// `reach_cells`: how far this frame's motion moves points, per cell footprint.
    reach: CachedComputePipelineId,
    /// `march_rays` for each [`MarchVariant`].
    march: [CachedComputePipelineId; 4],
    /// Bound as the plates of heads drawn alone.
    no_plates: Buffer,
}

fn init_head_pipeline(
    mut commands: Commands,
    pipeline_cache: Res<PipelineCache>,
    device: Res<RenderDevice>,
) {
    let uniform_size = NonZeroU64::new(size_of::<MarchUniform>() as u64);
    let layout = BindGroupLayoutDescriptor::new(
        "talking_head:bind_group_layout:march",
        &BindGroupLayoutEntries::sequential(
            ShaderStages::COMPUTE,
            (
                storage_buffer_read_only_sized(false, uniform_size),
                storage_buffer_read_only_sized(false, None),
                storage_buffer_read_only_sized(false, None),
                storage_buffer_read_only_sized(false, None),
                storage_buffer_read_only_sized(false, None),
                storage_buffer_sized(false, None),
                texture_storage_2d(HEAD_TEXTURE_FORMAT, StorageTextureAccess::WriteOnly),
                storage_buffer_read_only_sized(false, None),
                storage_buffer_read_only_sized(false, None),
                storage_buffer_sized(false, None),
            ),
        ),
    );
    let queue = |label: &'static str, entry_point: &'static str, defs: Vec<ShaderDefVal>| {
        pipeline_cache.queue_compute_pipeline(ComputePipelineDescriptor {
            label: Some(label.into()),
            layout: vec![layout.clone()],
            shader: MARCH_SHADER,
            shader_defs: defs,
            entry_point: Some(entry_point.into()),
            ..default()
        })
    };
    let blend = queue("talking_head:pipeline:blend", "blend", Vec::new());
    let reach = queue("talking_head:pipeline:reach", "reach_cells", Vec::new());
    let march = [0, 1, 2, 3].map(|index| {
        let variant = MarchVariant::from_index(index);
        let mut defs: Vec<ShaderDefVal> = Vec::new();
        if variant.portrait {
            defs.push("PORTRAIT".into());
        }
        if variant.closed_form {
            defs.push("CONSTRUCTED_DECODER".into());
        }
        queue("talking_head:pipeline:march", "march_rays", defs)
    });
    let no_plates = device.create_buffer_with_data(&BufferInitDescriptor {
        label: Some("talking_head:buffer:no_plates"),
        contents: &[0u8; 16],
        usage: BufferUsages::STORAGE,
    });
    commands.insert_resource(HeadPipeline {
        layout,
        blend,
        reach,
        march,
        no_plates,
    });
}

/// Which specialisation of `march_rays` draws a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MarchVariant {
    /// Over a portrait's plates (the shader's `PORTRAIT`).
    portrait: bool,
    /// With the constructed heads' decoder in closed form (`CONSTRUCTED_DECODER`,
    /// [`crate::identity::construct::closed_form_decode`]): on lavapipe the dense MLP took most of a frame.
    closed_form: bool,
}

impl MarchVariant {
    fn index(self) -> usize {
        usize::from(self.portrait) | usize::from(self.closed_form) << 1
    }

    fn from_index(index: usize) -> Self {
        Self {
            portrait: index & 1 != 0,
            closed_form: index & 2 != 0,
        }
    }
}

/// Per-head GPU buffers, kept across frames and rebuilt when sizes change.
#[derive(Component)]
struct HeadBuffers {
    uniform: Buffer,
    motion: Buffer,
    displacement: Buffer,
    /// How far the blended displacement reaches, per plane and per cell footprint (the shader's `reach`).
    reach: Buffer,
    motion_len: usize,
    displacement_texels: u32,
    /// What the head's texture was last rendered from.
    rendered: Option<RenderedInputs>,
}

/// Everything a head's picture depends on: when a frame's inputs equal the last rendered ones, the texture already
/// holds that picture and the compute passes are skipped (a head that holds still costs nothing).
struct RenderedInputs {
    march: MarchUniform,
    motion_code: Vec<f32>,
    /// The GPU buffers of the head asset, the plates and the target texture (new ones when an asset changes).
    triplane: BufferId,
    plates: BufferId,
    target: TextureId,
}

impl RenderedInputs {
    /// Whether a frame of `job`, drawn from the asset buffer `triplane` into the texture `target`, would show
    /// the same picture.
    fn shows(&self, job: &HeadRenderJob, (triplane, plates, target): Drawn) -> bool {
        self.march == job.march
            && self.motion_code == job.motion_code
            && self.triplane == triplane
            && self.plates == plates
            && self.target == target
    }
}

/// The ids of what a head is drawn from and into: head asset, plates, target.
type Drawn = (BufferId, BufferId, TextureId);

/// Render-world counters of the volume renderer's work, per head and frame (read them from the render sub-app).
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadRenderCounts {
    /// Head frames drawn (both compute passes ran).
    pub rendered: u64,
    /// Head frames skipped because nothing the picture depends on had changed since the last one drawn.
    pub unchanged: u64,
}

/// The bind group of one head for this frame, with its dispatch sizes.
#[derive(Component)]
struct HeadBindGroup {
    bind_group: BindGroup,
    blend_groups: u32,
    march_groups: UVec2,
    /// The `march_rays` pipeline that draws it.
    variant: MarchVariant,
}

#[allow(clippy::too_many_arguments)]
fn prepare_head_bind_groups(
    mut commands: Commands,
    pipeline: Res<HeadPipeline>,
    pipeline_cache: Res<PipelineCache>,
    device: Res<RenderDevice>,
    queue: Res<RenderQueue>,
    assets: Res<RenderAssets<GpuHeadAsset>>,
    layers: Res<RenderAssets<GpuPortraitLayers>>,
    images: Res<RenderAssets<GpuImage>>,
    mut heads: Query<(Entity, &HeadRenderJob, Option<&mut HeadBuffers>)>,
    mut counts: ResMut<HeadRenderCounts>,
) {
    // Nothing is drawn while the shader compiles, so nothing counts as rendered either.
    let ready = |id: CachedComputePipelineId| pipeline_cache.get_compute_pipeline(id).is_some();
    for (entity, job, mut buffers) in &mut heads {
        let (Some(asset), Some(image)) = (assets.get(job.asset), images.get(job.target)) else {
            commands.entity(entity).remove::<HeadBindGroup>();
            continue;
        };
        // A portrait display waits for its plates; a head drawn alone binds a placeholder.
        let plates = match job.layers {
            Some(id) if job.march.is_portrait() => match layers.get(id) {
                Some(layers) => &layers.plates,
                None => {
                    commands.entity(entity).remove::<HeadBindGroup>();
                    continue;
                }
            },
            _ => &pipeline.no_plates,
        };
        if image.texture_descriptor.format != HEAD_TEXTURE_FORMAT
            || !image
                .texture_descriptor
                .usage
                .contains(TextureUsages::STORAGE_BINDING)
        {
            warn_once!(
                "talking_head: the target image is not an Rgba16Float storage texture; not rendering"
            );
            continue;
        }
        let reuse = buffers.as_deref_mut().filter(|b| {
            b.motion_len == job.motion_code.len() && b.displacement_texels == asset.motion_texels
        });
        let variant = MarchVariant {
            portrait: job.march.is_portrait() && job.layers.is_some(),
            closed_form: asset.closed_form && job.march.closed_form_allowed(),
        };
        let pipelines_ready = ready(pipeline.blend)
            && ready(pipeline.reach)
            && ready(pipeline.march[variant.index()]);
        let drawn = (asset.triplane.id(), plates.id(), image.texture.id());
        if reuse
            .as_ref()
            .and_then(|b| b.rendered.as_ref())
            .is_some_and(|last| last.shows(job, drawn))
        {
            // The texture already holds this picture: nothing to bind or dispatch.
            counts.unchanged += 1;
            commands.entity(entity).remove::<HeadBindGroup>();
            continue;
        }
        let mut fresh = reuse
            .is_none()
            .then(|| create_head_buffers(&device, job.motion_code.len(), asset.motion_texels));
        let Some(buffers) = reuse.or(fresh.as_mut()) else {
            continue;
        };
        queue.write_buffer(&buffers.uniform, 0, bytemuck::bytes_of(&job.march));
        queue.write_buffer(&buffers.reach, 0, &[0u8; 16]);
        queue.write_buffer(&buffers.motion, 0, bytemuck::cast_slice(&job.motion_code));
        buffers.rendered = pipelines_ready.then(|| RenderedInputs {
            march: job.march,
            motion_code: job.motion_code.clone(),
            triplane: drawn.0,
            plates: drawn.1,
            target: drawn.2,
        });
        if pipelines_ready {
            counts.rendered += 1;
        }
        let buffers = &*buffers;
        let storage_view = image.texture.create_view(&TextureViewDescriptor {
            label: Some("talking_head:view:storage"),
            format: Some(HEAD_TEXTURE_FORMAT),
            ..default()
        });
        let bind_group = device.create_bind_group(
            "talking_head:bind_group:march",
            &pipeline_cache.get_bind_group_layout(&pipeline.layout),
            &BindGroupEntries::sequential((
                buffers.uniform.as_entire_binding(),
                asset.triplane.as_entire_binding(),
                asset.bases.as_entire_binding(),
                asset.decoder.as_entire_binding(),
                buffers.motion.as_entire_binding(),
                buffers.displacement.as_entire_binding(),
                &storage_view,
                plates.as_entire_binding(),
                asset.clearance.as_entire_binding(),
                buffers.reach.as_entire_binding(),
            )),
        );
        let size = UVec2::new(job.march.width(), job.march.height());
        let group = HeadBindGroup {
            bind_group,
            blend_groups: asset.motion_texels.div_ceil(BLEND_WORKGROUP),
            march_groups: size.map(|s| s.div_ceil(MARCH_WORKGROUP)),
            variant,
        };
        let mut entity = commands.entity(entity);
        entity.insert(group);
        if let Some(fresh) = fresh {
            entity.insert(fresh);
        }
    }
}

fn create_head_buffers(
    device: &RenderDevice,
    motion_len: usize,
    displacement_texels: u32,
) -> HeadBuffers {
    let buffer = |label: &str, size: u64, usage: BufferUsages| {
        device.create_buffer(&BufferDescriptor {
            label: Some(label),
            size,
            usage: usage | BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    };
    HeadBuffers {
        uniform: buffer(
            "talking_head:buffer:march_uniform",
            size_of::<MarchUniform>() as u64,
            BufferUsages::STORAGE,
        ),
        motion: buffer(
            "talking_head:buffer:motion_code",
            (motion_len.max(1) * 4) as u64,
            BufferUsages::STORAGE,
        ),
        displacement: buffer(
            "talking_head:buffer:displacement",
            // A displacement and opening per texel, then a shade (see `blend` in the shader).
            u64::from(displacement_texels.max(1)) * 2 * 16,
            BufferUsages::STORAGE,
        ),
        reach: buffer(
            "talking_head:buffer:reach",
            16 + (3 * CELLS * CELLS * 4) as u64,
            BufferUsages::STORAGE,
        ),
        motion_len,
        displacement_texels,
        rendered: None,
    }
}

/// The render-graph node: three compute passes per head (blend the motion bases, gather how far they reach, march
/// the rays).
fn march_heads(
    mut render_context: RenderContext,
    pipeline: Res<HeadPipeline>,
    pipeline_cache: Res<PipelineCache>,
    heads: Query<&HeadBindGroup, With<HeadRenderJob>>,
) {
    // Skip while the shader is still compiling.
    let (Some(blend), Some(reach)) = (
        pipeline_cache.get_compute_pipeline(pipeline.blend),
        pipeline_cache.get_compute_pipeline(pipeline.reach),
    ) else {
        return;
    };
    let march = pipeline
        .march
        .map(|id| pipeline_cache.get_compute_pipeline(id));
    if heads.is_empty() {
        return;
    }
    let encoder = render_context.command_encoder();
    for head in &heads {
        let Some(march) = march[head.variant.index()] else {
            continue;
        };
        {
            let mut pass = encoder.begin_compute_pass(&ComputePassDescriptor {
                label: Some("talking_head:pass:blend"),
                ..default()
            });
            pass.set_pipeline(blend);
            pass.set_bind_group(0, &head.bind_group, &[]);
            pass.dispatch_workgroups(head.blend_groups, 1, 1);
        }
        {
            let mut pass = encoder.begin_compute_pass(&ComputePassDescriptor {
                label: Some("talking_head:pass:reach"),
                ..default()
            });
            pass.set_pipeline(reach);
            pass.set_bind_group(0, &head.bind_group, &[]);
            pass.dispatch_workgroups(
                (3 * CELLS as u32 * CELLS as u32).div_ceil(BLEND_WORKGROUP),
                1,
                1,
            );
        }
        let mut pass = encoder.begin_compute_pass(&ComputePassDescriptor {
            label: Some("talking_head:pass:march"),
            ..default()
        });
        pass.set_pipeline(march);
        pass.set_bind_group(0, &head.bind_group, &[]);
        pass.dispatch_workgroups(head.march_groups.x, head.march_groups.y, 1);
    }
}
