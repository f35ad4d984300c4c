//! `export_arkit_head`: a portrait → a binary glTF head with the 52 ARKit morph targets (see
//! `bevy_talking_head::identity::gltf`), which any glTF avatar pipeline — and our `ArkitFace` — can drive.
//!
//! ```sh
//! cargo run --release --example export_arkit_head -- assets/portraits/astronaut.png \
//!     --out assets/avatars/arkit_head.glb --preview target/tmp/arkit_head
//! ```
//!
//! `--preview DIR` also writes CPU front views of the mesh (rest, jawOpen, mouthSmileLeft, eyeBlinkLeft,
//! browInnerUp = 1) as PNG.

use std::path::PathBuf;
use std::process::ExitCode;

use bevy_talking_head::contract::ARKIT_WEIGHT_COUNT;
use bevy_talking_head::identity::gltf::{
    ArkitHeadMesh, DEFAULT_TEXTURE_SIDE, GltfSettings, TargetSource,
};
use bevy_talking_head::identity::head_from_portrait;
use bevy_talking_head::inference::ModelRegistry;
use bevy_talking_head::motion::{ARKIT_NAMES, arkit_index};

const USAGE: &str = "\
usage: export_arkit_head [PORTRAIT] [--out FILE.glb] [--texture-side PIXELS] [--preview DIR]

  PORTRAIT        portrait image (PNG/JPEG)               default assets/portraits/astronaut.png
  --out           binary glTF to write                    default arkit_head.glb
  --texture-side  longest side of the embedded texture    default 512
  --preview       folder for CPU front views (PNG)        default none";

/// Side of the preview images, pixels.
const PREVIEW_SIDE: u32 = 384;
/// Weights shown one at a time in the previews (besides the rest pose).
const PREVIEW_WEIGHTS: [&str; 4] = ["jawOpen", "mouthSmileLeft", "eyeBlinkLeft", "browInnerUp"];

struct Options {
    portrait: PathBuf,
    out: PathBuf,
    texture_side: u32,
    preview: Option<PathBuf>,
}

fn parse_options(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        portrait: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/portraits/astronaut.png"),
        out: PathBuf::from("arkit_head.glb"),
        texture_side: DEFAULT_TEXTURE_SIDE,
        preview: None,
    };
    let mut args = args.into_iter();
    let mut portrait_given = false;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--out" => options.out = value("--out")?.into(),
            "--preview" => options.preview = Some(value("--preview")?.into()),
            "--texture-side" => {
                let text = value("--texture-side")?;
                options.texture_side =
                    text.parse()
                        .ok()
                        .filter(|side| *side >= 16)
                        .ok_or_else(|| {
                            format!("--texture-side must be a whole number ≥ 16, got {text}")
                        })?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other if other.starts_with('-') => {
                return Err(format!("unknown option {other}\n{USAGE}"));
            }
            path if !portrait_given => {
                options.portrait = path.into();
                portrait_given = true;
            }
            extra => return Err(format!("only one portrait, got also {extra}\n{USAGE}")),
        }
    }
    Ok(options)
}

fn run(options: &Options) -> Result<(), String> {
    let portrait = image::open(&options.portrait)
        .map_err(|e| format!("cannot read {}: {e}", options.portrait.display()))?;
    let registry =
        ModelRegistry::load_default().map_err(|e| format!("cannot load the face models: {e}"))?;
    let head = head_from_portrait(&registry, &portrait)
        .map_err(|e| format!("{}: {e}", options.portrait.display()))?;
    let settings = GltfSettings {
        texture_max_side: options.texture_side,
        ..GltfSettings::default()
    };
    let mesh = ArkitHeadMesh::new(&portrait, &head, settings).map_err(|e| e.to_string())?;
    let glb = mesh.to_glb().map_err(|e| e.to_string())?;
    if let Some(folder) = options.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    }
    std::fs::write(&options.out, &glb)
        .map_err(|e| format!("cannot write {}: {e}", options.out.display()))?;
    let count = |source: TargetSource| mesh.sources.iter().filter(|s| **s == source).count();
    println!(
        "{}: {} vertices, {} triangles, texture {}×{}, {} bytes; targets from bases {}, hand-built {}, zero {}",
        options.out.display(),
        mesh.positions.len(),
        mesh.triangles.len(),
        mesh.texture.width(),
        mesh.texture.height(),
        glb.len(),
        count(TargetSource::Bases),
        count(TargetSource::HandBuilt),
        count(TargetSource::Zero),
    );
    for (name, target) in ARKIT_NAMES.iter().zip(&mesh.targets) {
        let largest = target.iter().map(|d| d.length()).fold(0.0f32, f32::max);
        print!("{name} {:.1} mm; ", largest * 1e3);
    }
    println!();
    println!(
        "vertices left in place per basis (no preimage where the field moves the surface): {:?}",
        mesh.unresolved
    );
    if let Some(folder) = &options.preview {
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        let mut poses = vec![("rest".to_string(), [0.0; ARKIT_WEIGHT_COUNT])];
        for name in PREVIEW_WEIGHTS {
            let mut weights = [0.0; ARKIT_WEIGHT_COUNT];
            if let Some(i) = arkit_index(name) {
                weights[i] = 1.0;
            }
            poses.push((name.to_string(), weights));
        }
        for (name, weights) in poses {
            let path = folder.join(format!("arkit_head_{name}.png"));
            mesh.rasterise(&weights, PREVIEW_SIDE)
                .save(&path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!("preview {}", path.display());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = parse_options(std::env::args().skip(1)).and_then(|options| run(&options));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("export_arkit_head: {message}");
            ExitCode::FAILURE
        }
    }
}
