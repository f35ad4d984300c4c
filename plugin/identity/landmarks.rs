//! Faces in a portrait: detection and 468 3D landmarks with MediaPipe's models, converted to ONNX
//! (`tools/convert_face_models.py`, card `assets/models/face_models.md`) and run through the [`ModelRegistry`].
//!
//! The steps follow MediaPipe 0.10.14's face mesh graph for still images:
//! 1. [`detect_faces`]: the image is letterboxed into the short-range BlazeFace detector (128×128, values −1..1);
//!    its 896 SSD anchors are decoded into boxes and six keypoints, scored through a sigmoid and merged by
//!    weighted non-maximum suppression.
//! 2. [`face_landmarks`]: a square 1.5 times the face box, turned so that the eyes are level, is cut out and
//!    resized to 192×192 (values 0..1); the landmark model gives 468 points in that crop, which are mapped back into
//!    the image.
//!
//! Coordinates are continuous image pixels: x right, y down, (0, 0) the top-left corner of the top-left pixel,
//! so the centre of pixel (i, j) is (i + 0.5, j + 0.5). Depth z uses the same pixel scale; smaller z is nearer the
//! camera, and z is relative (the face's centre is near 0). "Left" and "right" in names are the subject's: the
//! subject's right eye is on the image's left in an unmirrored photo.

use bevy::math::{UVec2, Vec2, Vec3};
use image::{DynamicImage, RgbImage, imageops::FilterType};
use ort::value::TensorRef;

use super::IdentityError;
use crate::contract::models::{FACE_DETECTOR, FACE_LANDMARKS};
use crate::inference::{InferenceError, ModelRegistry};

/// Smallest accepted image side, in pixels.
pub const MIN_IMAGE_SIDE: u32 = 32;
/// Images with a longer side than this are downscaled (keeping their aspect ratio) before detection, in pixels;
/// results are still given in the original image's pixels.
pub const MAX_IMAGE_SIDE: u32 = 2048;
/// Side of the detector's square input, in pixels.
pub const DETECTOR_INPUT_SIDE: u32 = 128;
/// Side of the landmark model's square input, in pixels.
pub const LANDMARK_INPUT_SIDE: u32 = 192;
/// Number of face landmarks (MediaPipe's face mesh topology).
pub const LANDMARK_COUNT: usize = 468;
/// Lowest detector score (0..1) that counts as a face; MediaPipe's default.
pub const MIN_DETECTION_SCORE: f32 = 0.5;
/// Lowest landmark-model face presence score (0..1) that confirms a face; MediaPipe's default.
pub const MIN_FACE_PRESENCE: f32 = 0.5;
/// The landmark crop's side as a multiple of the face box's longer side (MediaPipe's `scale_x`/`scale_y`).
pub const CROP_SCALE: f32 = 1.5;

/// Anchors of the short-range detector: a 16×16 grid with 2 anchors per cell, then an 8×8 grid with 6.
const ANCHOR_GRIDS: [(usize, usize); 2] = [(16, 2), (8, 6)];
/// 16·16·2 + 8·8·6.
const ANCHOR_COUNT: usize = 896;
/// Per anchor: box centre x, y, width, height, then six keypoints as x, y.
const REGRESSORS_PER_ANCHOR: usize = 16;
/// Regressor values are in detector-input pixels.
const REGRESSOR_SCALE: f32 = 128.0;
/// Raw scores are clipped to ±this before the sigmoid.
const SCORE_CLIP: f32 = 100.0;
/// Detections overlapping the best remaining one by more than this intersection-over-union are merged into it.
const SUPPRESSION_IOU: f32 = 0.3;
/// Most sub-samples per axis when one output pixel of a crop covers many image pixels (anti-aliasing).
const MAX_SUPERSAMPLING: usize = 8;

/// Largest estimated yaw ([`FaceLandmarks::yaw_degrees`]) of a portrait a head is built from, degrees (about
/// 45° of real turn).
pub const MAX_PORTRAIT_YAW_DEG: f32 = 35.0;

