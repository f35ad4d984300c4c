//! Resampling mono audio from any supported rate to the models' 16 kHz, as a stream or all at once.
//!
//! One engine serves both: [`resample_to_16k`] pushes the whole buffer through a [`StreamingResampler`] and
//! flushes it, so a stream cut into chunks of any size gives exactly the same samples as the whole clip.

use std::sync::{Mutex, PoisonError};

use rubato::{
    Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType, WindowFunction,
    calculate_cutoff,
};

use super::decode::{AudioError, check_sample_rate};
use crate::contract::SAMPLE_RATE_HZ;

/// Length of the anti-aliasing filter measured in samples at the lower of the two rates.
///
/// The filter's transition band scales with the lower rate, so the length in input samples grows with the
/// decimation factor (128 taps at 16 kHz, 353 at 44.1 kHz, 1536 at 192 kHz).
const FILTER_TAPS_AT_LOWER_RATE: usize = 128;
/// Window of the anti-aliasing filter.
const FILTER_WINDOW: WindowFunction = WindowFunction::BlackmanHarris2;
/// Input chunk fed to the filter, in milliseconds (the streaming latency is about this plus half the filter).
const CHUNK_MS: u32 = 20;
/// Largest sinc table phase count used for exact (rational) resampling; odd rates beyond it interpolate.
const MAX_EXACT_PHASES: usize = 1024;
/// Phase count for rates whose ratio to 16 kHz needs more than [`MAX_EXACT_PHASES`] phases.
const INTERPOLATED_PHASES: usize = 256;

/// Streaming resampler from one input rate to [`SAMPLE_RATE_HZ`] (16 kHz), mono.
///
/// Feed samples with [`process`](Self::process) in chunks of any size; it buffers them into fixed internal
/// chunks (about 20 ms) and appends the 16 kHz samples that are ready. At the end of the stream call
/// [`flush`](Self::flush): it pushes the held-back tail out (padding with silence) so that the whole stream
/// yields `round(n * 16000 / input_rate_hz)` samples for `n` input samples, then the resampler is ready for a
/// new stream at the same rate.
///
/// Timing is preserved: the filter's offset is compensated, so an event at time `t` seconds in the input is at
/// `t` seconds in the output (exactly for rates with exact phases, otherwise within a fraction of an output
/// sample, 62.5 µs). Until `flush`, output lags input by about 20 ms plus half the filter length.
///
/// Input already at 16 kHz is copied through unchanged. Any other rate uses a windowed-sinc filter
/// (rubato's `SincFixedIn`) that cuts off just below 8 kHz; common rates (8, 11.025, 22.05, 44.1, 48, 96 kHz, …)
/// are resampled with exact phases.
pub struct StreamingResampler {
    input_rate_hz: u32,
    /// `None` when the input is already at 16 kHz.
    filter: Option<SincFilter>,
    input_total: u64,
    output_total: u64,
}

struct SincFilter {
    /// Behind a mutex only to make the resampler `Sync` (Bevy components must be); accessed through `get_mut`.
    rubato: Mutex<SincFixedIn<f32>>,
    chunk: usize,
    pending: Vec<f32>,
    scratch: Vec<Vec<f32>>,
    /// Alignment (see [`alignment`]): zeros put in front of the input, then output samples dropped.
    lead_in: usize,
    drop_out: usize,
    /// How many of the `drop_out` samples are still to be discarded.
    to_skip: usize,
    /// Upper bound on the zero chunks `flush` may need.
    max_flush_chunks: usize,
}

impl StreamingResampler {
    /// Creates a resampler from `input_rate_hz` (Hz, within the supported range) to 16 kHz.
    pub fn new(input_rate_hz: u32) -> Result<Self, AudioError> {
        check_sample_rate(input_rate_hz)?;
        let filter = if input_rate_hz == SAMPLE_RATE_HZ {
            None
        } else {
            Some(SincFilter::new(input_rate_hz)?)
        };
        Ok(Self {
            input_rate_hz,
            filter,
            input_total: 0,
            output_total: 0,
        })
    }

    /// Input sample rate, in Hz.
    pub fn input_rate_hz(&self) -> u32 {
        self.input_rate_hz
    }

    /// Input samples accepted since creation or the last [`flush`](Self::flush).
    pub fn input_len(&self) -> u64 {
        self.input_total
    }

