//! `portrait_quality`: how well the whole photo talks (`HeadDisplay::Portrait`), as a markdown table, with
//! pictures of the layers and of a turned head with its jaw open.
//!
//! ```sh
//! cargo run --release --example portrait_quality -- assets/portraits/astronaut.png assets/portraits/grace_hopper.jpg
//! ```
//!
//! Per portrait, on CPU reference renders of the whole photo (`identity::portrait_quality`), `--size` pixels long:
//! 1. the frame at rest (no expression, no speech, the head's rest pose) against the photo: PSNR and SSIM over
//!    the whole frame;
//! 2. a clip of `CLIP_FRAMES` frames (the jaw opening and closing, a blink, the head swaying up to 6° yaw, 4°
//!    pitch, 3° roll): the largest frame-to-frame change outside the head and neck;
//! 3. the seam: the frame's mean gradient within 3 px of the head's boundary over the photo's, at rest, with the
//!    jaw at 1, and with the head turned 15°;
//! 4. holes: pixels inside the person (head over body plate) that show the background, with the jaw at 1 and the
//!    head at ±20° yaw, ±10° pitch, ±10° roll, and not at rest (where the person mask alone leaves gaps);
//! 5. cost: the composite's render time over the head alone's (same size, same camera, one thread).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use bevy_talking_head::identity::portrait_quality::{
    HOLE_POSES_DEG, head_and_neck, head_coverage, head_pose as pose, holes_opened, open_portrait,
    portrait_size, render_at_rest, render_portrait, seam_band, seam_gradient_ratio,
};
use bevy_talking_head::identity::quality::{luma, psnr, ssim};
use bevy_talking_head::identity::rig::bases;
use bevy_talking_head::identity::{BuiltHead, ExpressionBase};
use bevy_talking_head::inference::ModelRegistry;
use bevy_talking_head::render::{MarchUniform, portrait_view, render_reference};
use image::{RgbImage, RgbaImage, imageops::FilterType};

const USAGE: &str = "\
usage: portrait_quality [PORTRAIT...] [--size PIXELS] [--out DIR]

  PORTRAIT   portrait images (PNG/JPEG)       default assets/portraits/astronaut.png
  --size     long side of the renders          default: the photo's (at most 1024)
  --out      folder for the pictures           default $CARGO_TARGET_DIR/tmp/portrait_quality";

/// Frames of the measured clip.
const CLIP_FRAMES: usize = 16;
/// Samples along the longest ray through the head's box (the `Medium` preset).
const STEPS: u32 = 96;
/// Pixels on each side of the head's boundary in the seam measure.
const SEAM_REACH: usize = 3;

struct Options {
    portraits: Vec<PathBuf>,
    size: Option<u32>,
    out: PathBuf,
}

fn parse_options(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), PathBuf::from);
    let mut options = Options {
        portraits: Vec::new(),
        size: None,
        out: target.join("tmp").join("portrait_quality"),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => return Err(USAGE.into()),
            "--size" | "--out" => {
                let value = args
                    .next()
                    .ok_or_else(|| format!("{arg} needs a value\n\n{USAGE}"))?;
                if arg == "--size" {
                    options.size = Some(
                        value
                            .parse()
                            .ok()
                            .filter(|s| (32..=1024).contains(s))
                            .ok_or_else(|| {
                                format!("--size expects 32..=1024 pixels, got {value}")
                            })?,
                    );
                } else {
                    options.out = PathBuf::from(value);
                }
            }
            flag if flag.starts_with("--") => {
                return Err(format!("unknown option {flag}\n\n{USAGE}"));
            }
            path => options.portraits.push(PathBuf::from(path)),
        }
    }
    if options.portraits.is_empty() {
        options
            .portraits
            .push(PathBuf::from("assets/portraits/astronaut.png"));
    }
    Ok(options)
}

fn main() -> ExitCode {
    let result = parse_options(std::env::args().skip(1)).and_then(|options| run(&options));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("portrait_quality: {message}");
            ExitCode::FAILURE
        }
    }
}

/// One portrait's row of the table.
struct Row {
    name: String,
    size: (u32, u32),
    psnr_db: f64,
    ssim: f64,
    still_max: u8,
    seam: [f64; 3],
    holes: usize,
    cost_ratio: f64,
}

