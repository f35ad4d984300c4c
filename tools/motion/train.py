"""Trains the motion encoder (model.py) on composed tracks (data.py): hand-written backprop + Adam, seeded.

    $PY -m tools.motion.train --out /root/.cache/bevy_talking_head/motion_model/model.npz

Batches are S chunks of L + 10 consecutive frames, i.e. L consecutive windows per chunk, so the L outputs are the
encoder's code over L consecutive frames. With e = code - from_arkit(centre) and D2 the second difference over
those frames:
    loss = mean(e^2) + lam_rel * mean((D2 e)^2) + lam_abs * mean((D2 code)^2)
lam_rel penalises jerk beyond the target's own (zero at the exact mapping); lam_abs penalises the code's own jerk
(smoothing: it trades target error for smoothness, so it is kept small enough for blinks and /p b m/ closures).
The last 10 % of the training tracks (by index) are a validation split, never trained on; the loss on it is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from . import data, model, rig

OUT = "/root/.cache/bevy_talking_head/motion_model/model.npz"


def d2(x: np.ndarray) -> np.ndarray:
    """Second difference along axis 1."""
    return x[:, :-2] - 2 * x[:, 1:-1] + x[:, 2:]


def d2_back(g: np.ndarray) -> np.ndarray:
    """Adjoint of d2: [S, L-2, K] -> [S, L, K]."""
    out = np.zeros((g.shape[0], g.shape[1] + 2, g.shape[2]), g.dtype)
    out[:, :-2] += g
    out[:, 1:-1] -= 2 * g
    out[:, 2:] += g
    return out


def loss_and_grad(p, x, S, L, lam_rel, lam_abs, grad=True):
    """x [S, L + 10, 58] -> (loss terms dict, grads or None)."""
    win = np.stack([rig.windows(c) for c in x]).reshape(S * L, rig.WINDOW, rig.N_IN)
    y = rig.from_arkit(x[:, rig.CENTRE:rig.CENTRE + L])                       # [S, L, 25]
    cache = {} if grad else None
    out = model.forward(p, win, cache).reshape(S, L, rig.N_CODE)
    e = out - y
    de, do = d2(e), d2(out)
    n, n2 = e.size, de.size
    terms = {"mse": float((e ** 2).mean()), "jerk_rel": float((de ** 2).mean()), "jerk_abs": float((do ** 2).mean())}
    terms["loss"] = terms["mse"] + lam_rel * terms["jerk_rel"] + lam_abs * terms["jerk_abs"]
    if not grad:
        return terms, None
    dout = 2 * e / n + d2_back(2 * lam_rel * de / n2 + 2 * lam_abs * do / n2)
    return terms, model.backward(p, cache, dout.reshape(S * L, rig.N_CODE).astype(np.float32))


def sample(tracks, rng, S, L):
    out = np.empty((S, L + rig.WINDOW - 1, rig.N_IN), np.float32)
    lens = np.array([len(t) for t in tracks], float)
    for i, k in enumerate(rng.choice(len(tracks), S, p=lens / lens.sum())):
        a = rng.integers(0, len(tracks[k]) - out.shape[1] + 1)
        out[i] = tracks[k][a:a + out.shape[1]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32, help="chunks per step (S)")
    ap.add_argument("--length", type=int, default=24, help="consecutive outputs per chunk (L)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lam-rel", type=float, default=1.0)
    ap.add_argument("--lam-abs", type=float, default=0.0)
    ap.add_argument("--cache", default=data.CACHE)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    tracks = [t for t in data.cached_tracks("train", a.cache) if len(t) >= a.length + rig.WINDOW]
    n_val = max(1, len(tracks) // 10)
    train, val = tracks[:-n_val], tracks[-n_val:]
    frames = np.concatenate(train)
    mean = np.clip(frames, model.LO, model.HI).mean(0)
    std = np.maximum(np.clip(frames, model.LO, model.HI).std(0), 0.05)
    p = model.init_params(rng, mean, std)
    print(f"{len(train)} train tracks ({len(frames)} frames), {len(val)} validation; "
          f"{model.count_params(p)} parameters", flush=True)
    val_rng = np.random.default_rng(1000)
    val_batches = [sample(val, val_rng, 64, a.length) for _ in range(8)]
    m = {k: np.zeros_like(p[k]) for k in model.TRAINABLE}
    v = {k: np.zeros_like(p[k]) for k in model.TRAINABLE}
    b1, b2, t0 = 0.9, 0.999, time.time()
    for step in range(1, a.steps + 1):
        x = sample(train, rng, a.batch, a.length)
        terms, g = loss_and_grad(p, x, a.batch, a.length, a.lam_rel, a.lam_abs)
        lr = a.lr * 0.5 * (1 + np.cos(np.pi * (step - 1) / a.steps))
        for k in model.TRAINABLE:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            p[k] = (p[k] - lr * (m[k] / (1 - b1 ** step)) / (np.sqrt(v[k] / (1 - b2 ** step)) + 1e-8)).astype(np.float32)
        if step % 250 == 0 or step == a.steps:
            vt = [loss_and_grad(p, xb, 64, a.length, a.lam_rel, a.lam_abs, grad=False)[0] for xb in val_batches]
            vm = {k: np.mean([t[k] for t in vt]) for k in vt[0]}
            print(f"step {step}: train loss {terms['loss']:.3e} | val loss {vm['loss']:.3e} mse {vm['mse']:.3e} "
                  f"jerk_rel {vm['jerk_rel']:.3e} jerk_abs {vm['jerk_abs']:.3e} | {time.time() - t0:.0f} s", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    settings = {k: getattr(a, k) for k in ("seed", "steps", "batch", "length", "lr", "lam_rel", "lam_abs")}
    np.savez(a.out, **p, settings=np.array(json.dumps(settings)))
    print("saved", a.out, settings)


if __name__ == "__main__":
    main()
