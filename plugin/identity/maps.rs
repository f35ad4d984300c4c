//! Helpers on maps (rows of texels or pixels) and colours that construction, the photo's layers, the bust, the rig
//! and the photo's expression share: smooth steps, texel centres, distances inside a region, filling holes from
//! their surroundings (push–pull), blurs, mixes and medians of colours, sRGB decoding.

use bevy::math::Vec2;

/// The normalised coordinate (−1..1) of the centre of texel `index` of `resolution` along an axis.
pub(super) fn texel_centre(index: usize, resolution: usize) -> f32 {
    (index as f32 + 0.5) / resolution as f32 * 2.0 - 1.0
}

/// Hermite step: 0 at `edge0`, 1 at `edge1`, smooth in between.
pub(super) fn smoothstep(edge0: f32, edge1: f32, x: f32) -> f32 {
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Distance from each texel of a `width × height` map (row-major) inside `inside` to the nearest texel outside
/// (chamfer transform, 0 outside; texels `step` apart along x and y, in the caller's unit). Beyond the map's
/// border counts as outside when `border_outside`, and is ignored otherwise.
pub(super) fn distance_inside(
    inside: &[bool],
    (width, height): (usize, usize),
    step: Vec2,
    border_outside: bool,
) -> Vec<f32> {
    let diagonal = step.length();
    let mut d: Vec<f32> = inside
        .iter()
        .map(|&i| if i { f32::MAX } else { 0.0 })
        .collect();
    let neighbours_before = [
        (-1i64, -1i64, diagonal),
        (-1, 0, step.y),
        (-1, 1, diagonal),
        (0, -1, step.x),
    ];
    let relax = |d: &mut Vec<f32>, row: usize, col: usize, sign: i64| {
        let i = row * width + col;
        for &(dr, dc, cost) in &neighbours_before {
            let (nr, nc) = (row as i64 + sign * dr, col as i64 + sign * dc);
            if nr < 0 || nc < 0 || nr >= height as i64 || nc >= width as i64 {
                if border_outside {
                    d[i] = d[i].min(cost);
                }
                continue;
            }
            let candidate = d[nr as usize * width + nc as usize] + cost;
            d[i] = d[i].min(candidate);
        }
    };
    for row in 0..height {
        for col in 0..width {
            relax(&mut d, row, col, 1);
        }
    }
    for row in (0..height).rev() {
        for col in (0..width).rev() {
            relax(&mut d, row, col, -1);
        }
    }
    d
}

pub(super) fn srgb_to_linear(c: u8) -> f32 {
    let c = f32::from(c) / 255.0;
    if c <= 0.040_45 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// Fills the texels of a `width × height` colour map (row-major) whose weight is below 1 from their surroundings
/// (push–pull: a weighted image pyramid, coarse levels filling the holes of finer ones with bilinear upsampling).
/// Returns `None` when no texel has any weight.
pub(super) fn push_pull(
    colour: &[[f32; 3]],
    weight: &[f32],
    width: usize,
    height: usize,
) -> Option<Vec<[f32; 3]>> {
    struct Level {
        width: usize,
        height: usize,
        /// Premultiplied colour.
        colour: Vec<[f32; 3]>,
        /// Weight, at most 1.
        weight: Vec<f32>,
    }
    let first = Level {
        width,
        height,
        colour: colour
            .iter()
            .zip(weight)
            .map(|(c, &w)| c.map(|v| v * w.clamp(0.0, 1.0)))
            .collect(),
        weight: weight.iter().map(|w| w.clamp(0.0, 1.0)).collect(),
    };
    let mut levels = vec![first];
    while let Some(last) = levels.last().filter(|l| l.width > 1 || l.height > 1) {
        let (w, h) = (last.width, last.height);
        let (half_w, half_h) = (w.div_ceil(2), h.div_ceil(2));
        let mut cc = vec![[0.0f32; 3]; half_w * half_h];
        let mut ww = vec![0.0f32; half_w * half_h];
        for row in 0..h {
            for col in 0..w {
                let (i, j) = (row * w + col, (row / 2) * half_w + col / 2);
                ww[j] += last.weight[i];
                for (sum, value) in cc[j].iter_mut().zip(last.colour[i]) {
                    *sum += value;
                }
            }
        }
        for (c, w) in cc.iter_mut().zip(ww.iter_mut()) {
            if *w > 1.0 {
                *c = c.map(|v| v / *w);
                *w = 1.0;
            }
        }
        levels.push(Level {
            width: half_w,
            height: half_h,
            colour: cc,
            weight: ww,
        });
    }
    if levels.last().is_none_or(|l| l.weight[0] <= 0.0) {
        return None;
    }
    // Pull: each level's holes take the (already complete) coarser level, bilinearly upsampled.
    for level in (0..levels.len() - 1).rev() {
        let (done, rest) = levels.split_at_mut(level + 1);
        let (fine, coarse) = (&mut done[level], &rest[0]);
        let coarse_at = |row: f32, col: f32| {
            let row = row.clamp(0.0, (coarse.height - 1) as f32);
            let col = col.clamp(0.0, (coarse.width - 1) as f32);
            let (r0, c0) = (row.floor() as usize, col.floor() as usize);
            let (r1, c1) = (
                (r0 + 1).min(coarse.height - 1),
                (c0 + 1).min(coarse.width - 1),
            );
            let (tr, tc) = (row - r0 as f32, col - c0 as f32);
            let mut out = [0.0f32; 3];
            for (rr, cc, t) in [
                (r0, c0, (1.0 - tr) * (1.0 - tc)),
                (r0, c1, (1.0 - tr) * tc),
                (r1, c0, tr * (1.0 - tc)),
                (r1, c1, tr * tc),
            ] {
                let j = rr * coarse.width + cc;
                let w = coarse.weight[j].max(1e-9);
                for (sum, value) in out.iter_mut().zip(coarse.colour[j]) {
                    *sum += t * value / w;
                }
            }
            out
        };
        for row in 0..fine.height {
            for col in 0..fine.width {
                let i = row * fine.width + col;
                if fine.weight[i] >= 1.0 {
                    continue;
                }
                let fill = coarse_at((row as f32 - 0.5) * 0.5, (col as f32 - 0.5) * 0.5);
                let missing = 1.0 - fine.weight[i];
                for (value, filled) in fine.colour[i].iter_mut().zip(fill) {
                    *value += missing * filled;
                }
                fine.weight[i] = 1.0;
            }
        }
    }
    let first = levels.swap_remove(0);
    Some(
        first
            .colour
            .iter()
            .zip(&first.weight)
            .map(|(c, &w)| c.map(|v| v / w.max(1e-9)))
            .collect(),
    )
}

/// Separable box blur of a `width × height` colour map (row-major), `radius` texels, applied twice (close to a
/// Gaussian).
pub(super) fn blur(
    colour: &[[f32; 3]],
    width: usize,
    height: usize,
    radius: usize,
) -> Vec<[f32; 3]> {
    let mut current = colour.to_vec();
    for _ in 0..2 {
        for horizontal in [true, false] {
            // Lines along the blur's direction: rows, or columns.
            let (lines, length) = if horizontal {
                (height, width)
            } else {
                (width, height)
            };
            let index = |line: usize, k: usize| {
                if horizontal {
                    line * width + k
                } else {
                    k * width + line
                }
            };
            let mut next = vec![[0.0f32; 3]; width * height];
            for line in 0..lines {
                for b in 0..length {
                    let mut sum = [0.0f32; 3];
                    let lo = b.saturating_sub(radius);
                    let hi = (b + radius).min(length - 1);
                    for k in lo..=hi {
                        let v = current[index(line, k)];
                        for ch in 0..3 {
                            sum[ch] += v[ch];
                        }
                    }
                    next[index(line, b)] = sum.map(|v| v / (hi - lo + 1) as f32);
                }
            }
            current = next;
        }
    }
    current
}

pub(super) fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    std::array::from_fn(|k| a[k] + (b[k] - a[k]) * t)
}

/// Per-channel median of some colours; `None` when there are none.
pub(super) fn median_colour(colours: impl Iterator<Item = [f32; 3]>) -> Option<[f32; 3]> {
    let mut channels: [Vec<f32>; 3] = Default::default();
    for colour in colours {
        for (values, v) in channels.iter_mut().zip(colour) {
            values.push(v);
        }
    }
    if channels[0].is_empty() {
        return None;
    }
    Some(channels.map(|mut values| {
        values.sort_by(f32::total_cmp);
        values[values.len() / 2]
    }))
}
