//! The face mesh as binary glTF 2.0 ([`ArkitHeadMesh::to_glb`]).

use std::io::Cursor;

use bevy::math::Vec3;
use serde_json::{Value, json};

use super::{ArkitHeadMesh, GltfError};
use crate::contract::ARKIT_WEIGHT_COUNT;
use crate::motion::ARKIT_NAMES;

impl ArkitHeadMesh {
    /// The mesh as binary glTF 2.0: one node, one mesh, one primitive with `POSITION`, `NORMAL`, `TEXCOORD_0`,
    /// 32-bit indices, an unlit material (`KHR_materials_unlit`) with the embedded PNG texture, and the 52 morph
    /// targets (positions only) named in `mesh.extras.targetNames`.
    pub fn to_glb(&self) -> Result<Vec<u8>, GltfError> {
        let mut png = Vec::new();
        self.texture
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| GltfError::Texture(e.to_string()))?;

        let mut bin = Vec::<u8>::new();
        let mut views = Vec::<Value>::new();
        let mut accessors = Vec::<Value>::new();
        // Appends `bytes` as a buffer view (4-byte aligned) and returns its index.
        let mut view = |bin: &mut Vec<u8>, bytes: &[u8], target: Option<u32>| {
            while !bin.len().is_multiple_of(4) {
                bin.push(0);
            }
            let mut v = json!({ "buffer": 0, "byteOffset": bin.len(), "byteLength": bytes.len() });
            if let Some(target) = target {
                v["target"] = json!(target);
            }
            bin.extend_from_slice(bytes);
            views.push(v);
            views.len() - 1
        };
        const ARRAY_BUFFER: u32 = 34962;
        const ELEMENT_ARRAY_BUFFER: u32 = 34963;
        const FLOAT: u32 = 5126;
        let mut vec3_accessor = |bin: &mut Vec<u8>, values: &[Vec3], accessors: &mut Vec<Value>| {
            let bytes: Vec<u8> = values
                .iter()
                .flat_map(|v| v.to_array())
                .flat_map(f32::to_le_bytes)
                .collect();
            let (lo, hi) = values.iter().fold(
                (Vec3::splat(f32::MAX), Vec3::splat(f32::MIN)),
                |(lo, hi), v| (lo.min(*v), hi.max(*v)),
            );
            let index = view(bin, &bytes, Some(ARRAY_BUFFER));
            accessors.push(json!({
                "bufferView": index, "componentType": FLOAT, "count": values.len(), "type": "VEC3",
                "min": lo.to_array(), "max": hi.to_array(),
            }));
            accessors.len() - 1
        };
        let position = vec3_accessor(&mut bin, &self.positions, &mut accessors);
        let normal = vec3_accessor(&mut bin, &self.normals, &mut accessors);
        let mut targets = Vec::new();
        let mut zero_target = None;
        for target in &self.targets {
            let accessor = if target.iter().all(|d| *d == Vec3::ZERO) {
                *zero_target.get_or_insert_with(|| vec3_accessor(&mut bin, target, &mut accessors))
            } else {
                vec3_accessor(&mut bin, target, &mut accessors)
            };
            targets.push(json!({ "POSITION": accessor }));
        }
        let mut shell = None;
        if !self.shell.triangles.is_empty() {
            let colours: Vec<Vec3> = self
                .shell
                .colours
                .iter()
                .map(|c| Vec3::from_array(*c))
                .collect();
            let position = vec3_accessor(&mut bin, &self.shell.positions, &mut accessors);
            let normal = vec3_accessor(&mut bin, &self.shell.normals, &mut accessors);
            let colour = vec3_accessor(&mut bin, &colours, &mut accessors);
            let index_view = view(
                &mut bin,
                &triangle_bytes(&self.shell.triangles),
                Some(ELEMENT_ARRAY_BUFFER),
            );
            accessors.push(index_accessor(index_view, &self.shell.triangles));
            shell = Some(json!({
                "attributes": { "POSITION": position, "NORMAL": normal, "COLOR_0": colour },
                "indices": accessors.len() - 1,
                "material": 1,
                "mode": 4,
            }));
        }
        let uv_bytes: Vec<u8> = self
            .uvs
            .iter()
            .flat_map(|v| v.to_array())
            .flat_map(f32::to_le_bytes)
            .collect();
        let uv_view = view(&mut bin, &uv_bytes, Some(ARRAY_BUFFER));
        accessors.push(json!({
            "bufferView": uv_view, "componentType": FLOAT, "count": self.uvs.len(), "type": "VEC2",
        }));
        let uv = accessors.len() - 1;
        let index_view = view(
            &mut bin,
            &triangle_bytes(&self.triangles),
            Some(ELEMENT_ARRAY_BUFFER),
        );
        accessors.push(index_accessor(index_view, &self.triangles));
        let indices = accessors.len() - 1;
        let image_view = view(&mut bin, &png, None);
        while !bin.len().is_multiple_of(4) {
            bin.push(0);
        }

