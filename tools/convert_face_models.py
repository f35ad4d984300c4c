#!/usr/bin/env python3
"""Convert MediaPipe's face models (from the mediapipe==0.10.14 wheel, Apache-2.0) to ONNX and check them.

    python3 -m venv ~/.cache/bevy_talking_head/venv-mediapipe
    VENV=~/.cache/bevy_talking_head/venv-mediapipe
    $VENV/bin/pip install -r tools/requirements-mediapipe.txt
    $VENV/bin/pip install --no-deps mediapipe==0.10.14     # only its .tflite files are used
    $VENV/bin/python tools/convert_face_models.py           # writes assets/models/*.onnx, prints the checks
    $VENV/bin/python tools/convert_face_models.py --check   # only re-checks the committed .onnx files

Downloads nothing itself: the .tflite files are read from the installed mediapipe wheel and the test portrait from
the installed scikit-image wheel (copied to assets/portraits/astronaut.png). Each model is converted with tf2onnx
(opset 17), its tensors renamed to the names in assets/models/manifest.ron, and then run side by side with the
TFLite interpreter on a real input (crops of the astronaut portrait) and on random inputs; the maximum absolute
difference per output is printed (these numbers are in assets/models/face_models.md).

selfie_segmentation.tflite has one MediaPipe custom op, Convolution2DTransposeBias (a 2x2 transposed convolution,
stride 2, plus bias); tf2onnx leaves it as an unknown node, which is replaced here by Transpose -> ConvTranspose ->
Transpose with the same weights. The TFLite interpreter of tensorflow does not know the op either, so the
selfie check runs the TFLite graph up to the op's input and applies the op in NumPy (see `selfie_reference`).
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import shutil
import sys
import tempfile
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before tensorflow is imported: no C++ info lines
warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
logging.getLogger("tf2onnx").setLevel(logging.ERROR)

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper
from pinned_package import installed_path

MEDIAPIPE_VERSION = "0.10.14"
OPSET = 17
ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = ROOT / "assets" / "models"
PORTRAIT = ROOT / "assets" / "portraits" / "astronaut.png"


class Model:
    """One model: its .tflite inside the wheel, the .onnx it becomes, and ONNX tensor names (TFLite name -> ours)."""

    def __init__(self, name: str, tflite: str, onnx_file: str, inputs: dict, outputs: dict, input_range: tuple):
        self.name = name
        self.tflite = tflite
        self.onnx_file = onnx_file
        self.inputs = inputs
        self.outputs = outputs
        self.input_range = input_range


FACE_DETECTOR = Model(
    "face_detector",
    "modules/face_detection/face_detection_short_range.tflite",
    "face_detector.onnx",
    {"input": "image"},
    {"regressors": "regressors", "classificators": "classificators"},
    (-1.0, 1.0),
)
FACE_LANDMARKS = Model(
    "face_landmarks",
    "modules/face_landmark/face_landmark.tflite",
    "face_landmarks.onnx",
    {"input_1": "image"},
    {"conv2d_21": "landmarks", "conv2d_31": "face_flag"},
    (0.0, 1.0),
)
IRIS_LANDMARKS = Model(
    "iris_landmarks",
    "modules/iris_landmark/iris_landmark.tflite",
    "iris_landmarks.onnx",
    {"input_1": "image"},
    {"output_eyes_contours_and_brows": "eye_contours_and_brows", "output_iris": "iris"},
    (0.0, 1.0),
)
SELFIE_SEGMENTATION = Model(
    "selfie_segmentation",
    "modules/selfie_segmentation/selfie_segmentation.tflite",
    "selfie_segmentation.onnx",
    {"input_1": "image"},
    {"activation_10": "mask"},
    (0.0, 1.0),
)
ALL = [FACE_DETECTOR, FACE_LANDMARKS, IRIS_LANDMARKS, SELFIE_SEGMENTATION]
CUSTOM_OP = "TFL_Convolution2DTransposeBias"


def copy_portrait() -> None:
    """assets/portraits/astronaut.png from the scikit-image wheel (public-domain NASA photo)."""
    dist = importlib.metadata.distribution("scikit-image")
    source = pathlib.Path(dist.locate_file("skimage/data/astronaut.png"))
    PORTRAIT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, PORTRAIT)
    print(f"portrait: {source} (scikit-image {dist.version}) -> {PORTRAIT.relative_to(ROOT)}")


def rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Renames a tensor everywhere it appears in the graph."""
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new


