"""Generates the synthetic speech -> ARKit dataset with espeak-ng (reproducible from --seed).

    python -m tools.speech.make_dataset --out /root/.cache/bevy_talking_head/speech_data --hours 1

Splits (written into every shard's metadata and into <out>/dataset.json):
  train          training languages x training voice variants x training sentences (+ random word sequences);
                 a share of the utterances (--augment-share) goes through a random augmentation chain (augment.py)
  test_voices    training languages, HELD_OUT_VARIANTS only (never in train), held-out sentences + new random words;
                 clean (no augmentation)
  test_language  HELD_OUT_LANGUAGE (Portuguese: voices pt, pt-br) with any variant; clean
  festival       festival's voices (festival.py) in --festival-languages (default en / it / cs; English weighted
                 x3), training sentences and random words, tempo x0.8-1.3, augmented like train;
                 festival.VAL_VOICES are the val_festival validation view, the others go into training beside train
  hts            festival's statistical parametric voice (festival.HTS_VOICES: Catalan), made like festival;
                 validation only (the val_hts view), --hts-minutes
  kokoro         Kokoro-82M neural speech (kokoro.py; not in the default --splits: needs requirements-kokoro.txt) in
                 kokoro.LANGUAGES (English weighted x3), training sentences and random words, speed 0.8-1.25,
                 augmented like train; --kokoro-minutes. Voices: kokoro.VAL_VOICES on kokoro.VAL_SHARE (20 %) of the
                 utterances (the val_kokoro validation view), else one of the other four (30 %) or a random blend
                 of them (50 %)
Held-out sentences: the last HELD_OUT_SENTENCES sentences of each language's list are used in test sets only.
Per utterance: language (English weighted x3), base voice, variant (or none), rate 120-260 wpm, pitch 20-80,
pitch range 20-90, word gap 0-3 (x10 ms), all drawn from a generator seeded by (seed, split, index).
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import sys
import time

import numpy as np

from . import augment, corpus, espeak, festival, kokoro, shards, targets, visemes

HELD_OUT_LANGUAGE = "pt"
HELD_OUT_VARIANTS = ["m6", "f4", "klatt4", "Alicia", "Hugo", "edward", "grandma", "Storm"]
HELD_OUT_SENTENCES = 2
SPLITS = ("train", "test_voices", "test_language", "festival", "hts", "kokoro")
DEFAULT_OUT = "/root/.cache/bevy_talking_head/speech_data"


def split_definition() -> dict:
    variants = espeak.list_variants()
    train_variants = [v for v in variants if v not in HELD_OUT_VARIANTS]
    return {
        "held_out_language": HELD_OUT_LANGUAGE,
        "held_out_language_voices": corpus.VOICES[HELD_OUT_LANGUAGE],
        "held_out_variants": HELD_OUT_VARIANTS,
        "train_variants": train_variants + ["(none)"],
        "train_languages": [l for l in corpus.VOICES if l != HELD_OUT_LANGUAGE],
        "held_out_sentences_per_language": HELD_OUT_SENTENCES,
        "frame_rate": targets.FPS,
        "sample_rate": augment.TARGET_SR,
        "visemes": list(visemes.NAMES),
        "festival_voices": festival.VOICES,
        "festival_validation_voices": list(festival.VAL_VOICES),
        "festival_hts_voices": festival.HTS_VOICES,
        "kokoro_voices": list(kokoro.VOICES),
        "kokoro_languages": kokoro.LANGUAGES,
    }


def _sentences(lang: str, split: str) -> list[str]:
    s = corpus.SENTENCES[lang]
    return s[:-HELD_OUT_SENTENCES] if split == "train" else s[-HELD_OUT_SENTENCES:]


def _text(lang: str, split: str, rng: np.random.Generator) -> str:
    if rng.random() < 0.5:
        sents = _sentences(lang, split)
        return " ".join(sents[int(rng.integers(len(sents)))] for _ in range(1 + int(rng.random() < 0.3)))
    return corpus.random_sequence(lang, rng)


def _language(langs: list[str], rng: np.random.Generator) -> str:
    """One of `langs`, English weighted x3."""
    weights = np.array([3.0 if l == "en" else 1.0 for l in langs])
    return langs[int(rng.choice(len(langs), p=weights / weights.sum()))]


def _augmented(rng: np.random.Generator, augmented: bool, audio: np.ndarray, sr: int, phones: list, mapper):
    """A random augmentation chain (or none: a resampling round trip) on `audio`; returns the 16 kHz audio, the
    phones moved with it, their targets, the chain's metadata and the (time scale, time offset) it applied."""
    chain = augment.random_chain(rng, 1.0 if augmented else 0.0)
    aug_seed = int(rng.integers(1 << 31))
    audio, scale, offset = augment.apply_chain(audio, sr, chain, aug_seed)
    moved = [espeak.Phone(p.name, p.start * scale + offset, p.end * scale + offset) for p in phones]
    tg = targets.make_targets(moved, len(audio) / augment.TARGET_SR, mapper)
    return audio, moved, tg, {"augment": chain, "augment_seed": aug_seed}, (scale, offset)


