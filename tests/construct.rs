//! A head built from the shipped portrait: it looks like the portrait from the front, stays closed from every
//! side, and its bases move the right parts of the face.

use std::time::Instant;

use bevy::math::{Vec2, Vec3};
use bevy_talking_head::FaceCoefficients;
use bevy_talking_head::HeadAsset;
use bevy_talking_head::identity::landmarks::landmark_index as lm;
use bevy_talking_head::identity::quality::composite_over;
use bevy_talking_head::identity::quality::project;
use bevy_talking_head::identity::rig::bases;
use bevy_talking_head::identity::{
    ConstructSettings, IdentityError, PortraitFrame, build_head, find_face_landmarks, person_mask,
};
use bevy_talking_head::inference::ModelRegistry;
use bevy_talking_head::motion::arkit_index;
use bevy_talking_head::render::{
    HeadCamera, MarchUniform, linear_to_srgb, premultiplied_to_srgba8, render_reference,
};

const SIZE: u32 = 192;

fn out_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("construct");
    std::fs::create_dir_all(&dir).expect("output folder");
    dir
}

struct Built {
    asset: HeadAsset,
    frame: PortraitFrame,
    portrait: image::DynamicImage,
    face: Vec<Vec3>,
    mask: Vec<f32>,
}

fn build() -> Built {
    build_from("astronaut.png")
}

/// Builds the head of `assets/portraits/<name>`.
fn build_from(name: &str) -> Built {
    let registry = ModelRegistry::load_default().expect("models");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/portraits")
        .join(name);
    let portrait = image::open(path).expect("portrait");
    let landmarks = find_face_landmarks(&registry, &portrait).expect("landmarks");
    let start = Instant::now();
    let mask = person_mask(&registry, &portrait).expect("person mask");
    let segmented = start.elapsed();
    let (asset, frame) = build_head(
        &portrait,
        &landmarks,
        Some(&mask),
        ConstructSettings::default(),
    );
    println!(
        "segmented the portrait in {:.0} ms, built the head in {:.0} ms",
        segmented.as_secs_f64() * 1e3,
        (start.elapsed() - segmented).as_secs_f64() * 1e3
    );
    asset.validate().expect("a valid head asset");
    let face = landmarks.points.iter().map(|p| frame.to_head(*p)).collect();
    Built {
        asset,
        frame,
        portrait,
        face,
        mask,
    }
}

/// Luminance (Rec. 709 weights) of an sRGB colour (0..255).
fn luma(c: [f32; 3]) -> f32 {
    0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
}

/// sRGB colour (0..255) of a rendered pixel, or `None` where it is transparent.
fn srgb(linear: &[f32], i: usize) -> Option<[f32; 3]> {
    let alpha = linear[i * 4 + 3];
    (alpha > 0.01)
        .then(|| std::array::from_fn(|c| linear_to_srgb(linear[i * 4 + c] / alpha) * 255.0))
}

/// Pixels of the head (alpha > 0.5) within `band` pixels of its outline.
fn outline_band(view: &[f32], band: i64) -> Vec<usize> {
    let n = SIZE as i64;
    let solid = |x: i64, y: i64| {
        (0..n).contains(&x) && (0..n).contains(&y) && view[((y * n + x) * 4 + 3) as usize] > 0.5
    };
    let mut pixels = Vec::new();
    for y in 0..n {
        for x in 0..n {
            if !solid(x, y) {
                continue;
            }
            let near_outside =
                (-band..=band).any(|dy| (-band..=band).any(|dx| !solid(x + dx, y + dy)));
            if near_outside {
                pixels.push((y * n + x) as usize);
            }
        }
    }
    pixels
}

/// For the column boundary where it happens most, the fraction of the head's rows whose colour jumps by more than
/// 0.1 (sRGB 0..1, largest channel) between two neighbouring pixels well inside the outline: a seam that runs
/// down the head (like a hard switch between portrait and hair colour seen from the side) makes this large.
fn vertical_seam(view: &[f32]) -> f32 {
    let n = SIZE as usize;
    let band: std::collections::HashSet<usize> = outline_band(view, 2).into_iter().collect();
    let core = |i: usize| view[i * 4 + 3] > 0.99 && !band.contains(&i);
    let rows = (0..n).filter(|&y| (0..n).any(|x| core(y * n + x))).count();
    let mut worst = 0usize;
    for x in 0..n - 1 {
        let jumps = (0..n)
            .filter(|&y| {
                let (a, b) = (y * n + x, y * n + x + 1);
                if !core(a) || !core(b) {
                    return false;
                }
                let (Some(ca), Some(cb)) = (srgb(view, a), srgb(view, b)) else {
                    return false;
                };
                (0..3).any(|c| (ca[c] - cb[c]).abs() > 0.1 * 255.0)
            })
            .count();
        worst = worst.max(jumps);
    }
    worst as f32 / rows.max(1) as f32
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
    save_sized(name, linear, SIZE);
}

