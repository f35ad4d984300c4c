"""Makes the hard cases of the portrait gallery (assets/portraits/gallery/) from the two shipped public-domain
portraits, for `examples/portrait_quality.rs` and the README's table: a tight crop without shoulders, a person at
the image's edge, a small face, a grayscale photo, a transparent PNG and a dark, low-contrast photo. Deterministic:
the same files, byte for byte, on every run (checked against the SHA-256 list in the gallery's README).

    python3 tools/make_portrait_gallery.py [--check]

Needs Pillow (tools/requirements.txt).
"""

import hashlib
import pathlib
import sys

from PIL import Image, ImageEnhance

ROOT = pathlib.Path(__file__).resolve().parent.parent
PORTRAITS = ROOT / "assets" / "portraits"
GALLERY = PORTRAITS / "gallery"


def variants():
    astronaut = Image.open(PORTRAITS / "astronaut.png").convert("RGB")
    hopper = Image.open(PORTRAITS / "grace_hopper.jpg").convert("RGB")
    # Head and a little hair, no shoulders: the chin 12 px above the bottom edge.
    yield "astronaut_tight.png", astronaut.crop((150, 30, 330, 200))
    # The person cut by the image's left edge.
    yield "astronaut_edge.png", astronaut.crop((140, 0, 512, 372))
    # A small photo: the face about 45 px wide.
    yield "astronaut_small.png", astronaut.resize((224, 224), Image.Resampling.LANCZOS)
    # Grayscale.
    yield "hopper_grey.png", hopper.convert("L")
    # Transparent around the photo: a wider canvas, the photo in its middle.
    canvas = Image.new("RGBA", (712, 600), (0, 0, 0, 0))
    canvas.paste(hopper, (100, 0))
    yield "hopper_transparent.png", canvas
    # Dark and flat: under-exposed, low contrast.
    dark = ImageEnhance.Contrast(ImageEnhance.Brightness(hopper).enhance(0.45)).enhance(0.7)
    yield "hopper_dark.png", dark


def main():
    check = "--check" in sys.argv[1:]
    GALLERY.mkdir(parents=True, exist_ok=True)
    for name, image in variants():
        path = GALLERY / name
        if not check:
            image.save(path, optimize=True)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{name} {image.size[0]}x{image.size[1]} {image.mode} sha256 {digest}")


if __name__ == "__main__":
    main()
