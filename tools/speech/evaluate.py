"""Evaluation harness: predictors x sets -> markdown table of the metrics in metrics.py.

    python -m tools.speech.evaluate --data /root/.cache/bevy_talking_head/speech_data
    python -m tools.speech.evaluate --predictor mypkg.mymodule:make_predictor   # any audio16k -> [T, 52] callable

Sets:
  espeak_voices    <data>/test_voices-*.npz   (held-out espeak-ng voice variants, training languages)
  espeak_language  <data>/test_language-*.npz (held-out language: Portuguese)
  flite            <data>/flite-*.npz, made here on first use: flite's 5 English voices (kal, kal16, awb, rms, slt),
                   tempo x0.8-1.3, the corpus's English sentences + random English word sequences; phone timings
                   from `flite -psdur`, targets by the same table (ARPAbet -> viseme). Never used for training.
  flite_noisy      the same utterances through a random augmentation chain (augment.py, strength 1): noise,
                   reverb, band-limiting, gain, padding, resampling
  recorded         <data>/recorded-*.npz: real recorded human speech from Debian packages (telephone prompts in
                   en/es/fr/it/ru, Fish Fillets NG dialogues in cs, alsa-utils' channel names), phones by
                   forced alignment (pocketsphinx); built by `python -m tools.speech.recorded` (needs the packages
                   and pocketsphinx: tools/speech/README.md). In the default list when its shards exist;
                   --recorded-by-language adds one set per language ("recorded:en", ...).
A predictor is a callable taking float32 mono 16 kHz audio (unnormalised) and returning [T, 52] ARKit weights at
25 fps (T = ceil(samples / 640); longer outputs are cut, shorter ones scored on their length).
Built-in predictors: "energy" and "mfcc" (baselines.py; MFCC templates calibrated on --calibration train
utterances), "energy-causal" and "mfcc-causal" (the same with the trailing 1.5 s's statistics instead of the whole
clip's; a diagnostic, added by --causal-baselines), "oracle" (the targets themselves: the ceiling each metric can
reach, given the label rules) and "trained" (the exported audio_encoder.onnx + motion_generator.onnx in
--model-dir, run through onnxruntime on the raw audio: model.OnnxModel; "trained" is in the default list when
those files exist).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import itertools
import os
import sys
import time

import numpy as np

from . import augment, baselines, corpus, flite, make_dataset, metrics, shards, targets, visemes

ASSET_MODEL_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "models")
DEFAULT_MODEL_DIR = "/root/.cache/bevy_talking_head/speech_model"
SETS = ("espeak_voices", "espeak_language", "flite", "flite_noisy", "recorded")
_SET_FILES = {"espeak_voices": "test_voices", "espeak_language": "test_language", "flite": "flite",
              "flite_noisy": "flite_noisy", "recorded": "recorded"}


def build_flite_sets(data: str, minutes: float, seed: int = 7) -> None:
    """Writes <data>/flite-0000.npz and <data>/flite_noisy-0000.npz (deterministic)."""
    rng = np.random.default_rng(seed)
    clean, noisy, total, i = [], [], 0.0, 0
    while total < minutes * 60:
        voice = flite.VOICES[i % len(flite.VOICES)]
        sents = corpus.SENTENCES["en"]
        text = sents[int(rng.integers(len(sents)))] if rng.random() < 0.5 else corpus.random_sequence("en", rng)
        stretch = float(rng.uniform(0.8, 1.3))
        audio, sr, phones = flite.synthesize(text, voice, duration_stretch=stretch)
        meta = {"index": i, "lang": "en", "voice": "flite:" + voice, "variant": voice, "text": text,
                "duration_stretch": stretch}
        for out, strength in ((clean, 0.0), (noisy, 1.0)):
            chain = augment.random_chain(np.random.default_rng([seed, i]), strength)
            if strength == 0.0:
                chain = [c for c in chain if c["op"] != "gain"]  # keep flite's own level in the clean set
            y, scale, offset = augment.apply_chain(audio, sr, chain, seed + i)
            moved = [type(p)(p.name, p.start * scale + offset, p.end * scale + offset) for p in phones]
            tg = targets.make_targets(moved, len(y) / augment.TARGET_SR, visemes.arpabet_visemes)
            out.append({"audio": y, "face": tg.face, "labels": tg.labels,
                        "phones": [(p.name, p.start, p.end, p.start) for p in moved],
                        "meta": {**meta, "augment": chain, "seconds": len(y) / augment.TARGET_SR}})
        total += len(audio) / sr
        i += 1
    info = {"source": "flite 2.2 (Debian package flite)", "voices": list(flite.VOICES), "seed": seed}
    shards.write(os.path.join(data, "flite-0000.npz"), clean, info, "flite")
    shards.write(os.path.join(data, "flite_noisy-0000.npz"), noisy, info, "flite_noisy")


def load_set(data: str, name: str, limit: int | None) -> list[dict]:
    utts = list(itertools.islice(shards.iter_split(data, _SET_FILES[name]), limit))
    if not utts:
        how = "python -m tools.speech.recorded (see tools/speech/README.md)" if name == "recorded" else "make_dataset"
        raise SystemExit(f"no shards for set {name} in {data} (run {how} first)")
    return utts


def make_predictors(names: list[str], data: str, n_calibration: int, model_dir: str = "") -> dict:
    out = {}
    for name in names:
        if name == "energy":
            out[baselines.EnergyJaw.name] = baselines.EnergyJaw()
        elif name == "energy-causal":
            p = baselines.EnergyJaw(causal=True)
            out[p.name] = p
        elif name in ("mfcc", "mfcc-causal"):
            calib = itertools.islice(shards.iter_split(data, "train"), n_calibration)
            p = baselines.MfccTemplates(causal=name == "mfcc-causal").calibrate(calib)
            out[p.name] = p
        elif name == "oracle":
            out["target (oracle)"] = "oracle"
        elif name == "trained":
            from . import model
            out[model.OnnxModel.name] = model.OnnxModel(os.path.join(model_dir, "audio_encoder.onnx"),
                                                        os.path.join(model_dir, "motion_generator.onnx"))
        else:
            module, _, attr = name.partition(":")
            factory = getattr(importlib.import_module(module), attr)
            out[name] = factory()
    return out


def evaluate(predictors: dict, sets: dict[str, list[dict]]) -> dict:
    results = {}
    for pname, pred in predictors.items():
        for sname, utts in sets.items():
            acc = metrics.Accumulator()
            t = time.time()
            for u in utts:
                if pred == "oracle":
                    y = u["face"]
                elif pred == "labels":  # the frame labels' one-hot viseme shapes (validate --label-shapes)
                    y = visemes.SHAPES[u["labels"]]
                else:
                    y = pred(u["audio"])
                acc.add(y, u["face"], u["labels"])
            results[(pname, sname)] = {**acc.result(), "seconds": time.time() - t}
    return results


def markdown(results: dict, sets: dict[str, list[dict]]) -> str:
    cols = list(results)
    head = "| metric | " + " | ".join(f"{p} / {s}" for p, s in cols) + " |"
    lines = [head, "|---" * (len(cols) + 1) + "|"]
    for row in metrics.ROWS:
        cells = []
        for c in cols:
            v = results[c][row]
            cells.append("n/a" if np.isnan(v) else (f"{v:+.0f}" if row.endswith("ms") else f"{v:.3f}"))
        lines.append(f"| {row} ({metrics.BETTER[row]}) | " + " | ".join(cells) + " |")
    sizes = ", ".join(f"{s}: {len(u)} utt / {sum(x['meta']['seconds'] for x in u) / 60:.1f} min"
                      for s, u in sets.items())
    return "\n".join(lines) + f"\n\n{datetime.date.today().isoformat()}; sets: {sizes}"


def baseline_names(causal: bool = False) -> tuple[str, str]:
    """The results' keys of the two baselines: the whole-clip ones (the issue's) or their causal variants."""
    return baselines.EnergyJaw(causal).name, baselines.MfccTemplates(causal=causal).name


def wins(results: dict, trained: str, sets, against: tuple[str, str] = baseline_names()) -> dict[str, list[str]]:
    """Rows where `trained` beats both baselines `against` (unrounded) per set."""
    out = {}
    for s in sets:
        out[s] = [row for row in metrics.ROWS if relative_margin(results, trained, s, row, against) > 0]
    return out


def relative_margin(results: dict, trained: str, s: str, row: str,
                    against: tuple[str, str] = baseline_names()) -> float:
    """How far `trained` is ahead of the better of the baselines `against` on `row` of set `s`, relative to that
    baseline (> 0: it beats both; for the A/V offset, distance to 0 is compared)."""
    v = results[(trained, s)][row]
    others = [results[(b, s)][row] for b in against]
    better = metrics.BETTER[row]
    if better == "higher":
        best = max(others)
        ahead = v - best
    elif better == "lower":
        best = min(others)
        ahead = best - v
    else:
        best = min(abs(o) for o in others)
        ahead = best - abs(v)
    return ahead / max(abs(best), 1e-9)  # a baseline at exactly 0 (e.g. no false closures) must not divide by 0


def print_wins(results: dict, trained: str, sets, against: tuple[str, str] = baseline_names()) -> None:
    """Rows won per set, the total, and the selection rule's tie-break: the smallest relative margin on bilabial
    closure recall and vowel false closure over the sets (assets/models/speech_to_motion.md)."""
    won = wins(results, trained, sets, against)
    margin = min(relative_margin(results, trained, s, row, against) for s in sets
                 for row in ("bilabial closure recall", "vowel false closure"))
    versus = "" if against == baseline_names() else f" ({' and '.join(against)})"
    print(f"{trained}: beats both baselines{versus} on {sum(len(r) for r in won.values())} of {6 * len(won)} rows, "
          f"min margin {margin:+.3f}: " + ", ".join(
              f"{s} {len(r)}/6 (not: {', '.join(x for x in metrics.ROWS if x not in r) or '-'})"
              for s, r in won.items()))


def print_precise(results: dict) -> None:
    for k, r in results.items():
        print(k, {row: round(r[row], 5) for row in metrics.ROWS + metrics.DIAGNOSTICS})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=make_dataset.DEFAULT_OUT)
    ap.add_argument("--sets", default=None, help="comma-separated (default: " + ",".join(SETS) + "; recorded only "
                                                   "when its shards exist)")
    ap.add_argument("--recorded-by-language", action="store_true",
                    help="also score the recorded set per language (sets recorded:en, recorded:cs, ...)")
    ap.add_argument("--predictor", action="append",
                    help="energy, mfcc, energy-causal, mfcc-causal, oracle, trained or module:factory (repeatable)")
    ap.add_argument("--model-dir", default=None,
                    help="folder with audio_encoder.onnx + motion_generator.onnx for 'trained' (default: "
                         "assets/models if they are there, else " + DEFAULT_MODEL_DIR + ")")
    ap.add_argument("--max-utterances", type=int, default=None, help="per set")
    ap.add_argument("--calibration", type=int, default=60, help="train utterances for the MFCC templates")
    ap.add_argument("--flite-minutes", type=float, default=10.0)
    ap.add_argument("--rebuild-flite", action="store_true")
    ap.add_argument("--precise", action="store_true", help="also print unrounded values and the rows won")
    ap.add_argument("--causal-baselines", action="store_true",
                    help="also score the baselines with the trailing 1.5 s's statistics instead of the whole clip's "
                         "(a diagnostic; --precise also prints the rows won against them)")
    args = ap.parse_args()
    if args.sets is None:
        set_names = list(SETS)
        if not shards.shard_paths(args.data, _SET_FILES["recorded"]):
            set_names.remove("recorded")
            print(f"note: no recorded-*.npz in {args.data}: the recorded set is left out (build it with "
                  "python -m tools.speech.recorded, see tools/speech/README.md)", file=sys.stderr)
    else:
        set_names = args.sets.split(",")
    if any(s.startswith("flite") for s in set_names) and (
            args.rebuild_flite or not shards.shard_paths(args.data, "flite")):
        if not flite.available():
            raise SystemExit("flite not found: apt-get install flite")
        build_flite_sets(args.data, args.flite_minutes)
    sets = {s: load_set(args.data, s, args.max_utterances) for s in set_names}
    if args.recorded_by_language and "recorded" in sets:
        for lang in sorted({u["meta"]["lang"] for u in sets["recorded"]}):
            sets[f"recorded:{lang}"] = [u for u in sets["recorded"] if u["meta"]["lang"] == lang]
    model_dir = args.model_dir or next((d for d in (ASSET_MODEL_DIR, DEFAULT_MODEL_DIR)
                                        if os.path.exists(os.path.join(d, "motion_generator.onnx"))), "")
    default = (["energy", "mfcc"] + (["energy-causal", "mfcc-causal"] if args.causal_baselines else [])
               + (["trained"] if model_dir else []) + ["oracle"])
    predictors = make_predictors(args.predictor or default, args.data, args.calibration, model_dir)
    results = evaluate(predictors, sets)
    print(markdown(results, sets))
    if args.precise:
        print_precise(results)
        if model_dir and "trained" in (args.predictor or default):
            from . import model
            print_wins(results, model.OnnxModel.name, sets)
            if args.causal_baselines:
                print_wins(results, model.OnnxModel.name, sets, baseline_names(causal=True))


if __name__ == "__main__":
    main()
