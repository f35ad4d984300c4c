//! Face detection and landmarks on the shipped portrait (assets/portraits/astronaut.png) through ONNX Runtime:
//! the face is where MediaPipe itself finds it, the landmarks sit on the face and mirror with the image, and bad
//! images (no face, too small, grayscale, alpha, 16-bit, huge, several faces) give clear errors or still work.
//!
//! Reference numbers: MediaPipe 0.10.14's own Python solutions (`mp.solutions.face_detection` with
//! `model_selection=0`, `mp.solutions.face_mesh` with `static_image_mode=True`) on the same PNG, printed in pixels.

use std::path::{Path, PathBuf};

use bevy::math::{Vec2, Vec3};
use bevy_talking_head::identity::{
    FaceBox, FaceKeypoint, FaceLandmarks, IdentityError, detect_faces, face_landmarks,
    find_face_landmarks,
    landmarks::{LANDMARK_COUNT, MIN_IMAGE_SIDE, landmark_index as index},
};
use bevy_talking_head::inference::ModelRegistry;
use image::{DynamicImage, ImageBuffer, Rgb, RgbImage, Rgba};

/// MediaPipe 0.10.14's face box on the astronaut: x, y, width, height in pixels, and its score.
const REFERENCE_BOX: [f32; 4] = [177.57, 82.87, 95.34, 95.34];
const REFERENCE_SCORE: f32 = 0.9217;
/// MediaPipe 0.10.14's face-mesh landmarks on the astronaut: index, x, y, z in pixels.
const REFERENCE_LANDMARKS: [(usize, [f32; 3]); 12] = [
    (1, [224.10, 131.18, -23.31]),
    (4, [224.37, 126.95, -25.09]),
    (33, [194.65, 100.94, 3.93]),
    (133, [213.82, 103.65, 0.53]),
    (263, [256.71, 104.08, 4.48]),
    (362, [237.44, 104.77, 0.84]),
    (13, [223.55, 142.74, -5.79]),
    (14, [223.13, 149.60, -3.44]),
    (61, [201.85, 139.45, 6.93]),
    (291, [245.91, 142.24, 7.18]),
    (152, [221.34, 175.49, 8.71]),
    (10, [227.50, 72.43, -11.20]),
];
/// Landmarks that swap places when the face is mirrored (subject's right ↔ left), and midline points (self pairs).
const MIRROR_PAIRS: [(usize, usize); 9] = [
    (index::RIGHT_EYE_OUTER, index::LEFT_EYE_OUTER),
    (index::RIGHT_EYE_INNER, index::LEFT_EYE_INNER),
    (index::MOUTH_RIGHT, index::MOUTH_LEFT),
    (index::NOSE_TIP, index::NOSE_TIP),
    (index::UPPER_LIP, index::UPPER_LIP),
    (index::LOWER_LIP, index::LOWER_LIP),
    (index::CHIN, index::CHIN),
    (index::FOREHEAD, index::FOREHEAD),
    (234, 454),
];

fn registry() -> ModelRegistry {
    ModelRegistry::load_default().unwrap_or_else(|error| panic!("{error}"))
}

fn astronaut() -> DynamicImage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/portraits/astronaut.png");
    image::open(&path).unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()))
}

fn landmarks_of(registry: &ModelRegistry, image: &DynamicImage) -> FaceLandmarks {
    find_face_landmarks(registry, image).unwrap_or_else(|error| panic!("{error}"))
}

fn point(landmarks: &FaceLandmarks, i: usize) -> Vec2 {
    landmarks.points[i].truncate()
}

fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("landmarks");
    if let Err(error) = std::fs::create_dir_all(&dir) {
        panic!("cannot create {}: {error}", dir.display());
    }
    dir
}

