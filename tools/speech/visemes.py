"""Phoneme -> viseme -> ARKit table.

Visemes: the 15 of the Oculus/Meta lip-sync set (Preston-Blair style mouth shapes):

    id  name  phones (IPA)                         mouth
    0   sil   pauses                               rest: every weight 0
    1   PP    p b m (and Spanish [β])              lips pressed shut, jaw nearly closed
    2   FF    f v                                  lower lip tucked under the upper teeth
    3   TH    θ ð                                  tongue tip between the teeth
    4   DD    t d (c ɟ)                            tongue on the alveolar ridge, slightly open
    5   kk    k g ŋ x ɣ ç                          back of the tongue up, jaw a little open
    6   CH    tʃ dʒ ʃ ʒ ɕ ʑ tɕ dʑ                  lips pushed forward, teeth close
    7   SS    s z ts dz                            teeth close, lips spread
    8   nn    n l ɲ ʎ                              like DD, a little more open, relaxed lips
    9   RR    r ɹ ɾ ʀ ʁ ř                          slightly rounded, half open
    10  aa    a ɑ æ ʌ ɐ                            jaw wide open
    11  E     e ɛ ə ɜ                              half open, lips spread
    12  ih    i ɪ j                                nearly closed, lips spread (smile)
    13  oh    o ɔ ɒ ø œ                            open and rounded
    14  ou    u ʊ w y ʏ                            small rounded opening (pucker)

Each viseme has an ARKit vector (weights 0..1 on the jaw/mouth/cheek/tongue blendshapes; eyes, brows and nose stay 0)
and Cohen-Massaro dominance parameters used by `targets.py`: `strength` (how strongly the phone imposes its shape on
its neighbours' frames) and `spread_s` (time constant, seconds, of the exponential fall-off outside the phone).
Bilabials and labiodentals are strong and short (the lips must really close); vowels are weak and wide (they blend).
Silence is the strongest (5.0): anticipation reaches ~1 frame into a pause, deeper pause frames are at rest (with 1.5,
targets 2 frames into a pause still had pucker/jaw > 0.1 and only 87-94 % of interior pause frames were at rest).

Phone names: espeak-ng mnemonics (from phoneme events; every language's table uses the same Kirshenbaum-like
ASCII conventions: `:` length, `~` nasal, `#`/`-`/`2`/`;` variants) and CMU ARPAbet (flite). `viseme_sequence(name)`
returns one or more viseme ids (a diphthong such as `aI` -> [aa, ih] is split in equal parts of its duration);
an empty list means a zero-width marker (e.g. espeak's language switch "(en)"); the id TRANSPARENT means the phone
takes the shape of the next phone (h, glottal stop, espeak's `;` palatalisation marker).
Unknown names are mapped by their first letter class and recorded in `UNKNOWN` (printed by the dataset stats).
"""

from __future__ import annotations

import collections

import numpy as np

from . import arkit

NAMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
ID = {n: i for i, n in enumerate(NAMES)}
COUNT = len(NAMES)
SIL, PP = ID["sil"], ID["PP"]
TRANSPARENT = -1

# ARKit weights per viseme (names not listed are 0). Left/right pairs are symmetric, written once with "*".
_SHAPES: dict[str, dict[str, float]] = {
    "sil": {},
    "PP": {"jawOpen": 0.06, "mouthClose": 0.06, "mouthPress*": 0.55, "mouthRollLower": 0.25, "mouthRollUpper": 0.15},
    "FF": {"jawOpen": 0.12, "mouthClose": 0.04, "mouthRollLower": 0.55, "mouthUpperUp*": 0.25, "mouthPress*": 0.1,
           "mouthShrugUpper": 0.15},
    "TH": {"jawOpen": 0.18, "tongueOut": 0.5, "mouthLowerDown*": 0.15, "mouthUpperUp*": 0.1},
    "DD": {"jawOpen": 0.2, "mouthLowerDown*": 0.15, "mouthStretch*": 0.15, "mouthShrugUpper": 0.1},
    "kk": {"jawOpen": 0.28, "mouthStretch*": 0.2, "mouthLowerDown*": 0.1, "mouthShrugLower": 0.1},
    "CH": {"jawOpen": 0.15, "mouthFunnel": 0.5, "mouthPucker": 0.25, "mouthShrugUpper": 0.3,
           "mouthUpperUp*": 0.15, "mouthLowerDown*": 0.15},
    "SS": {"jawOpen": 0.08, "mouthStretch*": 0.35, "mouthSmile*": 0.15, "mouthUpperUp*": 0.1,
           "mouthLowerDown*": 0.1},
    "nn": {"jawOpen": 0.24, "mouthLowerDown*": 0.25, "mouthUpperUp*": 0.05},
    "RR": {"jawOpen": 0.22, "mouthFunnel": 0.3, "mouthPucker": 0.3, "mouthRollUpper": 0.1},
    "aa": {"jawOpen": 0.65, "mouthLowerDown*": 0.35, "mouthUpperUp*": 0.1, "mouthStretch*": 0.1},
    "E": {"jawOpen": 0.4, "mouthStretch*": 0.3, "mouthSmile*": 0.2, "mouthLowerDown*": 0.25, "mouthUpperUp*": 0.15},
    "ih": {"jawOpen": 0.2, "mouthSmile*": 0.4, "mouthStretch*": 0.3, "cheekSquint*": 0.15, "mouthUpperUp*": 0.1},
    "oh": {"jawOpen": 0.45, "mouthFunnel": 0.55, "mouthPucker": 0.2, "mouthLowerDown*": 0.1},
    "ou": {"jawOpen": 0.18, "mouthPucker": 0.75, "mouthFunnel": 0.35},
}

