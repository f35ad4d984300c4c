//! The bust under a head in a 3D scene ([`HeadDisplay::Bust`](crate::HeadDisplay::Bust)): the photo's neck and
//! shoulders as a mesh, so that a head seen from any side stands on its own body instead of floating.
//!
//! Made from the photo's layers ([`PortraitLayers`]): the body plate, which has the head removed and the neck
//! continued upward behind the chin, is wrapped around a stack of elliptical rings, one per sampled plate row, from
//! the mouth's height down to where the person leaves the picture.
//! - Each ring is as wide as the person in its row (above the jaw line only the neck), as deep as it is wide up to
//!   [`CHEST_DEPTH`] neck widths, and centred under the neck ([`NECK_FRONT`] in front of the head's pivot).
//! - Its front half shows the body plate as the photo's camera saw it (the mesh's point at plate pixel (x, y) shows
//!   that pixel); its back half shows the same plate blurred and darker ([`BACK_SHADE`]), since the photo never saw
//!   the back. The body plate's alpha cuts the outline, the space between an arm and the body included.
//! - Each vertex carries how far it follows the head's turn: the neck's top as the portrait display moves it,
//!   nothing from the neck ring down ([`Neck::follow`](super::layers::Neck::follow)).

use bevy::math::{Quat, Vec2, Vec3};
use image::RgbaImage;

use super::IdentityError;
use super::layers::{NECK_FOLLOW, NECK_FRONT, PortraitLayers, unpack_rgba};
use super::maps::{blur, push_pull};

/// The body plate's alpha from which a pixel counts as the person when the rings' widths are measured.
const BODY_ALPHA: u8 = 128;
/// The deepest ring, front to back, in neck widths (the chest).
pub const CHEST_DEPTH: f32 = 2.0;
/// Most rings down the bust (rows are sampled evenly between the top and the bottom).
const MAX_RINGS: usize = 64;
/// Vertices along each half ring (front, back), ends included.
const HALF_RING: usize = 17;
/// How much darker the bust's back is than its front.
pub const BACK_SHADE: f32 = 0.7;
/// The back half's blur, in plate pixels per 100 pixels of the bust's height.
const BACK_BLUR: f32 = 3.0;

/// A bust's mesh and texture in head space (metres, the head's frame; +Y up, the face looks down +Z).
#[derive(Clone, Debug, PartialEq)]
pub struct BustShape {
    /// Vertex positions at rest.
    pub positions: Vec<[f32; 3]>,
    /// Outward normals at rest.
    pub normals: Vec<[f32; 3]>,
    /// Texture coordinates into [`texture`](Self::texture).
    pub uvs: Vec<[f32; 2]>,
    /// How far each vertex follows the head's rotation and translation about [`pivot`](Self::pivot), 0..1.
    pub follow: Vec<f32>,
    /// Triangles, counter-clockwise seen from outside.
    pub indices: Vec<u32>,
    /// sRGB colour with straight alpha (the outline): the front above, the back below.
    pub texture: RgbaImage,
    /// The point the head turns about (the neck's pivot), head space.
    pub pivot: Vec3,
}

impl BustShape {
    /// The vertex positions with the head turned by `rotation` and moved by `translation` about
    /// [`pivot`](Self::pivot): each vertex takes its [`follow`](Self::follow) share of the motion.
    pub fn posed(&self, rotation: Quat, translation: Vec3) -> Vec<[f32; 3]> {
        self.positions
            .iter()
            .zip(&self.follow)
            .map(|(p, &w)| {
                let p = Vec3::from_array(*p) - self.pivot;
                let turned = Quat::IDENTITY.slerp(rotation, w) * p;
                (self.pivot + turned + w * translation).to_array()
            })
            .collect()
    }
}

/// One sampled plate row of the bust: where the person is.
#[derive(Clone, Copy, Debug)]
struct Row {
    y: f32,
    left: f32,
    right: f32,
}