#[test]
fn constructed_head_matches_the_portrait_and_moves() {
    let Built {
        asset,
        frame,
        portrait,
        face,
        mask,
    } = build();
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
    assert!(psnr > 28.0, "frontal PSNR {psnr:.2} dB");

    // The outline from the front shows hair and skin, never the portrait's background: no pixel near the outline
    // has the colour of the background (the median of the portrait where the person mask is sure it is not the
    // person, around the head).
    let background = {
        let mut channels: [Vec<f32>; 3] = Default::default();
        let (width, height) = portrait.dimensions();
        for py in 0..height {
            for px in 0..width {
                let head = frame.to_head(Vec3::new(px as f32 + 0.5, py as f32 + 0.5, 0.0));
                if head.x.abs() > asset.half_extent.x * 1.5 || head.y.abs() > asset.half_extent.y {
                    continue;
                }
                if mask[(py * width + px) as usize] < 0.05 {
                    for (values, v) in channels.iter_mut().zip(portrait.get_pixel(px, py).0) {
                        values.push(f32::from(v));
                    }
                }
            }
        }
        channels.map(|mut values| {
            assert!(!values.is_empty(), "no background around the head");
            values.sort_by(f32::total_cmp);
            values[values.len() / 2]
        })
    };
    let outline = outline_band(&front, 2);
    let background_on_outline = outline
        .iter()
        .filter_map(|&i| srgb(&front, i))
        .filter(|c| {
            (0..3)
                .map(|k| (c[k] - background[k]).powi(2))
                .sum::<f32>()
                .sqrt()
                < 25.0
        })
        .count();
    println!(
        "front outline: {} pixels, {background_on_outline} of the background's colour {background:?}",
        outline.len()
    );
    assert!(outline.len() > 200, "outline too short: {}", outline.len());
    assert!(
        background_on_outline * 200 <= outline.len(),
        "{background_on_outline} of {} outline pixels show the background",
        outline.len()
    );

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
        let seam = vertical_seam(&view);
        println!(
            "yaw {yaw}: {covered} pixels inside the outline, {holes} holes, vertical seam {:.0} % of rows",
            seam * 100.0
        );
        if yaw == 180.0 {
            // The back is not one flat colour: hair and the nape's skin, shaded like the portrait's hair.
            let luminance: Vec<f32> = (0..(SIZE * SIZE) as usize)
                .filter(|&i| view[i * 4 + 3] > 0.99)
                .filter_map(|i| srgb(&view, i))
                .map(luma)
                .collect();
            let mean = luminance.iter().sum::<f32>() / luminance.len().max(1) as f32;
            let spread = (luminance.iter().map(|l| (l - mean).powi(2)).sum::<f32>()
                / luminance.len().max(1) as f32)
                .sqrt();
            println!("yaw 180: luminance {mean:.0} ± {spread:.1} (sRGB 0..255)");
            assert!(spread > 4.0, "the back is one flat colour (± {spread:.1})");
        }
        // From the side, colours run on from the face round to the back without a hard vertical switch.
        if yaw.abs() >= 60.0 && yaw.abs() <= 90.0 {
            assert!(
                seam < 0.2,
                "yaw {yaw}: a colour seam runs down {:.0} % of the head's rows",
                seam * 100.0
            );
        }
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
    // Mean sRGB luminance (0..255) of a front render over the pixels whose head-space x, y is in a box.
    let luminance_in = |view: &[f32], lo: Vec2, hi: Vec2| {
        let (mut sum, mut count) = (0.0f32, 0usize);
        for py in 0..SIZE {
            for px in 0..SIZE {
                let p = to_head(px, py);
                if p.cmplt(lo).any() || p.cmpgt(hi).any() {
                    continue;
                }
                if let Some(c) = srgb(view, (py * SIZE + px) as usize) {
                    sum += luma(c);
                    count += 1;
                }
            }
        }
        assert!(count > 0, "no pixels between {lo} and {hi}");
        sum / count as f32
    };
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
        (by_region, moved)
    };
    let mut jaw = rest.clone();
    jaw[bases::JAW_OPEN] = 1.0;
    let ([upper, lower], jaw_view) = region_change(&jaw, "jaw_open");
    println!("jaw open: change above {upper:.1}, below {lower:.1}");
    assert!(
        lower > 10.0 * upper.max(1.0),
        "jaw: above {upper}, below {lower}"
    );
    // The opened mouth shows a dark interior, not stretched lips or teeth.
    let mouth_y = (face[13].y + face[14].y) * 0.5;
    let mouth_x = (face[61].x + face[291].x) * 0.5;
    let mouth_half = (face[291].x - face[61].x).abs() * 0.5;
    let opening = (
        Vec2::new(mouth_x - 0.4 * mouth_half, mouth_y - 0.009),
        Vec2::new(mouth_x + 0.4 * mouth_half, mouth_y - 0.005),
    );
    let closed_mouth = luminance_in(&front, opening.0, opening.1);
    let open_mouth = luminance_in(&jaw_view, opening.0, opening.1);
    println!("jaw open: mouth opening luminance {open_mouth:.0} (closed: {closed_mouth:.0})");
    assert!(
        open_mouth < 0.6 * closed_mouth,
        "the open mouth is not dark inside: {open_mouth:.0} vs {closed_mouth:.0} closed"
    );
    // The interior shows in the mouth only: seen from behind, the open jaw darkens no more of the head than the
    // closed one (the bases are fields over x–y; their opening is cut off behind the lips).
    for yaw in [180.0, 150.0, -150.0] {
        let dark = |view: &[f32]| {
            (0..(SIZE * SIZE) as usize)
                .filter_map(|i| srgb(view, i))
                .filter(|c| luma(*c) < 45.0)
                .count()
        };
        let (closed_back, _) = render(&asset, yaw, &rest, 30.0);
        let (open_back, _) = render(&asset, yaw, &jaw, 30.0);
        save(&format!("jaw_open_yaw{yaw}"), &open_back);
        let (closed_dark, open_dark) = (dark(&closed_back), dark(&open_back));
        println!("jaw open, yaw {yaw}: {open_dark} dark px (closed: {closed_dark})");
        assert!(
            open_dark <= closed_dark,
            "jaw open seen from yaw {yaw}: {open_dark} dark px, {closed_dark} closed"
        );
    }
    // Half open: the gap between the lips is the mouth's flat dark interior, not lips or teeth smeared across it
    // (a displacement field alone drags them along its lines at partial weights), and the chin moves down by half
    // the jaw's drop (20 mm at weight 1) as a whole.
    let mut half = rest.clone();
    half[bases::JAW_OPEN] = 0.5;
    let (half_view, _) = render(&asset, 0.0, &half, 30.0);
    save("jaw_half_open", &half_view);
    let gap = (
        Vec2::new(mouth_x - 0.3 * mouth_half, mouth_y - 0.007),
        Vec2::new(mouth_x + 0.3 * mouth_half, mouth_y - 0.002),
    );
    let gap_luminance: Vec<f32> = (0..SIZE * SIZE)
        .filter(|&i| {
            let p = to_head(i % SIZE, i / SIZE);
            p.cmpge(gap.0).all() && p.cmple(gap.1).all()
        })
        .filter_map(|i| srgb(&half_view, i as usize))
        .map(luma)
        .collect();
    let mean = gap_luminance.iter().sum::<f32>() / gap_luminance.len().max(1) as f32;
    let spread = gap_luminance
        .iter()
        .fold(0.0f32, |m, l| m.max((l - mean).abs()));
    let closed_gap = luminance_in(&front, gap.0, gap.1);
    println!(
        "jaw half open: gap luminance {mean:.0} ± {spread:.0} over {} px (closed: {closed_gap:.0})",
        gap_luminance.len()
    );
    assert!(gap_luminance.len() >= 6, "gap box too small");
    assert!(
        mean < 0.4 * closed_gap && spread < 12.0,
        "the half-open mouth's gap is not its dark interior: {mean:.0} ± {spread:.0} (closed {closed_gap:.0})"
    );
    // The chin's luminance profile down the middle, at rest and half open: best match at a shift of ~10 mm.
    let column = |view: &[f32], y: f32| {
        let py = ((0.5 - y / side) * SIZE as f32) as u32;
        let px = ((mouth_x / side + 0.5) * SIZE as f32) as u32;
        srgb(view, (py * SIZE + px) as usize).map_or(0.0, |c| c[0] + c[1] + c[2])
    };
    let pixel = side / SIZE as f32;
    let chin: Vec<f32> = (0..12)
        .map(|k| mouth_y - 0.014 - k as f32 * pixel)
        .collect();
    let shift = (0..12)
        .min_by_key(|&s| {
            let cost: f32 = chin
                .iter()
                .map(|&y| (column(&front, y) - column(&half_view, y - s as f32 * pixel)).abs())
                .sum();
            (cost * 100.0) as i64
        })
        .expect("shifts") as f32
        * pixel;
    println!("jaw half open: chin moved {:.1} mm", shift * 1e3);
    assert!(
        (shift - 0.010).abs() <= 1.5 * pixel,
        "the half-open jaw moved the chin {:.1} mm, not 10",
        shift * 1e3
    );
    let mut blink = rest.clone();
    blink[bases::BLINK_LEFT] = 1.0;
    blink[bases::BLINK_RIGHT] = 1.0;
    let ([upper, lower], blink_view) = region_change(&blink, "blink");
    println!("blink: change above {upper:.1}, below {lower:.1}");
    assert!(
        upper > 10.0 * lower.max(1.0),
        "blink: above {upper}, below {lower}"
    );
    // Closed lids look like skin: about as bright as the cheek below each eye, unlike the open eye.
    for (outer, inner) in [(33, 133), (263, 362)] {
        let centre = (face[outer].truncate() + face[inner].truncate()) * 0.5;
        let half = (face[outer].x - face[inner].x).abs() * 0.5;
        let box_at = |dy: f32| {
            (
                centre + Vec2::new(-0.4 * half, dy - 0.0015),
                centre + Vec2::new(0.4 * half, dy + 0.0015),
            )
        };
        let (lo, hi) = box_at(0.0);
        let open = luminance_in(&front, lo, hi);
        let lid = luminance_in(&blink_view, lo, hi);
        let (lo, hi) = box_at(-0.025);
        let cheek = luminance_in(&front, lo, hi);
        println!("blink: eye {outer} open {open:.0}, closed {lid:.0}, cheek {cheek:.0}");
        assert!(
            lid > 0.8 * cheek && lid > open,
            "eye {outer}: the closed lid ({lid:.0}) does not look like skin (cheek {cheek:.0}, open eye {open:.0})"
        );
    }

    // Every basis moves its own region: the centroid of the change (weighted by |difference|) lies near the
    // landmarks it is built around, on the right side, and the change is visible.
    let at = |i: usize| face[i].truncate();
    let mid = |a: usize, b: usize| (at(a) + at(b)) * 0.5;
    let mouth = mid(13, 14);
    let expected: [(usize, Vec2, f32); bases::COUNT] = [
        (bases::JAW_OPEN, mouth - Vec2::new(0.0, 0.02), 0.04),
        (bases::SMILE_LEFT, at(291), 0.02),
        (bases::SMILE_RIGHT, at(61), 0.02),
        (bases::BLINK_LEFT, mid(263, 362), 0.015),
        (bases::BLINK_RIGHT, mid(33, 133), 0.015),
        (bases::BROW_INNER_UP, mid(55, 285), 0.025),
        (bases::FROWN_LEFT, at(291), 0.02),
        (bases::FROWN_RIGHT, at(61), 0.02),
        (bases::STRETCH, mouth, 0.03),
        (bases::PUCKER, mouth, 0.02),
        (bases::FUNNEL, mouth, 0.02),
        (bases::UPPER_LIP_UP, mouth, 0.02),
        (bases::LOWER_LIP_DOWN, mouth, 0.02),
        (bases::PRESS, mouth, 0.02),
        (bases::SQUINT_LEFT, at(374), 0.015),
        (bases::SQUINT_RIGHT, at(145), 0.015),
        (bases::BROW_DOWN_LEFT, mid(285, 276), 0.02),
        (bases::BROW_DOWN_RIGHT, mid(55, 46), 0.02),
        (bases::BROW_OUTER_UP_LEFT, at(276), 0.02),
        (bases::BROW_OUTER_UP_RIGHT, at(46), 0.02),
        (bases::CHEEK_PUFF, mid(205, 425), 0.02),
        (bases::SNEER_LEFT, mid(294, 6), 0.015),
        (bases::SNEER_RIGHT, mid(64, 6), 0.015),
        (bases::EYE_WIDE_LEFT, at(386), 0.015),
        (bases::EYE_WIDE_RIGHT, at(159), 0.015),
    ];
    for (basis, anchor, tolerance) in expected {
        let mut code = rest.clone();
        code[basis] = 1.0;
        let (moved, _) = render(&asset, 0.0, &code, 30.0);
        let (mut weight, mut centroid, mut changed) = (0.0f64, Vec2::ZERO, 0usize);
        for py in 0..SIZE {
            for px in 0..SIZE {
                let i = (py * SIZE + px) as usize;
                let d: f32 = (0..3)
                    .map(|c| (moved[i * 4 + c] - front[i * 4 + c]).abs())
                    .sum();
                weight += f64::from(d);
                centroid += to_head(px, py) * d;
                changed += usize::from(d > 0.03);
            }
        }
        let centroid = centroid / weight.max(1e-9) as f32;
        let name = bases::NAMES[basis];
        println!(
            "basis {name}: {changed} pixels changed by > 0.03, change centred {:.1} mm from its landmarks",
            centroid.distance(anchor) * 1000.0
        );
        save(&format!("basis_{name}"), &moved);
        assert!(changed >= 20, "{name}: only {changed} pixels changed");
        assert!(
            centroid.distance(anchor) < tolerance,
            "{name}: change centred at {centroid}, expected within {tolerance} m of {anchor}"
        );
    }
}