# Cohen-Massaro dominance: (strength, spread_s).
_DOMINANCE: dict[str, tuple[float, float]] = {
    "sil": (5.0, 0.03), "PP": (4.0, 0.02), "FF": (3.0, 0.02), "TH": (1.5, 0.025), "DD": (0.8, 0.025),
    "kk": (0.6, 0.025), "CH": (2.0, 0.03), "SS": (1.2, 0.025), "nn": (0.8, 0.025), "RR": (1.2, 0.03),
    "aa": (1.0, 0.04), "E": (1.0, 0.04), "ih": (1.0, 0.04), "oh": (1.5, 0.045), "ou": (1.8, 0.05),
}


def _vector(shape: dict[str, float]) -> np.ndarray:
    v = np.zeros(arkit.COUNT, np.float32)
    for name, w in shape.items():
        for n in ([name.replace("*", "Left"), name.replace("*", "Right")] if name.endswith("*") else [name]):
            v[arkit.idx(n)] = w
    return v


SHAPES = np.stack([_vector(_SHAPES[n]) for n in NAMES])  # [15, 52]
STRENGTH = np.array([_DOMINANCE[n][0] for n in NAMES], np.float32)
SPREAD_S = np.array([_DOMINANCE[n][1] for n in NAMES], np.float32)

# ---- espeak-ng mnemonics --------------------------------------------------------------------------------------
# Single vowel symbols (after stripping `:` `~` `#` `-` digits). Multi-symbol vowels (diphthongs) are split into these.
_VOWELS = {
    "a": "aa", "A": "aa", "&": "aa", "V": "aa", "a#": "aa", "6": "aa",
    "e": "E", "E": "E", "@": "E", "3": "E", "@-": "E", "e#": "E", "E#": "E",
    "i": "ih", "I": "ih", "I#": "ih", "i#": "ih", "1": "ih", "j": "ih",
    "o": "oh", "O": "oh", "0": "oh", "8": "oh", "W": "oh", "9": "oh", "o#": "oh",
    "u": "ou", "U": "ou", "y": "ou", "Y": "ou", "w": "ou", "u#": "ou", "u-": "ou", "U#": "ou",
}
_CONSONANTS = {
    "p": "PP", "b": "PP", "m": "PP", "B": "PP", "p#": "PP", "b#": "PP",
    "f": "FF", "v": "FF", "v#": "FF", "F": "FF",
    "T": "TH", "D": "TH",
    "t": "DD", "d": "DD", "t#": "DD", "d#": "DD", "t2": "DD", "d2": "DD", "c": "DD", "J": "DD", "t[": "DD",
    "d[": "DD", "?": "transparent", "h": "transparent", "h#": "transparent", "H": "transparent",
    ";": "transparent", "'": "transparent", ",": "transparent",
    "k": "kk", "g": "kk", "N": "kk", "x": "kk", "G": "kk", "C": "kk", "Q": "kk", "Q#": "kk", "X": "kk", "q": "kk",
    "k#": "kk", "g#": "kk", "c#": "kk",
    "tS": "CH", "dZ": "CH", "S": "CH", "Z": "CH", "S;": "CH", "Z;": "CH", "tS;": "CH", "dZ;": "CH",
    "ts;": "CH", "dz;": "CH", "s;": "CH", "z;": "CH", "c;": "CH",
    "s": "SS", "z": "SS", "ts": "SS", "dz": "SS", "ss": "SS", "s#": "SS", "z#": "SS", "tz": "SS",
    "n": "nn", "l": "nn", "n^": "nn", "l^": "nn", "L": "nn", "n-": "nn", "l#": "nn", "l/": "nn", "n[": "nn",
    "l-": "nn", "N^": "nn", "nn": "nn", "ll": "nn",
    "r": "RR", "R": "RR", "r-": "RR", "R^": "RR", "*": "RR", "rr": "RR", "r#": "RR", "R2": "RR", "r/": "RR",
    "R3": "RR", "@r": "RR", "3r": "RR", "**": "RR", "VR": "RR", "@L": "nn", "pF": ("PP", "FF"), "sx": "CH",
    "J^": "CH", "j#": "ih",
}
_MODIFIERS = ":~#-;^'.,2345!|"  # stripped one at a time from the right when a name is not found as is

