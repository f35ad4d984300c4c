//! `emotion_check`: does each emotion read as itself? Renders every emotion the FER2013 classifier knows on each
//! portrait, at rest (no speech, frontal), and prints what the classifier reads, as a markdown table, with a
//! portraits × emotions grid picture.
//!
//! ```sh
//! cargo run --release --example emotion_check -- --grid docs/pictures/emotion_grid.png
//! ```
//!
//! Per portrait and expression base (`--base neutral|photo|both`): for each of the seven FER classes the
//! probability the classifier gives the asked emotion, and the portrait's accuracy (share of the seven whose top
//! class is the one asked for); then the landmark measures of the neutral render (`identity::expression`: smile,
//! frown, lips apart). Renders are CPU reference renders of the whole-photo display (`HeadDisplay::Portrait`),
//! cropped to the head (`emotion_check::face_square`).

use std::path::PathBuf;
use std::process::ExitCode;

use bevy_talking_head::Emotion;
use bevy_talking_head::identity::emotion_check::{
    EmotionClassifier, FER_CLASSES, FER_EMOTIONS, emotion_code, face_square, least_area_ratio,
    open_vowel,
};
use bevy_talking_head::identity::expression::measure_landmarks;
use bevy_talking_head::identity::portrait_quality::{head_pose, open_portrait, render_portrait};
use bevy_talking_head::identity::{ExpressionBase, find_face_landmarks};
use bevy_talking_head::inference::ModelRegistry;
use bevy_talking_head::motion::{EmotionLibrary, FaceCoefficients};
use image::{RgbImage, imageops};

const USAGE: &str = "\
usage: emotion_check [PORTRAIT...] [--base neutral|photo|both] [--size PIXELS] [--grid PNG] [--emotions RON]
                     [--renders FOLDER] [--speaking]

  PORTRAIT   portrait images                   default: the emotion gallery (GALLERY)
  --base     the expression base rendered      default neutral
  --size     side of the renders, pixels       default 224
  --grid     write a portraits × emotions picture here (of the last base rendered)
  --emotions emotions in assets/emotions.ron's format that replace the shipped ones of the same name
  --renders  save each render here as PORTRAIT_BASE_EMOTION.png
  --speaking read each emotion mid-sentence, over an open vowel (identity::emotion_check::open_vowel)";

/// The emotion gallery: a smiling photo, a neutral one, an older man with a moustache, a full beard, a tight crop,
/// an under-exposed photo.
pub const GALLERY: [&str; 6] = [
    "assets/portraits/astronaut.png",
    "assets/portraits/grace_hopper.jpg",
    "assets/portraits/gallery/dahlgren.jpg",
    "assets/portraits/gallery/andersson.jpg",
    "assets/portraits/gallery/astronaut_tight.png",
    "assets/portraits/gallery/hopper_dark.png",
];
/// Samples along the longest ray (the `Medium` preset).
const STEPS: u32 = 96;
/// Side of one picture in the grid, pixels.
const CELL: u32 = 128;

struct Options {
    portraits: Vec<PathBuf>,
    bases: Vec<ExpressionBase>,
    size: u32,
    grid: Option<PathBuf>,
    emotions: Option<PathBuf>,
    renders: Option<PathBuf>,
    speaking: bool,
}

fn parse_options(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        portraits: Vec::new(),
        bases: vec![ExpressionBase::Neutral],
        size: 224,
        grid: None,
        emotions: None,
        renders: None,
        speaking: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n\n{USAGE}"))
        };
        match arg.as_str() {
            "--help" | "-h" => return Err(USAGE.into()),
            "--base" => {
                options.bases = match value()?.as_str() {
                    "neutral" => vec![ExpressionBase::Neutral],
                    "photo" => vec![ExpressionBase::Photo],
                    "both" => vec![ExpressionBase::Photo, ExpressionBase::Neutral],
                    other => {
                        return Err(format!(
                            "--base expects neutral, photo or both, got {other}"
                        ));
                    }
                }
            }
            "--size" => {
                let text = value()?;
                options.size = text
                    .parse()
                    .ok()
                    .filter(|s| (64..=1024).contains(s))
                    .ok_or_else(|| format!("--size expects 64..=1024 pixels, got {text}"))?;
            }
            "--grid" => options.grid = Some(PathBuf::from(value()?)),
            "--emotions" => options.emotions = Some(PathBuf::from(value()?)),
            "--renders" => options.renders = Some(PathBuf::from(value()?)),
            "--speaking" => options.speaking = true,
            flag if flag.starts_with("--") => {
                return Err(format!("unknown option {flag}\n\n{USAGE}"));
            }
            path => options.portraits.push(PathBuf::from(path)),
        }
    }
    if options.portraits.is_empty() {
        options.portraits = GALLERY.iter().map(PathBuf::from).collect();
    }
    Ok(options)
}