def make_festival_utterance(rng: np.random.Generator, index: int, augment_share: float,
                            languages: tuple[str, ...], voices: dict = festival.VOICES) -> dict:
    """One utterance of the festival (or hts) split (see the module doc); deterministic given rng and languages."""
    lang = _language([l for l in voices if l in languages], rng)
    voice = voices[lang][int(rng.integers(len(voices[lang])))]
    stretch = float(rng.uniform(0.8, 1.3))
    text = _text(lang, "train", rng)
    audio, sr, raw = festival.synthesize(text, voice, stretch)
    audio, phones, tg, aug, _ = _augmented(rng, rng.random() < augment_share, audio, sr, raw,
                                           festival.phone_visemes(lang))
    return {
        "audio": audio, "face": tg.face, "labels": tg.labels,
        "phones": [(p.name, p.start, p.end, p.start) for p in phones],
        "meta": {"index": index, "lang": lang, "voice": "festival:" + voice, "variant": voice,
                 "duration_stretch": stretch, "text": text, **aug, "seconds": len(audio) / augment.TARGET_SR},
    }


_KOKORO: list = []  # one kokoro.Synth per worker process


def make_kokoro_utterance(rng: np.random.Generator, index: int, augment_share: float) -> dict:
    """One utterance of the kokoro split (see the module doc); deterministic given rng."""
    if not _KOKORO:
        _KOKORO.append(kokoro.Synth())
    synth = _KOKORO[0]
    lang = _language(list(kokoro.LANGUAGES), rng)
    espeak_voice = kokoro.LANGUAGES[lang][int(rng.integers(len(kokoro.LANGUAGES[lang])))]
    train_voices = [i for i, v in enumerate(kokoro.VOICES) if v not in kokoro.VAL_VOICES]
    val_voices = [i for i, v in enumerate(kokoro.VOICES) if v in kokoro.VAL_VOICES]
    mix, r = np.zeros(len(kokoro.VOICES)), rng.random()
    if r < kokoro.VAL_SHARE:
        mix[val_voices[int(rng.integers(len(val_voices)))]] = 1.0
    elif r < kokoro.VAL_SHARE + 0.3:
        mix[train_voices[int(rng.integers(len(train_voices)))]] = 1.0
    else:
        mix[train_voices] = rng.dirichlet(np.full(len(train_voices), 0.7))
    speed = float(rng.uniform(0.8, 1.25))
    text = _text(lang, "train", rng)
    symbols = synth.tokens(text, lang, espeak_voice)
    if len(symbols) > kokoro.MAX_TOKENS:  # end at the last clause or word boundary that fits
        cut = max(symbols.rfind(",", 0, kokoro.MAX_TOKENS), symbols.rfind(" ", 0, kokoro.MAX_TOKENS))
        symbols = symbols[:cut if cut > 0 else kokoro.MAX_TOKENS]
    audio, raw = synth.synthesize(symbols, synth.style(mix), speed)
    audio, phones, tg, aug, _ = _augmented(rng, rng.random() < augment_share, audio, kokoro.SAMPLE_RATE, raw,
                                           kokoro.phone_visemes)
    name = kokoro.VOICES[int(np.argmax(mix))] if mix.max() == 1.0 else "blend"
    return {
        "audio": audio, "face": tg.face, "labels": tg.labels,
        "phones": [(p.name, p.start, p.end, p.start) for p in phones],
        "meta": {"index": index, "lang": lang, "voice": "kokoro:" + name, "variant": name,
                 "style_weights": [float(w) for w in mix], "speed": speed, "espeak_voice": espeak_voice,
                 "text": text, "symbols": symbols, **aug, "seconds": len(audio) / augment.TARGET_SR},
    }


