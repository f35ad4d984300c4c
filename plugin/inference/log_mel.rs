//! The log-mel front end in Rust: the CPU reference of `assets/models/log_mel.onnx` (built by
//! `tools/build_log_mel.py`), computing the same maths with an FFT instead of a convolution.
//!
//! Frame `t` covers samples `[t * MEL_HOP_SAMPLES, t * MEL_HOP_SAMPLES + MEL_WINDOW_SAMPLES)` of 16 kHz audio, with
//! no centre padding, so a stream can be cut anywhere on a hop boundary. Each frame: periodic Hann window, 400-point
//! DFT, power `re² + im²` of the 201 bins, 80 Slaney-scale mel bands from 0 to 8000 Hz with Slaney (area)
//! normalisation (librosa's default `librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)`, as in Whisper), then
//! `ln(mel + LOG_MEL_EPS)`.

use std::sync::{Arc, OnceLock};

use rustfft::{Fft, FftPlanner, num_complex::Complex32};

use crate::contract::{MEL_BANDS, MEL_HOP_SAMPLES, MEL_WINDOW_SAMPLES, SAMPLE_RATE_HZ};

/// Added to each mel power before the natural log: exact silence gives `ln(1e-6) ≈ -13.8`. Speech and noise floors
/// give mel powers far above it, so f32 rounding in the DFT (relative to the frame's energy) stays tiny in the log.
pub const LOG_MEL_EPS: f32 = 1e-6;

/// DFT bins of one window: 0 Hz to the Nyquist frequency.
const BINS: usize = MEL_WINDOW_SAMPLES / 2 + 1;

/// Number of log-mel frames in `samples` samples: `1 + (samples - 400) / 160`, or 0 below one window.
pub fn log_mel_frame_count(samples: usize) -> usize {
    match samples.checked_sub(MEL_WINDOW_SAMPLES) {
        Some(rest) => 1 + rest / MEL_HOP_SAMPLES,
        None => 0,
    }
}

/// Log-mel frames of 16 kHz mono audio, one `[f32; MEL_BANDS]` per 10 ms hop ([`log_mel_frame_count`] frames);
/// see [`LogMel`] to keep the FFT plan in your own value.
pub fn log_mel(samples: &[f32]) -> Vec<[f32; MEL_BANDS]> {
    static SHARED: OnceLock<LogMel> = OnceLock::new();
    SHARED.get_or_init(LogMel::new).frames(samples)
}

/// One mel band: the bins it covers and their weights.
#[derive(Clone)]
struct MelBand {
    first_bin: usize,
    weights: Vec<f32>,
}

/// The log-mel front end with its FFT plan, window and filterbank built once.
#[derive(Clone)]
pub struct LogMel {
    fft: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    bands: Vec<MelBand>,
}

impl Default for LogMel {
    fn default() -> Self {
        Self::new()
    }
}

impl LogMel {
    /// Plans the 400-point FFT and builds the Hann window and the 80-band mel filterbank.
    pub fn new() -> Self {
        let n = MEL_WINDOW_SAMPLES as f64;
        let window = (0..MEL_WINDOW_SAMPLES)
            .map(|i| (0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n).cos()) as f32)
            .collect();
        Self {
            fft: FftPlanner::new().plan_fft_forward(MEL_WINDOW_SAMPLES),
            window,
            bands: mel_bands(),
        }
    }

    /// Log-mel frames of 16 kHz mono audio; empty when there are fewer than [`MEL_WINDOW_SAMPLES`] samples.
    pub fn frames(&self, samples: &[f32]) -> Vec<[f32; MEL_BANDS]> {
        let count = log_mel_frame_count(samples.len());
        let mut frames = Vec::with_capacity(count);
        let mut buffer = vec![Complex32::default(); MEL_WINDOW_SAMPLES];
        let mut scratch = vec![Complex32::default(); self.fft.get_inplace_scratch_len()];
        let mut power = [0.0_f32; BINS];
        for t in 0..count {
            let start = t * MEL_HOP_SAMPLES;
            let frame = &samples[start..start + MEL_WINDOW_SAMPLES];
            for ((slot, &sample), &weight) in buffer.iter_mut().zip(frame).zip(&self.window) {
                *slot = Complex32::new(sample * weight, 0.0);
            }
            self.fft.process_with_scratch(&mut buffer, &mut scratch);
            for (p, bin) in power.iter_mut().zip(&buffer) {
                *p = bin.norm_sqr();
            }
            let mut mel = [0.0_f32; MEL_BANDS];
            for (value, band) in mel.iter_mut().zip(&self.bands) {
                let powers = &power[band.first_bin..band.first_bin + band.weights.len()];
                let sum: f32 = powers.iter().zip(&band.weights).map(|(p, w)| p * w).sum();
                *value = (sum + LOG_MEL_EPS).ln();
            }
            frames.push(mel);
        }
        frames
    }
}

/// Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let log_step = 6.4_f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        MIN_LOG_HZ / F_SP + (hz / MIN_LOG_HZ).ln() / log_step
    } else {
        hz / F_SP
    }
}

/// Inverse of [`hz_to_mel`].
fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let log_step = 6.4_f64.ln() / 27.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    if mel >= min_log_mel {
        MIN_LOG_HZ * (log_step * (mel - min_log_mel)).exp()
    } else {
        F_SP * mel
    }
}