fn main() -> ExitCode {
    match parse_options(std::env::args().skip(1)).and_then(|options| run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("emotion_check: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), String> {
    let registry = ModelRegistry::load_default().map_err(|e| e.to_string())?;
    let classifier = EmotionClassifier::load().map_err(|e| e.to_string())?;
    let mut library = EmotionLibrary::default();
    if let Some(path) = &options.emotions {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        library
            .extend_from_ron(&text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!(
        "| portrait | base | {} | accuracy | least area | neutral render: smile L/R, frown L/R, lips apart |",
        FER_CLASSES.join(" | ")
    );
    println!("|---|---|{}---|---|---|", "---|".repeat(FER_CLASSES.len()));
    let speech = if options.speaking {
        open_vowel()
    } else {
        FaceCoefficients::default()
    };
    let mut grid_rows = Vec::new();
    let mut accuracies = Vec::new();
    for path in &options.portraits {
        let (name, _, built) = open_portrait(&registry, path)?;
        let square = face_square(&built.asset, &built.layers);
        for &base in &options.bases {
            let mut cells = Vec::new();
            let mut right = 0;
            let mut neutral_measure = String::from("-");
            let mut least_area = (f32::MAX, Emotion::Neutral);
            for (class, &emotion) in FER_EMOTIONS.iter().enumerate() {
                let code = emotion_code(&library, emotion, 1.0, &speech);
                let ratio = least_area_ratio(&built.asset, &built.asset.basis_weights(&code, base));
                if ratio < least_area.0 {
                    least_area = (ratio, emotion);
                }
                let render = render_portrait(
                    &built.asset,
                    &built.layers,
                    (&code, base),
                    head_pose(0.0, 0.0, 0.0),
                    square,
                    (options.size, STEPS),
                )
                .to_rgb();
                if let Some(folder) = &options.renders {
                    std::fs::create_dir_all(folder)
                        .map_err(|e| format!("{}: {e}", folder.display()))?;
                    let file = folder.join(format!("{name}_{base:?}_{}.png", emotion.name()));
                    render
                        .save(&file)
                        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
                }
                let cell = match classifier.read(&registry, &render) {
                    Ok(reading) => {
                        right += usize::from(reading.top() == class);
                        let top = reading.top();
                        format!(
                            "{:.2}{}",
                            reading.probabilities[class],
                            if top == class {
                                String::new()
                            } else {
                                format!(" ({})", FER_CLASSES[top])
                            }
                        )
                    }
                    Err(error) => format!("no read: {error}"),
                };
                if emotion == Emotion::Neutral {
                    neutral_measure = neutral_landmarks(&registry, &render);
                }
                cells.push(cell);
                if Some(&base) == options.bases.last() {
                    grid_rows.push((grid_rows.len() / FER_EMOTIONS.len(), render));
                }
            }
            let accuracy = right as f32 / FER_EMOTIONS.len() as f32;
            if base == ExpressionBase::Neutral {
                accuracies.push(accuracy);
            }
            println!(
                "| {name} | {base:?} | {} | {accuracy:.2} | {:.2} ({}) | {neutral_measure} |",
                cells.join(" | "),
                least_area.0,
                least_area.1.name()
            );
        }
    }
    if !accuracies.is_empty() {
        println!(
            "\nneutral base: mean accuracy {:.2}, lowest {:.2}",
            accuracies.iter().sum::<f32>() / accuracies.len() as f32,
            accuracies.iter().copied().fold(f32::MAX, f32::min)
        );
    }
    if let Some(grid) = &options.grid {
        save_grid(grid, &grid_rows)?;
        println!("grid: {}", grid.display());
    }
    Ok(())
}

/// The landmark measures of a neutral render, for the table.
fn neutral_landmarks(registry: &ModelRegistry, render: &RgbImage) -> String {
    match find_face_landmarks(registry, &image::DynamicImage::ImageRgb8(render.clone())) {
        Ok(landmarks) => {
            let e = measure_landmarks(&landmarks);
            format!(
                "{:.2}/{:.2}, {:.2}/{:.2}, {:.1} mm",
                e.smile[0],
                e.smile[1],
                e.frown[0],
                e.frown[1],
                e.lips_apart_m * 1000.0
            )
        }
        Err(error) => format!("no landmarks: {error}"),
    }
}

/// Portraits down, emotions across (in `FER_EMOTIONS` order), each render scaled to `CELL` pixels.
fn save_grid(path: &PathBuf, renders: &[(usize, RgbImage)]) -> Result<(), String> {
    let columns = FER_EMOTIONS.len() as u32;
    let rows = renders.iter().map(|(row, _)| row + 1).max().unwrap_or(0) as u32;
    let mut grid = RgbImage::from_pixel(columns * CELL, rows.max(1) * CELL, image::Rgb([255; 3]));
    for (i, (row, render)) in renders.iter().enumerate() {
        let column = i as u32 % columns;
        let cell = imageops::resize(render, CELL, CELL, imageops::FilterType::Triangle);
        imageops::replace(
            &mut grid,
            &cell,
            (column * CELL) as i64,
            (*row as u32 * CELL) as i64,
        );
    }
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    }
    grid.save(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
