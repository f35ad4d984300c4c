//! The head's colours: what its front and back surfaces show ([`ColourMaps`]).

use super::*;

/// The colours the construction needs besides the portrait itself.
#[derive(Clone, Copy)]
pub(super) struct Colours {
    /// Linear RGB of the hair, measured above the forehead (the fallback when no colour can be extrapolated).
    pub(super) hair: [f32; 3],
}

pub(super) fn logit(linear: f32) -> f32 {
    let p = linear.clamp(0.0025, 0.9975);
    (p / (1.0 - p)).ln().clamp(-MAX_LOGIT, MAX_LOGIT)
}

impl Colours {
    /// Hair: the median colour of the band above the forehead (inside the person mask when there is one).
    pub(super) fn measure(
        image: &RgbImage,
        frame: &PortraitFrame,
        face: &[Vec3],
        mask: Option<&PersonMask>,
    ) -> Self {
        let top = face[lm::FOREHEAD];
        let half_width = 0.3 * (face[lm::LEFT_EYE_OUTER].x - face[lm::RIGHT_EYE_OUTER].x).abs();
        let mut samples: [Vec<f32>; 3] = Default::default();
        for step in 0..40 {
            let y = top.y + 0.01 + 0.03 * step as f32 / 40.0;
            for across in 0..20 {
                let x = -half_width + 2.0 * half_width * across as f32 / 19.0;
                let p = frame.to_image(x, y);
                if p.x < 0.0
                    || p.y < 0.0
                    || p.x >= image.width() as f32
                    || p.y >= image.height() as f32
                {
                    continue;
                }
                if mask.is_some_and(|mask| mask.at(p) < 0.5) {
                    continue;
                }
                let pixel = image.get_pixel(p.x as u32, p.y as u32);
                for (channel, values) in samples.iter_mut().enumerate() {
                    values.push(srgb_to_linear(pixel[channel]));
                }
            }
        }
        let median = |values: &mut Vec<f32>| {
            if values.is_empty() {
                return 0.05;
            }
            values.sort_by(f32::total_cmp);
            values[values.len() / 2]
        };
        let [r, g, b] = &mut samples;
        Self {
            hair: [median(r), median(g), median(b)],
        }
    }
}

/// Bilinear sample of the portrait at image point `p` (pixels), linear RGB; clamps at the border.
pub(super) fn sample_linear(image: &RgbImage, p: Vec2) -> [f32; 3] {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let x = (p.x - 0.5).clamp(0.0, w - 1.0);
    let y = (p.y - 0.5).clamp(0.0, h - 1.0);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = (
        (x0 + 1).min(image.width() - 1),
        (y0 + 1).min(image.height() - 1),
    );
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let mut out = [0.0; 3];
    for (c, value) in out.iter_mut().enumerate() {
        let v = |px: u32, py: u32| srgb_to_linear(image.get_pixel(px, py)[c]);
        *value = (1.0 - fy) * ((1.0 - fx) * v(x0, y0) + fx * v(x1, y0))
            + fy * ((1.0 - fx) * v(x0, y1) + fx * v(x1, y1));
    }
    out
}

/// Heights (head-space y, metres) of the face's nose tip, mouth and chin.
#[derive(Clone, Copy)]
pub(super) struct FaceLevels {
    pub(super) nose: f32,
    pub(super) mouth: f32,
    pub(super) chin: f32,
}

/// The two colour maps of the head (linear RGB per plane-0 texel, row-major from the top): what the front
/// surface shows and what the back surface shows.
///
/// - Front: the portrait, only where it shows the person well inside the mask and the silhouette; elsewhere filled
///   from the surroundings ([`push_pull`]), so the background is never baked in. Where the front surface turns
///   sideways outside the face (it is seen from the side, and a straight projection would smear the portrait's
///   detail into streaks) it fades to a blurred version of the same colours.
/// - Back: extrapolated from the front colours outside the face (hair above and beside the face, skin at its
///   lower border), blurred, made mirror-symmetric, and equal to the front colours near the silhouette's rim, so
///   that the colour runs on from the front round the sides to the back without a seam.
pub(super) struct ColourMaps {
    /// Median skin colour of the face (between nose and mouth), linear RGB.
    pub(super) skin: [f32; 3],
    pub(super) front: Vec<[f32; 3]>,
    pub(super) back: Vec<[f32; 3]>,
}

