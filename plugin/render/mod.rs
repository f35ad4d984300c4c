//! Rendering: the volume-rendering compute pass (render world) and the CPU reference renderer.
//!
//! Per frame, the main world computes one [`HeadRenderJob`] per visible, ready head (camera in head space, motion
//! code). It is extracted to the render world, where a system of the `RenderGraph` schedule records three compute
//! passes per head: `blend` applies the motion code to the motion bases, `reach_cells` gathers how far they move
//! points, `march_rays` renders the image, jumping over the empty space around the head ([`empty_space`]).

pub mod empty_space;
mod gpu;
mod march;
mod pixels;
mod reference;

use bevy::prelude::*;
use bevy::render::extract_component::{ExtractComponent, ExtractComponentPlugin};
use bevy::render::sync_component::SyncComponent;

pub use empty_space::EmptySpace;
pub use gpu::{HEAD_TEXTURE_FORMAT, HeadRenderCounts, TalkingHeadRenderPlugin};
pub use march::{
    HeadCamera, MarchUniform, PORTRAIT_DENSITY_FACTOR, STOP_TRANSMITTANCE, portrait_view,
    posed_about_pivot,
};
pub use pixels::{linear_to_srgb, premultiplied_to_srgba8};
pub use reference::{
    ReferenceRenderer, WarpReach, blend_bases, decode, displacement_at, render_portrait_reference,
    render_reference,
};

use crate::identity::{HeadAsset, PortraitLayers};

/// How the volume renderer marches rays (a resource; without it, the defaults).
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarchOptions {
    /// Jump over the empty space around each head ([`empty_space`]); the picture is the same either way, only
    /// the cost differs.
    pub skip_empty_space: bool,
    /// Decode constructed heads in closed form ([`crate::identity::construct::closed_form_decode`]) rather than
    /// through their decoder's dense MLP; the picture is the same either way, only the cost differs.
    pub closed_form_decoder: bool,
}

impl Default for MarchOptions {
    fn default() -> Self {
        Self {
            skip_empty_space: true,
            closed_form_decoder: true,
        }
    }
}

/// What the render world needs to draw one head this frame. Maintained by the plugin; read it for debugging.
#[derive(Component, Clone, Debug)]
pub struct HeadRenderJob {
    /// The head asset to draw.
    pub asset: AssetId<HeadAsset>,
    /// The image to draw into ([`HEAD_TEXTURE_FORMAT`], storage usage).
    pub target: AssetId<Image>,
    /// The photo's layers the head is composited over (the portrait display), if any.
    pub layers: Option<AssetId<PortraitLayers>>,
    /// Camera and sizes.
    pub march: MarchUniform,
    /// Motion-basis weights (at least one entry, so the GPU buffer is never empty).
    pub motion_code: Vec<f32>,
}

impl SyncComponent for HeadRenderJob {
    type Target = Self;
}

impl ExtractComponent for HeadRenderJob {
    type QueryData = (&'static HeadRenderJob, &'static InheritedVisibility);
    type QueryFilter = ();
    type Out = Self;

    fn extract_component(
        (job, visibility): (&HeadRenderJob, &InheritedVisibility),
    ) -> Option<Self> {
        visibility.get().then(|| job.clone())
    }
}

/// Adds extraction of render jobs; the GPU part lives in [`TalkingHeadRenderPlugin`].
pub(crate) fn build_extraction(app: &mut App) {
    app.add_plugins(ExtractComponentPlugin::<HeadRenderJob>::default());
}