/// Indices into [`FaceLandmarks::points`] of some well-known points of MediaPipe's face mesh.
pub mod landmark_index {
    /// Tip of the nose.
    pub const NOSE_TIP: usize = 1;
    /// Top of the forehead, on the face's midline.
    pub const FOREHEAD: usize = 10;
    /// Bottom of the chin, on the midline.
    pub const CHIN: usize = 152;
    /// Centre of the upper lip's inner edge.
    pub const UPPER_LIP: usize = 13;
    /// Centre of the lower lip's inner edge.
    pub const LOWER_LIP: usize = 14;
    /// Corner of the mouth on the subject's right.
    pub const MOUTH_RIGHT: usize = 61;
    /// Corner of the mouth on the subject's left.
    pub const MOUTH_LEFT: usize = 291;
    /// Outer corner of the subject's right eye.
    pub const RIGHT_EYE_OUTER: usize = 33;
    /// Inner corner of the subject's right eye.
    pub const RIGHT_EYE_INNER: usize = 133;
    /// Outer corner of the subject's left eye.
    pub const LEFT_EYE_OUTER: usize = 263;
    /// Inner corner of the subject's left eye.
    pub const LEFT_EYE_INNER: usize = 362;
    /// Top of the upper lip's outer edge, on the midline.
    pub const UPPER_LIP_OUTER: usize = 0;
    /// Bottom of the lower lip's outer edge, on the midline.
    pub const LOWER_LIP_OUTER: usize = 17;
    /// Middle of the subject's right upper eyelid.
    pub const RIGHT_UPPER_LID: usize = 159;
    /// Middle of the subject's left upper eyelid.
    pub const LEFT_UPPER_LID: usize = 386;
    /// Middle of the subject's right lower eyelid.
    pub const RIGHT_LOWER_LID: usize = 145;
    /// Middle of the subject's left lower eyelid.
    pub const LEFT_LOWER_LID: usize = 374;
    /// Inner end of the subject's right brow.
    pub const RIGHT_BROW_INNER: usize = 55;
    /// Inner end of the subject's left brow.
    pub const LEFT_BROW_INNER: usize = 285;
    /// Outer end of the subject's right brow.
    pub const RIGHT_BROW_OUTER: usize = 46;
    /// Outer end of the subject's left brow.
    pub const LEFT_BROW_OUTER: usize = 276;
    /// Wing (ala) of the nose on the subject's right.
    pub const RIGHT_NOSE_WING: usize = 64;
    /// Wing (ala) of the nose on the subject's left.
    pub const LEFT_NOSE_WING: usize = 294;
    /// Cheek below the subject's right eye, beside the nose.
    pub const RIGHT_CHEEK: usize = 205;
    /// Cheek below the subject's left eye, beside the nose.
    pub const LEFT_CHEEK: usize = 425;
    /// The face's outline on the subject's right, at the eyes' height (beside the ear).
    pub const RIGHT_FACE_SIDE: usize = 234;
    /// The face's outline on the subject's left, at the eyes' height (beside the ear).
    pub const LEFT_FACE_SIDE: usize = 454;
}

/// The six keypoints the detector gives with each face, in [`FaceBox::keypoints`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaceKeypoint {
    /// Centre of the subject's right eye.
    RightEye = 0,
    /// Centre of the subject's left eye.
    LeftEye = 1,
    /// Tip of the nose.
    NoseTip = 2,
    /// Centre of the mouth.
    Mouth = 3,
    /// The subject's right ear (tragion).
    RightEar = 4,
    /// The subject's left ear (tragion).
    LeftEar = 5,
}

/// One face found by [`detect_faces`], in image pixels (see the module docs for the coordinate convention).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    /// Top-left corner of the box, in pixels.
    pub min: Vec2,
    /// Width and height of the box, in pixels.
    pub size: Vec2,
    /// Eyes, nose tip, mouth and ears (index with [`FaceKeypoint`]), in pixels.
    pub keypoints: [Vec2; 6],
    /// Detector score, 0..1.
    pub score: f32,
}

impl FaceBox {
    /// Centre of the box, in pixels.
    pub fn centre(&self) -> Vec2 {
        self.min + 0.5 * self.size
    }

    /// Bottom-right corner of the box, in pixels.
    pub fn max(&self) -> Vec2 {
        self.min + self.size
    }

    /// Area of the box, in square pixels.
    pub fn area(&self) -> f32 {
        self.size.x.max(0.0) * self.size.y.max(0.0)
    }

    /// One keypoint, in pixels.
    pub fn keypoint(&self, which: FaceKeypoint) -> Vec2 {
        self.keypoints[which as usize]
    }

    /// Whether `point` lies inside the box (edges included).
    pub fn contains(&self, point: Vec2) -> bool {
        point.cmpge(self.min).all() && point.cmple(self.max()).all()
    }

