#!/usr/bin/env python3
"""Build assets/models/log_mel.onnx: the log-mel front end as a fixed ONNX graph (no training, no downloads).

    python3 -m pip install -r tools/requirements.txt
    python3 tools/build_log_mel.py            # writes assets/models/log_mel.onnx
    python3 tools/build_log_mel.py --check    # also compares against a float64 NumPy reference (needs onnxruntime)

Maths (the Rust reference in plugin/inference/log_mel.rs computes the same thing):
    samples  [1, N] float32, mono, 16 kHz
    frames   t = 0..T-1, T = 1 + (N - 400) // 160, frame t = samples[160 t : 160 t + 400]  (no centre padding)
    window   periodic Hann, w[n] = 0.5 - 0.5 cos(2 pi n / 400)
    spectrum X[k] = sum_n w[n] x[n] exp(-2 pi i k n / 400), k = 0..200; power P[k] = re^2 + im^2
    mel      M[b] = sum_k P[k] F[k, b], F = 80 Slaney-scale triangles from 0 to 8000 Hz with Slaney area
             normalisation (the formula of librosa.filters.mel(sr=16000, n_fft=400, n_mels=80), htk=False, norm="slaney")
    log_mel  ln(M[b] + 1e-6)   [1, T, 80] float32

Graph: Unsqueeze -> Conv1d (400 fixed kernels: windowed cos for k = 0..200, windowed sin for k = 1..199; sin is
identically zero for k = 0 and k = 200), stride 160 -> Mul (square) -> Transpose -> MatMul with the filterbank
stacked twice (cos rows, then sin rows, so re^2 F + im^2 F = P F) -> Add eps -> Log.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Contract numbers: keep in sync with plugin/contract.rs (SAMPLE_RATE_HZ, MEL_BANDS, MEL_WINDOW_SAMPLES, MEL_HOP_SAMPLES).
SAMPLE_RATE_HZ = 16_000
MEL_BANDS = 80
WINDOW = 400
HOP = 160
BINS = WINDOW // 2 + 1  # 201
F_MIN_HZ = 0.0
F_MAX_HZ = SAMPLE_RATE_HZ / 2
# Added to the mel power before ln: -13.8 is the floor (exact silence). Mel powers of speech are > 1e-3, and
# float32 rounding of the DFT stays far below 1e-6 * 1e-3 for frames with signal, so the floor does not amplify it.
LOG_EPS = 1e-6
OPSET = 17
MODEL_VERSION = 1

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "models" / "log_mel.onnx"


# Slaney mel scale constants: 200/3 Hz per mel below 1 kHz, logarithmic steps above.
F_SP = 200.0 / 3.0
MIN_LOG_HZ = 1000.0
MIN_LOG_MEL = MIN_LOG_HZ / F_SP
LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    return np.where(f >= MIN_LOG_HZ, MIN_LOG_MEL + np.log(np.maximum(f, 1e-12) / MIN_LOG_HZ) / LOGSTEP, f / F_SP)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    """Inverse of hz_to_mel."""
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= MIN_LOG_MEL, MIN_LOG_HZ * np.exp(LOGSTEP * (m - MIN_LOG_MEL)), F_SP * m)


def mel_filterbank() -> np.ndarray:
    """[BINS, MEL_BANDS] float64: Slaney-scale triangles, Slaney (area) normalised."""
    fft_freqs = np.arange(BINS, dtype=np.float64) * SAMPLE_RATE_HZ / WINDOW
    mel_points = np.linspace(hz_to_mel(F_MIN_HZ), hz_to_mel(F_MAX_HZ), MEL_BANDS + 2)
    hz_points = mel_to_hz(mel_points)
    fb = np.zeros((BINS, MEL_BANDS), dtype=np.float64)
    for b in range(MEL_BANDS):
        lo, centre, hi = hz_points[b], hz_points[b + 1], hz_points[b + 2]
        rising = (fft_freqs - lo) / (centre - lo)
        falling = (hi - fft_freqs) / (hi - centre)
        fb[:, b] = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (hi - lo))
    return fb


def hann_periodic() -> np.ndarray:
    n = np.arange(WINDOW, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / WINDOW)


def dft_kernels() -> tuple[np.ndarray, np.ndarray]:
    """Conv weights [400, 1, 400] (windowed cos k=0..200, windowed sin k=1..199) and the matching filterbank rows."""
    n = np.arange(WINDOW, dtype=np.float64)
    w = hann_periodic()
    cos_k = np.arange(BINS)
    sin_k = np.arange(1, BINS - 1)
    # Reduce k n mod WINDOW in integers so the angle is exact before the float maths.
    cos_rows = w * np.cos(2.0 * np.pi * ((cos_k[:, None] * n[None, :].astype(np.int64)) % WINDOW) / WINDOW)
    sin_rows = -w * np.sin(2.0 * np.pi * ((sin_k[:, None] * n[None, :].astype(np.int64)) % WINDOW) / WINDOW)
    kernels = np.concatenate([cos_rows, sin_rows], axis=0)[:, None, :]
    fb = mel_filterbank()
    stacked_fb = np.concatenate([fb[cos_k], fb[sin_k]], axis=0)
    return kernels.astype(np.float32), stacked_fb.astype(np.float32)


def build() -> onnx.ModelProto:
    kernels, stacked_fb = dft_kernels()
    initializers = [
        numpy_helper.from_array(np.array([1], dtype=np.int64), "channel_axis"),
        numpy_helper.from_array(kernels, "dft_kernels"),
        numpy_helper.from_array(stacked_fb, "mel_filterbank"),
        numpy_helper.from_array(np.array(LOG_EPS, dtype=np.float32), "log_eps"),
    ]
    nodes = [
        helper.make_node("Unsqueeze", ["samples", "channel_axis"], ["samples_1ch"], name="as_one_channel"),
        helper.make_node(
            "Conv",
            ["samples_1ch", "dft_kernels"],
            ["spectrum"],
            name="windowed_dft",
            kernel_shape=[WINDOW],
            strides=[HOP],
            pads=[0, 0],
        ),
        helper.make_node("Mul", ["spectrum", "spectrum"], ["spectrum_sq"], name="square"),
        helper.make_node("Transpose", ["spectrum_sq"], ["spectrum_sq_t"], name="time_major", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["spectrum_sq_t", "mel_filterbank"], ["mel"], name="mel_bands"),
        helper.make_node("Add", ["mel", "log_eps"], ["mel_eps"], name="floor"),
        helper.make_node("Log", ["mel_eps"], ["log_mel"], name="ln"),
    ]
    graph = helper.make_graph(
        nodes,
        "log_mel",
        [helper.make_tensor_value_info("samples", TensorProto.FLOAT, [1, "samples"])],
        [helper.make_tensor_value_info("log_mel", TensorProto.FLOAT, [1, "frames", MEL_BANDS])],
        initializer=initializers,
        doc_string=(
            "Log-mel front end: 16 kHz mono float32 [1, N] -> ln(mel power + 1e-6) [1, 1 + (N - 400) // 160, 80]; "
            "periodic Hann 400, hop 160, no centre padding, 80 Slaney mel bands 0-8000 Hz (Slaney norm)."
        ),
    )
    model = helper.make_model(
        graph,
        producer_name="bevy_talking_head/tools/build_log_mel.py",
        producer_version=str(MODEL_VERSION),
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = 8  # opset 17 needs IR >= 8; the lowest fitting IR keeps older runtimes able to load it
    model.model_version = MODEL_VERSION
    helper.set_model_props(model, {"license": "MIT OR Apache-2.0", "sample_rate_hz": str(SAMPLE_RATE_HZ)})
    onnx.checker.check_model(model, full_check=True)
    return model


def reference_log_mel(samples: np.ndarray) -> np.ndarray:
    """Float64 NumPy reference (np.fft.rfft) of the same maths, [T, 80]."""
    frames = 1 + (len(samples) - WINDOW) // HOP
    idx = np.arange(WINDOW)[None, :] + HOP * np.arange(frames)[:, None]
    spectrum = np.fft.rfft(samples[idx].astype(np.float64) * hann_periodic()[None, :], axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    return np.log(power @ mel_filterbank() + LOG_EPS)


def check(path: pathlib.Path) -> float:
    import onnxruntime as ort

    rng = np.random.default_rng(7)
    t = np.arange(2 * SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    chirp = 0.3 * np.sin(2 * np.pi * (100 * t + 0.5 * (4000 - 100) / 2.0 * t**2))
    signal = (chirp + 0.02 * rng.standard_normal(t.shape)).astype(np.float32)
    signal[12_000:18_000] = 0.0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"samples": signal[None, :]})
    expected = reference_log_mel(signal)
    assert out.shape == (1, expected.shape[0], MEL_BANDS), out.shape
    return float(np.max(np.abs(out[0] - expected)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="compare with a float64 NumPy reference (onnxruntime)")
    args = parser.parse_args()
    model = build()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    if args.check:
        print(f"max |onnxruntime - float64 reference| = {check(args.out):.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
