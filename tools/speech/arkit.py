"""The 52 Apple ARKit blendshape names, in ARKit order (the `FaceCoefficients` contract in shared/DESIGN.md).

Every [T, 52] array in tools/speech uses this column order. Keep in sync with the Rust side's name table.
"""

NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel",
    "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft",
    "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft",
    "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)
COUNT = len(NAMES)
assert COUNT == 52 and len(set(NAMES)) == 52

INDEX: dict[str, int] = {name: i for i, name in enumerate(NAMES)}

# Columns that speech drives (jaw, mouth, cheeks, tongue); eyes, brows and nose are left to the expression rig.
SPEECH = tuple(i for i, n in enumerate(NAMES) if n.startswith(("jaw", "mouth", "cheek", "tongue")))


def idx(name: str) -> int:
    """Column of an ARKit name (KeyError for a misspelt one)."""
    return INDEX[name]