    /// Intersection over union with another box (0 when they do not overlap).
    fn iou(&self, other: &FaceBox) -> f32 {
        let overlap = (self.max().min(other.max()) - self.min.max(other.min)).max(Vec2::ZERO);
        let intersection = overlap.x * overlap.y;
        let union = self.area() + other.area() - intersection;
        if union > 0.0 {
            intersection / union
        } else {
            0.0
        }
    }
}

/// The square the landmark model saw: a rotated square of the image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceCrop {
    /// Centre of the square, in pixels.
    pub centre: Vec2,
    /// Side of the square, in pixels.
    pub side: f32,
    /// Rotation of the square's x axis from the image's x axis, in radians (positive turns x towards +y, i.e.
    /// clockwise on screen): the angle of the line from the subject's right eye to the left eye.
    pub rotation: f32,
}

impl FaceCrop {
    /// The image point (pixels) at `uv` in the crop, where (0, 0) and (1, 1) are the crop's corners.
    pub fn to_image(&self, uv: Vec2) -> Vec2 {
        let (sin, cos) = self.rotation.sin_cos();
        let local = (uv - Vec2::splat(0.5)) * self.side;
        self.centre + Vec2::new(cos * local.x - sin * local.y, sin * local.x + cos * local.y)
    }
}

/// The 468 landmarks of one face.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceLandmarks {
    /// [`LANDMARK_COUNT`] points in MediaPipe's face mesh order (see [`landmark_index`]): x, y in image pixels and
    /// z (depth) in the same pixel scale, smaller is nearer the camera.
    pub points: Vec<Vec3>,
    /// The landmark model's face presence score, 0..1.
    pub presence: f32,
    /// The detection the landmarks were computed from.
    pub face: FaceBox,
    /// The crop the landmark model saw.
    pub crop: FaceCrop,
    /// Width and height of the image, in pixels.
    pub image_size: UVec2,
}

impl FaceLandmarks {
    /// How far the face is turned away from the camera, degrees (0 = frontal, positive = the face turned towards
    /// the image's left, showing more of the subject's left side), from the line between the outer eye corners in
    /// 3D. It reads low for large turns: renders of a head
    /// turned 20°, 40° and 60° gave 18°, 32° and 47° (`tests/construct.rs`).
    pub fn yaw_degrees(&self) -> f32 {
        let line = self.points[landmark_index::LEFT_EYE_OUTER]
            - self.points[landmark_index::RIGHT_EYE_OUTER];
        (-line.z).atan2(line.x).to_degrees()
    }

    /// Whether a head can be built from this face: [`IdentityError::FaceTurned`] when [`yaw_degrees`](Self::yaw_degrees)
    /// is beyond [`MAX_PORTRAIT_YAW_DEG`] either way (the construction mirrors the near side of the face onto the
    /// far side; past that turn most of the far side would be invented).
    pub fn check_pose(&self) -> Result<(), IdentityError> {
        let yaw_deg = self.yaw_degrees();
        if yaw_deg.abs() > MAX_PORTRAIT_YAW_DEG || !yaw_deg.is_finite() {
            return Err(IdentityError::FaceTurned {
                yaw_deg,
                max_deg: MAX_PORTRAIT_YAW_DEG,
            });
        }
        Ok(())
    }
}

/// Finds the faces in `image`, most confident first.
///
/// Any colour type is accepted (grayscale, alpha — composited onto black —, 16-bit, float); images longer than
/// [`MAX_IMAGE_SIDE`] are downscaled first. Never returns an empty list: no face is
/// [`IdentityError::NoFace`], with the best score seen.
pub fn detect_faces(
    registry: &ModelRegistry,
    image: &DynamicImage,
) -> Result<Vec<FaceBox>, IdentityError> {
    let portrait = Portrait::new(image)?;
    let faces = portrait.detect(registry)?;
    Ok(faces
        .into_iter()
        .map(|face| portrait.to_original(&face))
        .collect())
}

/// The 468 landmarks of the face in `face` (from [`detect_faces`] on the same image).
///
/// Returns the landmarks even when the model's [`FaceLandmarks::presence`] is low; [`find_face_landmarks`]
/// rejects those.
pub fn face_landmarks(
    registry: &ModelRegistry,
    image: &DynamicImage,
    face: &FaceBox,
) -> Result<FaceLandmarks, IdentityError> {
    let portrait = Portrait::new(image)?;
    let working_face = portrait.to_working(face);
    let mut landmarks = portrait.landmarks(registry, &working_face)?;
    landmarks.face = *face;
    Ok(landmarks)
}

