//! The rest of the head behind the face mesh ([`HeadShell`]).

use bevy::math::{Vec2, Vec3};

use super::vertex_normals;
use crate::identity::construct::HeadSurfaces;
use crate::identity::head_asset::HeadAsset;
use crate::identity::triangulation::FaceMesh;

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
    /// shell when `asset` was not made by [`build_head`](crate::identity::build_head).
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