fn run(options: &Options) -> Result<(), String> {
    let registry = ModelRegistry::load_default().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&options.out)
        .map_err(|e| format!("cannot create {}: {e}", options.out.display()))?;
    let mut rows = Vec::new();
    for path in &options.portraits {
        let (name, portrait, built) = open_portrait(&registry, path)?;
        let row = measure(&name, &portrait, &built, options)?;
        println!(
            "{name}: PSNR {:.2} dB, SSIM {:.4}, still {} /255, seam {:.2} / {:.2} / {:.2}, holes {}, cost ×{:.2}",
            row.psnr_db,
            row.ssim,
            row.still_max,
            row.seam[0],
            row.seam[1],
            row.seam[2],
            row.holes,
            row.cost_ratio
        );
        rows.push(row);
    }
    println!(
        "\n| portrait | size | rest vs photo: PSNR | SSIM | outside head & neck over the clip: max change | \
         seam gradient / photo's: rest, jaw 1, yaw 15° | holes the motion opens (px) | cost vs head alone |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {}×{} | {:.1} dB | {:.3} | {}/255 | {:.2}, {:.2}, {:.2} | {} | {:.2}× |",
            r.name,
            r.size.0,
            r.size.1,
            r.psnr_db,
            r.ssim,
            r.still_max,
            r.seam[0],
            r.seam[1],
            r.seam[2],
            r.holes,
            r.cost_ratio
        );
    }
    println!("\npictures in {}", options.out.display());
    Ok(())
}

fn measure(
    name: &str,
    portrait: &image::DynamicImage,
    built: &BuiltHead,
    options: &Options,
) -> Result<Row, String> {
    let (asset, layers) = (&built.asset, &built.layers);
    let crop = layers.whole();
    let long_side = options.size.unwrap_or(layers.width.max(layers.height));
    let size = portrait_size(crop, long_side);
    let sizes = (long_side, STEPS);
    let photo = portrait
        .resize_exact(size.x, size.y, FilterType::Triangle)
        .to_rgb8();
    let rest_code = vec![0.0; asset.basis_count];
    let still = pose(0.0, 0.0, 0.0);

    // 1. At rest.
    let started = Instant::now();
    let rest = render_at_rest(asset, layers, crop, sizes);
    let composite_secs = started.elapsed().as_secs_f64();
    let rest_rgb = rest.to_rgb();
    let psnr_db = psnr(&rest_rgb, &photo, None).ok_or("PSNR of an empty frame")?;
    let ssim_value = ssim(
        &luma(&rest_rgb),
        &luma(&photo),
        size.x as usize,
        size.y as usize,
    )
    .ok_or("frame smaller than the SSIM window")?;
    save(&options.out, &format!("{name}_rest"), &rest_rgb)?;

    // 5. Cost: the head alone, same camera and size.
    let camera = portrait_view(layers, crop);
    let alone = MarchUniform::new(asset, &camera, size.x, size.y, STEPS);
    let started = Instant::now();
    let _ = render_reference(asset, &rest_code, &alone);
    let alone_secs = started.elapsed().as_secs_f64();

    // 2. A clip: outside the head and neck, nothing moves.
    let (w, h) = (size.x as usize, size.y as usize);
    let moving = head_and_neck(layers, crop, size);
    let mut still_max = 0u8;
    let mut previous: Option<RgbImage> = None;
    for frame in 0..CLIP_FRAMES {
        let t = frame as f32 / CLIP_FRAMES as f32 * std::f32::consts::TAU;
        let mut code = rest_code.clone();
        code[bases::JAW_OPEN] = 0.5 - 0.5 * (2.0 * t).cos();
        let blink = if frame == CLIP_FRAMES / 2 { 1.0 } else { 0.0 };
        code[bases::BLINK_LEFT] = blink;
        code[bases::BLINK_RIGHT] = blink;
        let sway = pose(6.0 * t.sin(), 4.0 * (t * 0.5).sin(), 3.0 * t.cos());
        let image = render_portrait(
            asset,
            layers,
            (&code, ExpressionBase::Photo),
            sway,
            crop,
            sizes,
        )
        .to_rgb();
        if let Some(previous) = &previous {
            for i in (0..w * h).filter(|&i| !moving[i]) {
                let (x, y) = ((i % w) as u32, (i / w) as u32);
                let (a, b) = (image.get_pixel(x, y).0, previous.get_pixel(x, y).0);
                for c in 0..3 {
                    still_max = still_max.max(a[c].abs_diff(b[c]));
                }
            }
        }
        previous = Some(image);
    }

    // 3. The seam at rest, with the jaw open, and turned.
    let mut jaw = rest_code.clone();
    jaw[bases::JAW_OPEN] = 1.0;
    let mut seam = [0.0; 3];
    for (slot, (code, head_pose)) in seam.iter_mut().zip([
        (&rest_code, still),
        (&jaw, still),
        (&rest_code, pose(15.0, 0.0, 0.0)),
    ]) {
        let frame = render_portrait(
            asset,
            layers,
            (code, ExpressionBase::Photo),
            head_pose,
            crop,
            sizes,
        );
        let coverage = head_coverage(asset, layers, code, head_pose, crop, sizes);
        let band = seam_band(&coverage, w, h, SEAM_REACH);
        *slot = seam_gradient_ratio(&frame.to_rgb(), &photo, &band).unwrap_or(f64::NAN);
    }
    let turned = render_portrait(
        asset,
        layers,
        (&jaw, ExpressionBase::Photo),
        pose(15.0, 0.0, 0.0),
        crop,
        sizes,
    );
    save(
        &options.out,
        &format!("{name}_jaw_open_yaw15"),
        &turned.to_rgb(),
    )?;

    // 4. No background through the person.
    let mut holes = 0;
    let poses = HOLE_POSES_DEG.map(|(yaw, pitch, roll)| pose(yaw, pitch, roll));
    let opened_per_pose = holes_opened(asset, layers, (&jaw, &poses), crop, sizes);
    for ((yaw, pitch, roll), (head_pose, opened)) in HOLE_POSES_DEG
        .into_iter()
        .zip(poses.into_iter().zip(opened_per_pose))
    {
        let count = opened.iter().filter(|&&h| h).count();
        if count > 0 {
            println!(
                "{name}: yaw {yaw}°, pitch {pitch}°, roll {roll}°: {count} px of background through the person"
            );
            let frame = render_portrait(
                asset,
                layers,
                (&jaw, ExpressionBase::Photo),
                head_pose,
                crop,
                sizes,
            );
            let mut image = frame.to_rgb();
            for (i, _) in opened.iter().enumerate().filter(|(_, h)| **h) {
                image.put_pixel((i % w) as u32, (i / w) as u32, image::Rgb([0, 255, 0]));
            }
            save(
                &options.out,
                &format!("{name}_holes_{yaw}_{pitch}_{roll}"),
                &image,
            )?;
        }
        holes += count;
    }

    // The background in magenta behind the head turned 20° with the jaw open, for the eye.
    let mut magenta = layers.clone();
    magenta.background = vec![0xffff_00ffu32; layers.pixels()].into();
    let check = render_portrait(
        asset,
        &magenta,
        (&jaw, ExpressionBase::Photo),
        pose(20.0, 0.0, 0.0),
        crop,
        sizes,
    );
    save(
        &options.out,
        &format!("{name}_yaw20_magenta"),
        &check.to_rgb(),
    )?;
    save_layers(name, built, &options.out)?;
    Ok(Row {
        name: name.to_string(),
        size: (size.x, size.y),
        psnr_db,
        ssim: ssim_value,
        still_max,
        seam,
        holes,
        cost_ratio: composite_secs / alone_secs.max(1e-9),
    })
}

