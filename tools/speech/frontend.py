"""Shared audio front end: input clean-up + level normalisation, log-mel (the plugin's), MFCC, frame pooling.

Every predictor evaluated by `evaluate.py` (baselines and trained models alike) should start with `normalise`:
    1. NaN/Inf -> 0, DC and rumble removed (2nd-order Butterworth high-pass at 40 Hz, causal)
    2. level: the 95th percentile of 20 ms frame RMS is set to -15 dBFS (speech peaks; robust to long pauses and
       to padding), gain limited to +-40 dB; a clip whose 95th percentile is below -80 dBFS (digital silence or
       nearly) is left as it is.  This is per utterance (offline); `history_s` gives the causal version a stream
       can compute: each 20 ms hop gets its gain from the 95th percentile of the hops in the last `history_s`
       seconds (itself included).
    3. clipped to +-1.
log_mel: the exact maths of tools/build_log_mel.py / plugin/inference/log_mel.rs (16 kHz, 400-sample periodic
Hann window, hop 160 = 100 frames/s, no centre padding, 80 Slaney mel bands, ln(power + 1e-6)).
"""

from __future__ import annotations

import functools
import os
import sys

import numpy as np
import scipy.fft
import scipy.signal

SR = 16_000
FPS = 25
SAMPLES_PER_FRAME = SR // FPS  # 640
WINDOW, HOP = 400, 160
REF_DBFS = -15.0


def normalise(x: np.ndarray, history_s: float | None = None) -> np.ndarray:
    """Steps 1-3 of the module docstring; `history_s`: None = one gain for the whole clip, else a gain per 20 ms
    hop from the hops of the last `history_s` seconds (the samples after the last whole hop take the last hop's
    gain)."""
    x = np.nan_to_num(np.asarray(x, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if len(x) > 32:
        x = scipy.signal.sosfilt(scipy.signal.butter(2, 40, "highpass", fs=SR, output="sos"), x)
    hop = SR // 50
    n = len(x) // hop
    if n:
        rms = np.sqrt((x[:n * hop].reshape(n, hop) ** 2).mean(1))
        ref = (np.full(n, np.percentile(rms, 95)) if history_s is None
               else trailing_percentile(rms, round(history_s * SR / hop), 95))
        gain = np.where(ref > 1e-4, np.clip(10 ** (REF_DBFS / 20) / np.maximum(ref, 1e-4), 1e-2, 1e2), 1.0)
        x = x * np.repeat(gain, [hop] * (n - 1) + [len(x) - (n - 1) * hop])
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def trailing_percentile(v: np.ndarray, n: int, q: float) -> np.ndarray:
    """[T] -> [T]: the q-th percentile of v[max(0, i - n + 1) .. i] for every i (a causal running percentile)."""
    padded = np.concatenate([np.full(n - 1, np.nan), np.asarray(v, np.float64)])
    return np.nanpercentile(np.lib.stride_tricks.sliding_window_view(padded, n), q, axis=1)


@functools.lru_cache(maxsize=1)
def _filterbank() -> np.ndarray:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    import build_log_mel  # tools/build_log_mel.py: the one definition of the mel filterbank

    return build_log_mel.mel_filterbank()  # [201, 80]


def log_mel(x: np.ndarray) -> np.ndarray:
    """[N] 16 kHz samples -> [T100, 80] log-mel, T100 = 1 + (N - 400) // 160 (0 rows if N < 400)."""
    if len(x) < WINDOW:
        return np.zeros((0, 80), np.float32)
    n = 1 + (len(x) - WINDOW) // HOP
    idx = np.arange(WINDOW)[None, :] + HOP * np.arange(n)[:, None]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)
    spec = np.fft.rfft(x.astype(np.float64)[idx] * win, axis=1)
    power = spec.real ** 2 + spec.imag ** 2
    return np.log(power @ _filterbank() + 1e-6).astype(np.float32)


def mfcc(logmel: np.ndarray, n: int = 13) -> np.ndarray:
    """DCT-II (orthonormal) of the log-mel rows, first n coefficients (c0 = overall log energy)."""
    return scipy.fft.dct(logmel, type=2, axis=1, norm="ortho")[:, :n].astype(np.float32)


def frame_count(n_samples: int) -> int:
    """Video frames for n samples: frame t covers samples [640 t, 640 t + 640)."""
    return -(-n_samples // SAMPLES_PER_FRAME)


def pool_to_frames(feat100: np.ndarray, n_frames: int) -> np.ndarray:
    """Averages 100 Hz feature rows into 25 fps frames by window centre (sample 160 j + 200); frames without a
    row (the clip's last ~12 ms) repeat the nearest one."""
    out = np.zeros((n_frames, feat100.shape[1]), np.float32)
    if len(feat100) == 0:
        return out
    frame_of_row = (HOP * np.arange(len(feat100)) + WINDOW // 2) // SAMPLES_PER_FRAME
    sums = np.zeros_like(out, dtype=np.float64)
    counts = np.zeros(n_frames)
    keep = frame_of_row < n_frames
    np.add.at(sums, frame_of_row[keep], feat100[keep])
    np.add.at(counts, frame_of_row[keep], 1)
    filled = counts > 0
    out[filled] = sums[filled] / counts[filled, None]
    if not filled.all():
        idx = np.flatnonzero(filled)
        nearest = idx[np.clip(np.searchsorted(idx, np.arange(n_frames)), 0, len(idx) - 1)]
        out[~filled] = out[nearest[~filled]]
    return out


def frame_db(x: np.ndarray) -> np.ndarray:
    """RMS level (dBFS) of each 25 fps frame (40 ms, no overlap)."""
    n = frame_count(len(x))
    padded = np.zeros(n * SAMPLES_PER_FRAME, np.float64)
    padded[:len(x)] = x
    rms = np.sqrt((padded.reshape(n, SAMPLES_PER_FRAME) ** 2).mean(1))
    return (20 * np.log10(rms + 1e-10)).astype(np.float32)
