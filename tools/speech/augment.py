"""Audio augmentation, deterministic given a seed (every random choice comes from a numpy Generator).

Operations (each a small function; `random_chain` draws a chain, `apply_chain` runs it):
  via_rate   source -> mid_sr -> 16 kHz resampling (8, 11.025, 16, 22.05, 44.1, 48 kHz round trips)
  speed      resample by a factor: pitch, formants and tempo move together (Kaldi-style speed perturbation);
             phone times are rescaled exactly, so there is no time correction to get wrong. A pitch-only or
             formant-only shift (with WSOLA time correction) is not implemented: espeak's pitch parameter and its
             voice variants already vary F0 and formants independently.
  pad        leading/trailing silence, 0.1-2 s; filled with digital zeros or a noise floor (-90..-50 dBFS)
  reverb     convolution with a synthetic impulse response: direct path + exponentially decaying noise tail
             (RT60 0.1-0.9 s, direct-to-reverberant ratio 0-15 dB, a few early reflections)
  bandlimit  Butterworth band-pass, e.g. telephone 300-3400 Hz, or a low-pass (4-7 kHz)
  noise      white / pink / brown noise at an SNR (0-40 dB) relative to the active speech level
  gain       active speech level set to -55..-16 dBFS (else -20 dBFS); "near clipping" instead drives the peak
             to 0.9-1.3 and clips hard at +-1
Timing: `apply_chain` returns (audio_16k, scale, offset): a time t (s) in the source becomes t * scale + offset.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal

TARGET_SR = 16_000


def resample(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Polyphase resampling (Kaiser window), float32 out."""
    if sr_from == sr_to:
        return x.astype(np.float32)
    g = math.gcd(int(sr_from), int(sr_to))
    return scipy.signal.resample_poly(x, sr_to // g, sr_from // g).astype(np.float32)


def active_rms(x: np.ndarray, sr: int) -> float:
    """RMS over the 20 ms frames within 40 dB of the loudest frame (speech level, ignores pauses)."""
    hop = max(1, sr // 50)
    n = len(x) // hop
    if n == 0:
        return float(np.sqrt(np.mean(x ** 2))) if len(x) else 0.0
    e = (x[:n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(1)
    active = e[e >= e.max() * 1e-4]
    return float(np.sqrt(active.mean())) if len(active) else 0.0


def colored_noise(n: int, rng: np.random.Generator, color: str = "white") -> np.ndarray:
    """Unit-RMS noise; pink has power ~ 1/f, brown ~ 1/f^2 (shaped in the frequency domain)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}[color]
    y = np.fft.irfft(spec / f ** exponent, n)
    return (y / (np.sqrt(np.mean(y ** 2)) + 1e-12)).astype(np.float32)


def add_noise(x: np.ndarray, sr: int, rng: np.random.Generator, snr_db: float, color: str = "white") -> np.ndarray:
    level = active_rms(x, sr) * 10 ** (-snr_db / 20)
    return (x + level * colored_noise(len(x), rng, color)).astype(np.float32)


def impulse_response(sr: int, rng: np.random.Generator, rt60: float, drr_db: float) -> np.ndarray:
    """Synthetic room response: unit direct path, 3 early reflections (5-25 ms) and a noise tail decaying
    60 dB in rt60 seconds, scaled to the given direct-to-reverberant energy ratio."""
    n = int(sr * rt60 * 1.2) + 1
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)
    tail[: int(0.002 * sr)] = 0.0
    for _ in range(3):
        k = int(rng.uniform(0.005, 0.025) * sr)
        tail[k] += rng.uniform(-1.5, 1.5) * np.exp(-6.9078 * k / sr / rt60) * 4
    tail *= 10 ** (-drr_db / 20) / (np.sqrt(np.sum(tail ** 2)) + 1e-12)
    tail[0] = 1.0
    return tail


def reverb(x: np.ndarray, sr: int, rng: np.random.Generator, rt60: float, drr_db: float) -> np.ndarray:
    """Convolves with `impulse_response` (length kept; the level is kept at the dry speech level)."""
    y = scipy.signal.fftconvolve(x, impulse_response(sr, rng, rt60, drr_db))[: len(x)]
    return (y * active_rms(x, sr) / (active_rms(y, sr) + 1e-12)).astype(np.float32)


def bandlimit(x: np.ndarray, sr: int, low_hz: float | None, high_hz: float | None) -> np.ndarray:
    """4th-order Butterworth band-pass (or high/low-pass when one edge is None), zero phase."""
    if low_hz and high_hz:
        sos = scipy.signal.butter(4, [low_hz, high_hz], "bandpass", fs=sr, output="sos")
    elif high_hz:
        sos = scipy.signal.butter(4, high_hz, "lowpass", fs=sr, output="sos")
    elif low_hz:
        sos = scipy.signal.butter(4, low_hz, "highpass", fs=sr, output="sos")
    else:
        return x
    return scipy.signal.sosfiltfilt(sos, x).astype(np.float32)


def set_gain(x: np.ndarray, sr: int, level_db: float, clip_peak: float | None = None) -> np.ndarray:
    """Scales the active speech level to `level_db` dBFS; with `clip_peak`, scales so that the peak reaches that
    value instead and clips hard at +-1 (near-clipping / clipped input)."""
    if clip_peak is not None:
        y = x * (clip_peak / (np.abs(x).max() + 1e-12))
    else:
        y = x * (10 ** (level_db / 20) / (active_rms(x, sr) + 1e-12))
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def pad(x: np.ndarray, sr: int, rng: np.random.Generator, before_s: float, after_s: float,
        floor_db: float | None) -> np.ndarray:
    """Adds silence before/after: digital zeros (floor_db None) or white noise at floor_db dBFS RMS."""
    nb, na = int(before_s * sr), int(after_s * sr)
    y = np.concatenate([np.zeros(nb, np.float32), x.astype(np.float32), np.zeros(na, np.float32)])
    if floor_db is not None:
        y[:nb] += 10 ** (floor_db / 20) * rng.standard_normal(nb).astype(np.float32)
        y[nb + len(x):] += 10 ** (floor_db / 20) * rng.standard_normal(na).astype(np.float32)
    return y


def random_chain(rng: np.random.Generator, strength: float = 1.0) -> list[dict]:
    """Draws an augmentation chain (a list of {"op": name, ...params}); `strength` 0 gives only the 16 kHz
    conversion, 1 applies each operation with its default probability."""
    p = lambda q: rng.random() < q * strength  # noqa: E731
    chain: list[dict] = [{"op": "via_rate", "mid_sr": int(rng.choice([8000, 11025, 16000, 22050, 44100, 48000]))
                          if p(0.3) else 16000}]
    if p(0.3):
        chain.append({"op": "speed", "factor": float(rng.uniform(0.85, 1.15))})
    if p(0.5):
        chain.append({"op": "pad", "before_s": float(rng.uniform(0.1, 2.0)), "after_s": float(rng.uniform(0.1, 2.0)),
                      "floor_db": None if rng.random() < 0.5 else float(rng.uniform(-90, -50))})
    if p(0.3):
        chain.append({"op": "reverb", "rt60": float(rng.uniform(0.1, 0.9)), "drr_db": float(rng.uniform(0, 15)),
                      "seed": int(rng.integers(1 << 31))})
    if p(0.25):
        band = [(300.0, 3400.0), (None, float(rng.uniform(4000, 7000))), (float(rng.uniform(80, 250)), None)]
        low, high = band[int(rng.integers(len(band)))]
        chain.append({"op": "bandlimit", "low_hz": low, "high_hz": high})
    if p(0.4):
        chain.append({"op": "noise", "snr_db": float(rng.uniform(0, 40)),
                      "color": str(rng.choice(["white", "pink", "brown"])), "seed": int(rng.integers(1 << 31))})
    if p(0.15):
        chain.append({"op": "gain", "clip_peak": float(rng.uniform(0.9, 1.3)), "level_db": None})
    else:
        chain.append({"op": "gain", "level_db": float(rng.uniform(-55, -16)) if p(0.7) else -20.0, "clip_peak": None})
    return chain


def apply_chain(x: np.ndarray, sr: int, chain: list[dict], seed: int = 0) -> tuple[np.ndarray, float, float]:
    """Runs `chain` on `x` (sample rate `sr`); returns (16 kHz float32 audio, time scale, time offset)."""
    rng = np.random.default_rng(seed)
    scale, offset = 1.0, 0.0
    for op in chain:
        kind = op["op"]
        if kind == "via_rate":
            x = resample(resample(x, sr, op["mid_sr"]), op["mid_sr"], TARGET_SR)
            sr = TARGET_SR
        elif kind == "speed":
            # Playing `factor` times faster: resample to sr / factor, then treat it as sr.
            # The factor is quantised to 1/100 so that the polyphase filter stays small (up 100, down ~85..115).
            down = int(round(op["factor"] * 100))
            x = scipy.signal.resample_poly(x, 100, down).astype(np.float32)
            scale *= 100 / down
        elif kind == "pad":
            x = pad(x, sr, rng, op["before_s"], op["after_s"], op["floor_db"])
            offset = offset + op["before_s"]
        elif kind == "reverb":
            x = reverb(x, sr, np.random.default_rng(op["seed"]), op["rt60"], op["drr_db"])
        elif kind == "bandlimit":
            x = bandlimit(x, sr, op["low_hz"], op["high_hz"])
        elif kind == "noise":
            x = add_noise(x, sr, np.random.default_rng(op["seed"]), op["snr_db"], op["color"])
        elif kind == "gain":
            x = set_gain(x, sr, op["level_db"], op["clip_peak"])
        else:
            raise ValueError(f"unknown augmentation {kind!r}")
    if sr != TARGET_SR:
        x = resample(x, sr, TARGET_SR)
    return x.astype(np.float32), scale, offset