fn save(folder: &Path, name: &str, image: &RgbImage) -> Result<(), String> {
    let path = folder.join(format!("{name}.png"));
    image
        .save(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The layers side by side: background plate, body plate (over a checkerboard), the head's matte, the segments.
fn save_layers(name: &str, built: &BuiltHead, folder: &Path) -> Result<(), String> {
    let layers = &built.layers;
    let (w, h) = (layers.width, layers.height);
    let mut strip = RgbaImage::new(w * 4, h);
    let segment_colours = [
        [40, 40, 40],
        [150, 90, 40],
        [240, 200, 160],
        [220, 120, 120],
        [70, 110, 200],
    ];
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) as usize;
            let background = layers.background[i].to_le_bytes();
            let [r, g, b, a] = layers.body[i].to_le_bytes();
            let checker = if (x / 8 + y / 8) % 2 == 0 {
                200.0
            } else {
                150.0
            };
            let over = |c: u8| {
                (f32::from(c) * f32::from(a) / 255.0 + checker * (1.0 - f32::from(a) / 255.0)) as u8
            };
            let matte = (layers.face[i] >> 24) as u8;
            let [sr, sg, sb] = segment_colours[usize::from(layers.segments[i]).min(4)];
            strip.put_pixel(
                x,
                y,
                image::Rgba([background[0], background[1], background[2], 255]),
            );
            strip.put_pixel(w + x, y, image::Rgba([over(r), over(g), over(b), 255]));
            strip.put_pixel(2 * w + x, y, image::Rgba([matte, matte, matte, 255]));
            strip.put_pixel(3 * w + x, y, image::Rgba([sr, sg, sb, 255]));
        }
    }
    let path = folder.join(format!("{name}_layers.png"));
    strip
        .save(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
