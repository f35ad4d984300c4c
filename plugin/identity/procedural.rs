//! A head asset built from formulas, without any portrait or model: an egg-shaped "head" with coloured bands,
//! two eyes, a mouth and three motion bases (jaw open, lip corners, cheek puff).
//!
//! It exists to test and benchmark the renderer on something whose every value is known; it is not what users
//! see (portrait heads come from the identity pipeline).

use std::sync::Arc;

use bevy::math::{Vec2, Vec3};
use half::f16;

use super::head_asset::{BASIS_COMPONENTS, DecoderMlp, HeadAsset, Mouth, PLANES};
use super::maps::texel_centre;

/// Feature channels of the procedural head.
const CHANNELS: usize = 8;
/// Hidden units: density, red, green, blue.
const HIDDEN: usize = 4;
/// Offset that lets signed colour logits pass the decoder's ReLU.
const LOGIT_SHIFT: f32 = 8.0;
/// Squared normalised radius of the surface.
const SURFACE: f32 = 0.85;

/// Index of the jaw-open basis in [`procedural_head`]'s motion code.
pub const JAW_OPEN: usize = 0;
/// Index of the lip-corners-up basis.
pub const SMILE: usize = 1;
/// Index of the cheek-puff basis.
pub const CHEEK_PUFF: usize = 2;

/// Builds the procedural head with feature planes of `resolution²` texels and motion planes of
/// `motion_resolution²` texels.
pub fn procedural_head(resolution: usize, motion_resolution: usize) -> HeadAsset {
    let r = resolution.max(2);
    let m = motion_resolution.max(2);
    let mut triplane = vec![f16::ZERO; PLANES * r * r * CHANNELS];
    for plane in 0..PLANES {
        for row in 0..r {
            for col in 0..r {
                let (a, b) = (texel_centre(col, r), texel_centre(row, r));
                let texel = ((plane * r + row) * r + col) * CHANNELS;
                let features = plane_features(plane, a, b);
                for (slot, value) in triplane[texel..texel + CHANNELS].iter_mut().zip(features) {
                    *slot = f16::from_f32(value);
                }
            }
        }
    }

    let basis_count = 3;
    let mut motion_bases = vec![f16::ZERO; basis_count * PLANES * m * m * BASIS_COMPONENTS];
    for basis in 0..basis_count {
        for plane in 0..PLANES {
            for row in 0..m {
                for col in 0..m {
                    let (a, b) = (texel_centre(col, m), texel_centre(row, m));
                    let d = basis_displacement(basis, plane, a, b);
                    let texel = (((basis * PLANES + plane) * m + row) * m + col) * BASIS_COMPONENTS;
                    for (i, value) in d.into_iter().enumerate() {
                        motion_bases[texel + i] = f16::from_f32(value);
                    }
                }
            }
        }
    }

    HeadAsset {
        half_extent: Vec3::new(0.11, 0.14, 0.12),
        channels: CHANNELS,
        triplane_resolution: r,
        triplane: Arc::from(triplane),
        basis_count,
        motion_resolution: m,
        motion_bases: Arc::from(motion_bases),
        decoder: decoder(),
        mouth: Mouth::default(),
        expression: Default::default(),
        eyes: Default::default(),
    }
}

