"""Export a trained model.npz (train.py) as the two ONNX models of the DESIGN contract, and check them.

    PY=/root/.cache/bevy_talking_head/venv-speech/bin/python
    $PY -m tools.speech.export_onnx --weights /root/.cache/bevy_talking_head/speech_model/model.npz \
        --out-dir /root/.cache/bevy_talking_head/speech_model [--check-utterances 20]

audio_encoder.onnx     log_mel float32 [1, R, 80] (the rows of log_mel.onnx / plugin/inference/log_mel.rs for the
                       padded clip, 100 Hz) -> features float32 [1, T50, F + 1], T50 = R // 2 - 3; feature j uses
                       rows 2j .. 2j+7 (centred at padded sample 320 j + 760) plus 149 rows of history for the
                       causal running max/min (the rest of model.front_end: bands 2..79, relative levels, fixed
                       affine map; then two valid Conv1d layers; channel F is the fixed noise gate, and with
                       the npz's level_ramp (version 8 on) channel F + 1 the level factor, model.level_features).
                       The samples -> log-mel step is log_mel.onnx (or its FFT twin in the plugin), not repeated
                       here: the DFT-as-convolution cost 3/4 of the encoder's time.
motion_generator.onnx  features float32 [B, 5, F + 1 (+ 1)] (the +-2 window; B = 1 per the contract, more frames
                       batch) -> weights float32 [B, 52] in 0..1, ARKit order: a sigmoid regression head mixed with
                       the expected viseme shape of a 15-way viseme head (model.mix_output), times the window's
                       gate and the centre feature's level factor.
Built with onnx.helper from the NumPy weights (opset 17, IR 8, like log_mel.onnx).  --check compares the ONNX
Runtime output with the NumPy forward pass (model.NumpyModel) on test utterances and prints the max abs difference.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import model, visemes

OPSET = 17
MODEL_VERSION = 2
LICENSE = "MIT OR Apache-2.0"


def _finish(graph, name: str, props: dict) -> onnx.ModelProto:
    m = helper.make_model(graph, producer_name=f"bevy_talking_head/tools/speech/export_onnx.py ({name})",
                          producer_version=str(MODEL_VERSION), opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 8
    m.model_version = MODEL_VERSION
    helper.set_model_props(m, {"license": LICENSE, **{k: str(v) for k, v in props.items()}})
    onnx.checker.check_model(m, full_check=True)
    return m


FLUSH_BELOW = 1e-30


def _const(value, name: str) -> onnx.TensorProto:
    """A float32 initializer; magnitudes under FLUSH_BELOW are written as 0. Weight decay leaves some weights of
    units that never fire at subnormal sizes (version 5 had 422), and subnormal floats make the CPU's arithmetic
    much slower (version 5's graph took 1.5x version 4's time for the same layers before they were flushed); the
    outputs change by less than 1e-25."""
    v = np.asarray(value, np.float32)
    return numpy_helper.from_array(np.where(np.abs(v) < FLUSH_BELOW, np.float32(0), v).astype(np.float32), name)


def build_encoder(p: dict) -> onnx.ModelProto:
    shape = model.has_shape(p)
    d, h1 = model.d_in(shape), p["W1"].shape[1]
    f = p["W2"].shape[1]
    ramp = model.level_ramp(p)
    channels = f + 1 + (ramp is not None)
    c = _const
    init = [
        numpy_helper.from_array(np.array([2], np.int64), "axis2"),
        c(0.0, "zero"), c(1.0, "one"),
        numpy_helper.from_array(np.array([model.BAND_LO], np.int64), "band_lo"),
        numpy_helper.from_array(np.array([80], np.int64), "band_hi"),
        c(model.E_FLOOR, "e_floor"), c(model.DIGITAL, "digital"), c(model.BIG, "big"), c(-model.K, "minus_k"), c(model.K, "plus_k"),
        c(p["mean"], "feat_mean"), c(p["inv_std"], "feat_inv_std"),
        c(p["W1"].reshape(4, d, h1).transpose(2, 1, 0), "conv1_w"), c(p["b1"], "conv1_b"),
        c(p["W2"].reshape(3, h1, f).transpose(2, 1, 0), "conv2_w"), c(p["b2"], "conv2_b"),
        c(model.GATE_PEAK, "gate_peak"), c(model.GATE_SNR, "gate_snr"), c(model.GATE_RAMP, "gate_ramp"),
        c(np.array([0, 0, .25, .25, .25, .25, 0, 0]).reshape(1, 1, 8), "gate_kernel"),
    ]
    n = helper.make_node
    nodes = [
        # bands 2..79 of the log-mel rows; e = ln(sum_b (M_b + 1e-6)) = logsumexp of those bands
        n("Slice", ["log_mel", "band_lo", "band_hi", "axis2"], ["L"]),
        n("ReduceLogSumExp", ["L"], ["e"], axes=[2], keepdims=1),
        # causal running max / min over the last W rows
        n("Transpose", ["e"], ["e_t"], perm=[0, 2, 1]),
        n("MaxPool", ["e_t"], ["run_max_t"], kernel_shape=[model.W], pads=[model.W - 1, 0], strides=[1]),
        n("Less", ["e_t", "digital"], ["is_digital"]), n("Where", ["is_digital", "big", "e_t"], ["e_t_nd"]),
        n("Neg", ["e_t_nd"], ["neg_e_t"]),
        n("MaxPool", ["neg_e_t"], ["neg_run_min_t"], kernel_shape=[model.W], pads=[model.W - 1, 0], strides=[1]),
        n("Neg", ["neg_run_min_t"], ["run_min_t"]),
        n("Transpose", ["run_max_t"], ["run_max"], perm=[0, 2, 1]),
        n("Transpose", ["run_min_t"], ["N"], perm=[0, 2, 1]),
        n("Max", ["run_max", "e_floor"], ["R"]),
        # relative levels
        n("Sub", ["L", "R"], ["l_r"]), n("Max", ["l_r", "minus_k"], ["f_peak"]),
    ] + ([n("Sub", ["L", "e"], ["l_e"]), n("Max", ["l_e", "minus_k"], ["f_shape"])] if shape else []) + [
        n("Sub", ["e", "R"], ["e_r"]), n("Max", ["e_r", "minus_k"], ["f_level"]),
        n("Sub", ["e", "N"], ["e_n"]), n("Min", ["e_n", "plus_k"], ["e_n_hi"]), n("Max", ["e_n_hi", "minus_k"], ["f_snr"]),
        n("Concat", ["f_peak"] + (["f_shape"] if shape else []) + ["f_level", "f_snr"], ["raw"], axis=2),
        n("Sub", ["raw", "feat_mean"], ["centred"]), n("Mul", ["centred", "feat_inv_std"], ["rows"]),
        # trainable convolutions
        n("Transpose", ["rows"], ["rows_t"], perm=[0, 2, 1]),
        n("Conv", ["rows_t", "conv1_w", "conv1_b"], ["c1"], kernel_shape=[4], strides=[2], pads=[0, 0]),
        n("Relu", ["c1"], ["h1"]),
        n("Conv", ["h1", "conv2_w", "conv2_b"], ["c2"], kernel_shape=[3], strides=[1], pads=[0, 0]),
        n("Tanh", ["c2"], ["f_t"]),
        # noise gate (model.gate_features): level and SNR rows pooled over rows 2j+2..2j+5 in the power domain
        # (ln of the mean of exp), then the ramps
        n("Concat", ["f_level", "f_snr"], ["lvl_snr"], axis=2), n("Exp", ["lvl_snr"], ["lvl_snr_pow"]),
        n("Transpose", ["lvl_snr_pow"], ["lvl_snr_pow_t"], perm=[0, 2, 1]),
        n("Split", ["lvl_snr_pow_t"], ["lvl_pow_t", "snr_pow_t"], axis=1),
        n("Conv", ["lvl_pow_t", "gate_kernel"], ["lvl_mean_t"], kernel_shape=[8], strides=[2], pads=[0, 0]),
        n("Conv", ["snr_pow_t", "gate_kernel"], ["snr_mean_t"], kernel_shape=[8], strides=[2], pads=[0, 0]),
        n("Log", ["lvl_mean_t"], ["lvl40"]), n("Log", ["snr_mean_t"], ["snr40"]),
        n("Add", ["lvl40", "gate_peak"], ["g1a"]), n("Div", ["g1a", "gate_ramp"], ["g1b"]),
        n("Clip", ["g1b", "zero", "one"], ["g1"]),
        n("Sub", ["snr40", "gate_snr"], ["g2a"]), n("Div", ["g2a", "gate_ramp"], ["g2b"]),
        n("Clip", ["g2b", "zero", "one"], ["g2"]),
        n("Mul", ["g1", "g2"], ["gate_t"]),
    ]
    outputs = ["f_t", "gate_t"]
    if ramp is not None:  # the level factor (model.level_features)
        init.append(c(ramp, "level_ramp"))
        nodes += [n("Div", ["g1a", "level_ramp"], ["lf_a"]), n("Clip", ["lf_a", "zero", "one"], ["level_t"])]
        outputs.append("level_t")
    nodes += [n("Concat", outputs, ["out_t"], axis=1), n("Transpose", ["out_t"], ["features"], perm=[0, 2, 1])]
    graph = helper.make_graph(
        nodes, "audio_encoder",
        [helper.make_tensor_value_info("log_mel", TensorProto.FLOAT, [1, "rows", 80])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, "frames", channels])],
        initializer=init,
        doc_string=("log-mel rows of log_mel.onnx [1, R, 80] (100 Hz) -> 50 Hz features [1, R // 2 - 3, %d]; feature j "
                    "uses rows 2j .. 2j+7 and is centred at sample 320 j + 760 of the log-mel input; causal running "
                    "level statistics over 1.5 s (150 rows); see assets/models/speech_to_motion.md" % channels))
    props = {"input_rate_hz": 100, "feature_rate_hz": 50, "feature_dim": channels, "gate_channel": f,
             "feature_rows": "2j .. 2j+7", "pad_left_samples": model.PAD_LEFT, "history_rows": model.W - 1}
    if ramp is not None:
        props.update(level_channel=f + 1, level_ramp=ramp)
    return _finish(graph, "audio_encoder", props)


def build_generator(p: dict) -> onnx.ModelProto:
    f, h2 = p["W2"].shape[1], p["W3"].shape[1]  # F learnt feature channels (+ the gate and level channels)
    lam, tau = model.mix_settings(p)
    ramp = model.level_ramp(p)
    channels = f + 1 + (ramp is not None)
    c = _const
    if model.window_of(p) != model.FEATURE_WINDOW:
        raise SystemExit("export_onnx: only the +-2 feature window is exported (this npz was trained with --past)")
    w3 = np.zeros((model.FEATURE_WINDOW, channels, h2), np.float32)  # the gate and level channels are not MLP inputs
    w3[:, :f] = p["W3"].reshape(model.FEATURE_WINDOW, f, h2)
    init = [numpy_helper.from_array(np.array([-1, model.FEATURE_WINDOW * channels], np.int64), "flat_shape"),
            numpy_helper.from_array(np.array([model.GATE_WINDOW[0], f], np.int64), "gate_starts"),
            numpy_helper.from_array(np.array([model.GATE_WINDOW[1], f + 1], np.int64), "gate_ends"),
            numpy_helper.from_array(np.array([1, 2], np.int64), "gate_axes"),
            numpy_helper.from_array(np.array([-1, 1], np.int64), "gate_shape"),
            c(w3.reshape(-1, h2), "fc1_w"), c(p["b3"], "fc1_b"), c(p["W4"], "fc2_w"), c(p["b4"], "fc2_b"),
            c(p["Wv"] / tau, "vis_w"), c(p["bv"] / tau, "vis_b"), c(visemes.SHAPES, "viseme_shapes"),
            c(model.MIX_EPS, "mix_eps"), c(1.0, "one"),
            c(lam, "lam"), c(1.0 - lam, "one_minus_lam")]
    n = helper.make_node
    nodes = [n("Reshape", ["features", "flat_shape"], ["flat"]),
             n("Gemm", ["flat", "fc1_w", "fc1_b"], ["a1"]), n("Relu", ["a1"], ["h"]),
             n("Gemm", ["h", "fc2_w", "fc2_b"], ["a2"]), n("Sigmoid", ["a2"], ["regression"]),
             # viseme posterior -> expected viseme shape, scaled to the regression's norm (model.mix_output)
             n("Gemm", ["h", "vis_w", "vis_b"], ["vis_logits"]), n("Softmax", ["vis_logits"], ["vis_p"], axis=1),
             n("MatMul", ["vis_p", "viseme_shapes"], ["shape"]),
             n("ReduceL2", ["regression"], ["reg_norm"], axes=[1], keepdims=1),
             n("ReduceL2", ["shape"], ["shape_norm"], axes=[1], keepdims=1),
             n("Add", ["shape_norm", "mix_eps"], ["shape_norm_eps"]),
             n("Div", ["reg_norm", "shape_norm_eps"], ["scale"]),
             n("Mul", ["shape", "scale"], ["shape_scaled"]), n("Min", ["shape_scaled", "one"], ["shape_capped"]),
             n("Mul", ["shape_capped", "lam"], ["mix_a"]), n("Mul", ["regression", "one_minus_lam"], ["mix_b"]),
             n("Add", ["mix_a", "mix_b"], ["mixed"]),
             # noise gate: the largest channel-F value of the window (model.window_gate)
             n("Slice", ["features", "gate_starts", "gate_ends", "gate_axes"], ["gate_3d"]),
             n("ReduceMax", ["gate_3d"], ["gate_max"], axes=[1], keepdims=1),
             n("Reshape", ["gate_max", "gate_shape"], ["gate"])]
    if ramp is None:
        nodes.append(n("Mul", ["mixed", "gate"], ["weights"]))
    else:  # and the centre feature's level factor (model.NumpyModel)
        centre = model.FEATURE_WINDOW // 2
        init += [numpy_helper.from_array(np.array([centre, f + 1], np.int64), "level_starts"),
                 numpy_helper.from_array(np.array([centre + 1, f + 2], np.int64), "level_ends")]
        nodes += [n("Slice", ["features", "level_starts", "level_ends", "gate_axes"], ["level_3d"]),
                  n("Reshape", ["level_3d", "gate_shape"], ["level"]),
                  n("Mul", ["mixed", "gate"], ["gated"]), n("Mul", ["gated", "level"], ["weights"])]
    graph = helper.make_graph(
        nodes, "motion_generator",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", model.FEATURE_WINDOW, channels])],
        [helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["batch", 52])],
        initializer=init,
        doc_string="features window [B, 5 (+-2), %d] around a 25 fps frame -> 52 ARKit weights in 0..1" % channels)
    props = {"frame_rate_hz": 25, "feature_window": model.FEATURE_WINDOW, "feature_dim": channels,
             "mix_lambda": lam, "mix_tau": tau, "gate_window": list(model.GATE_WINDOW)}
    if ramp is not None:
        props.update(level_channel=f + 1, level_ramp=ramp)
    return _finish(graph, "motion_generator", props)


def weights_from_onnx(folder: str) -> dict:
    """The weights dict (as train.py saves it, with mix_lambda / mix_tau and any level_ramp) read back from an
    exported pair: the inverse of build_encoder / build_generator (the viseme layer's 1/tau folded out again)."""
    def load(name):
        m = onnx.load(os.path.join(folder, name))
        return ({i.name: numpy_helper.to_array(i) for i in m.graph.initializer},
                {q.key: q.value for q in m.metadata_props})
    (e, e_props), (g, g_props) = load("audio_encoder.onnx"), load("motion_generator.onnx")
    d, h1, f = e["feat_mean"].shape[0], e["conv1_b"].shape[0], e["conv2_b"].shape[0]
    h2, channels = g["fc1_b"].shape[0], int(g_props["feature_dim"])
    lam, tau = np.float32(float(g_props["mix_lambda"])), np.float32(float(g_props["mix_tau"]))
    p = {"mean": e["feat_mean"], "inv_std": e["feat_inv_std"],
         "W1": e["conv1_w"].transpose(2, 1, 0).reshape(4 * d, h1), "b1": e["conv1_b"],
         "W2": e["conv2_w"].transpose(2, 1, 0).reshape(3 * h1, f), "b2": e["conv2_b"],
         "W3": g["fc1_w"].reshape(model.FEATURE_WINDOW, channels, h2)[:, :f].reshape(-1, h2), "b3": g["fc1_b"],
         "W4": g["fc2_w"], "b4": g["fc2_b"], "Wv": g["vis_w"] * tau, "bv": g["vis_b"] * tau,
         "mix_lambda": lam, "mix_tau": tau}
    if "level_ramp" in e_props:
        p["level_ramp"] = np.float32(float(e_props["level_ramp"]))
    return p


def check(weights: str, enc: str, gen: str, data: str, n_utt: int) -> float:
    import itertools

    from . import shards
    ref, onx = model.NumpyModel(weights), model.OnnxModel(enc, gen)
    worst = 0.0
    for split in ("test_voices", "flite_noisy"):
        for u in itertools.islice(shards.iter_split(data, split), n_utt):
            a, b = ref(u["audio"]), onx(u["audio"])
            fa, fb = ref.features(u["audio"])[0], onx.features(u["audio"])[0]
            worst = max(worst, float(np.abs(a - b).max()), float(np.abs(fa - fb).max()))
    bad = np.array([0.0, np.nan, np.inf, -np.inf, 3.0] * 2000, np.float32)
    worst = max(worst, float(np.abs(ref(bad) - onx(bad)).max()))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", help="model.npz from train.py")
    source.add_argument("--from-onnx", help="a folder with an exported pair: read its weights back (weights_from_onnx)")
    ap.add_argument("--level-ramp", type=float, default=None,
                    help="set the output's level factor (model.level_features), ln-power units; version 8: 3")
    ap.add_argument("--save-weights", default=None, help="also write the weights exported as an npz (for validate)")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--data", default="/root/.cache/bevy_talking_head/speech_data")
    ap.add_argument("--check-utterances", type=int, default=20, help="per set; 0 = no check")
    args = ap.parse_args()
    if args.weights:
        z = np.load(args.weights)
        p = {k: z[k] for k in z.files if k != "config"}
        config = json.loads(str(z["config"])) if "config" in z.files else None
    else:
        p, config = weights_from_onnx(args.from_onnx), {"from_onnx": os.path.abspath(args.from_onnx)}
    if args.level_ramp is not None:
        p["level_ramp"] = np.float32(args.level_ramp)
    derived = args.from_onnx or args.level_ramp is not None  # weights that are in no npz yet (check() reads one)
    weights = args.save_weights or (os.path.join(args.out_dir, "weights.npz") if derived else args.weights)
    if weights != args.weights:
        os.makedirs(os.path.dirname(os.path.abspath(weights)), exist_ok=True)
        np.savez(weights, **p, **({"config": np.array(json.dumps(config))} if config else {}))
    os.makedirs(args.out_dir, exist_ok=True)
    enc = os.path.join(args.out_dir, "audio_encoder.onnx")
    gen = os.path.join(args.out_dir, "motion_generator.onnx")
    onnx.save(build_encoder(p), enc)
    onnx.save(build_generator(p), gen)
    print(f"{enc}: {os.path.getsize(enc) / 1e6:.2f} MB, {gen}: {os.path.getsize(gen) / 1e6:.2f} MB")
    if args.check_utterances:
        print(f"max |onnxruntime - numpy| (features and weights): "
              f"{check(weights, enc, gen, args.data, args.check_utterances):.2e}")
    print(json.dumps({"config": config}) if config else "")


if __name__ == "__main__":
    main()
