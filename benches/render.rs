//! The volume renderer before and after this work (empty-space skipping, and constructed heads decoded in closed
//! form), measured in the same run, with the ratios printed:
//! - the CPU reference at 256² (procedural head and the astronaut's): one thread taking every sample through the
//!   dense decoder against all threads skipping the empty space (and the closed form where it applies);
//! - the GPU compute pass on this machine's adapter (lavapipe without a GPU), one 256² head whose view moves every
//!   frame: a whole app frame with the head's texture read back (so the GPU work has finished), every sample
//!   through the dense decoder against skipping with the closed form;
//! - what the whole-photo display costs over the head alone: the astronaut's head at the photo's camera,
//!   head-and-shoulders framing, 256 px on the long side, alone and composited over the photo's plates (the same
//!   march, so the same rays and samples);
//! - with `TALKING_HEAD_BENCH_SCENES=SIZExCOUNT,…`, scenes of moving heads, frames per second both ways.

mod common;

use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy_talking_head::identity::portrait_quality::{head_march, head_pose};
use bevy_talking_head::identity::procedural::procedural_head;
use bevy_talking_head::identity::{BuiltHead, ExpressionBase, head_from_portrait};
use bevy_talking_head::inference::ModelRegistry;
use bevy_talking_head::offline::{
    FrameCapture, capture_head, finish_headless_app, headless_plugins,
};
use bevy_talking_head::prelude::*;
use bevy_talking_head::render::{HeadCamera, MarchOptions, MarchUniform, ReferenceRenderer};
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

/// The CPU reference at 256², before and after empty-space skipping: one thread taking every sample (the renderer
/// as it was) against all threads skipping the empty space, on the procedural head and the astronaut's.
fn bench_cpu(c: &mut Criterion, astronaut: Option<&HeadAsset>) {
    let procedural = procedural_head(64, 32);
    let heads = [("procedural", Some(&procedural)), ("astronaut", astronaut)];
    for (name, asset) in heads {
        let Some(asset) = asset else { continue };
        let camera = HeadCamera::orbit(0.3, 0.1, 0.6, asset.half_extent.length());
        let march = MarchUniform::new(asset, &camera, SIZE, SIZE, STEPS);
        let mut code = vec![0.0; asset.basis_count];
        code[..3].copy_from_slice(&[0.8, 0.3, 0.0]);
        let old = ReferenceRenderer::new(asset).with_threads(1);
        let new = ReferenceRenderer::new(asset);
        let every = march.without_skipping().with_dense_decoder();
        let (old_name, new_name) = match name {
            "procedural" => ("cpu_old_procedural", "cpu_new_procedural"),
            _ => ("cpu_old_astronaut", "cpu_new_astronaut"),
        };
        common::bench(c, old_name, || {
            black_box(old.render(&code, &every));
        });
        common::bench(c, new_name, || {
            black_box(new.render(&code, &march));
        });
    }
}

/// The astronaut's head and layers, built (or loaded from the cache); `None` (after saying why) without models.
fn astronaut() -> Option<BuiltHead> {
    let registry = match ModelRegistry::load_default() {
        Ok(registry) => registry,
        Err(error) => {
            eprintln!("no portrait benchmarks: {error}");
            return None;
        }
    };
    let portrait = image::open(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/portraits/astronaut.png"),
    )
    .expect("the shipped portrait");
    Some(head_from_portrait(&registry, &portrait).expect("a head"))
}

/// The head alone against the whole photo, the same head, camera, size and samples (see the file's doc).
fn bench_portrait(c: &mut Criterion, built: &BuiltHead) {
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
    let renderer = ReferenceRenderer::new(asset);
    common::bench(c, "head_alone", || {
        black_box(renderer.render(&weights, &alone));
    });
    common::bench(c, "whole_photo", || {
        black_box(renderer.render_portrait(layers, &weights, &whole));
    });
}