#[test]
fn person_mask_follows_the_portrait_whatever_its_shape() {
    let registry = ModelRegistry::load_default().expect("models");
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/portraits/astronaut.png");
    let portrait = image::open(path).expect("portrait").to_rgb8();
    let (width, height) = portrait.dimensions();
    let mask = person_mask(&registry, &image::DynamicImage::ImageRgb8(portrait.clone()))
        .expect("person mask");
    assert_eq!(mask.len(), (width * height) as usize);
    let at = |mask: &[f32], w: u32, x: u32, y: u32| mask[(y * w + x) as usize];
    // The face and the hair are the person; the background in the top corners is not.
    let landmarks =
        find_face_landmarks(&registry, &image::DynamicImage::ImageRgb8(portrait.clone()))
            .expect("landmarks");
    let nose = landmarks.points[1];
    let forehead = landmarks.points[10];
    let hair_y = (forehead.y - (landmarks.points[152].y - forehead.y) * 0.2).max(0.0);
    assert!(
        at(&mask, width, nose.x as u32, nose.y as u32) > 0.9,
        "nose not in the mask"
    );
    assert!(
        at(&mask, width, forehead.x as u32, hair_y as u32) > 0.9,
        "hair not in the mask"
    );
    let top_right = at(&mask, width, width - 40, 10);
    assert!(top_right < 0.1, "background in the mask: {top_right}");

    // The same portrait in a wider frame (grey bars left and right; the model then sees it smaller) gives a mask
    // in the same place: the letterbox is undone exactly.
    let pad = 160;
    let wide = image::RgbImage::from_fn(width + 2 * pad, height, |x, y| {
        if x < pad || x >= width + pad {
            image::Rgb([128, 128, 128])
        } else {
            *portrait.get_pixel(x - pad, y)
        }
    });
    let wide_mask =
        person_mask(&registry, &image::DynamicImage::ImageRgb8(wide)).expect("wide mask");
    assert_eq!(wide_mask.len(), ((width + 2 * pad) * height) as usize);
    // Around the head, the two masks agree best without any shift.
    let chin = landmarks.points[152];
    let face_height = chin.y - forehead.y;
    let (x0, x1) = (
        (nose.x - face_height).max(8.0) as i32,
        (nose.x + face_height).min(width as f32 - 8.0) as i32,
    );
    let (y0, y1) = (
        (forehead.y - face_height).max(8.0) as i32,
        (chin.y + 0.3 * face_height).min(height as f32 - 8.0) as i32,
    );
    let mismatch = |dx: i32, dy: i32| {
        let mut d = 0.0f64;
        for y in y0..y1 {
            for x in x0..x1 {
                let a = at(&mask, width, x as u32, y as u32);
                let b = at(
                    &wide_mask,
                    width + 2 * pad,
                    (x + dx + pad as i32) as u32,
                    (y + dy) as u32,
                );
                d += f64::from((a - b).abs());
            }
        }
        d
    };
    let mut best = (f64::MAX, 0, 0);
    for dy in -4..=4 {
        for dx in -4..=4 {
            let d = mismatch(dx, dy);
            if d < best.0 {
                best = (d, dx, dy);
            }
        }
    }
    let mut difference = 0.0f64;
    for y in 0..height {
        for x in 0..width {
            let a = at(&mask, width, x, y);
            let b = at(&wide_mask, width + 2 * pad, x + pad, y);
            difference += f64::from((a - b).abs());
        }
    }
    let mean = difference / f64::from(width * height);
    println!(
        "person mask: best alignment of the wide frame's mask at a shift of ({}, {}) px; mean difference {mean:.3}",
        best.1, best.2
    );
    assert!(
        best.1.abs() <= 1 && best.2.abs() <= 1,
        "the wide frame's mask is displaced by ({}, {}) px",
        best.1,
        best.2
    );
    assert!(mean < 0.15, "the wide frame's mask differs: {mean:.3}");
}

