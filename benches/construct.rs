//! Portrait → head on one thread (ONNX Runtime with one intra-op thread; the construction itself is single
//! threaded), and loading a built head from the disk cache. Prints each against issue 4's goals: ≤ 5 s to build,
//! ≤ 100 ms to load.

mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use bevy_talking_head::identity::cache;
use bevy_talking_head::identity::{
    ConstructSettings, build_head, find_face_landmarks, head_from_portrait, person_mask,
};
use bevy_talking_head::inference::ModelRegistry;
use common::bench;
use criterion::Criterion;

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
        black_box(head_from_portrait(&registry, &portrait).expect("a head"));
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

    let goal = |name: &str| match name {
        "portrait_to_head" => " (goal <= 5000 ms)",
        "cache_load" => " (goal <= 100 ms)",
        _ => "",
    };
    println!("astronaut.png (512x512), one thread:");
    for (name, each) in common::means() {
        let each = each.as_secs_f64() * 1e3;
        println!("  {name:<18} {each:>8.1} ms{}", goal(name));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
