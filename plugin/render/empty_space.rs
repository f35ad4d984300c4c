//! Empty-space skipping: where along a ray the head cannot be, so that the march jumps over it instead of
//! decoding sample after sample of nothing.
//!
//! Per head asset, a grid of [`CELLS`]³ cells over the head's box holds, for each cell, a lower bound on the
//! distance (metres) from any point of the cell to any point where the canonical head may have density
//! ([`EmptySpace::clearance`]). A cell may hold density when interval arithmetic says so: the tri-plane features
//! over the cell lie between the smallest and largest texel values its bilinear lookups can reach, and pushing
//! those intervals through the decoder (linear layers and ReLU) bounds the density from above; where that bound is
//! not positive the cell is empty, wherever a sample falls in it. The distance to the nearest cell that may hold
//! density is counted in cells (the largest index difference along any axis), so a cell `k` cells away is at least
//! `k − 1` of the smallest cell side away.
//!
//! The motion moves points: the renderer draws at `p` the canonical point `p + warp(p)`. The blended motion bases'
//! longest displacement on each plane bounds the warp (a bilinear lookup never exceeds its longest texel), so
//! `|warp| ≤` their sum, and near a point only the texels its lookups can touch count ([`super::WarpReach`]; the
//! shader's `reach_cells` pass gathers both each frame). A sample whose clearance exceeds the bound anywhere shows
//! nothing, and neither does any sample nearer to it than the difference, so the march jumps over them; a sample
//! whose clearance exceeds the bound around its own cell shows nothing either, and is passed without decoding.
//! The picture is the same as with every sample taken: every skipped sample had zero density.
//!
//! The GPU pass bakes it when the asset is uploaded, the CPU reference when it is prepared
//! ([`super::ReferenceRenderer`]); both skip the same way.

use bevy::math::Vec3;

use crate::identity::{DecoderMlp, HeadAsset, PLANES};

/// Cells along each axis of the head's box.
pub const CELLS: usize = 48;

/// The empty space around a head asset's canonical shape (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct EmptySpace {
    /// Per cell, `[z][y][x]`: a lower bound on the distance (metres) from any point of the cell to any point where
    /// the canonical head may have density (0 in and next to such cells).
    pub clearance: Vec<f32>,
}

impl EmptySpace {
    /// Bakes the empty space of `asset` (which must be valid: [`HeadAsset::validate`]).
    pub fn bake(asset: &HeadAsset) -> Self {
        let features: Vec<f32> = asset.triplane.iter().map(|v| v.to_f32()).collect();
        Self::bake_features(asset, &features)
    }

    /// [`bake`](Self::bake) with the asset's tri-plane already converted to single floats.
    pub(super) fn bake_features(asset: &HeadAsset, features: &[f32]) -> Self {
        let occupied = occupied_cells(asset, features);
        let side = (2.0 * asset.half_extent / CELLS as f32).min_element();
        let clearance = cells_to_nearest(&occupied)
            .into_iter()
            .map(|k| k.saturating_sub(1) as f32 * side)
            .collect();
        Self { clearance }
    }
}

/// The cell (x, y, z indices) holding head-space point `p`, clamped to the box of `half_extent`.
pub fn cell_of(p: Vec3, half_extent: Vec3) -> [usize; 3] {
    let n = CELLS as f32;
    // Clamped to 0 or more, the cast's truncation is the floor.
    let cell = ((p / half_extent + 1.0) * 0.5 * n)
        .clamp(Vec3::ZERO, Vec3::splat(n - 1.0))
        .as_uvec3();
    [cell.x as usize, cell.y as usize, cell.z as usize]
}

/// The index into [`EmptySpace::clearance`] of a cell.
pub fn cell_index([x, y, z]: [usize; 3]) -> usize {
    (z * CELLS + y) * CELLS + x
}

/// The first and last texels of a plane of `res` texels that bilinear lookups (as the renderers make them, clamped
/// to the plane) of points in cell `i` along an axis can touch.
fn cell_texels(i: usize, res: usize) -> (usize, usize) {
    let r = res as f32;
    let texel = |a: f32| {
        let s = ((a + 1.0) * 0.5 * r - 0.5).clamp(0.0, r - 1.0);
        (s.floor() as usize).min(res - 2)
    };
    let edge = |i: usize| -1.0 + 2.0 * i as f32 / CELLS as f32;
    (texel(edge(i)), texel(edge(i + 1)) + 1)
}

/// The texels a cell's lookups can touch, with one spare on each side: the shader's `footprint` finds the same
/// range with its own rounding, which the spare covers.
pub fn footprint(i: usize, res: usize) -> (usize, usize) {
    let (first, last) = cell_texels(i, res);
    (first.saturating_sub(1), (last + 1).min(res - 1))
}