def make_utterance(job: tuple[int, str, int, float, tuple[str, ...]]) -> dict:
    """One utterance for (seed, split, index, augment_share, festival languages); deterministic."""
    seed, split, index, augment_share, festival_languages = job
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    if split == "festival":
        return make_festival_utterance(rng, index, augment_share, festival_languages)
    if split == "hts":
        return make_festival_utterance(rng, index, augment_share, tuple(festival.HTS_VOICES), festival.HTS_VOICES)
    if split == "kokoro":
        return make_kokoro_utterance(rng, index, augment_share)
    definition = split_definition()
    if split == "test_language":
        lang = HELD_OUT_LANGUAGE
        variants = definition["train_variants"] + HELD_OUT_VARIANTS
    else:
        lang = _language(definition["train_languages"], rng)
        variants = definition["train_variants"] if split == "train" else HELD_OUT_VARIANTS
    base = corpus.VOICES[lang][int(rng.integers(len(corpus.VOICES[lang])))]
    variant = variants[int(rng.integers(len(variants)))]
    voice = base if variant == "(none)" else f"{base}+{variant}"
    params = {"rate": int(rng.integers(120, 261)), "pitch": int(rng.integers(20, 81)),
              "pitch_range": int(rng.integers(20, 91)), "word_gap": int(rng.integers(0, 4))}
    text = _text(lang, split, rng)
    utt = espeak.synthesize(text, voice, **params)
    raw_starts = [p.start for p in utt.phones]
    n_fixed = targets.extend_stop_closures(utt.phones, utt.audio, utt.sample_rate, visemes.espeak_visemes)
    audio, phones, tg, aug, (scale, offset) = _augmented(
        rng, split == "train" and rng.random() < augment_share, utt.audio, utt.sample_rate, utt.phones,
        visemes.espeak_visemes)
    return {
        "audio": audio, "face": tg.face, "labels": tg.labels,
        "phones": [(p.name, p.start, p.end, r * scale + offset) for p, r in zip(phones, raw_starts)],
        "meta": {"index": index, "lang": lang, "voice": voice, "variant": variant, **params, "text": text,
                 **aug, "closures_moved": n_fixed,
                 "seconds": len(audio) / augment.TARGET_SR},
    }


BLOCK = 16  # utterances per worker process (see espeak.py: a fresh process per block keeps output reproducible)


def make_block(job: tuple[int, str, int, float, tuple[str, ...]]) -> list[dict]:
    seed, split, start, augment_share, festival_languages = job
    return [make_utterance((seed, split, start + k, augment_share, festival_languages)) for k in range(BLOCK)]


def generate(out: str, split: str, seconds: float, seed: int, workers: int, augment_share: float,
             shard_seconds: float, stats: dict, festival_languages: tuple[str, ...] = festival.LANGUAGES) -> None:
    """Makes utterances of `split` until `seconds` of audio, writing a shard every `shard_seconds`."""
    definition = {**split_definition(), "seed": seed, "augment_share": augment_share}
    if split == "festival":
        definition["festival_languages"] = list(festival_languages)
    buf, buf_s, total, shard_no, start = [], 0.0, 0.0, 0, 0
    # maxtasksperchild=1: every block of utterances starts in a new process with a fresh libespeak-ng.
    with multiprocessing.Pool(workers, maxtasksperchild=1) as pool:
        while total < seconds:
            jobs = [(seed, split, start + k * BLOCK, augment_share, festival_languages) for k in range(2 * workers)]
            start += len(jobs) * BLOCK
            for u in (u for block in pool.imap(make_block, jobs) for u in block):
                if total >= seconds:
                    break
                s = u["meta"]["seconds"]
                buf.append(u)
                buf_s += s
                total += s
                _count(stats, split, u)
                if buf_s >= shard_seconds:
                    shards.write(os.path.join(out, f"{split}-{shard_no:04d}.npz"), buf, definition, split)
                    shard_no, buf, buf_s = shard_no + 1, [], 0.0
    if buf:
        shards.write(os.path.join(out, f"{split}-{shard_no:04d}.npz"), buf, definition, split)