/// Portraits of a turned head (renders of the astronaut's head at growing yaw): the landmark model's yaw estimate
/// follows the turn, and building refuses a face turned past `MAX_PORTRAIT_YAW_DEG` with a clear error.
#[test]
fn turned_portraits_are_measured_and_refused_past_the_limit() {
    let registry = ModelRegistry::load_default().expect("models");
    let Built { asset, .. } = build();
    for yaw in [0.0f32, 20.0, 40.0, 60.0, 80.0] {
        let (view, _) = render(&asset, yaw, &[0.0; bases::COUNT], 0.7);
        // Over a plain grey background, as a photo would have one.
        let rgb = composite_over(&view, SIZE, SIZE, [128; 3]);
        let portrait = image::DynamicImage::ImageRgb8(rgb);
        let result = find_face_landmarks(&registry, &portrait);
        let checked = result
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|l| l.check_pose());
        match &result {
            Ok(landmarks) => println!(
                "render at yaw {yaw}: face found, estimated yaw {:.0}: {checked:?}",
                landmarks.yaw_degrees()
            ),
            Err(error) => println!("render at yaw {yaw}: {error}"),
        }
        if yaw <= 20.0 {
            let estimate = result.expect("a face").yaw_degrees();
            assert!(
                (estimate - yaw).abs() < 6.0,
                "yaw {yaw}: estimated {estimate}"
            );
            assert!(checked.is_ok(), "yaw {yaw}: {checked:?}");
        }
        if yaw >= 60.0 {
            // Refused with an error that says why: turned too far, or no face the landmark model accepts.
            assert!(
                matches!(
                    checked,
                    Err(IdentityError::FaceTurned { .. } | IdentityError::FaceNotConfirmed { .. })
                ),
                "yaw {yaw}: {checked:?}"
            );
        }
    }
}

