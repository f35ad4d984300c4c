//! Headless apps: no window, rendering on whatever adapter the machine has (Mesa's lavapipe on CI), and a head's
//! frames read back to the CPU (a head's texture with [`capture_head`], a camera's view with [`camera_target`] and
//! [`capture_image`]). Used by the examples, tests and benchmarks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use bevy::app::{PluginGroupBuilder, PluginsState};
use bevy::prelude::*;
use bevy::render::RenderApp;
use bevy::render::gpu_readback::{Readback, ReadbackComplete};
use bevy::render::pipelined_rendering::PipelinedRenderingPlugin;
use bevy::render::render_resource::{TextureFormat, TextureUsages};
use bevy::render::renderer::RenderDevice;
use bevy::window::ExitCondition;
#[cfg(feature = "windows")]
use bevy::winit::WinitPlugin;
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
    /// Writing a frame or running ffmpeg failed.
    #[error("{0}")]
    Video(String),
    /// An image cannot be read back (not loaded, or a format [`capture_image`] does not read).
    #[error("{0}")]
    Capture(String),
    /// The head has no output texture (is it a `TalkingHead`?).
    #[error(
        "entity {0} has no TalkingHeadTexture; is it a TalkingHead spawned with TalkingHeadPlugin?"
    )]
    NoTexture(Entity),
}