def canonical_names(graph: onnx.GraphProto) -> None:
    """Renames nodes, intermediate tensors and constants by their position in the graph and orders the constants
    by first use: tf2onnx's own names carry counters that change from run to run, this makes the file
    reproducible byte for byte."""
    keep = {value.name for value in list(graph.input) + list(graph.output)}
    initializers = {init.name: init for init in graph.initializer}
    names: dict[str, str] = {}
    order: list[str] = []
    for index, node in enumerate(graph.node):
        for name in node.input:
            if name in initializers and name not in names:
                names[name] = f"const_{len(order)}"
                order.append(name)
        node.input[:] = [names.get(name, name) for name in node.input]
        node.name = f"{node.op_type}_{index}"
        for j, name in enumerate(node.output):
            if name not in keep:
                names[name] = f"{node.op_type}_{index}:{j}"
        node.output[:] = [names.get(name, name) for name in node.output]
    ordered = [initializers[name] for name in order]
    for init in ordered:
        init.name = names[init.name]
    del graph.initializer[:]
    graph.initializer.extend(ordered)
    del graph.value_info[:]


def replace_transpose_conv_bias(model: onnx.ModelProto) -> None:
    """Replaces MediaPipe's Convolution2DTransposeBias (NHWC in and out; weights OHWI; stride 2, SAME padding,
    2x2 kernel, so no padding) by standard ONNX ops."""
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    for index, node in enumerate(list(graph.node)):
        if node.op_type != CUSTOM_OP:
            continue
        data, weights_name, bias_name = node.input
        weights = numpy_helper.to_array(initializers[weights_name])  # [out, kh, kw, in]
        bias = numpy_helper.to_array(initializers[bias_name])
        if weights.shape[1:3] != (2, 2):
            sys.exit(f"{CUSTOM_OP}: expected a 2x2 kernel, got weights {weights.shape}")
        onnx_weights = np.ascontiguousarray(weights.transpose(3, 0, 1, 2))  # [in, out, kh, kw]
        prefix = node.name or "transpose_conv_bias"
        graph.initializer.extend(
            [
                numpy_helper.from_array(onnx_weights.astype(np.float32), f"{prefix}/weights"),
                numpy_helper.from_array(bias.astype(np.float32), f"{prefix}/bias"),
            ]
        )
        replacement = [
            helper.make_node("Transpose", [data], [f"{prefix}/nchw"], perm=[0, 3, 1, 2], name=f"{prefix}/to_nchw"),
            helper.make_node(
                "ConvTranspose",
                [f"{prefix}/nchw", f"{prefix}/weights", f"{prefix}/bias"],
                [f"{prefix}/up"],
                kernel_shape=[2, 2],
                strides=[2, 2],
                name=f"{prefix}/conv_transpose",
            ),
            helper.make_node(
                "Transpose", [f"{prefix}/up"], list(node.output), perm=[0, 2, 3, 1], name=f"{prefix}/to_nhwc"
            ),
        ]
        graph.node.remove(node)
        for offset, new_node in enumerate(replacement):
            graph.node.insert(index + offset, new_node)
    used = {name for node in graph.node for name in node.input}
    for init in list(graph.initializer):
        if init.name not in used:
            graph.initializer.remove(init)


def convert(model: Model, mp_dir: pathlib.Path) -> None:
    import tf2onnx  # imported here: --check does not convert

    source = mp_dir / model.tflite
    with tempfile.TemporaryDirectory() as tmp:
        raw = pathlib.Path(tmp) / "raw.onnx"
        tf2onnx.convert.from_tflite(str(source), opset=OPSET, output_path=str(raw))
        converted = onnx.load(str(raw))
    if any(node.op_type == CUSTOM_OP for node in converted.graph.node):
        replace_transpose_conv_bias(converted)
    for old, new in list(model.inputs.items()) + list(model.outputs.items()):
        if old != new:
            rename_value(converted.graph, old, new)
    canonical_names(converted.graph)
    # Only the default domain is used (tf2onnx also declares ai.onnx.ml, and the custom op had its own).
    used_domains = {node.domain for node in converted.graph.node}
    for opset in list(converted.opset_import):
        if opset.domain not in used_domains | {""}:
            converted.opset_import.remove(opset)
    converted.graph.name = model.name
    converted.producer_name = "tools/convert_face_models.py (tf2onnx 1.17)"
    converted.doc_string = (
        f"{model.name}: converted from mediapipe=={MEDIAPIPE_VERSION} {model.tflite} (Apache-2.0); "
        "see assets/models/face_models.md"
    )
    onnx.checker.check_model(converted, full_check=True)
    out = MODELS / model.onnx_file
    onnx.save(converted, str(out))
    print(f"{model.name}: {source.name} -> {out.relative_to(ROOT)} ({out.stat().st_size / 1024:.0f} KiB)")