/// Detects the faces in `image` and returns the landmarks of the largest one (logged when there are several).
///
/// Errors: [`IdentityError::ImageTooSmall`], [`IdentityError::NoFace`], [`IdentityError::FaceNotConfirmed`]
/// when the landmark model's presence score is below [`MIN_FACE_PRESENCE`], [`IdentityError::Model`].
pub fn find_face_landmarks(
    registry: &ModelRegistry,
    image: &DynamicImage,
) -> Result<FaceLandmarks, IdentityError> {
    let portrait = Portrait::new(image)?;
    let faces = portrait.detect(registry)?;
    let Some(largest) = faces
        .iter()
        .max_by(|a, b| a.area().total_cmp(&b.area()))
        .copied()
    else {
        return Err(IdentityError::NoFace {
            best_score: 0.0,
            min_score: MIN_DETECTION_SCORE,
        });
    };
    let face = portrait.to_original(&largest);
    if faces.len() > 1 {
        let others: Vec<String> = faces
            .iter()
            .filter(|other| **other != largest)
            .map(|other| {
                let other = portrait.to_original(other);
                format!(
                    "{:.0}×{:.0} px at ({:.0}, {:.0})",
                    other.size.x, other.size.y, other.min.x, other.min.y
                )
            })
            .collect();
        bevy::log::warn!(
            "talking_head: {} faces in the portrait; using the largest ({:.0}×{:.0} px at ({:.0}, {:.0}), score \
             {:.2}); the others stay still: {}",
            faces.len(),
            face.size.x,
            face.size.y,
            face.min.x,
            face.min.y,
            face.score,
            others.join(", ")
        );
    }
    let mut landmarks = portrait.landmarks(registry, &largest)?;
    landmarks.face = face;
    if landmarks.presence < MIN_FACE_PRESENCE {
        return Err(IdentityError::FaceNotConfirmed {
            presence: landmarks.presence,
            min_presence: MIN_FACE_PRESENCE,
        });
    }
    Ok(landmarks)
}

/// The image as the models see it: RGB8, at most [`MAX_IMAGE_SIDE`] long.
struct Portrait {
    rgb: RgbImage,
    /// Original pixels per working pixel (1 unless the image was downscaled).
    scale: f32,
    original_size: UVec2,
}

/// Refuses images with a side under [`MIN_IMAGE_SIDE`].
pub(crate) fn check_image_size(image: &DynamicImage) -> Result<(), IdentityError> {
    let (width, height) = (image.width(), image.height());
    if width < MIN_IMAGE_SIDE || height < MIN_IMAGE_SIDE {
        return Err(IdentityError::ImageTooSmall {
            width,
            height,
            min_side: MIN_IMAGE_SIDE,
        });
    }
    Ok(())
}

