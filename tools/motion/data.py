"""Training / evaluation tracks for the motion encoder: 25 fps [T, 58] coefficient tracks composed like the plugin.

Speech: the shipped speech model (assets/models/audio_encoder.onnx + motion_generator.onnx, through
tools.speech.model.OnnxModel, as the plugin runs it) over the speech shards' audio. Train tracks use the `train-*`
shards only; evaluation tracks use the held-out `test_voices`, `test_language` and `recorded` shards.

Composition (a port of plugin/motion/expression.rs `Expression::step` / `compose` / `Life`, randomised):
  sessions = utterances joined with silent stretches (0-3 s of zero speech, sometimes 4-10 s of rest);
  emotion  = a sequence of segments (2-10 s), each one of the 8 shipped profiles (assets/emotions.ron mapped to
             ARKit with emotion.rs's AU table) at a random intensity, or a random sparse profile (2-6 upper-face /
             cheek / brow / eye / mouth-corner weights, sometimes a lip-opening one, random intensity); blend time
             0 (abrupt switch) in ~25 % of switches, else 0.2-1.5 s smoothstep as in `Expression::current`;
  style    = expression amplitude 0.6-1.3, head-motion energy 0-1.5, blink rate 8-30 per minute;
  life     = Poisson blinks (>= 0.6 s apart, close 70 ms / hold 30 ms / open 160 ms), saccadic gaze in eyeLook*,
             idle sway + speech-driven nods (rotation), small random translation drift;
  edges    = all-zero stretches (everything 0, pose too) and expression_scale 0 sessions.
Cached as .npz under --cache (default /root/.cache/bevy_talking_head/motion_data).

    $PY -m tools.motion.data            # builds speech_{train,test_voices,test_language,recorded}.npz + tracks
"""

from __future__ import annotations

import argparse
import os
import re
import time

import numpy as np

from tools.speech import shards
from tools.speech.arkit import INDEX, NAMES
from .rig import FPS, N_IN

DATA = "/root/.cache/bevy_talking_head/speech_data"
CACHE = "/root/.cache/bevy_talking_head/motion_data"
TRAIN_SPLITS = ("train",)
EVAL_SPLITS = ("test_voices", "test_language", "recorded")
DT = 1.0 / FPS

# plugin/motion/emotion.rs action_unit
AU = {
    "AU1": [("browInnerUp", 1.0)], "AU2": [("browOuterUpLeft", 1.0), ("browOuterUpRight", 1.0)],
    "AU4": [("browDownLeft", 1.0), ("browDownRight", 1.0)], "AU5": [("eyeWideLeft", 1.0), ("eyeWideRight", 1.0)],
    "AU6": [("cheekSquintLeft", 1.0), ("cheekSquintRight", 1.0), ("eyeSquintLeft", 0.4), ("eyeSquintRight", 0.4)],
    "AU7": [("eyeSquintLeft", 1.0), ("eyeSquintRight", 1.0)], "AU9": [("noseSneerLeft", 1.0), ("noseSneerRight", 1.0)],
    "AU10": [("mouthUpperUpLeft", 1.0), ("mouthUpperUpRight", 1.0)],
    "AU12": [("mouthSmileLeft", 1.0), ("mouthSmileRight", 1.0)], "L12": [("mouthSmileLeft", 1.0)],
    "R12": [("mouthSmileRight", 1.0)], "AU14": [("mouthDimpleLeft", 1.0), ("mouthDimpleRight", 1.0)],
    "L14": [("mouthDimpleLeft", 1.0)], "R14": [("mouthDimpleRight", 1.0)],
    "AU15": [("mouthFrownLeft", 1.0), ("mouthFrownRight", 1.0)],
    "AU16": [("mouthLowerDownLeft", 1.0), ("mouthLowerDownRight", 1.0)], "AU17": [("mouthShrugLower", 1.0)],
    "AU20": [("mouthStretchLeft", 1.0), ("mouthStretchRight", 1.0)],
    "AU23": [("mouthPressLeft", 0.7), ("mouthPressRight", 0.7)], "AU24": [("mouthPressLeft", 1.0), ("mouthPressRight", 1.0)],
    "AU25": [("jawOpen", 0.15)], "AU26": [("jawOpen", 0.5)], "AU43": [("eyeBlinkLeft", 1.0), ("eyeBlinkRight", 1.0)],
}
OPENS_LIPS = np.array([n in ("jawOpen", "mouthFunnel", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
                             "mouthUpperUpRight") for n in NAMES])