def tflite_runner(path: pathlib.Path):
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()

    def run(x: np.ndarray) -> dict:
        interpreter.set_tensor(inputs[0]["index"], x)
        interpreter.invoke()
        return {o["name"]: interpreter.get_tensor(o["index"]).copy() for o in outputs}

    return run


def selfie_reference(mp_dir: pathlib.Path):
    """The selfie model through TFLite although tensorflow does not know its custom op: the .tflite is cut before
    the op (its data input, kernel and bias become the graph's outputs; the op and the final sigmoid are dropped),
    the interpreter runs the rest, and the op and the sigmoid are applied in float64 NumPy."""
    import tensorflow as tf
    from tensorflow.lite.tools import flatbuffer_utils

    flat = flatbuffer_utils.read_model(str(mp_dir / SELFIE_SEGMENTATION.tflite))
    graph = flat.subgraphs[0]
    custom = [
        index
        for index, op in enumerate(graph.operators)
        if flat.operatorCodes[op.opcodeIndex].customCode == CUSTOM_OP.removeprefix("TFL_").encode()
    ]
    if len(custom) != 1 or custom[0] != len(graph.operators) - 2:
        sys.exit(f"selfie_segmentation.tflite: expected one {CUSTOM_OP} just before the last op, found {custom}")
    op = graph.operators[custom[0]]
    # Options: TfLiteTransposeConvParams {padding = SAME (1), stride_w, stride_h}.
    options = np.frombuffer(bytes(op.customOptions), dtype=np.int32)
    if options.tolist() != [1, 2, 2]:
        sys.exit(f"{CUSTOM_OP}: expected SAME padding and stride 2, got options {options.tolist()}")
    data, kernel, bias = (int(i) for i in op.inputs)
    graph.operators = graph.operators[: custom[0]]
    graph.outputs = np.array([data, kernel, bias], dtype=np.int32)
    with tempfile.TemporaryDirectory() as tmp:
        cut = pathlib.Path(tmp) / "cut.tflite"
        flatbuffer_utils.write_model(flat, str(cut))
        # Without XNNPACK: the delegate folds the constant kernel and bias away and cannot output them.
        interpreter = tf.lite.Interpreter(
            model_path=str(cut),
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]

    def run(x: np.ndarray) -> dict:
        interpreter.set_tensor(input_index, x)
        interpreter.invoke()
        logits = transpose_conv_bias_numpy(
            interpreter.get_tensor(data), interpreter.get_tensor(kernel), interpreter.get_tensor(bias)
        )
        return {"activation_10": 0.5 + 0.5 * np.tanh(0.5 * logits.astype(np.float64))}  # sigmoid, no overflow

    return run


