"""Festival speech with phone timings: a second synthesizer for training (flite stays evaluation-only).

espeak-ng is a formant synthesizer: every training voice shares its buzzy source and rule-built formants, and a
model trained on it alone closes the lips on vowels of voices that sound otherwise (flite, recorded speech).
Festival's diphone voices concatenate recorded human speech (LPC-coded diphones), so their vowels carry a real
speaker's spectrum. Debian ships these voices in the languages of our corpus (`VOICES`):

  en  ked_diphone (festvox-kdlpc16k)                          American English, male
  it  lp_diphone, pc_diphone (festvox-italp16k, -itapc16k)    Italian, female / male
  cs  czech_dita, czech_krb, czech_machac, czech_ph           Czech, female / child / male / male
  fi  suo_fi_lj_diphone, hy_fi_mv_diphone (festvox-suopuhe-*)  Finnish, female / male
  ru  msu_ru_nsh_clunits (festvox-ru)                         Russian, male (unit selection from a recorded corpus)
  hi  hindi_NSK_diphone (festvox-hi-nsk)                      Hindi, male (tried for version 6, not chosen)
  ca  upc_ca_ona_hts (festvox-ca-ona-hts)                     Catalan, female; HTS (statistical parametric):
                                                              validation only (`HTS_VOICES`, the val_hts view)

fi, ru, hi and ca sentences are in corpus.py for these voices only (espeak-ng's data does not use those languages).

Not used: kal_diphone (the same recordings as flite's kal voices, which the evaluation uses) and us_slt_hts (the
speaker of flite's slt). `VAL_VOICES` never go into training: they are the `val_festival` validation view.

Phone timings are the utterance's Segment relation (end times in seconds, the same structure the waveform is
built from). English uses the radio phone set (ARPAbet, `visemes.ARPABET`); the others their own sets, mapped in
`PHONES` below from the voices' phone-set definitions (/usr/share/festival/italian_scm/italian_phoneset.scm,
/usr/share/festival/czech.scm, .../finnish/suopuhe.common/finnish_phones.scm, .../msu_ru_nsh_phoneset.scm,
/usr/share/festival/upc_catalan/upc_catalan_phones-central.scm). The Italian, Finnish, Catalan and Czech front ends
read ISO-8859-1 / -2 text, the Russian one UTF-8.

    python -m tools.speech.festival "Podej mi prosím papír a pero." --voice czech_dita   # phones + times
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile

import numpy as np
import scipy.io.wavfile

from . import espeak, visemes

VOICES = {
    "en": ["ked_diphone"],
    "it": ["lp_diphone", "pc_diphone"],
    "cs": ["czech_dita", "czech_krb", "czech_machac", "czech_ph"],
    "fi": ["suo_fi_lj_diphone", "hy_fi_mv_diphone"],
    "ru": ["msu_ru_nsh_clunits"],
    "hi": ["hindi_NSK_diphone"],
}
# A statistical parametric voice (HMM-generated vocoder parameters, like flite's clustergen voices): never trained
# on, it is the `val_hts` validation view (make_dataset's "hts" split).
HTS_VOICES = {"ca": ["upc_ca_ona_hts"]}
VAL_VOICES = ("pc_diphone", "czech_krb")
LANGUAGES = ("en", "it", "cs")  # make_dataset's default; version 5 was trained on these (fi, ru: tried, not chosen)
ENCODING = {"en": "ascii", "it": "iso-8859-1", "cs": "iso-8859-2", "fi": "iso-8859-1", "ru": "utf-8",
            "ca": "iso-8859-1", "hi": "utf-8"}
PACKAGES = ("festival", "festvox-kdlpc16k", "festvox-italp16k", "festvox-itapc16k", "festvox-czech-dita",
            "festvox-czech-krb", "festvox-czech-machac", "festvox-czech-ph", "festvox-suopuhe-lj", "festvox-suopuhe-mv",
            "festvox-ru", "festival-hi", "festvox-hi-nsk", "festival-ca", "festvox-ca-ona-hts")

# Phone names of each language's phone set -> viseme names (IPA in the comments where the symbol is not obvious).
# English uses the radio phone set, i.e. ARPAbet (visemes.ARPABET). Stress digits ("o1") and length marks (":")
# are stripped before the lookup.
PHONES = {
    "it": {
        "#": "sil", "i": "ih", "j": "ih", "e": "E", "E": "E", "a": "aa", "o": "oh", "O": "oh", "u": "ou", "w": "ou",
        "p": "PP", "b": "PP", "m": "PP", "f": "FF", "v": "FF", "nf": "FF",  # nf: [ɱ] before f/v
        "t": "DD", "d": "DD", "k": "kk", "g": "kk", "ng": "kk", "S": "CH", "Z": "CH", "tS": "CH", "dZ": "CH",
        "s": "SS", "z": "SS", "ts": "SS", "dz": "SS", "n": "nn", "l": "nn", "L": "nn", "J": "nn", "r": "RR",
    },
    "cs": {
        "#": "sil", "_": "transparent",  # _: glottal stop before a vowel-initial word
        "a": "aa", "e": "E", "i": "ih", "j": "ih", "o": "oh", "u": "ou",
        "p": "PP", "b": "PP", "m": "PP", "f": "FF", "v": "FF", "t": "DD", "d": "DD", "d~": "DD", "t~": "DD",
        "k": "kk", "g": "kk", "ch": "kk", "n*": "kk", "h": "transparent",  # ch: [x]; n*: [ŋ]; d~ t~: [ɟ c]
        "c": "SS", "dz": "SS", "s": "SS", "z": "SS", "c~": "CH", "dz~": "CH", "s~": "CH", "z~": "CH",
        "n": "nn", "l": "nn", "n~": "nn", "r": "RR", "r~": "RR", "r~*": "RR",  # c: [ts]; c~ s~ z~: [tʃ ʃ ʒ]; r~: ř
    },
    "fi": {
        "#": "sil", "##": "sil", "a": "aa", "@": "aa", "e": "E", "&": "E", "i": "ih", "j": "ih", "o": "oh",
        "7": "oh", "u": "ou", "y": "ou", "w": "ou",  # @: [æ] (ä); 7: [ø] (ö); y: [y]
        "p": "PP", "b": "PP", "m": "PP", "f": "FF", "v": "FF", "T": "TH", "D": "TH", "t": "DD", "d": "DD",
        "k": "kk", "g": "kk", "N": "kk", "s": "SS", "z": "SS", "S": "CH", "Z": "CH", "h": "transparent",
        "n": "nn", "l": "nn", "L": "nn", "r": "RR",
    },
    "ru": {  # doubled consonants are the palatalised ones; doubled vowels the stressed ones
        "pau": "sil", "ii": "ih", "i": "ih", "yy": "ih", "y": "ih", "j": "ih", "uu": "ou", "u": "ou",
        "ee": "E", "e": "E", "ae": "E", "ur": "E", "oo": "oh", "aa": "aa", "a": "aa", "ay": "aa",  # y: [ɨ]
        "p": "PP", "pp": "PP", "b": "PP", "bb": "PP", "m": "PP", "mm": "PP", "f": "FF", "ff": "FF", "v": "FF",
        "vv": "FF", "t": "DD", "tt": "DD", "d": "DD", "dd": "DD", "k": "kk", "kk": "kk", "g": "kk", "gg": "kk",
        "h": "kk", "hh": "kk", "c": "SS", "s": "SS", "ss": "SS", "z": "SS", "zz": "SS",  # h: [x]; c: [ts]
        "ch": "CH", "sh": "CH", "sch": "CH", "zh": "CH", "n": "nn", "nn": "nn", "l": "nn", "ll": "nn",
        "r": "RR", "rr": "RR",
    },
    "hi": {  # /usr/share/festival/hindi_scm/hindi_phones.scm; a: [ə]; ay, aw: [ɛ ɔ]; th dh tth ddh: dental stops;
        # T D td: retroflex stops; N: [ɳ]; L: [ɭ]; R: [ɽ]; v: [ʋ]; x: the set's placeholder
        "pau": "sil", "a": "E", "aa": "aa", "ih": "ih", "iy": "ih", "uh": "ou", "uw": "ou", "eh": "E", "ee": "E",
        "ay": "E", "oh": "oh", "oo": "oh", "aw": "oh", "y": "ih", "w": "ou",
        "p": "PP", "b": "PP", "bh": "PP", "m": "PP", "f": "FF", "v": "FF",
        "t": "DD", "d": "DD", "th": "DD", "dh": "DD", "tth": "DD", "ddh": "DD", "T": "DD", "D": "DD", "td": "DD",
        "k": "kk", "g": "kk", "kh": "kk", "gh": "kk", "x": "kk", "ch": "CH", "j": "CH", "sh": "CH", "zh": "CH",
        "ksh": ("kk", "CH"), "sri": ("CH", "RR", "ih"), "s": "SS", "n": "nn", "N": "nn", "l": "nn", "L": "nn",
        "r": "RR", "R": "RR", "h": "transparent",
    },
    "ca": {  # upc_catalan-central; ax: [ə]; J, L: [ɲ ʎ]; S, Z: [ʃ ʒ]; trailing 1 = stressed
        "pau": "sil", "#": "sil", "_": "transparent", "a": "aa", "ax": "E", "e": "E", "E": "E", "i": "ih",
        "j": "ih", "o": "oh", "O": "oh", "u": "ou", "w": "ou", "p": "PP", "b": "PP", "m": "PP", "f": "FF",
        "t": "DD", "d": "DD", "k": "kk", "g": "kk", "s": "SS", "z": "SS", "S": "CH", "Z": "CH", "n": "nn",
        "l": "nn", "J": "nn", "L": "nn", "r": "RR", "rr": "RR",
    },
}


def available() -> bool:
    return shutil.which("festival") is not None


def language_of(voice: str) -> str:
    return next(lang for table in (VOICES, HTS_VOICES) for lang, vs in table.items() if voice in vs)


def phone_visemes(lang: str):
    """The phone -> viseme ids function for festival phones of `lang`."""
    if lang == "en":
        return visemes.arpabet_visemes
    table = PHONES[lang]

    def ids(name: str) -> list[int]:
        key = name if name in table else name.rstrip("1").replace(":", "")
        if key in table:
            return visemes.viseme_ids(table[key])
        visemes.UNKNOWN[f"festival-{lang}:{name}"] += 1
        return [visemes.ID["E"]]

    return ids


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", " ").replace('"', " ") + '"'


def synthesize(text: str, voice: str, duration_stretch: float = 1.0) -> tuple[np.ndarray, int, list[espeak.Phone]]:
    """Returns (float32 audio, sample rate, phones with festival names and start/end in seconds)."""
    lang = language_of(voice)
    with tempfile.TemporaryDirectory() as tmp:
        wav, script = os.path.join(tmp, "out.wav"), os.path.join(tmp, "say.scm")
        lines = [
            f"(voice_{voice})",
            f"(Parameter.set 'Duration_Stretch {duration_stretch:.4f})",
            f"(set! utt (utt.synth (Utterance Text {_scheme_string(text)})))",
            f'(utt.save.wave utt "{wav}" \'riff)',
            "(mapcar (lambda (s) (format t \"%s %f\\n\" (item.name s) (item.feat s \"end\")))"
            " (utt.relation.items utt 'Segment))",
        ]
        with open(script, "wb") as f:
            f.write("\n".join(lines).encode(ENCODING[lang], errors="replace"))
        out = subprocess.run(["festival", "-b", script], check=True, capture_output=True, timeout=120).stdout
        sr, pcm = scipy.io.wavfile.read(wav)
    audio = pcm.astype(np.float32) / 32768.0
    dur = len(audio) / sr
    phones, start = [], 0.0
    for line in out.decode(ENCODING[lang], errors="replace").splitlines():
        name, _, end = line.rpartition(" ")
        try:
            end_s = min(float(end), dur)
        except ValueError:
            continue
        if name and end_s > start:
            phones.append(espeak.Phone(name, start, end_s))
        start = max(start, end_s)
    return audio, sr, phones


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("text")
    ap.add_argument("--voice", default="ked_diphone")
    ap.add_argument("--stretch", type=float, default=1.0)
    args = ap.parse_args()
    audio, sr, phones = synthesize(args.text, args.voice, args.stretch)
    print(f"{len(audio) / sr:.3f} s at {sr} Hz")
    for p in phones:
        seg = audio[int(p.start * sr):int(p.end * sr)]
        level = 10 * np.log10(np.mean(seg ** 2) + 1e-12) if len(seg) else float("nan")
        ids = phone_visemes(language_of(args.voice))(p.name)
        names = ",".join(visemes.NAMES[v] if v >= 0 else "(next)" for v in ids)
        print(f"{p.name:>5} {p.start:7.3f} {p.end:7.3f}  {level:6.1f} dB  {names}")


if __name__ == "__main__":
    main()
