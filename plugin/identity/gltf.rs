//! A glTF head with the 52 ARKit morph targets, made from a portrait's face mesh, so that any glTF avatar pipeline
//! can follow our [`FaceCoefficients`] through [`ArkitFace`](crate::ArkitFace).
//!
//! The mesh is the portrait's face: the 468 landmarks in head space (metres, centred on the head, +Y up, the face
//! looking down +Z, as [`PortraitFrame::to_head`](super::PortraitFrame::to_head) puts them) joined by the
//! landmarks' Delaunay triangulation ([`FaceMesh`]), with texture coordinates into the portrait, which is embedded
//! (cropped round the face) as the unlit base-colour texture.
//!
//! Morph targets, one per ARKit name in [`ARKIT_NAMES`] order (names in `mesh.extras.targetNames`):
//! - **From the head's motion bases** (the same deformation the tri-plane head renders): the target of an ARKit
//!   weight is the linear part of the rig's mapping [`bases::from_arkit`] — `jawOpen` +jaw, `mouthClose` −jaw,
//!   each name of a pair averaged into one basis ½ of it, each term of a `max()` the whole basis alone — applied
//!   to the bases' vertex displacements. A basis's displacement at a vertex is computed from the head asset's own
//!   displacement planes (the renderer's bilinear lookups): the renderer draws the canonical point `u + d(u)` at
//!   `u`, so the vertex at `p` moves to the `q` with `q + d(q) = p`. Where several `q` qualify, the one nearest
//!   `p` among those where the field really moves the surface is taken (the field's Jacobian determinant above
//!   0.3); the bands where the renderer instead fills in colour from elsewhere — the mouth's dark interior as the
//!   lips part, the closed lid drawn from the skin under the eye — have no such preimage and are skipped, since a
//!   mesh moves its vertices and cannot copy colours. Names: `jawOpen`, `mouthClose`, `mouthSmile*`,
//!   `mouthFrown*`, `mouthStretch*`, `mouthPucker`, `mouthFunnel`, `mouthUpperUp*`, `mouthLowerDown*`,
//!   `mouthPress*`, `mouthRollLower`, `mouthRollUpper`, `eyeSquint*`, `cheekSquint*`, `browDown*`, `browInnerUp`,
//!   `browOuterUp*`, `cheekPuff`, `noseSneer*`, `eyeWide*`.
//! - **Hand-built from landmark regions** (geometry the tri-plane rig makes by colour, or has no basis for):
//!   `eyeBlink*` — each upper-lid contour landmark moves onto its lower-lid partner, the lid above it follows
//!   (the rig's blink basis draws the closed lid's colour instead); `eyeLookDown*`/`eyeLookUp*` — the upper lid
//!   follows the gaze by 25 %/15 % of the opening (the mesh has no eyeballs to turn); `jawForward` — the jaw
//!   below the lips moves 4 mm forward; `jawLeft`/`jawRight` — 4 mm sideways; `mouthLeft`/`mouthRight` — the
//!   lips move 3 mm sideways; `mouthDimple*` — the corner moves 1.5 mm out and 2 mm back; `mouthShrugLower`/
//!   `mouthShrugUpper` — the lower lip and chin push up by 2 mm / the upper lip rises 1.5 mm. ("Left" and "right"
//!   are the subject's; the subject's left is +X.)
//! - **Zero** (nothing in a face mesh to move): `eyeLookIn*`, `eyeLookOut*`, `tongueOut`.
//!
//!
//! Behind the face, a second mesh without targets holds the rest of the head ([`HeadShell`]): the constructed
//! head's surfaces with their colours per vertex, so that the avatar has the tri-plane head's skull and hair.
//!
//! [`ArkitHeadMesh::rasterise`] draws the face mesh on the CPU (an orthographic front view), for previews and tests
//! without a GPU.

use std::io::Cursor;

use bevy::math::{Vec2, Vec3};
use image::{DynamicImage, RgbImage, RgbaImage};
use serde_json::{Value, json};
use thiserror::Error;

use super::construct::{HeadSurfaces, smoothstep};
use super::head_asset::{BASIS_COMPONENTS, HeadAsset, HeadAssetError, PLANES};
use super::landmarks::{LANDMARK_COUNT, landmark_index as lm};
use super::rig::{bases, bump};
use super::triangulation::FaceMesh;
use super::{BuiltHead, IdentityError, head_from_portrait};
use crate::contract::ARKIT_WEIGHT_COUNT;
use crate::inference::ModelRegistry;
use crate::motion::{ARKIT_NAMES, FaceCoefficients};

/// Longest side of the embedded portrait texture by default, pixels.
pub const DEFAULT_TEXTURE_SIDE: u32 = 512;

