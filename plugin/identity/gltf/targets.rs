//! The morph targets: from the head's motion bases ([`arkit_basis_map`], [`BasisFields`]) and hand-built from
//! landmark regions ([`HandBuilt`]).

use bevy::math::{Vec2, Vec3};

use crate::contract::ARKIT_WEIGHT_COUNT;
use crate::identity::head_asset::{BASIS_COMPONENTS, HeadAsset, PLANES};
use crate::identity::landmarks::landmark_index as lm;
use crate::identity::maps::smoothstep;
use crate::identity::rig::{bases, bump};
use crate::motion::{ARKIT_NAMES, FaceCoefficients};

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

/// The head asset's motion-basis displacement fields as the renderer reads them, in metres.
pub(super) struct BasisFields {
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
    pub(super) fn new(asset: &HeadAsset) -> Self {
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
    pub(super) fn forward(&self, k: usize, p: Vec3) -> Option<Vec3> {
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
pub(super) struct HandBuilt<'a> {
    points: &'a [Vec3],
    mouth_centre: Vec3,
    mouth_half_width: f32,
}

impl<'a> HandBuilt<'a> {
    pub(super) fn new(points: &'a [Vec3]) -> Self {
        let mouth_centre = (points[lm::UPPER_LIP] + points[lm::LOWER_LIP]) * 0.5;
        let mouth_half_width = points[lm::MOUTH_LEFT].distance(points[lm::MOUTH_RIGHT]) * 0.5;
        Self {
            points,
            mouth_centre,
            mouth_half_width,
        }
    }

    pub(super) fn target(&self, name: &str) -> Option<Vec<Vec3>> {
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
    use crate::identity::landmarks::LANDMARK_COUNT;

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
