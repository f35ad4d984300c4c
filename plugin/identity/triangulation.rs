//! The face surface's triangulation: a Delaunay triangulation of the 468 landmarks seen from the front.
//!
//! The landmarks' x–y positions (head space, the portrait's view) are triangulated with the Bowyer–Watson
//! algorithm: start from one triangle that contains every point, insert the points one at a time, remove the
//! triangles whose circumcircle holds the new point and connect the point to the edges of the hole they leave;
//! finally drop the triangles that use a corner of the starting triangle. The result covers the convex hull of the
//! landmarks (the open mouth included, spanned by triangles from lip to lip) and no triangle's circumcircle holds
//! another landmark, which avoids long thin triangles wherever the points allow it.
//!
//! The face's depth inside the hull is the linear interpolation of the three corner depths of the triangle under
//! each point (so the surface passes through every landmark), see [`FaceMesh::depth_at`].

use bevy::math::{Vec2, Vec3};

/// A triangulated set of points: `triangles` index into `points`, each counter-clockwise in x–y.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceMesh {
    /// The vertices (x, y in the plane, z the depth carried along).
    pub points: Vec<Vec3>,
    /// Vertex indices of each triangle, counter-clockwise.
    pub triangles: Vec<[usize; 3]>,
}

impl FaceMesh {
    /// Delaunay triangulation of `points` by their x, y. Duplicate points are kept as vertices but no triangle
    /// uses the later copies. Fewer than three distinct points give no triangles.
    pub fn delaunay(points: &[Vec3]) -> Self {
        let flat: Vec<Vec2> = points.iter().map(|p| p.truncate()).collect();
        let triangles = bowyer_watson(&flat);
        Self {
            points: points.to_vec(),
            triangles,
        }
    }

    /// The depth (z) of the triangulated surface at `p`: linear inside the triangle that contains `p`, `None`
    /// outside every triangle.
    pub fn depth_at(&self, p: Vec2) -> Option<f32> {
        self.triangles.iter().find_map(|t| {
            let [a, b, c] = t.map(|i| self.points[i]);
            let w = barycentric(p, a.truncate(), b.truncate(), c.truncate())?;
            Some(w.x * a.z + w.y * b.z + w.z * c.z)
        })
    }

    /// The surface's depth at every point of a regular grid (row-major, `columns × rows`, point (row, col) at
    /// `origin + (col · step.x, row · step.y)`; `step` may be negative): `None` outside every triangle. Each
    /// triangle fills only the grid points inside its bounding box.
    pub fn depth_grid(
        &self,
        columns: usize,
        rows: usize,
        origin: Vec2,
        step: Vec2,
    ) -> Vec<Option<f32>> {
        let mut depth = vec![None; columns * rows];
        if step.x == 0.0 || step.y == 0.0 {
            return depth;
        }
        // The grid indices whose coordinate lies in [lo, hi] along one axis.
        let range = |lo: f32, hi: f32, origin: f32, step: f32, count: usize| {
            let (a, b) = ((lo - origin) / step, (hi - origin) / step);
            let (a, b) = (a.min(b).ceil().max(0.0), a.max(b).floor());
            (a as usize)..((b + 1.0).clamp(0.0, count as f32) as usize)
        };
        for t in &self.triangles {
            let [a, b, c] = t.map(|i| self.points[i]);
            let lo = a.truncate().min(b.truncate()).min(c.truncate());
            let hi = a.truncate().max(b.truncate()).max(c.truncate());
            for row in range(lo.y, hi.y, origin.y, step.y, rows) {
                for col in range(lo.x, hi.x, origin.x, step.x, columns) {
                    let p = origin + Vec2::new(col as f32 * step.x, row as f32 * step.y);
                    if let Some(w) = barycentric(p, a.truncate(), b.truncate(), c.truncate()) {
                        depth[row * columns + col] = Some(w.x * a.z + w.y * b.z + w.z * c.z);
                    }
                }
            }
        }
        depth
    }
}