impl Portrait {
    fn new(image: &DynamicImage) -> Result<Self, IdentityError> {
        check_image_size(image)?;
        let (width, height) = (image.width(), image.height());
        let longest = width.max(height);
        let (working, scale) = if longest > MAX_IMAGE_SIDE {
            let factor = MAX_IMAGE_SIDE as f64 / longest as f64;
            let new_width = ((width as f64 * factor).round() as u32).max(1);
            let new_height = ((height as f64 * factor).round() as u32).max(1);
            let small = image.resize_exact(new_width, new_height, FilterType::Triangle);
            let scale = width as f32 / new_width as f32;
            (std::borrow::Cow::Owned(small), scale)
        } else {
            (std::borrow::Cow::Borrowed(image), 1.0)
        };
        let rgb = if working.color().has_alpha() {
            // Transparent pixels carry arbitrary colour: composite onto black.
            let rgba = working.to_rgba8();
            RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
                let [r, g, b, a] = rgba.get_pixel(x, y).0;
                let over_black = |c: u8| ((c as u32 * a as u32 + 127) / 255) as u8;
                image::Rgb([over_black(r), over_black(g), over_black(b)])
            })
        } else {
            working.to_rgb8()
        };
        Ok(Self {
            rgb,
            scale,
            original_size: UVec2::new(width, height),
        })
    }

    fn to_original(&self, face: &FaceBox) -> FaceBox {
        FaceBox {
            min: face.min * self.scale,
            size: face.size * self.scale,
            keypoints: face.keypoints.map(|point| point * self.scale),
            score: face.score,
        }
    }

    fn to_working(&self, face: &FaceBox) -> FaceBox {
        FaceBox {
            min: face.min / self.scale,
            size: face.size / self.scale,
            keypoints: face.keypoints.map(|point| point / self.scale),
            score: face.score,
        }
    }

    /// Faces in working pixels, most confident first; never empty.
    fn detect(&self, registry: &ModelRegistry) -> Result<Vec<FaceBox>, IdentityError> {
        let side = DETECTOR_INPUT_SIDE as usize;
        let (width, height) = (self.rgb.width() as f32, self.rgb.height() as f32);
        // Letterbox: the image's longer side fills the input, centred, black (−1) around.
        let letterbox = FaceCrop {
            centre: Vec2::new(width, height) * 0.5,
            side: width.max(height),
            rotation: 0.0,
        };
        let input = sample_crop(&self.rgb, &letterbox, side, Border::Black, |v| {
            v / 127.5 - 1.0
        });
        let outputs = run_model(
            registry,
            FACE_DETECTOR,
            &input,
            &[1, side, side, 3],
            &["regressors", "classificators"],
        )?;
        let [regressors, scores] = outputs.as_slice() else {
            return Err(model_error(FACE_DETECTOR, "expected two outputs"));
        };
        if regressors.len() != ANCHOR_COUNT * REGRESSORS_PER_ANCHOR || scores.len() != ANCHOR_COUNT
        {
            return Err(model_error(
                FACE_DETECTOR,
                &format!(
                    "expected {ANCHOR_COUNT}×{REGRESSORS_PER_ANCHOR} regressors and {ANCHOR_COUNT} scores, got {} \
                     and {}",
                    regressors.len(),
                    scores.len()
                ),
            ));
        }
        let decoded = decode_detections(regressors, scores, &letterbox);
        let best_score = decoded.best_score;
        let faces = weighted_non_max_suppression(decoded.faces);
        if faces.is_empty() {
            return Err(IdentityError::NoFace {
                best_score,
                min_score: MIN_DETECTION_SCORE,
            });
        }
        Ok(faces)
    }

    /// Landmarks of a face given in working pixels; the result is in original pixels.
    fn landmarks(
        &self,
        registry: &ModelRegistry,
        face: &FaceBox,
    ) -> Result<FaceLandmarks, IdentityError> {
        let crop = landmark_crop(face)?;
        let side = LANDMARK_INPUT_SIDE as usize;
        let input = sample_crop(&self.rgb, &crop, side, Border::Replicate, |v| v / 255.0);
        let outputs = run_model(
            registry,
            FACE_LANDMARKS,
            &input,
            &[1, side, side, 3],
            &["landmarks", "face_flag"],
        )?;
        let [raw, flag] = outputs.as_slice() else {
            return Err(model_error(FACE_LANDMARKS, "expected two outputs"));
        };
        let (Some(&flag), true) = (flag.first(), raw.len() == LANDMARK_COUNT * 3) else {
            return Err(model_error(
                FACE_LANDMARKS,
                &format!(
                    "expected {} landmark values and 1 face flag, got {} and {}",
                    LANDMARK_COUNT * 3,
                    raw.len(),
                    flag.len()
                ),
            ));
        };
        let input_side = LANDMARK_INPUT_SIDE as f32;
        let points = raw
            .chunks_exact(3)
            .map(|p| {
                let xy = crop.to_image(Vec2::new(p[0], p[1]) / input_side) * self.scale;
                Vec3::new(xy.x, xy.y, p[2] / input_side * crop.side * self.scale)
            })
            .collect();
        let original_crop = FaceCrop {
            centre: crop.centre * self.scale,
            side: crop.side * self.scale,
            rotation: crop.rotation,
        };
        Ok(FaceLandmarks {
            points,
            presence: sigmoid(flag),
            face: self.to_original(face),
            crop: original_crop,
            image_size: self.original_size,
        })
    }
}

/// MediaPipe's region of interest for the landmark model: the box's centre, a square of [`CROP_SCALE`] times the
/// box's longer side, rotated so that the line from the right eye to the left eye is horizontal.
fn landmark_crop(face: &FaceBox) -> Result<FaceCrop, IdentityError> {
    let finite = face.min.is_finite()
        && face.size.is_finite()
        && face.keypoints.iter().all(|point| point.is_finite());
    if !finite {
        return Err(IdentityError::InvalidFaceBox(format!(
            "it has non-finite coordinates: {face:?}"
        )));
    }
    let longest = face.size.max_element();
    if longest < 1.0 {
        return Err(IdentityError::InvalidFaceBox(format!(
            "it is {}×{} pixels; it must be at least 1 pixel wide or high",
            face.size.x, face.size.y
        )));
    }
    let eye_line = face.keypoint(FaceKeypoint::LeftEye) - face.keypoint(FaceKeypoint::RightEye);
    let rotation = if eye_line.length_squared() > 0.0 {
        eye_line.y.atan2(eye_line.x)
    } else {
        0.0
    };
    Ok(FaceCrop {
        centre: face.centre(),
        side: longest * CROP_SCALE,
        rotation,
    })
}

