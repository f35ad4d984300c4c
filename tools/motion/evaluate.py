"""Evaluates the motion encoder against the rig's mapping (rig.from_arkit = bases::from_arkit) on held-out tracks.

    $PY -m tools.motion.evaluate --onnx assets/models/motion_encoder.onnx      # what the plugin runs
    $PY -m tools.motion.evaluate --weights /root/.cache/bevy_talking_head/motion_model/model.npz [--sets val]

Sets: `test_voices`, `test_language`, `recorded` (the shipped speech model over the held-out speech shards, composed
with emotions / blinks / gaze / pose by data.py with their own seeds) and `val` (the last 10 % of the training
tracks, which train.py never trains on; used for choosing settings). Every output frame is a valid window's centre
(frames 5 .. T-6 of each track); target = from_arkit(centre frame).

Metrics
  rmse / max       RMS and largest |code - target| over all frames and bases (per basis in the second table)
  jerk ratio       RMS second difference over time of the code / that of the target, all bases pooled
                   (D2 c_t = c_{t-1} - 2 c_t + c_{t+1}); 1 = as jerky as the mapping, < 1 smoother
  blink kept       blink events = frames where the target BLINK_LEFT/RIGHT is a local peak >= 0.5, was < 0.3 within
                   the 3 frames before and is < 0.3 within the 5 after (the life blink, ~6 frames at 25 fps); value =
                   code / target at the peak: mean and smallest
  closure jaw      bilabial closures = frames where the target JAW_OPEN < 0.05 while it is > 0.2 somewhere in the 3
                   frames before and in the 3 after; value = the code's JAW_OPEN there: mean and largest
  lag              the shift (frames, -3..3) of the code that best correlates with the target, all bases pooled
                   (0 = the code is for the centre frame)
Rows: the encoder, and for reference a 3-frame moving average of the exact mapping (a naive temporal smoother).
"""

from __future__ import annotations

import argparse

import numpy as np

from . import data, model, rig


def predictor_numpy(path: str):
    p = model.load(path)
    return lambda w: model.forward(p, w)


def predictor_onnx(path: str, threads: int = 1):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return lambda w: s.run(["code"], {"window": np.ascontiguousarray(w, np.float32)})[0]


def moving_average(w: np.ndarray) -> np.ndarray:
    return rig.from_arkit(w[:, rig.CENTRE - 1:rig.CENTRE + 2]).mean(1)


def run(predict, tracks) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for t in tracks:
        if len(t) < rig.WINDOW:
            continue
        out.append((predict(rig.windows(t)), rig.from_arkit(t[rig.CENTRE:len(t) - rig.CENTRE])))
    return out


def metrics(pairs) -> dict:
    code = np.concatenate([c for c, _ in pairs])
    tgt = np.concatenate([y for _, y in pairs])
    err = code - tgt
    d2c = np.concatenate([c[:-2] - 2 * c[1:-1] + c[2:] for c, _ in pairs])
    d2t = np.concatenate([y[:-2] - 2 * y[1:-1] + y[2:] for _, y in pairs])
    blinks, closures = [], []
    for c, y in pairs:
        for b in (rig.B["blinkLeft"], rig.B["blinkRight"]):
            s = y[:, b]
            for t in range(3, len(s) - 5):
                if (s[t] >= 0.5 and s[t] >= s[t - 1] and s[t] > s[t + 1] and s[t - 3:t].min() < 0.3
                        and s[t + 1:t + 6].min() < 0.3):
                    blinks.append(c[t, b] / s[t])
        j = y[:, rig.B["jawOpen"]]
        for t in range(3, len(j) - 3):
            if j[t] < 0.05 and j[t - 3:t].max() > 0.2 and j[t + 1:t + 4].max() > 0.2:
                closures.append(c[t, rig.B["jawOpen"]])
    lags = range(-3, 4)
    def corr(lag):
        a = np.concatenate([(c - c.mean(0))[max(lag, 0):len(c) + min(lag, 0)] for c, _ in pairs])
        b = np.concatenate([(y - y.mean(0))[max(-lag, 0):len(y) + min(-lag, 0)] for _, y in pairs])
        return (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())
    blinks, closures = np.array(blinks), np.array(closures)
    return {"frames": len(code), "rmse": float(np.sqrt((err ** 2).mean())), "max": float(np.abs(err).max()),
            "rmse_basis": np.sqrt((err ** 2).mean(0)), "max_basis": np.abs(err).max(0),
            "jerk_ratio": float(np.sqrt((d2c ** 2).mean() / (d2t ** 2).mean())),
            "blinks": len(blinks), "blink_mean": float(blinks.mean()) if len(blinks) else float("nan"),
            "blink_min": float(blinks.min()) if len(blinks) else float("nan"),
            "closures": len(closures), "closure_mean": float(closures.mean()) if len(closures) else float("nan"),
            "closure_max": float(closures.max()) if len(closures) else float("nan"),
            "lag": int(max(lags, key=corr))}


def load_sets(names, cache=data.CACHE) -> dict:
    sets = {}
    for n in names:
        if n == "val":
            tracks = [t for t in data.cached_tracks("train", cache) if len(t) >= 34]
            sets[n] = tracks[-max(1, len(tracks) // 10):]
        else:
            sets[n] = data.cached_tracks(n, cache)
    return sets


def table(results: dict) -> str:
    lines = ["| set | predictor | frames | RMSE | max abs | jerk ratio | blinks | blink kept mean / min | "
             "closures | closure jaw mean / max | lag |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (s, name), m in results.items():
        lines.append(f"| {s} | {name} | {m['frames']} | {m['rmse']:.5f} | {m['max']:.4f} | {m['jerk_ratio']:.3f} | "
                     f"{m['blinks']} | {m['blink_mean']:.3f} / {m['blink_min']:.3f} | {m['closures']} | "
                     f"{m['closure_mean']:.4f} / {m['closure_max']:.4f} | {m['lag']} |")
    return "\n".join(lines)


def basis_table(m: dict, title: str) -> str:
    lines = [f"| basis ({title}) | RMSE | max abs |", "|---|---|---|"]
    for i, n in enumerate(rig.NAMES):
        lines.append(f"| {n} | {m['rmse_basis'][i]:.5f} | {m['max_basis'][i]:.4f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", default="")
    ap.add_argument("--weights", default="")
    ap.add_argument("--sets", default=",".join(data.EVAL_SPLITS))
    ap.add_argument("--no-reference", action="store_true", help="leave out the moving-average row")
    ap.add_argument("--per-basis", action="store_true")
    a = ap.parse_args()
    predictors = {}
    if a.onnx:
        predictors["encoder (ONNX Runtime)"] = predictor_onnx(a.onnx)
    if a.weights:
        predictors["encoder (NumPy)"] = predictor_numpy(a.weights)
    if not a.no_reference:
        predictors["3-frame average of the map"] = moving_average
    sets = load_sets(a.sets.split(","))
    results, pooled = {}, {}
    for name, pred in predictors.items():
        allpairs = []
        for s, tracks in sets.items():
            pairs = run(pred, tracks)
            allpairs += pairs
            results[(s, name)] = metrics(pairs)
        if len(sets) > 1:
            pooled[name] = results[("all", name)] = metrics(allpairs)
    print(table(results))
    if a.per_basis:
        name = next(iter(predictors))
        key = ("all", name) if len(sets) > 1 else (next(iter(sets)), name)
        print()
        print(basis_table(results[key], f"{key[0]}, {name}"))


if __name__ == "__main__":
    main()
