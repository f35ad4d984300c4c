//! `head_quality`: how good the head built from a portrait is, as markdown tables, and a picture grid.
//!
//! ```sh
//! cargo run --release --example head_quality -- --portrait assets/portraits/astronaut.png --size 256 \
//!     --out target/tmp/head_quality --grid docs/pictures/head_grid.png
//! ```
//!
//! 1. Front view vs the portrait inside the face region (the landmarks' convex hull), one rendered pixel per
//!    portrait pixel, 8-bit sRGB: PSNR and SSIM (`identity::quality::frontal_fidelity`); and how far the
//!    landmarks' depths are from the head's surface (`surface_depth_offsets`).
//! 2. Yaw 0°, ±30°, ±60° (pitch 0, framed as the plugin frames a head): the plugin's face detector and landmark
//!    model on the render (over grey), and the mean distance of their landmarks from the head's own, reprojected
//!    through the render's camera, in % of the reprojected inter-ocular distance: over all landmarks, over those
//!    the head does not hide, and from the head's surface point under each landmark (`landmark_agreement`).
//! 3. Yaw 90° and 180°: holes (empty pixels enclosed by the silhouette) and see-through pixels inside it
//!    (`find_holes`).
//! 4. A grid of views (−60° … 180°, framed closer) with the jaw closed (top row) and open (bottom row), and every
//!    render of 1–3 (PNG, with landmark overlays) in `--out`.
//!
//! All renders come from the CPU reference renderer (`render::render_reference`, the GPU shader's maths).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use bevy::math::{Vec2, Vec3};
use bevy_talking_head::HeadAsset;
use bevy_talking_head::identity::quality::{
    FrontalFidelity, LandmarkAgreement, NEUTRAL_BACKGROUND, composite_over, find_holes,
    frontal_fidelity, landmark_agreement, surface_depth_offsets,
};
use bevy_talking_head::identity::rig::bases;
use bevy_talking_head::identity::{BuiltHead, IdentityError, head_from_portrait};
use bevy_talking_head::inference::ModelRegistry;
use bevy_talking_head::render::{
    HeadCamera, MarchUniform, premultiplied_to_srgba8, render_reference,
};
use image::RgbImage;

const USAGE: &str = "\
usage: head_quality [--portrait IMAGE] [--size PIXELS] [--out DIR] [--grid PNG]

  --portrait  portrait image (PNG/JPEG)                 default assets/portraits/astronaut.png
  --size      width and height of the turned views      default 256
  --out       folder for every render (PNG)             default $CARGO_TARGET_DIR/tmp/head_quality
  --grid      picture grid of the views                 default docs/pictures/head_grid.png";

/// Views whose landmarks are checked, yaw in degrees.
const LANDMARK_YAWS_DEG: [f32; 5] = [0.0, -30.0, 30.0, -60.0, 60.0];
/// Views checked for holes, yaw in degrees.
const HOLE_YAWS_DEG: [f32; 2] = [90.0, 180.0];
/// Columns of the picture grid, yaw in degrees.
const GRID_YAWS_DEG: [f32; 7] = [-60.0, -30.0, 0.0, 30.0, 60.0, 90.0, 180.0];
/// Side of one cell of the picture grid, pixels.
const GRID_CELL: u32 = 128;
/// Samples along the longest ray through the head's box (the `High` quality preset).
const STEPS_PER_RAY: u32 = 160;
/// Camera distance from the head's centre, metres (the plugin's default view).
const VIEW_DISTANCE_M: f32 = 0.6;
/// Goal for the frontal PSNR, dB.
const GOAL_PSNR_DB: f64 = 25.0;
/// Goal for the frontal SSIM.
const GOAL_SSIM: f64 = 0.85;
/// Qiu et al.'s frontal reenactment PSNR, dB.
const PAPER_PSNR_DB: f64 = 23.51;
/// Qiu et al.'s frontal reenactment SSIM.
const PAPER_SSIM: f64 = 0.80;

#[derive(Debug)]
struct Options {
    portrait: PathBuf,
    size: u32,
    out: PathBuf,
    grid: PathBuf,
}

