//! Audio: decoding, resampling to 16 kHz, speech sources and the playback clock.
//!
//! Everything that enters the models is mono `f32` at [`crate::contract::SAMPLE_RATE_HZ`] (16 kHz):
//! - clips: [`decode_file`] / [`decode_bytes`] (or [`from_static_sound`] for a loaded bevy_kira_audio source)
//!   give a [`Pcm`] at the file's rate, [`Pcm::to_16k`] resamples it;
//! - live audio: a [`SpeechStream`] component takes pushed chunks at any rate and channel count (and plays them
//!   through the audio device when it is [`SpeechStream::audible`]).
//!
//! Both resample with the same [`StreamingResampler`], so a clip and the same audio streamed in pieces give
//! identical samples.

pub mod clock;
pub mod decode;
pub(crate) mod playback;
pub mod resample;
pub mod stream;
pub mod voice;

pub use decode::{
    AudioError, MAX_INPUT_SAMPLE_RATE_HZ, MIN_INPUT_SAMPLE_RATE_HZ, Pcm, SampleRepairs,
    decode_bytes, decode_file, from_static_sound, repair_samples,
};
pub use resample::{StreamingResampler, expected_output_len, resample_to_16k};
pub use stream::SpeechStream;
pub use voice::{SpatialVoice, SpeechVolume};
