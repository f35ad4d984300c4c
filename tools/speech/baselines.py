"""Two simple predictors (16 kHz audio -> [T, 52] ARKit at 25 fps) for the evaluation harness.

Both start with `frontend.normalise` (the normalisation any model gets).

EnergyJaw
    Frame level L (dBFS, 40 ms frames). Noise gate: G = max(-50, noise floor + 8 dB), noise floor = 10th percentile
    of L in the clip. jawOpen = 0.6 * clip((L - G) / max(-15 - G, 1 dB), 0, 1); everything else 0. (Until
    2026-12-06 the divisor was -15 - G alone: where the floor came within 8 dB of the -15 dBFS speech peaks, G rose
    over -15, the ramp turned upside down and the jaw stood open at 0.6 under the gate: 4 flite_noisy clips, 1
    val_festival and 3 val_hts ones.) No extra smoothing: the 40 ms frame is smoothing enough, and attack/release
    smoothing (tried 0.6/0.35, 0.7/0.5, 0.8/0.6 per frame) lowered closure recall, silence at rest and the offset
    more than it raised the correlation (+0.01-0.03).

MfccTemplates (uLipSync's method)
    MFCC c1..c12 per 10 ms frame from the plugin's log-mel, averaged per 25 fps frame, standardised with the
    calibration set's mean/std. Calibration: the mean vector of every viseme class (frames with that label in a few
    training utterances) = one template per viseme, like uLipSync's per-phoneme profile. A frame whose level is
    below the same noise gate as EnergyJaw is silence; otherwise the nearest template (Euclidean) picks the viseme,
    whose ARKit shape is scaled by a volume factor clip((L - G) / 20 dB, 0, 1), as uLipSync scales by volume.
    uLipSync also smooths its output; exponential smoothing (0.5 or 0.7 of the new frame) raised the jawOpen
    correlation by 0.01-0.03 but cost accuracy, closure recall and +9..17 ms of lag, so the default is none
    (smoothing=1.0).

Both take the level normalisation and the noise gate's floor from the whole clip, which a stream cannot know.
`causal=True` gives each the same statistics over the trailing HISTORY_S (1.5 s, the trained model's running
window, `model.W`) instead: the gain from the 95th percentile of the last 75 hops of 20 ms (`frontend.normalise`'s
`history_s`), the floor from the quietest of the last 38 frames, as the trained model's gate takes its floor (their
10th percentile, tried first, is mostly speech in 1.5 s of talk and shut 7-58 % of the open-vowel frames); no
statistic looks past the frame. A diagnostic of what the whole clip is worth to them (numbers in the model card);
the issue's rows are scored against the whole-clip versions.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import frontend, visemes

JAW_MAX = 0.6


HISTORY_S = 1.5  # = model.W rows of 10 ms: the trained model's running statistics
DIGITAL_DBFS = -80.0  # frames under this are digital silence (exact zeros: -200) for the causal floor, as model.DIGITAL


def _gate(db: np.ndarray, history_s: float | None = None) -> np.ndarray:
    """Per frame: 8 dB over the noise floor, at least -50 dBFS (35 dB under the normalised speech peaks). The
    floor: the 10th percentile of the clip's frame levels; with `history_s`, the quietest frame of the last
    `history_s` seconds, frames of digital silence (under DIGITAL_DBFS) left out, as the trained model's gate takes
    its floor (no floor yet: the gate stays shut)."""
    if not len(db):
        return np.full(0, -50.0)
    if history_s is None:
        floor = np.full(len(db), np.percentile(db, 10))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # windows of digital silence only: all-NaN
            floor = frontend.trailing_percentile(np.where(db < DIGITAL_DBFS, np.nan, db),
                                                 round(history_s * frontend.FPS), 0)
        floor = np.where(np.isnan(floor), 0.0, floor)  # 0 dBFS: over every level a clipped signal can have
    return np.maximum(-50.0, floor + 8.0)


class EnergyJaw:
    name = "energy jaw"

    def __init__(self, causal: bool = False) -> None:
        self.history_s = HISTORY_S if causal else None  # None: the whole clip's statistics
        if causal:
            self.name = f"{EnergyJaw.name} (causal)"

    def __call__(self, audio16k: np.ndarray) -> np.ndarray:
        x = frontend.normalise(audio16k, self.history_s)
        db = frontend.frame_db(x)
        gate = _gate(db, self.history_s)
        jaw = JAW_MAX * np.clip((db - gate) / np.maximum(frontend.REF_DBFS - gate, 1.0), 0.0, 1.0)
        out = np.zeros((len(db), 52), np.float32)
        out[:, 17] = jaw
        return out


class MfccTemplates:
    name = "MFCC templates"

    def __init__(self, smoothing: float = 1.0, causal: bool = False) -> None:
        self.smoothing = smoothing  # share of the new frame in the exponential smoothing (1 = none)
        self.history_s = HISTORY_S if causal else None  # None: the whole clip's statistics
        if causal:
            self.name = f"{MfccTemplates.name} (causal)"
        self.templates: np.ndarray | None = None  # [15, 12]
        self.mean = self.std = None

    @staticmethod
    def _features(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = frontend.frame_count(len(x))
        feat = frontend.pool_to_frames(frontend.mfcc(frontend.log_mel(x))[:, 1:13], n)
        return feat, frontend.frame_db(x)

    def calibrate(self, utterances) -> "MfccTemplates":
        """`utterances`: iterable of dicts with "audio" (16 kHz) and "labels" (25 fps viseme ids)."""
        feats, labs = [], []
        for u in utterances:
            f, _ = self._features(frontend.normalise(u["audio"], self.history_s))
            n = min(len(f), len(u["labels"]))
            feats.append(f[:n])
            labs.append(u["labels"][:n])
        f, lab = np.concatenate(feats), np.concatenate(labs)
        self.mean, self.std = f.mean(0), f.std(0) + 1e-6
        z = (f - self.mean) / self.std
        self.templates = np.stack([z[lab == v].mean(0) if (lab == v).any() else np.full(z.shape[1], 1e3)
                                   for v in range(visemes.COUNT)])
        return self

    def __call__(self, audio16k: np.ndarray) -> np.ndarray:
        assert self.templates is not None, "calibrate() first"
        x = frontend.normalise(audio16k, self.history_s)
        f, db = self._features(x)
        z = (f - self.mean) / self.std
        cls = ((z[:, None, :] - self.templates[None]) ** 2).sum(-1).argmin(1)
        gate = _gate(db, self.history_s)
        cls[db < gate] = visemes.SIL
        volume = np.clip((db - gate) / 20.0, 0.0, 1.0)
        raw = visemes.SHAPES[cls] * volume[:, None]
        out = np.zeros_like(raw)
        prev = np.zeros(raw.shape[1], np.float32)
        for i in range(len(raw)):
            prev = prev + self.smoothing * (raw[i] - prev)
            out[i] = prev
        return out.astype(np.float32)
