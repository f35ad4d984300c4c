//! How a head's voice sounds where it plays: its level ([`SpeechVolume`]) and, with a [`SpatialVoice`], its place
//! in the scene relative to the listener. The same mix goes to a clip's kira instance and to an audible stream's
//! sound.

use bevy::prelude::*;
use kira::Decibels;

/// How loud a head's voice plays (its [`Speech`](super::clock::Speech) clip or audible
/// [`SpeechStream`](super::SpeechStream)), in decibels relative to the audio as given; without it, 0 dB. A change
/// applies while the voice plays, within about 10 ms. Only the sound changes: the clock and the motion run the same
/// at any volume, muted included.
#[derive(Component, Clone, Copy, Debug, PartialEq, Reflect)]
pub struct SpeechVolume {
    decibels: f32,
}

impl SpeechVolume {
    /// The quietest setting, silence (kira's silence level).
    pub const MIN_DECIBELS: f32 = -60.0;
    /// The loudest setting, +24 dB (16 times the amplitude).
    pub const MAX_DECIBELS: f32 = 24.0;
    /// No sound.
    pub const MUTED: Self = Self {
        decibels: Self::MIN_DECIBELS,
    };

    /// `decibels` relative to the audio, clamped to [`Self::MIN_DECIBELS`]..=[`Self::MAX_DECIBELS`]; NaN gives
    /// 0 dB (unchanged).
    pub fn new(decibels: f32) -> Self {
        Self {
            decibels: clamp_decibels(decibels),
        }
    }

    /// The setting in decibels.
    pub fn decibels(&self) -> f32 {
        self.decibels
    }

    /// The linear gain applied to the samples: 1 at 0 dB, 0 when muted.
    pub fn amplitude(&self) -> f32 {
        Decibels(self.decibels).as_amplitude()
    }
}

impl Default for SpeechVolume {
    fn default() -> Self {
        Self::new(0.0)
    }
}

/// Places a head's voice in the scene: it fades with the distance from the listener (the entity with
/// bevy_kira_audio's [`SpatialAudioReceiver`](bevy_kira_audio::prelude::SpatialAudioReceiver), usually the camera),
/// by 60 dB over `radius` metres (silent from there on), and it is panned towards the listener's side of the head.
/// This is bevy_kira_audio's spatial law, applied by this plugin to clips and audible streams alike, on top of
/// the head's [`SpeechVolume`]. Without exactly one listener the voice plays as if at the listener.
#[derive(Component, Clone, Copy, Debug, PartialEq, Reflect)]
pub struct SpatialVoice {
    radius: f32,
}

impl SpatialVoice {
    /// bevy_kira_audio's default radius, 25 m.
    pub const DEFAULT_RADIUS: f32 = 25.0;

    /// Silent from `radius` metres on; a radius that is not a positive number gives [`Self::DEFAULT_RADIUS`].
    pub fn new(radius: f32) -> Self {
        let radius = if radius.is_finite() && radius > 0.0 {
            radius
        } else {
            Self::DEFAULT_RADIUS
        };
        Self { radius }
    }

    /// The distance at which the voice falls silent, metres.
    pub fn radius(&self) -> f32 {
        self.radius
    }
}

impl Default for SpatialVoice {
    fn default() -> Self {
        Self::new(Self::DEFAULT_RADIUS)
    }
}

fn clamp_decibels(decibels: f32) -> f32 {
    if decibels.is_nan() {
        0.0
    } else {
        decibels.clamp(SpeechVolume::MIN_DECIBELS, SpeechVolume::MAX_DECIBELS)
    }
}

/// What a head's voice is played with: its level in decibels (volume plus distance) and its panning, −1 (left)
/// to 1 (right).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub(crate) struct VoiceMix {
    pub(crate) decibels: f32,
    pub(crate) panning: f32,
}

