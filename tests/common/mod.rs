//! Shared set-up for the headless app tests.
#![allow(dead_code)]

use bevy::prelude::*;
use bevy_talking_head::offline::{
    CapturedFrame, FrameCapture, finish_headless_app, headless_plugins,
};
use bevy_talking_head::prelude::*;

/// A headless app with the plugin, its renderer started (lavapipe on CI).
pub fn headless_app() -> App {
    let mut app = App::new();
    app.add_plugins((headless_plugins(), TalkingHeadPlugin));
    if let Err(error) = finish_headless_app(&mut app) {
        panic!("{error}");
    }
    app
}

/// Motion settings that keep a rendered head exactly still (no sway, no blinks, no saccades), for tests that
/// compare frames.
pub fn frozen() -> MotionSettings {
    MotionSettings {
        head_motion_scale: 0.0,
        blink_rate: 0.0,
        saccades: 0.0,
        ..MotionSettings::default()
    }
}

/// Settings for a head seen from a fixed direction (degrees), rendered into a `size`² texture only.
pub fn orbit_settings(size: u32, yaw_deg: f32, pitch_deg: f32) -> HeadSettings {
    HeadSettings {
        resolution: size,
        min_resolution: size,
        steps_per_ray: 64,
        view: HeadView::Orbit {
            yaw: yaw_deg.to_radians(),
            pitch: pitch_deg.to_radians(),
            distance: 0.6,
        },
        display: HeadDisplay::TextureOnly,
        expression_base: Default::default(),
    }
}

/// Spawns a 3D camera at `transform` that renders into a new `width × height` sRGB image which can be read back;
/// returns the camera and the image.
pub fn camera_into_image(
    app: &mut App,
    (width, height): (u32, u32),
    transform: Transform,
) -> (Entity, Handle<Image>) {
    use bevy::camera::RenderTarget;
    use bevy::render::render_resource::{TextureFormat, TextureUsages};
    let mut target = Image::new_target_texture(width, height, TextureFormat::Rgba8UnormSrgb, None);
    target.texture_descriptor.usage |= TextureUsages::COPY_SRC;
    let target = app.world_mut().resource_mut::<Assets<Image>>().add(target);
    let camera = app
        .world_mut()
        .spawn((
            Camera3d::default(),
            RenderTarget::Image(target.clone().into()),
            transform,
        ))
        .id();
    (camera, target)
}

/// Spawns a head drawn from `asset`, starts reading its texture back and waits until it shows.
pub fn spawn_captured_head(
    app: &mut App,
    asset: HeadAsset,
    settings: HeadSettings,
) -> (Entity, FrameCapture) {
    let handle = app
        .world_mut()
        .resource_mut::<Assets<HeadAsset>>()
        .add(asset);
    let head = app
        .world_mut()
        .spawn(
            TalkingHead::from_asset(handle)
                .with_settings(settings)
                .with_motion(frozen()),
        )
        .id();
    app.update();
    let (capture, _) =
        bevy_talking_head::offline::capture_head(app, head).expect("capture the head's texture");
    first_visible_frame(app, &capture);
    (head, capture)
}

/// Steps the app (waiting for each frame's GPU work, see `offline::step`) until `done` holds, at most
/// `max_frames` updates; returns whether it held.
pub fn run_until(app: &mut App, max_frames: usize, mut done: impl FnMut(&mut App) -> bool) -> bool {
    for _ in 0..max_frames {
        bevy_talking_head::offline::step(app);
        if done(app) {
            return true;
        }
    }
    false
}

/// Steps until `head` is Ready (panics with its status otherwise).
pub fn wait_until_ready(app: &mut App, head: Entity, max_frames: usize) {
    let ready = run_until(app, max_frames, |app| {
        app.world().get::<TalkingHeadStatus>(head) == Some(&TalkingHeadStatus::Ready)
    });
    assert!(
        ready,
        "status: {:?}",
        app.world().get::<TalkingHeadStatus>(head)
    );
}

/// Steps until the capture holds a frame rendered after this call (the pipeline may still be compiling at first;
/// a frame counts once it has been rendered with the current components: `settle` updates after the change).
pub fn fresh_frame(app: &mut App, capture: &FrameCapture, settle: u64) -> CapturedFrame {
    let start = capture.latest().sequence;
    let ok = run_until(app, 2000, |_| capture.latest().sequence >= start + settle);
    assert!(ok, "no frame came back from the GPU");
    capture.latest()
}

/// Steps until some frame has visible pixels (the compute pipeline has compiled and run).
pub fn first_visible_frame(app: &mut App, capture: &FrameCapture) -> CapturedFrame {
    let ok = run_until(app, 3000, |_| coverage(&capture.latest()) > 0.0);
    let last = capture.latest();
    assert!(
        ok,
        "the head never appeared in its texture ({} frames read back, {} bytes)",
        last.sequence,
        last.linear.len()
    );
    capture.latest()
}

/// Fraction of pixels with any opacity.
pub fn coverage(frame: &CapturedFrame) -> f64 {
    frame.coverage()
}

/// Saves premultiplied linear pixels (a head's texture) as PNG under the test's temporary folder.
pub fn save_png(name: &str, width: u32, height: u32, linear: &[f32]) -> std::path::PathBuf {
    let rgba = bevy_talking_head::render::premultiplied_to_srgba8(linear);
    save_png_srgb8(name, width, height, &rgba)
}

/// Saves sRGB RGBA8 pixels (a camera's render target) as PNG under the test's temporary folder.
pub fn save_png_srgb8(name: &str, width: u32, height: u32, rgba: &[u8]) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("talking_head");
    std::fs::create_dir_all(&dir).expect("create the test output folder");
    let path = dir.join(format!("{name}.png"));
    image::save_buffer(&path, rgba, width, height, image::ExtendedColorType::Rgba8)
        .expect("write a PNG");
    path
}

/// Small deterministic generator, so the tests need no extra crate.
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number in `0..bound`.
    pub fn below(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % bound
    }
}

/// The built program of example `name` (integration tests run from target/<profile>/deps; examples are built into
/// target/<profile>/examples by `cargo build --examples`, which `tools/dev test` runs first).
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test path");
    let program = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join(name))
        .expect("the examples folder");
    assert!(
        program.exists(),
        "{} is missing: build the examples (cargo build --release --examples)",
        program.display()
    );
    program
}

/// A shipped portrait (`assets/portraits/NAME`) and its head and layers, built or loaded from the disk cache.
pub fn built_portrait(name: &str) -> (image::DynamicImage, bevy_talking_head::identity::BuiltHead) {
    let registry = bevy_talking_head::inference::ModelRegistry::load_default()
        .unwrap_or_else(|e| panic!("{e}"));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/portraits")
        .join(name);
    let portrait = image::open(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let built = bevy_talking_head::identity::head_from_portrait(&registry, &portrait)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (portrait, built)
}