/// Issue 5's emotion check: each emotion's expression (no speech) rendered from the front, the landmark model run
/// on the render, and what moved against neutral measured in inter-ocular distances (IOD): every emotion shows its
/// signature and the eight differ from each other.
#[test]
fn emotions_move_the_face_the_landmark_model_sees() {
    use bevy_talking_head::FaceCoefficients;
    use bevy_talking_head::motion::EmotionLibrary;

    let registry = ModelRegistry::load_default().expect("models");
    let Built { asset, .. } = build();
    let library = EmotionLibrary::default();
    let neutral_style = library.neutral_style();
    let names = [
        "neutral",
        "angry",
        "contempt",
        "disgusted",
        "fear",
        "happy",
        "sad",
        "surprised",
    ];
    // Measures from the landmarks, in IODs; image y grows downwards, so "up" is negative.
    let measure = |name: &str| -> [f32; 5] {
        let profile = library.get(name).expect("shipped").at(1.0, &neutral_style);
        let face = FaceCoefficients {
            weights: profile.weights,
            ..FaceCoefficients::default()
        };
        let code = bases::from_arkit(&face);
        let (view, _) = render(&asset, 0.0, &code, 0.7);
        let rgb = composite_over(&view, SIZE, SIZE, [128; 3]);
        let _ = rgb.save(out_dir().join(format!("emotion_{name}.png")));
        let landmarks = find_face_landmarks(&registry, &image::DynamicImage::ImageRgb8(rgb))
            .expect("the face is found");
        let p = |i: usize| landmarks.points[i].truncate();
        let right_eye = (p(33) + p(133)) * 0.5;
        let left_eye = (p(263) + p(362)) * 0.5;
        let iod = right_eye.distance(left_eye);
        let eyes_y = (right_eye.y + left_eye.y) * 0.5;
        [
            ((p(61).y + p(291).y) * 0.5 - eyes_y) / iod,
            ((p(55).y + p(285).y) * 0.5 - eyes_y) / iod,
            ((p(46).y + p(276).y) * 0.5 - eyes_y) / iod,
            ((p(145).y - p(159).y) + (p(374).y - p(386).y)) * 0.5 / iod,
            // The lips' outer contour: on a portrait that shows its teeth, the inner contour follows the teeth's
            // edges, which an opening jaw moves less than the lower lip.
            (p(17).y - p(0).y) / iod,
        ]
    };
    let neutral = measure("neutral");
    let mut moved = Vec::new();
    println!(
        "emotion    | corners | inner brows | outer brows | eye opening | lips apart  (change vs neutral, IOD)"
    );
    for name in names {
        let m = measure(name);
        let d: [f32; 5] = std::array::from_fn(|i| m[i] - neutral[i]);
        println!(
            "{name:<10} | {:+.3}  | {:+.3}      | {:+.3}      | {:+.3}      | {:+.3}",
            d[0], d[1], d[2], d[3], d[4]
        );
        moved.push((name, d));
    }
    let change = |name: &str| {
        moved
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| *d)
            .expect("measured")
    };
    // Each emotion's signature as the landmark model sees it on this portrait (IOD, up is negative).
    let (happy, sad, surprised, angry, fear) = (
        change("happy"),
        change("sad"),
        change("surprised"),
        change("angry"),
        change("fear"),
    );
    assert!(happy[0] < -0.025, "happy: corners not up: {happy:?}");
    assert!(
        sad[0] > 0.015 && sad[1] < -0.02,
        "sad: corners not down or inner brows not up: {sad:?}"
    );
    assert!(
        surprised[1] < -0.02 && surprised[2] < -0.02,
        "surprised: brows not up: {surprised:?}"
    );
    assert!(
        surprised[3] > 0.01 && surprised[4] > 0.025,
        "surprised: eyes or mouth not open: {surprised:?}"
    );
    assert!(
        angry[1] > 0.01 && angry[3] < -0.01,
        "angry: brows down, eyes narrowed: {angry:?}"
    );
    assert!(fear[1] < -0.02, "fear: inner brows not up: {fear:?}");
    for (i, (a, da)) in moved.iter().enumerate() {
        for (b, db) in &moved[i + 1..] {
            let distance = da
                .iter()
                .zip(db)
                .map(|(x, y)| (x - y).powi(2))
                .sum::<f32>()
                .sqrt();
            assert!(
                distance > 0.01,
                "{a} and {b} look alike ({distance:.3} IOD apart)"
            );
        }
    }
}

