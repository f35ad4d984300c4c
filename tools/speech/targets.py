"""Timed phones -> per-frame ARKit targets, viseme labels and mouth opening at 25 fps.

Frame convention (the plugin's): frame t covers audio [t/25 s, (t+1)/25 s); T = ceil(duration * 25).

1. Phones become viseme segments (`visemes.py`): diphthongs split in equal parts, zero-width markers dropped (the
   previous segment absorbs their time), transparent phones (h, glottal stop) take the next non-silent viseme.
2. Co-articulation, Cohen-Massaro style: every segment i has a dominance function
       D_i(t) = strength_i                                  inside the segment
              = strength_i * exp(-dist(t, segment) / spread_i)   outside
   and the face at time t is sum_i D_i(t) * shape_i / sum_i D_i(t). It is evaluated every 5 ms and averaged over
   the 8 samples of each frame (a 40 ms box, like a camera exposure). Strong, narrow dominance for p/b/m/f/v keeps
   their lip shapes; weak, wide dominance for vowels blends them with their neighbours (anticipation ~ 2 spreads).
3. Labels: the viseme covering most of the frame, except that PP (bilabial) wins when it covers >= 30 % of it
   (short closures must not vanish between two vowel frames).
4. Bilabial closures kept: in PP frames jawOpen <= 0.08, mouthClose = jawOpen (lips sealed while the jaw is a little
   open), lip-opening shapes damped, mouthPress >= 0.4; so `lip_opening` (metrics.py) is ~0 there.
5. Silence -> rest: values below 0.01 are set to 0 (deep inside pauses all 52 weights are exactly 0).
Mouth opening (correlation metric) = the jawOpen column.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from . import arkit, visemes

FPS = 25
SUB = 8  # dominance samples per frame (every 5 ms)
PP_MIN_COVER = 0.3
JAW = arkit.idx("jawOpen")


@dataclasses.dataclass
class Segment:
    viseme: int
    start: float
    end: float


def segments_from_phones(phones: Sequence, mapper: Callable[[str], list[int]]) -> list[Segment]:
    """Phones (objects with .name .start .end, seconds) -> viseme segments; see the module doc, step 1."""
    segs: list[Segment] = []
    for p in phones:
        ids = mapper(p.name)
        if not ids:
            if segs:
                segs[-1].end = max(segs[-1].end, p.end)
            continue
        step = (p.end - p.start) / len(ids)
        segs.extend(Segment(v, p.start + k * step, p.start + (k + 1) * step) for k, v in enumerate(ids))
    # Transparent phones take the next non-silent viseme (else the previous one, else silence).
    for i, s in enumerate(segs):
        if s.viseme == visemes.TRANSPARENT:
            nxt = next((t.viseme for t in segs[i + 1:] if t.viseme not in (visemes.TRANSPARENT,)), visemes.SIL)
            if nxt == visemes.SIL:
                prev = [t.viseme for t in segs[:i] if t.viseme != visemes.TRANSPARENT]
                nxt = prev[-1] if prev else visemes.SIL
            s.viseme = nxt
    return [s for s in segs if s.end > s.start]


def frame_count(duration_s: float) -> int:
    return int(np.ceil(duration_s * FPS - 1e-9))


def _labels(segs: list[Segment], n_frames: int) -> np.ndarray:
    cover = np.zeros((n_frames, visemes.COUNT), np.float64)
    for s in segs:
        f0, f1 = int(s.start * FPS), min(int(np.ceil(s.end * FPS)), n_frames)
        for f in range(f0, f1):
            lo, hi = max(s.start, f / FPS), min(s.end, (f + 1) / FPS)
            if hi > lo:
                cover[f, s.viseme] += (hi - lo) * FPS
    cover[:, visemes.SIL] += np.clip(1.0 - cover.sum(1), 0, None)  # time not covered by any phone is silence
    labels = cover.argmax(1)
    labels[cover[:, visemes.PP] >= PP_MIN_COVER] = visemes.PP
    return labels.astype(np.int64)


def _blend(segs: list[Segment], n_frames: int) -> np.ndarray:
    t = (np.arange(n_frames * SUB) + 0.5) / (FPS * SUB)
    num = np.zeros((len(t), arkit.COUNT))
    den = np.full(len(t), 1e-6)
    # Time outside every segment (before the first phone, after the last) is silence.
    edges = [Segment(visemes.SIL, -1e9, segs[0].start if segs else 1e9)]
    if segs:
        edges.append(Segment(visemes.SIL, segs[-1].end, 1e9))
    for s in segs + edges:
        dist = np.maximum(0.0, np.maximum(s.start - t, t - s.end))
        d = visemes.STRENGTH[s.viseme] * np.exp(-dist / visemes.SPREAD_S[s.viseme])
        den += d
        num += d[:, None] * visemes.SHAPES[s.viseme][None, :]
    face = num / den[:, None]
    return face.reshape(n_frames, SUB, arkit.COUNT).mean(1)


def _close_lips(face: np.ndarray, labels: np.ndarray) -> None:
    pp = labels == visemes.PP
    if not pp.any():
        return
    jaw = np.minimum(face[pp, JAW], 0.08)
    face[pp, JAW] = jaw
    face[pp, arkit.idx("mouthClose")] = jaw
    for n in ("mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "mouthFunnel"):
        face[pp, arkit.idx(n)] *= 0.3
    for n in ("mouthPressLeft", "mouthPressRight"):
        face[pp, arkit.idx(n)] = np.maximum(face[pp, arkit.idx(n)], 0.4)


@dataclasses.dataclass
class Targets:
    face: np.ndarray  # [T, 52] float32, ARKit order
    labels: np.ndarray  # [T] int64 viseme ids
    mouth_open: np.ndarray  # [T] float32 (jawOpen)


def make_targets(phones: Sequence, duration_s: float, mapper: Callable[[str], list[int]]) -> Targets:
    """Per-frame targets for an utterance of `duration_s` seconds whose phones are timed in seconds."""
    n = frame_count(duration_s)
    segs = segments_from_phones(phones, mapper)
    labels = _labels(segs, n)
    face = _blend(segs, n)
    _close_lips(face, labels)
    face[face < 0.01] = 0.0
    face = np.clip(face, 0.0, 1.0).astype(np.float32)
    return Targets(face=face, labels=labels, mouth_open=face[:, JAW].copy())


def extend_stop_closures(phones: list, audio: np.ndarray, sr: int, mapper: Callable[[str], list[int]],
                         max_closure_s: float = 0.15, pre_pause_pp_s: float = 0.05) -> int:
    """espeak-ng reports a voiceless stop (p t k, tS ...) at its release: the closure silence before it (digital
    zeros or a breath-noise floor in espeak's output) is inside the previous phone's span. Moves such a phone's start back to the
    start of that silence (at most `max_closure_s`), so that e.g. /p/ frames cover the time the lips are shut.
    After a pause (or at the very start), a bilabial's start moves back by `pre_pause_pp_s` (lips close before
    the burst).
    Changes `phones` in place (each needs .name .start .end); returns how many phones moved."""
    # 1 ms blocks; a block is "silent" when its RMS is 33 dB below the loud parts (99th percentile block). espeak's
    # closures are digital zeros, or a constant breath noise ~40 dB down for breathy variants (f2, whisper ...).
    block = max(1, sr // 1000)
    n_blocks = len(audio) // block
    rms = np.sqrt((audio[:n_blocks * block].astype(np.float64).reshape(n_blocks, block) ** 2).mean(1))
    silent = rms < np.percentile(rms, 99) * 10 ** (-33 / 20) if n_blocks else rms > 0
    moved = 0
    if phones and phones[0].end > phones[0].start and mapper(phones[0].name)[:1] == [visemes.PP]:
        new = max(0.0, phones[0].start - pre_pause_pp_s)  # utterance-initial bilabial: lips close before it
        moved += int(new < phones[0].start)
        phones[0].start = new
    for i in range(1, len(phones)):
        p, prev = phones[i], phones[i - 1]
        ids = mapper(p.name)
        if not ids or ids[0] in (visemes.SIL, visemes.TRANSPARENT) or p.end <= p.start:
            continue
        if prev.name.startswith("_"):
            if ids[0] == visemes.PP:
                new = max(prev.start, p.start - pre_pause_pp_s)
                if new < p.start:
                    prev.end = p.start = new
                    moved += 1
            continue
        ms = min(int(p.start * 1000), n_blocks)
        # The silence must end within 25 ms before the event (espeak fades the burst in a little before it).
        recent = np.flatnonzero(silent[max(0, ms - 25):ms])
        if len(recent) == 0:
            continue
        end = max(0, ms - 25) + int(recent[-1]) + 1
        begin, floor = end, max(int(np.ceil(prev.start * 1000)), end - int(max_closure_s * 1000))
        while begin > floor and silent[begin - 1]:
            begin -= 1
        if end - begin >= 10:
            p.start = prev.end = begin / 1000.0
            moved += 1
    return moved