/// Draws the box, the detector keypoints (blue) and the 468 landmarks (green; the eye and mouth corners red) on
/// the image, upscaled `zoom` times around `region` (x, y, width, height in pixels) so the points can be told
/// apart; returns where the PNG was written.
fn draw(
    image: &RgbImage,
    landmarks: &FaceLandmarks,
    region: [u32; 4],
    zoom: u32,
    name: &str,
) -> PathBuf {
    let [rx, ry, rw, rh] = region;
    let mut out = RgbImage::from_fn(rw * zoom, rh * zoom, |x, y| {
        *image.get_pixel(
            (rx + x / zoom).min(image.width() - 1),
            (ry + y / zoom).min(image.height() - 1),
        )
    });
    let to_out = |p: Vec2| (p - Vec2::new(rx as f32, ry as f32)) * zoom as f32;
    let mut dot = |p: Vec2, radius: i64, colour: [u8; 3]| {
        let c = to_out(p);
        for dy in -radius..=radius {
            for dx in -radius..=radius {
                let (x, y) = (c.x as i64 + dx, c.y as i64 + dy);
                if x >= 0 && y >= 0 && (x as u32) < out.width() && (y as u32) < out.height() {
                    out.put_pixel(x as u32, y as u32, Rgb(colour));
                }
            }
        }
    };
    let face = landmarks.face;
    for t in 0..=100 {
        let f = t as f32 / 100.0;
        for p in [
            face.min + Vec2::new(f * face.size.x, 0.0),
            face.min + Vec2::new(f * face.size.x, face.size.y),
            face.min + Vec2::new(0.0, f * face.size.y),
            face.min + Vec2::new(face.size.x, f * face.size.y),
        ] {
            dot(p, 0, [255, 255, 0]);
        }
    }
    for p in &landmarks.points {
        dot(p.truncate(), 1, [0, 255, 0]);
    }
    for i in [
        index::RIGHT_EYE_OUTER,
        index::RIGHT_EYE_INNER,
        index::LEFT_EYE_OUTER,
        index::LEFT_EYE_INNER,
        index::MOUTH_RIGHT,
        index::MOUTH_LEFT,
        index::NOSE_TIP,
    ] {
        dot(point(landmarks, i), 2, [255, 0, 0]);
    }
    for p in face.keypoints {
        dot(p, 2, [0, 80, 255]);
    }
    let path = output_dir().join(name);
    if let Err(error) = out.save(&path) {
        panic!("cannot save {}: {error}", path.display());
    }
    path
}

fn assert_near(what: &str, got: Vec2, expected: Vec2, tolerance: f32) {
    let distance = got.distance(expected);
    assert!(
        distance <= tolerance,
        "{what}: {got} is {distance:.2} px from {expected} (tolerance {tolerance} px)"
    );
}

#[test]
fn astronaut_face_is_found_where_mediapipe_finds_it() {
    let registry = registry();
    let image = astronaut();
    let faces = detect_faces(&registry, &image).unwrap_or_else(|error| panic!("{error}"));
    println!("faces: {faces:?}");
    assert_eq!(faces.len(), 1, "{faces:?}");
    let face = faces[0];
    // By eye: Eileen Collins' face spans about x 175..275, y 65..185 of the 512×512 photo.
    assert!(face.min.x > 160.0 && face.min.x < 200.0, "{face:?}");
    assert!(face.min.y > 60.0 && face.min.y < 110.0, "{face:?}");
    assert!(face.size.x > 70.0 && face.size.x < 130.0, "{face:?}");
    assert!(face.size.y > 70.0 && face.size.y < 130.0, "{face:?}");
    // And within a few pixels of MediaPipe's own pipeline.
    let [x, y, w, h] = REFERENCE_BOX;
    assert_near("box corner", face.min, Vec2::new(x, y), 3.0);
    assert_near("box size", face.size, Vec2::new(w, h), 3.0);
    assert!((face.score - REFERENCE_SCORE).abs() < 0.03, "{face:?}");
    let right_eye = face.keypoint(FaceKeypoint::RightEye);
    let left_eye = face.keypoint(FaceKeypoint::LeftEye);
    assert!(
        right_eye.x < left_eye.x,
        "subject's right eye is on the image's left: {face:?}"
    );
    assert!(face.keypoint(FaceKeypoint::Mouth).y > face.keypoint(FaceKeypoint::NoseTip).y);
}