def transpose_conv_bias_numpy(x: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Convolution2DTransposeBias for a 2x2 kernel with stride 2 (each input pixel paints one 2x2 output block):
    x [1, H, W, C], weights [O, 2, 2, C], bias [O] -> [1, 2H, 2W, O]."""
    n, h, w, _ = x.shape
    out = np.einsum("nhwc,okjc->nhkwjo", x.astype(np.float64), weights.astype(np.float64))
    return (out.reshape(n, 2 * h, 2 * w, weights.shape[0]) + bias).astype(np.float32)


def onnx_runner(path: pathlib.Path):
    model = onnx.load(str(path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]

    def run(x: np.ndarray) -> dict:
        return dict(zip(names, session.run(None, {input_name: x})))

    return run


def load_portrait() -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(PORTRAIT).convert("RGB"), dtype=np.float32) / 255.0


def resize(image: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    pixels = Image.fromarray(np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(pixels.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0


def crop(image: np.ndarray, cx: float, cy: float, half: float, size: int) -> np.ndarray:
    """An axis-aligned square crop (pixels outside the image repeat the border), resized to size x size."""
    h, w, _ = image.shape
    x0, x1 = int(round(cx - half)), int(round(cx + half))
    y0, y1 = int(round(cy - half)), int(round(cy + half))
    ys = np.clip(np.arange(y0, y1), 0, h - 1)
    xs = np.clip(np.arange(x0, x1), 0, w - 1)
    return resize(image[ys][:, xs], size)


def real_inputs(mp_dir: pathlib.Path) -> dict:
    """Real inputs for every model, each made from the portrait with the previous model's output (axis-aligned
    crops; the plugin's crops are rotated, which does not matter for comparing two runtimes)."""
    image = load_portrait()  # 512 x 512, square: no letterbox needed
    size = image.shape[0]
    detector_input = resize(image, 128)[None] * 2.0 - 1.0
    out = tflite_runner(mp_dir / FACE_DETECTOR.tflite)(detector_input)
    regressors, scores = out["regressors"][0], out["classificators"][0, :, 0]
    best = int(np.argmax(scores))
    anchors = ssd_anchors()
    cx = (regressors[best, 0] / 128.0 + anchors[best, 0]) * size
    cy = (regressors[best, 1] / 128.0 + anchors[best, 1]) * size
    box = max(regressors[best, 2], regressors[best, 3]) / 128.0 * size
    print(
        f"  real input: best detector anchor {best}, score {1 / (1 + np.exp(-scores[best])):.3f}, "
        f"face centre ({cx:.0f}, {cy:.0f}) px, box {box:.0f} px"
    )
    face_input = crop(image, cx, cy, 0.75 * box, 192)[None]
    landmarks = tflite_runner(mp_dir / FACE_LANDMARKS.tflite)(face_input)["conv2d_21"].reshape(468, 3)
    # Landmark 33 and 133 are the corners of the eye on the image's left (the subject's right eye).
    scale = 1.5 * box / 192.0
    eye = (landmarks[33, :2] + landmarks[133, :2]) / 2.0
    eye_x = cx - 0.75 * box + eye[0] * scale
    eye_y = cy - 0.75 * box + eye[1] * scale
    eye_width = abs(landmarks[33, 0] - landmarks[133, 0]) * scale
    iris_input = crop(image, eye_x, eye_y, eye_width, 64)[None]
    return {
        "face_detector": detector_input.astype(np.float32),
        "face_landmarks": face_input.astype(np.float32),
        "iris_landmarks": iris_input.astype(np.float32),
        "selfie_segmentation": resize(image, 256)[None].astype(np.float32),
    }


def ssd_anchors() -> np.ndarray:
    """Anchor centres of the short-range detector (the same as plugin/identity/landmarks.rs): 16 x 16 cells with 2
    anchors, then 8 x 8 cells with 6 anchors, centres at (cell + 0.5) / cells."""
    centres = []
    for cells, per_cell in ((16, 2), (8, 6)):
        for y in range(cells):
            for x in range(cells):
                centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
    return np.array(centres, dtype=np.float32)


def compare(model: Model, mp_dir: pathlib.Path, real: np.ndarray) -> float:
    rng = np.random.default_rng(20240614)
    lo, hi = model.input_range
    onnx_path = MODELS / model.onnx_file
    cases = [("real", real)] + [
        (f"random {seed}", rng.uniform(lo, hi, size=real.shape).astype(np.float32)) for seed in range(3)
    ]
    if model is SELFIE_SEGMENTATION:
        tflite_run = selfie_reference(mp_dir)
    else:
        tflite_run = tflite_runner(mp_dir / model.tflite)
    onnx_run = onnx_runner(onnx_path)
    worst = 0.0
    for label, x in cases:
        expected = tflite_run(x)
        got = onnx_run(x)
        parts = []
        for tflite_name, onnx_name in model.outputs.items():
            diff = float(np.max(np.abs(expected[tflite_name].astype(np.float64) - got[onnx_name])))
            scale = float(np.max(np.abs(expected[tflite_name])))
            worst = max(worst, diff)
            parts.append(f"{onnx_name} {diff:.2e} (max |value| {scale:.3g})")
        print(f"  {model.name} {label:9}: max abs diff " + ", ".join(parts))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare the existing .onnx files with TFLite")
    args = parser.parse_args()
    mp_dir = installed_path("mediapipe", MEDIAPIPE_VERSION, "mediapipe", "these models come")
    print(f"mediapipe {MEDIAPIPE_VERSION} at {mp_dir}; onnxruntime {ort.__version__}")
    if not args.check:
        copy_portrait()
        for model in ALL:
            convert(model, mp_dir)
    real = real_inputs(mp_dir)
    print("max abs difference ONNX Runtime vs TFLite interpreter (real portrait crop, then 3 random inputs):")
    worst = {model.name: compare(model, mp_dir, real[model.name]) for model in ALL}
    for name, diff in worst.items():
        print(f"{name}: worst max abs diff {diff:.2e}")


if __name__ == "__main__":
    main()
