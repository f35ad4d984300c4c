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
//! The motion moves points: the renderer draws at `p` the canonical point `p + warp(p)`. Each basis's longest
//! displacement at weight 1 ([`EmptySpace::reach`], summed over the three planes a point reads) bounds the warp
//! of a motion code: `|warp| ≤ Σ |w_k| reach_k` ([`EmptySpace::warp_bound`]). A sample whose clearance exceeds that
//! bound shows nothing, and neither does any sample nearer to it than the difference, so the march skips them:
//! the picture is the same as with every sample taken, since every skipped sample had zero density.
//!
//! The GPU pass and the CPU reference both bake it from the asset (`EmptySpace::bake`, a few milliseconds) and
//! skip the same way.

use bevy::math::Vec3;

use crate::identity::{BASIS_COMPONENTS, HeadAsset, PLANES};

/// Cells along each axis of the head's box.
pub const CELLS: usize = 48;

/// The empty space around a head asset's canonical shape (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct EmptySpace {
    /// Per cell, `[z][y][x]`: a lower bound on the distance (metres) from any point of the cell to any point where
    /// the canonical head may have density (0 in and next to such cells).
    pub clearance: Vec<f32>,
    /// Per motion basis: the longest displacement (metres) it can add to a point at weight 1.
    pub reach: Vec<f32>,
}

impl EmptySpace {
    /// Bakes the empty space of `asset` (which must be valid: [`HeadAsset::validate`]).
    pub fn bake(asset: &HeadAsset) -> Self {
        let occupied = occupied_cells(asset);
        let side = (2.0 * asset.half_extent / CELLS as f32).min_element();
        let clearance = cells_to_nearest(&occupied)
            .into_iter()
            .map(|k| k.saturating_sub(1) as f32 * side)
            .collect();
        Self {
            clearance,
            reach: basis_reach(asset),
        }
    }

    /// The longest distance (metres) motion code `code` can move a point: `Σ |w_k| reach_k`.
    pub fn warp_bound(&self, code: &[f32]) -> f32 {
        self.reach
            .iter()
            .zip(code)
            .map(|(reach, w)| reach * w.abs())
            .sum()
    }

    /// The clearance of the cell holding head-space point `p` (clamped to the box), metres.
    pub fn clearance_at(&self, p: Vec3, half_extent: Vec3) -> f32 {
        self.clearance[cell_index(p, half_extent)]
    }
}

/// The index into [`EmptySpace::clearance`] of the cell holding head-space point `p` (clamped to the box).
pub fn cell_index(p: Vec3, half_extent: Vec3) -> usize {
    let n = CELLS as f32;
    let cell = ((p / half_extent + 1.0) * 0.5 * n)
        .floor()
        .clamp(Vec3::ZERO, Vec3::splat(n - 1.0))
        .as_uvec3();
    (cell.z as usize * CELLS + cell.y as usize) * CELLS + cell.x as usize
}

/// The texel range a bilinear lookup (as the renderers make it, clamped to the plane) can touch for a coordinate
/// in `[lo, hi]` (normalised, −1..1) on a plane of `res` texels.
fn texel_range(lo: f32, hi: f32, res: usize) -> (usize, usize) {
    let r = res as f32;
    let texel = |a: f32| {
        let s = ((a + 1.0) * 0.5 * r - 0.5).clamp(0.0, r - 1.0);
        (s.floor() as usize).min(res - 2)
    };
    (texel(lo), texel(hi) + 1)
}

/// Per plane and per pair of cell indices along the plane's two axes, the smallest and largest value of each
/// feature channel over the texels its lookups can touch: `[plane][b][a][channel]` of (min, max).
fn feature_bounds(asset: &HeadAsset) -> Vec<(f32, f32)> {
    let (r, c) = (asset.triplane_resolution, asset.channels);
    let edge = |i: usize| -1.0 + 2.0 * i as f32 / CELLS as f32;
    let ranges: Vec<(usize, usize)> = (0..CELLS)
        .map(|i| texel_range(edge(i), edge(i + 1), r))
        .collect();
    let mut bounds = vec![(f32::MAX, f32::MIN); PLANES * CELLS * CELLS * c];
    for plane in 0..PLANES {
        for (b, &(y0, y1)) in ranges.iter().enumerate() {
            for (a, &(x0, x1)) in ranges.iter().enumerate() {
                let out = ((plane * CELLS + b) * CELLS + a) * c;
                for y in y0..=y1 {
                    for x in x0..=x1 {
                        let texel = ((plane * r + y) * r + x) * c;
                        for ch in 0..c {
                            let v = f32::from(asset.triplane[texel + ch]);
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
fn occupied_cells(asset: &HeadAsset) -> Vec<bool> {
    let c = asset.channels;
    let bounds = feature_bounds(asset);
    let decoder = &asset.decoder;
    let width = decoder.hidden;
    let mut occupied = vec![false; CELLS * CELLS * CELLS];
    let mut lo = vec![0.0f64; c];
    let mut hi = vec![0.0f64; c];
    for z in 0..CELLS {
        for y in 0..CELLS {
            for x in 0..CELLS {
                // The planes a point reads: (x, y), (x, z), (z, y), as the renderers' `plane_coords`.
                let footprints = [(0, y, x), (1, z, x), (2, y, z)];
                lo.fill(0.0);
                hi.fill(0.0);
                for (plane, b, a) in footprints {
                    let at = ((plane * CELLS + b) * CELLS + a) * c;
                    for ch in 0..c {
                        let (l, h) = bounds[at + ch];
                        lo[ch] += f64::from(l);
                        hi[ch] += f64::from(h);
                    }
                }
                // Density = b2[0] + Σ w2[0][h] relu(b1[h] + Σ w1[h][c] f_c): its largest value over the box.
                let mut density = f64::from(decoder.b2[0]);
                let mut magnitude = density.abs();
                for h in 0..width {
                    let row = &decoder.w1[h * c..(h + 1) * c];
                    let (mut s_lo, mut s_hi) = (f64::from(decoder.b1[h]), f64::from(decoder.b1[h]));
                    for ((&w, &l), &u) in row.iter().zip(&lo).zip(&hi) {
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
                occupied[(z * CELLS + y) * CELLS + x] = density > -1e-5 * magnitude;
            }
        }
    }
    occupied
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

/// Per motion basis, the longest displacement it adds at weight 1, metres: the sum over the three planes of the
/// longest texel displacement on each (a bilinear lookup never exceeds its longest texel).
fn basis_reach(asset: &HeadAsset) -> Vec<f32> {
    let m = asset.motion_resolution;
    let per_plane = m * m;
    let half = asset.half_extent;
    (0..asset.basis_count)
        .map(|k| {
            (0..PLANES)
                .map(|plane| {
                    let start = (k * PLANES + plane) * per_plane;
                    (start..start + per_plane)
                        .map(|t| {
                            let v = &asset.motion_bases[t * BASIS_COMPONENTS..][..3];
                            (Vec3::new(v[0].into(), v[1].into(), v[2].into()) * half).length()
                        })
                        .fold(0.0f32, f32::max)
                })
                .sum()
        })
        .collect()
}