/// `DefaultPlugins` set up for a headless app: no primary window and no window system (works without a display),
/// no exit when windows close, rendering in step with `App::update` (no pipelined rendering) so that frames come
/// back in order.
pub fn headless_plugins() -> PluginGroupBuilder {
    let plugins = DefaultPlugins
        .set(WindowPlugin {
            primary_window: None,
            exit_condition: ExitCondition::DontExit,
            close_when_requested: false,
            ..default()
        })
        .disable::<PipelinedRenderingPlugin>();
    // Without the `windows` feature there is no window system to turn off.
    #[cfg(feature = "windows")]
    let plugins = plugins.disable::<WinitPlugin>();
    plugins
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

/// Runs one update and waits until the GPU has finished that frame's work, read-backs included, so that what a
/// frame reads back arrives in the next update, however fast or slow frames are. Without the wait, the number of
/// read-backs in flight grows when frames are cheap (e.g. when heads hold still and are not re-rendered), and
/// "the N-th read-back after a change" no longer shows the change.
pub fn step(app: &mut App) {
    app.update();
    if let Some(device) = app.world().get_resource::<RenderDevice>() {
        // A lost device or a timeout shows up as missing read-backs, which callers already wait for.
        let _ = device.poll(bevy::render::render_resource::PollType::Wait {
            submission_index: None,
            timeout: Some(std::time::Duration::from_secs(30)),
        });
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

/// Writes a head's frames as numbered PNG files (straight alpha) and turns them, with the speech, into an MP4
/// through ffmpeg.
#[derive(Debug)]
pub struct VideoWriter {
    folder: PathBuf,
    fps: u32,
    frames: u32,
    size: Option<(u32, u32)>,
}

/// Whether an `ffmpeg` executable can be run.
pub fn ffmpeg_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl VideoWriter {
    /// Frames go to `folder` (created if missing) as `frame_00000.png`, … at `fps` frames per second.
    pub fn new(folder: impl Into<PathBuf>, fps: u32) -> Result<Self, OfflineError> {
        let folder = folder.into();
        std::fs::create_dir_all(&folder)
            .map_err(|e| OfflineError::Video(format!("cannot create {}: {e}", folder.display())))?;
        Ok(Self {
            folder,
            fps: fps.max(1),
            frames: 0,
            size: None,
        })
    }

    /// Frames written so far.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Writes the next frame; every frame must have the first one's size.
    pub fn push(&mut self, frame: &CapturedFrame) -> Result<PathBuf, OfflineError> {
        let size = (frame.width, frame.height);
        if *self.size.get_or_insert(size) != size
            || frame.linear.len() != (size.0 * size.1 * 4) as usize
        {
            return Err(OfflineError::Video(format!(
                "frame {} is {}x{} with {} values; the video is {:?}",
                self.frames,
                size.0,
                size.1,
                frame.linear.len(),
                self.size
            )));
        }
        let path = self.folder.join(format!("frame_{:05}.png", self.frames));
        image::save_buffer(
            &path,
            &frame.to_srgba8(),
            size.0,
            size.1,
            image::ExtendedColorType::Rgba8,
        )
        .map_err(|e| OfflineError::Video(format!("cannot write {}: {e}", path.display())))?;
        self.frames += 1;
        Ok(path)
    }

    /// Muxes the frames over a `background` colour (sRGB bytes) with `audio` into an H.264/AAC MP4 at `out`, cut to
    /// the frames' duration.
    pub fn finish_mp4(
        &self,
        audio: &Path,
        out: &Path,
        background: [u8; 3],
    ) -> Result<(), OfflineError> {
        let Some((width, height)) = self.size.filter(|_| self.frames > 0) else {
            return Err(OfflineError::Video(
                "no frames to put in a video".to_string(),
            ));
        };
        if !ffmpeg_available() {
            return Err(OfflineError::Video(
                "ffmpeg is not installed; the PNG frames are written, install ffmpeg (tools/setup.sh does) for MP4"
                    .to_string(),
            ));
        }
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                OfflineError::Video(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let [r, g, b] = background;
        let duration = f64::from(self.frames) / f64::from(self.fps);
        let filter = format!(
            "color=c=0x{r:02x}{g:02x}{b:02x}:s={width}x{height}:r={fps}[bg];[bg][0:v]overlay=shortest=1,format=yuv420p[v]",
            fps = self.fps
        );
        let output = Command::new("ffmpeg")
            .args(["-y", "-loglevel", "error", "-framerate"])
            .arg(self.fps.to_string())
            .arg("-i")
            .arg(self.folder.join("frame_%05d.png"))
            .arg("-i")
            .arg(audio)
            .args(["-filter_complex", &filter, "-map", "[v]", "-map", "1:a:0"])
            .args([
                "-c:v",
                "libx264",
                "-c:a",
                "aac",
                "-t",
                &format!("{duration:.3}"),
            ])
            .arg(out)
            .output()
            .map_err(|e| OfflineError::Video(format!("cannot run ffmpeg: {e}")))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(OfflineError::Video(format!(
                "ffmpeg failed to write {}: {}",
                out.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }
}

/// An image a camera can render into and [`capture_image`] can read back: `width`×`height` pixels,
/// `Rgba8UnormSrgb`. Add it to `Assets<Image>` and put `RenderTarget::Image(handle.into())` on the camera.
pub fn camera_target(width: u32, height: u32) -> Image {
    let mut image = Image::new_target_texture(
        width.max(1),
        height.max(1),
        TextureFormat::Rgba8UnormSrgb,
        None,
    );
    image.texture_descriptor.usage |= TextureUsages::COPY_SRC;
    image
}

/// One frame read back from an 8-bit image (a camera's render target), rows top to bottom.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CapturedImage {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// sRGB RGBA8 pixels (alpha as the camera wrote it), `width * height * 4` bytes.
    pub rgba8: Vec<u8>,
    /// How many frames this capture has received so far (1 for the first).
    pub sequence: u64,
}

impl CapturedImage {
    /// The pixel at `(x, y)` as RGBA8, if inside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 4;
        self.rgba8.get(i..i + 4)?.try_into().ok()
    }

    /// Writes the frame as a PNG file (creating its folder).
    pub fn save_png(&self, path: &Path) -> Result<(), OfflineError> {
        if self.rgba8.is_empty()
            || self.rgba8.len() != self.width as usize * self.height as usize * 4
        {
            return Err(OfflineError::Video(format!(
                "cannot write {}: no complete frame was read back yet",
                path.display()
            )));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                OfflineError::Video(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        image::save_buffer(
            path,
            &self.rgba8,
            self.width,
            self.height,
            image::ExtendedColorType::Rgba8,
        )
        .map_err(|e| OfflineError::Video(format!("cannot write {}: {e}", path.display())))
    }
}

/// The latest frame of an image, updated every frame while the capture entity lives.
#[derive(Clone, Debug, Default)]
pub struct ImageCapture(Arc<Mutex<CapturedImage>>);

impl ImageCapture {
    /// A copy of the latest frame (sequence 0 and no pixels before the first arrives).
    pub fn latest(&self) -> CapturedImage {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many frames have come back so far.
    pub fn sequence(&self) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sequence
    }
}

/// Starts reading back an 8-bit RGBA or BGRA image (such as a [`camera_target`] a camera renders into) every
/// frame; returns the capture and the entity that does the reading (despawn it to stop, as reading back costs a
/// copy per frame).
pub fn capture_image(
    app: &mut App,
    image: Handle<Image>,
) -> Result<(ImageCapture, Entity), OfflineError> {
    let world = app.world_mut();
    let Some((size, format)) = world
        .resource::<Assets<Image>>()
        .get(&image)
        .map(|i| (i.size(), i.texture_descriptor.format))
    else {
        return Err(OfflineError::Capture(format!(
            "image {:?} is not in Assets<Image>",
            image.id()
        )));
    };
    let bgra = match format {
        TextureFormat::Rgba8Unorm | TextureFormat::Rgba8UnormSrgb => false,
        TextureFormat::Bgra8Unorm | TextureFormat::Bgra8UnormSrgb => true,
        other => {
            return Err(OfflineError::Capture(format!(
                "cannot read back a {other:?} image: use an 8-bit RGBA or BGRA image (offline::camera_target)"
            )));
        }
    };
    let capture = ImageCapture::default();
    let sink = capture.clone();
    let reader = world
        .spawn(Readback::texture(image))
        .observe(move |event: On<ReadbackComplete>| {
            let mut frame = sink.0.lock().unwrap_or_else(PoisonError::into_inner);
            frame.width = size.x;
            frame.height = size.y;
            frame.rgba8 = unpad_rgba8_rows(&event.data, size.x, size.y, bgra);
            frame.sequence += 1;
        })
        .id();
    Ok((capture, reader))
}

/// Turns a texture-to-buffer copy of an 8-bit, 4-channel image (rows aligned to 256 bytes) into RGBA8 rows.
fn unpad_rgba8_rows(data: &[u8], width: u32, height: u32, bgra: bool) -> Vec<u8> {
    let row = width as usize * 4;
    let stride = row.next_multiple_of(256);
    let mut pixels = Vec::with_capacity(row * height as usize);
    for y in 0..height as usize {
        if let Some(line) = data.get(y * stride..y * stride + row) {
            pixels.extend_from_slice(line);
        }
    }
    if bgra {
        for pixel in pixels.chunks_exact_mut(4) {
            pixel.swap(0, 2);
        }
    }
    pixels
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
    fn rgba8_rows_lose_their_padding_and_bgra_is_swapped() {
        let mut data = vec![0u8; 256 * 2];
        data[..8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        data[256..264].copy_from_slice(&[9, 10, 11, 12, 13, 14, 15, 16]);
        assert_eq!(
            unpad_rgba8_rows(&data, 2, 2, false),
            (1..=16).collect::<Vec<u8>>()
        );
        assert_eq!(
            unpad_rgba8_rows(&data, 2, 2, true),
            vec![3, 2, 1, 4, 7, 6, 5, 8, 11, 10, 9, 12, 15, 14, 13, 16]
        );
    }

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
