//! The components a game puts on a head entity, and the ones the plugin maintains on it.

use bevy::prelude::*;
use serde::{Deserialize, Serialize};

use crate::identity::{ExpressionBase, HeadAsset};
use crate::motion::{FaceCoefficients, MotionSettings, MotionTrack, SpeechFace};

/// The eight emotions of the MEAD corpus, as the paper uses them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Reflect, Serialize, Deserialize)]
pub enum Emotion {
    /// No particular emotion.
    #[default]
    Neutral,
    /// Anger.
    Angry,
    /// Contempt.
    Contempt,
    /// Disgust.
    Disgusted,
    /// Fear.
    Fear,
    /// Happiness.
    Happy,
    /// Sadness.
    Sad,
    /// Surprise.
    Surprised,
}

impl Emotion {
    /// All eight, in MEAD's order.
    pub const ALL: [Emotion; 8] = [
        Emotion::Neutral,
        Emotion::Angry,
        Emotion::Contempt,
        Emotion::Disgusted,
        Emotion::Fear,
        Emotion::Happy,
        Emotion::Sad,
        Emotion::Surprised,
    ];

    /// The lower-case name used in files and on command lines (`"happy"`).
    pub fn name(self) -> &'static str {
        match self {
            Emotion::Neutral => "neutral",
            Emotion::Angry => "angry",
            Emotion::Contempt => "contempt",
            Emotion::Disgusted => "disgusted",
            Emotion::Fear => "fear",
            Emotion::Happy => "happy",
            Emotion::Sad => "sad",
            Emotion::Surprised => "surprised",
        }
    }
}

