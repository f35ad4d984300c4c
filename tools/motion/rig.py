"""The rig's mapping `bases::from_arkit` (plugin/identity/rig.rs) and the input layout of the motion encoder.

Window layout (the ONNX contract): [B, 11, 58] f32, 25 fps, centre frame = index 5; per frame the 52 ARKit weights
in ARKit order (tools/speech/arkit.py NAMES), then head rotation (pitch, yaw, roll, rad), head translation (x, y, z, m).
Output: the 25 motion-basis weights of the centre frame in `bases::NAMES` order, each 0..1.
"""

from __future__ import annotations

import numpy as np

from tools.speech.arkit import INDEX, NAMES as ARKIT_NAMES

WINDOW = 11
CENTRE = 5
FPS = 25
N_ARKIT = 52
N_IN = 58                        # 52 weights + rotation (3) + translation (3)
N_CODE = 25

# bases::NAMES in plugin/identity/rig.rs, index order.
NAMES: tuple[str, ...] = (
    "jawOpen", "smileLeft", "smileRight", "blinkLeft", "blinkRight", "browInnerUp", "frownLeft", "frownRight",
    "stretch", "pucker", "funnel", "upperLipUp", "lowerLipDown", "press", "squintLeft", "squintRight",
    "browDownLeft", "browDownRight", "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "sneerLeft", "sneerRight",
    "eyeWideLeft", "eyeWideRight",
)
assert len(NAMES) == N_CODE
B = {n: i for i, n in enumerate(NAMES)}

# The linear part: code_pre = A @ x + Dw @ relu(D @ x), then clip to 0..1 (non-finite -> 0).
# max(a, b) = b + relu(a - b) makes the rig's max() terms exact with plain ops.
_SINGLE = {"smileLeft": "mouthSmileLeft", "smileRight": "mouthSmileRight", "blinkLeft": "eyeBlinkLeft",
           "blinkRight": "eyeBlinkRight", "browInnerUp": "browInnerUp", "frownLeft": "mouthFrownLeft",
           "frownRight": "mouthFrownRight", "pucker": "mouthPucker", "funnel": "mouthFunnel",
           "browDownLeft": "browDownLeft", "browDownRight": "browDownRight", "browOuterUpLeft": "browOuterUpLeft",
           "browOuterUpRight": "browOuterUpRight", "cheekPuff": "cheekPuff", "sneerLeft": "noseSneerLeft",
           "sneerRight": "noseSneerRight",
           "eyeWideLeft": "eyeWideLeft", "eyeWideRight": "eyeWideRight"}
_BOTH = {"stretch": ("mouthStretchLeft", "mouthStretchRight"), "upperLipUp": ("mouthUpperUpLeft", "mouthUpperUpRight"),
         "lowerLipDown": ("mouthLowerDownLeft", "mouthLowerDownRight")}
# basis: (a-terms, b-terms) with code = max(a, b); each a list of (arkit name, coefficient)
_MAX = {"press": ([("mouthPressLeft", 0.5), ("mouthPressRight", 0.5)], [("mouthRollUpper", 0.5), ("mouthRollLower", 0.5)]),
        "squintLeft": ([("eyeSquintLeft", 1.0)], [("cheekSquintLeft", 1.0)]),
        "squintRight": ([("eyeSquintRight", 1.0)], [("cheekSquintRight", 1.0)])}


def linear_maps() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A [25, 58], D [3, 58], Dw [25, 3] of the exact mapping (see above)."""
    A = np.zeros((N_CODE, N_IN), np.float32)
    D = np.zeros((len(_MAX), N_IN), np.float32)
    Dw = np.zeros((N_CODE, len(_MAX)), np.float32)
    A[B["jawOpen"], INDEX["jawOpen"]] = 1.0
    A[B["jawOpen"], INDEX["mouthClose"]] = -1.0
    for b, a in _SINGLE.items():
        A[B[b], INDEX[a]] = 1.0
    for b, (l, r) in _BOTH.items():
        A[B[b], INDEX[l]] = 0.5
        A[B[b], INDEX[r]] = 0.5
    for k, (b, (a_terms, b_terms)) in enumerate(_MAX.items()):
        for n, c in b_terms:
            A[B[b], INDEX[n]] += c
        for n, c in a_terms:
            D[k, INDEX[n]] += c
        for n, c in b_terms:
            D[k, INDEX[n]] -= c
        Dw[B[b], k] = 1.0
    return A, D, Dw


def from_arkit(w: np.ndarray) -> np.ndarray:
    """bases::from_arkit, written out term by term as in the Rust source: [..., >=52] ARKit weights -> [..., 25]."""
    w = np.asarray(w, np.float32)
    g = lambda n: w[..., INDEX[n]]
    both = lambda l, r: np.float32(0.5) * (g(l) + g(r))
    c = np.zeros(w.shape[:-1] + (N_CODE,), np.float32)
    c[..., B["jawOpen"]] = g("jawOpen") - g("mouthClose")
    for b, a in _SINGLE.items():
        c[..., B[b]] = g(a)
    for b, (l, r) in _BOTH.items():
        c[..., B[b]] = both(l, r)
    c[..., B["press"]] = np.maximum(both("mouthPressLeft", "mouthPressRight"), both("mouthRollUpper", "mouthRollLower"))
    c[..., B["squintLeft"]] = np.maximum(g("eyeSquintLeft"), g("cheekSquintLeft"))
    c[..., B["squintRight"]] = np.maximum(g("eyeSquintRight"), g("cheekSquintRight"))
    with np.errstate(invalid="ignore"):
        c = np.where(np.isfinite(c), np.clip(c, 0.0, 1.0), 0.0).astype(np.float32)
    return c


def windows(track: np.ndarray) -> np.ndarray:
    """[T, 58] track -> [T - 10, 11, 58] windows (centres at frames 5 .. T - 6)."""
    idx = np.arange(track.shape[0] - WINDOW + 1)[:, None] + np.arange(WINDOW)[None, :]
    return track[idx]


def padded_windows(track: np.ndarray) -> np.ndarray:
    """[T, 58] -> [T, 11, 58]: one window per frame, the first/last frame repeated at the ends."""
    pad = np.concatenate([np.repeat(track[:1], CENTRE, 0), track, np.repeat(track[-1:], CENTRE, 0)])
    return windows(pad)


def _self_check() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.2, 1.2, (2000, N_IN)).astype(np.float32)
    A, D, Dw = linear_maps()
    lin = x @ A.T + np.maximum(x @ D.T, 0) @ Dw.T
    err = np.abs(np.clip(lin, 0, 1) - from_arkit(x)).max()
    assert err < 1e-6, err
    assert ARKIT_NAMES[0] == "eyeBlinkLeft" and len(ARKIT_NAMES) == N_ARKIT


_self_check()