/// A headless app with `count` procedural heads of `size`² pixels side by side, each rendering every frame, the
/// first one's texture read back; `None` (after saying why) without an adapter. Still heads when `still`, else the
/// default idle head motion (the view changes every frame, as in a game).
fn heads_app(
    asset: HeadAsset,
    size: u32,
    count: usize,
    still: bool,
) -> Option<(App, FrameCapture, String)> {
    let mut app = App::new();
    app.add_plugins((headless_plugins(), TalkingHeadPlugin));
    if let Err(error) = finish_headless_app(&mut app) {
        eprintln!("skipping the GPU benchmark: {error}");
        return None;
    }
    let handle = app
        .world_mut()
        .resource_mut::<Assets<HeadAsset>>()
        .add(asset);
    let motion = if still {
        MotionSettings {
            head_motion_scale: 0.0,
            blink_rate: 0.0,
            saccades: 0.0,
            ..MotionSettings::default()
        }
    } else {
        MotionSettings::default()
    };
    let heads: Vec<Entity> = (0..count)
        .map(|i| {
            let settings = HeadSettings {
                resolution: size,
                min_resolution: size,
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

/// One 256² head on this machine's adapter, its view turning a little every frame (as when the camera or the head
/// moves, so every frame is drawn), each frame read back: every sample taken (as before) against empty-space
/// skipping, in the same app.
fn bench_gpu(c: &mut Criterion, asset: HeadAsset, [old, new]: [&'static str; 2]) {
    let Some((mut app, capture, device)) = heads_app(asset, SIZE, 1, true) else {
        return;
    };
    println!("GPU adapter: {device}");
    let head = app
        .world_mut()
        .query_filtered::<Entity, With<TalkingHead>>()
        .single(app.world())
        .expect("one head");
    for (name, skip) in [(old, false), (new, true)] {
        app.insert_resource(MarchOptions {
            skip_empty_space: skip,
            closed_form_decoder: skip,
        });
        c.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let mut updates = 0u64;
                for i in 0..iters {
                    if let Some(mut talking) = app.world_mut().get_mut::<TalkingHead>(head) {
                        // A new view every frame, never one seen before (as a moving camera gives).
                        talking.settings.view = HeadView::Orbit {
                            yaw: 0.3 + 1e-4 * (i % 5000) as f32,
                            pitch: 0.1,
                            distance: 0.6,
                        };
                    }
                    let before = capture.latest().sequence;
                    while capture.latest().sequence == before {
                        app.update();
                        updates += 1;
                    }
                }
                let total = start.elapsed();
                record(name, total, iters);
                record_updates(updates, iters);
                total
            })
        });
    }
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
        let Some((mut app, capture, device)) =
            heads_app(procedural_head(64, 32), size, count, false)
        else {
            return;
        };
        for (what, skip) in [("every sample", false), ("skipping empty space", true)] {
            app.insert_resource(MarchOptions {
                skip_empty_space: skip,
                closed_form_decoder: skip,
            });
            let (first, start) = (capture.latest().sequence, Instant::now());
            let mut updates = 0u32;
            while updates < 20 || start.elapsed() < Duration::from_secs(10) {
                app.update();
                updates += 1;
            }
            let elapsed = start.elapsed().as_secs_f64();
            let read_back = capture.latest().sequence - first;
            println!(
                "{count} head(s) at {size}x{size}, {STEPS} steps, moving, {what}, on {device}: {:.1} frames/s \
                 ({updates} updates in {elapsed:.1} s, {:.2} ms each; {read_back} frames read back)",
                f64::from(updates) / elapsed,
                elapsed * 1e3 / f64::from(updates)
            );
        }
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let built = astronaut();
    bench_cpu(&mut criterion, built.as_ref().map(|b| &b.asset));
    bench_gpu(
        &mut criterion,
        procedural_head(64, 32),
        ["gpu_old_procedural", "gpu_new_procedural"],
    );
    if let Some(built) = &built {
        bench_gpu(
            &mut criterion,
            built.asset.clone(),
            ["gpu_old_astronaut", "gpu_new_astronaut"],
        );
    }
    if let Some(built) = &built {
        bench_portrait(&mut criterion, built);
    }
    scene_throughput();
    criterion.final_summary();
    let means = common::means();
    let get = |name| {
        means
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, mean)| *mean)
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (what, old, new) in [
        (
            "CPU reference, procedural head",
            "cpu_old_procedural",
            "cpu_new_procedural",
        ),
        (
            "CPU reference, astronaut's head",
            "cpu_old_astronaut",
            "cpu_new_astronaut",
        ),
    ] {
        if let (Some(old), Some(new)) = (get(old), get(new)) {
            println!(
                "{what}, {SIZE}x{SIZE}, {STEPS} steps: every sample on 1 thread {:.1} ms, skipping empty space on \
                 all threads {:.1} ms: {:.1}x faster",
                ms(old),
                ms(new),
                old.as_secs_f64() / new.as_secs_f64()
            );
        }
    }
    for (what, old, new) in [
        (
            "procedural head",
            "gpu_old_procedural",
            "gpu_new_procedural",
        ),
        ("astronaut's head", "gpu_old_astronaut", "gpu_new_astronaut"),
    ] {
        if let (Some(old), Some(new)) = (get(old), get(new)) {
            println!(
                "GPU pass, {what}, {SIZE}x{SIZE}, {STEPS} steps, view moving, whole app frame with read-back: every \
                 sample {:.1} ms ({:.1} frames/s), skipping empty space {:.1} ms ({:.1} frames/s): {:.1}x faster",
                ms(old),
                1.0 / old.as_secs_f64(),
                ms(new),
                1.0 / new.as_secs_f64(),
                old.as_secs_f64() / new.as_secs_f64(),
            );
        }
    }
    let (updates, frames) = UPDATES.lock().map(|u| *u).unwrap_or_default();
    println!(
        "GPU benchmarks: {:.2} app updates per frame read back",
        updates as f64 / frames.max(1) as f64
    );
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