#[test]
fn astronaut_landmarks_sit_on_the_face() {
    let registry = registry();
    let image = astronaut();
    let landmarks = landmarks_of(&registry, &image);
    assert_eq!(landmarks.points.len(), LANDMARK_COUNT);
    println!("face presence {}", landmarks.presence);
    assert!(landmarks.presence > 0.9, "presence {}", landmarks.presence);
    assert!(landmarks.points.iter().all(|p| p.is_finite()));
    let face = landmarks.face;
    for i in [
        index::RIGHT_EYE_OUTER,
        index::RIGHT_EYE_INNER,
        index::LEFT_EYE_OUTER,
        index::LEFT_EYE_INNER,
        index::UPPER_LIP,
        index::LOWER_LIP,
        index::MOUTH_RIGHT,
        index::MOUTH_LEFT,
        index::NOSE_TIP,
    ] {
        assert!(
            face.contains(point(&landmarks, i)),
            "landmark {i} outside the box"
        );
    }
    let right_eye = (point(&landmarks, index::RIGHT_EYE_OUTER)
        + point(&landmarks, index::RIGHT_EYE_INNER))
        / 2.0;
    let left_eye =
        (point(&landmarks, index::LEFT_EYE_OUTER) + point(&landmarks, index::LEFT_EYE_INNER)) / 2.0;
    let nose = point(&landmarks, index::NOSE_TIP);
    let mouth = (point(&landmarks, index::UPPER_LIP) + point(&landmarks, index::LOWER_LIP)) / 2.0;
    assert!(
        right_eye.x < left_eye.x,
        "subject's right eye on the image's left"
    );
    assert!(
        right_eye.x < nose.x && nose.x < left_eye.x,
        "nose between the eyes"
    );
    assert!(
        nose.y > right_eye.y.max(left_eye.y) && nose.y < mouth.y,
        "nose below the eyes, above the mouth"
    );
    assert!(mouth.y < point(&landmarks, index::CHIN).y);
    // The nose tip is nearer the camera than the eye corners and the chin.
    assert!(landmarks.points[index::NOSE_TIP].z < landmarks.points[index::RIGHT_EYE_OUTER].z);
    assert!(landmarks.points[index::NOSE_TIP].z < landmarks.points[index::CHIN].z);

    let mut worst = 0.0f32;
    for (i, [x, y, z]) in REFERENCE_LANDMARKS {
        let p = landmarks.points[i];
        println!("landmark {i:3}: {p} (MediaPipe {x:.2}, {y:.2}, {z:.2})");
        worst = worst.max(p.truncate().distance(Vec2::new(x, y)));
        assert_near(&format!("landmark {i}"), p.truncate(), Vec2::new(x, y), 3.0);
        assert!(
            (p.z - z).abs() < 4.0,
            "landmark {i} depth {} vs MediaPipe {z}",
            p.z
        );
    }
    println!("largest distance to MediaPipe: {worst:.2} px");

    let rgb = image.to_rgb8();
    let whole = draw(
        &rgb,
        &landmarks,
        [0, 0, rgb.width(), rgb.height()],
        2,
        "astronaut_landmarks.png",
    );
    let close = draw(
        &rgb,
        &landmarks,
        [150, 50, 150, 150],
        6,
        "astronaut_landmarks_face.png",
    );
    println!("drawn: {} and {}", whole.display(), close.display());
}

#[test]
fn mirrored_portrait_gives_mirrored_landmarks() {
    let registry = registry();
    let image = astronaut();
    let width = image.width() as f32;
    let original = landmarks_of(&registry, &image);
    let flipped = landmarks_of(&registry, &image.fliph());
    let mirror = |p: Vec3| Vec2::new(width - p.x, p.y);
    for (a, b) in MIRROR_PAIRS {
        assert_near(
            &format!("landmark {a} mirrored onto {b}"),
            mirror(flipped.points[a]),
            point(&original, b),
            4.0,
        );
    }
    // As sets: every mirrored point lies near some original point.
    let mean_nearest = flipped
        .points
        .iter()
        .map(|&p| {
            original
                .points
                .iter()
                .map(|q| q.truncate().distance(mirror(p)))
                .fold(f32::INFINITY, f32::min)
        })
        .sum::<f32>()
        / LANDMARK_COUNT as f32;
    println!(
        "mean distance from a mirrored landmark to the nearest original one: {mean_nearest:.2} px"
    );
    assert!(mean_nearest < 1.5, "{mean_nearest}");
}