#[test]
fn closed_lips_part_onto_synthesized_teeth() {
    // The astronaut smiles with her teeth showing: they move with her lips and nothing is added.
    let astronaut = build();
    println!("astronaut: {:?}", astronaut.asset.mouth);
    assert_eq!(astronaut.asset.mouth.teeth, 0.0);

    // Grace Hopper's lips are closed: her open mouth shows a row of upper teeth hanging from the lips' line, bright
    // against the dark interior below them, with darker seams between the teeth.
    let Built { asset, face, .. } = build_from("grace_hopper.jpg");
    let mouth = asset.mouth;
    println!("grace_hopper: {mouth:?}");
    assert_eq!(mouth.teeth, 1.0);
    assert!(
        (mouth.centre - (face[13].truncate() + face[14].truncate()) * 0.5).length() < 1e-6
            && (0.015..0.04).contains(&mouth.half_width),
        "mouth {mouth:?}"
    );
    // A camera 25 cm in front of the mouth, 6 cm across the image: 0.31 mm per pixel at the lips.
    let target = mouth.centre.extend(face[13].z);
    let camera = HeadCamera {
        position: target + Vec3::Z * 0.25,
        target,
        up: Vec3::Y,
        fov_y: 2.0 * (0.03f32 / 0.25).atan(),
    };
    let march = MarchUniform::new(&asset, &camera, SIZE, SIZE, 400);
    let mut code = vec![0.0; asset.basis_count];
    let closed = render_reference(&asset, &code, &march);
    code[bases::JAW_OPEN] = 0.5;
    let open = render_reference(&asset, &code, &march);
    save("hopper_mouth_rest", &closed);
    save("hopper_mouth_jaw_half_open", &open);
    // Mean sRGB luminance over boxes of head-space x, y relative to the lips' middle (y down from the lips'
    // line): the top 1.5 mm below the line (teeth) and 5-8 mm below it (the interior; the gap at jaw 0.5 is
    // 10 mm at the middle).
    let luminance = |view: &[f32], x: (f32, f32), y: (f32, f32)| {
        let values: Vec<f32> = (0..SIZE * SIZE)
            .filter(|&i| {
                let p = Vec2::new(
                    ((i % SIZE) as f32 + 0.5) / SIZE as f32 - 0.5,
                    0.5 - ((i / SIZE) as f32 + 0.5) / SIZE as f32,
                ) * 0.06;
                (x.0..=x.1).contains(&p.x) && (-y.1..=-y.0).contains(&p.y)
            })
            .filter_map(|i| srgb(view, i as usize))
            .map(luma)
            .collect();
        assert!(values.len() >= 3, "too few pixels in {x:?} x {y:?}");
        values.iter().sum::<f32>() / values.len() as f32
    };
    let middle = (-0.3 * mouth.half_width, 0.3 * mouth.half_width);
    let teeth = luminance(&open, middle, (0.0, 0.0015));
    let interior = luminance(&open, middle, (0.005, 0.008));
    // The seam between the two central incisors, against the incisors beside it.
    let seam = luminance(&open, (-0.0004, 0.0004), (0.0, 0.0015));
    let incisors = luminance(&open, (0.002, 0.006), (0.0, 0.0015));
    println!(
        "jaw half open: teeth {teeth:.0}, interior {interior:.0}, seam {seam:.0} vs incisor {incisors:.0}"
    );
    assert!(
        teeth > 120.0 && interior < 50.0,
        "teeth {teeth:.0}, interior {interior:.0}"
    );
    assert!(
        seam < 0.9 * incisors,
        "seam {seam:.0} vs incisors {incisors:.0}"
    );
    // Closed, the same boxes are lips and skin, as in the portrait.
    let closed_teeth = luminance(&closed, middle, (0.0, 0.0015));
    assert!(
        (closed_teeth - teeth).abs() > 20.0,
        "the closed mouth already looks like the open one: {closed_teeth:.0}"
    );
}

