//! The shipped glTF head with the 52 ARKit morph targets (`identity::gltf`, `assets/avatars/arkit_head.glb`):
//! valid binary glTF, the same mesh a fresh export makes, targets that move the right parts of the face, loaded by
//! Bevy's glTF loader and driven by `ArkitFace`; bad input gives clear errors.

mod common;

use std::sync::{Arc, Mutex};

use bevy::mesh::morph::{MeshMorphWeights, MorphWeights};
use bevy::prelude::*;
use bevy::render::gpu_readback::{Readback, ReadbackComplete};
use bevy_talking_head::identity::gltf::{
    ArkitHeadMesh, GltfError, GltfSettings, TargetSource, arkit_head_glb,
    arkit_head_glb_from_portrait,
};
use bevy_talking_head::identity::landmarks::landmark_index as lm;
use bevy_talking_head::identity::triangulation::FaceMesh;
use bevy_talking_head::identity::{BuiltHead, IdentityError, head_from_portrait};
use bevy_talking_head::inference::ModelRegistry;
use bevy_talking_head::motion::{ARKIT_NAMES, arkit_index};
use bevy_talking_head::prelude::*;
use common::{headless_app, run_until};
use serde_json::Value;

const SHIPPED: &str = "assets/avatars/arkit_head.glb";
const LANDMARKS: usize = 468;

fn manifest_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn shipped_bytes() -> Vec<u8> {
    std::fs::read(manifest_path(SHIPPED))
        .expect("the shipped glTF head (tools/export_arkit_head.sh)")
}

/// A parsed `.glb`: its JSON document and binary chunk, after the container's own checks.
struct Glb {
    json: Value,
    bin: Vec<u8>,
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, String> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| format!("file ends before byte {}", at + 4))
}

fn parse_glb(bytes: &[u8]) -> Result<Glb, String> {
    if bytes.get(..4) != Some(b"glTF") {
        return Err("no glTF magic".into());
    }
    if u32_at(bytes, 4)? != 2 {
        return Err("not glTF version 2".into());
    }
    if u32_at(bytes, 8)? as usize != bytes.len() {
        return Err(format!(
            "header length {} ≠ file length {}",
            u32_at(bytes, 8)?,
            bytes.len()
        ));
    }
    let json_len = u32_at(bytes, 12)? as usize;
    if bytes.get(16..20) != Some(b"JSON") || !json_len.is_multiple_of(4) {
        return Err("first chunk is not a 4-byte aligned JSON chunk".into());
    }
    let json_end = 20 + json_len;
    let json: Value = serde_json::from_slice(
        bytes
            .get(20..json_end)
            .ok_or("JSON chunk runs past the end")?,
    )
    .map_err(|e| format!("JSON chunk: {e}"))?;
    let bin_len = u32_at(bytes, json_end)? as usize;
    if bytes.get(json_end + 4..json_end + 8) != Some(b"BIN\0") || !bin_len.is_multiple_of(4) {
        return Err("second chunk is not a 4-byte aligned BIN chunk".into());
    }
    if json_end + 8 + bin_len != bytes.len() {
        return Err("BIN chunk length does not end the file".into());
    }
    let bin = bytes[json_end + 8..].to_vec();
    if json["buffers"][0]["byteLength"].as_u64() != Some(bin_len as u64) {
        return Err("buffer 0 byteLength ≠ BIN chunk length".into());
    }
    Ok(Glb { json, bin })
}

impl Glb {
    fn view_bytes(&self, view: usize) -> &[u8] {
        let v = &self.json["bufferViews"][view];
        let offset = v["byteOffset"].as_u64().unwrap_or(0) as usize;
        let length = v["byteLength"].as_u64().expect("byteLength") as usize;
        assert!(
            offset + length <= self.bin.len(),
            "buffer view {view} runs past the BIN chunk"
        );
        &self.bin[offset..offset + length]
    }

