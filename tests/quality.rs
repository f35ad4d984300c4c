//! The quality measurements of `examples/head_quality.rs` on the shipped portrait, at a small size: the front view
//! looks like the portrait, the face models still find the face when the head turns, and the head has no holes
//! from the side or the back. Thresholds are the values measured on this portrait with a margin.

use bevy::math::Vec3;
use bevy_talking_head::HeadAsset;
use bevy_talking_head::identity::quality::{
    NEUTRAL_BACKGROUND, composite_over, find_holes, frontal_fidelity, landmark_agreement,
    surface_depth_offsets,
};
use bevy_talking_head::identity::{BuiltHead, head_from_portrait};
use bevy_talking_head::inference::ModelRegistry;
use bevy_talking_head::render::{HeadCamera, MarchUniform, render_reference};

/// Side of the turned views, pixels.
const SIZE: u32 = 160;
/// Samples along the longest ray through the head's box.
const STEPS: u32 = 96;
/// Camera distance, metres (the plugin's default view).
const DISTANCE_M: f32 = 0.6;

fn view(asset: &HeadAsset, yaw_deg: f32) -> (Vec<f32>, HeadCamera) {
    let camera = HeadCamera::orbit(
        yaw_deg.to_radians(),
        0.0,
        DISTANCE_M,
        asset.half_extent.length(),
    );
    let march = MarchUniform::new(asset, &camera, SIZE, SIZE, STEPS);
    (render_reference(asset, &[], &march), camera)
}

#[test]
fn astronaut_head_quality() {
    let registry = ModelRegistry::load_default().unwrap_or_else(|e| panic!("{e}"));
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/portraits/astronaut.png");
    let portrait = image::open(path).unwrap_or_else(|e| panic!("{e}"));
    let BuiltHead {
        asset,
        frame,
        landmarks,
        ..
    } = head_from_portrait(&registry, &portrait).unwrap_or_else(|e| panic!("{e}"));
    let head_landmarks: Vec<Vec3> = landmarks.points.iter().map(|p| frame.to_head(*p)).collect();

    // Front view vs the portrait in the face region (measured: 30.7–33.7 dB, SSIM 0.943–0.964, with whole windows
    // 0.937–0.953, over the head construction's recent versions).
    let frontal = frontal_fidelity(&asset, &frame, &portrait, &landmarks, STEPS)
        .unwrap_or_else(|| panic!("empty face region"));
    println!(
        "front: {} px, PSNR {:.2} dB, SSIM {:.3} (whole windows {:.3}), {} px not covered",
        frontal.pixels,
        frontal.psnr_db,
        frontal.ssim,
        frontal.ssim_whole_windows,
        frontal.uncovered
    );
    assert!(frontal.pixels > 5000, "face region {} px", frontal.pixels);
    assert_eq!(
        frontal.uncovered, 0,
        "the head leaves part of the face uncovered"
    );
    assert!(frontal.psnr_db > 28.0, "PSNR {:.2} dB", frontal.psnr_db);
    assert!(frontal.ssim > 0.9, "SSIM {:.3}", frontal.ssim);
    assert!(
        frontal.ssim_whole_windows > 0.9,
        "SSIM with whole windows {:.3}",
        frontal.ssim_whole_windows
    );

    // The head's shape follows the landmarks' depths (measured: median 3.8 mm).
    let mut offsets: Vec<f32> = surface_depth_offsets(&asset, &head_landmarks)
        .into_iter()
        .flatten()
        .map(f32::abs)
        .collect();
    offsets.sort_by(f32::total_cmp);
    let median_mm = offsets[offsets.len() / 2] * 1e3;
    println!(
        "depth: {} landmarks on the head, median |landmark − surface| {median_mm:.1} mm",
        offsets.len()
    );
    assert!(
        offsets.len() >= 460,
        "{} landmarks on the head",
        offsets.len()
    );
    assert!(median_mm < 6.0, "median depth offset {median_mm:.1} mm");

    // Turned views: the face models find the face and agree with the head's own landmarks. Measured at 160 px
    // (96 samples per ray) over the construction's recent versions: detector score 0.90–0.92, presence 1.00 and
    // visible-landmark error 2.0 / 6.2–7.4 / 5.5–6.6 % of the inter-ocular distance at 0° / −30° / +30°. At ±60°
    // the face is still found (score ≈ 0.8, presence 0.70–1.00, above the models' 0.5) but the landmarks disagree
    // (45–117 %), so only the detection is checked there.
    for (yaw, max_visible_error) in [
        (0.0, Some(5.0)),
        (-30.0, Some(10.0)),
        (30.0, Some(10.0)),
        (-60.0, None),
        (60.0, None),
    ] {
        let (pixels, camera) = view(&asset, yaw);
        let rgb = composite_over(&pixels, SIZE, SIZE, NEUTRAL_BACKGROUND);
        let agreement = landmark_agreement(&registry, &asset, &head_landmarks, &camera, &rgb);
        let found = agreement
            .detected
            .as_ref()
            .map(|f| (f.face.score, f.presence))
            .unwrap_or_else(|e| panic!("yaw {yaw}: no face: {e}"));
        println!(
            "yaw {yaw}: score and presence {found:?}, error {:?}, inter-ocular {:.1} px",
            agreement.error, agreement.expected.inter_ocular_px
        );
        let visible = agreement.expected.visible.iter().filter(|&&v| v).count();
        if yaw == 0.0 {
            // Measured: 459–468 of 468 (the nose hides a few beside it at 0.6 m).
            assert!(visible >= 440, "{visible} landmarks visible from the front");
        }
        if let Some(max_error) = max_visible_error {
            assert!(
                found.0 > 0.8 && found.1 > 0.9,
                "yaw {yaw}: weak face {found:?}"
            );
            let error = agreement
                .error
                .unwrap_or_else(|| panic!("yaw {yaw}: nothing compared"));
            assert!(
                error.visible_percent < max_error,
                "yaw {yaw}: landmark error {:.1} % of the inter-ocular distance",
                error.visible_percent
            );
        }
    }

    // Side and back: no holes, nothing see-through inside the silhouette.
    for yaw in [90.0, 180.0] {
        let (pixels, _) = view(&asset, yaw);
        let alpha: Vec<f32> = pixels.chunks_exact(4).map(|p| p[3]).collect();
        let holes = find_holes(&alpha, SIZE as usize, SIZE as usize);
        println!("yaw {yaw}: {holes:?}");
        assert!(
            holes.silhouette > (SIZE * SIZE / 8) as usize,
            "yaw {yaw}: {holes:?}"
        );
        assert_eq!(holes.holes, 0, "yaw {yaw}: {holes:?}");
        assert!(
            holes.translucent * 200 < holes.silhouette,
            "yaw {yaw}: {holes:?}"
        );
    }
}
