//! One 256² frame of the procedural head: the CPU reference renderer (one thread) against the GPU compute pass on
//! this machine's adapter (lavapipe without a GPU), measured in the same run; prints the ratio.
//!
//! The GPU figure is a whole app frame with the head's texture read back (so the GPU work has finished), minus
//! nothing: it is what a headless renderer pays per frame.
//!
//! Then what the whole-photo display costs over the head alone: the astronaut's head at the photo's camera,
//! head-and-shoulders framing, 256 px on the long side, rendered by the CPU reference alone and composited over the
//! photo's plates (the same march, so the same rays and samples); prints the ratio.

mod common;

use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy_talking_head::identity::portrait_quality::{head_march, head_pose};
use bevy_talking_head::identity::procedural::procedural_head;
use bevy_talking_head::identity::{ExpressionBase, head_from_portrait};
use bevy_talking_head::inference::ModelRegistry;
use bevy_talking_head::offline::{
    FrameCapture, capture_head, finish_headless_app, headless_plugins,
};
use bevy_talking_head::prelude::*;
use bevy_talking_head::render::{
    HeadCamera, MarchUniform, render_portrait_reference, render_reference,
};
use common::record;
use criterion::Criterion;

const SIZE: u32 = 256;
const STEPS: u32 = 96;

/// App updates per read-back frame in the GPU benchmark (1.0 means every update rendered one new frame).
static UPDATES: Mutex<(u64, u64)> = Mutex::new((0, 0));

fn record_updates(updates: u64, frames: u64) {
    if let Ok(mut u) = UPDATES.lock() {
        u.0 += updates;
        u.1 += frames;
    }
}

fn bench_cpu(c: &mut Criterion) {
    let asset = procedural_head(64, 32);
    let camera = HeadCamera::orbit(0.3, 0.1, 0.6, asset.half_extent.length());
    let march = MarchUniform::new(&asset, &camera, SIZE, SIZE, STEPS);
    let code = [0.8, 0.3, 0.0];
    c.bench_function("cpu_reference_256", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(render_reference(&asset, &code, &march));
            }
            let total = start.elapsed();
            record("cpu", total, iters);
            total
        })
    });
}

/// The head alone against the whole photo, the same head, camera, size and samples (see the file's doc).
fn bench_portrait(c: &mut Criterion) {
    let registry = match ModelRegistry::load_default() {
        Ok(registry) => registry,
        Err(error) => {
            eprintln!("no whole-photo benchmark: {error}");
            return;
        }
    };
    let portrait = image::open(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/portraits/astronaut.png"),
    )
    .expect("the shipped portrait");
    let built = head_from_portrait(&registry, &portrait).expect("a head");
    let (asset, layers) = (&built.asset, &built.layers);
    let crop = layers.head_and_shoulders;
    let pose = head_pose(0.0, 0.0, 0.0);
    let alone = head_march(
        asset,
        layers,
        ExpressionBase::Neutral,
        pose,
        crop,
        (SIZE, STEPS),
    );
    let whole = alone.over_portrait(layers, crop, pose);
    let weights = asset.basis_weights(&[], ExpressionBase::Neutral);
    common::bench(c, "head_alone", || {
        black_box(render_reference(asset, &weights, &alone));
    });
    common::bench(c, "whole_photo", || {
        black_box(render_portrait_reference(asset, layers, &weights, &whole));
    });
}

/// A headless app with `count` procedural heads of `size`² pixels side by side, each rendering every frame, the
/// first one's texture read back; `None` (after saying why) without an adapter. Still heads when `still`, else the
/// default idle head motion (the view changes every frame, as in a game).
fn heads_app(size: u32, count: usize, still: bool) -> Option<(App, FrameCapture, String)> {
    let mut app = App::new();
    app.add_plugins((headless_plugins(), TalkingHeadPlugin));
    if let Err(error) = finish_headless_app(&mut app) {
        eprintln!("skipping the GPU benchmark: {error}");
        return None;
    }
    let handle = app
        .world_mut()
        .resource_mut::<Assets<HeadAsset>>()
        .add(procedural_head(64, 32));
    let motion = if still {
        MotionSettings {
            head_motion_scale: 0.0,
            blink_rate: 0.0,
            ..MotionSettings::default()
        }
    } else {
        MotionSettings::default()
    };
    let heads: Vec<Entity> = (0..count)
        .map(|i| {
            let settings = HeadSettings {
                resolution: size,
                steps_per_ray: STEPS,
                view: HeadView::Orbit {
                    yaw: 0.3 - 0.1 * i as f32,
                    pitch: 0.1,
                    distance: 0.6,
                },
                display: HeadDisplay::TextureOnly,
                expression_base: Default::default(),
            };
            app.world_mut()
                .spawn((
                    TalkingHead::from_asset(handle.clone())
                        .with_settings(settings)
                        .with_motion(motion),
                    MotionCode(vec![0.8, 0.3, 0.0]),
                ))
                .id()
        })
        .collect();
    app.update();
    let Ok((capture, _)) = capture_head(&mut app, heads[0]) else {
        eprintln!("skipping the GPU benchmark: no head texture");
        return None;
    };
    // Warm up until the pipeline has compiled and frames come back.
    for _ in 0..2000 {
        app.update();
        if capture.latest().coverage() > 0.0 {
            break;
        }
    }
    let device = app
        .get_sub_app(bevy::render::RenderApp)
        .and_then(|r| {
            r.world()
                .get_resource::<bevy::render::renderer::RenderAdapterInfo>()
        })
        .map(|info| format!("{} ({:?})", info.name, info.backend))
        .unwrap_or_default();
    Some((app, capture, device))
}

