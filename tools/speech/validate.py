"""Validation split: voice variants held out of the training shards (never the evaluation sets), scored with the
harness's metrics for the baselines, a trained model.npz (NumPy forward pass = the ONNX graphs to ~1e-5) and the
oracle.  Every training choice (epochs, loss weights, mixing, thresholds) is made on these numbers only.

    PY=/root/.cache/bevy_talking_head/venv-speech/bin/python
    $PY -m tools.speech.validate --weights /root/.cache/bevy_talking_head/speech_model/model.npz

Sets (all from <data>/train-*.npz, utterances whose espeak variant is in VAL_VARIANTS; train.py leaves them out):
  val_clean  those whose augmentation chain is only a resampling round trip and a gain (no noise, reverb, band
             limits, speed change or padding): clean speech, like three of the four evaluation sets
  val        all of them, as stored (70 % went through make_dataset's augmentation chains)
  val_floor  the same audio plus a stationary white/pink/brown noise floor 25-60 dB under the speech level
             (seeded per utterance; like train.py's --floor-noise, a stand-in for synthesizers/microphones whose
             pauses are not digital silence)
  val_voice  the same utterances pushed through "unseen voice" transforms heavier than training's (a proxy for
             other synthesizers and speakers, built from espeak-ng audio only): resampled by 0.78-0.88 or
             1.12-1.25 and played at 16 kHz (formants, pitch and tempo move together; targets remade from the
             rescaled phones), a first-order spectral tilt, a 3.8 kHz low-pass on half of them (8 kHz voices), a
             noise floor 35-60 dB under the speech (seeded per utterance)
  val_festival  <data>/festival-*.npz utterances of festival.VAL_VOICES (pc_diphone, Italian male; czech_krb,
             Czech child), as stored: voices of another synthesizer, built from recorded human diphones, that
             train.py leaves out (the other festival voices are trained on); only when the festival split exists
  val_hts    <data>/hts-*.npz: festival's HTS voice (festival.HTS_VOICES, Catalan, female), as stored: a statistical
             parametric synthesizer (vocoded speech, like flite's clustergen voices) whose voice, language and
             synthesis method no training data has; only when the hts split exists
  val_kokoro <data>/kokoro-*.npz utterances of kokoro.VAL_VOICES (Kokoro-82M's jf_nezumi, never trained on, in no
             blend), as stored: neural speech; only when the kokoro split has them
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from . import augment, baselines, evaluate, festival, kokoro, make_dataset, model, shards, targets, visemes

# 12 of the 94 training variants (~13 % of the training utterances, every language), chosen for spread: male,
# female, robotic, breathy/whispery, klatt, creaky.
VAL_VARIANTS = ("Andy", "Gene2", "RicishayMax2", "anika", "croak", "f3", "iven3", "klatt2", "m3", "robosoft4",
                "steph2", "whisperf")

CLEAN_OPS = {"via_rate", "gain"}


def is_val(u: dict) -> bool:
    return u["meta"].get("variant") in VAL_VARIANTS + festival.VAL_VOICES + kokoro.VAL_VOICES


def validation_sets(data: str, floor_snr=(25.0, 60.0), seed: int = 5) -> dict[str, list[dict]]:
    val = [u for u in shards.iter_split(data, "train") if is_val(u)]
    floor = []
    for i, u in enumerate(val):
        rng = np.random.default_rng([seed, i])
        snr = float(rng.uniform(*floor_snr))
        colour = ("white", "pink", "brown")[int(rng.integers(3))]
        level = augment.active_rms(u["audio"], 16000) * 10 ** (-snr / 20)
        audio = (u["audio"] + level * augment.colored_noise(len(u["audio"]), rng, colour)).astype(np.float32)
        floor.append({**u, "audio": audio})
    clean = [u for u in val if {c["op"] for c in u["meta"].get("augment", [])} <= CLEAN_OPS]
    sets = {"val_clean": clean, "val": val, "val_floor": floor, "val_voice": voice_set(val, seed)}
    other = [u for u in shards.iter_split(data, "festival") if is_val(u)]
    if other:
        sets["val_festival"] = other
    hts = list(shards.iter_split(data, "hts"))
    if hts:
        sets["val_hts"] = hts
    neural = [u for u in shards.iter_split(data, "kokoro") if is_val(u)]
    if neural:
        sets["val_kokoro"] = neural
    return sets


def voice_set(val: list[dict], seed: int = 5) -> list[dict]:
    """The val_voice view (see the module doc)."""
    out = []
    for i, u in enumerate(val):
        rng = np.random.default_rng([seed, 1000 + i])
        f = float(rng.uniform(0.78, 0.88) if rng.random() < 0.5 else rng.uniform(1.12, 1.25))  # duration factor
        rate = int(round(16000 * f / 50)) * 50
        y = augment.resample(u["audio"], 16000, rate)          # played back at 16 kHz
        scale = len(y) / len(u["audio"])
        a = float(rng.uniform(-0.6, 0.9))                       # tilt: y[n] - a y[n-1]
        y = np.concatenate([y[:1], y[1:] - a * y[:-1]]).astype(np.float32)
        if rng.random() < 0.5:
            y = augment.bandlimit(y, 16000, None, 3800.0)
        y = augment.add_noise(y, 16000, rng, float(rng.uniform(35, 60)), ("white", "pink", "brown")[int(rng.integers(3))])
        y = augment.set_gain(y, 16000, float(rng.uniform(-40, -18)))
        phones = [augment_phone(p, scale) for p in u["phones"]]
        tg = targets.make_targets(phones, len(y) / 16000, visemes.espeak_visemes)
        out.append({**u, "audio": y, "face": tg.face, "labels": tg.labels,
                    "meta": {**u["meta"], "seconds": len(y) / 16000}})
    return out


class _Phone:
    def __init__(self, name, start, end):
        self.name, self.start, self.end = name, start, end


def augment_phone(p, scale: float) -> _Phone:
    return _Phone(p[0], float(p[1]) * scale, float(p[2]) * scale)


class NpzModel:
    """model.NumpyModel with the output options of the npz (see model.NumpyModel)."""

    def __init__(self, path: str) -> None:
        self.m = model.NumpyModel(path)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return self.m(audio)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=make_dataset.DEFAULT_OUT)
    ap.add_argument("--weights", action="append", required=True, help="model.npz (repeatable)")
    ap.add_argument("--calibration", type=int, default=60, help="non-validation train utterances for the MFCC "
                                                                "templates")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--precise", action="store_true", help="print unrounded values too")
    ap.add_argument("--label-shapes", action="store_true",
                    help="also score the frame labels' one-hot viseme shapes (what the viseme head is trained "
                         "towards) against the target faces: a timing diagnostic (--precise: rise/fall lags)")
    args = ap.parse_args()
    sets = validation_sets(args.data)
    preds = {}
    if not args.no_baselines:
        preds[baselines.EnergyJaw.name] = baselines.EnergyJaw()
        calib = itertools.islice((u for u in shards.iter_split(args.data, "train") if not is_val(u)),
                                 args.calibration)
        preds[baselines.MfccTemplates.name] = baselines.MfccTemplates().calibrate(calib)
    for w in args.weights:
        preds[w] = NpzModel(w)
    if not args.no_baselines:
        preds["target (oracle)"] = "oracle"
    if args.label_shapes:
        preds["label shapes"] = "labels"
    results = evaluate.evaluate(preds, sets)
    print(evaluate.markdown(results, sets))
    if args.precise:
        evaluate.print_precise(results)
    if not args.no_baselines:
        for w in args.weights:
            evaluate.print_wins(results, w, sets)


if __name__ == "__main__":
    main()
