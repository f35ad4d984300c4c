//! Headless apps: no window, rendering on whatever adapter the machine has (Mesa's lavapipe on CI), and a head's
//! frames read back to the CPU. Used by the `talk` example, tests and benchmarks.

use std::sync::{Arc, Mutex, PoisonError};

use bevy::app::{PluginGroupBuilder, PluginsState};
use bevy::prelude::*;
use bevy::render::RenderApp;
use bevy::render::gpu_readback::{Readback, ReadbackComplete};
use bevy::render::pipelined_rendering::PipelinedRenderingPlugin;
use bevy::render::renderer::RenderDevice;
use bevy::window::ExitCondition;
use thiserror::Error;

use half::f16;

use crate::head::TalkingHeadTexture;
use crate::render::premultiplied_to_srgba8;

/// Why a headless app could not start rendering.
#[derive(Debug, Error)]
pub enum OfflineError {
    /// No GPU adapter (not even a software one) was found.
    #[error(
        "no GPU adapter was found for rendering; install a Vulkan driver (on Debian: `apt-get install \
         mesa-vulkan-drivers` for the software renderer) or run tools/setup.sh"
    )]
    NoAdapter,
    /// The head has no output texture (is it a `TalkingHead`?).
    #[error(
        "entity {0} has no TalkingHeadTexture; is it a TalkingHead spawned with TalkingHeadPlugin?"
    )]
    NoTexture(Entity),
}

/// `DefaultPlugins` set up for a headless app: no primary window, no exit when windows close, rendering in step
/// with `App::update` (no pipelined rendering) so that frames come back in order.
pub fn headless_plugins() -> PluginGroupBuilder {
    DefaultPlugins
        .set(WindowPlugin {
            primary_window: None,
            exit_condition: ExitCondition::DontExit,
            close_when_requested: false,
            ..default()
        })
        .disable::<PipelinedRenderingPlugin>()
}

/// Finishes building an app that is driven by hand with `App::update` (as `App::run` would), waiting for the
/// renderer to start. Fails when no GPU adapter exists.
pub fn finish_headless_app(app: &mut App) -> Result<(), OfflineError> {
    while app.plugins_state() == PluginsState::Adding {
        bevy::tasks::tick_global_task_pools_on_main_thread();
    }
    app.finish();
    app.cleanup();
    let has_device = app
        .get_sub_app(RenderApp)
        .is_some_and(|render| render.world().contains_resource::<RenderDevice>());
    if has_device {
        Ok(())
    } else {
        Err(OfflineError::NoAdapter)
    }
}

/// One frame read back from a head's texture, rows top to bottom.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CapturedFrame {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Premultiplied linear RGBA, `width * height * 4` values.
    pub linear: Vec<f32>,
    /// How many frames this capture has received so far (1 for the first).
    pub sequence: u64,
}

impl CapturedFrame {
    /// Straight-alpha sRGB RGBA8 pixels, as a PNG file or video frame holds them.
    pub fn to_srgba8(&self) -> Vec<u8> {
        premultiplied_to_srgba8(&self.linear)
    }

    /// Fraction of pixels with any opacity.
    pub fn coverage(&self) -> f64 {
        let pixels = self.linear.len() / 4;
        if pixels == 0 {
            return 0.0;
        }
        self.linear.chunks_exact(4).filter(|p| p[3] > 0.0).count() as f64 / pixels as f64
    }
}

/// The latest frame of a head, updated every frame while the capture entity lives.
#[derive(Clone, Debug, Default)]
pub struct FrameCapture(Arc<Mutex<CapturedFrame>>);

impl FrameCapture {
    /// A copy of the latest frame (sequence 0 and no pixels before the first arrives).
    pub fn latest(&self) -> CapturedFrame {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Starts reading back `head`'s texture every frame; returns the capture and the entity that does the reading
/// (despawn it to stop).
pub fn capture_head(app: &mut App, head: Entity) -> Result<(FrameCapture, Entity), OfflineError> {
    let world = app.world_mut();
    let texture = world
        .get::<TalkingHeadTexture>(head)
        .map(|t| t.0.clone())
        .ok_or(OfflineError::NoTexture(head))?;
    let size = world
        .resource::<Assets<Image>>()
        .get(&texture)
        .map(Image::size)
        .ok_or(OfflineError::NoTexture(head))?;
    let capture = FrameCapture::default();
    let sink = capture.clone();
    let reader = world
        .spawn(Readback::texture(texture))
        .observe(move |event: On<ReadbackComplete>| {
            let mut frame = sink.0.lock().unwrap_or_else(PoisonError::into_inner);
            frame.width = size.x;
            frame.height = size.y;
            frame.linear = unpad_rows(&event.data, size.x, size.y);
            frame.sequence += 1;
        })
        .id();
    Ok((capture, reader))
}

/// Bytes per pixel of [`crate::render::HEAD_TEXTURE_FORMAT`].
const BYTES_PER_PIXEL: usize = 8;

/// Turns a texture-to-buffer copy of an `Rgba16Float` image (rows aligned to 256 bytes) into f32 values.
fn unpad_rows(data: &[u8], width: u32, height: u32) -> Vec<f32> {
    let row = width as usize * BYTES_PER_PIXEL;
    let stride = row.next_multiple_of(256);
    let mut values = Vec::with_capacity(width as usize * height as usize * 4);
    for y in 0..height as usize {
        if let Some(line) = data.get(y * stride..y * stride + row) {
            values.extend(
                line.chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
            );
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpad_rows_drops_the_alignment_bytes() {
        let (width, height) = (3u32, 2u32);
        let mut data = vec![0u8; 256 * 2];
        let one = f16::from_f32(1.0).to_le_bytes();
        let half = f16::from_f32(0.5).to_le_bytes();
        for i in 0..12 {
            data[2 * i..2 * i + 2].copy_from_slice(&one);
            data[256 + 2 * i..256 + 2 * i + 2].copy_from_slice(&half);
        }
        let values = unpad_rows(&data, width, height);
        assert_eq!(values.len(), 24);
        assert!(values[..12].iter().all(|&v| v == 1.0));
        assert!(values[12..].iter().all(|&v| v == 0.5));
    }
}
