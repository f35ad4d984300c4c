//! The per-head, per-frame parameters of the volume renderer, shared by the GPU pass and the CPU reference.

use bevy::math::{Mat3, Quat, URect, UVec2, Vec2, Vec3};
use bytemuck::{Pod, Zeroable};

use crate::identity::layers::{NECK_FOLLOW, NECK_FRONT};
use crate::identity::{HeadAsset, Mouth, PortraitLayers};

/// Transmittance below which a ray stops marching (early termination).
pub const STOP_TRANSMITTANCE: f32 = 1e-3;
/// With the portrait display the head's density is this many times higher, so that its own edge is sharp and the
/// face plate's matte (the photo's own outline) feathers it.
pub const PORTRAIT_DENSITY_FACTOR: f32 = 20.0;

/// A pinhole camera looking at a head, in head space (metres; +Y up, the face looks down +Z).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadCamera {
    /// Camera position.
    pub position: Vec3,
    /// World-up reference for the camera's roll (usually +Y).
    pub up: Vec3,
    /// Point the camera looks at.
    pub target: Vec3,
    /// Vertical field of view, radians.
    pub fov_y: f32,
}

impl HeadCamera {
    /// A camera at `position` (head space) aimed at the head's centre, with the field of view that just frames a
    /// bounding sphere of `radius` metres. A position inside the sphere is pushed out to its surface (plus 5 %).
    pub fn framing(position: Vec3, radius: f32) -> Self {
        let distance = position.length().max(radius * 1.05);
        let position = position.normalize_or(Vec3::Z) * distance;
        Self {
            position,
            up: Vec3::Y,
            target: Vec3::ZERO,
            fov_y: 2.0 * (radius / distance).min(0.999).asin(),
        }
    }

    /// [`HeadCamera::framing`] from a point on a sphere around the head's centre: `yaw` turns around +Y (0 = in
    /// front of the face, positive = towards +X, the head's left), `pitch` raises it (radians); `distance` in metres.
    pub fn orbit(yaw: f32, pitch: f32, distance: f32, radius: f32) -> Self {
        let direction = Vec3::new(
            yaw.sin() * pitch.cos(),
            pitch.sin(),
            yaw.cos() * pitch.cos(),
        );
        Self::framing(direction * distance, radius)
    }

    /// The same view of a head that has turned by `rotation` and moved by `translation` (metres) from its rest
    /// pose: the camera goes the opposite way around the head's centre, which is what the head's own motion looks
    /// like from a fixed camera.
    pub fn posed(&self, rotation: Quat, translation: Vec3) -> Self {
        let undo = rotation.inverse();
        Self {
            position: undo * (self.position - translation),
            up: undo * self.up,
            target: undo * (self.target - translation),
            fov_y: self.fov_y,
        }
    }

    /// Side of the square the camera's image covers in the plane through the head's centre, metres (the size of a
    /// quad that shows the image at the head's true size).
    pub fn image_side_at_target(&self) -> f32 {
        2.0 * (self.target - self.position).length() * (self.fov_y * 0.5).tan()
    }

    /// The camera's right, up and forward axes (orthonormal). Falls back to +Z as the up reference when the view
    /// direction is parallel to `up`.
    pub fn axes(&self) -> Mat3 {
        let forward = (self.target - self.position).normalize_or(Vec3::NEG_Z);
        let mut right = forward.cross(self.up);
        if right.length_squared() < 1e-10 {
            right = forward.cross(Vec3::Z);
        }
        let right = right.normalize();
        let up = right.cross(forward);
        Mat3::from_cols(right, up, forward)
    }
}

/// The camera of the portrait display: the photo's own (the nearly orthographic camera the head was lifted from
/// the portrait with), showing the plates' `crop`.
pub fn portrait_view(layers: &PortraitLayers, crop: URect) -> HeadCamera {
    crate::identity::quality::portrait_camera(&layers.frame, crop.min, crop.size())
}

/// A head's rigid motion (`rotation`, `translation` in metres) about the neck's `pivot` instead of the head's
/// centre, as [`HeadCamera::posed`] takes it: the rotation, and the translation that keeps the pivot in place.
pub fn posed_about_pivot(rotation: Quat, translation: Vec3, pivot: Vec3) -> (Quat, Vec3) {
    (rotation, translation + pivot - rotation * pivot)
}

