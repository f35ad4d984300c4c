"""Evaluation metrics on 25 fps ARKit frames (predicted vs target), pooled over a set of utterances.

  viseme accuracy     share of frames where visemes.classify(pred) (rest -> sil, else the most similar viseme
                      shape by cosine) equals the label
  mouth-open Pearson  correlation of jawOpen (pred vs target) over all frames of the set
  bilabial recall     share of PP-labelled frames (/p b m/) where the predicted lips are closed:
                      lip_opening(pred) <= CLOSED (0.1); lip_opening = max(0, jawOpen - mouthClose)
                      + 0.5 * mean(mouthLowerDown L/R, mouthUpperUp L/R) + 0.5 * mouthFunnel.
                      A face at rest (all 0) has closed lips, so this rewards shutting the mouth at /p b m/;
  vowel false closure share of open-vowel frames (aa, E, oh) where the predicted lips are closed (guards the
                      recall row against a mouth that never opens; lower is better)
  silence at rest     share of interior silence frames (label sil, and so are both neighbours) where every
                      speech weight (jaw/mouth/cheek/tongue) of the prediction is <= REST (0.1)
  A/V offset (ms)     lag of the peak of the summed per-utterance normalised cross-correlation of predicted vs
                      target jawOpen within +-200 ms (+-5 frames, parabolic interpolation between frames);
                      positive = the prediction is late
Diagnostics, not rows (printed by --precise): "rise lag ms" / "fall lag ms", the same lag computed on the rising
(falling) parts of jawOpen's frame-to-frame change only, pred vs target: the A/V offset is roughly a balance of the
two, so a predictor that opens early and closes late (wider than the target) can score ~0 on one voice and not on
another whose edges are weighted differently.
"""

from __future__ import annotations

import numpy as np

from . import arkit, visemes

CLOSED = 0.1
REST = 0.1
MAX_LAG = 5  # frames = 200 ms
JAW = arkit.idx("jawOpen")
_OPEN_VOWELS = [visemes.ID[n] for n in ("aa", "E", "oh")]


def lip_opening(face: np.ndarray) -> np.ndarray:
    c = lambda n: face[:, arkit.idx(n)]  # noqa: E731
    return (np.maximum(0.0, c("jawOpen") - c("mouthClose"))
            + 0.125 * (c("mouthLowerDownLeft") + c("mouthLowerDownRight") + c("mouthUpperUpLeft")
                       + c("mouthUpperUpRight"))
            + 0.5 * c("mouthFunnel"))


def interior_silence(labels: np.ndarray) -> np.ndarray:
    """Frames labelled sil whose neighbours on both sides (last axis) are sil too: the silence-at-rest frames."""
    inner = np.zeros(labels.shape, bool)
    sil = labels == visemes.SIL
    inner[..., 1:-1] = sil[..., 1:-1] & sil[..., :-2] & sil[..., 2:]
    return inner


def _peak_lag_ms(xc: np.ndarray) -> float:
    """Lag of the peak of a cross-correlation over -MAX_LAG..MAX_LAG frames, parabolic interpolation, in ms."""
    k = int(np.argmax(xc))
    frac = 0.0
    if 0 < k < len(xc) - 1:
        a, b, c = xc[k - 1], xc[k], xc[k + 1]
        frac = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    return float((k - MAX_LAG + frac) * 1000 / 25)


def _xcorr(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation for lags -MAX_LAG..MAX_LAG (pred shifted later by lag)."""
    p, t = p - p.mean(), t - t.mean()
    den = np.sqrt((p ** 2).sum() * (t ** 2).sum()) + 1e-9
    out = np.zeros(2 * MAX_LAG + 1)
    for k, lag in enumerate(range(-MAX_LAG, MAX_LAG + 1)):
        if lag >= 0:
            out[k] = (p[lag:] * t[:len(t) - lag]).sum() / den
        else:
            out[k] = (p[:lag] * t[-lag:]).sum() / den
    return out


class Accumulator:
    """Collects (prediction, target face, labels) per utterance; `result()` gives the metrics dict."""

    def __init__(self) -> None:
        self.pred, self.face, self.labels = [], [], []
        self.xc = np.zeros(2 * MAX_LAG + 1)
        self.xc_rise = np.zeros(2 * MAX_LAG + 1)
        self.xc_fall = np.zeros(2 * MAX_LAG + 1)

    def add(self, pred: np.ndarray, face: np.ndarray, labels: np.ndarray) -> None:
        n = min(len(face), len(pred))
        pred = np.zeros_like(face) if n == 0 else np.asarray(pred, np.float32)[:n]
        face, labels = face[:n], labels[:n]
        if n == 0:
            return
        self.pred.append(pred)
        self.face.append(face)
        self.labels.append(labels)
        if n > 2 * MAX_LAG:
            pj, tj = pred[:, JAW], face[:, JAW]
            self.xc += _xcorr(pj, tj)
            dp, dt = np.diff(pj.astype(np.float64)), np.diff(tj.astype(np.float64))
            self.xc_rise += _xcorr(np.maximum(dp, 0), np.maximum(dt, 0))
            self.xc_fall += _xcorr(np.maximum(-dp, 0), np.maximum(-dt, 0))
        self.labels[-1] = np.where(interior_silence(labels), -1, labels)  # -1 marks interior silence (still class sil)

    def result(self) -> dict[str, float]:
        pred, face, lab = np.concatenate(self.pred), np.concatenate(self.face), np.concatenate(self.labels)
        inner = lab == -1
        lab = np.where(inner, visemes.SIL, lab)
        out = {"viseme accuracy": float((visemes.classify(pred) == lab).mean())}
        pj, tj = pred[:, JAW], face[:, JAW]
        out["mouth-open Pearson r"] = float(np.corrcoef(pj, tj)[0, 1]) if pj.std() > 1e-9 and tj.std() > 1e-9 else 0.0
        closed = lip_opening(pred) <= CLOSED
        pp = lab == visemes.PP
        out["bilabial closure recall"] = float(closed[pp].mean()) if pp.any() else float("nan")
        vowels = np.isin(lab, _OPEN_VOWELS)
        out["vowel false closure"] = float(closed[vowels].mean()) if vowels.any() else float("nan")
        at_rest = pred[:, list(arkit.SPEECH)].max(1) <= REST
        out["silence at rest"] = float(at_rest[inner].mean()) if inner.any() else float("nan")
        out["A/V offset ms"] = _peak_lag_ms(self.xc)
        out["rise lag ms"] = _peak_lag_ms(self.xc_rise)
        out["fall lag ms"] = _peak_lag_ms(self.xc_fall)
        out["frames"] = float(len(lab))
        return out


DIAGNOSTICS = ["rise lag ms", "fall lag ms"]
ROWS = ["viseme accuracy", "mouth-open Pearson r", "bilabial closure recall", "vowel false closure",
        "silence at rest", "A/V offset ms"]
BETTER = {"viseme accuracy": "higher", "mouth-open Pearson r": "higher", "bilabial closure recall": "higher",
          "vowel false closure": "lower", "silence at rest": "higher", "A/V offset ms": "closer to 0"}