/// Why a glTF head could not be made.
#[derive(Debug, Error)]
pub enum GltfError {
    /// The portrait could not be turned into a head (no face, face turned away, models missing, …).
    #[error("cannot make a glTF head from this portrait: {0}")]
    Identity(#[from] IdentityError),
    /// The landmarks are not MediaPipe's 468-point face mesh.
    #[error(
        "the face has {actual} landmarks but the glTF head needs MediaPipe's {expected}; build the head with \
         identity::head_from_portrait"
    )]
    Landmarks {
        /// Landmarks needed ([`LANDMARK_COUNT`]).
        expected: usize,
        /// Landmarks given.
        actual: usize,
    },
    /// The head asset is malformed.
    #[error("the head asset cannot be used for morph targets: {0}")]
    Asset(#[from] HeadAssetError),
    /// The head asset's motion bases are not the rig's ([`bases::COUNT`]).
    #[error(
        "the head asset has {actual} motion bases but the ARKit mapping needs the rig's {expected}; build the \
         head with identity::build_head"
    )]
    BasisCount {
        /// Bases the rig has.
        expected: usize,
        /// Bases in the asset.
        actual: usize,
    },
    /// Some position, displacement or frame value is NaN or infinite.
    #[error(
        "the {0} contain values that are not finite; the landmarks or the head asset are corrupt"
    )]
    NotFinite(&'static str),
    /// The triangulation of the landmarks is empty (all points on a line).
    #[error(
        "the face landmarks span no triangle; they are degenerate (all on one line or one point)"
    )]
    NoTriangles,
    /// The portrait is empty or the face lies outside it.
    #[error(
        "the portrait ({width}×{height} pixels) holds no part of the face; pass the portrait the landmarks came from"
    )]
    FaceOutsidePortrait {
        /// Portrait width, pixels.
        width: u32,
        /// Portrait height, pixels.
        height: u32,
    },
    /// Encoding the texture as PNG failed.
    #[error("could not encode the portrait texture as PNG: {0}")]
    Texture(String),
}

/// How the glTF head is made.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GltfSettings {
    /// The embedded texture's longest side, pixels (the face crop is only ever scaled down).
    pub texture_max_side: u32,
    /// Margin round the landmarks' bounding box kept in the texture, as a fraction of its size.
    pub texture_margin: f32,
}

impl Default for GltfSettings {
    fn default() -> Self {
        Self {
            texture_max_side: DEFAULT_TEXTURE_SIDE,
            texture_margin: 0.05,
        }
    }
}

/// Where an ARKit morph target's displacement comes from (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetSource {
    /// The head's motion bases through [`bases::from_arkit`].
    Bases,
    /// A displacement built by hand from landmark regions.
    HandBuilt,
    /// No displacement.
    Zero,
}

/// The face mesh with its 52 ARKit morph targets and texture, before it is written as glTF.
#[derive(Clone, Debug)]
pub struct ArkitHeadMesh {
    /// Vertex positions, metres, head space (+Y up, facing +Z).
    pub positions: Vec<Vec3>,
    /// Unit vertex normals.
    pub normals: Vec<Vec3>,
    /// Texture coordinates into [`texture`](Self::texture) (0,0 top left).
    pub uvs: Vec<Vec2>,
    /// Triangles, counter-clockwise seen from the front (+Z).
    pub triangles: Vec<[u32; 3]>,
    /// Per ARKit weight (in [`ARKIT_NAMES`] order) the displacement of every vertex at weight 1, metres.
    pub targets: Vec<Vec<Vec3>>,
    /// Where each target comes from.
    pub sources: [TargetSource; ARKIT_WEIGHT_COUNT],
    /// Per motion basis the vertices whose displacement had no preimage where the field moves the surface
    /// (left in place; see the module docs).
    pub unresolved: [usize; bases::COUNT],
    /// The portrait cropped round the face.
    pub texture: RgbImage,
    /// The rest of the head (skull and hair) behind the face.
    pub shell: HeadShell,
}

/// The head behind the face mesh: the constructed head's front and back surfaces ([`HeadSurfaces`]) sampled every
/// [`SHELL_STEP`] texels, joined round the silhouette, with their colours per vertex. Under the face mesh its front
/// sits [`SHELL_RECESS_M`] further back, so the face (and the skin under an opening jaw) covers it.
#[derive(Clone, Debug, Default)]
pub struct HeadShell {
    /// Vertex positions, metres, head space (as the face mesh's).
    pub positions: Vec<Vec3>,
    /// Unit vertex normals.
    pub normals: Vec<Vec3>,
    /// Linear RGB per vertex.
    pub colours: Vec<[f32; 3]>,
    /// Triangles, counter-clockwise seen from outside.
    pub triangles: Vec<[u32; 3]>,
}

/// Tri-plane texels between two samples of the shell.
pub const SHELL_STEP: usize = 4;
/// Passes of smoothing along the shell's silhouette (each moves a rim vertex half way to its neighbours' mean).
const RIM_SMOOTHING_PASSES: usize = 4;
/// How far the shell's front lies behind the face mesh, metres.
pub const SHELL_RECESS_M: f32 = 0.003;