# ---- CMU ARPAbet (flite) ------------------------------------------------------------------------------------------
ARPABET = {
    "pau": "sil", "h#": "sil", "sil": "sil", "brth": "sil",
    "p": "PP", "b": "PP", "m": "PP", "f": "FF", "v": "FF", "th": "TH", "dh": "TH", "t": "DD", "d": "DD",
    "dx": "DD", "k": "kk", "g": "kk", "ng": "kk", "ch": "CH", "jh": "CH", "sh": "CH", "zh": "CH", "s": "SS",
    "z": "SS", "n": "nn", "l": "nn", "r": "RR", "er": "RR", "y": "ih", "w": "ou", "hh": "transparent",
    "aa": "aa", "ae": "aa", "ah": "aa", "ax": "E", "eh": "E", "ih": "ih", "iy": "ih", "ao": "oh", "uh": "ou",
    "uw": "ou", "aw": ("aa", "ou"), "ay": ("aa", "ih"), "ey": ("E", "ih"), "ow": ("oh", "ou"), "oy": ("oh", "ih"),
}

UNKNOWN: collections.Counter = collections.Counter()


def viseme_ids(names) -> list[int]:
    if isinstance(names, str):
        names = (names,)
    return [TRANSPARENT if n == "transparent" else ID[n] for n in names]


def _split_vowels(name: str) -> list[str] | None:
    """Greedy longest-match split of a vowel cluster such as "aI@" or "&U~" into known vowel symbols."""
    out, i = [], 0
    core = name.replace(":", "").replace("~", "")
    core = core.rstrip("0123456789") or core  # trailing digits are variant numbers ("aI2"), a lone one a vowel
    while i < len(core):
        for width in (2, 1):
            piece = core[i:i + width]
            if len(piece) == width and piece in _VOWELS:
                out.append(_VOWELS[piece])
                i += width
                break
        else:
            return None
    return out or None


def espeak_visemes(name: str) -> list[int]:
    """Viseme ids for one espeak-ng phoneme mnemonic (see the module doc)."""
    if name.startswith("_"):
        return [SIL]
    if (name.startswith("(") and name.endswith(")")) or name in ("!", "|", "||"):
        return []  # language switch marker, e.g. "(en)", or a zero-width boundary mark
    candidate = name
    while candidate:
        if candidate in _CONSONANTS:
            return viseme_ids(_CONSONANTS[candidate])
        if candidate in _VOWELS:
            return viseme_ids(_VOWELS[candidate])
        if candidate[-1] in _MODIFIERS and len(candidate) > 1:
            candidate = candidate[:-1]
        else:
            break
    vowels = _split_vowels(name) or _split_vowels(name.rstrip(_MODIFIERS))
    if vowels:
        return viseme_ids(vowels)
    UNKNOWN[name] += 1
    first = name.lstrip("_'\",%=")[:1]
    for table in (_CONSONANTS, _VOWELS):
        if first in table:
            return viseme_ids(table[first])
    return [ID["E"]]


def arpabet_visemes(name: str) -> list[int]:
    """Viseme ids for one CMU ARPAbet phone (flite), stress digits ignored."""
    key = name.lower().rstrip("012")
    if key in ARPABET:
        return viseme_ids(ARPABET[key])
    UNKNOWN["arpabet:" + name] += 1
    return [ID["E"]]


def classify(frames: np.ndarray, rest: float = 0.1) -> np.ndarray:
    """Viseme class of each ARKit frame [T, 52] -> [T], the same rule for targets and any predictor: "sil" when no
    weight exceeds `rest` (mouth at rest), otherwise the viseme shape with the highest cosine similarity (direction,
    not size: co-articulated vowels rarely reach their full amplitude, and a quieter mouth is still the same shape)."""
    frames = np.asarray(frames, np.float32)
    norms = np.linalg.norm(frames, axis=1) + 1e-9
    cos = (frames @ SHAPES.T) / norms[:, None] / (np.linalg.norm(SHAPES, axis=1)[None, :] + 1e-9)
    cos[:, SIL] = -np.inf
    out = cos.argmax(1)
    out[frames.max(1, initial=0.0) <= rest] = SIL
    return out.astype(np.int64)
