//! Built heads on disk, so a portrait is turned into a head once: files keyed by a hash of the portrait's pixels
//! and of the construction code itself (any change to `construct/`, `maps.rs`, `rig.rs`, `landmarks.rs` or the
//! other files `code_hash` reads makes new keys).
//!
//! File layout (little-endian): the magic `THHEAD01`, a u64 length and that many bytes of RON holding the asset's
//! dimensions, decoder, mouth and the photo's expression, then the tri-plane and the motion bases as raw f16 values. The photo's layers go in a
//! second file beside it: the magic `THLAYR01`, a u64 length and that many bytes of RON (sizes, frame, neck,
//! framing), then the face, body and background plates as u32 values and one byte per pixel of steepness, follow
//! weight and segments.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bevy::math::{URect, UVec2, Vec2, Vec3};
use half::f16;
use serde::{Deserialize, Serialize};

use super::PortraitFrame;
use super::expression::PhotoExpression;
use super::head_asset::{BASIS_COMPONENTS, DecoderMlp, Eyes, HeadAsset, Mouth, PLANES};
use super::layers::{Neck, PortraitLayers};

const MAGIC: &[u8; 8] = b"THHEAD01";
const LAYERS_MAGIC: &[u8; 8] = b"THLAYR01";

/// The layers' sizes and small parts.
#[derive(Serialize, Deserialize)]
struct LayersHeader {
    portrait_size: UVec2,
    width: u32,
    height: u32,
    frame_origin: Vec2,
    frame_scale: f32,
    frame_depth_origin: f32,
    neck: Neck,
    head_and_shoulders: URect,
}

/// Everything but the two big arrays.
#[derive(Serialize, Deserialize)]
struct Header {
    half_extent: Vec3,
    channels: usize,
    triplane_resolution: usize,
    basis_count: usize,
    motion_resolution: usize,
    decoder: DecoderMlp,
    #[serde(default)]
    mouth: Mouth,
    #[serde(default)]
    expression: PhotoExpression,
    #[serde(default)]
    eyes: Eyes,
}

/// 64-bit FNV-1a: stable across Rust versions and platforms (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Hash of the code that builds heads: a new version of it never reads an old version's files.
fn code_hash() -> u64 {
    static HASH: OnceLock<u64> = OnceLock::new();
    *HASH.get_or_init(|| {
        let sources = [
            include_str!("construct/mod.rs"),
            include_str!("construct/shape.rs"),
            include_str!("construct/colours.rs"),
            include_str!("construct/encoding.rs"),
            include_str!("maps.rs"),
            include_str!("rig.rs"),
            include_str!("landmarks.rs"),
            include_str!("head_asset.rs"),
            include_str!("layers.rs"),
            include_str!("expression.rs"),
        ];
        sources
            .iter()
            .fold(FNV_OFFSET, |hash, source| fnv1a(source.as_bytes(), hash))
    })
}

/// The cache key of a portrait: its size and RGBA8 pixels, and the construction code.
pub fn portrait_key(width: u32, height: u32, rgba: &[u8]) -> String {
    let hash = fnv1a(
        rgba,
        fnv1a(
            &[width.to_le_bytes(), height.to_le_bytes()].concat(),
            code_hash(),
        ),
    );
    format!("{hash:016x}")
}

/// `${XDG_CACHE_HOME:-$HOME/.cache}/bevy_talking_head/heads`, or `None` without a home folder.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("bevy_talking_head").join("heads"))
}

fn path_for(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}.head"))
}

fn layers_path_for(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}.layers"))
}

/// Writes `bytes` to `path` through a temporary file renamed into place.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temporary = dir.join(format!("{name}.{}.tmp", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// The start of a file: `magic`, the length of the RON `header` and the header, with room for `more` bytes.
fn start_file(magic: &[u8; 8], header: &impl Serialize, more: usize) -> std::io::Result<Vec<u8>> {
    let header = ron::to_string(header).map_err(std::io::Error::other)?;
    let mut bytes = Vec::with_capacity(16 + header.len() + more);
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    Ok(bytes)
}

/// A file's bytes after `magic` and its RON header: `Ok(None)` when there is no file.
fn read_with_header<H: for<'de> Deserialize<'de>>(
    path: &Path,
    magic: &[u8; 8],
    key: &str,
) -> std::io::Result<Option<(H, Vec<u8>)>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let damaged = |what: &str| damaged(key, what);
    let rest = bytes
        .strip_prefix(magic)
        .ok_or_else(|| damaged("not a file of this kind"))?;
    let (length, rest) = rest
        .split_at_checked(8)
        .ok_or_else(|| damaged("truncated"))?;
    let length = u64::from_le_bytes(length.try_into().map_err(|_| damaged("truncated"))?) as usize;
    let (header, rest) = rest
        .split_at_checked(length)
        .ok_or_else(|| damaged("truncated header"))?;
    let header: H = std::str::from_utf8(header)
        .ok()
        .and_then(|text| ron::from_str(text).ok())
        .ok_or_else(|| damaged("unreadable header"))?;
    Ok(Some((header, rest.to_vec())))
}

fn damaged(key: &str, what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("cached head {key}: {what}"),
    )
}