    /// 16 kHz samples emitted since creation or the last [`flush`](Self::flush).
    pub fn output_len(&self) -> u64 {
        self.output_total
    }

    /// Resamples `input` (mono, at the input rate) and appends the 16 kHz samples that are ready to `output`.
    pub fn process(&mut self, input: &[f32], output: &mut Vec<f32>) -> Result<(), AudioError> {
        self.input_total += input.len() as u64;
        let Some(filter) = self.filter.as_mut() else {
            output.extend_from_slice(input);
            self.output_total += input.len() as u64;
            return Ok(());
        };
        let mut rest = input;
        while !rest.is_empty() {
            let take = (filter.chunk - filter.pending.len()).min(rest.len());
            filter.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if filter.pending.len() == filter.chunk {
                let produced = filter.run_chunk(output, u64::MAX, self.input_rate_hz)?;
                self.output_total += produced as u64;
            }
        }
        Ok(())
    }

    /// Ends the stream: appends the remaining 16 kHz samples to `output` and resets for a new stream.
    ///
    /// After this, the stream has produced exactly `round(n * 16000 / input_rate_hz)` samples in total for `n`
    /// input samples.
    pub fn flush(&mut self, output: &mut Vec<f32>) -> Result<(), AudioError> {
        let target = expected_output_len(self.input_total, self.input_rate_hz);
        if let Some(filter) = self.filter.as_mut() {
            let mut rounds = 0;
            while self.output_total < target {
                if rounds == filter.max_flush_chunks {
                    return Err(AudioError::Resample {
                        rate_hz: self.input_rate_hz,
                        reason: format!(
                            "flush stopped at {} of {target} samples",
                            self.output_total
                        ),
                    });
                }
                filter.pending.resize(filter.chunk, 0.0);
                let room = target - self.output_total;
                self.output_total += filter.run_chunk(output, room, self.input_rate_hz)? as u64;
                rounds += 1;
            }
            filter.reset();
        }
        self.input_total = 0;
        self.output_total = 0;
        Ok(())
    }
}

impl SincFilter {
    fn new(input_rate_hz: u32) -> Result<Self, AudioError> {
        let ratio = f64::from(SAMPLE_RATE_HZ) / f64::from(input_rate_hz);
        let sinc_len = (FILTER_TAPS_AT_LOWER_RATE as f64 / ratio.min(1.0)).ceil() as usize;
        // Output instants fall on multiples of 1/phases of an input sample: exact phases when there are few.
        let phases = (SAMPLE_RATE_HZ / gcd(SAMPLE_RATE_HZ, input_rate_hz)) as usize;
        let (interpolation, oversampling_factor) = if phases <= MAX_EXACT_PHASES {
            (SincInterpolationType::Nearest, phases)
        } else {
            (SincInterpolationType::Linear, INTERPOLATED_PHASES)
        };
        let parameters = SincInterpolationParameters {
            sinc_len,
            f_cutoff: calculate_cutoff(FILTER_TAPS_AT_LOWER_RATE, FILTER_WINDOW),
            oversampling_factor,
            interpolation,
            window: FILTER_WINDOW,
        };
        let (lead_in, drop_out) = alignment(1.0 / ratio, oversampling_factor);
        // The chunk must be longer than the filter so that every chunk advances the output, and hold the lead-in.
        let chunk = ((input_rate_hz * CHUNK_MS / 1000) as usize)
            .max(2 * sinc_len + 16)
            .max(lead_in + 1);
        let rubato =
            SincFixedIn::<f32>::new(ratio, 1.0, parameters, chunk, 1).map_err(|error| {
                AudioError::Resample {
                    rate_hz: input_rate_hz,
                    reason: error.to_string(),
                }
            })?;
        let scratch = rubato.output_buffer_allocate(true);
        let max_flush_chunks = 4 + (2 * rubato_sinc_len(sinc_len) + 2 * lead_in) / chunk;
        let mut filter = Self {
            rubato: Mutex::new(rubato),
            chunk,
            pending: Vec::with_capacity(chunk),
            scratch,
            lead_in,
            drop_out,
            to_skip: drop_out,
            max_flush_chunks,
        };
        filter.reset();
        Ok(filter)
    }