/// Band edges in Hz: `MEL_BANDS + 2` points evenly spaced in mel from 0 Hz to the Nyquist frequency.
fn band_edges_hz() -> Vec<f64> {
    let top = hz_to_mel(f64::from(SAMPLE_RATE_HZ) / 2.0);
    (0..MEL_BANDS + 2)
        .map(|i| mel_to_hz(top * i as f64 / (MEL_BANDS + 1) as f64))
        .collect()
}

/// Triangular bands over the DFT bins, each scaled by `2 / (upper edge - lower edge in Hz)` (Slaney norm).
fn mel_bands() -> Vec<MelBand> {
    let edges = band_edges_hz();
    let bin_hz = f64::from(SAMPLE_RATE_HZ) / MEL_WINDOW_SAMPLES as f64;
    edges
        .windows(3)
        .map(|edge| {
            let (low, centre, high) = (edge[0], edge[1], edge[2]);
            let weights: Vec<(usize, f32)> = (0..BINS)
                .map(|bin| {
                    let hz = bin as f64 * bin_hz;
                    let rising = (hz - low) / (centre - low);
                    let falling = (high - hz) / (high - centre);
                    (
                        bin,
                        (rising.min(falling).max(0.0) * 2.0 / (high - low)) as f32,
                    )
                })
                .filter(|&(_, weight)| weight > 0.0)
                .collect();
            MelBand {
                first_bin: weights.first().map_or(0, |&(bin, _)| bin),
                weights: weights.into_iter().map(|(_, weight)| weight).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, amplitude: f32, samples: usize) -> Vec<f32> {
        (0..samples)
            .map(|i| {
                amplitude * (std::f32::consts::TAU * hz * i as f32 / SAMPLE_RATE_HZ as f32).sin()
            })
            .collect()
    }

    #[test]
    fn frame_count_follows_the_hop_without_padding() {
        assert_eq!(log_mel_frame_count(0), 0);
        assert_eq!(log_mel_frame_count(399), 0);
        assert_eq!(log_mel_frame_count(400), 1);
        assert_eq!(log_mel_frame_count(559), 1);
        assert_eq!(log_mel_frame_count(560), 2);
        assert_eq!(log_mel_frame_count(16_000), 98);
        assert_eq!(log_mel(&vec![0.0; 16_000]).len(), 98);
        assert!(log_mel(&[0.0; 399]).is_empty());
    }

    #[test]
    fn silence_is_ln_eps() {
        let floor = LOG_MEL_EPS.ln();
        for frame in log_mel(&[0.0; 1_000]) {
            assert!(frame.iter().all(|&value| value == floor), "{frame:?}");
        }
    }

    #[test]
    fn every_band_covers_at_least_one_bin() {
        for (index, band) in mel_bands().iter().enumerate() {
            assert!(!band.weights.is_empty(), "band {index} is empty");
            assert!(band.first_bin + band.weights.len() <= BINS);
        }
    }

    #[test]
    fn a_tone_lands_in_the_band_centred_nearest_to_it() {
        let edges = band_edges_hz();
        for hz in [300.0_f32, 1_000.0, 3_000.0, 6_500.0] {
            let nearest = (0..MEL_BANDS)
                .min_by(|&a, &b| {
                    let da = (edges[a + 1] - f64::from(hz)).abs();
                    let db = (edges[b + 1] - f64::from(hz)).abs();
                    da.total_cmp(&db)
                })
                .unwrap_or_default();
            for frame in log_mel(&tone(hz, 0.5, 4_000)) {
                let loudest = (0..MEL_BANDS)
                    .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
                    .unwrap_or_default();
                assert_eq!(loudest, nearest, "{hz} Hz");
                // Bands far from the tone hold only the window's leakage: at least 60 dB (ln 1e6 ≈ 13.8) below.
                let far = if nearest > MEL_BANDS / 2 {
                    0
                } else {
                    MEL_BANDS - 1
                };
                assert!(frame[loudest] - frame[far] > 13.8, "{hz} Hz: {frame:?}");
            }
        }
    }

    #[test]
    fn matches_a_direct_float64_dft() {
        // Deterministic noise from a linear congruential generator.
        let mut state = 0x2545_f491_u32;
        let samples: Vec<f32> = (0..MEL_WINDOW_SAMPLES)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1 << 24) as f32 - 0.5
            })
            .collect();
        let n = MEL_WINDOW_SAMPLES as f64;
        let power: Vec<f64> = (0..BINS)
            .map(|k| {
                let (mut re, mut im) = (0.0_f64, 0.0_f64);
                for (i, &x) in samples.iter().enumerate() {
                    let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n).cos();
                    let angle = std::f64::consts::TAU * ((k * i) % MEL_WINDOW_SAMPLES) as f64 / n;
                    re += f64::from(x) * w * angle.cos();
                    im -= f64::from(x) * w * angle.sin();
                }
                re * re + im * im
            })
            .collect();
        let frames = log_mel(&samples);
        assert_eq!(frames.len(), 1);
        for (band, (value, spec)) in frames[0].iter().zip(mel_bands()).enumerate() {
            let mel: f64 = spec
                .weights
                .iter()
                .enumerate()
                .map(|(j, &w)| power[spec.first_bin + j] * f64::from(w))
                .sum();
            let expected = (mel + f64::from(LOG_MEL_EPS)).ln();
            assert!(
                (f64::from(*value) - expected).abs() < 1e-4,
                "band {band}: {value} vs {expected}"
            );
        }
    }
}
