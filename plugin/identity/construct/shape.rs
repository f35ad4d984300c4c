//! What the construction reads from the portrait: the person mask ([`PersonMask`]), the face's outline
//! ([`FaceHull`]) and the head's front and back surfaces over the tri-plane's grid ([`Surfaces`]).

use super::*;

/// The person mask with its image size.
pub(in crate::identity) struct PersonMask<'a> {
    pub(in crate::identity) values: &'a [f32],
    pub(in crate::identity) width: u32,
    pub(in crate::identity) height: u32,
}

impl PersonMask<'_> {
    /// The mask at image point `p` (pixels), bilinear between pixel centres; 0 outside the image.
    pub(in crate::identity) fn at(&self, p: Vec2) -> f32 {
        let (w, h) = (self.width as f32, self.height as f32);
        if p.x < 0.0 || p.y < 0.0 || p.x >= w || p.y >= h {
            return 0.0;
        }
        let x = (p.x - 0.5).clamp(0.0, w - 1.0);
        let y = (p.y - 0.5).clamp(0.0, h - 1.0);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = (
            (x0 + 1).min(self.width as usize - 1),
            (y0 + 1).min(self.height as usize - 1),
        );
        let (tx, ty) = (x - x0 as f32, y - y0 as f32);
        let v = |px: usize, py: usize| {
            self.values
                .get(py * self.width as usize + px)
                .copied()
                .unwrap_or(0.0)
        };
        let top = v(x0, y0) + (v(x1, y0) - v(x0, y0)) * tx;
        let bottom = v(x0, y1) + (v(x1, y1) - v(x0, y1)) * tx;
        top + (bottom - top) * ty
    }

    /// The highest image row (pixels) reached by the person going straight up from `start_y`, over columns within
    /// `half_span` of `x`; `None` when the mask is empty there.
    pub(super) fn top_above(&self, x: f32, start_y: f32, half_span: f32) -> Option<f32> {
        let mut top: Option<f32> = None;
        for k in -4..=4 {
            let column = x + half_span * k as f32 / 4.0;
            let mut y = start_y;
            if self.at(Vec2::new(column, y)) < 0.5 {
                continue;
            }
            while y > 0.0 && self.at(Vec2::new(column, y - 1.0)) >= 0.5 {
                y -= 1.0;
            }
            top = Some(top.map_or(y, |t: f32| t.min(y)));
        }
        top
    }

    /// Half width (pixels) of the ellipse centred at (x, centre_y) with half height `half_height` that holds the
    /// person's outline on every row from `top` to `bottom` (rows near the crown, where the ellipse narrows to
    /// nothing, are left out).
    pub(super) fn ellipse_half_width(
        &self,
        x: f32,
        centre_y: f32,
        half_height: f32,
        top: f32,
        bottom: f32,
    ) -> Option<f32> {
        let mut widest: Option<f32> = None;
        let mut y = top;
        while y <= bottom {
            let t = (y - centre_y) / half_height.max(1.0);
            let room = (1.0 - t * t).max(0.0).sqrt();
            if room > 0.6 && self.at(Vec2::new(x, y)) >= 0.5 {
                let reach = |direction: f32| {
                    let mut d = 0.0;
                    while d < self.width as f32
                        && self.at(Vec2::new(x + direction * (d + 1.0), y)) >= 0.5
                    {
                        d += 1.0;
                    }
                    d
                };
                let half = reach(-1.0).max(reach(1.0)) / room;
                widest = Some(widest.map_or(half, |w: f32| w.max(half)));
            }
            y += 1.0;
        }
        widest
    }
}

/// The convex hull of the face landmarks in head x–y (metres), counter-clockwise.
pub(in crate::identity) struct FaceHull {
    pub(super) corners: Vec<Vec2>,
}

impl FaceHull {
    pub(in crate::identity) fn new(face: &[Vec3]) -> Self {
        let mut points: Vec<Vec2> = face.iter().map(|p| p.truncate()).collect();
        points.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
        let cross = |o: Vec2, a: Vec2, b: Vec2| (a - o).perp_dot(b - o);
        let mut corners: Vec<Vec2> = Vec::with_capacity(points.len() + 1);
        for pass in 0..2 {
            let start = corners.len();
            let ordered: Box<dyn Iterator<Item = &Vec2>> = if pass == 0 {
                Box::new(points.iter())
            } else {
                Box::new(points.iter().rev())
            };
            for &p in ordered {
                while corners.len() >= start + 2
                    && cross(corners[corners.len() - 2], corners[corners.len() - 1], p) <= 0.0
                {
                    corners.pop();
                }
                corners.push(p);
            }
            corners.pop();
        }
        Self { corners }
    }