/// Writes a head's `layers` under `key`.
pub fn save_layers(dir: &Path, key: &str, layers: &PortraitLayers) -> std::io::Result<()> {
    let header = LayersHeader {
        portrait_size: layers.portrait_size,
        width: layers.width,
        height: layers.height,
        frame_origin: layers.frame.origin,
        frame_scale: layers.frame.scale,
        frame_depth_origin: layers.frame.depth_origin,
        neck: layers.neck,
        head_and_shoulders: layers.head_and_shoulders,
    };
    let mut bytes = start_file(LAYERS_MAGIC, &header, 15 * layers.pixels())?;
    for plate in [&layers.face, &layers.body, &layers.background] {
        for value in plate.iter() {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
    }
    bytes.extend_from_slice(&layers.steepness);
    bytes.extend_from_slice(&layers.follow);
    bytes.extend_from_slice(&layers.segments);
    write_atomically(dir, &layers_path_for(dir, key), &bytes)
}

/// Reads the layers stored under `key`: `Ok(None)` when there are none, an error when the file is damaged.
pub fn load_layers(dir: &Path, key: &str) -> std::io::Result<Option<PortraitLayers>> {
    let Some((header, rest)) =
        read_with_header::<LayersHeader>(&layers_path_for(dir, key), LAYERS_MAGIC, key)?
    else {
        return Ok(None);
    };
    let n = header.width as usize * header.height as usize;
    if rest.len() != 15 * n {
        return Err(damaged(key, "layers of the wrong size"));
    }
    let plate = |k: usize| -> Arc<[u32]> {
        rest[4 * n * k..4 * n * (k + 1)]
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    let layers = PortraitLayers {
        portrait_size: header.portrait_size,
        width: header.width,
        height: header.height,
        frame: PortraitFrame {
            origin: header.frame_origin,
            scale: header.frame_scale,
            depth_origin: header.frame_depth_origin,
        },
        face: plate(0),
        body: plate(1),
        background: plate(2),
        steepness: Arc::from(&rest[12 * n..13 * n]),
        follow: Arc::from(&rest[13 * n..14 * n]),
        segments: Arc::from(&rest[14 * n..]),
        neck: header.neck,
        head_and_shoulders: header.head_and_shoulders,
    };
    layers.validate().map_err(|e| damaged(key, &e))?;
    Ok(Some(layers))
}

/// Writes `asset` under `key` (atomically: a temporary file renamed into place).
pub fn save(dir: &Path, key: &str, asset: &HeadAsset) -> std::io::Result<()> {
    let header = Header {
        half_extent: asset.half_extent,
        channels: asset.channels,
        triplane_resolution: asset.triplane_resolution,
        basis_count: asset.basis_count,
        motion_resolution: asset.motion_resolution,
        decoder: asset.decoder.clone(),
        mouth: asset.mouth,
        expression: asset.expression.clone(),
        eyes: asset.eyes,
    };
    let values = asset.triplane.len() + asset.motion_bases.len();
    let mut bytes = start_file(MAGIC, &header, 2 * values)?;
    for value in asset.triplane.iter().chain(asset.motion_bases.iter()) {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    write_atomically(dir, &path_for(dir, key), &bytes)
}

/// Reads the asset stored under `key`: `Ok(None)` when there is none, an error when the file is damaged.
pub fn load(dir: &Path, key: &str) -> std::io::Result<Option<HeadAsset>> {
    let Some((header, rest)) = read_with_header::<Header>(&path_for(dir, key), MAGIC, key)? else {
        return Ok(None);
    };
    let damaged = |what: &str| damaged(key, what);
    let r = header.triplane_resolution;
    let m = header.motion_resolution;
    let triplane_len = PLANES * r * r * header.channels;
    let bases_len = header.basis_count * PLANES * m * m * BASIS_COMPONENTS;
    if rest.len() != 2 * (triplane_len + bases_len) {
        return Err(damaged("wrong size"));
    }
    let values: Vec<f16> = rest
        .chunks_exact(2)
        .map(|b| f16::from_le_bytes([b[0], b[1]]))
        .collect();
    let (triplane, bases) = values.split_at(triplane_len);
    let asset = HeadAsset {
        half_extent: header.half_extent,
        channels: header.channels,
        triplane_resolution: r,
        triplane: Arc::from(triplane),
        basis_count: header.basis_count,
        motion_resolution: m,
        motion_bases: Arc::from(bases),
        decoder: header.decoder,
        mouth: header.mouth,
        expression: header.expression,
        eyes: header.eyes,
    };
    asset.validate().map_err(|e| damaged(&e.to_string()))?;
    Ok(Some(asset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::procedural::procedural_head;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("talking_head_cache_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn saved_heads_load_back_identical() {
        let dir = temp_dir("roundtrip");
        let asset = procedural_head(32, 16);
        assert!(load(&dir, "abc").expect("no error").is_none());
        save(&dir, "abc", &asset).expect("save");
        assert_eq!(load(&dir, "abc").expect("load"), Some(asset));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let dir = temp_dir("damaged");
        save(&dir, "k", &procedural_head(16, 8)).expect("save");
        let path = path_for(&dir, "k");
        let bytes = std::fs::read(&path).expect("read");
        for cut in [4, 12, 40, bytes.len() - 3] {
            std::fs::write(&path, &bytes[..cut]).expect("write");
            assert!(load(&dir, "k").is_err(), "cut at {cut}");
        }
        std::fs::write(&path, b"THHEAD01\xff\xff\xff\xff\xff\xff\xff\xff").expect("write");
        assert!(load(&dir, "k").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_change_with_pixels_and_size() {
        let pixels = vec![10u8; 4 * 4 * 4];
        let mut other = pixels.clone();
        other[5] = 11;
        assert_ne!(portrait_key(4, 4, &pixels), portrait_key(4, 4, &other));
        assert_ne!(portrait_key(4, 4, &pixels), portrait_key(8, 2, &pixels));
        assert_eq!(portrait_key(4, 4, &pixels), portrait_key(4, 4, &pixels));
    }
}
