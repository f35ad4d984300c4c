"""Shard files: many utterances per .npz, concatenated arrays with offsets (uncompressed; loads with np.load).

Keys of a shard (N utterances, F frames in all, P phones in all):
    audio          float32 [sum of samples]  16 kHz mono          audio_offsets  int64 [N+1]
    face           float32 [F, 52]  ARKit targets, 25 fps     frame_offsets  int64 [N+1]
    labels         uint8   [F]      viseme ids (visemes.NAMES)
    phone_names    str     [P]      espeak mnemonics / ARPAbet  phone_offsets  int64 [N+1]
    phone_start, phone_end  float32 [P]  seconds in the stored (augmented) audio
    phone_raw_start         float32 [P]  start as the synthesizer reported it (before the stop-closure fix)
    meta           str (JSON): {"split": ..., "utterances": [{voice, lang, variant, rate, pitch, text, augment...}],
                                "dataset": {split definition, seed, ...}}
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np


def write(path: str, utterances: list[dict], dataset_meta: dict, split: str) -> None:
    """`utterances`: dicts with audio, face, labels, phones [(name, start, end, raw_start)], meta (dict)."""
    def offsets(lengths):
        return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    phones = [p for u in utterances for p in u["phones"]]
    arrays = {
        "audio": np.concatenate([u["audio"] for u in utterances]).astype(np.float32),
        "audio_offsets": offsets([len(u["audio"]) for u in utterances]),
        "face": np.concatenate([u["face"] for u in utterances]).astype(np.float32),
        "labels": np.concatenate([u["labels"] for u in utterances]).astype(np.uint8),
        "frame_offsets": offsets([len(u["labels"]) for u in utterances]),
        "phone_names": np.array([p[0] for p in phones], dtype=str),
        "phone_start": np.array([p[1] for p in phones], np.float32),
        "phone_end": np.array([p[2] for p in phones], np.float32),
        "phone_raw_start": np.array([p[3] for p in phones], np.float32),
        "phone_offsets": offsets([len(u["phones"]) for u in utterances]),
        "meta": np.array(json.dumps({"split": split, "dataset": dataset_meta,
                                     "utterances": [u["meta"] for u in utterances]}, ensure_ascii=False)),
    }
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def shard_paths(folder: str, split: str) -> list[str]:
    return sorted(glob.glob(os.path.join(folder, f"{split}-*.npz")))


def read(path: str):
    """Yields one dict per utterance: audio, face, labels, phones [(name, start, end)], meta."""
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    meta = json.loads(str(d["meta"]))
    ao, fo, po = d["audio_offsets"], d["frame_offsets"], d["phone_offsets"]
    for i, m in enumerate(meta["utterances"]):
        yield {
            "audio": d["audio"][ao[i]:ao[i + 1]],
            "face": d["face"][fo[i]:fo[i + 1]],
            "labels": d["labels"][fo[i]:fo[i + 1]].astype(np.int64),
            "phones": list(zip(d["phone_names"][po[i]:po[i + 1]].tolist(), d["phone_start"][po[i]:po[i + 1]].tolist(),
                               d["phone_end"][po[i]:po[i + 1]].tolist())),
            "meta": m,
        }


def iter_split(folder: str, split: str):
    for path in shard_paths(folder, split):
        yield from read(path)
