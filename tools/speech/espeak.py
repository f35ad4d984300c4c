"""ctypes binding to libespeak-ng: PCM + phoneme events with timings.

libespeak-ng is initialised once per process in synchronous mode (``AUDIO_OUTPUT_SYNCHRONOUS``) with the
phoneme-events option (``espeakINITIALIZE_PHONEME_EVENTS``). ``espeak_Synth`` then runs to completion in the
calling thread and calls our synth callback with chunks of 16-bit PCM at 22 050 Hz plus a list of events; events
of type PHONEME carry the phoneme mnemonic (up to 8 bytes, in ``id.string``) and its audio position.

We take the start of each phone from the event's ``sample`` field (the output sample count at which the phoneme
starts, in the 22 050 Hz stream), which is exact; ``audio_position`` is the same value rounded to ms. A phone
ends where the next event starts (the last one ends at the END event / end of audio).

    python -m tools.speech.espeak "Hello, Bob made a map." --voice en-us+m3   # prints phones + energy check

Determinism: libespeak-ng keeps state from one utterance to the next (noise generator, pitch flutter phase), so
the same call gives audio a few samples different depending on what was spoken before in the process (timings
move by up to ~1 ms). espeak_Terminate + espeak_Initialize does not reset it (and hung with a variant voice), nor
does srand(). A fresh process speaking the same sequence of utterances is reproducible: make_dataset.py runs each
block of utterances in a new worker process for that reason.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import os
import threading

import numpy as np

SAMPLE_RATE = 22_050

# speak_lib.h constants.
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_DONT_EXIT = 0x8000
POS_CHARACTER = 1
CHARS_UTF8 = 1
ENDPAUSE = 0x1000
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_SENTENCE = 2
EVENT_END = 5
EVENT_MSG_TERMINATED = 6
EVENT_PHONEME = 7
PARAM_RATE = 1
PARAM_VOLUME = 2
PARAM_PITCH = 3
PARAM_RANGE = 4
PARAM_WORDGAP = 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # samples at 22 050 Hz
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclasses.dataclass
class Phone:
    """One phone: espeak mnemonic, start and end in seconds (relative to the returned audio)."""

    name: str
    start: float
    end: float


@dataclasses.dataclass
class Utterance:
    audio: np.ndarray  # float32 mono in -1..1 at SAMPLE_RATE
    phones: list[Phone]
    sample_rate: int = SAMPLE_RATE


class _Engine:
    """Process-wide libespeak-ng state (the library itself is a singleton and not re-entrant)."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        self.lib = ctypes.CDLL(path)
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str]] = []  # (type, sample, mnemonic)
        self._cb = _CALLBACK(self._on_synth)  # keep a reference: ctypes frees unreferenced callbacks
        self.lock = threading.Lock()
        self._initialised = False

    def _initialise(self) -> None:
        rate = self.lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, None, INITIALIZE_PHONEME_EVENTS | INITIALIZE_DONT_EXIT
        )
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"espeak_Initialize returned {rate}, expected {SAMPLE_RATE} Hz")
        self.lib.espeak_SetSynthCallback(self._cb)
        self._initialised = True

    def _on_synth(self, wav, numsamples, events) -> int:
        if numsamples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == EVENT_PHONEME:
                name = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                self._events.append((EVENT_PHONEME, ev.sample, name))
            elif ev.type in (EVENT_END, EVENT_MSG_TERMINATED, EVENT_WORD, EVENT_SENTENCE):
                self._events.append((ev.type, ev.sample, ""))
            i += 1
        return 0  # 0 = continue synthesis

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, word_gap: int) -> Utterance:
        with self.lock:
            if not self._initialised:
                self._initialise()
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {voice!r}")
            for param, value in ((PARAM_RATE, rate), (PARAM_PITCH, pitch), (PARAM_RANGE, pitch_range),
                                 (PARAM_WORDGAP, word_gap), (PARAM_VOLUME, 100)):
                self.lib.espeak_SetParameter(param, int(value), 0)
            self._chunks, self._events = [], []
            data = text.encode("utf-8") + b"\0"
            err = self.lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8 | ENDPAUSE, None, None)
            if err != 0:
                raise RuntimeError(f"espeak_Synth failed with {err}")
            pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            events = self._events
        audio = pcm.astype(np.float32) / 32768.0
        return Utterance(audio=audio, phones=_phones_from_events(events, len(audio)))


