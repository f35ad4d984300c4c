"""Flite (CMU) speech with phone timings, for evaluation only (never training).

`flite -psdur` prints every segment of the synthesized utterance as "phone:end_time" (seconds, ARPAbet phones,
"pau" for pauses), taken from the same utterance structure the waveform is made from; starts are the previous end.
Checked against the audio energy (README): pauses and stop closures line up with the segments for kal16, slt, rms
and awb within ~10-20 ms; the only mismatch is the final pause, which the diphone voices (kal, kal16) report
~0.1 s longer than the audio, so phones are clipped to the audio length.

Voices shipped by Debian's flite 2.2: kal (diphone, 8 kHz), kal16 (diphone, 16 kHz), awb, rms, slt (clustergen
statistical-parametric, 16 kHz). awb_time (a talking clock) is not used. Variation: duration_stretch 0.8-1.3
(tempo) and int_f0_target_mean (pitch, Hz).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np
import scipy.io.wavfile

from . import espeak

VOICES = ("kal", "kal16", "awb", "rms", "slt")


def available() -> bool:
    return shutil.which("flite") is not None


def synthesize(text: str, voice: str = "slt", duration_stretch: float = 1.0,
               f0_mean: float | None = None) -> tuple[np.ndarray, int, list[espeak.Phone]]:
    """Returns (float32 audio, sample rate, phones with ARPAbet names and start/end in seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "out.wav")
        cmd = ["flite", "-voice", voice, "--setf", f"duration_stretch={duration_stretch}"]
        if f0_mean is not None:
            cmd += ["--setf", f"int_f0_target_mean={f0_mean}"]
        cmd += ["-psdur", "-t", text, "-o", wav]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        sr, pcm = scipy.io.wavfile.read(wav)
    audio = pcm.astype(np.float32) / 32768.0
    dur = len(audio) / sr
    phones, start = [], 0.0
    for item in out.split():
        name, _, end = item.rpartition(":")
        end = min(float(end), dur)
        if name and end > start:
            phones.append(espeak.Phone(name, start, end))
        start = max(start, end)
    return audio, sr, phones