impl HeadShell {
    /// The shell of `asset` behind the face mesh `face` (its Delaunay triangulation in head space); an empty
    /// shell when `asset` was not made by [`build_head`](super::build_head).
    pub fn new(asset: &HeadAsset, face: &FaceMesh) -> Self {
        let Some(surfaces) = HeadSurfaces::of(asset) else {
            return Self::default();
        };
        let n = surfaces.resolution / SHELL_STEP;
        let texel = |row: usize, col: usize| {
            let (row, col) = (
                row * SHELL_STEP + SHELL_STEP / 2,
                col * SHELL_STEP + SHELL_STEP / 2,
            );
            (row * surfaces.resolution + col, surfaces.point(row, col))
        };
        let (_, origin) = texel(0, 0);
        let (_, next) = texel(1, 1);
        let under_face = face.depth_grid(n, n, origin, next - origin);
        let mut shell = Self::default();
        // Front and back vertex of each sample inside the head.
        let mut index = vec![None; n * n];
        for row in 0..n {
            for col in 0..n {
                let (t, p) = texel(row, col);
                let Some((front, back)) = surfaces.depths[t] else {
                    continue;
                };
                let recess = if under_face[row * n + col].is_some() {
                    SHELL_RECESS_M.min(0.5 * (front - back))
                } else {
                    0.0
                };
                let (front_colour, back_colour) = surfaces.colours[t];
                index[row * n + col] = Some(shell.positions.len() as u32);
                shell.positions.push(p.extend(front - recess));
                shell.positions.push(p.extend(back));
                shell.colours.push(front_colour);
                shell.colours.push(back_colour);
            }
        }
        let at = |row: usize, col: usize| -> Option<u32> {
            (row < n && col < n).then(|| index[row * n + col]).flatten()
        };
        let cell = |row: usize, col: usize| -> Option<[u32; 4]> {
            // Corners top-left, top-right, bottom-right, bottom-left (rows go down, -y).
            Some([
                at(row, col)?,
                at(row, col + 1)?,
                at(row + 1, col + 1)?,
                at(row + 1, col)?,
            ])
        };
        let mut rim = Vec::new();
        for row in 0..n {
            for col in 0..n {
                let Some([a, b, c, d]) = cell(row, col) else {
                    continue;
                };
                // Front (+1: back vertices): counter-clockwise from +Z is a, d, c then a, c, b.
                shell.triangles.push([a, d, c]);
                shell.triangles.push([a, c, b]);
                shell.triangles.push([a + 1, c + 1, d + 1]);
                shell.triangles.push([a + 1, b + 1, c + 1]);
                // Where a neighbouring cell is missing, a wall facing out joins front and back along the
                // shared edge (its corners in clockwise order round this cell, seen from +Z).
                let row_above = row.checked_sub(1).and_then(|r| cell(r, col));
                let col_left = col.checked_sub(1).and_then(|c| cell(row, c));
                for (missing, p, q) in [
                    (row_above.is_none(), a, b),
                    (cell(row, col + 1).is_none(), b, c),
                    (cell(row + 1, col).is_none(), c, d),
                    (col_left.is_none(), d, a),
                ] {
                    if missing {
                        shell.triangles.push([p, q, q + 1]);
                        shell.triangles.push([p, q + 1, p + 1]);
                        rim.push((p, q));
                    }
                }
            }
        }
        // The silhouette follows the sample grid in steps: smooth it along the rim (front and back together).
        let mut neighbours = std::collections::HashMap::<u32, Vec<u32>>::new();
        for (p, q) in rim {
            neighbours.entry(p).or_default().push(q);
            neighbours.entry(q).or_default().push(p);
        }
        for _ in 0..RIM_SMOOTHING_PASSES {
            let moved: Vec<(u32, Vec2)> = neighbours
                .iter()
                .filter_map(|(&v, around)| match around[..] {
                    [a, b] => {
                        let xy = |i: u32| shell.positions[i as usize].truncate();
                        Some((v, xy(v) * 0.5 + (xy(a) + xy(b)) * 0.25))
                    }
                    _ => None,
                })
                .collect();
            for (v, xy) in moved {
                for i in [v as usize, v as usize + 1] {
                    let z = shell.positions[i].z;
                    shell.positions[i] = xy.extend(z);
                }
            }
        }
        // A rim vertex that moved under the face goes behind it too.
        for &v in neighbours.keys() {
            let front = &mut shell.positions[v as usize];
            if let [Some(face_z)] = face.depth_grid(1, 1, front.truncate(), Vec2::splat(1e-4))[..] {
                front.z = front.z.min(face_z - SHELL_RECESS_M);
            }
        }
        shell.normals = vertex_normals(&shell.positions, &shell.triangles);
        shell
    }
}

/// The whole portrait → `.glb` step: landmarks, head, mesh, morph targets, binary glTF.
///
/// ```no_run
/// use bevy_talking_head::identity::gltf::{GltfSettings, arkit_head_glb_from_portrait};
/// use bevy_talking_head::inference::ModelRegistry;
///
/// let registry = ModelRegistry::load_default()?;
/// let portrait = image::open("assets/portraits/astronaut.png")?;
/// let glb = arkit_head_glb_from_portrait(&registry, &portrait, GltfSettings::default())?;
/// std::fs::write("astronaut_arkit.glb", glb)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn arkit_head_glb_from_portrait(
    registry: &ModelRegistry,
    portrait: &DynamicImage,
    settings: GltfSettings,
) -> Result<Vec<u8>, GltfError> {
    let head = head_from_portrait(registry, portrait)?;
    arkit_head_glb(portrait, &head, settings)
}