/// Barycentric weights of `p` in triangle `a b c`, or `None` when `p` is outside (with a tolerance of 1e-6 of
/// the weights) or the triangle is degenerate.
fn barycentric(p: Vec2, a: Vec2, b: Vec2, c: Vec2) -> Option<Vec3> {
    let area = (b - a).perp_dot(c - a);
    if area.abs() < 1e-12 {
        return None;
    }
    let wa = (b - p).perp_dot(c - p) / area;
    let wb = (c - p).perp_dot(a - p) / area;
    let wc = 1.0 - wa - wb;
    (wa >= -1e-6 && wb >= -1e-6 && wc >= -1e-6).then_some(Vec3::new(wa, wb, wc))
}

/// Whether `p` lies strictly inside the circumcircle of the counter-clockwise triangle `a b c`.
fn in_circumcircle(p: Vec2, a: Vec2, b: Vec2, c: Vec2) -> bool {
    // The classic determinant, in f64: the landmarks are close together and f32 loses the sign.
    let [a, b, c, p] = [a, b, c, p].map(|v| (f64::from(v.x), f64::from(v.y)));
    let (ax, ay) = (a.0 - p.0, a.1 - p.1);
    let (bx, by) = (b.0 - p.0, b.1 - p.1);
    let (cx, cy) = (c.0 - p.0, c.1 - p.1);
    let det = (ax * ax + ay * ay) * (bx * cy - cx * by) - (bx * bx + by * by) * (ax * cy - cx * ay)
        + (cx * cx + cy * cy) * (ax * by - bx * ay);
    det > 0.0
}

fn counter_clockwise(points: &[Vec2], t: [usize; 3]) -> [usize; 3] {
    let [a, b, c] = t.map(|i| points[i]);
    if (b - a).perp_dot(c - a) < 0.0 {
        [t[0], t[2], t[1]]
    } else {
        t
    }
}