#[test]
fn images_without_a_face_say_so() {
    let registry = registry();
    let grey = DynamicImage::ImageRgb8(RgbImage::from_pixel(256, 256, Rgb([128, 128, 128])));
    let mut state = 0x2545_f491_u32;
    let noise = DynamicImage::ImageRgb8(RgbImage::from_fn(320, 240, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        Rgb([r, g, b])
    }));
    for (what, image) in [("grey", grey), ("noise", noise)] {
        match find_face_landmarks(&registry, &image) {
            Err(error @ IdentityError::NoFace { best_score, .. }) => {
                println!("{what}: {error}");
                assert!(best_score < 0.5);
                assert!(error.to_string().contains("no face found"), "{error}");
            }
            other => panic!("{what}: expected NoFace, got {other:?}"),
        }
    }
}

#[test]
fn tiny_images_are_too_small() {
    let registry = registry();
    let tiny = DynamicImage::ImageRgb8(RgbImage::from_pixel(8, 8, Rgb([200, 150, 120])));
    let result = find_face_landmarks(&registry, &tiny);
    assert!(
        matches!(
            result,
            Err(IdentityError::ImageTooSmall { width: 8, height: 8, min_side }) if min_side == MIN_IMAGE_SIDE
        ),
        "{result:?}"
    );
    let thin = DynamicImage::ImageRgb8(RgbImage::from_pixel(600, 20, Rgb([200, 150, 120])));
    let message = detect_faces(&registry, &thin)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("600×20") && message.contains("at least 32×32"),
        "{message}"
    );
}

/// Grayscale, grayscale with alpha, RGBA and 16-bit versions of the portrait give the colour result (within a
/// few pixels: the models were trained on colour).
#[test]
fn other_colour_types_still_find_the_face() {
    let registry = registry();
    let image = astronaut();
    let colour = landmarks_of(&registry, &image);
    let variants = [
        ("luma8", DynamicImage::ImageLuma8(image.to_luma8())),
        (
            "luma_alpha8",
            DynamicImage::ImageLumaA8(image.to_luma_alpha8()),
        ),
        ("rgba8", DynamicImage::ImageRgba8(image.to_rgba8())),
        ("rgb16", DynamicImage::ImageRgb16(image.to_rgb16())),
        ("luma16", DynamicImage::ImageLuma16(image.to_luma16())),
    ];
    for (what, variant) in variants {
        let landmarks = landmarks_of(&registry, &variant);
        let largest = landmarks
            .points
            .iter()
            .zip(&colour.points)
            .map(|(a, b)| a.truncate().distance(b.truncate()))
            .fold(0.0f32, f32::max);
        println!("{what}: largest landmark distance to the colour result {largest:.2} px");
        let tolerance = if what.starts_with("luma") { 4.0 } else { 0.01 };
        assert!(largest <= tolerance, "{what}: {largest} px");
    }
}

/// A CMYK JPEG (as print workflows save photos) decodes to RGB and gives the same face as the RGB original.
#[test]
fn cmyk_jpeg_portraits_find_the_face() {
    let registry = registry();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cmyk =
        image::open(root.join("assets/test/astronaut_cmyk.jpg")).expect("a CMYK JPEG decodes");
    println!("CMYK JPEG decoded as {:?}", cmyk.color());
    // The fixture is the portrait's 256×256 crop at x 96, y 0.
    let original = astronaut().crop_imm(96, 0, 256, 256);
    let expected = landmarks_of(&registry, &original);
    let got = landmarks_of(&registry, &cmyk);
    let largest = got
        .points
        .iter()
        .zip(&expected.points)
        .map(|(a, b)| a.truncate().distance(b.truncate()))
        .fold(0.0f32, f32::max);
    println!("CMYK JPEG: largest landmark distance to the RGB crop's {largest:.2} px");
    assert!(largest < 3.0, "{largest} px");
}