impl std::str::FromStr for Emotion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Emotion::ALL
            .into_iter()
            .find(|e| e.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<_> = Emotion::ALL.iter().map(|e| e.name()).collect();
                format!(
                    "unknown emotion '{s}': expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Where a head's identity comes from.
#[derive(Clone, Debug, Reflect)]
pub enum HeadSource {
    /// A portrait image, turned into a head by the identity pipeline.
    Portrait(Handle<Image>),
    /// A head asset that is already built (cached, procedural or made by a tool).
    Asset(Handle<HeadAsset>),
}

/// From which direction the head is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Reflect)]
pub enum HeadView {
    /// Render the head as the active 3D camera sees it (free view); the quad turns to face that camera.
    FollowCamera,
    /// Render from a fixed direction around the head: `yaw` about +Y (0 = facing the viewer, positive = the
    /// head's left), `pitch` upwards, both radians, from `distance` metres.
    Orbit {
        /// Turn around the vertical axis, radians.
        yaw: f32,
        /// Elevation, radians.
        pitch: f32,
        /// Distance from the head's centre, metres.
        distance: f32,
    },
}

/// How the rendered image is shown in the scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Reflect)]
pub enum HeadDisplay {
    /// A quad at the head's position that always faces the camera.
    Billboard,
    /// No quad: use [`TalkingHeadTexture`] yourself (UI, custom material, offline rendering).
    TextureOnly,
    /// The whole photo talks: the head rendered at the photo's own camera and composited over the photo's body and
    /// background ([`crate::identity::layers`]) into [`TalkingHeadTexture`], framed by the crop at its aspect
    /// ([`HeadSettings::resolution`] is the long side). The head's pose turns it about its neck, the neck's top
    /// follows a little; the view setting is not used. No quad: show the texture in UI or a material. Needs a
    /// head made from a portrait ([`TalkingHead::new`]); a head from an asset is drawn alone.
    Portrait(PortraitCrop),
    /// A billboard head standing on a bust made from the photo's neck and shoulders
    /// ([`crate::identity::bust`]), for heads in 3D scenes: the head turns about its neck, the neck's top follows a
    /// little, and from any side the head has a body under it. Needs a head made from a portrait
    /// ([`TalkingHead::new`]); a head from an asset, or a photo with no neck below the chin, shows as a billboard
    /// alone (with a warning).
    Bust,
}

impl HeadDisplay {
    /// Whether this display needs the photo's layers ([`crate::identity::layers`]).
    pub fn uses_layers(self) -> bool {
        matches!(self, HeadDisplay::Portrait(_) | HeadDisplay::Bust)
    }

    /// Whether the head is shown on a camera-facing quad.
    pub fn has_quad(self) -> bool {
        matches!(self, HeadDisplay::Billboard | HeadDisplay::Bust)
    }
}

/// Which part of the photo a [`HeadDisplay::Portrait`] shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Reflect)]
pub enum PortraitCrop {
    /// The head and shoulders, 4:5, as a dialogue box or a presenter's frame shows them.
    #[default]
    HeadAndShoulders,
    /// The whole photo.
    Whole,
    /// A box in the portrait's pixels (clamped to the photo).
    Pixels(URect),
}

/// Per-head rendering settings.
#[derive(Clone, Copy, Debug, PartialEq, Reflect)]
pub struct HeadSettings {
    /// Width and height of the rendered image, pixels (with [`HeadDisplay::Portrait`], its long side). With a quad
    /// in a 3D scene ([`HeadDisplay::Billboard`], [`HeadDisplay::Bust`]) the largest: the image is fitted to the
    /// head's size on screen.
    pub resolution: u32,
    /// With a quad in a 3D scene, the smallest image side, pixels: the image is the head's size on the active
    /// camera's screen (rounded up to 32 pixels) between this and [`resolution`](Self::resolution); the same value
    /// as `resolution` keeps the size fixed. A head with a quad that is off screen, behind the camera or hidden is
    /// not drawn at all.
    pub min_resolution: u32,
    /// Samples along the longest ray through the head's box.
    pub steps_per_ray: u32,
    /// Viewing direction.
    pub view: HeadView,
    /// Display in the scene.
    pub display: HeadDisplay,
    /// The face the head rests in: [`ExpressionBase::Neutral`] (the photo's smile or parted lips undone, so the
    /// emotion asked for is the one people see) or [`ExpressionBase::Photo`] (the photo's own face).
    pub expression_base: ExpressionBase,
}

/// The presets' [`HeadSettings::min_resolution`].
pub const MIN_FITTED_RESOLUTION: u32 = 64;

/// Quality presets for [`HeadSettings`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quality {
    /// 128², 48 samples per ray: many heads or software rendering.
    Low,
    /// 256², 96 samples per ray.
    Medium,
    /// 512², 160 samples per ray: a close-up presenter.
    High,
}

impl HeadSettings {
    /// Settings of a quality preset, following the camera, shown as a billboard.
    pub fn preset(quality: Quality) -> Self {
        let (resolution, steps_per_ray) = match quality {
            Quality::Low => (128, 48),
            Quality::Medium => (256, 96),
            Quality::High => (512, 160),
        };
        Self {
            resolution,
            min_resolution: MIN_FITTED_RESOLUTION.min(resolution),
            steps_per_ray,
            view: HeadView::FollowCamera,
            display: HeadDisplay::Billboard,
            expression_base: ExpressionBase::Neutral,
        }
    }
}

impl Default for HeadSettings {
    fn default() -> Self {
        Self::preset(Quality::Medium)
    }
}

/// A talking head. Add it with a [`crate::Speech`] or [`crate::audio::SpeechStream`] to make it speak.
#[derive(Component, Clone, Debug, Reflect)]
#[require(
    TalkingHeadStatus,
    FaceCoefficients,
    SpeechFace,
    MotionCode,
    MotionTrack,
    Transform,
    Visibility
)]
pub struct TalkingHead {
    /// Where the identity comes from.
    pub source: HeadSource,
    /// The emotion shown (one of the eight built in).
    pub emotion: Emotion,
    /// An emotion of the [`crate::motion::EmotionLibrary`] by name (e.g. one added from your own RON); when set
    /// it is shown instead of [`emotion`](Self::emotion).
    pub custom_emotion: Option<String>,
    /// Strength of the emotion, 0..1.
    pub intensity: f32,
    /// Rendering settings.
    pub settings: HeadSettings,
    /// Scales of head motion, expression and blinks, and the emotion blend time.
    pub motion: MotionSettings,
}

/// Where a head's eyes look: at another entity (the player's camera, whoever speaks) or at a point in the world.
///
/// The eyes turn towards the target as far as eyes turn ([`crate::motion::EYE_TURN`] at most; a target further
/// aside or behind gets the eyes' extreme), with the usual saccades and blinks around it. Without this component
/// the eyes rest ahead. The head itself does not turn: turn its `Transform` for that.
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub enum LookAt {
    /// The entity's `GlobalTransform` translation.
    Entity(Entity),
    /// A point, world space.
    Point(Vec3),
}

impl TalkingHead {
    /// A head made from a portrait.
    pub fn new(portrait: Handle<Image>) -> Self {
        Self::with_source(HeadSource::Portrait(portrait))
    }

    /// A head from an already built head asset.
    pub fn from_asset(asset: Handle<HeadAsset>) -> Self {
        Self::with_source(HeadSource::Asset(asset))
    }