/// A binary glTF 2.0 (`.glb`) of `head`'s face with the 52 ARKit morph targets and `portrait` (the image the head
/// was built from) as its texture. See the module docs for what each target is.
pub fn arkit_head_glb(
    portrait: &DynamicImage,
    head: &BuiltHead,
    settings: GltfSettings,
) -> Result<Vec<u8>, GltfError> {
    ArkitHeadMesh::new(portrait, head, settings)?.to_glb()
}

/// The linear part of [`bases::from_arkit`]: per ARKit weight, the basis weights it adds at weight 1.
///
/// Each weight alone (`from_arkit` of that weight at 1); a weight that does nothing alone (`mouthClose`, which
/// only takes away from an open jaw) is measured on top of `jawOpen` = 1.
pub fn arkit_basis_map() -> [[f32; bases::COUNT]; ARKIT_WEIGHT_COUNT] {
    let jaw = index_of("jawOpen");
    let alone = |extra: Option<usize>, i: usize| {
        let mut c = FaceCoefficients::default();
        if let Some(e) = extra {
            c.weights[e] = 1.0;
        }
        let before = bases::from_arkit(&c);
        c.weights[i] = 1.0;
        let after = bases::from_arkit(&c);
        let mut d = [0.0; bases::COUNT];
        for k in 0..bases::COUNT {
            d[k] = after[k] - before[k];
        }
        d
    };
    std::array::from_fn(|i| {
        let d = alone(None, i);
        if d.iter().any(|v| *v != 0.0) {
            d
        } else {
            alone(Some(jaw), i)
        }
    })
}

fn index_of(name: &str) -> usize {
    ARKIT_NAMES.iter().position(|n| *n == name).unwrap_or(0)
}

impl ArkitHeadMesh {
    /// The face mesh of `head` with its morph targets and `portrait`'s face as texture.
    pub fn new(
        portrait: &DynamicImage,
        head: &BuiltHead,
        settings: GltfSettings,
    ) -> Result<Self, GltfError> {
        let landmarks = &head.landmarks.points;
        if landmarks.len() != LANDMARK_COUNT {
            return Err(GltfError::Landmarks {
                expected: LANDMARK_COUNT,
                actual: landmarks.len(),
            });
        }
        if !landmarks.iter().all(|p| p.is_finite()) {
            return Err(GltfError::NotFinite("face landmarks"));
        }
        head.asset.validate()?;
        // The rest field (the photo's expression undone), when there is one, is not exported: the mesh is the
        // photo's own face.
        if head.asset.basis_count != bases::COUNT && head.asset.rest_basis().is_none() {
            return Err(GltfError::BasisCount {
                expected: bases::COUNT,
                actual: head.asset.basis_count,
            });
        }
        let positions: Vec<Vec3> = landmarks.iter().map(|p| head.frame.to_head(*p)).collect();
        if !positions.iter().all(|p| p.is_finite()) {
            return Err(GltfError::NotFinite("head-space landmark positions"));
        }
        let mesh = FaceMesh::delaunay(&positions);
        if mesh.triangles.is_empty() {
            return Err(GltfError::NoTriangles);
        }
        let triangles: Vec<[u32; 3]> = mesh.triangles.iter().map(|t| t.map(|i| i as u32)).collect();
        let (texture, uvs) = crop_texture(portrait, landmarks, settings)?;

        let fields = BasisFields::new(&head.asset);
        let mut unresolved = [0; bases::COUNT];
        let basis_moves: Vec<Vec<Vec3>> = (0..bases::COUNT)
            .map(|k| {
                positions
                    .iter()
                    .map(|p| {
                        fields.forward(k, *p).unwrap_or_else(|| {
                            unresolved[k] += 1;
                            Vec3::ZERO
                        })
                    })
                    .collect()
            })
            .collect();
        let map = arkit_basis_map();
        let hand = HandBuilt::new(&positions);
        let mut sources = [TargetSource::Zero; ARKIT_WEIGHT_COUNT];
        let mut targets = Vec::with_capacity(ARKIT_WEIGHT_COUNT);
        for (a, name) in ARKIT_NAMES.iter().enumerate() {
            let target = if let Some(target) = hand.target(name) {
                sources[a] = TargetSource::HandBuilt;
                target
            } else if map[a].iter().any(|w| *w != 0.0) {
                sources[a] = TargetSource::Bases;
                (0..positions.len())
                    .map(|v| {
                        (0..bases::COUNT)
                            .map(|k| map[a][k] * basis_moves[k][v])
                            .sum()
                    })
                    .collect()
            } else {
                vec![Vec3::ZERO; positions.len()]
            };
            if !target.iter().all(|d| d.is_finite()) {
                return Err(GltfError::NotFinite("morph-target displacements"));
            }
            targets.push(target);
        }
        let normals = vertex_normals(&positions, &triangles);
        let shell = HeadShell::new(&head.asset, &mesh);
        Ok(Self {
            positions,
            normals,
            uvs,
            triangles,
            targets,
            sources,
            unresolved,
            texture,
            shell,
        })
    }

    /// Vertex positions with the ARKit `weights` applied (as a glTF viewer blends the targets).
    pub fn posed(&self, weights: &[f32; ARKIT_WEIGHT_COUNT]) -> Vec<Vec3> {
        let mut out = self.positions.clone();
        for (target, w) in self.targets.iter().zip(weights) {
            if *w != 0.0 {
                for (p, d) in out.iter_mut().zip(target) {
                    *p += *w * *d;
                }
            }
        }
        out
    }