IS_EYE = np.array([n.startswith("eye") for n in NAMES])
# Weights a random emotion may use (upper face, cheeks, brows, eyes, nose, mouth corners, lip press/roll, pucker).
RANDOM_EMOTION = [n for n in NAMES if n.startswith(("brow", "cheek", "nose", "eyeSquint", "eyeWide", "eyeBlink"))
                  or n in ("mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft",
                           "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight", "mouthPressLeft",
                           "mouthPressRight", "mouthRollUpper", "mouthRollLower", "mouthPucker", "mouthShrugLower",
                           "mouthShrugUpper", "mouthLeft", "mouthRight", "cheekPuff")]
RANDOM_OPEN = ["jawOpen", "mouthFunnel", "mouthUpperUpLeft", "mouthUpperUpRight", "mouthLowerDownLeft",
               "mouthLowerDownRight"]


def shipped_emotions(path: str = "assets/emotions.ron") -> dict[str, tuple[np.ndarray, tuple[float, float, float]]]:
    """name -> (52 weights at intensity 1, (expression_amplitude, head_motion_energy, blink_rate_per_min))."""
    text = "\n".join(l.split("//")[0] for l in open(path, encoding="utf-8").read().splitlines())
    out = {}
    for m in re.finditer(r'"(\w+)"\s*:\s*\(\s*units\s*:\s*\{([^}]*)\}\s*,\s*style\s*:\s*\(([^)]*)\)', text):
        w = np.zeros(52, np.float32)
        for unit, val in re.findall(r'"(\w+)"\s*:\s*([0-9.]+)', m.group(2)):
            for name, amount in AU[unit]:
                w[INDEX[name]] = min(w[INDEX[name]] + amount * float(val), 1.0)
        style = dict(re.findall(r"(\w+)\s*:\s*([0-9.]+)", m.group(3)))
        out[m.group(1)] = (w, (float(style["expression_amplitude"]), float(style["head_motion_energy"]),
                               float(style["blink_rate_per_min"])))
    assert len(out) == 8, sorted(out)
    return out


# ---------------------------------------------------------------- speech tracks (shipped speech model)

def speech_tracks(split: str, cache: str = CACHE, data: str = DATA) -> list[np.ndarray]:
    """[T, 52] speech-model tracks of every utterance of a split (cached)."""
    path = os.path.join(cache, f"speech_{split}.npz")
    if not os.path.exists(path):
        from tools.speech.model import OnnxModel
        m = OnnxModel("assets/models/audio_encoder.onnx", "assets/models/motion_generator.onnx")
        tracks, t0 = [], time.time()
        for u in shards.iter_split(data, split):
            tracks.append(m(u["audio"]).astype(np.float32))
        off = np.concatenate([[0], np.cumsum([len(t) for t in tracks])]).astype(np.int64)
        os.makedirs(cache, exist_ok=True)
        np.savez(path, face=np.concatenate(tracks), offsets=off)
        print(f"{split}: {len(tracks)} utterances, {off[-1]} frames, {time.time() - t0:.0f} s", flush=True)
    with np.load(path) as z:
        face, off = z["face"], z["offsets"]
    return [face[off[i]:off[i + 1]] for i in range(len(off) - 1)]


# ---------------------------------------------------------------- the plugin's composition (expression.rs)

def _clean(x):
    return np.where(np.isfinite(x), np.clip(x, 0.0, 1.0), 0.0)


def compose(speech, emotion, amplitude, scale, speaking, nod, blink, gaze, sway, energy, translation):
    """expression.rs `compose` for one frame -> [58]."""
    amp = float(np.clip(amplitude / 3.0, 0, 1)) * 3.0
    s, e = _clean(speech), _clean(emotion) * max(scale, 0.0)
    w = np.where(OPENS_LIPS, s * amp + e * (1.0 - speaking), s * amp + e)
    w = np.where(IS_EYE, e, w)
    w[INDEX["mouthClose"]] = s[INDEX["mouthClose"]]
    w = _clean(w)
    b = float(np.clip(blink, 0, 1))
    for bn, wn in (("eyeBlinkLeft", "eyeWideLeft"), ("eyeBlinkRight", "eyeWideRight")):
        w[INDEX[bn]] = max(w[INDEX[bn]], b)
        w[INDEX[wn]] *= 1.0 - b
    gx, gy = gaze
    for n, v in (("eyeLookOutLeft", gx), ("eyeLookInRight", gx), ("eyeLookInLeft", -gx), ("eyeLookOutRight", -gx),
                 ("eyeLookUpLeft", gy), ("eyeLookUpRight", gy), ("eyeLookDownLeft", -gy), ("eyeLookDownRight", -gy)):
        w[INDEX[n]] = float(np.clip(w[INDEX[n]] + max(v, 0.0), 0, 1))
    rot = (np.asarray(sway) + np.array([nod * np.radians(3.0), 0, 0])) * energy
    return np.concatenate([w, rot, translation]).astype(np.float32)