/// Transparent pixels are composited onto black: a portrait whose surroundings are fully transparent (with
/// garbage colour under the alpha) still gives the face.
#[test]
fn transparent_surroundings_are_ignored() {
    let registry = registry();
    let image = astronaut().to_rgba8();
    let cut_out = ImageBuffer::from_fn(image.width(), image.height(), |x, y| {
        let Rgba([r, g, b, _]) = *image.get_pixel(x, y);
        let inside = (150..310).contains(&x) && (30..230).contains(&y);
        if inside {
            Rgba([r, g, b, 255])
        } else {
            Rgba([255, 0, 255, 0])
        }
    });
    let landmarks = landmarks_of(&registry, &DynamicImage::ImageRgba8(cut_out));
    let reference = REFERENCE_LANDMARKS[0].1;
    assert_near(
        "nose",
        point(&landmarks, index::NOSE_TIP),
        Vec2::new(reference[0], reference[1]),
        4.0,
    );
}

/// A huge image is downscaled before detection, but results come back in its own pixels.
#[test]
fn huge_images_are_downscaled_and_answer_in_their_own_pixels() {
    let registry = registry();
    let image = astronaut();
    let big = image.resize_exact(3072, 3072, image::imageops::FilterType::Triangle);
    let landmarks = landmarks_of(&registry, &big);
    assert_eq!(landmarks.image_size, bevy::math::UVec2::new(3072, 3072));
    for (i, [x, y, _]) in REFERENCE_LANDMARKS.into_iter().take(4) {
        assert_near(
            &format!("landmark {i}"),
            point(&landmarks, i) / 6.0,
            Vec2::new(x, y),
            3.0,
        );
    }
}

/// With two faces, every face is found and the largest is used.
#[test]
fn several_faces_pick_the_largest() {
    let registry = registry();
    let image = astronaut();
    // The face and shoulders, twice: at full size on the left, at 60 % on the right, on a grey canvas.
    let head = image.crop_imm(110, 20, 230, 230);
    let small = head.resize_exact(138, 138, image::imageops::FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(400, 240, Rgb([90, 90, 90]));
    image::imageops::overlay(&mut canvas, &head.to_rgb8(), 0, 5);
    image::imageops::overlay(&mut canvas, &small.to_rgb8(), 250, 60);
    let canvas = DynamicImage::ImageRgb8(canvas);
    let faces = detect_faces(&registry, &canvas).unwrap_or_else(|error| panic!("{error}"));
    println!("faces: {faces:?}");
    assert_eq!(faces.len(), 2, "{faces:?}");
    let landmarks = landmarks_of(&registry, &canvas);
    assert!(landmarks.face.centre().x < 230.0, "{:?}", landmarks.face);
    assert!(landmarks.face.contains(point(&landmarks, index::NOSE_TIP)));
    // Landmarks of the smaller face on request.
    let Some(small_face) = faces.iter().find(|face: &&FaceBox| face.centre().x > 250.0) else {
        panic!("no face on the right: {faces:?}");
    };
    let small_landmarks =
        face_landmarks(&registry, &canvas, small_face).unwrap_or_else(|error| panic!("{error}"));
    assert!(small_face.contains(point(&small_landmarks, index::NOSE_TIP)));
}

#[test]
fn a_broken_face_box_is_an_error_not_a_panic() {
    let registry = registry();
    let image = astronaut();
    let broken = FaceBox {
        min: Vec2::new(f32::NAN, 0.0),
        size: Vec2::splat(10.0),
        keypoints: [Vec2::ZERO; 6],
        score: 1.0,
    };
    assert!(matches!(
        face_landmarks(&registry, &image, &broken),
        Err(IdentityError::InvalidFaceBox(_))
    ));
    // A box far outside the image still runs (the crop repeats the edge pixels); the model sees no face there.
    let outside = FaceBox {
        min: Vec2::splat(5000.0),
        size: Vec2::splat(50_000.0),
        keypoints: [Vec2::splat(6000.0); 6],
        score: 1.0,
    };
    let far = face_landmarks(&registry, &image, &outside).unwrap_or_else(|error| panic!("{error}"));
    assert!(far.presence < 0.5, "presence {}", far.presence);
}
