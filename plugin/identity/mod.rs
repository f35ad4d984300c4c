//! Identity: what one portrait becomes — the head asset the renderer draws.

mod head_asset;
pub mod procedural;

pub use head_asset::{
    BASIS_COMPONENTS, DECODER_OUTPUTS, DecoderMlp, HeadAsset, HeadAssetError, MAX_CHANNELS,
    MAX_HIDDEN, PLANES,
};