/// Per plane and per pair of cell indices along the plane's two axes, the smallest and largest value of each
/// feature channel over the texels its lookups can touch: `[plane][b][a][channel]` of (min, max).
fn feature_bounds(asset: &HeadAsset, features: &[f32]) -> Vec<(f32, f32)> {
    let (r, c) = (asset.triplane_resolution, asset.channels);
    let ranges: Vec<(usize, usize)> = (0..CELLS).map(|i| cell_texels(i, r)).collect();
    let mut bounds = vec![(f32::MAX, f32::MIN); PLANES * CELLS * CELLS * c];
    for plane in 0..PLANES {
        for (b, &(y0, y1)) in ranges.iter().enumerate() {
            for (a, &(x0, x1)) in ranges.iter().enumerate() {
                let out = ((plane * CELLS + b) * CELLS + a) * c;
                for y in y0..=y1 {
                    for x in x0..=x1 {
                        let texel = ((plane * r + y) * r + x) * c;
                        for ch in 0..c {
                            let v = features[texel + ch];
                            let (lo, hi) = &mut bounds[out + ch];
                            *lo = lo.min(v);
                            *hi = hi.max(v);
                        }
                    }
                }
            }
        }
    }
    bounds
}

/// Whether each cell may hold density: the decoder's density output bounded from above by interval arithmetic over
/// the cell's feature bounds.
fn occupied_cells(asset: &HeadAsset, features: &[f32]) -> Vec<bool> {
    let c = asset.channels;
    let bounds = feature_bounds(asset, features);
    let decoder = &asset.decoder;
    let mut occupied = vec![false; CELLS * CELLS * CELLS];
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let slab = CELLS.div_ceil(threads) * CELLS * CELLS;
    std::thread::scope(|scope| {
        for (part, cells) in occupied.chunks_mut(slab).enumerate() {
            let bounds = &bounds;
            scope.spawn(move || {
                let (mut lo, mut hi) = (vec![0.0f64; c], vec![0.0f64; c]);
                for (k, cell) in cells.iter_mut().enumerate() {
                    let i = part * slab + k;
                    let (x, y, z) = (i % CELLS, i / CELLS % CELLS, i / (CELLS * CELLS));
                    // The planes a point reads: (x, y), (x, z), (z, y), as the renderers' `plane_coords`.
                    lo.fill(0.0);
                    hi.fill(0.0);
                    for (plane, b, a) in [(0, y, x), (1, z, x), (2, y, z)] {
                        let at = ((plane * CELLS + b) * CELLS + a) * c;
                        for ch in 0..c {
                            let (l, h) = bounds[at + ch];
                            lo[ch] += f64::from(l);
                            hi[ch] += f64::from(h);
                        }
                    }
                    *cell = may_hold_density(decoder, &lo, &hi);
                }
            });
        }
    });
    occupied
}

/// Whether the decoder's density can be positive for features between `lo` and `hi` (per channel): its
/// largest value there, `b2[0] + Σ w2[0][h] relu(b1[h] + Σ w1[h][c] f_c)`, by interval arithmetic.
fn may_hold_density(decoder: &DecoderMlp, lo: &[f64], hi: &[f64]) -> bool {
    let c = lo.len();
    let mut density = f64::from(decoder.b2[0]);
    let mut magnitude = density.abs();
    for h in 0..decoder.hidden {
        let row = &decoder.w1[h * c..(h + 1) * c];
        let (mut s_lo, mut s_hi) = (f64::from(decoder.b1[h]), f64::from(decoder.b1[h]));
        for ((&w, &l), &u) in row.iter().zip(lo).zip(hi) {
            let w = f64::from(w);
            s_lo += (w * l).min(w * u);
            s_hi += (w * l).max(w * u);
        }
        let (h_lo, h_hi) = (s_lo.max(0.0), s_hi.max(0.0));
        let w2 = f64::from(decoder.w2[h]);
        density += (w2 * h_lo).max(w2 * h_hi);
        magnitude += w2.abs() * h_hi;
    }
    // A margin for the renderers' single-precision sums.
    density > -1e-5 * magnitude
}

/// Per cell, how many cells away (the largest index difference along any axis) the nearest occupied cell is: 0
/// for occupied cells; `usize::MAX` everywhere when none is occupied.
fn cells_to_nearest(occupied: &[bool]) -> Vec<usize> {
    let n = CELLS as isize;
    let mut distance = vec![usize::MAX; occupied.len()];
    let mut frontier: Vec<usize> = (0..occupied.len()).filter(|&i| occupied[i]).collect();
    for &i in &frontier {
        distance[i] = 0;
    }
    let mut k = 0;
    while !frontier.is_empty() {
        k += 1;
        let mut next = Vec::new();
        for &i in &frontier {
            let (x, y, z) = (
                (i % CELLS) as isize,
                (i / CELLS % CELLS) as isize,
                (i / (CELLS * CELLS)) as isize,
            );
            for dz in -1..=1 {
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let (a, b, c) = (x + dx, y + dy, z + dz);
                        if a < 0 || b < 0 || c < 0 || a >= n || b >= n || c >= n {
                            continue;
                        }
                        let j = ((c * n + b) * n + a) as usize;
                        if distance[j] == usize::MAX {
                            distance[j] = k;
                            next.push(j);
                        }
                    }
                }
            }
        }
        frontier = next;
    }
    distance
}