    /// The float components of a FLOAT accessor, checked against its count and type.
    fn floats(&self, accessor: usize) -> Vec<f32> {
        let a = &self.json["accessors"][accessor];
        assert_eq!(a["componentType"], 5126, "accessor {accessor} is not FLOAT");
        let width = match a["type"].as_str() {
            Some("VEC3") => 3,
            Some("VEC2") => 2,
            other => panic!("accessor {accessor} has type {other:?}"),
        };
        let bytes = self.view_bytes(a["bufferView"].as_u64().expect("bufferView") as usize);
        let count = a["count"].as_u64().expect("count") as usize;
        assert_eq!(
            bytes.len(),
            count * width * 4,
            "accessor {accessor}: view length ≠ count × size"
        );
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    fn vec3s(&self, accessor: usize) -> Vec<Vec3> {
        self.floats(accessor)
            .chunks_exact(3)
            .map(|c| Vec3::new(c[0], c[1], c[2]))
            .collect()
    }

    fn primitive(&self) -> &Value {
        &self.json["meshes"][0]["primitives"][0]
    }

    fn positions(&self) -> Vec<Vec3> {
        self.vec3s(
            self.primitive()["attributes"]["POSITION"]
                .as_u64()
                .expect("POSITION") as usize,
        )
    }

    fn target(&self, name: &str) -> Vec<Vec3> {
        let i = arkit_index(name).expect("an ARKit name");
        self.vec3s(
            self.primitive()["targets"][i]["POSITION"]
                .as_u64()
                .expect("target POSITION") as usize,
        )
    }
}

#[test]
fn shipped_glb_is_valid_gltf_with_the_52_arkit_targets_in_order() {
    let bytes = shipped_bytes();
    assert!(
        bytes.len() < 1_500_000,
        "the shipped head is {} bytes",
        bytes.len()
    );
    let glb = parse_glb(&bytes).expect("a valid .glb container");
    let json = &glb.json;
    assert_eq!(json["asset"]["version"], "2.0");
    // The face (with the targets) and the shell behind it (skull and hair, colours per vertex, no targets).
    assert_eq!(json["meshes"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["scenes"][0]["nodes"], serde_json::json!([0, 1]));
    let shell = &json["meshes"][1]["primitives"][0];
    assert!(shell["targets"].is_null(), "the shell has no targets");
    for attribute in ["POSITION", "NORMAL", "COLOR_0"] {
        let accessor = shell["attributes"][attribute].as_u64().expect(attribute) as usize;
        assert!(
            glb.floats(accessor).iter().all(|v| v.is_finite()),
            "{attribute}"
        );
    }
    let mesh = &json["meshes"][0];
    let primitive = glb.primitive();
    assert_eq!(primitive["mode"], 4, "triangles");

    // Every accessor: within its view, min/max (where given) equal to the data's.
    for (i, a) in json["accessors"]
        .as_array()
        .expect("accessors")
        .iter()
        .enumerate()
    {
        if a["componentType"] == 5126 {
            let values = glb.floats(i);
            if let (Some(min), Some(max)) = (a["min"].as_array(), a["max"].as_array()) {
                let width = min.len();
                for c in 0..width {
                    let column = values.iter().skip(c).step_by(width);
                    let lo = column.clone().copied().fold(f32::MAX, f32::min);
                    let hi = column.copied().fold(f32::MIN, f32::max);
                    assert_eq!(
                        min[c].as_f64().map(|v| v as f32),
                        Some(lo),
                        "accessor {i} min[{c}]"
                    );
                    assert_eq!(
                        max[c].as_f64().map(|v| v as f32),
                        Some(hi),
                        "accessor {i} max[{c}]"
                    );
                }
            }
        }
    }
    // Vertex attributes: one per landmark, in metres round the head's centre, facing +Z.
    let attributes = &primitive["attributes"];
    let count = |name: &str| {
        json["accessors"][attributes[name].as_u64().expect(name) as usize]["count"].as_u64()
    };
    for name in ["POSITION", "NORMAL", "TEXCOORD_0"] {
        assert_eq!(count(name), Some(LANDMARKS as u64), "{name}");
    }
    let positions = glb.positions();
    let size = positions.iter().fold(Vec3::ZERO, |m, p| m.max(p.abs()));
    assert!(
        size.max_element() < 0.2 && size.x > 0.04,
        "face extent {size} m"
    );
    let nose = positions[lm::NOSE_TIP];
    let forehead = positions[lm::FOREHEAD];
    let chin = positions[lm::CHIN];
    assert!(forehead.y > nose.y && nose.y > chin.y, "+Y is up");
    assert!(
        nose.z > positions[lm::LEFT_EYE_OUTER].z,
        "the nose points to +Z"
    );
    let normals = glb.vec3s(attributes["NORMAL"].as_u64().expect("NORMAL") as usize);
    assert!(
        normals[lm::NOSE_TIP].z > 0.5 && normals.iter().all(|n| (n.length() - 1.0).abs() < 1e-3)
    );
    let uvs = glb.floats(attributes["TEXCOORD_0"].as_u64().expect("UV") as usize);
    assert!(uvs.iter().all(|v| (0.0..=1.0).contains(v)));

    // Indices: counter-clockwise from the front, in range.
    let indices_accessor =
        &json["accessors"][primitive["indices"].as_u64().expect("indices") as usize];
    assert_eq!(indices_accessor["componentType"], 5125);
    let index_bytes =
        glb.view_bytes(indices_accessor["bufferView"].as_u64().expect("view") as usize);
    let indices: Vec<usize> = index_bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    assert_eq!(
        indices.len() as u64,
        indices_accessor["count"].as_u64().expect("count")
    );
    assert!(indices.len() > 2 * LANDMARKS && indices.len().is_multiple_of(3));
    assert!(indices.iter().all(|i| *i < LANDMARKS));
    for t in indices.chunks_exact(3) {
        let [a, b, c] = [t[0], t[1], t[2]].map(|i| positions[i]);
        assert!(
            (b - a).cross(c - a).z > 0.0,
            "triangle {t:?} faces away from +Z"
        );
    }

    // 52 targets named in ARKit order, each one displacement per vertex.
    let names: Vec<&str> = mesh["extras"]["targetNames"]
        .as_array()
        .expect("targetNames")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(names, ARKIT_NAMES.to_vec());
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 52);
    assert_eq!(primitive["targets"].as_array().map(Vec::len), Some(52));
    assert_eq!(mesh["weights"].as_array().map(Vec::len), Some(52));
    for name in ARKIT_NAMES {
        assert_eq!(glb.target(name).len(), LANDMARKS, "{name}");
    }

    // The texture: an embedded PNG.
    let image = &json["images"][0];
    assert_eq!(image["mimeType"], "image/png");
    let png = glb.view_bytes(image["bufferView"].as_u64().expect("image view") as usize);
    let texture = image::load_from_memory(png).expect("the texture decodes");
    assert!(texture.width() >= 32 && texture.width() <= 512 && texture.height() <= 512);
    assert_eq!(
        json["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"]["index"],
        0
    );
}

#[test]
fn shipped_targets_move_the_right_parts_of_the_face() {
    let glb = parse_glb(&shipped_bytes()).expect("valid .glb");
    let jaw = glb.target("jawOpen");
    for (what, i) in [
        ("chin", lm::CHIN),
        ("lower lip", lm::LOWER_LIP_OUTER),
        ("inner lower lip", lm::LOWER_LIP),
    ] {
        assert!(
            jaw[i].y < -0.006,
            "jawOpen moves the {what} {:.1} mm",
            jaw[i].y * 1e3
        );
    }
    for (what, i) in [
        ("forehead", lm::FOREHEAD),
        ("nose tip", lm::NOSE_TIP),
        ("left eye", lm::LEFT_EYE_OUTER),
    ] {
        assert!(
            jaw[i].length() < 1e-4,
            "jawOpen moves the {what} by {:.2} mm",
            jaw[i].length() * 1e3
        );
    }
    assert!(
        jaw[lm::UPPER_LIP_OUTER].length() < 0.001,
        "jawOpen moves the upper lip {}",
        jaw[lm::UPPER_LIP_OUTER]
    );
    let close = glb.target("mouthClose");
    assert!(
        close
            .iter()
            .zip(&jaw)
            .all(|(c, j)| (*c + *j).length() < 1e-6),
        "mouthClose = −jawOpen"
    );

    let smile = glb.target("mouthSmileLeft");
    let corner = smile[lm::MOUTH_LEFT];
    assert!(
        corner.y > 0.002 && corner.x > 0.001,
        "the left corner goes up and out: {corner}"
    );
    assert!(
        smile[lm::MOUTH_RIGHT].length() < 1e-4,
        "the right corner stays: {}",
        smile[lm::MOUTH_RIGHT]
    );

    let positions = glb.positions();
    let blink = glb.target("eyeBlinkLeft");
    // Landmark 386 is the middle of the left upper lid, 374 the middle of the left lower lid.
    let closed = positions[386] + blink[386];
    assert!(
        (closed.y - positions[374].y).abs() < 5e-4,
        "the left upper lid reaches the lower lid"
    );
    assert!(blink[159].length() < 1e-6, "the right eye stays open");

    let brows = glb.target("browInnerUp");
    assert!(brows[lm::LEFT_BROW_INNER].y > 0.002 && brows[lm::RIGHT_BROW_INNER].y > 0.002);
    for name in ["eyeLookInLeft", "eyeLookOutRight", "tongueOut"] {
        assert!(
            glb.target(name).iter().all(|d| *d == Vec3::ZERO),
            "{name} is a zero target"
        );
    }
}

fn astronaut_head(registry: &ModelRegistry) -> (image::DynamicImage, BuiltHead) {
    let portrait = image::open(manifest_path("assets/portraits/astronaut.png")).expect("portrait");
    let head = head_from_portrait(registry, &portrait).expect("a head from the astronaut");
    (portrait, head)
}

#[test]
fn a_fresh_export_matches_the_shipped_head_and_bad_input_is_a_clear_error() {
    let registry = ModelRegistry::load_default().expect("models");
    let (portrait, head) = astronaut_head(&registry);
    let mesh = ArkitHeadMesh::new(&portrait, &head, GltfSettings::default()).expect("mesh");
    let shipped = parse_glb(&shipped_bytes()).expect("valid .glb");
    // Largest distance between matching points, metres.
    let worst = |a: &[Vec3], b: &[Vec3]| {
        assert_eq!(a.len(), b.len(), "point counts");
        a.iter()
            .zip(b)
            .map(|(a, b)| a.distance(*b))
            .fold(0.0, f32::max)
    };
    let off = worst(&mesh.positions, &shipped.positions());
    assert!(
        off < 0.001,
        "the shipped head is {:.2} mm off a fresh export: rerun tools/export_arkit_head.sh",
        off * 1e3
    );
    let jaw = arkit_index("jawOpen").expect("jawOpen");
    let off = worst(&mesh.targets[jaw], &shipped.target("jawOpen"));
    assert!(
        off < 0.001,
        "jawOpen is {:.2} mm off a fresh export",
        off * 1e3
    );
    let shipped_shell = shipped.vec3s(
        shipped.json["meshes"][1]["primitives"][0]["attributes"]["POSITION"]
            .as_u64()
            .expect("the shell's POSITION") as usize,
    );
    let off = worst(&mesh.shell.positions, &shipped_shell);
    assert!(off < 0.001, "the shipped shell is {:.2} mm off", off * 1e3);
    for (name, source) in ARKIT_NAMES.iter().zip(mesh.sources) {
        let moves = mesh.targets[arkit_index(name).expect("name")]
            .iter()
            .any(|d| *d != Vec3::ZERO);
        assert_eq!(moves, source != TargetSource::Zero, "{name} ({source:?})");
    }
    let posed = mesh.rasterise(&[0.0; 52], 64);
    assert!(
        posed.pixels().filter(|p| p.0[3] == 255).count() > 64 * 64 / 3,
        "the face fills the preview"
    );

    // The shell: a closed surface (every edge between exactly two triangles, in opposite directions) round the
    // whole head, behind the face where the face is, hair-coloured above it.
    let shell = &mesh.shell;
    assert!(
        shell.triangles.len() > 1000,
        "{} triangles",
        shell.triangles.len()
    );
    let mut edges = std::collections::HashMap::<(u32, u32), i32>::new();
    for t in &shell.triangles {
        for k in 0..3 {
            let (a, b) = (t[k], t[(k + 1) % 3]);
            *edges.entry((a.min(b), a.max(b))).or_default() += if a < b { 1 } else { -1 };
        }
    }
    let mut counts = std::collections::HashMap::<(u32, u32), usize>::new();
    for t in &shell.triangles {
        for k in 0..3 {
            let (a, b) = (t[k], t[(k + 1) % 3]);
            *counts.entry((a.min(b), a.max(b))).or_default() += 1;
        }
    }
    assert!(
        counts.values().all(|c| *c == 2) && edges.values().all(|d| *d == 0),
        "the shell is not closed and consistently wound"
    );
    let (lo, hi) = shell.positions.iter().fold(
        (Vec3::splat(f32::MAX), Vec3::splat(f32::MIN)),
        |(lo, hi), p| (lo.min(*p), hi.max(*p)),
    );
    let (face_lo, face_hi) = mesh.positions.iter().fold(
        (Vec3::splat(f32::MAX), Vec3::splat(f32::MIN)),
        |(lo, hi), p| (lo.min(*p), hi.max(*p)),
    );
    println!("shell {lo} .. {hi}, face {face_lo} .. {face_hi}");
    assert!(
        hi.y > face_hi.y + 0.03 && lo.z < face_lo.z - 0.08,
        "the shell does not reach over the crown and round the back"
    );
    // Where the face is, the shell's front lies behind it (the face mesh's depth at the same x, y).
    let face_mesh = FaceMesh::delaunay(&mesh.positions);
    let mut gaps = Vec::new();
    for q in shell.positions.iter().step_by(2) {
        if let [Some(face_z)] = face_mesh.depth_grid(1, 1, q.truncate(), Vec2::splat(1e-4))[..] {
            gaps.push(face_z - q.z);
        }
    }
    let closest = gaps.iter().copied().fold(f32::MAX, f32::min);
    println!(
        "{} shell points under the face, closest {:.2} mm behind it",
        gaps.len(),
        closest * 1e3
    );
    assert!(
        gaps.len() > 200 && closest > 0.0,
        "the shell shows through the face"
    );
    // Above the forehead, on the front, the shell has the portrait's hair colour (darker and more saturated than
    // the skin; the astronaut's hair is light brown).
    let skin = mesh
        .texture
        .get_pixel(mesh.texture.width() / 2, mesh.texture.height() / 2)
        .0;
    let (hair_sum, hair_n) = shell
        .positions
        .iter()
        .zip(&shell.colours)
        .filter(|(q, _)| q.x.abs() < 0.02 && q.y > face_hi.y + 0.01 && q.z > 0.0)
        .fold(([0.0f32; 3], 0), |(sum, n), (_, c)| {
            ([sum[0] + c[0], sum[1] + c[1], sum[2] + c[2]], n + 1)
        });
    assert!(hair_n > 0, "no shell above the forehead");
    let hair = hair_sum.map(|v| v / hair_n as f32);
    let srgb = |linear: f32| linear.powf(1.0 / 2.2) * 255.0;
    println!("hair (sRGB) {:?}, skin {skin:?}", hair.map(srgb));
    assert!(
        srgb(hair[2]) < f32::from(skin[2]) - 20.0,
        "the shell above the forehead is not hair-coloured: {:?} vs skin {skin:?}",
        hair.map(srgb)
    );

    // Bad input.
    let mut few = head.clone();
    few.landmarks.points.truncate(100);
    let error =
        arkit_head_glb(&portrait, &few, GltfSettings::default()).expect_err("100 landmarks");
    assert!(
        matches!(error, GltfError::Landmarks { actual: 100, .. }),
        "{error}"
    );
    let mut nan = head.clone();
    nan.landmarks.points[5].x = f32::NAN;
    let error = arkit_head_glb(&portrait, &nan, GltfSettings::default()).expect_err("NaN landmark");
    assert!(error.to_string().contains("not finite"), "{error}");
    let mut other_rig = head.clone();
    other_rig.asset = bevy_talking_head::identity::procedural::procedural_head(16, 8);
    let error = arkit_head_glb(&portrait, &other_rig, GltfSettings::default())
        .expect_err("a procedural head");
    assert!(matches!(error, GltfError::BasisCount { .. }), "{error}");
    let tiny = image::DynamicImage::new_rgb8(8, 8);
    let error = arkit_head_glb(&tiny, &head, GltfSettings::default())
        .expect_err("a portrait without the face");
    assert!(
        matches!(error, GltfError::FaceOutsidePortrait { .. }),
        "{error}"
    );
}

#[test]
fn a_portrait_without_a_face_is_a_clear_error() {
    let registry = ModelRegistry::load_default().expect("models");
    // Sky-blue to grass-green: a landscape without anyone in it.
    let empty = image::RgbImage::from_fn(256, 256, |x, y| {
        image::Rgb([
            (100 + x / 4) as u8,
            (160 + y / 8) as u8,
            (230 - y / 2) as u8,
        ])
    });
    let error = arkit_head_glb_from_portrait(&registry, &empty.into(), GltfSettings::default())
        .expect_err("no face in a gradient");
    assert!(
        matches!(error, GltfError::Identity(IdentityError::NoFace { .. })),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("no face found") && message.contains("portrait"),
        "{message}"
    );
}

const SIZE: u32 = 256;
const CLEAR: [u8; 3] = [20, 40, 80];

/// Loads the shipped head in a headless Bevy app, drives it with `ArkitFace` and renders it from the front.
#[test]
fn bevy_loads_the_shipped_head_and_arkit_face_drives_its_morph_targets() {
    let glb = parse_glb(&shipped_bytes()).expect("valid .glb");
    let positions = glb.positions();
    let (lo, hi) = positions
        .iter()
        .fold((Vec3::MAX, Vec3::MIN), |(lo, hi), p| {
            (lo.min(*p), hi.max(*p))
        });
    let centre = (lo + hi) * 0.5;

    let mut app = headless_app();
    app.insert_resource(ClearColor(Color::srgb_u8(CLEAR[0], CLEAR[1], CLEAR[2])));
    // The face's height fills about 80 % of a 45° view.
    let distance = (hi.y - lo.y) / 0.8 / 2.0 / (22.5f32).to_radians().tan();
    let (_, target) = common::camera_into_image(
        &mut app,
        (SIZE, SIZE),
        Transform::from_translation(centre + Vec3::Z * distance).looking_at(centre, Vec3::Y),
    );
    // The mesh and material as bevy_gltf loads them, on entities laid out as its scene spawner lays them out
    // (MorphWeights on the node, the primitive's MeshMorphWeights referring to it). The scene itself
    // (`WorldAssetRoot`) is not spawned: with Bevy built without default features (no `reflect_auto_register`)
    // its spawner panics on a component type it finds unregistered.
    const PATH: &str = "avatars/arkit_head.glb";
    let server = app.world().resource::<AssetServer>().clone();
    let mesh: Handle<Mesh> = server.load(
        GltfAssetLabel::Primitive {
            mesh: 0,
            primitive: 0,
        }
        .from_asset(PATH),
    );
    let material: Handle<bevy::gltf::GltfMaterial> = server.load(
        GltfAssetLabel::Material {
            index: 0,
            is_scale_inverted: false,
        }
        .from_asset(PATH),
    );
    let loaded = run_until(&mut app, 2000, |app| {
        app.world().resource::<Assets<Mesh>>().get(&mesh).is_some()
            && app
                .world()
                .resource::<Assets<bevy::gltf::GltfMaterial>>()
                .get(&material)
                .is_some()
    });
    assert!(
        loaded,
        "bevy_gltf did not load the mesh ({:?}) and material ({:?})",
        server.load_state(&mesh),
        server.load_state(&material),
    );
    let gltf_material = app
        .world()
        .resource::<Assets<bevy::gltf::GltfMaterial>>()
        .get(&material)
        .cloned();
    let gltf_material = gltf_material.expect("loaded");
    assert!(
        gltf_material.unlit,
        "the material is unlit (KHR_materials_unlit)"
    );
    let texture = gltf_material
        .base_color_texture
        .clone()
        .expect("a base-colour texture");
    let material = app
        .world_mut()
        .resource_mut::<Assets<StandardMaterial>>()
        .add(StandardMaterial {
            base_color_texture: Some(texture),
            unlit: true,
            ..default()
        });
    let names = app
        .world()
        .resource::<Assets<Mesh>>()
        .get(&mesh)
        .and_then(|m| {
            m.try_morph_target_names()
                .ok()
                .flatten()
                .map(<[String]>::to_vec)
        })
        .unwrap_or_default();
    assert_eq!(
        names.iter().map(String::as_str).collect::<Vec<_>>(),
        ARKIT_NAMES.to_vec(),
        "morph target names"
    );
    let weights = MorphWeights::new(vec![0.0; 52], Some(mesh.clone())).expect("52 morph weights");
    let face = app
        .world_mut()
        .spawn((weights, Transform::default(), Visibility::default()))
        .id();
    app.world_mut().spawn((
        Mesh3d(mesh),
        MeshMaterial3d(material),
        MeshMorphWeights::Reference(face),
        ChildOf(face),
    ));

    app.world_mut()
        .entity_mut(face)
        .insert((ArkitFace::default(), FaceCoefficients::default()));

    let pixels = Arc::new(Mutex::new((0u64, Vec::<u8>::new())));
    let sink = pixels.clone();
    app.world_mut()
        .spawn(Readback::texture(target))
        .observe(move |event: On<ReadbackComplete>| {
            if let Ok(mut p) = sink.lock() {
                *p = (p.0 + 1, event.data.clone());
            }
        });
    let render = |app: &mut App, weights: &[(&str, f32)], name: &str| -> Vec<u8> {
        let mut coefficients = FaceCoefficients::default();
        for (n, w) in weights {
            coefficients.weights[arkit_index(n).expect("name")] = *w;
        }
        app.world_mut().entity_mut(face).insert(coefficients);
        let start = pixels.lock().map(|p| p.0).unwrap_or(0);
        // A frame counts once it shows the clear colour in the corner and something else in the middle (the
        // target starts out uniform while pipelines compile), rendered a few frames after the change.
        let face_shows = |p: &(u64, Vec<u8>)| {
            let i = ((SIZE / 2) * SIZE + SIZE / 2) as usize * 4;
            p.0 >= start + 6 && p.1.len() > i + 3 && p.1[..3] == CLEAR && p.1[i..i + 3] != CLEAR
        };
        let seen = run_until(app, 5000, |_| pixels.lock().is_ok_and(|p| face_shows(&p)));
        let image = pixels.lock().map(|p| p.1.clone()).unwrap_or_default();
        assert!(
            seen,
            "{name}: the face never showed at the centre of the view"
        );
        let driven = app
            .world()
            .get::<MorphWeights>(face)
            .map(|w| w.weights().to_vec())
            .unwrap_or_default();
        for (n, w) in weights {
            assert_eq!(
                driven.get(arkit_index(n).expect("name")),
                Some(w),
                "{name}: ArkitFace set {n}"
            );
        }
        common::save_png_srgb8(
            &format!("gltf_{name}"),
            SIZE,
            SIZE,
            &image[..(SIZE * SIZE * 4) as usize],
        );
        image
    };
    let rest = render(&mut app, &[], "rest");
    let jaw = render(&mut app, &[("jawOpen", 1.0)], "jaw_open");
    let smile = render(&mut app, &[("mouthSmileLeft", 1.0)], "smile_left");
    assert!(
        app.world()
            .get::<ArkitFace>(face)
            .is_some_and(|f| f.problem().is_none()),
        "ArkitFace reports a problem"
    );

    // Where the images differ: the jaw below the eyes, not the forehead.
    let changed = |a: &[u8], b: &[u8], rows: std::ops::Range<u32>| {
        rows.flat_map(|y| (0..SIZE).map(move |x| ((y * SIZE + x) * 4) as usize))
            .filter(|i| (0..3).any(|c| a[i + c].abs_diff(b[i + c]) > 24))
            .count()
    };
    let (top, bottom) = (0..SIZE * 2 / 5, SIZE * 3 / 5..SIZE);
    let (jaw_top, jaw_bottom) = (
        changed(&rest, &jaw, top.clone()),
        changed(&rest, &jaw, bottom.clone()),
    );
    assert!(
        jaw_bottom > 200 && jaw_top < jaw_bottom / 20,
        "jawOpen changed {jaw_top} pixels at the top, {jaw_bottom} at the bottom"
    );
    let smile_bottom = changed(&rest, &smile, bottom);
    assert!(
        smile_bottom > 20 && changed(&rest, &smile, top) < smile_bottom / 5,
        "mouthSmileLeft changed {smile_bottom} pixels at the bottom"
    );
}
