"""The speech -> ARKit model: fixed front end, trainable layers (NumPy forward pass), padding rules, predictor.

Everything the ONNX export (export_onnx.py) must reproduce is defined here once.

Front end (fixed, no training; 100 Hz rows, each row i uses audio up to the end of mel window i and nothing later)
    x        raw 16 kHz float32; NaN/Inf -> 0, clipped to +-1 (no per-utterance normalisation, no high-pass)
    M[i, b]  mel power of the plugin's log-mel (tools/build_log_mel.py: Hann 400, hop 160, no centre padding, 80
             Slaney bands) for bands b = 2..79 (> 74 Hz: the two lowest bands see DC offset and rumble; dropped)
    L = ln(M + 1e-6),  e = ln(sum_b M + 78e-6)                        (digital silence: L = -13.8, e = -9.46)
    R = max(running max of e over the last W rows, E_FLOOR)      recent peak level ("how loud is speech here")
    N = running min over the last W rows of e, rows of digital silence (e < DIGITAL) left out: recent noise floor
        (without that, the digital zeros padded before a clip made a stationary noise floor look like signal)
    features (158): max(L - R, -K) [78], max(L - e, -K) [78], max(e - R, -K), clip(e - N, -K, K)
    then a fixed per-dimension affine map (mean / std of the training set's front-end rows, stored with the model).
  Level-invariant above the floors (a gain change moves L, e, R, N together), causal (W = 1.5 s of history), no
  statistics of the whole utterance; digital silence gives L - R = -K and e - N <= 0 (-K once the window holds
  sound).

Trainable layers
    encoder   conv1d k=4 stride 2 (100 -> 50 Hz), 158 -> H1, ReLU;  conv1d k=3 stride 1, H1 -> F, tanh  = features
    generator window of 5 features (+-2 around the frame) -> flatten 5F -> H2 ReLU -> 52 sigmoid (regression head)
              and -> 15 viseme logits (trained with cross-entropy); output = mix_output(regression, logits) * gate
Fixed noise gate (not trained; the baselines' gate made causal): per 100 Hz row
    g = clip((e - R + GATE_PEAK) / GATE_RAMP, 0, 1) * clip((e - N - GATE_SNR) / GATE_RAMP, 0, 1)
    (closed 35 dB under the recent peak or within 8 dB of the recent floor); the encoder outputs its mean over the
    rows around each feature as one extra channel (so features = F + 1 channels, the last one the gate) and the
    generator multiplies its output by the largest gate of window features GATE_WINDOW (the 3 centre ones; version 1:
    the centre feature's gate, per-row gates averaged: see gate_features).
Level factor (version 8 on; the npz's "level_ramp", LR): a second channel per feature, clip((pooled level +
    GATE_PEAK) / LR, 0, 1), and the generator also multiplies its output by the centre feature's value: the mouth
    opens less in quiet frames (pause tails, noise), as the baselines scale by loudness (level_features).

Timing / padding (all "valid" convolutions: chunked streaming gives the same numbers as offline, given the
W rows of history for the running statistics)
    feature j of an encoder input z is centred at input sample 320 j + 760 (its convolutions see
    z[320 j, 320 j + 1520)).  Prepending PAD_LEFT = 1080 zero samples to a clip makes features 2t .. 2t+4 the +-2
    window of 25 fps frame t (frame t's centre, clip sample 640 t + 320, is the centre of feature 2t+2); `padded`
    also appends zeros so that 2T + 3 features exist.
    Look-ahead: frame t needs clip samples up to 640 t + 1720 = 1080 samples (67.5 ms) past the frame's end,
    87.5 ms past its centre.
"""

from __future__ import annotations

import numpy as np

from . import frontend

SR = 16_000
BAND_LO = 2                      # first mel band kept
BANDS = 80 - BAND_LO             # 78
LOG_EPS = 1e-6
K = 12.0                         # clip range of the relative levels (ln power units: 12 = 52 dB)
E_FLOOR = -7.0                   # lowest peak reference (speech peaks are e ~ +3 at -15 dBFS; -7 ~ 43 dB lower)
W = 150                          # running max / min window, rows (1.5 s)
DIGITAL = -9.4                   # e below this = digital silence (e = -9.459 for exact zeros; ~ -80 dBFS noise)
BIG = 30.0                       # stands in for digital-silence rows in the running min (ignored by it)
D_IN = 2 * BANDS + 2             # 158
PAD_LEFT = 1080                  # zero samples before a clip (see the docstring)
FEATURE_WINDOW = 5               # +-2
MIX_LAMBDA = 0.8                 # output = (1 - MIX_LAMBDA) regression + MIX_LAMBDA viseme-posterior shape (mix_output)
MIX_TAU = 1.25                   # softmax temperature of the viseme posterior (picked on validation)
MIX_EPS = 1e-6
GATE_PEAK = 8.0                  # ln power: 35 dB under the recent peak (the baselines: -50 dBFS vs -15 dBFS peaks)
GATE_SNR = 1.84                  # ln power: 8 dB over the recent floor (the baselines: floor + 8 dB)
GATE_RAMP = 1.0                  # ln power: ~4.3 dB from closed to open
GATE_WINDOW = (1, 4)             # the generator's gate = max of the window features [a, b) (2 = the centre)