    /// An orthographic front view (looking down −Z) of the mesh posed by `weights`, `size` pixels square,
    /// covering the rest mesh's bounding box plus 10 %; transparent where there is no face.
    pub fn rasterise(&self, weights: &[f32; ARKIT_WEIGHT_COUNT], size: u32) -> RgbaImage {
        let posed = self.posed(weights);
        let (lo, hi) = self.positions.iter().fold(
            (Vec2::splat(f32::MAX), Vec2::splat(f32::MIN)),
            |(lo, hi), p| (lo.min(p.truncate()), hi.max(p.truncate())),
        );
        let centre = (lo + hi) * 0.5;
        let half = (hi - lo).max_element() * 0.55;
        let n = size as f32;
        let to_pixel = |p: Vec3| {
            Vec2::new(
                (p.x - centre.x + half) / (2.0 * half) * n,
                (centre.y + half - p.y) / (2.0 * half) * n,
            )
        };
        let mut image = RgbaImage::new(size, size);
        let mut depth = vec![f32::MIN; (size * size) as usize];
        let (tw, th) = self.texture.dimensions();
        for t in &self.triangles {
            let [a, b, c] = t.map(|i| i as usize);
            let (pa, pb, pc) = (to_pixel(posed[a]), to_pixel(posed[b]), to_pixel(posed[c]));
            let area = (pb - pa).perp_dot(pc - pa);
            if area.abs() < 1e-9 {
                continue;
            }
            let x0 = pa.x.min(pb.x).min(pc.x).floor().max(0.0) as u32;
            let x1 = (pa.x.max(pb.x).max(pc.x).ceil().max(0.0) as u32).min(size);
            let y0 = pa.y.min(pb.y).min(pc.y).floor().max(0.0) as u32;
            let y1 = (pa.y.max(pb.y).max(pc.y).ceil().max(0.0) as u32).min(size);
            for y in y0..y1 {
                for x in x0..x1 {
                    let p = Vec2::new(x as f32 + 0.5, y as f32 + 0.5);
                    let wa = (pb - p).perp_dot(pc - p) / area;
                    let wb = (pc - p).perp_dot(pa - p) / area;
                    let wc = 1.0 - wa - wb;
                    if wa < 0.0 || wb < 0.0 || wc < 0.0 {
                        continue;
                    }
                    let z = wa * posed[a].z + wb * posed[b].z + wc * posed[c].z;
                    let slot = (y * size + x) as usize;
                    if z <= depth[slot] {
                        continue;
                    }
                    depth[slot] = z;
                    let uv = wa * self.uvs[a] + wb * self.uvs[b] + wc * self.uvs[c];
                    let tx = ((uv.x * tw as f32) as u32).min(tw.saturating_sub(1));
                    let ty = ((uv.y * th as f32) as u32).min(th.saturating_sub(1));
                    let [r, g, b] = self.texture.get_pixel(tx, ty).0;
                    image.put_pixel(x, y, image::Rgba([r, g, b, 255]));
                }
            }
        }
        image
    }

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

/// The portrait cropped round the landmarks (plus margin) and scaled down to fit, and each landmark's texture
/// coordinates in it.
fn crop_texture(
    portrait: &DynamicImage,
    landmarks: &[Vec3],
    settings: GltfSettings,
) -> Result<(RgbImage, Vec<Vec2>), GltfError> {
    let (width, height) = (portrait.width(), portrait.height());
    let outside = GltfError::FaceOutsidePortrait { width, height };
    let (lo, hi) = landmarks.iter().fold(
        (Vec2::splat(f32::MAX), Vec2::splat(f32::MIN)),
        |(lo, hi), p| (lo.min(p.truncate()), hi.max(p.truncate())),
    );
    let margin = (hi - lo) * settings.texture_margin.clamp(0.0, 1.0);
    let x0 = (lo.x - margin.x).floor().clamp(0.0, width as f32) as u32;
    let y0 = (lo.y - margin.y).floor().clamp(0.0, height as f32) as u32;
    let x1 = (hi.x + margin.x).ceil().clamp(0.0, width as f32) as u32;
    let y1 = (hi.y + margin.y).ceil().clamp(0.0, height as f32) as u32;
    if x1 <= x0 || y1 <= y0 {
        return Err(outside);
    }
    let mut crop = portrait.crop_imm(x0, y0, x1 - x0, y1 - y0).to_rgb8();
    let longest = crop.width().max(crop.height());
    let max_side = settings.texture_max_side.max(16);
    if longest > max_side {
        let k = max_side as f32 / longest as f32;
        let (w, h) = (
            ((crop.width() as f32 * k).round() as u32).max(1),
            ((crop.height() as f32 * k).round() as u32).max(1),
        );
        crop = image::imageops::resize(&crop, w, h, image::imageops::FilterType::Triangle);
    }
    let size = Vec2::new((x1 - x0) as f32, (y1 - y0) as f32);
    let origin = Vec2::new(x0 as f32, y0 as f32);
    let uvs = landmarks
        .iter()
        .map(|p| ((p.truncate() - origin) / size).clamp(Vec2::ZERO, Vec2::ONE))
        .collect();
    Ok((crop, uvs))
}

fn vertex_normals(positions: &[Vec3], triangles: &[[u32; 3]]) -> Vec<Vec3> {
    let mut normals = vec![Vec3::ZERO; positions.len()];
    for t in triangles {
        let [a, b, c] = t.map(|i| i as usize);
        // Cross product length is twice the area: area-weighted.
        let n = (positions[b] - positions[a]).cross(positions[c] - positions[a]);
        for i in [a, b, c] {
            normals[i] += n;
        }
    }
    normals
        .into_iter()
        .map(|n| n.try_normalize().unwrap_or(Vec3::Z))
        .collect()
}

/// The head asset's motion-basis displacement fields as the renderer reads them, in metres.
struct BasisFields {
    half_extent: Vec3,
    m: usize,
    /// `[basis][plane][texel]`, metres.
    texels: Vec<Vec<Vec3>>,
    /// Per basis: its largest displacement (metres) and the head-space x–y box where it is not zero.
    reach: Vec<(f32, Vec2, Vec2)>,
}

/// Determinant of the warp's Jacobian below which a preimage is a colour fill rather than a surface move.
const MIN_WARP_DETERMINANT: f32 = 0.3;

impl BasisFields {
    fn new(asset: &HeadAsset) -> Self {
        let m = asset.motion_resolution;
        let he = asset.half_extent;
        let texels: Vec<Vec<Vec3>> = (0..asset.basis_count)
            .map(|k| {
                (0..PLANES * m * m)
                    .map(|t| {
                        let base = (k * PLANES * m * m + t) * BASIS_COMPONENTS;
                        let v = &asset.motion_bases[base..base + 3];
                        Vec3::new(v[0].into(), v[1].into(), v[2].into()) * he
                    })
                    .collect()
            })
            .collect();
        let reach = texels
            .iter()
            .map(|field| {
                let mut largest = 0.0f32;
                let (mut lo, mut hi) = (Vec2::splat(f32::MAX), Vec2::splat(f32::MIN));
                for (t, d) in field.iter().enumerate() {
                    if *d == Vec3::ZERO {
                        continue;
                    }
                    largest = largest.max(d.length());
                    let (plane, rest) = (t / (m * m), t % (m * m));
                    if plane != 0 {
                        // Planes 1 and 2 span every x or every y: the whole box.
                        lo = lo.min(-he.truncate());
                        hi = hi.max(he.truncate());
                        continue;
                    }
                    let (row, col) = (rest / m, rest % m);
                    let centre = |i: usize| (i as f32 + 0.5) / m as f32 * 2.0 - 1.0;
                    let cell = 2.0 / m as f32;
                    let p = Vec2::new(centre(col), centre(row)) * he.truncate();
                    let pad = he.truncate() * cell;
                    lo = lo.min(p - pad);
                    hi = hi.max(p + pad);
                }
                (largest, lo, hi)
            })
            .collect();
        Self {
            half_extent: he,
            m,
            texels,
            reach,
        }
    }

