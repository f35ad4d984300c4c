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
    storage_buffer_read_only_sized, storage_buffer_sized, texture_storage_2d, uniform_buffer_sized,
};
use bevy::render::render_resource::*;
use bevy::render::renderer::{RenderContext, RenderDevice, RenderGraph, RenderQueue};
use bevy::render::texture::GpuImage;
use bevy::render::{Render, RenderApp, RenderStartup, RenderSystems};
use bevy::shader::Shader;

use super::{HeadRenderJob, MarchUniform};
use crate::identity::{
    HeadAsset, MAX_CHANNELS, MAX_HIDDEN, MOUTH_INTERIOR, OPENING_FULL, OPENING_START, TEETH,
    TEETH_LIT_GAP, TEETH_SHOW, TOOTH_LENGTHS, TOOTH_WIDTHS,
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
    let list = |values: &[f32]| {
        values
            .iter()
            .map(|v| format!("{v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "const MAX_CHANNELS: u32 = {MAX_CHANNELS}u;\n\
         const MAX_HIDDEN: u32 = {MAX_HIDDEN}u;\n\
         const OPENING_START: f32 = {OPENING_START:?};\n\
         const OPENING_FULL: f32 = {OPENING_FULL:?};\n\
         const MOUTH_INTERIOR: vec3<f32> = vec3<f32>({r:?}, {g:?}, {b:?});\n\
         const TEETH: vec3<f32> = vec3<f32>({tr:?}, {tg:?}, {tb:?});\n\
         const TEETH_SHOW: f32 = {TEETH_SHOW:?};\n\
         const TEETH_LIT_GAP: f32 = {TEETH_LIT_GAP:?};\n\
         const TOOTH_COUNT: u32 = {teeth}u;\n\
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
        app.add_plugins(RenderAssetPlugin::<GpuHeadAsset>::default());
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
                    .after(prepare_assets::<GpuImage>),
            )
            .add_systems(RenderGraph, march_heads);
    }
}

/// A head asset's features, bases and decoder in GPU storage buffers.
pub struct GpuHeadAsset {
    triplane: Buffer,
    bases: Buffer,
    decoder: Buffer,
    motion_texels: u32,
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
        Ok(Self {
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
        })
    }
}

/// Pipelines and bind group layout of the volume renderer.
#[derive(Resource)]
struct HeadPipeline {
    layout: BindGroupLayoutDescriptor,
    blend: CachedComputePipelineId,
    march: CachedComputePipelineId,
}

fn init_head_pipeline(mut commands: Commands, pipeline_cache: Res<PipelineCache>) {
    let uniform_size = NonZeroU64::new(size_of::<MarchUniform>() as u64);
    let layout = BindGroupLayoutDescriptor::new(
        "talking_head:bind_group_layout:march",
        &BindGroupLayoutEntries::sequential(
            ShaderStages::COMPUTE,
            (
                uniform_buffer_sized(false, uniform_size),
                storage_buffer_read_only_sized(false, None),
                storage_buffer_read_only_sized(false, None),
                storage_buffer_read_only_sized(false, None),
                storage_buffer_read_only_sized(false, None),
                storage_buffer_sized(false, None),
                texture_storage_2d(HEAD_TEXTURE_FORMAT, StorageTextureAccess::WriteOnly),
            ),
        ),
    );
    let queue = |label: &'static str, entry_point: &'static str| {
        pipeline_cache.queue_compute_pipeline(ComputePipelineDescriptor {
            label: Some(label.into()),
            layout: vec![layout.clone()],
            shader: MARCH_SHADER,
            entry_point: Some(entry_point.into()),
            ..default()
        })
    };
    let blend = queue("talking_head:pipeline:blend", "blend");
    let march = queue("talking_head:pipeline:march", "march_rays");
    commands.insert_resource(HeadPipeline {
        layout,
        blend,
        march,
    });
}