/// What lies outside the image when a crop reaches past its edge.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Border {
    /// Black (the detector's letterbox).
    Black,
    /// The nearest edge pixel (the landmark crop).
    Replicate,
}

/// Samples `crop` of `image` into an `out`×`out`×3 row-major (NHWC) array, bilinearly, averaging several
/// sub-samples per output pixel when the crop is much larger than the output; `normalise` maps 0..255 to the
/// model's range.
pub(super) fn sample_crop(
    image: &RgbImage,
    crop: &FaceCrop,
    out: usize,
    border: Border,
    normalise: impl Fn(f32) -> f32,
) -> Vec<f32> {
    let step = crop.side / out as f32;
    let sub = (step.ceil().max(1.0) as usize).min(MAX_SUPERSAMPLING);
    let (sin, cos) = crop.rotation.sin_cos();
    let x_axis = Vec2::new(cos, sin) * step;
    let y_axis = Vec2::new(-sin, cos) * step;
    // Image position of the crop's corner (0, 0).
    let origin = crop.centre - (x_axis + y_axis) * (out as f32 * 0.5);
    let weight = 1.0 / (sub * sub) as f32;
    let mut data = Vec::with_capacity(out * out * 3);
    for row in 0..out {
        for column in 0..out {
            let mut sum = [0.0f32; 3];
            for sy in 0..sub {
                for sx in 0..sub {
                    let u = column as f32 + (sx as f32 + 0.5) / sub as f32;
                    let v = row as f32 + (sy as f32 + 0.5) / sub as f32;
                    let rgb = bilinear(image, origin + x_axis * u + y_axis * v, border);
                    for (total, value) in sum.iter_mut().zip(rgb) {
                        *total += value;
                    }
                }
            }
            data.extend(sum.map(|total| normalise(total * weight)));
        }
    }
    data
}

/// Bilinear sample at a continuous pixel position (pixel centres at +0.5), values 0..255.
fn bilinear(image: &RgbImage, position: Vec2, border: Border) -> [f32; 3] {
    let (width, height) = (image.width() as f32, image.height() as f32);
    if border == Border::Black
        && (position.x < 0.0 || position.y < 0.0 || position.x > width || position.y > height)
    {
        return [0.0; 3];
    }
    let p = position - Vec2::splat(0.5);
    let x0 = p.x.floor();
    let y0 = p.y.floor();
    let (fx, fy) = (p.x - x0, p.y - y0);
    let max_x = image.width() as i64 - 1;
    let max_y = image.height() as i64 - 1;
    let pixel = |x: f32, y: f32| {
        let x = (x as i64).clamp(0, max_x) as u32;
        let y = (y as i64).clamp(0, max_y) as u32;
        image.get_pixel(x, y).0.map(f32::from)
    };
    let (a, b) = (pixel(x0, y0), pixel(x0 + 1.0, y0));
    let (c, d) = (pixel(x0, y0 + 1.0), pixel(x0 + 1.0, y0 + 1.0));
    std::array::from_fn(|i| {
        let top = a[i] + (b[i] - a[i]) * fx;
        let bottom = c[i] + (d[i] - c[i]) * fx;
        top + (bottom - top) * fy
    })
}

/// Detections above [`MIN_DETECTION_SCORE`] in working pixels, and the best score of all anchors.
struct Decoded {
    faces: Vec<FaceBox>,
    best_score: f32,
}

