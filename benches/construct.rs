//! Portrait → head on one thread (ONNX Runtime with one intra-op thread; the construction itself is single
//! threaded), and loading a built head from the disk cache. Prints each against issue 4's goals: ≤ 5 s to build,
//! ≤ 100 ms to load.

use std::hint::black_box;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bevy_talking_head::identity::cache;
use bevy_talking_head::identity::{
    ConstructSettings, build_head, find_face_landmarks, person_mask,
};
use bevy_talking_head::inference::ModelRegistry;
use criterion::Criterion;

/// Total time and iterations per benchmark, over every batch criterion ran.
static TOTALS: Mutex<Vec<(&'static str, Duration, u64)>> = Mutex::new(Vec::new());

fn bench(c: &mut Criterion, name: &'static str, mut work: impl FnMut()) {
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                work();
            }
            let total = start.elapsed();
            if let Ok(mut totals) = TOTALS.lock() {
                match totals.iter_mut().find(|(n, _, _)| *n == name) {
                    Some(entry) => {
                        entry.1 += total;
                        entry.2 += iters;
                    }
                    None => totals.push((name, total, iters)),
                }
            }
            total
        })
    });
}

fn main() {
    let registry = match ModelRegistry::load_default() {
        Ok(registry) => registry,
        Err(error) => {
            eprintln!("no construction benchmark: {error}");
            return;
        }
    };
    let portrait =
        image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/portraits/astronaut.png"))
            .expect("the shipped portrait");
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();

    bench(&mut criterion, "landmarks", || {
        black_box(find_face_landmarks(&registry, &portrait).expect("a face"));
    });
    bench(&mut criterion, "person_mask", || {
        black_box(person_mask(&registry, &portrait).expect("a mask"));
    });
    let landmarks = find_face_landmarks(&registry, &portrait).expect("a face");
    let mask = person_mask(&registry, &portrait).expect("a mask");
    bench(&mut criterion, "build_head", || {
        black_box(build_head(
            &portrait,
            &landmarks,
            Some(&mask),
            ConstructSettings::default(),
        ));
    });
    bench(&mut criterion, "portrait_to_head", || {
        let landmarks = find_face_landmarks(&registry, &portrait).expect("a face");
        let mask = person_mask(&registry, &portrait).expect("a mask");
        black_box(build_head(
            &portrait,
            &landmarks,
            Some(&mask),
            ConstructSettings::default(),
        ));
    });
    let (asset, _) = build_head(
        &portrait,
        &landmarks,
        Some(&mask),
        ConstructSettings::default(),
    );
    let dir = std::env::temp_dir().join("bevy_talking_head_bench_cache");
    let rgba = portrait.to_rgba8();
    let key = cache::portrait_key(rgba.width(), rgba.height(), rgba.as_raw());
    cache::save(&dir, &key, &asset).expect("cache the head");
    bench(&mut criterion, "cache_load", || {
        black_box(cache::load(&dir, &key).expect("readable").expect("cached"));
    });
    criterion.final_summary();

    let totals = TOTALS.lock().map(|t| t.clone()).unwrap_or_default();
    let goal = |name: &str| match name {
        "portrait_to_head" => " (goal <= 5000 ms)",
        "cache_load" => " (goal <= 100 ms)",
        _ => "",
    };
    println!("astronaut.png (512x512), one thread:");
    for (name, total, iters) in totals {
        let each = total.div_f64(iters as f64).as_secs_f64() * 1e3;
        println!("  {name:<18} {each:>8.1} ms{}", goal(name));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
