//! Motion: expression coefficients (ARKit weights + head pose) and what turns them into a motion code.

mod coefficients;
mod track;

pub use coefficients::{ARKIT_NAMES, FaceCoefficients};
pub use track::MotionTrack;
pub(crate) use track::sample_motion_tracks;