    /// Displacement of basis `k` at head-space point `p` (metres), bilinear like the renderer.
    fn at(&self, k: usize, p: Vec3) -> Vec3 {
        let u = p / self.half_extent;
        let m = self.m;
        let r = m as f32;
        let mut d = Vec3::ZERO;
        for (plane, (a, b)) in [(u.x, u.y), (u.x, u.z), (u.z, u.y)].into_iter().enumerate() {
            let sx = ((a + 1.0) * 0.5 * r - 0.5).clamp(0.0, r - 1.0);
            let sy = ((b + 1.0) * 0.5 * r - 0.5).clamp(0.0, r - 1.0);
            let x0 = (sx.floor() as usize).min(m - 2);
            let y0 = (sy.floor() as usize).min(m - 2);
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            let t = &self.texels[k][plane * m * m..];
            let i = y0 * m + x0;
            d += (1.0 - fx) * (1.0 - fy) * t[i]
                + fx * (1.0 - fy) * t[i + 1]
                + (1.0 - fx) * fy * t[i + m]
                + fx * fy * t[i + m + 1];
        }
        d
    }

    /// Where the surface point `p` is drawn when basis `k` has weight 1, as a displacement from `p`: the `q`
    /// nearest `p` with `q + d(q) = p` where the warp's Jacobian determinant exceeds
    /// [`MIN_WARP_DETERMINANT`]; `None` when there is no such `q`.
    fn forward(&self, k: usize, p: Vec3) -> Option<Vec3> {
        let (largest, lo, hi) = self.reach[k];
        let window = largest + 0.003;
        let xy = p.truncate();
        if largest == 0.0
            || xy.x + window < lo.x
            || xy.x - window > hi.x
            || xy.y + window < lo.y
            || xy.y - window > hi.y
        {
            return Some(Vec3::ZERO);
        }
        // Grid search over x–y (the z of a surface point stays; the rig's fields have no z), then Newton.
        const HALF: i32 = 40;
        let step = window / HALF as f32;
        let side = (2 * HALF + 1) as usize;
        let q_at = |i: i32, j: i32| p + Vec3::new(i as f32 * step, j as f32 * step, 0.0);
        let warped: Vec<Vec2> = (-HALF..=HALF)
            .flat_map(|j| (-HALF..=HALF).map(move |i| (i, j)))
            .map(|(i, j)| {
                let q = q_at(i, j);
                (q + self.at(k, q)).truncate()
            })
            .collect();
        let cell = |i: i32, j: i32| warped[((j + HALF) as usize) * side + (i + HALF) as usize];
        let mut best: Option<(f32, Vec3)> = None;
        for j in -HALF + 1..HALF {
            for i in -HALF + 1..HALF {
                let f = cell(i, j);
                if f.distance(xy) > 1.5 * step {
                    continue;
                }
                let dx = (cell(i + 1, j) - cell(i - 1, j)) / (2.0 * step);
                let dy = (cell(i, j + 1) - cell(i, j - 1)) / (2.0 * step);
                if dx.perp_dot(dy) < MIN_WARP_DETERMINANT {
                    continue;
                }
                let q = q_at(i, j);
                let distance = q.truncate().distance(xy);
                if best.is_none_or(|(d, _)| distance < d) {
                    best = Some((distance, q));
                }
            }
        }
        let (_, mut q) = best?;
        // Newton steps on q + d(q) = p with a finite-difference Jacobian, kept within the grid cell's reach.
        let start = q;
        for _ in 0..6 {
            let f = (q + self.at(k, q)).truncate() - xy;
            if f.length() < 1e-6 {
                break;
            }
            let h = 1e-4;
            let fx = (q + Vec3::X * h + self.at(k, q + Vec3::X * h)).truncate() - xy;
            let fy = (q + Vec3::Y * h + self.at(k, q + Vec3::Y * h)).truncate() - xy;
            let (jx, jy) = ((fx - f) / h, (fy - f) / h);
            let det = jx.perp_dot(jy);
            if det.abs() < 1e-3 {
                break;
            }
            // Solve [jx jy] s = -f.
            let s = Vec2::new(-f.perp_dot(jy), -jx.perp_dot(f)) / det;
            let next = q + s.extend(0.0);
            if next.truncate().distance(start.truncate()) > 2.0 * step {
                break;
            }
            q = next;
        }
        // A surface point keeps its depth; a field with z pushes it along z like x–y.
        let dz = self.at(k, q).z;
        Some(Vec3::new(q.x - p.x, q.y - p.y, -dz))
    }
}

/// MediaPipe face-mesh contours used by the hand-built targets: upper-lid landmarks, each with its lower-lid
/// partner below it, from the outer corner inwards, and the corners (outer, inner).
const RIGHT_EYE_LIDS: [(usize, usize); 7] = [
    (246, 7),
    (161, 163),
    (160, 144),
    (159, 145),
    (158, 153),
    (157, 154),
    (173, 155),
];
const LEFT_EYE_LIDS: [(usize, usize); 7] = [
    (466, 249),
    (388, 390),
    (387, 373),
    (386, 374),
    (385, 380),
    (384, 381),
    (398, 382),
];

/// The hand-built targets (see the module docs).
struct HandBuilt<'a> {
    points: &'a [Vec3],
    mouth_centre: Vec3,
    mouth_half_width: f32,
}

