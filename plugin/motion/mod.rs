//! Motion: expression coefficients (ARKit weights + head pose) and what turns them into a motion code.

mod coefficients;

pub use coefficients::{ARKIT_NAMES, FaceCoefficients};