        let mut nodes = vec![json!({ "name": "arkit_head", "mesh": 0 })];
        let mut meshes = vec![json!({
            "name": "arkit_head",
            "primitives": [{
                "attributes": { "POSITION": position, "NORMAL": normal, "TEXCOORD_0": uv },
                "indices": indices,
                "material": 0,
                "mode": 4,
                "targets": targets,
            }],
            "weights": vec![0.0; ARKIT_WEIGHT_COUNT],
            "extras": { "targetNames": &ARKIT_NAMES[..] },
        })];
        let mut materials = vec![json!({
            "name": "portrait",
            "pbrMetallicRoughness": {
                "baseColorTexture": { "index": 0 },
                "metallicFactor": 0.0,
                "roughnessFactor": 0.9,
            },
            "extensions": { "KHR_materials_unlit": {} },
        })];
        if let Some(primitive) = shell {
            // The shell: a second node and mesh, no morph targets, its colours per vertex (unlit, like the face).
            nodes.push(json!({ "name": "head_shell", "mesh": 1 }));
            meshes.push(json!({ "name": "head_shell", "primitives": [primitive] }));
            materials.push(json!({
                "name": "head_shell",
                "pbrMetallicRoughness": { "metallicFactor": 0.0, "roughnessFactor": 0.9 },
                "extensions": { "KHR_materials_unlit": {} },
            }));
        }
        let document = json!({
            "asset": { "version": "2.0", "generator": "bevy_talking_head identity::gltf" },
            "extensionsUsed": ["KHR_materials_unlit"],
            "scene": 0,
            "scenes": [{ "name": "arkit_head", "nodes": (0..nodes.len()).collect::<Vec<_>>() }],
            "nodes": nodes,
            "meshes": meshes,
            "materials": materials,
            "textures": [{ "sampler": 0, "source": 0 }],
            "samplers": [{ "magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071 }],
            "images": [{ "name": "portrait", "bufferView": image_view, "mimeType": "image/png" }],
            "accessors": accessors,
            "bufferViews": views,
            "buffers": [{ "byteLength": bin.len() }],
        });
        let mut text = document.to_string().into_bytes();
        while !text.len().is_multiple_of(4) {
            text.push(b' ');
        }
        let total = 12 + 8 + text.len() + 8 + bin.len();
        let mut glb = Vec::with_capacity(total);
        glb.extend_from_slice(b"glTF");
        glb.extend_from_slice(&2u32.to_le_bytes());
        glb.extend_from_slice(&(total as u32).to_le_bytes());
        glb.extend_from_slice(&(text.len() as u32).to_le_bytes());
        glb.extend_from_slice(b"JSON");
        glb.extend_from_slice(&text);
        glb.extend_from_slice(&(bin.len() as u32).to_le_bytes());
        glb.extend_from_slice(b"BIN\0");
        glb.extend_from_slice(&bin);
        Ok(glb)
    }
}

/// Triangle indices as little-endian u32s (a glTF index buffer).
fn triangle_bytes(triangles: &[[u32; 3]]) -> Vec<u8> {
    triangles
        .iter()
        .flatten()
        .flat_map(|i| i.to_le_bytes())
        .collect()
}

/// The accessor of an index buffer view holding `triangles`.
fn index_accessor(view: usize, triangles: &[[u32; 3]]) -> Value {
    const UNSIGNED_INT: u32 = 5125;
    json!({
        "bufferView": view, "componentType": UNSIGNED_INT, "count": triangles.len() * 3, "type": "SCALAR",
    })
}