fn parse_options(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), PathBuf::from);
    let mut options = Options {
        portrait: PathBuf::from("assets/portraits/astronaut.png"),
        size: 256,
        out: target.join("tmp/head_quality"),
        grid: PathBuf::from("docs/pictures/head_grid.png"),
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_string());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        match flag.as_str() {
            "--portrait" => options.portrait = PathBuf::from(value),
            "--size" => {
                let size: u32 = value
                    .parse()
                    .map_err(|_| format!("--size expects a number, got '{value}'"))?;
                if !(64..=2048).contains(&size) {
                    return Err(format!("--size must be within 64..2048 pixels, got {size}"));
                }
                options.size = size;
            }
            "--out" => options.out = PathBuf::from(value),
            "--grid" => options.grid = PathBuf::from(value),
            _ => return Err(format!("unknown option {flag}\n\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let result = parse_options(std::env::args().skip(1)).and_then(|options| run(&options));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("head_quality: {message}");
            ExitCode::FAILURE
        }
    }
}

/// How a view is framed.
#[derive(Clone, Copy)]
enum Framing {
    /// As the plugin frames a head: the head box's bounding sphere fills the image.
    Plugin,
    /// Closer: a sphere of the box's largest half-extent fills the image (the picture grid).
    Close,
}

/// A render from `yaw_deg` (pitch 0) at the plugin's default distance: premultiplied linear RGBA, and its camera.
fn render(
    asset: &HeadAsset,
    yaw_deg: f32,
    code: &[f32],
    size: u32,
    framing: Framing,
) -> (Vec<f32>, HeadCamera) {
    let radius = match framing {
        Framing::Plugin => asset.half_extent.length(),
        Framing::Close => asset.half_extent.max_element(),
    };
    let camera = HeadCamera::orbit(yaw_deg.to_radians(), 0.0, VIEW_DISTANCE_M, radius);
    let march = MarchUniform::new(asset, &camera, size, size, STEPS_PER_RAY);
    (render_reference(asset, code, &march), camera)
}

