//! Pixel conversions between what the renderer writes (premultiplied linear RGBA) and what files hold (sRGB).

/// Encodes one linear colour value (0..1) with the sRGB transfer curve.
pub fn linear_to_srgb(x: f32) -> f32 {
    let x = x.clamp(0.0, 1.0);
    if x <= 0.003_130_8 {
        12.92 * x
    } else {
        1.055 * x.powf(1.0 / 2.4) - 0.055
    }
}

/// Premultiplied linear RGBA (4 floats per pixel) → straight-alpha sRGB RGBA8, as PNG files and video frames
/// expect.
pub fn premultiplied_to_srgba8(pixels: &[f32]) -> Vec<u8> {
    let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    pixels
        .chunks_exact(4)
        .flat_map(|p| {
            let alpha = p[3].clamp(0.0, 1.0);
            let straight = |c: f32| if alpha > 0.0 { c / alpha } else { 0.0 };
            [
                to_u8(linear_to_srgb(straight(p[0]))),
                to_u8(linear_to_srgb(straight(p[1]))),
                to_u8(linear_to_srgb(straight(p[2]))),
                to_u8(alpha),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srgb_curve_end_points_and_mid_grey() {
        assert_eq!(linear_to_srgb(0.0), 0.0);
        assert!((linear_to_srgb(1.0) - 1.0).abs() < 1e-6);
        assert!((linear_to_srgb(0.2140) - 0.5).abs() < 1e-3);
    }

    #[test]
    fn premultiplied_half_transparent_red_becomes_straight() {
        let pixels = premultiplied_to_srgba8(&[0.5, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(pixels, vec![255, 0, 0, 128, 0, 0, 0, 0]);
    }
}
