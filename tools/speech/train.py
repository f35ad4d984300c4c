"""Train the speech -> ARKit model (model.py) on the train shards with NumPy (hand-written backprop, Adam).

    PY=/root/.cache/bevy_talking_head/venv-speech/bin/python
    $PY -m tools.speech.train --data /root/.cache/bevy_talking_head/speech_data \
        --out /root/.cache/bevy_talking_head/speech_model/model.npz   # 5-13 min on the shared 2-core machine
    $PY -m tools.speech.export_onnx --weights .../model.npz --out-dir ...       # -> audio_encoder.onnx, motion_generator.onnx

Loss per frame: binary cross-entropy of the 52 sigmoid outputs against the 25 fps targets (soft targets in 0..1;
silence frames x --sil-weight, /p b m/ frames x --pp-weight, open vowels aa/E/oh x --vowel-weight) + AUX *
cross-entropy of the 15-way viseme head against the frame labels (or, with --soft, against a blend of the
one-hot label and the target face's viseme weights, soft_posteriors) (open vowels x --vowel-ce) + --open-weight *
relu(--open-margin - lip_opening(regression)) on open-vowel frames + --close-weight * relu(lip_opening(regression)
- --close-margin) on /p b m/ frames (lip_opening = metrics.lip_opening); optional (default off, tried for version 6,
not shipped): --rest-weight * relu(|speech weights of the regression| - --rest-margin) on interior silence frames,
and --mix-open / --mix-close: the two lip hinges again on the exported output (model.mix_output at --mix-tau, back-
propagated through the mix into both heads, mix_backward); --band-masks: SpecAugment-like frequency masks
(band_mask); --swa-start: stochastic weight averaging (tried after version 8, not shipped).  The voice variants of
validate.VAL_VARIANTS are left out of training (the validation split; the per-epoch "val" numbers are on them).
With --festival (the default) the festival split's voices other than festival.VAL_VOICES are trained on too;
with --kokoro the kokoro split's voices other than kokoro.VAL_VOICES.  Batches: B random segments of S frames (the encoder sees each segment's 4 S + 12 front-end rows,
i.e. its real left/right context).  Augmentation on top of the shards' own: a stationary noise floor on
--floor-noise of the utterances (computed once, before the front end), a random smooth spectral tilt per segment
(--eq), a random warp of the band axis per segment (--warp: band b reads band b * alpha, a formant shift), Gaussian
noise on the normalised front-end rows; weight decay.  Deterministic given --seed.  The defaults
are the settings of the shipped model (assets/models/speech_to_motion.md).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from . import arkit, augment, metrics, model, shards, validate, visemes

DEFAULT_OUT = "/root/.cache/bevy_talking_head/speech_model/model.npz"


def load(data: str, split: str, limit: int | None = None, seg: int = 32, shape: bool = True,
         floor_p: float = 0.0, seed: int = 0, floor_snr: tuple[float, float] = (35.0, 70.0), keep=None,
         past: int = 0):
    """Front-end rows, targets, labels per utterance.  floor_p: share of utterances that get a stationary noise
    floor (white/pink/brown, floor_snr dB below the active speech level) added over the whole clip, padding included
    (flite-like floors; the shards' own augmentation mostly keeps digital silence in pauses)."""
    rows, faces, labels = [], [], []
    rng = np.random.default_rng([seed, 99])
    utts = shards.iter_split(data, split)
    if keep is not None:
        utts = (u for u in utts if keep(u))
    for i, u in enumerate(utts):
        if limit is not None and i >= limit:
            break
        t = len(u["labels"])
        x, tt = model.padded(u["audio"], max(t, seg), past)
        if rng.random() < floor_p:
            snr = float(rng.uniform(*floor_snr))
            colour = ("white", "pink", "brown")[int(rng.integers(3))]
            level = augment.active_rms(u["audio"], 16000) * 10 ** (-snr / 20)
            x = x + level * augment.colored_noise(len(x), rng, colour)
        face = np.zeros((tt, 52), np.float32)
        face[:t] = u["face"]
        lab = np.full(tt, visemes.SIL, np.int64)
        lab[:t] = u["labels"]
        rows.append(model.front_end(x, shape)[:4 * tt + 12 + 2 * past])
        faces.append(face)
        labels.append(lab)
    return rows, faces, labels


def soft_posteriors(face: np.ndarray, iters: int = 150) -> np.ndarray:
    """[T, 52] target faces -> [T, 15] viseme weights q on the simplex with face ~ q @ visemes.SHAPES (sil = the
    zero shape takes the rest): the dominance blend of targets.py read back from the face (projected gradient,
    least squares).  Used as soft viseme-head targets (--soft)."""
    S = visemes.SHAPES.astype(np.float64)
    F = face.astype(np.float64)
    n, v = len(F), len(S)
    q = np.full((n, v), 1.0 / v)
    step = 1.0 / np.linalg.eigvalsh(S @ S.T).max()
    for _ in range(iters):
        q = q - step * ((q @ S - F) @ S.T)
        # projection onto the simplex (sorting method)
        u = -np.sort(-q, 1)
        css = np.cumsum(u, 1) - 1.0
        k = np.arange(1, v + 1)
        rho = (u - css / k > 0).sum(1)
        theta = css[np.arange(n), rho - 1] / rho
        q = np.maximum(q - theta[:, None], 0.0)
    return q.astype(np.float32)


def band_warp(rng, xb: np.ndarray, amount: float, mean: np.ndarray, inv_std: np.ndarray) -> np.ndarray:
    """Vocal-tract-length-like warp of the band axis per segment: band b reads band b * alpha (linear
    interpolation, alpha = exp(N(0, amount)), clipped to +-2.5 std), for both band blocks (levels and shape)."""
    b = model.BANDS
    raw = xb / inv_std + mean                # warp the raw ln-power rows, then normalise again
    out = raw.copy()
    nband = 2 if xb.shape[2] == model.d_in(True) else 1
    src = np.arange(b, dtype=np.float64)
    for i in range(len(xb)):
        alpha = float(np.exp(np.clip(rng.normal(0, amount), -2.5 * amount, 2.5 * amount)))
        pos = np.clip(src * alpha, 0, b - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, b - 1)
        w = (pos - lo).astype(np.float32)
        for s in range(nband):
            blk = raw[i, :, s * b:(s + 1) * b]
            out[i, :, s * b:(s + 1) * b] = blk[:, lo] * (1 - w) + blk[:, hi] * w
    return ((out - mean) * inv_std).astype(np.float32)


class Adam:
    def __init__(self, params: dict, lr: float, wd: float) -> None:
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t, self.lr, self.wd = 0, lr, wd

    def step(self, params: dict, grads: dict, lr: float) -> None:
        self.t += 1
        for k, g in grads.items():
            if k.startswith("W"):
                g = g + self.wd * params[k]
            self.m[k] = 0.9 * self.m[k] + 0.1 * g
            self.v[k] = 0.999 * self.v[k] + 0.001 * g * g
            mh = self.m[k] / (1 - 0.9 ** self.t)
            vh = self.v[k] / (1 - 0.999 ** self.t)
            params[k] -= (lr * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)


def _outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum over batch and time of a^T b (one BLAS call)."""
    return a.reshape(-1, a.shape[-1]).T @ b.reshape(-1, b.shape[-1])


OPEN_VOWELS = [visemes.ID[v] for v in ("aa", "E", "oh")]
_LIP_GRAD = np.zeros(52, np.float32)  # d lip_opening / d weights (metrics.lip_opening, where jawOpen > mouthClose)
for _n, _g in (("jawOpen", 1.0), ("mouthClose", -1.0), ("mouthLowerDownLeft", 0.125), ("mouthLowerDownRight", 0.125),
               ("mouthUpperUpLeft", 0.125), ("mouthUpperUpRight", 0.125), ("mouthFunnel", 0.5)):
    _LIP_GRAD[arkit.idx(_n)] = _g


_SPEECH = list(arkit.SPEECH)
_LIP_REST = _LIP_GRAD.copy()
_LIP_REST[[arkit.idx("jawOpen"), arkit.idx("mouthClose")]] = 0.0


def lip_opening(y: np.ndarray) -> np.ndarray:
    """metrics.lip_opening for [..., 52]."""
    return np.maximum(0.0, y[..., arkit.idx("jawOpen")] - y[..., arkit.idx("mouthClose")]) + y @ _LIP_REST


def lip_hinges(face: np.ndarray, vowel: np.ndarray, pp: np.ndarray, open_weight: float, open_margin: float,
               close_weight: float, close_margin: float, n: int) -> tuple[float, np.ndarray]:
    """open_weight * relu(open_margin - lip_opening) on open-vowel frames + close_weight * relu(lip_opening -
    close_margin) on /p b m/ frames, summed over frames / n, and its gradient with respect to `face` [..., 52]."""
    lip = lip_opening(face)
    short = vowel & (lip < open_margin)
    wide = pp & (lip > close_margin)
    hinge = (open_weight * float((open_margin - lip)[short].sum())
             + close_weight * float((lip - close_margin)[wide].sum())) / n
    jaw_over = face[..., arkit.idx("jawOpen")] > face[..., arkit.idx("mouthClose")]
    grad = np.where(jaw_over[..., None], _LIP_GRAD, _LIP_REST)  # d lip_opening / d face
    return hinge, (close_weight * wide - open_weight * short)[..., None] * grad / n


def mix_backward(y: np.ndarray, logits: np.ndarray, g_out: np.ndarray, lam: float, tau: float):
    """Gradients of model.mix_output with respect to y and the logits, given the gradient g_out of its output."""
    z = logits / tau
    prob = np.exp(z - z.max(-1, keepdims=True))
    prob /= prob.sum(-1, keepdims=True)
    shape = prob @ visemes.SHAPES
    ny = np.linalg.norm(y, axis=-1, keepdims=True)
    nshape = np.linalg.norm(shape, axis=-1, keepdims=True)
    ns = nshape + model.MIX_EPS
    g_c = lam * g_out * (shape * ny / ns < 1.0)
    gcs = (g_c * shape).sum(-1, keepdims=True)
    g_y = (1 - lam) * g_out + gcs * y / (np.maximum(ny, 1e-12) * ns)
    g_shape = g_c * ny / ns - gcs * ny * shape / (ns * ns * np.maximum(nshape, 1e-12))
    g_p = g_shape @ visemes.SHAPES.T
    g_z = prob * (g_p - (g_p * prob).sum(-1, keepdims=True))
    return g_y.astype(np.float32), (g_z / tau).astype(np.float32)


def forward_backward(p: dict, xn: np.ndarray, tgt: np.ndarray, lab: np.ndarray, aux: float, pp_weight: float = 1.0,
                     sil_weight: float = 1.0, vowel_weight: float = 1.0, open_margin: float = 0.0,
                     open_weight: float = 0.0, vowel_ce: float = 1.0, close_weight: float = 0.0,
                     close_margin: float = 0.05, soft: np.ndarray | None = None, rest_weight: float = 0.0,
                     rest_margin: float = 0.05, mix_open: float = 0.0, mix_close: float = 0.0,
                     mix: tuple[float, float] = (model.MIX_LAMBDA, model.MIX_TAU), mix_velocity: float = 0.0):
    b, s = tgt.shape[:2]
    c: dict = {}
    f = model.encoder_forward(p, xn, c)
    y, logits = model.generator_forward(p, f, s, c)
    n = b * s
    eps = 1e-7
    bce = -(tgt * np.log(y + eps) + (1 - tgt) * np.log(1 - y + eps)).mean(2).sum() / n
    mse = ((y - tgt) ** 2).mean()
    logits = logits - logits.max(2, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(2, keepdims=True)
    onehot = np.eye(prob.shape[2], dtype=np.float32)[lab]
    if soft is not None:
        onehot = soft
    ce = -(onehot * np.log(prob + eps)).sum(2).sum() / n
    g: dict = {}
    vowel = np.isin(lab, OPEN_VOWELS)
    fw = np.where(lab == visemes.PP, np.float32(pp_weight),
                  np.where(lab == visemes.SIL, np.float32(sil_weight),
                           np.where(vowel, np.float32(vowel_weight), np.float32(1.0))))[..., None]  # frame weights
    da4 = fw * (y - tgt) / (n * 52)
    hinge = 0.0
    pp = lab == visemes.PP
    if open_weight or close_weight:
        # open vowels (aa E oh) must not close the lips, bilabial frames must close them (lip_hinges)
        hinge, dy = lip_hinges(y, vowel, pp, open_weight, open_margin, close_weight, close_margin, n)
        da4 = da4 + dy * y * (1 - y)
    if rest_weight:
        # interior silence (sil with sil on both sides, metrics' definition) must be at rest: rest_weight *
        # relu(|speech weights of y| - rest_margin); the output's speech weights are <= that norm (mix_output
        # keeps the regression's norm), so a margin under metrics.REST keeps the face at rest there
        inner = metrics.interior_silence(lab)
        ys = y[..., _SPEECH]
        norm = np.sqrt((ys * ys).sum(-1)) + 1e-9
        over = inner & (norm > rest_margin)
        hinge += rest_weight * float((norm - rest_margin)[over].sum()) / n
        dy = np.zeros_like(y)
        dy[..., _SPEECH] = rest_weight * over[..., None] * ys / norm[..., None] / n
        da4 = da4 + dy * y * (1 - y)
    cw = np.where(vowel, np.float32(vowel_ce), np.float32(1.0))[..., None]
    dav = aux * cw * (prob - onehot) / n
    if mix_open or mix_close or mix_velocity:
        # penalties on the exported output (model.mix_output), back-propagated through the mix once, so that the
        # viseme head learns them too
        out = model.mix_output(y, logits, *mix)
        g_out = np.zeros_like(out)
        if mix_open or mix_close:
            # the two lip hinges
            mix_hinge, g_hinge = lip_hinges(out, vowel, pp, mix_open, open_margin, mix_close, close_margin, n)
            hinge += mix_hinge
            g_out += g_hinge
        if mix_velocity:
            # frame-to-frame changes must match the targets' (squared error, mean over frame pairs and weights): a
            # blurred output opens early and closes late, the edge lags that make up the A/V row
            d = np.diff(out, axis=1) - np.diff(tgt, axis=1)
            hinge += mix_velocity * float((d * d).sum()) / (n * 52)
            d *= 2 * mix_velocity / (n * 52)
            g_out[:, 1:] += d
            g_out[:, :-1] -= d
        dy, dlogits = mix_backward(y, logits, g_out.astype(np.float32), *mix)
        da4 = da4 + dy * y * (1 - y)
        dav = dav + dlogits
    h2, z = c["h2"], c["z"]
    g["W4"] = _outer(h2, da4)
    g["b4"] = da4.sum((0, 1))
    g["Wv"] = _outer(h2, dav)
    g["bv"] = dav.sum((0, 1))
    dh2 = (da4 @ p["W4"].T + dav @ p["Wv"].T) * (h2 > 0)
    g["W3"] = _outer(z, dh2)
    g["b3"] = dh2.sum((0, 1))
    dz = dh2 @ p["W3"].T
    fdim = f.shape[2]
    df = np.zeros_like(f)
    for k in range(model.window_of(p)):
        df[:, k:k + 2 * s:2] += dz[..., k * fdim:(k + 1) * fdim]
    da2 = df * (1 - f * f)
    g["W2"] = _outer(c["c2"], da2)
    g["b2"] = da2.sum((0, 1))
    dc2 = da2 @ p["W2"].T
    h1 = c["h1"]
    hd = h1.shape[2]
    dh1 = np.zeros_like(h1)
    dh1[:, :-2] += dc2[..., :hd]
    dh1[:, 1:-1] += dc2[..., hd:2 * hd]
    dh1[:, 2:] += dc2[..., 2 * hd:]
    da1 = dh1 * (h1 > 0)
    g["W1"] = _outer(c["c1"], da1)
    g["b1"] = da1.sum((0, 1))
    return {"bce": bce, "mse": mse, "ce": ce, "hinge": hinge}, g


def random_eq(rng, xb: np.ndarray, mean: np.ndarray, inv_std: np.ndarray, amount: float) -> np.ndarray:
    """Adds a random smooth spectral tilt/EQ (3 cosines over the 78 bands, std `amount` in ln power) to the band
    rows of each segment, except where a band sits on its -K floor (silence stays silence)."""
    b = model.BANDS
    k = np.arange(1, 4)[:, None] * np.pi * (np.arange(b)[None, :] + 0.5) / b
    curve = (rng.normal(0, amount / np.sqrt(3), (len(xb), 3)) @ np.cos(k)).astype(np.float32)  # [B, 78]
    out = xb.copy()
    nband = 2 if xb.shape[2] == model.d_in(True) else 1
    for s in range(nband):
        sl = slice(s * b, (s + 1) * b)
        floor = (-model.K + 1e-3 - mean[sl]) * inv_std[sl]
        out[..., sl] += np.where(xb[..., sl] > floor, (curve * inv_std[sl])[:, None, :], 0.0)
    return out


def band_mask(rng, xb: np.ndarray, n_masks: int, width: int) -> np.ndarray:
    """SpecAugment-like frequency masking: per segment, n_masks runs of 1..width mel bands set to the training mean
    (0 after the affine map) in both band blocks, so that no narrow band decides alone."""
    out = xb.copy()
    b = model.BANDS
    nband = 2 if xb.shape[2] == model.d_in(True) else 1
    for i in range(len(xb)):
        for _ in range(n_masks):
            w = int(rng.integers(1, width + 1))
            lo = int(rng.integers(0, b - w + 1))
            for s in range(nband):
                out[i, :, s * b + lo:s * b + lo + w] = 0.0
    return out


def batches(rng, rows, faces, labels, seg, bsz, softs=None, past: int = 0):
    cand = [(u, t0) for u in range(len(faces)) for t0 in range(0, len(faces[u]) - seg + 1, seg)]
    order = rng.permutation(len(cand))
    for i in range(0, len(order) - bsz + 1, bsz):
        xs, ts, ls, qs = [], [], [], []
        for j in order[i:i + bsz]:
            u, t0 = cand[j]
            t0 = min(t0 + int(rng.integers(seg)), len(faces[u]) - seg)  # random phase
            xs.append(rows[u][4 * t0:4 * t0 + 4 * seg + 12 + 2 * past])
            ts.append(faces[u][t0:t0 + seg])
            ls.append(labels[u][t0:t0 + seg])
            if softs is not None:
                qs.append(softs[u][t0:t0 + seg])
        yield np.stack(xs), np.stack(ts), np.stack(ls), (np.stack(qs) if softs is not None else None)


def evaluate_loss(p, rows, faces, labels, mean, inv_std):
    tot, n = np.zeros(2), 0
    for x, f, l in zip(rows, faces, labels):
        xn = ((x - mean) * inv_std)[None]
        y, logits = model.generator_forward(p, model.encoder_forward(p, xn), len(f))
        tot += [((y[0] - f) ** 2).mean() * len(f), (logits[0].argmax(1) == l).sum()]
        n += len(f)
    return tot / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/root/.cache/bevy_talking_head/speech_data")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--segment", type=int, default=32, help="frames per training segment")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--aux", type=float, default=0.3, help="weight of the auxiliary viseme loss")
    ap.add_argument("--pp-weight", type=float, default=1.0, help="loss weight of /p b m/ (PP) frames")
    ap.add_argument("--sil-weight", type=float, default=2.0, help="loss weight of silence frames")
    ap.add_argument("--vowel-weight", type=float, default=1.0, help="loss weight of open-vowel (aa E oh) frames")
    ap.add_argument("--vowel-ce", type=float, default=2.0, help="viseme-loss weight of open-vowel frames")
    ap.add_argument("--open-weight", type=float, default=1.0,
                    help="weight of the penalty relu(open-margin - lip_opening) on open-vowel frames")
    ap.add_argument("--open-margin", type=float, default=0.2)
    ap.add_argument("--close-weight", type=float, default=1.0,
                    help="weight of the penalty relu(lip_opening - close-margin) on /p b m/ frames")
    ap.add_argument("--close-margin", type=float, default=0.05)
    ap.add_argument("--rest-weight", type=float, default=0.0,
                    help="weight of the penalty relu(|speech weights| - rest-margin) on interior silence frames")
    ap.add_argument("--rest-margin", type=float, default=0.05)
    ap.add_argument("--mix-open", type=float, default=0.0,
                    help="weight of the open-vowel penalty on the exported output (model.mix_output at --mix-tau)")
    ap.add_argument("--mix-close", type=float, default=0.0, help="the same for the /p b m/ penalty")
    ap.add_argument("--mix-velocity", type=float, default=0.0,
                    help="weight of the squared error of the exported output's frame-to-frame changes vs the targets'")
    ap.add_argument("--mix-tau", type=float, default=1.15,
                    help="softmax temperature of the penalties on the exported output")
    ap.add_argument("--eq", type=float, default=1.0, help="random smooth EQ per segment, ln-power units (std)")
    ap.add_argument("--floor-snr", default="25,60", help="noise floor range, dB below the speech level")
    ap.add_argument("--input-noise", type=float, default=0.1)
    ap.add_argument("--h1", type=int, default=192)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--h2", type=int, default=384)
    ap.add_argument("--soft", type=float, default=0.0,
                    help="viseme-head target = (1 - soft) * one-hot label + soft * the target face's viseme weights "
                         "(soft_posteriors)")
    ap.add_argument("--soft-pp-hard", action="store_true",
                    help="with --soft: /p b m/ frames keep their one-hot label (their target faces are closures "
                         "imposed by rule, not a dominance blend)")
    ap.add_argument("--warp", type=float, default=0.08, help="band-axis warp per segment, std of ln(alpha)")
    ap.add_argument("--band-masks", type=int, default=0, help="frequency masks per segment (band_mask)")
    ap.add_argument("--band-mask-width", type=int, default=8, help="widest frequency mask, mel bands")
    ap.add_argument("--past", type=int, default=0,
                    help="experimental: the generator also reads this many 50 Hz features before its +-2 window "
                         "(more history, no more look-ahead; export_onnx and the plugin support 0 only)")
    ap.add_argument("--max-utterances", type=int, default=None)
    ap.add_argument("--festival", action=argparse.BooleanOptionalAction, default=True,
                    help="also train on the festival split (festival.VAL_VOICES left out); --no-festival: "
                         "version 4's data")
    ap.add_argument("--kokoro", action=argparse.BooleanOptionalAction, default=False,
                    help="also train on the kokoro split (Kokoro-82M neural speech, make_dataset --splits kokoro)")
    ap.add_argument("--festival-repeat", type=int, default=1, help="festival utterances per epoch, times")
    ap.add_argument("--no-shape", action="store_true", help="leave out the spectral-shape rows (80 inputs, not 158)")
    ap.add_argument("--floor-noise", type=float, default=0.5, help="share of train utterances given a noise floor")
    ap.add_argument("--swa-start", type=int, default=0,
                    help="stochastic weight averaging: from this epoch on the learning rate stays at --swa-lr and the "
                         "saved weights are the mean of the weights after each of those epochs (0: off)")
    ap.add_argument("--swa-lr", type=float, default=5e-4)
    args = ap.parse_args()
    if not 0 <= args.swa_start < args.epochs:
        ap.error("--swa-start must be 0 (off) or an epoch before --epochs")
    rng = np.random.default_rng(args.seed)
    t_start = time.time()
    shape = not args.no_shape
    floor_snr = tuple(float(v) for v in args.floor_snr.split(","))
    rows, faces, labels = load(args.data, "train", args.max_utterances, args.segment, shape, args.floor_noise,
                               args.seed, floor_snr, keep=lambda u: not validate.is_val(u), past=args.past)
    if args.festival:
        more = load(args.data, "festival", None, args.segment, shape, args.floor_noise, args.seed + 1000, floor_snr,
                    keep=lambda u: not validate.is_val(u), past=args.past)
        rows = rows + more[0] * args.festival_repeat
        faces, labels = faces + more[1] * args.festival_repeat, labels + more[2] * args.festival_repeat
    if args.kokoro:
        more = load(args.data, "kokoro", None, args.segment, shape, args.floor_noise, args.seed + 2000, floor_snr,
                    keep=lambda u: not validate.is_val(u), past=args.past)
        rows, faces, labels = rows + more[0], faces + more[1], labels + more[2]
    vrows, vfaces, vlabels = load(args.data, "train", None, 1, shape, keep=validate.is_val, past=args.past)
    allrows = np.concatenate(rows)
    mean = allrows.mean(0).astype(np.float32)
    inv_std = (1.0 / (allrows.std(0) + 1e-3)).astype(np.float32)
    del allrows
    rows = [((x - mean) * inv_std).astype(np.float32) for x in rows]
    softs = None
    if args.soft:
        softs = []
        for f, l in zip(faces, labels):
            q = soft_posteriors(f)
            if args.soft_pp_hard:
                q[l == visemes.PP] = np.eye(len(visemes.NAMES), dtype=np.float32)[visemes.PP]
            softs.append(((1 - args.soft) * np.eye(len(visemes.NAMES), dtype=np.float32)[l] + args.soft * q
                          ).astype(np.float32))
    print(f"loaded {len(rows)} utterances, {sum(len(f) for f in faces)} frames in {time.time() - t_start:.1f} s",
          flush=True)
    p = model.init_params(rng, args.h1, args.features, args.h2, d=model.d_in(shape),
                          window=model.FEATURE_WINDOW + args.past)
    opt = Adam(p, args.lr, args.wd)
    steps_per_epoch = sum(1 for _ in range(0, sum(len(f) // args.segment for f in faces) - args.batch + 1,
                                           args.batch))
    # Without SWA the learning rate falls from --lr to 0 over all epochs (cosine); with it, to --swa-lr over the
    # epochs before --swa-start, then it stays there while the weights are averaged.
    n_steps = (args.swa_start or args.epochs) * steps_per_epoch
    lr_end = args.swa_lr if args.swa_start else 0.0
    swa, swa_count = None, 0
    step = 0
    for epoch in range(args.epochs):
        t0, acc = time.time(), []
        for xb, tb, lb, qb in batches(rng, rows, faces, labels, args.segment, args.batch, softs, args.past):
            if args.input_noise:
                xb = xb + rng.normal(0, args.input_noise, xb.shape).astype(np.float32)
            lr = lr_end + (args.lr - lr_end) * 0.5 * (1 + np.cos(np.pi * min(step / max(n_steps, 1), 1.0)))
            if args.eq:
                xb = random_eq(rng, xb, mean, inv_std, args.eq)
            if args.warp:
                xb = band_warp(rng, xb, args.warp, mean, inv_std)
            if args.band_masks:
                xb = band_mask(rng, xb, args.band_masks, args.band_mask_width)
            losses, grads = forward_backward(p, xb, tb, lb, args.aux, args.pp_weight, args.sil_weight,
                                             args.vowel_weight, args.open_margin, args.open_weight, args.vowel_ce,
                                             args.close_weight, args.close_margin, qb, args.rest_weight,
                                             args.rest_margin, args.mix_open, args.mix_close,
                                             (model.MIX_LAMBDA, args.mix_tau), args.mix_velocity)
            opt.step(p, grads, lr)
            acc.append([losses["bce"], losses["mse"], losses["ce"]])
            step += 1
        a = np.mean(acc, 0)
        v = evaluate_loss(p, vrows, vfaces, vlabels, mean, inv_std)
        print(f"epoch {epoch + 1:2d}  train bce {a[0]:.4f} mse {a[1]:.5f} viseme-ce {a[2]:.3f}  |  val "
              f"mse {v[0]:.5f} aux-viseme-acc {v[1]:.3f}  ({time.time() - t0:.1f} s)", flush=True)
        if args.swa_start and epoch >= args.swa_start:
            swa_count += 1
            if swa is None:
                swa = {k: w.copy() for k, w in p.items()}
            else:
                for k in swa:
                    swa[k] += (p[k] - swa[k]) / swa_count  # running mean, float32 like the weights
    if swa is not None:
        p = swa
        v = evaluate_loss(p, vrows, vfaces, vlabels, mean, inv_std)
        print(f"SWA mean of {swa_count} epochs  |  val mse {v[0]:.5f} aux-viseme-acc {v[1]:.3f}", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez(args.out, mean=mean, inv_std=inv_std, **{k: v for k, v in p.items()},
             config=np.array(json.dumps({**vars(args), "train_seconds": time.time() - t_start})))
    print(f"saved {args.out}; total {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    main()