class Life:
    """expression.rs `Life` (blinks, saccades, idle sway), NumPy random streams instead of splitmix."""
    def __init__(self, rng: np.random.Generator):
        self.rng, self.t = rng, 0.0
        self.next_blink = rng.uniform(0.0, 3.0)
        self.blink_started = None
        self.gaze, self.target = np.zeros(2), np.zeros(2)
        self.next_saccade = rng.uniform(0.2, 1.0)
        self.phases = rng.uniform(0, 2 * np.pi, 6)

    def step(self, dt: float, rate_per_min: float):
        self.t += dt
        t, rate = self.t, max(rate_per_min, 0.0) / 60.0
        if self.blink_started is None and t >= self.next_blink:
            if rate > 0:
                self.blink_started = t
            gap = -np.log(max(self.rng.uniform(), 1e-9)) / rate if rate > 0 else 1.0
            self.next_blink = t + max(gap, 0.6)
        blink = 0.0
        if self.blink_started is not None:
            s = t - self.blink_started
            closed = s / 0.07 if s < 0.07 else 1.0 if s < 0.10 else 1.0 - (s - 0.10) / 0.16
            if closed <= 0 and s > 0.07:
                self.blink_started = None
            blink = float(np.clip(closed, 0, 1))
        if t >= self.next_saccade:
            self.target = np.array([0.25 * self.rng.uniform(-1, 1), 0.15 * self.rng.uniform(-1, 1)])
            self.next_saccade = t + 0.6 + 1.9 * self.rng.uniform()
        self.gaze += (self.target - self.gaze) * (1.0 - np.exp(-dt / 0.015))
        p = self.phases
        wave = lambda f, ph: np.sin(2 * np.pi * f * t + ph)
        sway = np.radians([1.5 * wave(0.11, p[0]) + 0.6 * wave(0.29, p[1]),
                           2.0 * wave(0.07, p[2]) + 0.7 * wave(0.23, p[3]),
                           0.8 * wave(0.13, p[4]) + 0.3 * wave(0.31, p[5])])
        return blink, self.gaze.copy(), sway


