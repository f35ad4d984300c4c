"""Recorded human speech from Debian packages, with phone timings: the evaluation set `recorded`.

    python -m tools.speech.recorded --out /root/.cache/bevy_talking_head/speech_data      # writes recorded-NNNN.npz
    python -m tools.speech.recorded --check en,es,fr,it,ru,cs,nl   # the alignment check (aligners vs each other)

Sources (real recordings of people reading a known text; nothing synthesized; never used for training):
  asterisk-core-sounds-{en,es,fr,it,ru}-g722 1.6.1   telephone prompts read by voice actors (CC-BY-SA-3.0; ru:
        CC-BY-3.0), G.722 (16 kHz, 50-7000 Hz). Transcripts: core-sounds-<lang>.txt.gz of the metapackage
        asterisk-core-sounds-<lang> ("name: text"). Speakers: Allison Smith (en, es), June Wallack (fr-CA),
        Carlo Flora (it, male), ivrvoice.ru's speaker (ru, female).
  fillets-ng-data{,-cs} 1.0.1   the spoken Czech dialogues of the game Fish Fillets NG (GPL-2), Ogg Vorbis, actors
        (not credited in the package) voicing the two fish (font_small, font_big; other characters - statue, parrot,
        robot dog ... - are left out: few lines each, not checked). The lines carry reverberation (pauses
        only ~10-20 dB under the speech, tails decaying for ~0.5 s). Transcripts: fillets-ng-data's
        script/<level>/dialogs_<lang>.lua (dialogId -> dialogStr); sounds: sound/<level>/<lang>/<id>.ogg.
        The Dutch lines (fillets-ng-data-nl) fail the alignment check and are left out unless --with-dutch.
  alsa-utils 1.2.8   /usr/share/sounds/alsa/{Front,Rear,Side}_*.wav: "Front Center" ... (GPL-2), one female voice.
Items whose text holds stage directions ("[tones]", "(enfatico)" are dropped from the text; text only made of them
is skipped), keypad symbols (* #) or is longer than --max-seconds are skipped.

Phone timings (the utterance's meta says which aligner made its phones):
  pocketsphinx (English; PyPI wheel pocketsphinx 5.1.1 with its en-us acoustic model and CMU dictionary): HMM
        forced alignment of the transcript (words -> phones -> states, 10 ms frames), a silence first (else the
        first word starts at 0 s), optional silences between words; ARPAbet phones -> visemes.arpabet_visemes.
        Used when every word is in the dictionary (numbers are spelt out first).
  pocketsphinx-espeak (every other language, and English words missing from the dictionary): espeak-ng's phonemes
        for the transcript (its own lexicon and rules for the language), each mapped to one ARPAbet phone of the
        en-us model (`arpabet_of`), force-aligned the same way; the phones keep their espeak names
        (-> visemes.espeak_visemes). A cross-language alignment: the English model has no Czech /r̝/ or French
        nasal vowels, it takes the nearest English phone.
  Where the HMM alignment fails (no path inside the beam: the audio does not fit the transcript well enough) the
  recording is left out (--dtw-fallback aligns it with DTW instead).
  dtw-espeak (cross-check): espeak-ng speaks the transcript at a rate that makes its speech as long as the
        recording's; its phoneme events (after targets.extend_stop_closures) are mapped onto the recording by
        dynamic time warping of MFCCs (dtw_features). Independent of pocketsphinx, so the two can check each other.
The check (--check LANGS) aligns a sample of every group all ways and prints how far apart the aligners are (word
starts, frame labels, the harness metrics of one alignment's targets scored against the other's) and how each fits
the recording's level (onsets/offsets, quiet pauses); numbers in tools/speech/README.md.

Targets: targets.make_targets, the same as every other set (25 fps ARKit faces, viseme labels).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import glob
import gzip
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time

import numpy as np
import scipy.signal

from . import espeak, frontend, shards, targets, visemes

SR = 16_000
DEFAULT_OUT = "/root/.cache/bevy_talking_head/speech_data"
SPLIT = "recorded"
HOP_S = 0.01
PER_SPEAKER_MINUTES = 10.0

# espeak-ng voices for the DTW reference: a female variant (+f3) for the voices whose median F0 is above 185 Hz
# (autocorrelation pitch on 15 files each; Carlo 180, the big fish 138 / 148 Hz keep the male default): +f3
# matched Allison's English better than the default voice (README).
ASTERISK = {  # lang: (voice folder, speaker, espeak voice, license)
    "en": ("en_US_f_Allison", "Allison Smith (f)", "en-us+f3", "CC-BY-SA-3.0"),
    "es": ("es_MX_f_Allison", "Allison Smith (f)", "es-419+f3", "CC-BY-SA-3.0"),
    "fr": ("fr_CA_f_June", "June Wallack (f)", "fr+f3", "CC-BY-SA-3.0"),
    "it": ("it_IT_m_Carlo", "Carlo Flora (m)", "it", "CC-BY-SA-3.0"),
    "ru": ("ru_RU_f_IvrvoiceRU", "ivrvoice.ru (f)", "ru+f3", "CC-BY-3.0"),
}
FILLETS = {"cs": "cs"}  # lang: espeak voice
# fillets-ng-data-nl (Dutch, 1529 lines) fails the check: pocketsphinx aligns only ~half of the lines, and those
# disagree with the DTW alignment far more than in any other group (median 58-85 ms, p90 0.7-0.9 s; README).
# `--with-dutch` adds it anyway.
FILLETS_EXTRA = {"nl": "nl"}
FILLETS_SPEAKERS = {"font_small": "+f3", "font_big": ""}  # small fish: median F0 271 (cs) / 219 Hz (nl)
# Debian 12 (bookworm) versions the set was made from; package_version() asks dpkg for the installed one.
PACKAGE_VERSIONS = {"asterisk-core-sounds": "1.6.1-1", "fillets-ng-data": "1.0.1-1.1", "alsa-utils": "1.2.8-1"}


@dataclasses.dataclass
class Item:
    source: str  # asterisk / fillets / alsa
    package: str
    license: str
    lang: str
    speaker: str
    path: str
    text: str
    name: str
    espeak_voice: str


# ---- sources --------------------------------------------------------------------------------------------------------
_DIRECTION = re.compile(r"\[[^\]]*\]|\([^)]*\)")


def clean_text(text: str) -> str | None:
    """Drops stage directions and typographic quotes; None when nothing speakable is left or the text names keypad
    symbols (how they were read is not written)."""
    t = _DIRECTION.sub(" ", text).replace("“", " ").replace("”", " ").replace('"', " ")
    if any(c in t for c in "*#<>"):
        return None
    t = re.sub(r"\s+", " ", t).strip()
    return t if re.search(r"\w", t) else None


def asterisk_items(root: str, lang: str) -> list[Item]:
    folder, speaker, voice, lic = ASTERISK[lang]
    txt = os.path.join(root, f"usr/share/doc/asterisk-core-sounds-{lang}/core-sounds-{lang}.txt.gz")
    sounds = os.path.join(root, "usr/share/asterisk/sounds", folder)
    if not (os.path.exists(txt) and os.path.isdir(sounds)):
        return []
    items = []
    with gzip.open(txt, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            name, _, text = line.partition(":")
            name = name.strip()
            text = re.sub(rf"^\s*{re.escape(name)}\s*:", "", text)  # "conf-adminmenu: conf-adminmenu: ..." (ru)
            path = os.path.join(sounds, name + ".g722")
            text = clean_text(text)
            if text and os.path.exists(path):
                items.append(Item("asterisk", f"asterisk-core-sounds-{lang}-g722", lic, lang, speaker, path, text,
                                  name, voice))
    return items


_LUA = re.compile(r'dialogId\(\s*"([^"]+)"\s*,\s*"([^"]+)"\s*,\s*"(?:[^"\\]|\\.)*"\s*\)\s*'
                  r'dialogStr\(\s*"((?:[^"\\]|\\.)*)"\s*\)', re.S)


def fillets_items(root: str, lang: str) -> list[Item]:
    base = os.path.join(root, "usr/share/games/fillets-ng")
    items = []
    for script in sorted(glob.glob(os.path.join(base, "script", "*", f"dialogs_{lang}.lua"))):
        level = os.path.basename(os.path.dirname(script))
        with open(script, encoding="utf-8", errors="replace") as f:
            lua = f.read()
        for m in _LUA.finditer(lua):
            ident, font, text = m.group(1), m.group(2), m.group(3).replace('\\"', '"')
            path = os.path.join(base, "sound", level, lang, ident + ".ogg")
            text = clean_text(text)
            if font in FILLETS_SPEAKERS and text and os.path.exists(path):
                items.append(Item("fillets", f"fillets-ng-data-{lang}", "GPL-2", lang, f"{lang} {font}", path,
                                  text, f"{level}/{ident}", {**FILLETS, **FILLETS_EXTRA}[lang] + FILLETS_SPEAKERS[font]))
    return items


def alsa_items(root: str) -> list[Item]:
    items = []
    for path in sorted(glob.glob(os.path.join(root, "usr/share/sounds/alsa/*_*.wav"))):
        text = os.path.basename(path)[:-4].replace("_", " ")
        items.append(Item("alsa", "alsa-utils", "GPL-2", "en", "alsa-utils (f)", path, text, text, "en-us+f3"))
    return items


def all_items(root: str, with_dutch: bool = False) -> list[Item]:
    items = []
    for lang in ASTERISK:
        items += asterisk_items(root, lang)
    for lang in list(FILLETS) + (list(FILLETS_EXTRA) if with_dutch else []):
        items += fillets_items(root, lang)
    return items + alsa_items(root)


def load_audio(path: str) -> np.ndarray:
    """float32 mono 16 kHz. G.722 via ffmpeg (Debian package ffmpeg), the rest via soundfile."""
    if path.endswith(".g722"):
        raw = subprocess.run(["ffmpeg", "-v", "error", "-f", "g722", "-i", path, "-f", "s16le", "-ac", "1", "-ar",
                              str(SR), "-"], capture_output=True, check=True).stdout
        return np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0
    import soundfile

    x, sr = soundfile.read(path, dtype="float32", always_2d=True)
    x = x.mean(1)
    if sr != SR:
        g = np.gcd(sr, SR)
        x = scipy.signal.resample_poly(x, SR // g, sr // g).astype(np.float32)
    return x


# ---- level ----------------------------------------------------------------------------------------------------------
def level_db(x: np.ndarray, hop: int = 160, win: int = 400) -> np.ndarray:
    """dB of 25 ms frames every 10 ms (frame k centred at 10 k + 12.5 ms), relative to the clip's 95th percentile."""
    n = max(0, 1 + (len(x) - win) // hop)
    if n == 0:
        return np.zeros(0)
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    db = 10 * np.log10((x.astype(np.float64)[idx] ** 2).mean(1) + 1e-12)
    return db - np.percentile(db, 95)


def speech_span(x: np.ndarray, thresh_db: float = -35.0) -> tuple[float, float]:
    db = level_db(x)
    on = np.flatnonzero(db > thresh_db)
    if len(on) == 0:
        return 0.0, len(x) / SR
    return on[0] * HOP_S, on[-1] * HOP_S + 0.025


# ---- espeak reference + DTW -------------------------------------------------------------------------------------------
def _resample(x: np.ndarray, sr: int) -> np.ndarray:
    g = np.gcd(sr, SR)
    return scipy.signal.resample_poly(x, SR // g, sr // g).astype(np.float32)


def espeak_reference(text: str, voice: str, rec_span_s: float):
    """espeak-ng speaks `text` with its speech (first to last non-pause phone) as long as `rec_span_s`.
    Returns (16 kHz audio, phones with closure-corrected starts, word start times, rate)."""
    rate = 175
    for _ in range(2):
        u = espeak.synthesize(text, voice, rate=rate)
        sp = [p for p in u.phones if not p.name.startswith("_") and visemes.espeak_visemes(p.name)]
        span = (sp[-1].end - sp[0].start) if sp else 0.0
        if span <= 0 or rec_span_s <= 0:
            break
        new = int(np.clip(round(rate * span / rec_span_s), 80, 450))
        if abs(new - rate) <= 3:
            break
        rate = new
    events = espeak._ENGINE._events
    word_samples = [s for t, s, _ in events if t == espeak.EVENT_WORD]
    phone_samples = [(s, n) for t, s, n in events if t == espeak.EVENT_PHONEME]
    words = []
    for ws in word_samples:  # the word starts at its first phoneme event (at or after the WORD event)
        nxt = [s for s, n in phone_samples if s >= ws and not n.startswith("_") and visemes.espeak_visemes(n)]
        if nxt:
            words.append(nxt[0] / espeak.SAMPLE_RATE)
    targets.extend_stop_closures(u.phones, u.audio, u.sample_rate, visemes.espeak_visemes)
    return _resample(u.audio, u.sample_rate), u.phones, sorted(set(words)), rate


def dtw_features(x: np.ndarray) -> np.ndarray:
    """[T100, 9]: MFCC c1..c8 (per-utterance mean/variance normalised, 30 ms moving average) and the level under the
    clip's 95th percentile (ln units / 3, floored at -12), 10 ms rows. A -65 dBFS noise is added first so that
    digital silence (espeak-ng's pauses) looks like a quiet room. Chosen on English against pocketsphinx (README)."""
    rng = np.random.default_rng(0)
    x = frontend.normalise(x)
    x = x + rng.normal(0, 10 ** (-65 / 20), len(x)).astype(np.float32)
    lm = frontend.log_mel(x)
    level = np.log(np.exp(lm.astype(np.float64)).sum(1) + 1e-9)
    rel = np.clip(level - np.percentile(level, 95), -12, 0)
    c = frontend.mfcc(lm, 9)[:, 1:9].astype(np.float64)
    c = (c - c.mean(0)) / (c.std(0) + 1e-6)
    c = scipy.signal.lfilter(np.ones(3) / 3, 1, np.pad(c, ((1, 1), (0, 0)), mode="edge"), axis=0)[2:]
    return np.concatenate([c, rel[:, None] / 3.0], 1).astype(np.float32)


DTW_STEP_PENALTY = 2.0


def dtw_path(a: np.ndarray, b: np.ndarray, penalty: float = DTW_STEP_PENALTY) -> np.ndarray:
    """DTW of a [N, D] against b [M, D], Euclidean local cost c; steps (1,1) cost 2c, (1,0) and (0,1) cost
    c + penalty (the penalty keeps the warp from wandering where the two voices differ). Path [(i, j)] from
    (0, 0) to (N-1, M-1)."""
    n, m = len(a), len(b)
    sq = (a.astype(np.float64) ** 2).sum(1)[:, None] + (b.astype(np.float64) ** 2).sum(1)[None, :] \
        - 2.0 * a.astype(np.float64) @ b.astype(np.float64).T
    cost = np.sqrt(np.maximum(sq, 0.0))
    acc = np.empty((n, m))
    acc[0] = np.cumsum(cost[0] + penalty) - penalty
    for i in range(1, n):
        c = cost[i]
        prev = acc[i - 1]
        cand = prev + c + penalty  # vertical
        cand[1:] = np.minimum(cand[1:], prev[:-1] + 2 * c[1:])  # diagonal
        s = np.cumsum(c + penalty)  # horizontal runs: acc[i, j] = min_k<=j (cand[k] + sum (c + penalty)[k+1..j])
        acc[i] = s + np.minimum.accumulate(cand - s)
    path = [(n - 1, m - 1)]
    i, j = n - 1, m - 1
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            opts = (acc[i - 1, j - 1] + cost[i, j], acc[i - 1, j] + penalty, acc[i, j - 1] + penalty)
            k = int(np.argmin(opts))
            i, j = (i - 1, j - 1) if k == 0 else ((i - 1, j) if k == 1 else (i, j - 1))
        path.append((i, j))
    return np.array(path[::-1])


def time_map(path: np.ndarray, n_rec: int) -> callable:
    """Synthetic time (s) -> recording time (s) along the path: for synthetic row j the recording rows matched to it
    span [first, last]; a time inside row j is interpolated inside that span."""
    j_max = path[:, 1].max()
    first = np.full(j_max + 1, np.inf)
    last = np.full(j_max + 1, -np.inf)
    np.minimum.at(first, path[:, 1], path[:, 0])
    np.maximum.at(last, path[:, 1], path[:, 0] + 1)

    def f(t: float) -> float:
        pos = t / HOP_S
        j = int(np.clip(np.floor(pos), 0, j_max))
        frac = float(np.clip(pos - j, 0, 1))
        return float(first[j] + frac * (last[j] - first[j])) * HOP_S

    return f


def insert_pauses(phones: list, x: np.ndarray, min_pause_s: float = 0.15, thresh_db: float = -40.0) -> int:
    """Stretches of the recording quieter than `thresh_db` (under the 95th-percentile level) for >= min_pause_s that
    lie inside a speech phone become a pause ("_"): the phone is cut there. Returns how many pauses were made."""
    db = level_db(x)
    quiet = db < thresh_db
    runs, k = [], 0
    while k < len(quiet):
        if quiet[k]:
            e = k
            while e < len(quiet) and quiet[e]:
                e += 1
            if (e - k) * HOP_S >= min_pause_s:
                runs.append(((k + 1) * HOP_S, (e) * HOP_S))  # row k centred at 10k+12.5 ms
            k = e
        else:
            k += 1
    made = 0
    for s, e in runs:
        inside = [p for p in phones if p.end > s + 0.02 and p.start < e - 0.02]
        if not inside or all(p.name.startswith("_") or p.name == "SIL" for p in inside):
            continue
        new = []
        for p in phones:
            if p.end <= s or p.start >= e or p.name.startswith("_") or p.name == "SIL":
                new.append(p)
                continue
            if p.start < s:
                new.append(espeak.Phone(p.name, p.start, s))
            if p.end > e:
                new.append(espeak.Phone(p.name, e, p.end))
        new.append(espeak.Phone("_", s, e))
        new.sort(key=lambda p: (p.start, p.end))
        phones[:] = new
        made += 1
    return made


def align_dtw(x: np.ndarray, text: str, voice: str) -> dict:
    s0, s1 = speech_span(x)
    ref, phones, words, rate = espeak_reference(text, voice, s1 - s0)
    fa, fb = dtw_features(x), dtw_features(ref)
    path = dtw_path(fa, fb)
    cost = float(np.sqrt(((fa[path[:, 0]] - fb[path[:, 1]]) ** 2).sum(-1)).mean())
    f = time_map(path, len(fa))
    dur = len(x) / SR
    moved = []
    for p in phones:
        a, b = min(f(p.start), dur), min(f(p.end), dur)
        if b > a:
            moved.append(espeak.Phone(p.name, a, b))
    pauses = insert_pauses(moved, x)
    return {"phones": moved, "words": [f(w) for w in words], "rate": rate, "dtw_cost": cost,
            "pauses_inserted": pauses, "mapper": visemes.espeak_visemes, "aligner": "dtw-espeak"}


# ---- pocketsphinx (English) -------------------------------------------------------------------------------------------
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    if n < 1_000_000:
        return number_words(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + number_words(n % 1000))
    raise ValueError(n)


_DECODER = None


def _decoder():
    global _DECODER
    if _DECODER is None:
        from pocketsphinx import Decoder

        _DECODER = Decoder(samprate=SR, loglevel="FATAL", cmn="batch")  # batch CMN: no state carried across utterances
    return _DECODER


def pocketsphinx_words(text: str) -> list[str] | None:
    """English text -> dictionary words (numbers spelt out), or None when a word is not in the dictionary."""
    t = text.lower().replace("-", " ").replace("/", " ")
    t = re.sub(r"\d+", lambda m: " " + number_words(int(m.group())) + " ", t)
    words = [w.strip("'") for w in re.findall(r"[a-z']+", t)]
    words = [w for w in words if w]
    d = _decoder()
    if not words or any(d.lookup_word(w) is None for w in words):
        return None
    return words


def _alignment(x, phones, wstarts, score, mapper, aligner):
    """An aligner's result: phones cut to the clip's length, word starts, score per 10 ms frame; None without phones."""
    if not phones:
        return None
    dur = len(x) / SR
    phones = [espeak.Phone(p.name, min(p.start, dur), min(p.end, dur)) for p in phones if p.start < dur]
    return {"phones": phones, "words": wstarts, "score_per_frame": score / max(1, len(x) // 160),
            "mapper": mapper, "aligner": aligner}


def align_pocketsphinx(x: np.ndarray, text: str) -> dict | None:
    try:
        from pocketsphinx import Decoder  # noqa: F401
    except ImportError:
        return None
    words = pocketsphinx_words(text)
    if words is None:
        return None
    d = _decoder()
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes()
    phones, wstarts, score = [], [], 0
    try:
        d.set_align_text("<sil> " + " ".join(words))  # without it the first word starts at 0
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        d.set_alignment()
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        for w in d.get_alignment():  # read it before the decoder moves on (the entries point into its memory)
            if not w.name.startswith("<") and w.name != "</s>":
                wstarts.append(w.start * HOP_S)
            for p in w:
                phones.append(espeak.Phone(p.name, p.start * HOP_S, (p.start + p.duration) * HOP_S))
            score += w.score
    except RuntimeError:
        return None
    return _alignment(x, phones, wstarts, score, visemes.arpabet_visemes, "pocketsphinx")


# ---- pocketsphinx across languages: espeak-ng's phonemes mapped to the en-us model's ARPAbet ---------------------------
_ARPA = {
    "p": "P", "b": "B", "m": "M", "B": "B", "f": "F", "v": "V", "F": "F", "T": "TH", "D": "DH",
    "t": "T", "d": "D", "c": "T", "J": "D", "k": "K", "g": "G", "N": "NG", "x": "HH", "G": "G", "C": "HH",
    "Q": "G", "X": "HH", "q": "K", "h": "HH", "H": "HH",
    "tS": "CH", "dZ": "JH", "S": "SH", "Z": "ZH", "ts": "S", "dz": "Z", "s": "S", "z": "Z", "ss": "S", "tz": "S",
    "n": "N", "l": "L", "n^": "N", "l^": "L", "L": "L", "nn": "N", "ll": "L", "n_": "N", "N^": "N",
    "r": "R", "R": "R", "*": "R", "**": "R", "rr": "R", "R^": "ZH", "@r": "ER", "3r": "ER", "VR": "R", "@L": "L",
    "pF": "P", "sx": "SH", "J^": "JH", "j": "Y", "w": "W",
    "a": "AA", "A": "AA", "&": "AE", "V": "AH", "6": "AH", "aa": "AE", "e": "EY", "E": "EH", "@": "AH",
    "3": "ER", "i": "IY", "I": "IH", "1": "IY", "y": "UW", "Y": "UH", "o": "OW", "O": "AO", "0": "AA",
    "8": "ER", "W": "ER", "9": "ER", "u": "UW", "U": "UH", "u\"": "UW",
    "aI": "AY", "aU": "AW", "eI": "EY", "OI": "OY", "oU": "OW", "@U": "OW", "EI": "EY", "VU": "AW",
    "Wy": "OY", "eU": "EH", "yU": "UW", "ja": "AA", "ju": "UW", "O@": "AO", "o@": "AO", "A@": "AA",
    "e@": "EH", "i@": "IY", "U@": "UH", "aI@": "AY", "i@3": "IY", "I@": "IH",
}
_STRIP = ":~#-;^'.,2345!|/[\""


def arpabet_of(name: str) -> str | None:
    """One ARPAbet phone for an espeak-ng phoneme (None: pause, marker or transparent mark such as ';' '?')."""
    if name.startswith("_") or name.startswith("(") or name in ("!", "|", "||", ";", "?", "'", ","):
        return None
    cand = name
    while cand:
        if cand in _ARPA:
            return _ARPA[cand]
        if len(cand) > 1 and cand[-1] in _STRIP:
            cand = cand[:-1]
            continue
        break
    for width in (2, 1):  # a vowel cluster: its first known part
        if name[:width] in _ARPA:
            return _ARPA[name[:width]]
    return None


def espeak_word_phonemes(text: str, voice: str) -> list[list[str]]:
    """The transcript as espeak-ng speaks it: words, each a list of phoneme mnemonics (pauses left out)."""
    espeak.synthesize(text, voice)
    words, cur = [], None
    for t, _, name in espeak._ENGINE._events:
        if t == espeak.EVENT_WORD:
            cur = []
            words.append(cur)
        elif t == espeak.EVENT_PHONEME and cur is not None and not name.startswith("_"):
            cur.append(name)
    return [w for w in words if any(arpabet_of(n) for n in w)]


def align_pocketsphinx_xling(x: np.ndarray, text: str, voice: str) -> dict | None:
    """Forced alignment with the en-us acoustic model of espeak-ng's phonemes for `text` (any espeak language),
    each mapped to one ARPAbet phone; the phones keep their espeak names (-> visemes.espeak_visemes)."""
    try:
        from pocketsphinx import Decoder  # noqa: F401
    except ImportError:
        return None
    words = espeak_word_phonemes(text, voice)
    if not words:
        return None
    d = _decoder()
    names, lexicon = [], []
    for w in words:
        kept = [n for n in w if arpabet_of(n)]
        pron = " ".join(arpabet_of(n) for n in kept)
        key = "x_" + pron.replace(" ", "_").lower()
        if d.lookup_word(key) is None:
            d.add_word(key, pron, False)  # set_align_text builds its search from the dictionary
        names.append(key)
        lexicon.append(kept)
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes()
    phones, wstarts, score, k = [], [], 0, 0
    try:
        d.set_align_text("<sil> " + " ".join(names))
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        d.set_alignment()
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        for w in d.get_alignment():
            if w.name.startswith("x_"):
                wstarts.append(w.start * HOP_S)
                ph = list(w)
                kept = lexicon[k]
                k += 1
                if len(ph) != len(kept):
                    return None
                for p, n in zip(ph, kept):
                    phones.append(espeak.Phone(n, p.start * HOP_S, (p.start + p.duration) * HOP_S))
            else:
                for p in w:
                    phones.append(espeak.Phone("_", p.start * HOP_S, (p.start + p.duration) * HOP_S))
            score += w.score
    except RuntimeError:
        return None
    return _alignment(x, phones, wstarts, score, visemes.espeak_visemes, "pocketsphinx-espeak")


# ---- checks against the level ---------------------------------------------------------------------------------------
def _is_pause(name: str) -> bool:
    return name.startswith("_") or name.upper() == "SIL"


def level_checks(x: np.ndarray, phones: list, quiet_db: float = -35.0, min_gap_s: float = 0.15) -> dict:
    """Listen-free checks of an alignment against the recording's level (10 ms rows, dB under the 95th percentile):
      onset_ms / offset_ms   first speech phone start - first row above quiet_db; last speech phone end - end of the
                             last row above it (the first/last word boundary against the energy)
      pause_rows, pause_quiet   rows inside aligned pauses (interior, not at the clip's ends), share of them quiet
      gaps, gaps_found       interior quiet stretches >= min_gap_s, and how many are >= half covered by a pause
      pause_db, speech_db    median level of the rows in interior pauses / in speech phones."""
    db = level_db(x)
    n = len(db)
    t = np.arange(n) * HOP_S + 0.0125
    loud = np.flatnonzero(db > quiet_db)
    speech = [p for p in phones if not _is_pause(p.name) and p.end > p.start]
    out = {"onset_ms": float("nan"), "offset_ms": float("nan"), "pause_rows": 0, "pause_quiet": 0, "gaps": 0,
           "gaps_found": 0, "pause_db": float("nan"), "speech_db": float("nan")}
    if len(loud) == 0 or not speech:
        return out
    first, last = t[loud[0]] - 0.0125, t[loud[-1]] + 0.0125
    out["onset_ms"] = 1000 * (speech[0].start - first)
    out["offset_ms"] = 1000 * (speech[-1].end - last)
    in_pause = np.zeros(n, bool)
    for p in phones:
        if _is_pause(p.name) and p.start > speech[0].start and p.end < speech[-1].end:
            in_pause |= (t >= p.start) & (t < p.end)
    out["pause_rows"] = int(in_pause.sum())
    in_speech = np.zeros(n, bool)
    for p in speech:
        in_speech |= (t >= p.start) & (t < p.end)
    if in_pause.any():  # median levels: with reverberant audio (the fillets lines) pauses are rarely 35 dB down
        out["pause_db"] = float(np.median(db[in_pause]))
    if in_speech.any():
        out["speech_db"] = float(np.median(db[in_speech]))
    out["pause_quiet"] = int((in_pause & (db < quiet_db)).sum())
    quiet = db < quiet_db
    k = loud[0]
    while k <= loud[-1]:
        if quiet[k]:
            e = k
            while e <= loud[-1] and quiet[e]:
                e += 1
            if (e - k) * HOP_S >= min_gap_s:
                out["gaps"] += 1
                out["gaps_found"] += int(in_pause[k:e].mean() >= 0.5)
            k = e
        else:
            k += 1
    return out


# ---- building the set -----------------------------------------------------------------------------------------------
def align(x: np.ndarray, item: Item, dtw_fallback: bool = False) -> dict | None:
    """pocketsphinx with the CMU dictionary for English, else pocketsphinx on espeak-ng's phonemes; None when the
    HMM alignment fails (beam: the transcript and the audio do not fit well enough), unless dtw_fallback."""
    al = None
    if item.lang == "en":
        al = align_pocketsphinx(x, item.text)
    if al is None:
        al = align_pocketsphinx_xling(x, item.text, item.espeak_voice)
    if al is None and dtw_fallback:
        al = align_dtw(x, item.text, item.espeak_voice)
    return al


def make_utterance(item: Item, index: int, root: str, dtw_fallback: bool = False) -> dict | None:
    x = load_audio(item.path)
    if len(x) < 0.3 * SR:
        return None
    al = align(x, item, dtw_fallback)
    if al is None:
        return None
    dur = len(x) / SR
    tg = targets.make_targets(al["phones"], dur, al["mapper"])
    checks = level_checks(x, al["phones"])
    meta = {"index": index, "lang": item.lang, "voice": f"{item.source}:{item.speaker}", "variant": item.speaker,
            "speaker": item.speaker, "text": item.text, "source": item.source, "package": item.package,
            "package_version": package_version(item.package),
            "license": item.license, "file": os.path.relpath(item.path, root), "name": item.name,
            "aligner": al["aligner"], "align_score_per_frame": al.get("score_per_frame"),
            "espeak_voice": item.espeak_voice, "checks": checks, "augment": [], "seconds": dur}
    return {"audio": x, "face": tg.face, "labels": tg.labels,
            "phones": [(p.name, p.start, p.end, p.start) for p in al["phones"]], "meta": meta}


def _job(args):
    items, first, root, dtw_fallback = args
    out = []
    for k, it in enumerate(items):
        try:
            u = make_utterance(it, first + k, root, dtw_fallback)
        except Exception as e:  # noqa: BLE001 (report and go on: one bad file must not stop the set)
            print(f"recorded: {it.path}: {type(e).__name__}: {e}", file=sys.stderr)
            u = None
        out.append(u)
    return out


@functools.lru_cache(maxsize=None)
def package_version(package: str) -> str:
    try:
        v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                           timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        v = ""
    if v:
        return v
    base = next((k for k in PACKAGE_VERSIONS if package.startswith(k)), None)
    return (PACKAGE_VERSIONS[base] + " (not installed; expected)") if base else "?"


def duration_s(path: str) -> float:
    if path.endswith(".g722"):
        return os.path.getsize(path) / 8000.0  # G.722: 64 kbit/s
    import soundfile

    return float(soundfile.info(path).duration)


def select(items: list[Item], per_speaker_minutes: float | None, max_seconds: float, seed: int) -> list[Item]:
    """Items no longer than max_seconds; all of them, or per (source, language, speaker) a seeded random subset of
    about `per_speaker_minutes` (before alignment failures)."""
    items = [it for it in items if duration_s(it.path) <= max_seconds]
    if not per_speaker_minutes:
        return items
    groups = collections.defaultdict(list)
    for it in items:
        groups[(it.source, it.lang, it.speaker)].append(it)
    out = []
    for gi, key in enumerate(sorted(groups)):
        g = groups[key]
        order = np.random.default_rng([seed, gi]).permutation(len(g))
        total, take = 0.0, []
        for i in order:
            if total >= per_speaker_minutes * 60:
                break
            take.append(int(i))
            total += duration_s(g[i].path)
        out += [g[i] for i in sorted(take)]
    return out


def build(out_dir: str, root: str = "/", per_speaker_minutes: float | None = PER_SPEAKER_MINUTES,
          max_seconds: float = 20.0, workers: int = 1, shard_minutes: float = 20.0, seed: int = 3, limit: int | None = None,
          dtw_fallback: bool = False, with_dutch: bool = False) -> dict:
    t0 = time.time()
    items = all_items(root, with_dutch)
    if not items:
        raise SystemExit("no recorded speech found under " + root + ": install the packages (tools/speech/README.md)")
    items = select(items, per_speaker_minutes, max_seconds, seed)[:limit]
    blocks = [(items[k:k + 16], k, root, dtw_fallback) for k in range(0, len(items), 16)]
    utts, skipped = [], collections.Counter()
    # A fresh process per block of 16: libespeak-ng keeps state across utterances (espeak.py), pocketsphinx's
    # dictionary grows with the words added for other languages; fixed blocks keep the output reproducible.
    with multiprocessing.get_context("spawn").Pool(workers, maxtasksperchild=1) as pool:
        for k, res in enumerate(pool.imap(_job, blocks)):
            for it, u in zip(blocks[k][0], res):
                if u is None:
                    skipped["no alignment (HMM failed) or < 0.3 s"] += 1
                else:
                    utts.append(u)
            if k % 20 == 0:
                print(f"recorded: {min(len(items), (k + 1) * 16)}/{len(items)} items, {time.time() - t0:.0f} s",
                      file=sys.stderr, flush=True)
    for old in shards.shard_paths(out_dir, SPLIT):
        os.remove(old)
    info = {"source": "recorded human speech from Debian packages (tools/speech/recorded.py)", "root": root,
            "per_speaker_minutes": per_speaker_minutes, "max_seconds": max_seconds, "seed": seed,
            "dtw_fallback": dtw_fallback, "with_dutch": with_dutch,
            "packages": PACKAGE_VERSIONS, "skipped": dict(skipped)}
    shard, total, n = [], 0.0, 0
    for u in utts:
        shard.append(u)
        total += u["meta"]["seconds"]
        if total >= shard_minutes * 60:
            shards.write(os.path.join(out_dir, f"{SPLIT}-{n:04d}.npz"), shard, info, SPLIT)
            shard, total, n = [], 0.0, n + 1
    if shard:
        shards.write(os.path.join(out_dir, f"{SPLIT}-{n:04d}.npz"), shard, info, SPLIT)
    stats = summary(utts)
    stats.update({"skipped": dict(skipped), "build_seconds": round(time.time() - t0, 1)})
    with open(os.path.join(out_dir, "recorded.json"), "w") as f:
        json.dump(stats, f, indent=1, ensure_ascii=False)
    return stats


def summary(utts: list[dict]) -> dict:
    groups = collections.defaultdict(list)
    for u in utts:
        m = u["meta"]
        groups[f'{m["source"]} {m["lang"]} {m["speaker"]}'].append(m)
    out = {}
    for key, ms in sorted(groups.items()):
        c = [m["checks"] for m in ms]
        on = np.array([x["onset_ms"] for x in c], float)
        off = np.array([x["offset_ms"] for x in c], float)
        pr, pq = sum(x["pause_rows"] for x in c), sum(x["pause_quiet"] for x in c)
        g, gf = sum(x["gaps"] for x in c), sum(x["gaps_found"] for x in c)
        out[key] = {"utterances": len(ms), "minutes": round(sum(m["seconds"] for m in ms) / 60, 2),
                    "aligners": dict(collections.Counter(m["aligner"] for m in ms)),
                    "onset_abs_ms_median": round(float(np.nanmedian(np.abs(on))), 1),
                    "onset_within_50ms": round(float(np.nanmean(np.abs(on) <= 50)), 3),
                    "offset_abs_ms_median": round(float(np.nanmedian(np.abs(off))), 1),
                    "offset_within_50ms": round(float(np.nanmean(np.abs(off) <= 50)), 3),
                    "pause_rows_quiet": round(pq / pr, 3) if pr else None,
                    "pause_minus_speech_db_median": round(float(np.nanmedian(
                        [x["pause_db"] - x["speech_db"] for x in c if x["pause_rows"]] or [np.nan])), 1),
                    "quiet_gaps_found": f"{gf}/{g}"}
    return out


# ---- the alignment check ------------------------------------------------------------------------------------------
def _word_diffs(a: list[float], b: list[float]) -> list[float]:
    return list(np.asarray(a) - np.asarray(b)) if len(a) == len(b) and a else []


def check(root: str, langs: list[str], per_group: int, seed: int = 5) -> None:
    """Aligns a seeded sample of each group with every aligner that applies and prints how far they are apart
    (word starts, frame labels, the harness metrics of one alignment's targets scored against the other's)."""
    from . import metrics

    items = [it for it in all_items(root, with_dutch=True) if it.lang in langs]
    groups = collections.defaultdict(list)
    for it in items:
        groups[(it.source, it.lang, it.speaker)].append(it)
    rows, lrows = [], []
    for key in sorted(groups):
        g = groups[key]
        rng = np.random.default_rng([seed, len(g)])
        sample = [g[i] for i in sorted(rng.choice(len(g), min(per_group, len(g)), replace=False).tolist())]
        pairs = collections.defaultdict(lambda: {"d": [], "acc": metrics.Accumulator(), "same": [0, 0], "n": 0})
        lv = collections.defaultdict(list)
        t0 = time.time()
        for it in sample:
            x = load_audio(it.path)
            if len(x) / SR > 20:
                continue
            al = {"xling": align_pocketsphinx_xling(x, it.text, it.espeak_voice),
                  "dtw": align_dtw(x, it.text, it.espeak_voice)}
            if it.lang == "en":
                al["ps-cmudict"] = align_pocketsphinx(x, it.text)
            ref = "ps-cmudict" if it.lang == "en" else "xling"
            if al[ref] is None:
                continue
            for name, a in al.items():
                if a is not None:
                    lv[name].append(level_checks(x, a["phones"]))
            dur = len(x) / SR
            tr = targets.make_targets(al[ref]["phones"], dur, al[ref]["mapper"])
            for name, a in al.items():
                if name == ref or a is None:
                    continue
                p = pairs[f"{name} vs {ref}"]
                p["n"] += 1
                p["d"] += _word_diffs(a["words"], al[ref]["words"])
                tb = targets.make_targets(a["phones"], dur, a["mapper"])
                p["acc"].add(tb.face, tr.face, tr.labels)
                p["same"][0] += int((tb.labels == tr.labels).sum())
                p["same"][1] += len(tr.labels)
        for name, p in pairs.items():
            d = np.abs(np.array(p["d"])) * 1000
            r = p["acc"].result() if p["n"] else {}
            rows.append((" ".join(key[1:]), name, p["n"], len(d),
                         f"{np.median(d):.0f}" if len(d) else "-", f"{np.percentile(d, 90):.0f}" if len(d) else "-",
                         f"{(d <= 20).mean():.2f}" if len(d) else "-", f"{(d <= 50).mean():.2f}" if len(d) else "-",
                         f"{p['same'][0] / max(1, p['same'][1]):.3f}", f"{r.get('viseme accuracy', float('nan')):.3f}",
                         f"{r.get('mouth-open Pearson r', float('nan')):.3f}",
                         f"{r.get('A/V offset ms', float('nan')):+.0f}"))
        for name, c in sorted(lv.items()):
            on = np.abs([v["onset_ms"] for v in c])
            off = np.abs([v["offset_ms"] for v in c])
            pr, pq = sum(v["pause_rows"] for v in c), sum(v["pause_quiet"] for v in c)
            lrows.append((" ".join(key[1:]), name, len(c), f"{np.nanmedian(on):.0f}", f"{np.nanmean(on <= 50):.2f}",
                          f"{np.nanmedian(off):.0f}", f"{np.nanmean(off <= 50):.2f}",
                          f"{pq / pr:.2f} of {pr}" if pr else "-",
                          f"{np.nanmedian([v['pause_db'] - v['speech_db'] for v in c if v['pause_rows']] or [np.nan]):+.0f}",
                          f"{sum(v['gaps_found'] for v in c)}/{sum(v['gaps'] for v in c)}"))
        print(f"check: {' '.join(key)}: {len(sample)} items, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    print("| group | aligners | utt | words | median ms | p90 ms | <= 20 ms | <= 50 ms | same label | "
          "viseme acc | mouth-open r | A/V ms |")
    print("|---" * 12 + "|")
    for r in rows:
        print("| " + " | ".join(str(v) for v in r) + " |")
    print("\nAgainst the level (10 ms rows, quiet = 35 dB under the clip's 95th percentile):")
    print("| group | aligner | utt | onset abs ms (median) | onset <= 50 ms | offset abs ms | offset <= 50 ms | "
          "pause rows quiet | pause - speech dB | quiet gaps >= 150 ms in a pause |")
    print("|---" * 10 + "|")
    for r in lrows:
        print("| " + " | ".join(str(v) for v in r) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="data folder (writes recorded-NNNN.npz + recorded.json)")
    ap.add_argument("--root", default="/", help="where the packages' files are (/ when installed; or a folder "
                                                "they were unpacked into with dpkg-deb -x)")
    ap.add_argument("--per-speaker-minutes", type=float, default=PER_SPEAKER_MINUTES,
                    help="a seeded subset of about this much per speaker and language; "
                         "0 = everything (~3.5 h of audio)")
    ap.add_argument("--max-seconds", type=float, default=20.0, help="longer recordings are left out")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="first N items only (a quick try)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--dtw-fallback", action="store_true",
                    help="align with DTW where pocketsphinx fails (default: leave those recordings out)")
    ap.add_argument("--with-dutch", action="store_true", help="add fillets-ng-data-nl (fails the check, see README)")
    ap.add_argument("--check", default=None, help="comma-separated languages: run the alignment check instead")
    ap.add_argument("--check-per-group", type=int, default=40)
    args = ap.parse_args()
    if args.check:
        check(args.root, args.check.split(","), args.check_per_group)
        return
    os.makedirs(args.out, exist_ok=True)
    stats = build(args.out, args.root, args.per_speaker_minutes, args.max_seconds, args.workers, seed=args.seed,
                  limit=args.limit, dtw_fallback=args.dtw_fallback, with_dutch=args.with_dutch)
    print(json.dumps(stats, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