/// Per-head GPU buffers, kept across frames and rebuilt when sizes change.
#[derive(Component)]
struct HeadBuffers {
    uniform: Buffer,
    motion: Buffer,
    displacement: Buffer,
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
    /// The GPU buffers of the head asset and the target texture (new ones when either asset changes).
    triplane: BufferId,
    target: TextureId,
}

impl RenderedInputs {
    /// Whether a frame of `job`, drawn from the asset buffer `triplane` into the texture `target`, would show
    /// the same picture.
    fn shows(&self, job: &HeadRenderJob, triplane: BufferId, target: TextureId) -> bool {
        self.march == job.march
            && self.motion_code == job.motion_code
            && self.triplane == triplane
            && self.target == target
    }
}

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
}

#[allow(clippy::too_many_arguments)]
fn prepare_head_bind_groups(
    mut commands: Commands,
    pipeline: Res<HeadPipeline>,
    pipeline_cache: Res<PipelineCache>,
    device: Res<RenderDevice>,
    queue: Res<RenderQueue>,
    assets: Res<RenderAssets<GpuHeadAsset>>,
    images: Res<RenderAssets<GpuImage>>,
    mut heads: Query<(Entity, &HeadRenderJob, Option<&mut HeadBuffers>)>,
    mut counts: ResMut<HeadRenderCounts>,
) {
    // Nothing is drawn while the shader compiles, so nothing counts as rendered either.
    let pipelines_ready = pipeline_cache
        .get_compute_pipeline(pipeline.blend)
        .is_some()
        && pipeline_cache
            .get_compute_pipeline(pipeline.march)
            .is_some();
    for (entity, job, mut buffers) in &mut heads {
        let (Some(asset), Some(image)) = (assets.get(job.asset), images.get(job.target)) else {
            commands.entity(entity).remove::<HeadBindGroup>();
            continue;
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
        let (triplane, target) = (asset.triplane.id(), image.texture.id());
        if reuse
            .as_ref()
            .and_then(|b| b.rendered.as_ref())
            .is_some_and(|last| last.shows(job, triplane, target))
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
        queue.write_buffer(&buffers.motion, 0, bytemuck::cast_slice(&job.motion_code));
        buffers.rendered = pipelines_ready.then(|| RenderedInputs {
            march: job.march,
            motion_code: job.motion_code.clone(),
            triplane,
            target,
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
            )),
        );
        let size = UVec2::new(job.march.width(), job.march.height());
        let group = HeadBindGroup {
            bind_group,
            blend_groups: asset.motion_texels.div_ceil(BLEND_WORKGROUP),
            march_groups: size.map(|s| s.div_ceil(MARCH_WORKGROUP)),
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
            BufferUsages::UNIFORM,
        ),
        motion: buffer(
            "talking_head:buffer:motion_code",
            (motion_len.max(1) * 4) as u64,
            BufferUsages::STORAGE,
        ),
        displacement: buffer(
            "talking_head:buffer:displacement",
            u64::from(displacement_texels.max(1)) * 16,
            BufferUsages::STORAGE,
        ),
        motion_len,
        displacement_texels,
        rendered: None,
    }
}

/// The render-graph node: two compute passes per head (blend the motion bases, march the rays).
fn march_heads(
    mut render_context: RenderContext,
    pipeline: Res<HeadPipeline>,
    pipeline_cache: Res<PipelineCache>,
    heads: Query<&HeadBindGroup, With<HeadRenderJob>>,
) {
    // Skip while the shader is still compiling.
    let (Some(blend), Some(march)) = (
        pipeline_cache.get_compute_pipeline(pipeline.blend),
        pipeline_cache.get_compute_pipeline(pipeline.march),
    ) else {
        return;
    };
    if heads.is_empty() {
        return;
    }
    let encoder = render_context.command_encoder();
    for head in &heads {
        {
            let mut pass = encoder.begin_compute_pass(&ComputePassDescriptor {
                label: Some("talking_head:pass:blend"),
                ..default()
            });
            pass.set_pipeline(blend);
            pass.set_bind_group(0, &head.bind_group, &[]);
            pass.dispatch_workgroups(head.blend_groups, 1, 1);
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