    /// Filters the full `pending` chunk, appends at most `room` aligned samples to `output`, returns how many.
    fn run_chunk(
        &mut self,
        output: &mut Vec<f32>,
        room: u64,
        rate_hz: u32,
    ) -> Result<usize, AudioError> {
        let rubato = self
            .rubato
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let (_, produced) = rubato
            .process_into_buffer(&[&self.pending], &mut self.scratch, None)
            .map_err(|error| AudioError::Resample {
                rate_hz,
                reason: error.to_string(),
            })?;
        self.pending.clear();
        let fresh = &self.scratch[0][..produced];
        let skipped = self.to_skip.min(fresh.len());
        self.to_skip -= skipped;
        let aligned = &fresh[skipped..];
        let keep = aligned
            .len()
            .min(usize::try_from(room).unwrap_or(usize::MAX));
        output.extend_from_slice(&aligned[..keep]);
        Ok(keep)
    }

    fn reset(&mut self) {
        self.rubato
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .reset();
        self.pending.clear();
        self.pending.resize(self.lead_in, 0.0);
        self.to_skip = self.drop_out;
    }
}

/// Zeros to put in front of the input and output samples to drop so that output sample `k` sits at input time
/// `k * step` exactly (or as closely as the phase grid allows).
///
/// `step` is input samples per output sample, `phases` the filter's oversampling factor. rubato's `SincFixedIn`
/// centres output sample `k` on input position `k * step + lead` with `lead = step - 1 + 1 / phases` (its
/// first output is one step in, and its sinc table is centred one phase early). Prepending `p` zeros and
/// dropping `s` outputs moves that to `k * step + lead + s * step - p`; pick `s` so that `lead + s * step` is
/// (nearly) an integer `p`. With exact phases (`step = a / phases`) some `s < phases` makes it exact.
fn alignment(step: f64, phases: usize) -> (usize, usize) {
    let lead = step - 1.0 + 1.0 / phases as f64;
    let mut best = (0, 0, f64::INFINITY);
    for drop in 0..phases {
        let shift = lead + drop as f64 * step;
        let zeros = shift.round();
        let residual = (shift - zeros).abs();
        if zeros >= 0.0 && residual < best.2 - 1e-9 {
            best = (zeros as usize, drop, residual);
            if residual < 1e-9 {
                break;
            }
        }
    }
    (best.0, best.1)
}

