"""The motion encoder E_m: NumPy forward / backward (training) and the definition the ONNX export reproduces.

    x        [N, 11, 58] raw window (ARKit weights, head rotation rad, head translation m; centre = frame 5)
    exact    = A x_c + Dw relu(D x_c)                     the rig's `bases::from_arkit` before its clamp, fixed
                                                          (rig.linear_maps; x_c = the centre frame)
    z        = (clip(x, LO, HI) - mean) / std             fixed per-channel normalisation (inside the ONNX graph)
    h0       = relu(conv_valid_k3(z; W0, b0))             [N, 9, C]
    h_{k+1}  = h_k + conv_same_k3(relu(conv_same_k3(h_k; Wa_k, ba_k)); Wb_k, bb_k)     (residual blocks)
    r        = flatten(relu(h_K)) @ Wh + bh               [N, 25]   (Wh starts at 0: E_m starts as the exact map)
    code     = clip(exact + r, 0, 1)
The learned branch only corrects the exact per-frame map, so the output is the rig's mapping unless training found
that the 11-frame context should change it (the temporal term of train.py).
"""

from __future__ import annotations

import numpy as np

from . import rig

C = 24              # channels
BLOCKS = 2          # residual blocks
T0 = rig.WINDOW - 2  # time steps after the first (valid) convolution
# input clip range per channel: weights 0..1, rotation +-1 rad, translation +-0.5 m (for the learned branch only)
LO = np.concatenate([np.zeros(52), -np.ones(3), -0.5 * np.ones(3)]).astype(np.float32)
HI = np.concatenate([np.ones(52), np.ones(3), 0.5 * np.ones(3)]).astype(np.float32)