/// With `eyeLookOutLeft` at 1 the left eye's iris (the darkest part of its opening) moves at least 3 mm towards
/// the subject's left in the render; the lids and the skin around the eye do not change, nor does the right eye.
#[test]
fn the_eyes_turn_behind_lids_that_stay() {
    let Built { asset, face, .. } = build();
    let eyes = asset.eyes;
    for eye in [eyes.left, eyes.right] {
        assert!(
            (0.008..0.016).contains(&eye.radius) && eye.half_size.y > 0.001,
            "{eye:?}"
        );
    }
    let size = 512u32;
    let camera = HeadCamera::orbit(0.0, 0.0, 0.7, asset.half_extent.length());
    let march = MarchUniform::new(&asset, &camera, size, size, 160);
    let mut look = FaceCoefficients::default();
    look.weights[arkit_index("eyeLookOutLeft").expect("a name")] = 1.0;
    let turns = look.eye_turns();
    assert!(
        turns[0] > 0.0 && turns[1] == 0.0 && turns[2..] == [0.0, 0.0],
        "{turns:?}"
    );
    let code = vec![0.0; asset.basis_count];
    let rest = render_reference(&asset, &code, &march);
    let turned = render_reference(&asset, &code, &march.with_gaze(turns));
    save_sized("gaze_rest", &rest, size);
    save_sized("gaze_out_left", &turned, size);
    let luma_at = |image: &[f32], x: usize, y: usize| {
        let i = (y * size as usize + x) * 4;
        let a = image[i + 3].max(1e-6);
        luma([0, 1, 2].map(|c| linear_to_srgb(image[i + c] / a) * 255.0))
    };
    // The eye's opening in the image: its centre and how many pixels a metre spans there.
    let depth = |i: usize| face[i].z;
    for (eye, corner, moves) in [
        (eyes.left, lm::LEFT_EYE_OUTER, true),
        (eyes.right, lm::RIGHT_EYE_OUTER, false),
    ] {
        let z = depth(corner);
        let centre = project(&camera, size, size, eye.centre.extend(z)).expect("in view");
        let towards_left = project(&camera, size, size, (eye.centre + Vec2::X * 0.01).extend(z))
            .expect("in view")
            - centre;
        let per_metre = towards_left.length() / 0.01;
        let half = eye.half_size * per_metre;
        let inside = |x: usize, y: usize, grow: f32| {
            let d = (Vec2::new(x as f32 + 0.5, y as f32 + 0.5) - centre) / (half * grow);
            d.length() < 1.0
        };
        // The iris: the darkest third of the opening's brightness range, weighted by how dark.
        let iris = |image: &[f32]| {
            let pixels: Vec<(Vec2, f32)> = (0..size as usize)
                .flat_map(|y| (0..size as usize).map(move |x| (x, y)))
                .filter(|&(x, y)| inside(x, y, 0.9))
                .map(|(x, y)| (Vec2::new(x as f32, y as f32), luma_at(image, x, y)))
                .collect();
            let (lo, hi) = pixels
                .iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), &(_, l)| {
                    (lo.min(l), hi.max(l))
                });
            let threshold = lo + (hi - lo) / 3.0;
            let (sum, weight) = pixels
                .iter()
                .filter(|(_, l)| *l < threshold)
                .fold((Vec2::ZERO, 0.0), |(s, w), &(p, l)| {
                    (s + p * (threshold - l), w + (threshold - l))
                });
            sum / weight.max(1e-6)
        };
        let shift = (iris(&turned) - iris(&rest)).dot(towards_left.normalize()) / per_metre;
        println!(
            "eye {corner}: iris moved {:.1} mm towards the subject's left",
            shift * 1000.0
        );
        if moves {
            assert!(shift >= 0.003, "the iris moved {shift} m");
        } else {
            assert!(shift.abs() < 0.0005, "the other eye's iris moved {shift} m");
        }
        // Around the opening (the lids, the skin) nothing changes.
        let mut changed = 0;
        let mut around = 0;
        for y in 0..size as usize {
            for x in 0..size as usize {
                if inside(x, y, 2.0) && !inside(x, y, 1.15) {
                    around += 1;
                    if (luma_at(&turned, x, y) - luma_at(&rest, x, y)).abs() > 2.0 {
                        changed += 1;
                    }
                }
            }
        }
        println!("eye {corner}: {changed} of {around} pixels around the opening changed");
        assert!(
            around > 200 && changed * 100 <= around,
            "{changed} of {around}"
        );
    }
}

fn save_sized(name: &str, linear: &[f32], size: u32) {
    let rgba = premultiplied_to_srgba8(linear);
    image::save_buffer(
        out_dir().join(format!("{name}.png")),
        &rgba,
        size,
        size,
        image::ExtendedColorType::Rgba8,
    )
    .expect("png");
}