def padded(audio: np.ndarray, n_frames: int | None = None, past: int = 0) -> tuple[np.ndarray, int]:
    """Clip -> encoder input (zeros before and after) and T = the number of 25 fps frames.  past > 0 (an
    experimental generator window of FEATURE_WINDOW + past features, the extra ones before the frame) prepends
    320 * past more zeros, so that features 2t .. 2t+4+past are frame t's window."""
    audio = np.asarray(audio, np.float32)
    t = frontend.frame_count(len(audio)) if n_frames is None else n_frames
    left = PAD_LEFT + 320 * past
    total = 640 * t + 2160 + 320 * past  # = 160 * (4 T + 11) + 400: gives 4 T + 12 rows -> 2 T + 5 features... +1 spare
    out = np.zeros(max(total, left + len(audio)), np.float32)
    out[left:left + len(audio)] = audio
    return out, t


def window_of(p: dict) -> int:
    """Generator window (features) of a weights dict: FEATURE_WINDOW, or more with --past."""
    return p["W3"].shape[0] // p["W2"].shape[1]


def sanitize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    x = np.where(np.isfinite(x), x, np.float32(0.0))
    return np.clip(x, -1.0, 1.0)


def mel_power(x: np.ndarray) -> np.ndarray:
    """[N] -> [T100, 78] mel power (float64), same frames as frontend.log_mel."""
    if len(x) < frontend.WINDOW:
        return np.zeros((0, BANDS))
    n = 1 + (len(x) - frontend.WINDOW) // frontend.HOP
    idx = np.arange(frontend.WINDOW)[None, :] + frontend.HOP * np.arange(n)[:, None]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frontend.WINDOW) / frontend.WINDOW)
    spec = np.fft.rfft(x.astype(np.float64)[idx] * win, axis=1)
    power = spec.real ** 2 + spec.imag ** 2
    return power @ frontend._filterbank()[:, BAND_LO:]


def _running(e: np.ndarray, fn) -> np.ndarray:
    """Causal running max/min over the last W rows (fewer at the start), like MaxPool with pads [W-1, 0]."""
    fill = -np.inf if fn is np.max else np.inf
    p = np.concatenate([np.full(W - 1, fill), e])
    return fn(np.lib.stride_tricks.sliding_window_view(p, W), axis=1)


def d_in(shape: bool) -> int:
    return 2 * BANDS + 2 if shape else BANDS + 2


def front_end(x: np.ndarray, shape: bool = True) -> np.ndarray:
    """Encoder input samples (already padded) -> [T100, 158] raw front-end features (before the affine map);
    shape=False leaves out the 78 spectral-shape rows max(L - e, -K) (-> 80 features)."""
    m = mel_power(sanitize(x))
    if len(m) == 0:
        return np.zeros((0, d_in(shape)), np.float32)
    L = np.log(m + LOG_EPS)
    e = np.log(m.sum(1) + BANDS * LOG_EPS)
    R = np.maximum(_running(e, np.max), E_FLOOR)
    N = _running(np.where(e < DIGITAL, BIG, e), np.min)   # floor of the non-digital-silence rows
    parts = [np.maximum(L - R[:, None], -K)] + ([np.maximum(L - e[:, None], -K)] if shape else [])
    parts += [np.maximum(e - R, -K)[:, None], np.clip(e - N, -K, K)[:, None]]
    return np.concatenate(parts, 1).astype(np.float32)


# ---------------------------------------------------------------- trainable part (NumPy forward, used by train.py)