def init_params(rng: np.random.Generator, mean: np.ndarray, std: np.ndarray) -> dict:
    he = lambda fan_in, shape: (rng.normal(size=shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    p = {"mean": mean.astype(np.float32), "std": std.astype(np.float32),
         "W0": he(3 * rig.N_IN, (3, rig.N_IN, C)), "b0": np.zeros(C, np.float32),
         "Wh": np.zeros((T0 * C, rig.N_CODE), np.float32), "bh": np.zeros(rig.N_CODE, np.float32)}
    for k in range(BLOCKS):
        p[f"Wa{k}"] = he(3 * C, (3, C, C))
        p[f"ba{k}"] = np.zeros(C, np.float32)
        p[f"Wb{k}"] = he(3 * C, (3, C, C)) * 0.5
        p[f"bb{k}"] = np.zeros(C, np.float32)
    return p


TRAINABLE = ["W0", "b0", "Wh", "bh"] + [f"{n}{k}" for k in range(BLOCKS) for n in ("Wa", "ba", "Wb", "bb")]


def count_params(p: dict) -> int:
    return int(sum(p[k].size for k in TRAINABLE))


def _conv(x: np.ndarray, W: np.ndarray, b: np.ndarray, same: bool) -> np.ndarray:
    """x [N, T, Ci], W [3, Ci, Co] (cross-correlation, tap k sees x[t + k - 1] for 'same')."""
    if same:
        x = np.pad(x, ((0, 0), (1, 1), (0, 0)))
    T = x.shape[1] - 2
    return x[:, 0:T] @ W[0] + x[:, 1:T + 1] @ W[1] + x[:, 2:T + 2] @ W[2] + b


def _conv_back(x: np.ndarray, W: np.ndarray, g: np.ndarray, same: bool):
    """Gradients of _conv: (dx, dW, db)."""
    if same:
        x = np.pad(x, ((0, 0), (1, 1), (0, 0)))
    T = g.shape[1]
    Ci, Co = W.shape[1], W.shape[2]
    g2 = g.reshape(-1, Co)
    dW = np.stack([x[:, k:k + T].reshape(-1, Ci).T @ g2 for k in range(3)])
    db = g2.sum(0)
    dx = np.zeros_like(x)
    for k in range(3):
        dx[:, k:k + T] += g @ W[k].T
    if same:
        dx = dx[:, 1:-1]
    return dx, dW, db


_A, _D, _DW = rig.linear_maps()


def exact(x: np.ndarray) -> np.ndarray:
    """The fixed path (pre-clip rig mapping of the centre frame) [N, 25]."""
    xc = x[:, rig.CENTRE]
    return xc @ _A.T + np.maximum(xc @ _D.T, 0.0) @ _DW.T


def forward(p: dict, x: np.ndarray, cache: dict | None = None) -> np.ndarray:
    """x [N, 11, 58] -> code [N, 25] (float32)."""
    x = np.asarray(x, np.float32)
    z = (np.clip(x, LO, HI) - p["mean"]) / p["std"]
    h = np.maximum(_conv(z, p["W0"], p["b0"], False), 0.0)
    hs = [h]
    for k in range(BLOCKS):
        a = _conv(h, p[f"Wa{k}"], p[f"ba{k}"], True)
        ra = np.maximum(a, 0.0)
        h = h + _conv(ra, p[f"Wb{k}"], p[f"bb{k}"], True)
        hs += [a, ra, h]
    f = np.maximum(h, 0.0).reshape(len(x), -1)
    pre = exact(x) + f @ p["Wh"] + p["bh"]
    if cache is not None:
        cache.update(z=z, hs=hs, f=f, pre=pre)
    return np.clip(pre, 0.0, 1.0).astype(np.float32)


def backward(p: dict, cache: dict, dout: np.ndarray) -> dict:
    """Gradients of the trainable parameters given dLoss/dcode [N, 25]."""
    g = {}
    pre = cache["pre"]
    dpre = dout * ((pre > 0.0) & (pre < 1.0))
    f, hs = cache["f"], cache["hs"]
    g["Wh"] = f.T @ dpre
    g["bh"] = dpre.sum(0)
    h = hs[-1]
    dh = (dpre @ p["Wh"].T).reshape(h.shape) * (h > 0)
    for k in reversed(range(BLOCKS)):
        h_prev, a, ra = hs[1 + 3 * k - 1 if k == 0 else 3 * k], hs[1 + 3 * k], hs[2 + 3 * k]
        h_prev = hs[0] if k == 0 else hs[3 * k]
        dra, g[f"Wb{k}"], g[f"bb{k}"] = _conv_back(ra, p[f"Wb{k}"], dh, True)
        da = dra * (a > 0)
        dhp, g[f"Wa{k}"], g[f"ba{k}"] = _conv_back(h_prev, p[f"Wa{k}"], da, True)
        dh = dh + dhp
    dh0 = dh * (hs[0] > 0)
    _, g["W0"], g["b0"] = _conv_back(cache["z"], p["W0"], dh0, False)
    return g


def load(path: str) -> dict:
    z = np.load(path)
    return {k: z[k] for k in z.files}


def _grad_check() -> None:
    rng = np.random.default_rng(0)
    p = init_params(rng, np.zeros(rig.N_IN), np.ones(rig.N_IN))
    p["Wh"] = (rng.normal(size=p["Wh"].shape) * 0.05).astype(np.float32)
    p = {k: v.astype(np.float64) for k, v in p.items()}
    x = rng.uniform(0, 1, (4, rig.WINDOW, rig.N_IN))
    w = rng.normal(size=(4, rig.N_CODE))
    cache = {}
    forward(p, x, cache)
    # float64 check of the analytic gradient against finite differences
    def loss(q):
        z = (np.clip(x, LO, HI) - q["mean"]) / q["std"]
        h = np.maximum(_conv(z, q["W0"], q["b0"], False), 0.0)
        for k in range(BLOCKS):
            h = h + _conv(np.maximum(_conv(h, q[f"Wa{k}"], q[f"ba{k}"], True), 0), q[f"Wb{k}"], q[f"bb{k}"], True)
        pre = exact(x) + np.maximum(h, 0).reshape(4, -1) @ q["Wh"] + q["bh"]
        return float((np.clip(pre, 0, 1) * w).sum())
    cache = {}
    z = (np.clip(x, LO, HI) - p["mean"]) / p["std"]
    h = np.maximum(_conv(z, p["W0"], p["b0"], False), 0.0)
    hs = [h]
    for k in range(BLOCKS):
        a = _conv(h, p[f"Wa{k}"], p[f"ba{k}"], True)
        ra = np.maximum(a, 0)
        h = h + _conv(ra, p[f"Wb{k}"], p[f"bb{k}"], True)
        hs += [a, ra, h]
    f = np.maximum(h, 0).reshape(4, -1)
    pre = exact(x) + f @ p["Wh"] + p["bh"]
    g = backward(p, dict(z=z, hs=hs, f=f, pre=pre), w)
    for name in TRAINABLE:
        flat = p[name].reshape(-1)
        for j in rng.choice(flat.size, 3, replace=False):
            old = flat[j]
            flat[j] = old + 1e-6
            lp = loss(p)
            flat[j] = old - 1e-6
            lm = loss(p)
            flat[j] = old
            num = (lp - lm) / 2e-6
            ana = g[name].reshape(-1)[j]
            assert abs(num - ana) < 1e-4 * max(1.0, abs(num)), (name, num, ana)
    print("gradient check ok")


if __name__ == "__main__":
    _grad_check()
    p = init_params(np.random.default_rng(0), np.zeros(rig.N_IN), np.ones(rig.N_IN))
    print("parameters:", count_params(p))
