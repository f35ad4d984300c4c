//! A head built from the shipped portrait: it looks like the portrait from the front, stays closed from every
//! side, and its bases move the right parts of the face.

use std::time::Instant;

use bevy::math::{Vec2, Vec3};
use bevy_talking_head::HeadAsset;
use bevy_talking_head::identity::construct::bases;
use bevy_talking_head::identity::{
    ConstructSettings, PortraitFrame, build_head, find_face_landmarks,
};
use bevy_talking_head::inference::ModelRegistry;
use bevy_talking_head::render::{
    HeadCamera, MarchUniform, linear_to_srgb, premultiplied_to_srgba8, render_reference,
};

const SIZE: u32 = 192;

fn out_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("construct");
    std::fs::create_dir_all(&dir).expect("output folder");
    dir
}

fn build() -> (HeadAsset, PortraitFrame, image::DynamicImage, Vec<Vec3>) {
    let registry = ModelRegistry::load_default().expect("models");
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/portraits/astronaut.png");
    let portrait = image::open(path).expect("portrait");
    let landmarks = find_face_landmarks(&registry, &portrait).expect("landmarks");
    let start = Instant::now();
    let (asset, frame) = build_head(&portrait, &landmarks, None, ConstructSettings::default());
    println!(
        "built the head in {:.0} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    asset.validate().expect("a valid head asset");
    let face = landmarks.points.iter().map(|p| frame.to_head(*p)).collect();
    (asset, frame, portrait, face)
}

fn render(asset: &HeadAsset, yaw_deg: f32, code: &[f32], distance: f32) -> (Vec<f32>, HeadCamera) {
    let camera = HeadCamera::orbit(
        yaw_deg.to_radians(),
        0.0,
        distance,
        asset.half_extent.length(),
    );
    let march = MarchUniform::new(asset, &camera, SIZE, SIZE, 160);
    (render_reference(asset, code, &march), camera)
}

fn save(name: &str, linear: &[f32]) {
    let rgba = premultiplied_to_srgba8(linear);
    image::save_buffer(
        out_dir().join(format!("{name}.png")),
        &rgba,
        SIZE,
        SIZE,
        image::ExtendedColorType::Rgba8,
    )
    .expect("png");
}

#[test]
fn constructed_head_matches_the_portrait_and_moves() {
    let (asset, frame, portrait, face) = build();
    let portrait = portrait.to_rgb8();
    let rest = vec![0.0; bases::COUNT];

    // Front view from far away (almost orthographic): pixel ↔ head-space x, y.
    let (front, camera) = render(&asset, 0.0, &rest, 30.0);
    save("front", &front);
    let side = camera.image_side_at_target();
    let to_head = |px: u32, py: u32| {
        Vec2::new(
            ((px as f32 + 0.5) / SIZE as f32 - 0.5) * side,
            (0.5 - (py as f32 + 0.5) / SIZE as f32) * side,
        )
    };
    // Face region: inside the box of the eyes, nose and mouth landmarks.
    let (lo, hi) = face.iter().fold(
        (Vec2::splat(f32::MAX), Vec2::splat(f32::MIN)),
        |(lo, hi), p| (lo.min(p.truncate()), hi.max(p.truncate())),
    );
    let (lo, hi) = (lo + (hi - lo) * 0.2, hi - (hi - lo) * 0.2);
    let (mut squared, mut count) = (0.0f64, 0usize);
    for py in 0..SIZE {
        for px in 0..SIZE {
            let p = to_head(px, py);
            if p.cmplt(lo).any() || p.cmpgt(hi).any() {
                continue;
            }
            let i = ((py * SIZE + px) * 4) as usize;
            let alpha = front[i + 3];
            assert!(
                alpha > 0.99,
                "hole in the face at {px},{py} (alpha {alpha})"
            );
            let q = frame.to_image(p.x, p.y);
            let pixel = portrait.get_pixel(q.x as u32, q.y as u32);
            for c in 0..3 {
                let rendered = f64::from(linear_to_srgb(front[i + c] / alpha)) * 255.0;
                squared += (rendered - f64::from(pixel[c])).powi(2);
                count += 1;
            }
        }
    }
    let psnr = 10.0 * (255.0f64.powi(2) / (squared / count as f64)).log10();
    println!(
        "frontal face region: {} pixels, PSNR {psnr:.2} dB",
        count / 3
    );
    assert!(count > 3 * 500, "face region too small: {count}");
    assert!(psnr > 20.0, "frontal PSNR {psnr:.2} dB");

    // All round: the head is there and has no holes inside its outline.
    for yaw in [-60.0, -30.0, 30.0, 60.0, 90.0, 180.0] {
        let (view, _) = render(&asset, yaw, &rest, 0.8);
        save(&format!("yaw{yaw}"), &view);
        let mut holes = 0;
        let mut covered = 0;
        for row in view.chunks_exact(SIZE as usize * 4) {
            let alphas: Vec<f32> = row.chunks_exact(4).map(|p| p[3]).collect();
            let Some(first) = alphas.iter().position(|&a| a > 0.5) else {
                continue;
            };
            let last = alphas.iter().rposition(|&a| a > 0.5).unwrap_or(first);
            covered += last - first + 1;
            holes += alphas[first..=last].iter().filter(|&&a| a < 0.5).count();
        }
        println!("yaw {yaw}: {covered} pixels inside the outline, {holes} holes");
        assert!(
            covered > (SIZE * SIZE / 8) as usize,
            "yaw {yaw}: head too small ({covered} px)"
        );
        assert!(
            holes * 100 < covered,
            "yaw {yaw}: {holes} holes in {covered} px"
        );
    }

    // Bases move their regions: jaw below the mouth, blinks at the eyes.
    let region_change = |code: &[f32], name: &str| {
        let (moved, _) = render(&asset, 0.0, code, 30.0);
        save(name, &moved);
        let mut by_region = [0.0f64; 2]; // [upper half, lower half]
        for (i, (a, b)) in moved.iter().zip(&front).enumerate() {
            let row = (i / 4) as u32 / SIZE;
            let p = to_head(0, row);
            let mouth_y = (face[13].y + face[14].y) * 0.5;
            let eyes_y = (face[33].y + face[263].y) * 0.5;
            let region = if p.y < (mouth_y + eyes_y) * 0.5 { 1 } else { 0 };
            by_region[region] += f64::from((a - b).abs());
        }
        by_region
    };
    let mut jaw = rest.clone();
    jaw[bases::JAW_OPEN] = 1.0;
    let [upper, lower] = region_change(&jaw, "jaw_open");
    println!("jaw open: change above {upper:.1}, below {lower:.1}");
    assert!(
        lower > 10.0 * upper.max(1.0),
        "jaw: above {upper}, below {lower}"
    );
    let mut blink = rest.clone();
    blink[bases::BLINK_LEFT] = 1.0;
    blink[bases::BLINK_RIGHT] = 1.0;
    let [upper, lower] = region_change(&blink, "blink");
    println!("blink: change above {upper:.1}, below {lower:.1}");
    assert!(
        upper > 10.0 * lower.max(1.0),
        "blink: above {upper}, below {lower}"
    );
}