def init_params(rng: np.random.Generator, h1: int = 128, f: int = 64, h2: int = 256, n_vis: int = 15,
                d: int = D_IN, window: int = FEATURE_WINDOW) -> dict:
    def he(fan_in, shape, gain=2.0):
        return (rng.standard_normal(shape) * np.sqrt(gain / fan_in)).astype(np.float32)
    return {
        "W1": he(4 * d, (4 * d, h1)), "b1": np.zeros(h1, np.float32),
        "W2": he(3 * h1, (3 * h1, f), 1.0), "b2": np.zeros(f, np.float32),
        "W3": he(window * f, (window * f, h2)), "b3": np.zeros(h2, np.float32),
        "W4": he(h2, (h2, 52), 1.0) * 0.1, "b4": np.full(52, -4.0, np.float32),
        "Wv": he(h2, (h2, n_vis), 1.0) * 0.1, "bv": np.zeros(n_vis, np.float32),
    }


def encoder_forward(p: dict, xn: np.ndarray, cache: dict | None = None) -> np.ndarray:
    """xn: [B, R, 158] normalised front-end rows (R even) -> features [B, R/2 - 3, F]."""
    b, r, d = xn.shape
    pairs = xn[:, :r // 2 * 2].reshape(b, r // 2, 2 * d)
    c1 = np.concatenate([pairs[:, :-1], pairs[:, 1:]], 2)               # [B, R/2 - 1, 4D]: rows 2j .. 2j+3
    h1 = np.maximum(c1 @ p["W1"] + p["b1"], 0.0)
    c2 = np.concatenate([h1[:, :-2], h1[:, 1:-1], h1[:, 2:]], 2)        # [B, R/2 - 3, 3 H1]
    f = np.tanh(c2 @ p["W2"] + p["b2"])
    if cache is not None:
        cache.update(c1=c1, h1=h1, c2=c2, f=f)
    return f


def generator_forward(p: dict, f: np.ndarray, n_frames: int, cache: dict | None = None):
    """features [B, >= 2 S + 3, F] -> (weights [B, S, 52], viseme logits [B, S, 15]); frame s uses 2s .. 2s+4
    (2s .. 2s+4+past for a window of 5 + past features, window_of)."""
    z = np.concatenate([f[:, k:k + 2 * n_frames:2] for k in range(window_of(p))], 2)  # [B, S, window F]
    h2 = np.maximum(z @ p["W3"] + p["b3"], 0.0)
    y = 1.0 / (1.0 + np.exp(-(h2 @ p["W4"] + p["b4"])))
    logits = h2 @ p["Wv"] + p["bv"]
    if cache is not None:
        cache.update(z=z, h2=h2, y=y)
    return y, logits


def pooled_levels(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[T100, D] raw rows -> ([T50], [T50]): the level (e - R) and SNR (e - N) rows of feature j pooled over the
    40 ms around its centre (rows 2j+2 .. 2j+5, the rows whose window centres fall there) in the power domain
    (ln of the mean of exp: the loud part of the 40 ms dominates, like a 40 ms RMS level)."""
    n = (len(raw) - 8) // 2 + 1
    if n <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    idx = 2 * np.arange(n)[:, None] + np.arange(2, 6)[None, :]
    level = np.log(np.exp(raw[idx, -2].astype(np.float32)).mean(1))
    snr = np.log(np.exp(raw[idx, -1].astype(np.float32)).mean(1))
    return level, snr


def gate_features(raw: np.ndarray) -> np.ndarray:
    """[T100, D] raw rows -> [T50] noise gate of feature j (like the baselines' gate, but causal): from its pooled
    level and SNR (pooled_levels), 0 below GATE_PEAK (ln power) under the recent peak or below GATE_SNR over the
    recent floor, ramping to 1 over GATE_RAMP.  (Version 1 averaged per-row gates instead, which halved the gate of
    every frame whose 40 ms was half pause: vowel frames at pause edges, and vowels in noise, lost half their
    opening.)"""
    level, snr = pooled_levels(raw)
    return (np.clip((level + GATE_PEAK) / GATE_RAMP, 0, 1) * np.clip((snr - GATE_SNR) / GATE_RAMP, 0, 1)
            ).astype(np.float32)


def level_features(raw: np.ndarray, ramp: float) -> np.ndarray:
    """[T100, D] raw rows -> [T50] level factor of feature j: clip((pooled level + GATE_PEAK) / ramp, 0, 1), 0 where
    the gate closes, 1 from `ramp` ln-power units higher (version 8: 3, i.e. 13 dB; 22 dB under the recent peak).
    The generator scales its output by the centre feature's factor: the frame's own loudness, where the gate takes
    the loudest of three features."""
    level, _ = pooled_levels(raw)
    return np.clip((level + GATE_PEAK) / ramp, 0, 1).astype(np.float32)


def window_gate(gates: np.ndarray) -> np.ndarray:
    """[..., 5] gates of a frame's +-2 feature window -> [...]: the maximum over features GATE_WINDOW (the output
    is only shut when the 40 ms pools of all of them are gated: pauses, not the vowel frames at their edges)."""
    return gates[..., GATE_WINDOW[0]:GATE_WINDOW[1]].max(-1)


def mix_settings(p: dict) -> tuple[float, float]:
    """(lambda, tau) of a weights dict: the npz's optional "mix_lambda" / "mix_tau" entries (added to a
    trained npz when its output mix is picked on validation), else MIX_LAMBDA / MIX_TAU."""
    lam = float(p["mix_lambda"]) if "mix_lambda" in p else MIX_LAMBDA
    tau = float(p["mix_tau"]) if "mix_tau" in p else MIX_TAU
    return lam, tau


def level_ramp(p: dict) -> float | None:
    """The npz's optional "level_ramp" entry (version 8 on: the output's level factor, level_features), else None
    (no factor; the features have no level channel)."""
    return float(p["level_ramp"]) if "level_ramp" in p else None


def has_shape(p: dict) -> bool:
    return p["mean"].shape[0] == d_in(True)


def mix_output(y: np.ndarray, logits: np.ndarray, lam: float = None, tau: float = None) -> np.ndarray:
    """Exported output: (1 - lam) * y + lam * min(1, shape * |y| / |shape|), shape = sum_v softmax(logits / tau)_v
    * visemes.SHAPES[v] (the expected viseme shape; sil = zeros).  The regression head alone averages
    co-articulated targets into in-between shapes; the viseme posterior gives the direction, the regression the
    size (and 1 - lam of its detail).  [..., 52], [..., 15] -> [..., 52]."""
    from . import visemes

    lam = MIX_LAMBDA if lam is None else lam
    tau = MIX_TAU if tau is None else tau
    z = logits / tau
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    shape = p @ visemes.SHAPES
    scale = np.linalg.norm(y, axis=-1, keepdims=True) / (np.linalg.norm(shape, axis=-1, keepdims=True) + MIX_EPS)
    return ((1 - lam) * y + lam * np.minimum(shape * scale, 1.0)).astype(np.float32)


class NumpyModel:
    """The whole model in NumPy: clip (16 kHz, unnormalised) -> [T, 52]."""

    def __init__(self, npz: str) -> None:
        z = np.load(npz)
        self.p = {k: z[k] for k in z.files}
        self.shape = has_shape(self.p)
        self.past = window_of(self.p) - FEATURE_WINDOW
        self.ramp = level_ramp(self.p)

    def features(self, audio: np.ndarray) -> tuple[np.ndarray, int]:
        """[T50, F + 1 (+ 1)]: the learnt features, the gate and, with a level ramp, the level factor, as
        audio_encoder.onnx outputs them."""
        x, t = padded(audio, past=self.past)
        raw = front_end(x, self.shape)
        rows = (raw - self.p["mean"]) * self.p["inv_std"]
        f = encoder_forward(self.p, rows[None])[0]
        extra = [gate_features(raw)]
        if self.ramp is not None:
            extra.append(level_features(raw, self.ramp))
        return np.concatenate([f] + [c[:len(f), None] for c in extra], 1), t

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        f, t = self.features(audio)
        n_f = self.p["W2"].shape[1]
        y, logits = generator_forward(self.p, f[None, :, :n_f], t)
        window = np.stack([f[k:k + 2 * t:2] for k in range(self.past, self.past + FEATURE_WINDOW)], 1)
        out = mix_output(y[0], logits[0], *mix_settings(self.p)) * window_gate(window[..., n_f])[:, None]
        if self.ramp is not None:
            out = out * window[:, FEATURE_WINDOW // 2, n_f + 1, None]
        return out


class OnnxModel:
    """The exported pair through onnxruntime (what the plugin runs)."""
    name = "trained (ONNX)"

    def __init__(self, encoder: str, generator: str) -> None:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        self.enc = ort.InferenceSession(encoder, so, providers=["CPUExecutionProvider"])
        self.gen = ort.InferenceSession(generator, so, providers=["CPUExecutionProvider"])

    def features(self, audio: np.ndarray) -> tuple[np.ndarray, int]:
        x, t = padded(audio)
        rows = frontend.log_mel(sanitize(x))
        return self.enc.run(["features"], {"log_mel": rows[None]})[0][0], t

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        f, t = self.features(audio)
        windows = np.stack([f[2 * s:2 * s + FEATURE_WINDOW] for s in range(t)]).astype(np.float32)  # [T, 5, F+1]
        return self.gen.run(["weights"], {"features": windows})[0]
