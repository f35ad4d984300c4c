//! A glTF head with the 52 ARKit morph targets, made from a portrait's face mesh, so that any glTF avatar pipeline
//! can follow our [`FaceCoefficients`](crate::FaceCoefficients) through [`ArkitFace`](crate::ArkitFace).
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

mod glb;
mod shell;
mod targets;

use bevy::math::{Vec2, Vec3};
use image::{DynamicImage, RgbImage, RgbaImage};
use thiserror::Error;

use super::head_asset::HeadAssetError;
use super::landmarks::LANDMARK_COUNT;
use super::rig::bases;
use super::triangulation::FaceMesh;
use super::{BuiltHead, IdentityError, head_from_portrait};
use crate::contract::ARKIT_WEIGHT_COUNT;
use crate::inference::ModelRegistry;
use crate::motion::ARKIT_NAMES;

pub use shell::{HeadShell, SHELL_RECESS_M, SHELL_STEP};
pub use targets::arkit_basis_map;
use targets::{BasisFields, HandBuilt};

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