/// The uniform block of `shaders/head_march.wgsl` (`struct March`), byte for byte.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct MarchUniform {
    /// Camera position (xyz, metres) and tan(vertical fov / 2).
    pub origin: [f32; 4],
    /// Camera right axis and width / height.
    pub right: [f32; 4],
    /// Camera up axis and the step length along rays (metres).
    pub up: [f32; 4],
    /// Camera forward axis and the early-termination transmittance.
    pub forward: [f32; 4],
    /// Half size of the head's box (metres); w: negative to take every sample ([`MarchUniform::without_skipping`]),
    /// else 0.
    pub half_extent: [f32; 4],
    /// Width, height (pixels), steps per ray, tri-plane resolution.
    pub size: [u32; 4],
    /// Feature channels, decoder hidden width, motion basis count, motion-basis resolution.
    pub shape: [u32; 4],
    /// The head's mouth ([`crate::identity::Mouth::to_array`]).
    pub mouth: [f32; 4],
    /// The portrait display ([`MarchUniform::over_portrait`]): plate width and height, 1 to composite over the
    /// plates (0: the head alone); and 1 to decode with the dense MLP even where a closed form exists
    /// ([`MarchUniform::with_dense_decoder`]).
    pub plates: [u32; 4],
    /// Plate point of output pixel (0, 0)'s corner and plate pixels per output pixel, x and y.
    pub crop: [f32; 4],
    /// Plate point of the head's origin (x, y), plate pixels per metre, and the factor on the head's density.
    pub frame: [f32; 4],
    /// The neck in plate pixels: jaw row, ring row, middle column, half width.
    pub neck: [f32; 4],
    /// First row of the affine map that takes a plate point at the neck's top where the head's motion moves it,
    /// and how far the neck follows ([`NECK_FOLLOW`]).
    pub neck_x: [f32; 4],
    /// Second row of that map, and the sine of the head's turn from the photo's pose.
    pub neck_y: [f32; 4],
    /// How much further the hair around the head moves than the neck's top (plate pixels, x and y): it lies at
    /// about the depth of the head's pivot, behind the neck's front, where a turn moves the head's outline least;
    /// unused, unused.
    pub hair: [f32; 4],
    /// The subject's left eye's opening ([`Eye::to_array`](crate::identity::Eye::to_array)): centre x, y, half
    /// width, half height (metres).
    pub eye_left: [f32; 4],
    /// The subject's right eye's opening, likewise.
    pub eye_right: [f32; 4],
    /// The eyeballs' radii (left, right; metres), unused, unused.
    pub eyeballs: [f32; 4],
    /// How the eyes are turned ([`MarchUniform::with_gaze`]): left eye's yaw and pitch, right eye's yaw and
    /// pitch, radians.
    pub gaze: [f32; 4],
}

impl MarchUniform {
    /// Parameters to render `asset` seen by `camera` into a `width × height` image with `steps` samples along the
    /// longest ray through the head's box.
    pub fn new(
        asset: &HeadAsset,
        camera: &HeadCamera,
        width: u32,
        height: u32,
        steps: u32,
    ) -> Self {
        let axes = camera.axes();
        let steps = steps.max(1);
        let step = 2.0 * asset.half_extent.length() / steps as f32;
        let tan_half = (camera.fov_y * 0.5).tan();
        let aspect = width.max(1) as f32 / height.max(1) as f32;
        let p = camera.position;
        Self {
            origin: [p.x, p.y, p.z, tan_half],
            right: axes.x_axis.extend(aspect).to_array(),
            up: axes.y_axis.extend(step).to_array(),
            forward: axes.z_axis.extend(STOP_TRANSMITTANCE).to_array(),
            half_extent: asset.half_extent.extend(0.0).to_array(),
            size: [width, height, steps, asset.triplane_resolution as u32],
            shape: [
                asset.channels as u32,
                asset.decoder.hidden as u32,
                asset.basis_count as u32,
                asset.motion_resolution as u32,
            ],
            mouth: asset.mouth.to_array(),
            plates: [0; 4],
            crop: [0.0; 4],
            frame: [0.0, 0.0, 0.0, 1.0],
            neck: [0.0; 4],
            neck_x: [1.0, 0.0, 0.0, 0.0],
            neck_y: [0.0, 1.0, 0.0, 0.0],
            hair: [0.0; 4],
            eye_left: asset.eyes.left.to_array(),
            eye_right: asset.eyes.right.to_array(),
            eyeballs: [asset.eyes.left.radius, asset.eyes.right.radius, 0.0, 0.0],
            gaze: [0.0; 4],
        }
    }

    /// The same render with every sample taken (no empty-space skipping, [`super::empty_space`]): the same
    /// picture, slower; for benchmarks and checks.
    pub fn without_skipping(mut self) -> Self {
        self.half_extent[3] = -1.0;
        self
    }

    /// The same render with the eyes turned: `gaze` is the left eye's yaw (towards +x, the subject's left) and
    /// pitch (up), then the right eye's, radians (see [`Eye`](crate::identity::Eye) and
    /// [`FaceCoefficients::eye_turns`](crate::FaceCoefficients::eye_turns)).
    pub fn with_gaze(mut self, gaze: [f32; 4]) -> Self {
        self.gaze = gaze.map(|v| if v.is_finite() { v } else { 0.0 });
        self
    }