impl VoiceMix {
    /// The mix of a head with `volume`, placed by `spatial` at `head` (its global transform) and heard by
    /// `listener`.
    pub(crate) fn of(
        volume: Option<&SpeechVolume>,
        spatial: Option<&SpatialVoice>,
        head: Option<&GlobalTransform>,
        listener: Option<&GlobalTransform>,
    ) -> Self {
        let mut mix = Self {
            decibels: volume.copied().unwrap_or_default().decibels(),
            panning: 0.0,
        };
        if let (Some(spatial), Some(head), Some(listener)) = (spatial, head, listener) {
            let path = head.translation() - listener.translation();
            let distance = path.length();
            if !distance.is_nan() {
                mix.decibels = clamp_decibels(
                    mix.decibels
                        + SpeechVolume::MIN_DECIBELS * (distance / spatial.radius).min(1.0),
                );
            }
            if distance.is_finite() && distance > 1e-6 {
                mix.panning = listener.right().dot(path / distance).clamp(-1.0, 1.0);
            }
        }
        mix
    }

    /// The linear gain of the level: 1 at 0 dB, 0 at or below [`SpeechVolume::MIN_DECIBELS`].
    pub(crate) fn amplitude(&self) -> f32 {
        Decibels(self.decibels).as_amplitude()
    }

    /// Whether `other` sounds different enough to be sent to the audio thread again.
    pub(crate) fn differs_from(&self, other: &Self) -> bool {
        (self.decibels - other.decibels).abs() > 0.05
            || (self.panning - other.panning).abs() > 0.002
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_is_clamped_and_nan_plays_unchanged() {
        assert_eq!(SpeechVolume::default().amplitude(), 1.0);
        assert!((SpeechVolume::new(-6.0206).amplitude() - 0.5).abs() < 1e-4);
        assert_eq!(
            SpeechVolume::new(100.0).decibels(),
            SpeechVolume::MAX_DECIBELS
        );
        assert_eq!(SpeechVolume::new(f32::NEG_INFINITY), SpeechVolume::MUTED);
        assert_eq!(SpeechVolume::MUTED.amplitude(), 0.0);
        assert_eq!(SpeechVolume::new(f32::NAN).decibels(), 0.0);
    }

    #[test]
    fn a_spatial_voice_fades_with_distance_and_pans_to_the_listeners_side() {
        // The listener at the origin looking down -Z: +X is its right.
        let listener = GlobalTransform::from(Transform::IDENTITY);
        let at = |x: f32, z: f32| GlobalTransform::from(Transform::from_xyz(x, 0.0, z));
        let spatial = SpatialVoice::new(10.0);
        let mix = |head: &GlobalTransform, volume: Option<&SpeechVolume>| {
            VoiceMix::of(volume, Some(&spatial), Some(head), Some(&listener))
        };
        let ahead = mix(&at(0.0, -5.0), None);
        assert!(
            (ahead.decibels + 30.0).abs() < 1e-4 && ahead.panning.abs() < 1e-6,
            "{ahead:?}"
        );
        let right = mix(&at(2.0, 0.0), None);
        assert!((right.decibels + 12.0).abs() < 1e-4 && (right.panning - 1.0).abs() < 1e-6);
        let left = mix(&at(-2.0, 0.0), Some(&SpeechVolume::new(-6.0)));
        assert!((left.decibels + 18.0).abs() < 1e-4 && (left.panning + 1.0).abs() < 1e-6);
        let far = mix(&at(0.0, 40.0), None);
        assert_eq!(far.amplitude(), 0.0, "silent beyond the radius");
        let close = mix(&listener, None);
        assert_eq!((close.decibels, close.panning), (0.0, 0.0));
        // Without a listener, or not spatial: only the volume.
        let alone = VoiceMix::of(None, Some(&spatial), Some(&at(3.0, 0.0)), None);
        assert_eq!(alone, VoiceMix::default());
        let flat = VoiceMix::of(None, None, Some(&at(3.0, 0.0)), Some(&listener));
        assert_eq!(flat, VoiceMix::default());
        // A head gone to infinity is silent, not NaN.
        let lost = mix(&at(f32::INFINITY, 0.0), None);
        assert_eq!((lost.amplitude(), lost.panning), (0.0, 0.0));
    }

    #[test]
    fn a_bad_radius_falls_back_to_the_default() {
        for radius in [0.0, -3.0, f32::NAN, f32::INFINITY] {
            assert_eq!(
                SpatialVoice::new(radius).radius(),
                SpatialVoice::DEFAULT_RADIUS
            );
        }
        assert_eq!(SpatialVoice::new(4.0).radius(), 4.0);
    }
}
