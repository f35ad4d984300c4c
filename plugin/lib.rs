//! # bevy_talking_head
//!
//! Audio-driven, emotion-aware 3D talking heads for [Bevy](https://bevy.org): a portrait, a voice clip (or a live
//! audio stream) and an emotion become a head that talks, rendered in 3D from any camera angle by a volume
//! renderer on the GPU (after Qiu et al., *Audio-Driven Emotion-Aware 3D Talking Face Generation from Single
//! Image*).
//!
//! ```no_run
//! use bevy::prelude::*;
//! use bevy_talking_head::prelude::*;
//!
//! App::new()
//!     .add_plugins((DefaultPlugins, TalkingHeadPlugin))
//!     .add_systems(Startup, |mut commands: Commands, assets: Res<AssetServer>| {
//!         commands.spawn((
//!             TalkingHead::new(assets.load("portraits/astronaut.png")).with_emotion(Emotion::Happy, 0.8),
//!             Speech::clip(assets.load("speech/hello.ogg")),
//!             Transform::from_xyz(0.0, 1.6, 0.0),
//!         ));
//!     })
//!     .run();
//! ```
//!
//! Each head renders into its [`TalkingHeadTexture`] (shown on a billboard quad by default, usable in UI or
//! custom materials), reports [`TalkingHeadStatus`], and publishes its [`FaceCoefficients`] (52 ARKit weights +
//! head pose) every frame.
#![deny(missing_docs)]

pub mod audio;
pub mod contract;
mod display;
mod head;
pub mod identity;
pub mod inference;
pub mod motion;
pub mod offline;
mod plugin;
pub mod render;

pub use audio::clock::{ClockSource, PlaybackClock, Speech};
pub use display::HeadBust;
pub use head::{
    Emotion, HeadDisplay, HeadSettings, HeadSource, HeadView, LookAt, MotionCode, PortraitCrop,
    Quality, TalkingHead, TalkingHeadStatus, TalkingHeadTexture,
};
pub use identity::{ExpressionBase, HeadAsset, PortraitLayers};
pub use inference::Models;
pub use motion::{
    ArkitFace, EmotionLibrary, FaceCoefficients, MotionSettings, MotionTrack, SpeechFace,
    SpeechMotion,
};
pub use plugin::{HeadOutput, HeadScreenFit, TalkingHeadPlugin, TalkingHeadSystems};

/// Everything a game needs in one import.
pub mod prelude {
    pub use crate::audio::clock::{PlaybackClock, Speech};
    pub use crate::audio::voice::{SpatialVoice, SpeechVolume};
    pub use crate::head::{
        Emotion, HeadDisplay, HeadSettings, HeadView, LookAt, MotionCode, PortraitCrop, Quality,
        TalkingHead, TalkingHeadStatus, TalkingHeadTexture,
    };
    pub use crate::identity::{ExpressionBase, HeadAsset, PortraitLayers};
    pub use crate::motion::{
        ArkitFace, EmotionLibrary, FaceCoefficients, MotionSettings, MotionTrack,
    };
    pub use crate::plugin::{TalkingHeadPlugin, TalkingHeadSystems};
}
