//! Timing shared by the benchmarks: criterion measures, and every batch's time is also kept so that a benchmark
//! can print its own summary (ratios, × real time, goals) at the end of the same run.
#![allow(dead_code)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;

/// Total time and iterations per benchmark, over every batch criterion ran.
static TOTALS: Mutex<Vec<(&'static str, Duration, u64)>> = Mutex::new(Vec::new());

/// Adds a batch of `iters` iterations that took `total` to benchmark `name`.
pub fn record(name: &'static str, total: Duration, iters: u64) {
    if let Ok(mut totals) = TOTALS.lock() {
        match totals.iter_mut().find(|(n, _, _)| *n == name) {
            Some(entry) => {
                entry.1 += total;
                entry.2 += iters;
            }
            None => totals.push((name, total, iters)),
        }
    }
}

/// Benchmarks `work` under `name` and records its time.
pub fn bench(c: &mut Criterion, name: &'static str, mut work: impl FnMut()) {
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                work();
            }
            let total = start.elapsed();
            record(name, total, iters);
            total
        })
    });
}

/// Mean time per iteration of each benchmark recorded so far, in the order they first ran.
pub fn means() -> Vec<(&'static str, Duration)> {
    TOTALS
        .lock()
        .map(|totals| {
            totals
                .iter()
                .map(|(name, total, iters)| (*name, total.div_f64((*iters).max(1) as f64)))
                .collect()
        })
        .unwrap_or_default()
}