    fn with_source(source: HeadSource) -> Self {
        Self {
            source,
            emotion: Emotion::Neutral,
            custom_emotion: None,
            intensity: 1.0,
            settings: HeadSettings::default(),
            motion: MotionSettings::default(),
        }
    }

    /// Sets the motion settings (e.g. [`MotionSettings::still`]).
    ///
    /// ```
    /// use bevy::prelude::*;
    /// use bevy_talking_head::prelude::*;
    ///
    /// # fn spawn(mut commands: Commands, assets: Res<AssetServer>) {
    /// // A calm newsreader: half the head motion, stronger expressions, fewer blinks, slow emotion changes.
    /// commands.spawn((
    ///     TalkingHead::new(assets.load("portraits/astronaut.png"))
    ///         .with_emotion(Emotion::Neutral, 1.0)
    ///         .with_motion(MotionSettings {
    ///             head_motion_scale: 0.5,
    ///             expression_scale: 1.2,
    ///             blink_rate: 0.7,
    ///             emotion_blend_secs: 1.5,
    ///             saccades: 0.5,
    ///         }),
    ///     Speech::clip(assets.load("speech/hello.ogg")),
    /// ));
    /// # }
    /// // Later, in any system: blends to the new emotion over `emotion_blend_secs`.
    /// fn cheer_up(mut heads: Query<&mut TalkingHead>) {
    ///     for mut head in &mut heads {
    ///         head.set_emotion(Emotion::Happy, 0.8);
    ///     }
    /// }
    /// # bevy::ecs::system::assert_is_system(spawn);
    /// # bevy::ecs::system::assert_is_system(cheer_up);
    /// ```
    pub fn with_motion(mut self, motion: MotionSettings) -> Self {
        self.motion = motion;
        self
    }

    /// Shows an emotion of the [`crate::motion::EmotionLibrary`] by name (an unknown name shows neutral, with a
    /// warning naming the known ones); intensity as in [`set_emotion`](Self::set_emotion).
    pub fn set_custom_emotion(&mut self, name: impl Into<String>, intensity: f32) {
        self.custom_emotion = Some(name.into());
        self.intensity = clamp_intensity(intensity);
    }

    /// The name of the emotion shown: the custom one if set, else [`Emotion::name`].
    pub fn emotion_name(&self) -> &str {
        self.custom_emotion
            .as_deref()
            .unwrap_or(self.emotion.name())
    }

    /// Sets the emotion and its intensity (clamped to 0..1; a non-finite intensity counts as 0).
    pub fn with_emotion(mut self, emotion: Emotion, intensity: f32) -> Self {
        self.set_emotion(emotion, intensity);
        self
    }

    /// Sets the rendering settings.
    pub fn with_settings(mut self, settings: HeadSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Changes the emotion at run time (intensity clamped to 0..1; a non-finite intensity counts as 0).
    pub fn set_emotion(&mut self, emotion: Emotion, intensity: f32) {
        self.emotion = emotion;
        self.custom_emotion = None;
        self.intensity = clamp_intensity(intensity);
    }
}

/// Intensity clamped to 0..1 (a non-finite one counts as 0), with a warning when it was outside.
fn clamp_intensity(intensity: f32) -> f32 {
    let clamped = if intensity.is_finite() {
        intensity.clamp(0.0, 1.0)
    } else {
        0.0
    };
    if clamped != intensity {
        warn!("talking head: emotion intensity {intensity} is outside 0..1; using {clamped}");
    }
    clamped
}

/// Where a head stands: loading its assets, ready to render, or failed (with the reason, also logged).
#[derive(Component, Clone, Debug, Default, PartialEq, Reflect)]
pub enum TalkingHeadStatus {
    /// Assets or models are still loading.
    #[default]
    Loading,
    /// The head renders.
    Ready,
    /// The head cannot be shown; the text says why and what to do.
    Failed(String),
}

/// The image a head is rendered into (`Rgba16Float`: premultiplied alpha, linear colour). Use it in UI or your own
/// materials (with premultiplied alpha blending).
#[derive(Component, Clone, Debug, Reflect)]
pub struct TalkingHeadTexture(pub Handle<Image>);

/// The motion code: the weights of the head asset's motion bases this frame.
///
/// The motion encoder writes it from the expression coefficients; set it yourself to drive the bases directly.
#[derive(Component, Clone, Debug, Default, PartialEq, Reflect)]
pub struct MotionCode(pub Vec<f32>);