fn bowyer_watson(input: &[Vec2]) -> Vec<[usize; 3]> {
    let n = input.len();
    if n < 3 {
        return Vec::new();
    }
    let (lo, hi) = input.iter().fold(
        (Vec2::splat(f32::MAX), Vec2::splat(f32::MIN)),
        |(lo, hi), p| (lo.min(*p), hi.max(*p)),
    );
    let centre = (lo + hi) * 0.5;
    // Far enough that no circumcircle of points on the hull reaches a corner (else hull triangles go missing).
    let span = (hi - lo).max_element().max(1e-6) * 1e4;
    // Points 0..n are the input; n, n+1, n+2 the corners of a triangle far around them.
    let mut points = input.to_vec();
    points.extend([
        centre + Vec2::new(-span, -span),
        centre + Vec2::new(span, -span),
        centre + Vec2::new(0.0, span),
    ]);
    let mut triangles = vec![counter_clockwise(&points, [n, n + 1, n + 2])];
    for i in 0..n {
        let p = points[i];
        if input[..i].contains(&p) {
            continue;
        }
        let (bad, good): (Vec<[usize; 3]>, Vec<[usize; 3]>) = triangles
            .into_iter()
            .partition(|t| in_circumcircle(p, points[t[0]], points[t[1]], points[t[2]]));
        triangles = good;
        // The hole's boundary: edges of removed triangles that no other removed triangle shares.
        let edges: Vec<(usize, usize)> = bad
            .iter()
            .flat_map(|t| [(t[0], t[1]), (t[1], t[2]), (t[2], t[0])])
            .collect();
        for &(a, b) in &edges {
            let shared = edges.iter().any(|&(c, d)| (c, d) == (b, a));
            if !shared {
                triangles.push(counter_clockwise(&points, [a, b, i]));
            }
        }
    }
    triangles.retain(|t| {
        let [a, b, c] = t.map(|i| points[i]);
        t.iter().all(|&v| v < n) && (b - a).perp_dot(c - a) > 1e-12
    });
    triangles
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic scattered points (a jittered grid).
    fn scattered(count: usize) -> Vec<Vec3> {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        (0..count)
            .map(|i| {
                let x = (i % 22) as f32 + 0.8 * next();
                let y = (i / 22) as f32 + 0.8 * next();
                Vec3::new(x, y, x * 0.1 - y * 0.05)
            })
            .collect()
    }

    #[test]
    fn delaunay_has_empty_circumcircles_and_the_euler_count() {
        let points = scattered(468);
        let mesh = FaceMesh::delaunay(&points);
        let flat: Vec<Vec2> = points.iter().map(|p| p.truncate()).collect();
        for t in &mesh.triangles {
            let [a, b, c] = t.map(|i| flat[i]);
            assert!(
                (b - a).perp_dot(c - a) > 0.0,
                "{t:?} is not counter-clockwise"
            );
            for (i, p) in flat.iter().enumerate() {
                if !t.contains(&i) {
                    assert!(
                        !in_circumcircle(*p, a, b, c),
                        "point {i} inside the circle of {t:?}"
                    );
                }
            }
        }
        // It covers the convex hull: every boundary edge (used by one triangle) has all points on its inner side,
        // and with h boundary edges a triangulation of n points has 2n - 2 - h triangles.
        let edges: Vec<(usize, usize)> = mesh
            .triangles
            .iter()
            .flat_map(|t| [(t[0], t[1]), (t[1], t[2]), (t[2], t[0])])
            .collect();
        let boundary: Vec<&(usize, usize)> = edges
            .iter()
            .filter(|(a, b)| !edges.contains(&(*b, *a)))
            .collect();
        for &&(a, b) in &boundary {
            let (a, b) = (flat[a], flat[b]);
            assert!(
                flat.iter().all(|p| (b - a).perp_dot(*p - a) >= -1e-4),
                "concave boundary"
            );
        }
        assert_eq!(mesh.triangles.len(), 2 * points.len() - 2 - boundary.len());
    }

    #[test]
    fn depth_is_linear_inside_and_exact_at_vertices() {
        let points = scattered(100);
        let mesh = FaceMesh::delaunay(&points);
        // The points lie on a plane, so the interpolated depth is that plane everywhere inside.
        for p in &points {
            let z = mesh.depth_at(p.truncate()).expect("a vertex is inside");
            assert!((z - p.z).abs() < 1e-4, "{z} vs {}", p.z);
        }
        let inside = Vec2::new(5.3, 2.7);
        let z = mesh.depth_at(inside).expect("inside the hull");
        assert!((z - (5.3 * 0.1 - 2.7 * 0.05)).abs() < 1e-4, "{z}");
        assert_eq!(mesh.depth_at(Vec2::new(-50.0, 0.0)), None);
        // The grid version agrees with the point version, rows going down like an image.
        let (origin, step) = (Vec2::new(-1.0, 6.0), Vec2::new(0.25, -0.25));
        let grid = mesh.depth_grid(100, 30, origin, step);
        for row in 0..30 {
            for col in 0..100 {
                let p = origin + Vec2::new(col as f32 * step.x, row as f32 * step.y);
                let (a, b) = (grid[row * 100 + col], mesh.depth_at(p));
                assert_eq!(a.is_some(), b.is_some(), "{p}");
                assert!((a.unwrap_or(0.0) - b.unwrap_or(0.0)).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn degenerate_inputs_give_no_or_few_triangles() {
        assert!(FaceMesh::delaunay(&[]).triangles.is_empty());
        assert!(
            FaceMesh::delaunay(&[Vec3::ZERO, Vec3::X])
                .triangles
                .is_empty()
        );
        let line: Vec<Vec3> = (0..5).map(|i| Vec3::new(i as f32, 0.0, 0.0)).collect();
        assert!(FaceMesh::delaunay(&line).triangles.is_empty());
        let mut twice = scattered(30);
        twice.extend(scattered(30));
        let mesh = FaceMesh::delaunay(&twice);
        assert!(mesh.triangles.iter().flatten().all(|&i| i < 30));
    }
}