fn smooth_bump(distance: f32, radius: f32) -> f32 {
    let x = (1.0 - distance / radius).clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// Channel 0 sums to the squared radius; channels 1–3 to colour logits; 4–7 carry fine detail.
fn plane_features(plane: usize, a: f32, b: f32) -> [f32; CHANNELS] {
    let mut f = [0.0; CHANNELS];
    match plane {
        // (x, y): the face pattern, seen from the front.
        0 => {
            f[0] = a * a + b * b;
            let eye = smooth_bump(Vec2::new(a.abs() - 0.3, b - 0.2).length(), 0.12);
            let mouth = smooth_bump(Vec2::new(a / 2.5, b + 0.38).length(), 0.11);
            let dark = 6.0 * eye.max(mouth);
            f[1] = 1.2 + 0.4 * b - dark;
            f[2] = 0.3 + 0.3 * b - dark - 0.5 * mouth;
            f[3] = -0.2 - dark + 2.5 * eye;
            f[4] = (8.0 * a).sin() * 0.5;
        }
        // (x, z): depth.
        1 => {
            f[0] = b * b;
            f[5] = (6.0 * b).cos() * 0.5;
        }
        // (z, y): a darker back of the head.
        _ => {
            f[1] = 0.6 * a;
            f[2] = 0.2 * a;
            f[6] = (5.0 * b).sin() * 0.5;
            f[7] = a * b;
        }
    }
    f
}

fn basis_displacement(basis: usize, plane: usize, a: f32, b: f32) -> [f32; BASIS_COMPONENTS] {
    match (basis, plane) {
        // Jaw: everything below the upper lip is drawn from higher up, so it moves down.
        (JAW_OPEN, 0) => {
            let below = ((-0.3 - b) / 0.15).clamp(0.0, 1.0);
            let across = smooth_bump(a.abs(), 0.75);
            [0.0, 0.22 * below * across, 0.0, 0.0, 0.0, 0.0]
        }
        // Lip corners: the corners of the mouth move up and out.
        (SMILE, 0) => {
            let corners = smooth_bump(Vec2::new(a.abs() - 0.25, b + 0.38).length(), 0.2);
            [
                -0.06 * a.signum() * corners,
                -0.08 * corners,
                0.0,
                0.0,
                0.0,
                0.0,
            ]
        }
        // Cheek puff: the lower face bulges forward (drawn from further back).
        (CHEEK_PUFF, 2) => {
            let cheek = smooth_bump((b + 0.25).abs(), 0.3);
            [0.0, 0.0, -0.08 * cheek * a.max(0.0), 0.0, 0.0, 0.0]
        }
        _ => [0.0; BASIS_COMPONENTS],
    }
}

fn decoder() -> DecoderMlp {
    let mut w1 = vec![0.0; HIDDEN * CHANNELS];
    // Density: steep ramp inside the surface.
    w1[0] = -60.0;
    // Colours pass their logits (plus fine detail) through shifted ReLUs.
    for colour in 1..=3 {
        w1[colour * CHANNELS + colour] = 1.0;
        w1[colour * CHANNELS + 3 + colour] = 0.3;
    }
    w1[CHANNELS + 7] = 0.2;
    let b1 = vec![60.0 * SURFACE, LOGIT_SHIFT, LOGIT_SHIFT, LOGIT_SHIFT];
    let mut w2 = vec![0.0; 4 * HIDDEN];
    w2[0] = 40.0;
    for colour in 1..=3 {
        w2[colour * HIDDEN + colour] = 1.0;
    }
    let b2 = vec![0.0, -LOGIT_SHIFT, -LOGIT_SHIFT, -LOGIT_SHIFT];
    DecoderMlp {
        hidden: HIDDEN,
        w1,
        b1,
        w2,
        b2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procedural_head_is_valid() {
        assert_eq!(procedural_head(32, 16).validate(), Ok(()));
    }

    #[test]
    fn head_asset_round_trips_through_ron() {
        let asset = procedural_head(8, 4);
        let text = ron::to_string(&asset).expect("serialize");
        let back: HeadAsset = ron::from_str(&text).expect("deserialize");
        assert_eq!(back, asset);
    }

    #[test]
    fn jaw_basis_moves_only_the_lower_face() {
        assert_eq!(
            basis_displacement(JAW_OPEN, 0, 0.0, 0.5),
            [0.0; BASIS_COMPONENTS]
        );
        assert!(basis_displacement(JAW_OPEN, 0, 0.0, -0.6)[1] > 0.2);
    }
}