/// Decodes the detector's anchors like MediaPipe's `TensorsToDetectionsCalculator` (box and keypoint offsets
/// relative to fixed-size anchors, scale 128), then maps them from the letterboxed input back to the image.
fn decode_detections(regressors: &[f32], scores: &[f32], letterbox: &FaceCrop) -> Decoded {
    let mut faces = Vec::new();
    let mut best_score = 0.0f32;
    let to_image = |normalised: Vec2| letterbox.to_image(normalised);
    for ((anchor, values), &raw_score) in anchors()
        .zip(regressors.chunks_exact(REGRESSORS_PER_ANCHOR))
        .zip(scores)
    {
        let score = sigmoid(raw_score.clamp(-SCORE_CLIP, SCORE_CLIP));
        if score.is_nan() {
            continue;
        }
        best_score = best_score.max(score);
        if score < MIN_DETECTION_SCORE {
            continue;
        }
        let centre = anchor + Vec2::new(values[0], values[1]) / REGRESSOR_SCALE;
        let size = Vec2::new(values[2], values[3]) / REGRESSOR_SCALE;
        if !(centre.is_finite() && size.is_finite() && size.cmpgt(Vec2::ZERO).all()) {
            continue;
        }
        let keypoints = std::array::from_fn(|k| {
            to_image(anchor + Vec2::new(values[4 + 2 * k], values[5 + 2 * k]) / REGRESSOR_SCALE)
        });
        faces.push(FaceBox {
            min: to_image(centre - 0.5 * size),
            size: size * letterbox.side,
            keypoints,
            score,
        });
    }
    Decoded { faces, best_score }
}

/// Anchor centres in the detector's input, 0..1, in the model's output order (row by row, then anchor in cell).
fn anchors() -> impl Iterator<Item = Vec2> {
    ANCHOR_GRIDS.into_iter().flat_map(|(cells, per_cell)| {
        (0..cells * cells).flat_map(move |cell| {
            let centre =
                Vec2::new((cell % cells) as f32 + 0.5, (cell / cells) as f32 + 0.5) / cells as f32;
            std::iter::repeat_n(centre, per_cell)
        })
    })
}