fn save_rgba(path: &std::path::Path, pixels: &[f32], size: u32) -> Result<(), String> {
    let rgba = premultiplied_to_srgba8(pixels);
    image::save_buffer(path, &rgba, size, size, image::ExtendedColorType::Rgba8)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn save_rgb(path: &std::path::Path, image: &RgbImage) -> Result<(), String> {
    image
        .save(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Marks landmarks with 3×3 dots.
fn draw_points(image: &mut RgbImage, points: impl Iterator<Item = Vec2>, colour: [u8; 3]) {
    let (width, height) = image.dimensions();
    for p in points {
        for dy in -1..=1 {
            for dx in -1..=1 {
                let (x, y) = (p.x.floor() as i64 + dx, p.y.floor() as i64 + dy);
                if (0..width as i64).contains(&x) && (0..height as i64).contains(&y) {
                    image.put_pixel(x as u32, y as u32, image::Rgb(colour));
                }
            }
        }
    }
}

fn frontal_table(frontal: &FrontalFidelity) -> String {
    let meets = |ok: bool| if ok { "yes" } else { "no" };
    format!(
        "| Front view vs portrait, face region ({} px, {} not covered) | Measured | Goal | Met | Paper |\n\
         |---|---|---|---|---|\n\
         | PSNR, sRGB (dB) | {:.2} | ≥ {GOAL_PSNR_DB} | {} | {PAPER_PSNR_DB:.2} |\n\
         | SSIM, luma, windows within the face region | {:.3} | ≥ {GOAL_SSIM} | {} | {PAPER_SSIM:.2} |\n\
         | SSIM, luma, whole windows (they also see the grey background past the chin) | {:.3} | ≥ {GOAL_SSIM} | {} | |\n",
        frontal.pixels,
        frontal.uncovered,
        frontal.psnr_db,
        meets(frontal.psnr_db >= GOAL_PSNR_DB),
        frontal.ssim,
        meets(frontal.ssim >= GOAL_SSIM),
        frontal.ssim_whole_windows,
        meets(frontal.ssim_whole_windows >= GOAL_SSIM),
    )
}

fn depth_table(offsets: &[Option<f32>]) -> String {
    let mut millimetres: Vec<f32> = offsets.iter().flatten().map(|d| d.abs() * 1e3).collect();
    millimetres.sort_by(f32::total_cmp);
    let at = |q: f32| {
        let last = millimetres.len().saturating_sub(1);
        millimetres
            .get((q * last as f32).round() as usize)
            .copied()
            .unwrap_or(f32::NAN)
    };
    format!(
        "| Landmark depth − head surface depth (absolute) | Median (mm) | 90th percentile (mm) | Largest (mm) | Not on the head |\n\
         |---|---|---|---|---|\n\
         | {} landmarks | {:.1} | {:.1} | {:.1} | {} |\n",
        offsets.len(),
        at(0.5),
        at(0.9),
        at(1.0),
        offsets.iter().filter(|d| d.is_none()).count()
    )
}

fn landmark_row(yaw: f32, agreement: &LandmarkAgreement) -> String {
    let expected = &agreement.expected;
    let visible = expected.visible.iter().filter(|&&v| v).count();
    let dash = || "–".to_string();
    let (found, score, presence, estimated_yaw) = match &agreement.detected {
        Ok(found) => (
            "yes".to_string(),
            format!("{:.2}", found.face.score),
            format!("{:.2}", found.presence),
            format!("{:+.0}°", found.yaw_degrees()),
        ),
        Err(IdentityError::NoFace { best_score, .. }) => (
            "no (no detection)".to_string(),
            format!("{best_score:.2}"),
            dash(),
            dash(),
        ),
        Err(IdentityError::FaceNotConfirmed { presence, .. }) => (
            "no (not confirmed)".to_string(),
            dash(),
            format!("{presence:.2}"),
            dash(),
        ),
        Err(error) => (format!("error: {error}"), dash(), dash(), dash()),
    };
    let errors = agreement.error.map_or([dash(), dash(), dash()], |e| {
        [e.all_percent, e.visible_percent, e.surface_percent].map(|v| format!("{v:.1}"))
    });
    format!(
        "| {yaw:+.0}° | {found} | {score} | {presence} | {estimated_yaw} | {} | {} | {} | {visible}/{} | {:.1} |",
        errors[0],
        errors[1],
        errors[2],
        expected.visible.len(),
        expected.inter_ocular_px
    )
}

fn run(options: &Options) -> Result<(), String> {
    let start = Instant::now();
    std::fs::create_dir_all(&options.out)
        .map_err(|e| format!("cannot create {}: {e}", options.out.display()))?;
    let registry = ModelRegistry::load_default().map_err(|e| e.to_string())?;
    let portrait = image::open(&options.portrait).map_err(|e| {
        format!(
            "cannot read the portrait {}: {e}",
            options.portrait.display()
        )
    })?;
    let BuiltHead {
        asset,
        frame,
        landmarks,
        ..
    } = head_from_portrait(&registry, &portrait).map_err(|e| e.to_string())?;
    let head_landmarks: Vec<Vec3> = landmarks.points.iter().map(|p| frame.to_head(*p)).collect();
    let built = start.elapsed();

    // 1. Front view vs portrait.
    let frontal = frontal_fidelity(&asset, &frame, &portrait, &landmarks, STEPS_PER_RAY)
        .ok_or("the face region of the portrait is empty")?;
    let (w, h) = frontal.render.dimensions();
    let mut side_by_side = RgbImage::new(w * 2, h);
    image::imageops::replace(&mut side_by_side, &frontal.portrait, 0, 0);
    image::imageops::replace(&mut side_by_side, &frontal.render, i64::from(w), 0);
    save_rgb(&options.out.join("front_vs_portrait.png"), &side_by_side)?;

    // How closely the head's shape follows the landmarks' depths.
    let depth_table = depth_table(&surface_depth_offsets(&asset, &head_landmarks));

    // 2. Landmarks from turned views.
    let size = options.size;
    let mut landmark_rows = Vec::new();
    for yaw in LANDMARK_YAWS_DEG {
        let (pixels, camera) = render(&asset, yaw, &[], size, Framing::Plugin);
        save_rgba(
            &options.out.join(format!("yaw{yaw:+.0}.png")),
            &pixels,
            size,
        )?;
        let view = composite_over(&pixels, size, size, NEUTRAL_BACKGROUND);
        let agreement = landmark_agreement(&registry, &asset, &head_landmarks, &camera, &view);
        // Blue: the head's visible landmarks; green: where the head draws them (on its surface); red: what the
        // face models found.
        let mut marked = view.clone();
        let expected = &agreement.expected;
        for (points, colour) in [
            (&expected.points, [40, 80, 255]),
            (&expected.surface, [0, 220, 0]),
        ] {
            let visible = points.iter().zip(&expected.visible).filter(|(_, v)| **v);
            draw_points(&mut marked, visible.filter_map(|(p, _)| *p), colour);
        }
        if let Ok(found) = &agreement.detected {
            draw_points(
                &mut marked,
                found.points.iter().map(|p| p.truncate()),
                [230, 0, 0],
            );
        }
        save_rgb(
            &options.out.join(format!("yaw{yaw:+.0}_landmarks.png")),
            &marked,
        )?;
        landmark_rows.push(landmark_row(yaw, &agreement));
    }

    // 3. Holes from the side and the back.
    let mut hole_rows = Vec::new();
    for yaw in HOLE_YAWS_DEG {
        let (pixels, _) = render(&asset, yaw, &[], size, Framing::Plugin);
        save_rgba(
            &options.out.join(format!("yaw{yaw:+.0}.png")),
            &pixels,
            size,
        )?;
        let alpha: Vec<f32> = pixels.chunks_exact(4).map(|p| p[3]).collect();
        let holes = find_holes(&alpha, size as usize, size as usize);
        hole_rows.push(format!(
            "| {yaw:+.0}° | {} | {} | {} |",
            holes.silhouette, holes.holes, holes.translucent
        ));
    }

    // 4. Picture grid: jaw closed (top row) and open (bottom row).
    let mut jaw_open = vec![0.0; asset.basis_count];
    if let Some(weight) = jaw_open.get_mut(bases::JAW_OPEN) {
        *weight = 1.0;
    }
    let columns = GRID_YAWS_DEG.len() as u32;
    let mut grid = RgbImage::new(columns * GRID_CELL, 2 * GRID_CELL);
    for (row, code) in [&[][..], &jaw_open[..]].into_iter().enumerate() {
        for (column, yaw) in GRID_YAWS_DEG.into_iter().enumerate() {
            let (pixels, _) = render(&asset, yaw, code, GRID_CELL, Framing::Close);
            let cell = composite_over(&pixels, GRID_CELL, GRID_CELL, NEUTRAL_BACKGROUND);
            let (x, y) = (column as u32 * GRID_CELL, row as u32 * GRID_CELL);
            image::imageops::replace(&mut grid, &cell, i64::from(x), i64::from(y));
        }
    }
    if let Some(folder) = options.grid.parent().filter(|f| !f.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    }
    save_rgb(&options.grid, &grid)?;

    println!(
        "## Head quality of {} ({}×{}): CPU reference renderer, {STEPS_PER_RAY} samples per ray\n",
        options.portrait.display(),
        portrait.width(),
        portrait.height()
    );
    println!("{}", frontal_table(&frontal));
    println!("{depth_table}");
    println!(
        "Turned views, {size}×{size} px, camera {VIEW_DISTANCE_M} m from the head's centre, over grey. Landmark error: \
         mean distance between the face models' landmarks and the head's own landmarks reprojected, in % of the \
         reprojected inter-ocular distance (IOD, which shrinks as the head turns); visible: landmarks whose point on \
         the head's surface the head does not hide; on surface: measured from that point (where the head draws the \
         feature) instead of the landmark's own depth; estimated yaw: the turn the landmark model sees \
         (`FaceLandmarks::yaw_degrees`, which reads low for large turns).\n"
    );
    println!(
        "| Yaw | Face found | Detector score | Presence | Estimated yaw | Error, all (% IOD) | \
         Error, visible (% IOD) | Error, visible, on surface (% IOD) | Visible | IOD (px) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    landmark_rows.iter().for_each(|row| println!("{row}"));
    println!(
        "\nSide and back, {size}×{size} px: holes are empty pixels (alpha < 0.5) the silhouette encloses; see-through: \
         alpha 0.5..0.95 more than 2 px inside the silhouette's rim.\n"
    );
    println!("| Yaw | Silhouette (px) | Holes (px) | See-through (px) |");
    println!("|---|---|---|---|");
    hole_rows.iter().for_each(|row| println!("{row}"));
    println!(
        "\nBuilt the head in {:.1} s, measured and rendered everything in {:.1} s. Grid: {}; renders: {}",
        built.as_secs_f64(),
        (start.elapsed() - built).as_secs_f64(),
        options.grid.display(),
        options.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_options(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_and_defaults() {
        let o = parse(&[]).expect("defaults");
        assert_eq!(o.size, 256);
        assert_eq!(o.grid, PathBuf::from("docs/pictures/head_grid.png"));
        let o = parse(&["--size", "128", "--out", "x", "--portrait", "p.png"]).expect("flags");
        assert_eq!(
            (o.size, o.out, o.portrait),
            (128, PathBuf::from("x"), PathBuf::from("p.png"))
        );
        assert!(
            parse(&["--size", "big"])
                .unwrap_err()
                .contains("expects a number")
        );
        assert!(parse(&["--size", "8"]).unwrap_err().contains("64..2048"));
        assert!(parse(&["--out"]).unwrap_err().contains("needs a value"));
        assert!(
            parse(&["--nope", "1"])
                .unwrap_err()
                .contains("unknown option")
        );
    }
}