def _count(stats: dict, split: str, u: dict) -> None:
    m, s = u["meta"], u["meta"]["seconds"]
    st = stats.setdefault(split, {"seconds": 0.0, "utterances": 0, "frames": 0, "lang": collections.Counter(),
                                  "variant": collections.Counter(), "viseme_frames": collections.Counter(),
                                  "unknown": collections.Counter(), "augmented": 0})
    st["seconds"] += s
    st["utterances"] += 1
    st["frames"] += len(u["labels"])
    st["lang"][m["lang"]] += s
    st["variant"][m["variant"]] += s
    st["augmented"] += int(len(m["augment"]) > 2 or m["augment"][0].get("mid_sr") != 16000)
    st["viseme_frames"].update(visemes.NAMES[i] for i in u["labels"])
    before = dict(visemes.UNKNOWN)
    if split in ("festival", "hts"):
        mapper = festival.phone_visemes(m["lang"])
    else:
        mapper = kokoro.phone_visemes if split == "kokoro" else visemes.espeak_visemes
    for name, *_ in u["phones"]:
        mapper(name)
    for k, v in visemes.UNKNOWN.items():
        if v != before.get(k, 0):
            st["unknown"][k] += v - before.get(k, 0)


def print_stats(stats: dict, file=sys.stdout) -> None:
    for split, st in stats.items():
        print(f"\n## {split}: {st['seconds'] / 3600:.3f} h, {st['utterances']} utterances, {st['frames']} frames, "
              f"{st['augmented']} augmented", file=file)
        print("per language (min): " + ", ".join(f"{k} {v / 60:.1f}" for k, v in st["lang"].most_common()), file=file)
        print(f"per variant (min, {len(st['variant'])} variants): "
              + ", ".join(f"{k} {v / 60:.1f}" for k, v in st["variant"].most_common()), file=file)
        total = sum(st["viseme_frames"].values())
        print("viseme frames (%): " + ", ".join(f"{n} {100 * st['viseme_frames'][n] / total:.1f}"
                                               for n in visemes.NAMES), file=file)
        print("unknown phonemes: " + (", ".join(f"{k} x{v}" for k, v in st["unknown"].most_common()) or "none"),
              file=file)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default %(default)s; not inside the repo)")
    ap.add_argument("--hours", type=float, default=1.0, help="hours of training audio")
    ap.add_argument("--test-minutes", type=float, default=10.0, help="minutes of audio per test split")
    ap.add_argument("--festival-minutes", type=float, default=90.0, help="minutes of festival audio")
    ap.add_argument("--festival-languages", default=",".join(festival.LANGUAGES),
                    help="languages of the festival split (of " + ",".join(festival.VOICES) + ")")
    ap.add_argument("--hts-minutes", type=float, default=15.0, help="minutes of the hts split (validation)")
    ap.add_argument("--kokoro-minutes", type=float, default=60.0, help="minutes of the kokoro split")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    ap.add_argument("--augment-share", type=float, default=0.7, help="share of train utterances augmented")
    ap.add_argument("--shard-minutes", type=float, default=10.0)
    ap.add_argument("--splits", default=",".join(s for s in SPLITS if s != "kokoro"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    stats: dict = {}
    t0 = time.time()
    if {"festival", "hts"} & set(args.splits.split(",")) and not festival.available():
        raise SystemExit("festival not found: apt-get install " + " ".join(festival.PACKAGES))
    if "kokoro" in args.splits.split(","):
        try:
            kokoro.check()
        except kokoro.Missing as e:
            raise SystemExit(str(e)) from None
    for split in args.splits.split(","):
        for old in shards.shard_paths(args.out, split):
            os.remove(old)
        seconds = {"train": args.hours * 3600, "festival": args.festival_minutes * 60,
                   "hts": args.hts_minutes * 60, "kokoro": args.kokoro_minutes * 60}.get(split, args.test_minutes * 60)
        generate(args.out, split, seconds, args.seed, args.workers, args.augment_share, args.shard_minutes * 60,
                 stats, tuple(args.festival_languages.split(",")))
        print(f"{split}: done after {time.time() - t0:.0f} s", flush=True)
    path = os.path.join(args.out, "dataset.json")
    old_stats = {}
    if os.path.exists(path):  # splits not made this time keep their stats
        with open(path) as f:
            old_stats = json.load(f).get("stats", {})
    new_stats = {k: {kk: (dict(vv) if isinstance(vv, collections.Counter) else vv) for kk, vv in v.items()}
                 for k, v in stats.items()}
    with open(path, "w") as f:
        json.dump({"split": split_definition(), "seed": args.seed, "augment_share": args.augment_share,
                   "stats": {**old_stats, **new_stats}}, f, indent=1, ensure_ascii=False)
    print_stats(stats)


if __name__ == "__main__":
    main()