def random_emotion(rng, profiles) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A shipped profile at a random intensity (style interpolated from neutral's) or a random sparse one."""
    neutral = profiles["neutral"][1]
    if rng.uniform() < 0.5:
        name = rng.choice(sorted(profiles))
        w, style = profiles[name]
        k = rng.uniform(0.3, 1.0)
        return w * k, tuple(a + (b - a) * k for a, b in zip(neutral, style))
    w = np.zeros(52, np.float32)
    names = list(rng.choice(RANDOM_EMOTION, size=rng.integers(2, 7), replace=False))
    if rng.uniform() < 0.2:
        names.append(rng.choice(RANDOM_OPEN))
    level = rng.uniform(0.2, 1.0)
    for n in names:
        w[INDEX[n]] = np.clip(level * rng.uniform(0.4, 1.2), 0, 1)
    if rng.uniform() < 0.5:       # symmetric pairs, as most expressions are
        for n in names:
            other = n.replace("Left", "Right") if "Left" in n else n.replace("Right", "Left")
            if other in INDEX:
                w[INDEX[other]] = w[INDEX[n]]
    return w, (rng.uniform(0.6, 1.3), rng.uniform(0.0, 1.5), rng.uniform(8.0, 30.0))


def compose_session(speech: np.ndarray, rng: np.random.Generator, profiles) -> np.ndarray:
    """One speech track [T, 52] -> a composed [T, 58] track (the plugin's `Expression::step` each 40 ms)."""
    T = len(speech)
    life = Life(rng)
    scale = 0.0 if rng.uniform() < 0.05 else rng.uniform(0.6, 1.2)
    # emotion segments
    frm = to = random_emotion(rng, profiles) if rng.uniform() < 0.7 else (np.zeros(52, np.float32), (1.0, 1.0, 17.0))
    blend, blend_secs = 1.0, 0.6
    next_switch = rng.uniform(1.0, 8.0)
    since, nod = 1e9, 0.0
    drift = np.zeros(3)
    drift_scale = rng.uniform(0, 0.01)
    out = np.zeros((T, N_IN), np.float32)
    t = 0.0
    for i in range(T):
        t += DT
        if t >= next_switch:
            k = blend_t(blend)
            cur_w = frm[0] + (to[0] - frm[0]) * k
            cur_s = tuple(a + (b - a) * k for a, b in zip(frm[1], to[1]))
            frm, to = (cur_w, cur_s), random_emotion(rng, profiles)
            blend_secs = 0.0 if rng.uniform() < 0.25 else rng.uniform(0.2, 1.5)
            blend = 0.0 if blend_secs > 0 else 1.0
            next_switch = t + rng.uniform(2.0, 10.0)
        blend = min(blend + DT / blend_secs, 1.0) if blend_secs > 0 else 1.0
        k = blend_t(blend)
        ew = frm[0] + (to[0] - frm[0]) * k
        amp, energy, rate = (a + (b - a) * k for a, b in zip(frm[1], to[1]))
        s = speech[i]
        moving = float(_clean(s[OPENS_LIPS]).max())
        since = 0.0 if moving > 0.08 else since + DT
        speaking = 1.0 - float(np.clip((since - 0.3) / 0.3, 0, 1))
        nod += (float(_clean(s[INDEX["jawOpen"]])) - nod) * (1 - np.exp(-DT / 0.15))
        blink, gaze, sway = life.step(DT, rate)
        drift = 0.98 * drift + drift_scale * rng.normal(size=3) * 0.2
        out[i] = compose(s, ew, amp, scale, speaking, nod, blink, gaze, sway, energy, drift)
    return out


def blend_t(b: float) -> float:
    b = min(max(b, 0.0), 1.0)
    return b * b * (3 - 2 * b)


def sessions(utterances: list[np.ndarray], rng: np.random.Generator, target_secs: float = 40.0) -> list[np.ndarray]:
    """Joins utterances with silences into sessions of about target_secs."""
    out, cur, n = [], [], 0
    for u in utterances:
        gap = rng.uniform(4, 10) if rng.uniform() < 0.1 else rng.uniform(0, 3)
        cur += [np.zeros((int(gap * FPS), 52), np.float32), u]
        n += int(gap * FPS) + len(u)
        if n >= target_secs * FPS:
            out.append(np.concatenate(cur))
            cur, n = [], 0
    if cur:
        out.append(np.concatenate(cur))
    return out


def build(splits, seed: int, cache: str = CACHE, data: str = DATA) -> list[np.ndarray]:
    """Composed [T, 58] tracks for the splits' speech, plus edge tracks (all zero; zero with blinks only)."""
    profiles = shipped_emotions()
    rng = np.random.default_rng(seed)
    tracks = []
    for split in splits:
        for s in sessions(speech_tracks(split, cache, data), rng):
            tracks.append(compose_session(s, rng, profiles))
    # edges: an all-zero track, and zero stretches cut into composed tracks
    tracks.append(np.zeros((250, N_IN), np.float32))
    for tr in tracks[: len(tracks) // 5]:
        a = rng.integers(0, max(len(tr) - 100, 1))
        tr[a:a + rng.integers(25, 100)] = 0.0
    return tracks


def cached_tracks(kind: str, cache: str = CACHE, data: str = DATA) -> list[np.ndarray]:
    """kind 'train' (train shards, seed 1) or one of EVAL_SPLITS (seed 2 + index)."""
    path = os.path.join(cache, f"tracks_{kind}.npz")
    if not os.path.exists(path):
        t0 = time.time()
        splits = TRAIN_SPLITS if kind == "train" else (kind,)
        seed = 1 if kind == "train" else 2 + EVAL_SPLITS.index(kind)
        tracks = build(splits, seed, cache, data)
        off = np.concatenate([[0], np.cumsum([len(t) for t in tracks])]).astype(np.int64)
        np.savez(path, x=np.concatenate(tracks), offsets=off)
        print(f"tracks_{kind}: {len(tracks)} tracks, {off[-1]} frames, {time.time() - t0:.0f} s", flush=True)
    with np.load(path) as z:
        x, off = z["x"], z["offsets"]
    return [x[off[i]:off[i + 1]] for i in range(len(off) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=CACHE)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--kinds", default="train," + ",".join(EVAL_SPLITS))
    a = ap.parse_args()
    for kind in a.kinds.split(","):
        cached_tracks(kind, a.cache, a.data)


if __name__ == "__main__":
    main()