def _phones_from_events(events: list[tuple[int, int, str]], n_samples: int) -> list[Phone]:
    """Turns PHONEME events into phones; each ends at the next phoneme event or the end of the audio."""
    starts = [(s, name) for t, s, name in events if t == EVENT_PHONEME]
    phones = []
    for k, (s, name) in enumerate(starts):
        e = starts[k + 1][0] if k + 1 < len(starts) else n_samples
        s, e = min(s, n_samples), min(max(e, s), n_samples)
        phones.append(Phone(name, s / SAMPLE_RATE, e / SAMPLE_RATE))
    return phones


_ENGINE: _Engine | None = None


def synthesize(text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50, pitch_range: int = 50,
               word_gap: int = 0) -> Utterance:
    """Speaks ``text`` with ``voice`` (e.g. "en-us+f3", "de", "fr+m2"); rate in words per minute (80..450),
    pitch and pitch_range 0..100; word_gap in units of 10 ms. Returns 22 050 Hz audio and timed phones."""
    global _ENGINE
    variant = voice.partition("+")[2]
    if variant and variant not in list_variants():
        # libespeak-ng silently falls back to the base voice for an unknown variant.
        raise ValueError(f"espeak-ng has no voice variant {variant!r}")
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE.synth(text, voice, rate, pitch, pitch_range, word_gap)


def list_variants() -> list[str]:
    """Names of the voice variants installed with espeak-ng-data (m1, f3, klatt2, ...)."""
    return list(_variants())


@functools.lru_cache(maxsize=1)
def _variants() -> tuple[str, ...]:
    for base in ("/usr/lib/x86_64-linux-gnu/espeak-ng-data", "/usr/share/espeak-ng-data",
                 "/usr/lib/aarch64-linux-gnu/espeak-ng-data"):
        d = os.path.join(base, "voices", "!v")
        if os.path.isdir(d):
            return tuple(sorted(os.listdir(d)))
    return ()


def _energy_check(utt: Utterance) -> None:
    """Prints each phone with its time and the RMS level (dBFS) inside it, so that pauses and stop closures
    (which should be quiet) can be compared with vowels (loud)."""
    x, sr = utt.audio, utt.sample_rate
    print(f"{len(x) / sr:.3f} s of audio, {len(utt.phones)} phones")
    for p in utt.phones:
        seg = x[int(p.start * sr):int(p.end * sr)]
        rms = float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) if len(seg) else 0.0
        db = 20 * np.log10(rms + 1e-9)
        print(f"  {p.start:7.3f} {p.end:7.3f}  {p.name:8s} {db:6.1f} dB " + "#" * max(0, int((db + 60) / 2)))


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("text")
    ap.add_argument("--voice", default="en-us")
    ap.add_argument("--rate", type=int, default=175)
    ap.add_argument("--pitch", type=int, default=50)
    ap.add_argument("--wav", help="also write the audio to this .wav file")
    args = ap.parse_args()
    u = synthesize(args.text, args.voice, args.rate, args.pitch)
    _energy_check(u)
    from . import targets, visemes

    raw = [p.start for p in u.phones]
    targets.extend_stop_closures(u.phones, u.audio, u.sample_rate, visemes.espeak_visemes)
    moved = [f"{p.name} {r:.3f}->{p.start:.3f}" for p, r in zip(u.phones, raw) if abs(p.start - r) > 1e-6]
    print("closure-corrected starts (targets.extend_stop_closures): " + (", ".join(moved) or "none"))
    if args.wav:
        import scipy.io.wavfile

        scipy.io.wavfile.write(args.wav, SAMPLE_RATE, (u.audio * 32767).astype(np.int16))