impl<'a> HandBuilt<'a> {
    fn new(points: &'a [Vec3]) -> Self {
        let mouth_centre = (points[lm::UPPER_LIP] + points[lm::LOWER_LIP]) * 0.5;
        let mouth_half_width = points[lm::MOUTH_LEFT].distance(points[lm::MOUTH_RIGHT]) * 0.5;
        Self {
            points,
            mouth_centre,
            mouth_half_width,
        }
    }

    fn target(&self, name: &str) -> Option<Vec<Vec3>> {
        let left = name.ends_with("Left");
        let side = if left { 1.0 } else { -1.0 };
        let lids = if left {
            &LEFT_EYE_LIDS
        } else {
            &RIGHT_EYE_LIDS
        };
        let target = match name {
            "eyeBlinkLeft" | "eyeBlinkRight" => self.upper_lid(lids, 1.0),
            "eyeLookDownLeft" | "eyeLookDownRight" => self.upper_lid(lids, 0.25),
            "eyeLookUpLeft" | "eyeLookUpRight" => self.upper_lid(lids, -0.15),
            "jawForward" => self.jaw(Vec3::new(0.0, 0.0, 0.004)),
            "jawLeft" => self.jaw(Vec3::new(0.004, 0.0, 0.0)),
            "jawRight" => self.jaw(Vec3::new(-0.004, 0.0, 0.0)),
            "mouthLeft" => self.lips(Vec3::new(0.003, 0.0, 0.0)),
            "mouthRight" => self.lips(Vec3::new(-0.003, 0.0, 0.0)),
            "mouthDimpleLeft" | "mouthDimpleRight" => {
                let corner = self.points[if left {
                    lm::MOUTH_LEFT
                } else {
                    lm::MOUTH_RIGHT
                }];
                let radius = self.mouth_half_width * 0.7;
                self.each(|p| {
                    Vec3::new(0.0015 * side, 0.0, -0.002)
                        * bump(p.truncate().distance(corner.truncate()), radius)
                })
            }
            "mouthShrugLower" => self.each(|p| {
                let below = self.mouth_centre.y - p.y;
                let w = smoothstep(0.0, 0.003, below)
                    * (1.0 - smoothstep(0.03, 0.05, below))
                    * bump(
                        (p.x - self.mouth_centre.x).abs(),
                        self.mouth_half_width * 1.4,
                    );
                Vec3::new(0.0, 0.002, 0.0) * w
            }),
            "mouthShrugUpper" => self.each(|p| {
                let above = p.y - self.mouth_centre.y;
                let w = smoothstep(0.0, 0.002, above)
                    * (1.0 - smoothstep(0.008, 0.016, above))
                    * bump(
                        (p.x - self.mouth_centre.x).abs(),
                        self.mouth_half_width * 1.2,
                    );
                Vec3::new(0.0, 0.0015, 0.0) * w
            }),
            _ => return None,
        };
        Some(target)
    }

