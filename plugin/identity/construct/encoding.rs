//! The tri-plane's features from the surfaces and colours ([`encode_triplane`]), and the decoder that reads them
//! back, as an MLP and in closed form.

use super::colours::logit;
use super::*;
use half::f16;

pub(super) fn encode_triplane(surfaces: &Surfaces, maps: &ColourMaps, grid: Grid) -> Vec<f16> {
    let r = grid.r;
    let mut triplane = vec![f16::ZERO; PLANES * r * r * CHANNELS];
    for row in 0..r {
        for col in 0..r {
            let i = row * r + col;
            let (front, back) = (surfaces.front[i], surfaces.back[i]);
            let mid = (front + back) * 0.5;
            let front_colour = maps.front[i].map(logit);
            let back_colour = maps.back[i].map(logit);
            let mut f = [0.0f32; CHANNELS];
            f[0] = front;
            f[1] = -back;
            f[2] = -mid;
            for c in 0..3 {
                f[3 + c] = front_colour[c] - COLOUR_SLOPE * mid;
                f[6 + c] = back_colour[c] + COLOUR_SLOPE * mid;
            }
            // Plane 0 is indexed (x, y) with rows along y from −1 at the bottom: row j has v = texel_centre(j).
            let plane_row = r - 1 - row;
            let texel = (plane_row * r + col) * CHANNELS;
            for (slot, value) in triplane[texel..texel + CHANNELS].iter_mut().zip(f) {
                *slot = f16::from_f32(value);
            }
        }
    }
    // Plane 1 (x, z) carries the z terms, the same for every x.
    for row in 0..r {
        let z = texel_centre(row, r);
        let mut f = [0.0f32; CHANNELS];
        f[0] = -z;
        f[1] = z;
        f[2] = z;
        for c in 0..3 {
            f[3 + c] = COLOUR_SLOPE * z;
            f[6 + c] = -COLOUR_SLOPE * z;
        }
        for col in 0..r {
            let texel = ((r + row) * r + col) * CHANNELS;
            for (slot, value) in triplane[texel..texel + CHANNELS].iter_mut().zip(f) {
                *slot = f16::from_f32(value);
            }
        }
    }
    triplane
}

/// Whether `asset` decodes with the decoder every constructed head has ([`build_head`]): the renderers then
/// evaluate it in closed form ([`closed_form_decode`]) instead of as a dense MLP.
pub fn decodes_in_closed_form(asset: &HeadAsset) -> bool {
    asset.channels == CHANNELS && asset.decoder == decoder()
}

/// The constructed heads' decoder applied to summed tri-plane features `feat` (at least 10 values):
/// density (per metre) in w, linear colour in xyz. Its hidden units come in pairs that cancel to simple terms,
/// relu(x) − relu(−x) = x and relu(a − b) + b = max(a, b), so the same function as the constructed MLP is
/// `DENSITY_SCALE · max(min(f0, f1), 0)` and `sigmoid(max(front, back colour) − COLOUR_SLOPE · |f2|)` per colour:
/// a few operations instead of 14 × 10 + 4 × 14 multiply-adds (the shader's `CONSTRUCTED_DECODER`).
pub fn closed_form_decode(feat: &[f32]) -> Vec4 {
    let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
    let colour = |c: usize| sigmoid(feat[3 + c].max(feat[6 + c]) - COLOUR_SLOPE * feat[2].abs());
    Vec4::new(
        colour(0),
        colour(1),
        colour(2),
        DENSITY_SCALE * feat[0].min(feat[1]).max(0.0),
    )
}

/// The decoder that reads [`encode_triplane`]'s channels (see the module docs).
pub(super) fn decoder() -> DecoderMlp {
    // Hidden units: 0 relu(f0), 1 relu(−f0), 2 relu(f0 − f1), 3 relu(v), 4 relu(−v),
    // then per colour c: 5+3c relu(u1 − u2), 6+3c relu(u2), 7+3c relu(−u2).
    let hidden = 14;
    let mut w1 = vec![0.0f32; hidden * CHANNELS];
    let mut set = |h: usize, c: usize, w: f32| w1[h * CHANNELS + c] = w;
    set(0, 0, 1.0);
    set(1, 0, -1.0);
    set(2, 0, 1.0);
    set(2, 1, -1.0);
    set(3, 2, 1.0);
    set(4, 2, -1.0);
    for c in 0..3 {
        set(5 + 3 * c, 3 + c, 1.0);
        set(5 + 3 * c, 6 + c, -1.0);
        set(6 + 3 * c, 6 + c, 1.0);
        set(7 + 3 * c, 6 + c, -1.0);
    }
    let mut w2 = vec![0.0f32; 4 * hidden];
    w2[0] = DENSITY_SCALE;
    w2[1] = -DENSITY_SCALE;
    w2[2] = -DENSITY_SCALE;
    for c in 0..3 {
        let row = (1 + c) * hidden;
        w2[row + 5 + 3 * c] = 1.0;
        w2[row + 6 + 3 * c] = 1.0;
        w2[row + 7 + 3 * c] = -1.0;
        w2[row + 3] = -COLOUR_SLOPE;
        w2[row + 4] = -COLOUR_SLOPE;
    }
    DecoderMlp {
        hidden,
        w1,
        b1: vec![0.0; hidden],
        w2,
        b2: vec![0.0; 4],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed form is the constructed decoder's MLP: on random features (either sign, a range wider than a
    /// head's) both give the same density and colour.
    #[test]
    fn the_closed_form_decodes_as_the_mlp() {
        let mlp = decoder();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut random = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f32 / (1u64 << 53) as f32 * 4.0 - 2.0
        };
        for _ in 0..10_000 {
            let feat: Vec<f32> = (0..CHANNELS).map(|_| random() * 0.05).collect();
            let hidden: Vec<f32> = (0..mlp.hidden)
                .map(|h| {
                    (0..CHANNELS)
                        .fold(mlp.b1[h], |s, c| s + mlp.w1[h * CHANNELS + c] * feat[c])
                        .max(0.0)
                })
                .collect();
            let out: Vec<f32> = (0..4)
                .map(|o| {
                    (0..mlp.hidden)
                        .fold(mlp.b2[o], |s, h| s + mlp.w2[o * mlp.hidden + h] * hidden[h])
                })
                .collect();
            let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
            let dense = Vec4::new(
                sigmoid(out[1]),
                sigmoid(out[2]),
                sigmoid(out[3]),
                out[0].max(0.0),
            );
            let closed = closed_form_decode(&feat);
            assert!(
                // The dense MLP cancels DENSITY_SCALE·f0 against itself: its rounding is the size's ulp.
                (dense.truncate() - closed.truncate()).abs().max_element() < 1e-5
                    && (dense.w - closed.w).abs()
                        <= 1e-6 * DENSITY_SCALE * (feat[0].abs() + feat[1].abs()) + 1e-6,
                "{feat:?}: {dense} vs {closed}"
            );
        }
    }
}
