//! The whole photo talks (`HeadDisplay::Portrait`): the photo's layers, and the portrait display's frames on the
//! CPU reference renderer (the GPU is held to it in tests/render.rs). Thresholds are the goals, or the
//! values measured on the shipped portraits with a margin where a goal is not met yet (said so at each).

mod common;

use bevy::math::Vec3;
use bevy_talking_head::identity::bust::CHEST_DEPTH;
use bevy_talking_head::identity::layers::NECK_FOLLOW;
use bevy_talking_head::identity::portrait_quality::{
    HOLE_POSES_DEG, head_and_neck, head_coverage, head_pose as pose, holes_opened, portrait_size,
    render_at_rest, render_portrait, seam_band, seam_gradient_ratio,
};
use bevy_talking_head::identity::quality::{luma, psnr, ssim};
use bevy_talking_head::identity::rig::bases;
use bevy_talking_head::identity::{
    Background, BuiltHead, ExpressionBase, PortraitLayers, Segment, build_bust, cache,
    head_from_portrait,
};
use bevy_talking_head::inference::ModelRegistry;
use image::RgbImage;

/// Samples along the longest ray (the `Medium` preset).
const STEPS: u32 = 96;

#[test]
fn the_layers_separate_the_person_and_load_back_from_the_cache() {
    let (_, BuiltHead { layers, .. }) = common::built_portrait("astronaut.png");
    assert_eq!((layers.width, layers.height), (512, 512));
    assert_eq!(layers.validate(), Ok(()));
    let counts = layers.segment_counts();
    let share = |s: Segment| counts[s as usize] as f64 / layers.pixels() as f64;
    println!(
        "segments: background {:.3}, hair {:.3}, face {:.3}, skin {:.3}, clothes {:.3}",
        share(Segment::Background),
        share(Segment::Hair),
        share(Segment::Face),
        share(Segment::Skin),
        share(Segment::Clothes)
    );
    // The astronaut: a face about 100 px wide, hair around it, an orange suit filling the lower half.
    assert!((0.02..0.08).contains(&share(Segment::Face)));
    assert!((0.01..0.08).contains(&share(Segment::Hair)));
    assert!((0.25..0.6).contains(&share(Segment::Clothes)));
    assert!((0.2..0.6).contains(&share(Segment::Background)));
    // The body plate continues the neck behind the chin: opaque just above the chin, in the neck's middle.
    let neck = layers.neck;
    let above_chin = |dy: f32| {
        let (x, y) = (neck.centre_x as u32, (neck.jaw_y - dy) as u32);
        layers.body[(y * layers.width + x) as usize].to_le_bytes()[3]
    };
    assert_eq!(above_chin(5.0), 255);
    assert_eq!(above_chin(20.0), 255);
    // The background plate has no person left in it: where the face was, it is closer to the wall above the
    // head than to the face.
    let at = |plate: &[u32], x: u32, y: u32| plate[(y * layers.width + x) as usize].to_le_bytes();
    let (cx, cy) = (neck.centre_x as u32, (neck.jaw_y - 60.0) as u32);
    let filled = at(&layers.background, cx, cy);
    let face = at(&layers.face, cx, cy);
    let beside = at(&layers.background, cx, 4);
    let distance = |a: [u8; 4], b: [u8; 4]| {
        (0..3)
            .map(|c| (f64::from(a[c]) - f64::from(b[c])).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    println!("face {face:?}, background plate there {filled:?}, above the head {beside:?}");
    assert!(
        distance(filled, beside) < distance(filled, face),
        "{filled:?} vs {face:?} and {beside:?}"
    );

    let dir = std::env::temp_dir().join(format!("talking_head_layers_{}", std::process::id()));
    cache::save_layers(&dir, "k", &layers).expect("save");
    assert_eq!(cache::load_layers(&dir, "k").expect("load"), Some(layers));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_whole_photo_at_rest_is_the_photo_and_only_the_head_and_neck_move() {
    let (portrait, BuiltHead { asset, layers, .. }) = common::built_portrait("astronaut.png");
    let crop = layers.whole();
    let long_side = layers.width.max(layers.height);
    let sizes = (long_side, STEPS);
    let size = portrait_size(crop, long_side);
    let rest_code = vec![0.0; asset.basis_count];
    let rest = render_at_rest(&asset, &layers, crop, sizes).to_rgb();
    let photo = portrait.to_rgb8();
    let psnr_db = psnr(&rest, &photo, None).expect("same size");
    let ssim_value = ssim(
        &luma(&rest),
        &luma(&photo),
        size.x as usize,
        size.y as usize,
    )
    .expect("size");
    println!("at rest vs the photo: PSNR {psnr_db:.2} dB, SSIM {ssim_value:.4}");
    // Goals: 32 dB and 0.95 (measured 39.8 dB, 0.995).
    assert!(psnr_db >= 32.0, "PSNR {psnr_db}");
    assert!(ssim_value >= 0.95, "SSIM {ssim_value}");

    // Speaking, blinking, swaying: outside the head and neck nothing changes.
    let moving = head_and_neck(&layers, crop, size);
    let mut largest = 0u8;
    let mut previous = rest.clone();
    for (jaw, blink, (yaw, pitch, roll)) in [
        (1.0, 0.0, (6.0, 2.0, 0.0)),
        (0.3, 1.0, (-4.0, -3.0, 3.0)),
        (0.7, 0.0, (0.0, 4.0, -3.0)),
    ] {
        let mut code = rest_code.clone();
        code[bases::JAW_OPEN] = jaw;
        code[bases::BLINK_LEFT] = blink;
        code[bases::BLINK_RIGHT] = blink;
        let frame = render_portrait(
            &asset,
            &layers,
            (&code, ExpressionBase::Photo),
            pose(yaw, pitch, roll),
            crop,
            sizes,
        )
        .to_rgb();
        let mut changed_inside = 0usize;
        for (i, (a, b)) in frame.pixels().zip(previous.pixels()).enumerate() {
            let change = (0..3).map(|c| a[c].abs_diff(b[c])).max().unwrap_or(0);
            if moving[i] {
                changed_inside += usize::from(change > 8);
            } else {
                largest = largest.max(change);
            }
        }
        // The head did move.
        assert!(changed_inside > 500, "{changed_inside} pixels changed");
        previous = frame;
    }
    println!("largest change outside the head and neck: {largest}/255");
    assert!(largest <= 2, "{largest}/255 outside the head and neck");
}

#[test]
fn the_seam_adds_no_edge_and_turning_opens_almost_no_hole() {
    let (portrait, BuiltHead { asset, layers, .. }) = common::built_portrait("grace_hopper.jpg");
    let crop = layers.head_and_shoulders;
    let long_side = 256;
    let sizes = (long_side, STEPS);
    let size = portrait_size(crop, long_side);
    let photo = image::DynamicImage::ImageRgb8(portrait.to_rgb8())
        .crop_imm(crop.min.x, crop.min.y, crop.width(), crop.height())
        .resize_exact(size.x, size.y, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let rest_code = vec![0.0; asset.basis_count];
    let mut jaw = rest_code.clone();
    jaw[bases::JAW_OPEN] = 1.0;
    for (name, code, head_pose, limit) in [
        ("rest", &rest_code, pose(0.0, 0.0, 0.0), 0.2),
        ("jaw 1", &jaw, pose(0.0, 0.0, 0.0), 0.2),
        ("yaw 15°", &rest_code, pose(15.0, 0.0, 0.0), 0.2),
    ] {
        let frame = render_portrait(
            &asset,
            &layers,
            (code, ExpressionBase::Photo),
            head_pose,
            crop,
            sizes,
        );
        let coverage = head_coverage(&asset, &layers, code, head_pose, crop, sizes);
        let band = seam_band(&coverage, size.x as usize, size.y as usize, 3);
        let ratio = seam_gradient_ratio(&frame.to_rgb(), &photo, &band).expect("a seam");
        println!("seam {name}: gradient {ratio:.3} × the photo's");
        assert!((ratio - 1.0).abs() <= limit, "{name}: {ratio}");
    }
    // With the jaw open and the head turned, the background shows through the person nowhere (at 512 px and
    // more the portrait_quality example still finds 0–34 single pixels over all six poses on the shipped and
    // gallery portraits, where an outline is one pixel thin).
    let pixels = (size.x * size.y) as usize;
    let poses = HOLE_POSES_DEG.map(|(yaw, pitch, roll)| pose(yaw, pitch, roll));
    let opened_per_pose = holes_opened(&asset, &layers, (&jaw, &poses), crop, sizes);
    for ((yaw, pitch, roll), opened) in HOLE_POSES_DEG.into_iter().zip(opened_per_pose) {
        let opened = opened.iter().filter(|&&h| h).count();
        println!(
            "yaw {yaw}°, pitch {pitch}°, roll {roll}°: {opened} px of background through the person"
        );
        assert_eq!(opened, 0, "{opened} of {pixels}");
    }
}

#[test]
fn a_replaced_background_shows_only_where_the_person_is_not() {
    let (_, BuiltHead { asset, layers, .. }) = common::built_portrait("astronaut.png");
    let mut green = layers.clone();
    green.replace_background(&Background::Colour([0, 255, 0, 255]));
    let crop = layers.whole();
    let sizes = (128, 48);
    let size = portrait_size(crop, 128);
    let original = render_at_rest(&asset, &layers, crop, sizes).to_rgb();
    let replaced = render_at_rest(&asset, &green, crop, sizes).to_rgb();
    let is_green = |p: &image::Rgb<u8>| p[1] > 200 && p[0] < 60 && p[2] < 60;
    let greens = replaced.pixels().filter(|p| is_green(p)).count() as f64 / (128.0 * 128.0);
    // The face (middle of the head) keeps its colour; the top corners (sky behind the flag and the shuttle) turn
    // green.
    let (fx, fy) = (
        (layers.neck.centre_x / 4.0) as u32,
        ((layers.neck.jaw_y - 40.0) / 4.0) as u32,
    );
    println!("green share {greens:.3}");
    assert_eq!(original.get_pixel(fx, fy), replaced.get_pixel(fx, fy));
    assert!(is_green(replaced.get_pixel(size.x - 2, 1)));
    assert!((0.2..0.6).contains(&greens), "green share {greens}");
    // A transparent replacement leaves the frame transparent there and opaque on the person.
    let mut clear = layers.clone();
    clear.replace_background(&Background::Colour([0, 0, 0, 0]));
    let frame = render_at_rest(&asset, &clear, crop, sizes);
    let alpha = |x: u32, y: u32| frame.pixels[((y * size.x + x) * 4 + 3) as usize];
    assert!(alpha(size.x - 2, 1) < 0.01);
    assert!(alpha(fx, fy) > 0.99);
}

#[test]
fn layers_of_the_wrong_size_are_refused() {
    let (_, BuiltHead { layers, .. }) = common::built_portrait("astronaut.png");
    let mut short = layers.clone();
    short.body = short.body[1..].into();
    assert!(short.validate().is_err_and(|e| e.contains("body")));
    let huge = PortraitLayers {
        width: 5000,
        ..layers.clone()
    };
    assert!(huge.validate().is_err());
}

#[test]
fn hard_photos_give_whole_photos_that_match_at_rest() {
    // The gallery of hard cases (assets/portraits/gallery, tools/make_portrait_gallery.py): measured 34.1–46.4 dB.
    let registry = ModelRegistry::load_default().unwrap_or_else(|e| panic!("{e}"));
    let gallery = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/portraits/gallery");
    for name in [
        "astronaut_tight.png",
        "astronaut_edge.png",
        "astronaut_small.png",
        "hopper_grey.png",
        "hopper_transparent.png",
        "hopper_dark.png",
    ] {
        let portrait = image::open(gallery.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let BuiltHead { asset, layers, .. } =
            head_from_portrait(&registry, &portrait).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(layers.validate(), Ok(()), "{name}");
        let crop = layers.whole();
        let long_side = layers.width.max(layers.height);
        let size = portrait_size(crop, long_side);
        assert_eq!(
            (size.x, size.y),
            (portrait.width(), portrait.height()),
            "{name}"
        );
        let frame = render_at_rest(&asset, &layers, crop, (long_side, STEPS));
        // Compared as a viewer shows them: the transparent portrait over black, as the frame's transparent part.
        let rgba = portrait.to_rgba8();
        let photo = RgbImage::from_fn(size.x, size.y, |x, y| {
            let [r, g, b, a] = rgba.get_pixel(x, y).0;
            let over = |c: u8| ((u32::from(c) * u32::from(a) + 127) / 255) as u8;
            image::Rgb([over(r), over(g), over(b)])
        });
        let psnr_db = psnr(&frame.to_rgb(), &photo, None).expect("size");
        println!("{name}: at rest vs the photo {psnr_db:.2} dB");
        assert!(psnr_db >= 32.0, "{name}: {psnr_db} dB");
    }
}

#[test]
fn the_bust_wraps_the_photos_body_and_bends_only_at_the_neck() {
    let (portrait, BuiltHead { layers, .. }) = common::built_portrait("astronaut.png");
    let bust = build_bust(&layers).unwrap_or_else(|e| panic!("{e}"));
    let frame = layers.frame;
    let neck = layers.neck;
    assert_eq!(bust.positions.len(), bust.uvs.len());
    assert_eq!(bust.positions.len(), bust.follow.len());
    assert!(
        bust.indices
            .iter()
            .all(|&i| (i as usize) < bust.positions.len())
    );
    assert!(
        bust.positions
            .iter()
            .chain(&bust.normals)
            .all(|p| p.iter().all(|v| v.is_finite()))
    );
    // It runs from the mouth's height (inside the head) down to the photo's bottom edge (the suit fills it).
    let (top, bottom) = bust
        .positions
        .iter()
        .fold((f32::MIN, f32::MAX), |(t, b), p| (t.max(p[1]), b.min(p[1])));
    let bottom_row = frame.to_image(0.0, bottom).y;
    println!(
        "bust from y {top:.3} to {bottom:.3} m (pivot at {:.3}), bottom at plate row {bottom_row:.0} of {}",
        neck.pivot.y, layers.height
    );
    assert!((top - neck.pivot.y).abs() < 0.01);
    assert!(bottom_row > layers.height as f32 - 12.0);
    // Its front shows the photo: the texture at a front vertex in the suit is the photo's pixel there.
    let photo = portrait.to_rgb8();
    let (tw, th) = (bust.texture.width() as f32, bust.texture.height() as f32);
    let mut compared = 0;
    for (p, uv) in bust.positions.iter().zip(&bust.uvs) {
        let front = p[2] > neck.pivot.z && uv[1] < 0.5;
        let at = frame.to_image(p[0], p[1]);
        if !front || at.y < neck.ring_y || at.x < 2.0 || at.x > tw - 3.0 {
            continue;
        }
        let texel = bust.texture.get_pixel(
            ((uv[0] * tw) as u32).min(tw as u32 - 1),
            ((uv[1] * th) as u32).min(th as u32 - 1),
        );
        if texel[3] < 255 {
            continue;
        }
        // The photo's pixel there, or one beside it (a vertex lies between pixels).
        let difference = (-1..=1)
            .flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)))
            .map(|(dx, dy)| {
                let (x, y) = (at.x as i32 + dx, at.y as i32 + dy);
                let pixel = photo.get_pixel(
                    x.clamp(0, photo.width() as i32 - 1) as u32,
                    y.clamp(0, photo.height() as i32 - 1) as u32,
                );
                (0..3)
                    .map(|c| texel[c].abs_diff(pixel[c]))
                    .max()
                    .unwrap_or(0)
            })
            .min()
            .unwrap_or(u8::MAX);
        assert!(
            difference <= 24,
            "{texel:?} vs the photo at {at}: {difference}"
        );
        compared += 1;
    }
    assert!(compared > 100, "{compared} front vertices compared");
    // Its back is the front blurred and darker; it is as deep as the chest allows.
    let depth = bust.positions.iter().map(|p| p[2]).fold(f32::MIN, f32::max)
        - bust.positions.iter().map(|p| p[2]).fold(f32::MAX, f32::min);
    let neck_width = 2.0 * neck.half_width * frame.scale;
    println!("depth {depth:.3} m, neck width {neck_width:.3} m");
    assert!(depth > neck_width && depth <= CHEST_DEPTH * neck_width + 1e-4);

    // The head turned 20° and nodded 10°: the neck's top follows by NECK_FOLLOW, the bust below the ring stays.
    let (rotation, translation) = pose(20.0, 10.0, 0.0);
    let posed = bust.posed(rotation, translation);
    let mut top_moved = 0.0f32;
    for ((rest, moved), follow) in bust.positions.iter().zip(&posed).zip(&bust.follow) {
        let shift = (Vec3::from_array(*rest) - Vec3::from_array(*moved)).length();
        if frame.to_image(rest[0], rest[1]).y >= neck.ring_y {
            assert!(shift < 1e-6, "below the neck ring a vertex moved {shift} m");
        }
        if (rest[1] - top).abs() < 1e-4 {
            assert!((follow - NECK_FOLLOW).abs() < 1e-4);
            top_moved = top_moved.max(shift);
        }
    }
    println!("the neck's top moved up to {:.1} mm", top_moved * 1000.0);
    assert!(top_moved > 0.005);
}

#[test]
fn busts_of_hard_photos_are_whole_or_clearly_refused() {
    let registry = ModelRegistry::load_default().unwrap_or_else(|e| panic!("{e}"));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/portraits");
    for name in [
        "grace_hopper.jpg",
        "gallery/astronaut_tight.png",
        "gallery/astronaut_edge.png",
        "gallery/astronaut_small.png",
        "gallery/hopper_transparent.png",
        "gallery/dahlgren.jpg",
        "gallery/andersson.jpg",
    ] {
        let portrait = image::open(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let BuiltHead { layers, .. } =
            head_from_portrait(&registry, &portrait).unwrap_or_else(|e| panic!("{name}: {e}"));
        match build_bust(&layers) {
            Ok(bust) => {
                let rows = bust.positions.len() / 34;
                println!("{name}: a bust of {rows} rings");
                assert!(rows >= 2, "{name}");
                assert!(
                    bust.positions
                        .iter()
                        .all(|p| p.iter().all(|v| v.is_finite()))
                );
            }
            Err(error) => {
                println!("{name}: {error}");
                assert!(error.to_string().contains("no neck"), "{name}: {error}");
            }
        }
    }
}

#[test]
fn a_picture_with_nothing_under_the_chin_gets_no_bust_and_says_why() {
    let (_, BuiltHead { mut layers, .. }) = common::built_portrait("astronaut.png");
    // The body plate emptied: nothing of the person below the head.
    layers.body = vec![0u32; layers.pixels()].into();
    let error = build_bust(&layers).expect_err("a bust without a body");
    assert!(error.to_string().contains("no neck"), "{error}");
}