/// MediaPipe's weighted non-maximum suppression: the best remaining detection absorbs every detection that
/// overlaps it by more than [`SUPPRESSION_IOU`]; its box and keypoints become their score-weighted average and it
/// keeps its own score.
fn weighted_non_max_suppression(mut remaining: Vec<FaceBox>) -> Vec<FaceBox> {
    remaining.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut merged = Vec::new();
    while let Some(best) = remaining.first().copied() {
        let (cluster, rest): (Vec<FaceBox>, Vec<FaceBox>) = remaining
            .into_iter()
            .partition(|other| best.iou(other) > SUPPRESSION_IOU);
        remaining = rest;
        let total: f32 = cluster.iter().map(|face| face.score).sum();
        if cluster.is_empty() || total <= 0.0 {
            // Only when `best` does not overlap itself (a degenerate box): keep it as is.
            merged.push(best);
            remaining.retain(|face| *face != best);
            continue;
        }
        let average = |f: &dyn Fn(&FaceBox) -> Vec2| {
            cluster
                .iter()
                .map(|face| f(face) * face.score)
                .sum::<Vec2>()
                / total
        };
        let min = average(&|face| face.min);
        let max = average(&|face| face.max());
        merged.push(FaceBox {
            min,
            size: max - min,
            keypoints: std::array::from_fn(|k| average(&|face| face.keypoints[k])),
            score: best.score,
        });
    }
    merged
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn model_error(model: &str, reason: &str) -> IdentityError {
    IdentityError::Model(InferenceError::Run {
        model: model.to_owned(),
        reason: reason.to_owned(),
    })
}

/// Runs a model with one f32 input (named by the manifest) and returns the named f32 outputs, flattened.
fn run_model(
    registry: &ModelRegistry,
    model: &str,
    input: &[f32],
    shape: &[usize],
    outputs: &[&str],
) -> Result<Vec<Vec<f32>>, IdentityError> {
    let run_error = |reason: String| {
        IdentityError::Model(InferenceError::Run {
            model: model.to_owned(),
            reason,
        })
    };
    let input_name = match registry.spec(model).map(|spec| spec.inputs.as_slice()) {
        Some([input]) => input.name.clone(),
        Some(inputs) => {
            return Err(run_error(format!(
                "expected one input in manifest.ron, found {}",
                inputs.len()
            )));
        }
        None => {
            return Err(IdentityError::Model(InferenceError::UnknownModel {
                name: model.to_owned(),
                known: registry.names().collect::<Vec<_>>().join(", "),
            }));
        }
    };
    let tensor =
        TensorRef::from_array_view((shape, input)).map_err(|error| run_error(error.to_string()))?;
    let mut session = registry.session(model)?;
    let results = session
        .run(ort::inputs![input_name.as_str() => tensor])
        .map_err(|error| run_error(error.to_string()))?;
    outputs
        .iter()
        .map(|&name| {
            let value = results
                .get(name)
                .ok_or_else(|| run_error(format!("output '{name}' missing from the results")))?;
            let (_, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|error| run_error(format!("output '{name}': {error}")))?;
            Ok(data.to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(min: Vec2, size: Vec2, score: f32) -> FaceBox {
        FaceBox {
            min,
            size,
            keypoints: [min; 6],
            score,
        }
    }

    #[test]
    fn anchors_match_mediapipe_layout() {
        let all: Vec<Vec2> = anchors().collect();
        assert_eq!(all.len(), ANCHOR_COUNT);
        assert_eq!(all[0], Vec2::splat(0.5 / 16.0));
        assert_eq!(all[1], all[0]);
        assert_eq!(all[2], Vec2::new(1.5 / 16.0, 0.5 / 16.0));
        assert_eq!(all[511], Vec2::splat(15.5 / 16.0));
        assert_eq!(all[512], Vec2::splat(0.5 / 8.0));
        assert_eq!(all[517], all[512]);
        assert_eq!(all[518], Vec2::new(1.5 / 8.0, 0.5 / 8.0));
        assert_eq!(all[895], Vec2::splat(7.5 / 8.0));
    }

    #[test]
    fn overlapping_detections_merge_by_score() {
        let faces = vec![
            face(Vec2::new(10.0, 10.0), Vec2::splat(10.0), 0.6),
            face(Vec2::new(0.0, 0.0), Vec2::splat(10.0), 0.9),
            face(Vec2::new(1.0, 1.0), Vec2::splat(10.0), 0.3),
            face(Vec2::new(100.0, 0.0), Vec2::splat(20.0), 0.7),
        ];
        let merged = weighted_non_max_suppression(faces);
        assert_eq!(merged.len(), 3);
        assert_eq!(merged[0].score, 0.9);
        assert!((merged[0].min.x - 0.3 / 1.2).abs() < 1e-5, "{merged:?}");
        assert!((merged[0].size.x - 10.0).abs() < 1e-5);
        assert_eq!(merged[1].score, 0.7);
        assert_eq!(merged[2].score, 0.6);
    }

    #[test]
    fn crop_turns_with_the_eyes() -> Result<(), IdentityError> {
        let mut tilted = face(Vec2::new(0.0, 0.0), Vec2::new(80.0, 100.0), 0.9);
        tilted.keypoints[FaceKeypoint::RightEye as usize] = Vec2::new(20.0, 40.0);
        tilted.keypoints[FaceKeypoint::LeftEye as usize] = Vec2::new(60.0, 80.0);
        let crop = landmark_crop(&tilted)?;
        assert!((crop.rotation - std::f32::consts::FRAC_PI_4).abs() < 1e-6);
        assert_eq!(crop.side, 150.0);
        assert_eq!(crop.centre, Vec2::new(40.0, 50.0));
        // The crop's x axis runs along the eye line.
        let along = crop.to_image(Vec2::new(1.0, 0.5)) - crop.centre;
        assert!((along.normalize() - Vec2::splat(std::f32::consts::FRAC_1_SQRT_2)).length() < 1e-6);
        assert!(matches!(
            landmark_crop(&face(Vec2::ZERO, Vec2::ZERO, 1.0)),
            Err(IdentityError::InvalidFaceBox(_))
        ));
        assert!(matches!(
            landmark_crop(&face(Vec2::splat(f32::NAN), Vec2::ONE, 1.0)),
            Err(IdentityError::InvalidFaceBox(_))
        ));
        Ok(())
    }

    #[test]
    fn unrotated_crop_samples_pixel_centres() {
        let image = RgbImage::from_fn(4, 4, |x, y| image::Rgb([(x * 10) as u8, (y * 10) as u8, 0]));
        let whole = FaceCrop {
            centre: Vec2::splat(2.0),
            side: 4.0,
            rotation: 0.0,
        };
        let data = sample_crop(&image, &whole, 4, Border::Black, |v| v);
        let expected: Vec<f32> = (0..4)
            .flat_map(|y| (0..4).flat_map(move |x| [x as f32 * 10.0, y as f32 * 10.0, 0.0]))
            .collect();
        assert_eq!(data, expected);
        // A letterbox of a wide image is black above and below.
        let wide = RgbImage::from_pixel(8, 4, image::Rgb([200, 200, 200]));
        let letterbox = FaceCrop {
            centre: Vec2::new(4.0, 2.0),
            side: 8.0,
            rotation: 0.0,
        };
        let data = sample_crop(&wide, &letterbox, 8, Border::Black, |v| v);
        assert_eq!(data[0], 0.0);
        assert_eq!(data[(4 * 8 + 4) * 3], 200.0);
        assert_eq!(data[(7 * 8) * 3], 0.0);
    }
}