    /// Signed distance (metres) inside the hull: positive inside, negative outside (exact inside, a lower bound
    /// of the distance outside).
    pub(in crate::identity) fn inside(&self, p: Vec2) -> f32 {
        let n = self.corners.len();
        if n < 3 {
            return -1.0;
        }
        (0..n)
            .map(|i| {
                let (a, b) = (self.corners[i], self.corners[(i + 1) % n]);
                let edge = b - a;
                edge.perp_dot(p - a) / edge.length().max(1e-9)
            })
            .fold(f32::MAX, f32::min)
    }
}

/// Front and back depth (normalised z) per plane-0 texel (row-major from the top); front < back where the head
/// is absent. Also the distance of each texel from the silhouette's edge.
pub(super) struct Surfaces {
    pub(super) front: Vec<f32>,
    pub(super) back: Vec<f32>,
    /// Distance (metres) from the silhouette's edge inside it, 0 outside.
    pub(super) edge_distance: Vec<f32>,
}

impl Surfaces {
    pub(super) fn new(
        frame: &PortraitFrame,
        skull: Skull,
        face: &[Vec3],
        hull: &FaceHull,
        nose_y: f32,
        grid: Grid,
        mask: Option<&PersonMask>,
    ) -> Self {
        let r = grid.r;
        let half_extent = grid.half_extent;
        let two_sigma2 = 2.0 * DEPTH_SIGMA_M * DEPTH_SIGMA_M;
        // Inside the landmarks' hull the face is their triangulated surface; the Gaussian-weighted depths carry it
        // on past the hull (and their weight blends it into the skull).
        let texel = grid.texel();
        let mesh_depth = FaceMesh::delaunay(face).depth_grid(
            r,
            r,
            grid.point(0, 0),
            Vec2::new(texel.x, -texel.y),
        );
        let mut face_depth = vec![0.0f32; r * r];
        let mut face_weight = vec![0.0f32; r * r];
        let mut shell = vec![0.0f32; r * r];
        let mut inside = vec![false; r * r];
        for row in 0..r {
            for col in 0..r {
                let Vec2 { x, y } = grid.point(row, col);
                let i = row * r + col;
                let (mut sum, mut weight) = (0.0f32, 0.0f32);
                for p in face {
                    let d2 = (p.x - x).powi(2) + (p.y - y).powi(2);
                    if d2 < 9.0 * two_sigma2 {
                        let w = (-d2 / two_sigma2).exp();
                        sum += w * p.z;
                        weight += w;
                    }
                }
                face_depth[i] =
                    mesh_depth[i].unwrap_or(if weight > 0.0 { sum / weight } else { 0.0 });
                face_weight[i] = weight;
                let rim = skull.inside(x, y);
                shell[i] = skull.half_depth * rim.max(0.0).sqrt();
                let mut solid = rim > 0.0;
                if let Some(mask) = mask {
                    solid &= mask.at(frame.to_image(x, y)) >= 0.5;
                    // Below the nose the head is the face itself (the mask there holds neck and shoulders).
                    solid &= y > nose_y || hull.inside(Vec2::new(x, y)) > -0.004;
                }
                inside[i] = solid;
            }
        }
        // The skull meets the face where the face's landmarks thin out: shift it to the face's depth there.
        let rim: Vec<f32> = (0..r * r)
            .filter(|&i| (0.3..0.6).contains(&face_weight[i]))
            .map(|i| face_depth[i] - shell[i])
            .collect();
        let shift = if rim.is_empty() {
            0.0
        } else {
            rim.iter().sum::<f32>() / rim.len() as f32
        };
        let edge_distance = distance_inside(&inside, (r, r), grid.texel(), true);

        let mut front = vec![-2.0f32; r * r];
        let mut back = vec![2.0f32; r * r];
        for i in 0..r * r {
            if !inside[i] {
                continue;
            }
            let blend = smoothstep(0.2, 0.8, face_weight[i]);
            let mut z_front = blend * face_depth[i] + (1.0 - blend) * (shell[i] + shift);
            let mut z_back = -shell[i];
            // Where the mask cuts the skull, the head rounds off towards its edge instead of ending in a wall.
            let round = 0.3 + 0.7 * smoothstep(0.0, EDGE_ROUNDING_M, edge_distance[i]).sqrt();
            z_front *= round;
            z_back *= round;
            // Thin rims still get a little thickness, so the silhouette's edge is solid.
            let thickness = (z_front - z_back).max(0.004);
            front[i] = (z_back + thickness) / half_extent.z;
            back[i] = z_back / half_extent.z;
        }
        Self {
            front,
            back,
            edge_distance,
        }
    }
}