/// Builds the bust of a portrait from its layers.
///
/// Errors: [`IdentityError::Layers`] when the picture shows no neck below the head (nothing of the person under
/// the chin).
pub fn build_bust(layers: &PortraitLayers) -> Result<BustShape, IdentityError> {
    let (w, h) = (layers.width as usize, layers.height as usize);
    let neck = layers.neck;
    let frame = layers.frame;
    let opaque = |x: usize, y: usize| unpack_rgba(layers.body[y * w + x])[3] >= BODY_ALPHA;
    let top = frame.to_image(neck.pivot.x, neck.pivot.y).y.max(0.0);
    let neck_span = (
        (neck.centre_x - neck.half_width).max(0.0),
        (neck.centre_x + neck.half_width).min(w as f32 - 1.0),
    );
    // Where the person is in row y: the outermost body pixels (only the neck's columns above the jaw line).
    let extent = |y: usize| {
        let (lo, hi) = if (y as f32) < neck.jaw_y {
            (neck_span.0 as usize, neck_span.1 as usize)
        } else {
            (0, w - 1)
        };
        let left = (lo..=hi).find(|&x| opaque(x, y))?;
        let right = (lo..=hi).rev().find(|&x| opaque(x, y))?;
        Some((left as f32, right as f32 + 1.0))
    };
    // The bust runs down from the mouth while each row holds some of the person.
    let first = top.ceil() as usize;
    let extents: Vec<(f32, f32)> = (first..h).map_while(extent).collect();
    let last = extents
        .len()
        .checked_sub(1)
        .map(|rows| first + rows)
        .filter(|&y| y as f32 > neck.jaw_y)
        .ok_or_else(|| {
            IdentityError::Layers(
                "no neck below the head in the picture: a bust needs the person under the chin"
                    .into(),
            )
        })?;
    let count = extents.len().clamp(2, MAX_RINGS);
    let rows: Vec<Row> = (0..count)
        .map(|k| {
            let y = first + (last - first) * k / (count - 1);
            let (left, right) = extents[y - first];
            Row {
                y: y as f32,
                left,
                right,
            }
        })
        .collect();
    let rows = smoothed(&rows);

    let neck_radius = neck.half_width * frame.scale;
    let centre_z = neck.pivot.z + NECK_FRONT - neck_radius;
    let height = last + 1 - first;
    let texture = bust_texture(layers, first, height);
    let tw = texture.width() as f32;

    let mut shape = BustShape {
        positions: Vec::new(),
        normals: Vec::new(),
        uvs: Vec::new(),
        follow: Vec::new(),
        indices: Vec::new(),
        texture,
        pivot: neck.pivot,
    };
    for back in [false, true] {
        let start = shape.positions.len() as u32;
        for row in &rows {
            let centre = frame.image_to_head(Vec2::new(0.5 * (row.left + row.right), row.y));
            let a = 0.5 * (row.right - row.left) * frame.scale;
            let b = a.min(CHEST_DEPTH * neck_radius);
            let follow = NECK_FOLLOW * neck.follow(Vec2::new(neck.centre_x, row.y));
            for k in 0..HALF_RING {
                // From the right side (−x) round the front (+z) to the left, or round the back.
                let t = k as f32 / (HALF_RING - 1) as f32;
                let angle = if back {
                    std::f32::consts::PI * (0.5 - t)
                } else {
                    std::f32::consts::PI * (t - 0.5)
                };
                let (sin, cos) = angle.sin_cos();
                let (x, z) = (centre.x + a * sin, if back { -cos } else { cos });
                let position = Vec3::new(x, centre.y, centre_z + b * z);
                let normal = Vec3::new(sin * b, 0.0, z * a).normalize_or(Vec3::Z);
                let pixel = frame.to_image(x, centre.y);
                let v = (row.y - first as f32 + 0.5) / height as f32;
                let v = if back { 0.5 + 0.5 * v } else { 0.5 * v };
                shape.positions.push(position.to_array());
                shape.normals.push(normal.to_array());
                shape.uvs.push([pixel.x / tw, v]);
                shape.follow.push(follow);
            }
        }
        let ring = HALF_RING as u32;
        for r in 0..rows.len().saturating_sub(1) as u32 {
            for k in 0..ring - 1 {
                let a = start + r * ring + k;
                let (b, c, d) = (a + 1, a + ring, a + ring + 1);
                shape.indices.extend([a, c, b, b, c, d]);
            }
        }
    }
    Ok(shape)
}

/// The rows' edges smoothed over five rows, so that a ragged outline in the photo makes no ridges down the bust.
fn smoothed(rows: &[Row]) -> Vec<Row> {
    (0..rows.len())
        .map(|i| {
            let window = &rows[i.saturating_sub(2)..(i + 3).min(rows.len())];
            let n = window.len() as f32;
            Row {
                y: rows[i].y,
                left: window.iter().map(|r| r.left).sum::<f32>() / n,
                right: window.iter().map(|r| r.right).sum::<f32>() / n,
            }
        })
        .collect()
}

/// The bust's texture: plate rows `first..first + height`, the body plate above (its colour filled out past the
/// outline so that the edge does not darken) and the blurred, darker back below.
fn bust_texture(layers: &PortraitLayers, first: usize, height: usize) -> RgbaImage {
    let w = layers.width as usize;
    let pixels = &layers.body[first * w..(first + height) * w];
    let rgba: Vec<[u8; 4]> = pixels.iter().map(|&p| unpack_rgba(p)).collect();
    let colour: Vec<[f32; 3]> = rgba
        .iter()
        .map(|p| [p[0], p[1], p[2]].map(|c| f32::from(c) / 255.0))
        .collect();
    let weight: Vec<f32> = rgba
        .iter()
        .map(|p| if p[3] >= BODY_ALPHA { 1.0 } else { 0.0 })
        .collect();
    let filled = push_pull(&colour, &weight, w, height).unwrap_or(colour);
    let radius = ((BACK_BLUR * height as f32 / 100.0) as usize).max(1);
    let back = blur(&filled, w, height, radius);
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    RgbaImage::from_fn(w as u32, 2 * height as u32, |x, y| {
        let (y, is_back) = (y as usize % height, y as usize >= height);
        let i = y * w + x as usize;
        let [r, g, b] = if is_back {
            back[i].map(|c| c * BACK_SHADE)
        } else {
            filled[i]
        };
        image::Rgba([byte(r), byte(g), byte(b), rgba[i][3]])
    })
}