fn bench_gpu(c: &mut Criterion) {
    let Some((mut app, capture, device)) = heads_app(SIZE, 1, true) else {
        return;
    };
    println!("GPU adapter: {device}");
    let head = app
        .world_mut()
        .query_filtered::<Entity, With<TalkingHead>>()
        .single(app.world())
        .expect("one head");
    c.bench_function("gpu_frame_256", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let mut updates = 0u64;
            for i in 0..iters {
                // The view stays, the code moves a hair each frame: the head is drawn every frame (a head whose
                // inputs do not change is not redrawn at all).
                let cheek = if i % 2 == 0 { 0.0 } else { 0.001 };
                app.world_mut()
                    .entity_mut(head)
                    .insert(MotionCode(vec![0.8, 0.3, cheek]));
                let before = capture.latest().sequence;
                while capture.latest().sequence == before {
                    app.update();
                    updates += 1;
                }
            }
            let total = start.elapsed();
            record("gpu", total, iters);
            record_updates(updates, iters);
            total
        })
    });
}

/// Frames per second of scenes given as `SIZExCOUNT[,…]` in `TALKING_HEAD_BENCH_SCENES` (e.g. `512x1,512x8`), heads
/// moving as in a game: app updates over 10 s (at least 20), every head rendered each update, one read back.
/// Meant for GPU machines; at lavapipe speeds a 512² frame takes seconds.
fn scene_throughput() {
    let Ok(scenes) = std::env::var("TALKING_HEAD_BENCH_SCENES") else {
        return;
    };
    for scene in scenes.split(',') {
        let parsed = scene.split_once('x').and_then(|(size, count)| {
            Some((size.parse::<u32>().ok()?, count.parse::<usize>().ok()?))
        });
        let Some((size, count)) = parsed.filter(|(s, c)| *s > 0 && *c > 0) else {
            eprintln!("TALKING_HEAD_BENCH_SCENES: '{scene}' is not SIZExCOUNT (e.g. 512x8)");
            continue;
        };
        let Some((mut app, capture, device)) = heads_app(size, count, false) else {
            return;
        };
        let (first, start) = (capture.latest().sequence, Instant::now());
        let mut updates = 0u32;
        while updates < 20 || start.elapsed() < Duration::from_secs(10) {
            app.update();
            updates += 1;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let read_back = capture.latest().sequence - first;
        println!(
            "{count} head(s) at {size}x{size}, {STEPS} steps, moving, on {device}: {:.1} frames/s \
             ({updates} updates in {elapsed:.1} s, {:.2} ms each; {read_back} frames read back)",
            f64::from(updates) / elapsed,
            elapsed * 1e3 / f64::from(updates)
        );
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    bench_cpu(&mut criterion);
    bench_gpu(&mut criterion);
    bench_portrait(&mut criterion);
    scene_throughput();
    criterion.final_summary();
    let means = common::means();
    let get = |name| {
        means
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, mean)| *mean)
    };
    if let (Some(cpu), Some(gpu)) = (get("cpu"), get("gpu")) {
        let (updates, frames) = UPDATES.lock().map(|u| *u).unwrap_or_default();
        println!(
            "256x256, {STEPS} steps: CPU reference {:.1} ms/frame, GPU {:.1} ms/frame ({:.2} app updates per frame), \
             CPU/GPU = {:.2}x",
            cpu.as_secs_f64() * 1e3,
            gpu.as_secs_f64() * 1e3,
            updates as f64 / frames.max(1) as f64,
            cpu.as_secs_f64() / gpu.as_secs_f64()
        );
    }
    if let (Some(alone), Some(whole)) = (get("head_alone"), get("whole_photo")) {
        println!(
            "astronaut, head and shoulders, {SIZE} px long side, {STEPS} steps, CPU reference: head alone {:.1} ms, \
             whole photo {:.1} ms: the composite adds {:+.0} % (goal <= 25 %)",
            alone.as_secs_f64() * 1e3,
            whole.as_secs_f64() * 1e3,
            (whole.as_secs_f64() / alone.as_secs_f64() - 1.0) * 100.0
        );
    }
}
