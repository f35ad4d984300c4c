"""Exports a trained model.npz (train.py) as assets/models/motion_encoder.onnx and checks it against NumPy.

    $PY -m tools.motion.export_onnx --weights /root/.cache/bevy_talking_head/motion_model/model.npz \
        --out assets/models/motion_encoder.onnx

Contract: input `window` f32 [B, 11, 58] (raw coefficients, 25 fps, centre = index 5: 52 ARKit weights in ARKit
order, head rotation pitch/yaw/roll rad, head translation x/y/z m) -> output `code` f32 [B, 25] (motion-basis
weights of the centre frame in bases::NAMES order, 0..1). Everything of model.forward is in the graph (input clip
and normalisation of the learned branch, the exact rig path, the final clip): feed raw values.
Built with onnx.helper (opset 17, IR 8); plain ops: Gather, Gemm, Relu, Add, Min, Max, Sub, Div, Transpose, Conv,
Flatten, Clip. Checks: onnx.checker; ONNX Runtime (1 thread) vs model.forward on held-out windows and on random
windows with out-of-range values, max |diff| must be < 1e-5 (the script fails otherwise); then times ONNX Runtime
per call at batch 1 and 64 (1 thread; median of repeated runs).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import data, model, rig

OPSET = 17
MODEL_VERSION = 1
LICENSE = "MIT OR Apache-2.0"


def build(p: dict, settings: dict) -> onnx.ModelProto:
    A, D, Dw = rig.linear_maps()
    f32 = lambda v, n: numpy_helper.from_array(np.asarray(v, np.float32), n)  # noqa: E731
    C, T0 = model.C, model.T0
    # numpy flattens [N, T0, C] (index t*C + c); ONNX's Conv output is [N, C, T0] (index c*T0 + t)
    Wh = p["Wh"].reshape(T0, C, rig.N_CODE).transpose(1, 0, 2).reshape(C * T0, rig.N_CODE)
    init = [numpy_helper.from_array(np.array(rig.CENTRE, np.int64), "centre"),
            f32(A, "exact_a"), f32(D, "exact_d"), f32(Dw, "exact_dw"),
            f32(model.LO, "in_lo"), f32(model.HI, "in_hi"), f32(p["mean"], "in_mean"), f32(p["std"], "in_std"),
            f32(p["W0"].transpose(2, 1, 0), "conv0_w"), f32(p["b0"], "conv0_b"),
            f32(Wh.T, "head_w"), f32(p["bh"], "head_b")]
    n = helper.make_node
    nodes = [
        # the rig's mapping of the centre frame: A x + Dw relu(D x)  (max(a, b) = b + relu(a - b))
        n("Gather", ["window", "centre"], ["centre_frame"], axis=1),
        n("Gemm", ["centre_frame", "exact_a"], ["exact_lin"], transB=1),
        n("Gemm", ["centre_frame", "exact_d"], ["exact_diff"], transB=1),
        n("Relu", ["exact_diff"], ["exact_relu"]),
        n("Gemm", ["exact_relu", "exact_dw", "exact_lin"], ["exact"], transB=1),
        # learned branch: clip, normalise, convolutions over time
        n("Min", ["window", "in_hi"], ["clip_hi"]), n("Max", ["clip_hi", "in_lo"], ["clipped"]),
        n("Sub", ["clipped", "in_mean"], ["centred"]), n("Div", ["centred", "in_std"], ["z"]),
        n("Transpose", ["z"], ["z_t"], perm=[0, 2, 1]),
        n("Conv", ["z_t", "conv0_w", "conv0_b"], ["c0"], kernel_shape=[3], pads=[0, 0]),
        n("Relu", ["c0"], ["h0"]),
    ]
    h = "h0"
    for k in range(model.BLOCKS):
        init += [f32(p[f"Wa{k}"].transpose(2, 1, 0), f"res{k}_a_w"), f32(p[f"ba{k}"], f"res{k}_a_b"),
                 f32(p[f"Wb{k}"].transpose(2, 1, 0), f"res{k}_b_w"), f32(p[f"bb{k}"], f"res{k}_b_b")]
        nodes += [n("Conv", [h, f"res{k}_a_w", f"res{k}_a_b"], [f"res{k}_a"], kernel_shape=[3], pads=[1, 1]),
                  n("Relu", [f"res{k}_a"], [f"res{k}_ra"]),
                  n("Conv", [f"res{k}_ra", f"res{k}_b_w", f"res{k}_b_b"], [f"res{k}_b"], kernel_shape=[3], pads=[1, 1]),
                  n("Add", [h, f"res{k}_b"], [f"h{k + 1}"])]
        h = f"h{k + 1}"
    init += [f32(0.0, "zero"), f32(1.0, "one")]
    nodes += [n("Relu", [h], ["h_relu"]), n("Flatten", ["h_relu"], ["flat"], axis=1),
              n("Gemm", ["flat", "head_w", "head_b"], ["correction"], transB=1),
              n("Add", ["exact", "correction"], ["pre"]),
              n("Clip", ["pre", "zero", "one"], ["code"])]
    graph = helper.make_graph(
        nodes, "motion_encoder",
        [helper.make_tensor_value_info("window", TensorProto.FLOAT, ["batch", rig.WINDOW, rig.N_IN])],
        [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", rig.N_CODE])], init)
    m = helper.make_model(graph, producer_name="bevy_talking_head/tools/motion/export_onnx.py",
                          producer_version=str(MODEL_VERSION), opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 8
    m.model_version = MODEL_VERSION
    m.doc_string = ("Motion encoder E_m: 11 frames (25 fps, centre index 5) of 52 ARKit weights + head rotation (rad) "
                    "+ translation (m), raw -> 25 motion-basis weights (bases::NAMES order) of the centre frame, 0..1. "
                    "Card: assets/models/motion_encoder.md")
    helper.set_model_props(m, {"license": LICENSE, "fps": "25", "window": "11", "centre": "5",
                               "code_names": ",".join(rig.NAMES), "training": json.dumps(settings)})
    onnx.checker.check_model(m, full_check=True)
    return m


def check(path: str, p: dict) -> float:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    tracks = data.cached_tracks("test_voices")[:6]
    wins = [np.concatenate([rig.windows(t) for t in tracks]),
            rng.uniform(-0.5, 1.5, (2000, rig.WINDOW, rig.N_IN)).astype(np.float32),
            np.zeros((1, rig.WINDOW, rig.N_IN), np.float32)]
    worst = 0.0
    for w in wins:
        ort_out = s.run(["code"], {"window": w})[0]
        worst = max(worst, float(np.abs(ort_out - model.forward(p, w)).max()))
    diff_map = float(np.abs(s.run(["code"], {"window": wins[0]})[0] - rig.from_arkit(wins[0][:, rig.CENTRE])).max())
    print(f"max |ONNX Runtime - NumPy| = {worst:.2e} over {sum(len(w) for w in wins)} windows; "
          f"max |ONNX - from_arkit| on {len(wins[0])} test_voices windows = {diff_map:.4f}")
    for batch in (1, 64):
        x = wins[0][:batch].copy()
        for _ in range(200):
            s.run(["code"], {"window": x})
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            for _ in range(200):
                s.run(["code"], {"window": x})
            times.append((time.perf_counter() - t0) / 200)
        t = float(np.median(times))
        print(f"ONNX Runtime, 1 thread, batch {batch}: {t * 1e6:.1f} us per call ({t * 1e6 / batch:.2f} us per window)")
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="/root/.cache/bevy_talking_head/motion_model/model.npz")
    ap.add_argument("--out", default="assets/models/motion_encoder.onnx")
    a = ap.parse_args()
    p = model.load(a.weights)
    settings = json.loads(str(p.pop("settings"))) if "settings" in p else {}
    m = build(p, settings)
    onnx.save(m, a.out)
    import os
    print(f"wrote {a.out}: {os.path.getsize(a.out)} bytes, {model.count_params(p)} trained parameters "
          f"(+ {sum(v.size for v in rig.linear_maps())} fixed in the exact path, 4 x 58 normalisation)")
    worst = check(a.out, p)
    if not worst < 1e-5:
        raise SystemExit(f"ONNX Runtime and NumPy differ by {worst}")


if __name__ == "__main__":
    main()