    /// The same render decoded by the decoder's dense MLP even for a constructed head, which is otherwise decoded
    /// in closed form ([`crate::identity::construct::closed_form_decode`]): the same picture, slower; for
    /// benchmarks and checks.
    pub fn with_dense_decoder(mut self) -> Self {
        self.plates[3] = 1;
        self
    }

    /// Whether this render decodes constructed heads in closed form (see [`MarchUniform::with_dense_decoder`]).
    pub fn closed_form_allowed(&self) -> bool {
        self.plates[3] == 0
    }

    /// The same render with `mouth` instead of the asset's own (e.g. [`HeadAsset::mouth_for`] a neutral base).
    pub fn with_mouth(mut self, mouth: Mouth) -> Self {
        self.mouth = mouth.to_array();
        self
    }

    /// The same render composited over the photo's `layers` (the portrait display): the head coloured from the
    /// face plate and weighted by its matte, over the body plate (its neck's top following the head's `motion`:
    /// rotation, and translation in metres, about the neck's pivot) over the background plate. `crop` is the part
    /// of the plates the image shows; the camera must be [`portrait_view`]'s for it, posed by
    /// [`posed_about_pivot`] with the same motion.
    pub fn over_portrait(
        mut self,
        layers: &PortraitLayers,
        crop: URect,
        motion: (Quat, Vec3),
    ) -> Self {
        let size = crop.size().max(UVec2::ONE).as_vec2();
        let per_pixel = size / Vec2::new(self.width().max(1) as f32, self.height().max(1) as f32);
        let frame = layers.frame;
        let neck = layers.neck;
        // Where the head's motion takes a plate point on the neck's front.
        let (rotation, translation) = motion;
        let moved_at = |q: Vec2, depth: f32| {
            let p = frame.image_to_head(q).extend(depth);
            let p = rotation * (p - neck.pivot) + neck.pivot + translation;
            frame.to_image(p.x, p.y)
        };
        let moved = |q: Vec2| moved_at(q, neck.pivot.z + NECK_FRONT);
        let c = moved(Vec2::ZERO);
        let chin = Vec2::new(neck.centre_x, neck.jaw_y);
        let hair = moved_at(chin, neck.pivot.z) - moved(chin);
        let (a, b) = (moved(Vec2::X) - c, moved(Vec2::Y) - c);
        self.plates = [layers.width, layers.height, 1, self.plates[3]];
        self.crop = [
            crop.min.x as f32,
            crop.min.y as f32,
            per_pixel.x,
            per_pixel.y,
        ];
        self.frame = [
            frame.origin.x,
            frame.origin.y,
            1.0 / frame.scale,
            PORTRAIT_DENSITY_FACTOR,
        ];
        self.neck = [neck.jaw_y, neck.ring_y, neck.centre_x, neck.half_width];
        self.neck_x = [a.x, b.x, c.x, NECK_FOLLOW];
        let turn = (rotation.w.abs().min(1.0).acos() * 2.0).sin().abs();
        self.neck_y = [a.y, b.y, c.y, turn];
        self.hair = [hair.x, hair.y, 0.0, 0.0];
        self
    }

    /// Whether this render is composited over a portrait's plates.
    pub fn is_portrait(&self) -> bool {
        self.plates[2] == 1
    }

    /// Image width in pixels.
    pub fn width(&self) -> u32 {
        self.size[0]
    }

    /// Image height in pixels.
    pub fn height(&self) -> u32 {
        self.size[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turned_head_is_seen_like_a_camera_turned_the_other_way() {
        let camera = HeadCamera::orbit(0.0, 0.0, 0.8, 0.2);
        let turned = camera.posed(Quat::from_rotation_y(0.5), Vec3::ZERO);
        let expected = HeadCamera::orbit(-0.5, 0.0, 0.8, 0.2);
        assert!(turned.position.distance(expected.position) < 1e-5);
        assert!(turned.up.distance(Vec3::Y) < 1e-6);
        // Nodding down (positive pitch) is a camera that rises over the head.
        let nodded = camera.posed(Quat::from_rotation_x(0.3), Vec3::ZERO);
        assert!(nodded.position.y > 0.2, "{nodded:?}");
        // Moving the head right moves the camera left relative to it, target included.
        let moved = camera.posed(Quat::IDENTITY, Vec3::new(0.05, 0.0, 0.0));
        assert_eq!(moved.target, Vec3::new(-0.05, 0.0, 0.0));
        assert_eq!(moved.position.x, -0.05);
    }
}