/// rubato rounds the filter length up to a multiple of 8.
fn rubato_sinc_len(sinc_len: usize) -> usize {
    sinc_len.div_ceil(8) * 8
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Number of 16 kHz samples that `input_len` samples at `input_rate_hz` (Hz) become: `round(n * 16000 / rate)`.
pub fn expected_output_len(input_len: u64, input_rate_hz: u32) -> u64 {
    if input_rate_hz == 0 {
        return 0;
    }
    let rate = u128::from(input_rate_hz);
    ((u128::from(input_len) * u128::from(SAMPLE_RATE_HZ) + rate / 2) / rate) as u64
}

/// Resamples a whole mono buffer at `input_rate_hz` (Hz) to 16 kHz.
///
/// Returns `round(samples.len() * 16000 / input_rate_hz)` samples, aligned in time with the input; identical to
/// streaming the same samples through a [`StreamingResampler`] and flushing it.
pub fn resample_to_16k(samples: &[f32], input_rate_hz: u32) -> Result<Vec<f32>, AudioError> {
    let mut resampler = StreamingResampler::new(input_rate_hz)?;
    let mut output =
        Vec::with_capacity(expected_output_len(samples.len() as u64, input_rate_hz) as usize + 1);
    resampler.process(samples, &mut output)?;
    resampler.flush(&mut output)?;
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Common rates, the range ends, and odd rates that need interpolated phases (up- and downsampling).
    const RATES_HZ: [u32; 15] = [
        1_000, 8_000, 11_025, 12_000, 15_999, 16_000, 22_050, 24_000, 32_000, 44_100, 44_101,
        48_000, 96_000, 192_000, 384_000,
    ];

    fn click(len: usize, at: usize) -> Vec<f32> {
        let mut samples = vec![0.0; len];
        samples[at] = 1.0;
        samples
    }

    /// Position of the peak, refined by a parabola through its neighbours, in samples.
    fn peak_position(samples: &[f32]) -> f64 {
        let (index, _) =
            samples.iter().enumerate().fold(
                (0, f32::MIN),
                |best, (i, &s)| if s > best.1 { (i, s) } else { best },
            );
        if index == 0 || index + 1 >= samples.len() {
            return index as f64;
        }
        let (a, b, c) = (
            f64::from(samples[index - 1]),
            f64::from(samples[index]),
            f64::from(samples[index + 1]),
        );
        let denominator = a - 2.0 * b + c;
        if denominator.abs() < 1e-12 {
            return index as f64;
        }
        index as f64 + 0.5 * (a - c) / denominator
    }

    #[test]
    fn output_length_is_rounded_ratio() {
        for rate in RATES_HZ {
            for len in [0usize, 1, 7, 999, 12_345, 48_000] {
                let out = resample_to_16k(&vec![0.1; len], rate).expect("supported rate");
                let expected = expected_output_len(len as u64, rate) as usize;
                assert_eq!(out.len(), expected, "rate {rate} Hz, {len} samples");
            }
        }
    }

    #[test]
    fn clicks_stay_in_place() {
        for rate in RATES_HZ {
            let len = rate as usize; // one second
            for at_secs in [0.01, 0.25, 0.5, 0.97] {
                let at = (at_secs * f64::from(rate)) as usize;
                let out = resample_to_16k(&click(len, at), rate).expect("supported rate");
                let input_secs = at as f64 / f64::from(rate);
                let output_secs = peak_position(&out) / f64::from(SAMPLE_RATE_HZ);
                let error_ms = (output_secs - input_secs) * 1000.0;
                // The contract is 1 ms; the compensation is exact up to the peak estimate's bias.
                assert!(
                    error_ms.abs() < 0.05,
                    "rate {rate} Hz: click at {input_secs:.5} s came out at {output_secs:.5} s ({error_ms:.3} ms)"
                );
            }
        }
    }

    #[test]
    fn sixteen_khz_passes_through() {
        let input: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.01).sin()).collect();
        assert_eq!(
            resample_to_16k(&input, 16_000).expect("supported rate"),
            input
        );
    }

    #[test]
    fn a_tone_below_8khz_keeps_its_level_and_one_above_is_removed() {
        for rate in [22_050, 44_100, 48_000] {
            let tone = |hz: f64| -> Vec<f32> {
                (0..rate)
                    .map(|i| {
                        (std::f64::consts::TAU * hz * f64::from(i) / f64::from(rate)).sin() as f32
                    })
                    .collect()
            };
            let rms = |s: &[f32]| {
                let middle = &s[s.len() / 4..3 * s.len() / 4];
                (middle.iter().map(|x| x * x).sum::<f32>() / middle.len() as f32).sqrt()
            };
            let pass = resample_to_16k(&tone(1000.0), rate as u32).expect("supported rate");
            assert!(
                (rms(&pass) - std::f32::consts::FRAC_1_SQRT_2).abs() < 0.01,
                "{rate} Hz passband"
            );
            let stop = resample_to_16k(&tone(9500.0), rate as u32).expect("supported rate");
            assert!(
                rms(&stop) < 0.01,
                "{rate} Hz: 9.5 kHz tone leaked with rms {}",
                rms(&stop)
            );
        }
    }

    #[test]
    fn chunking_does_not_change_the_result() {
        let input: Vec<f32> = (0..30_000)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let whole = resample_to_16k(&input, 44_100).expect("supported rate");
        let mut resampler = StreamingResampler::new(44_100).expect("supported rate");
        let mut streamed = Vec::new();
        for piece in input.chunks(333) {
            resampler.process(piece, &mut streamed).expect("resampling");
        }
        resampler.flush(&mut streamed).expect("flush");
        assert_eq!(whole, streamed);
        // The resampler starts over after a flush.
        let mut again = Vec::new();
        resampler.process(&input, &mut again).expect("resampling");
        resampler.flush(&mut again).expect("flush");
        assert_eq!(whole, again);
    }

    #[test]
    fn unsupported_rates_are_errors() {
        for rate in [0, 999, 384_001, u32::MAX] {
            assert!(matches!(
                StreamingResampler::new(rate),
                Err(AudioError::UnsupportedSampleRate(r)) if r == rate
            ));
        }
        assert!(StreamingResampler::new(384_000).is_ok());
        assert!(StreamingResampler::new(1_000).is_ok());
    }
}