    fn each(&self, f: impl Fn(Vec3) -> Vec3) -> Vec<Vec3> {
        self.points.iter().map(|p| f(*p)).collect()
    }

    /// The upper lid moves by `fraction` of its distance to the lower lid (1 closes the eye, negative opens it
    /// wider); the skin above follows, fading out over half the eye's width; the corners and the lower lid stay.
    fn upper_lid(&self, lids: &[(usize, usize)], fraction: f32) -> Vec<Vec3> {
        let p = self.points;
        let (outer, inner) = (p[lids[0].0], p[lids[lids.len() - 1].0]);
        let half_width = outer.truncate().distance(inner.truncate()) * 0.5 + 1e-4;
        let lower: Vec<usize> = lids.iter().map(|l| l.1).collect();
        self.each(|v| {
            if let Some((u, l)) = lids.iter().find(|(u, _)| p[*u] == v) {
                return Vec3::new(0.0, (p[*l].y - p[*u].y) * fraction, 0.0);
            }
            if lower.iter().any(|l| p[*l] == v) {
                return Vec3::ZERO;
            }
            // The nearest upper-lid landmark carries the vertex along, if the vertex is above the lower lid.
            let Some(&(u, l)) = lids.iter().min_by(|a, b| {
                p[a.0]
                    .truncate()
                    .distance(v.truncate())
                    .total_cmp(&p[b.0].truncate().distance(v.truncate()))
            }) else {
                return Vec3::ZERO;
            };
            let above = smoothstep(0.0, 0.001, v.y - p[u].y);
            let w = bump(v.truncate().distance(p[u].truncate()), half_width * 0.5) * above;
            Vec3::new(0.0, (p[l].y - p[u].y) * fraction * w, 0.0)
        })
    }

    /// The jaw below the lips' line moves by `offset`, fading in over 3 mm below the line and out to the sides.
    fn jaw(&self, offset: Vec3) -> Vec<Vec3> {
        self.each(|p| {
            let below = self.mouth_centre.y - p.y;
            let w = smoothstep(0.0, 0.003, below)
                * bump(
                    (p.x - self.mouth_centre.x).abs(),
                    self.mouth_half_width * 2.2,
                );
            offset * w
        })
    }

    /// Both lips move by `offset`, fading out around the mouth.
    fn lips(&self, offset: Vec3) -> Vec<Vec3> {
        self.each(|p| {
            let d =
                (p - self.mouth_centre).truncate() / Vec2::new(self.mouth_half_width * 1.4, 0.014);
            offset * bump(d.length(), 1.0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_basis_map_is_the_linear_part_of_from_arkit() {
        let map = arkit_basis_map();
        let row = |name: &str| map[index_of(name)];
        assert_eq!(row("jawOpen")[bases::JAW_OPEN], 1.0);
        assert_eq!(row("mouthClose")[bases::JAW_OPEN], -1.0);
        assert_eq!(row("mouthStretchLeft")[bases::STRETCH], 0.5);
        assert_eq!(row("mouthRollUpper")[bases::PRESS], 0.5);
        assert_eq!(row("cheekSquintLeft")[bases::SQUINT_LEFT], 1.0);
        assert_eq!(row("mouthSmileLeft")[bases::SMILE_LEFT], 1.0);
        assert_eq!(row("mouthSmileLeft")[bases::SMILE_RIGHT], 0.0);
        assert_eq!(row("eyeWideRight")[bases::EYE_WIDE_RIGHT], 1.0);
        for name in ["eyeLookInLeft", "tongueOut", "jawLeft"] {
            assert!(row(name).iter().all(|w| *w == 0.0), "{name}");
        }
        // Every basis is reached by some ARKit weight.
        for k in 0..bases::COUNT {
            assert!(map.iter().any(|r| r[k] > 0.0), "{}", bases::NAMES[k]);
        }
    }

    #[test]
    fn lid_lists_hold_fourteen_distinct_landmarks_each() {
        for lids in [RIGHT_EYE_LIDS, LEFT_EYE_LIDS] {
            let mut all: Vec<usize> = lids.iter().flat_map(|(u, l)| [*u, *l]).collect();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), 14);
            assert!(all.iter().all(|i| *i < LANDMARK_COUNT));
        }
    }
}
