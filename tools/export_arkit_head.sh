#!/usr/bin/env bash
# Rebuilds assets/avatars/arkit_head.glb: the face mesh of the shipped portrait (assets/portraits/astronaut.png)
# with the 52 ARKit morph targets, made by examples/export_arkit_head.rs (library: identity::gltf).
#
# Usage: tools/export_arkit_head.sh [portrait] [output.glb] [preview_dir]
#   defaults: assets/portraits/astronaut.png, assets/avatars/arkit_head.glb, no previews
# Needs: the face models in assets/models (tools/convert_face_models.py) and onnxruntime (tools/setup.sh).
# The texture is the portrait cropped round the face, at most 512 px on its longest side; the file stays well
# under 1.5 MB (tests/gltf.rs checks it and compares it with a fresh export).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
portrait="${1:-assets/portraits/astronaut.png}"
out="${2:-assets/avatars/arkit_head.glb}"
args=("$portrait" --out "$out" --texture-side 512)
if [[ $# -ge 3 ]]; then
    args+=(--preview "$3")
fi
# Builds into $CARGO_TARGET_DIR when set (the shared cache), else target/.
cargo run --release --example export_arkit_head -- "${args[@]}"