impl ColourMaps {
    pub(super) fn new(
        image: &RgbImage,
        frame: &PortraitFrame,
        surfaces: &Surfaces,
        (hull, levels): (&FaceHull, FaceLevels),
        colours: Colours,
        grid: Grid,
        mask: Option<&PersonMask>,
    ) -> Self {
        let r = grid.r;
        let texel = grid.texel();
        // The background's colour: the median of what the portrait shows outside the person near the head.
        let background = mask.and_then(|mask| {
            median_colour((0..r * r).filter_map(|i| {
                let p = grid.point(i / r, i % r);
                let q = frame.to_image(p.x, p.y);
                (mask.at(q) < 0.05).then(|| sample_linear(image, q))
            }))
        });
        let mut portrait = vec![[0.0f32; 3]; r * r];
        let mut reliable = vec![0.0f32; r * r];
        let mut outside_face = vec![0.0f32; r * r];
        for row in 0..r {
            for col in 0..r {
                let p = grid.point(row, col);
                let i = row * r + col;
                let q = frame.to_image(p.x, p.y);
                portrait[i] = sample_linear(image, q);
                // Trust a pixel well inside the silhouette and, with a mask, only where the mask is sure on a
                // neighbourhood of a few pixels (its edge blends hair into the background).
                let mut trust =
                    smoothstep(0.5 * EDGE_TRUST_M, EDGE_TRUST_M, surfaces.edge_distance[i]);
                // Below the nose, beyond the face's outline, the portrait shows neck or background.
                if p.y < levels.nose {
                    trust *= smoothstep(-0.001, 0.001, hull.inside(p));
                }
                if let Some(mask) = mask {
                    let reach = 2.5;
                    let sure = [
                        (0.0, 0.0),
                        (-reach, 0.0),
                        (reach, 0.0),
                        (0.0, -reach),
                        (0.0, reach),
                    ]
                    .iter()
                    .map(|&(dx, dy)| mask.at(q + Vec2::new(dx, dy)))
                    .fold(1.0f32, f32::min);
                    trust *= smoothstep(0.85, 0.97, sure);
                }
                // Near the edge, a pixel of the background's colour is background the mask let through.
                if let Some(background) = background {
                    let near_edge = 1.0 - smoothstep(0.01, 0.02, surfaces.edge_distance[i]);
                    let difference = portrait[i]
                        .iter()
                        .zip(background)
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f32>()
                        .sqrt();
                    trust *= 1.0 - near_edge * (1.0 - smoothstep(0.06, 0.12, difference));
                }
                reliable[i] = trust;
                // Hair: outside the face and above the mouth.
                outside_face[i] = trust
                    * smoothstep(0.0, 0.006, -hull.inside(p))
                    * smoothstep(levels.mouth, levels.nose, p.y);
            }
        }
        let fallback = vec![colours.hair; r * r];
        let filled = push_pull(&portrait, &reliable, r, r).unwrap_or_else(|| fallback.clone());
        let front: Vec<[f32; 3]> = portrait
            .iter()
            .zip(&filled)
            .zip(&reliable)
            .map(|((&p, &f), &w)| mix(f, p, w))
            .collect();
        let soft = blur(&front, r, r, (0.008 / texel.x).round().max(1.0) as usize);
        let front: Vec<[f32; 3]> = (0..r * r)
            .map(|i| {
                let (row, col) = (i / r, i % r);
                let p = grid.point(row, col);
                let slope = surface_slope(&surfaces.front, grid, row, col);
                // The wall where the silhouette cuts the head is seen from the side too, and outside the
                // silhouette only the rim's bilinear lookups read the map: both soft.
                let steep = smoothstep(1.2, 3.0, slope)
                    .max(1.0 - smoothstep(0.002, 0.006, surfaces.edge_distance[i]));
                let sideways = steep * smoothstep(0.0, 0.01, -hull.inside(p) + 0.015);
                mix(front[i], soft[i], sideways)
            })
            .collect();

        // Skin: the median of the face between the nose and the mouth (cheeks, lip, nose).
        let skin = median_colour((0..r * r).filter_map(|i| {
            let p = grid.point(i / r, i % r);
            (hull.inside(p) > 0.005 && p.y < levels.nose && p.y > levels.mouth).then_some(front[i])
        }))
        .unwrap_or(colours.hair);
        let hair = push_pull(&front, &outside_face, r, r).unwrap_or(fallback);
        let hair = blur(&hair, r, r, (0.006 / texel.x).round().max(1.0) as usize);
        let back: Vec<[f32; 3]> = (0..r * r)
            .map(|i| {
                let (row, col) = (i / r, i % r);
                let mirrored = hair[row * r + (r - 1 - col)];
                let symmetric = mix(hair[i], mirrored, 0.5);
                // The nape below the hair shows skin.
                let y = grid.point(row, col).y;
                let symmetric = mix(
                    symmetric,
                    skin,
                    0.8 * smoothstep(levels.mouth, levels.chin, y),
                );
                let rim = 1.0 - smoothstep(0.0, BACK_RIM_M, surfaces.edge_distance[i]);
                mix(symmetric, front[i], rim)
            })
            .collect();
        Self { front, back, skin }
    }
}

/// Steepness of a depth map (normalised z per plane-0 texel) at a texel: |∇z| in metres per metre, by central
/// differences (one-sided at the silhouette's edge).
pub(super) fn surface_slope(depth: &[f32], grid: Grid, row: usize, col: usize) -> f32 {
    let r = grid.r;
    let hz = grid.half_extent.z;
    let texel = grid.texel();
    let here = depth[row * r + col];
    let at = |rr: usize, cc: usize| {
        let v = depth[rr * r + cc];
        // Outside the head the depth is a sentinel: use this texel's.
        if v < -1.5 { here } else { v }
    };
    let (c0, c1) = (col.saturating_sub(1), (col + 1).min(r - 1));
    let (r0, r1) = (row.saturating_sub(1), (row + 1).min(r - 1));
    let dx = (at(row, c1) - at(row, c0)) * hz / (texel.x * (c1 - c0).max(1) as f32);
    let dy = (at(r1, col) - at(r0, col)) * hz / (texel.y * (r1 - r0).max(1) as f32);
    Vec2::new(dx, dy).length()
}
