#!/usr/bin/env bash
# One-time set-up for a fresh Debian 12 machine with Rust (idempotent, quick when everything is there):
# system packages, ONNX Runtime's shared library from the onnxruntime PyPI wheel, Python tools for tools/*.py.
set -euo pipefail

ORT_VERSION=1.31.1
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/bevy_talking_head"
ORT_DIR="$CACHE_DIR/onnxruntime/$ORT_VERSION"
ORT_LIB="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"

apt_packages=(pkg-config libasound2-dev libudev-dev mesa-vulkan-drivers libvulkan1 ffmpeg espeak-ng libespeak-ng1 python3-pip unzip)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -f "$ORT_LIB" ]; then
    echo "setup: fetching libonnxruntime $ORT_VERSION from the onnxruntime wheel"
    tmp=$(mktemp -d)
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "onnxruntime==$ORT_VERSION"
    mkdir -p "$ORT_DIR"
    unzip -q -j -o "$tmp"/onnxruntime-*.whl "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" -d "$ORT_DIR"
    rm -rf "$tmp"
fi
echo "setup: ONNX Runtime at $ORT_LIB"
