"""How well the known-image blocklist's pHash survives common edits, and how far apart different photographs are.

For each of scikit-image's bundled sample photographs (public domain / CC0) it prints the Hamming distance
between the original's hash and the hash of an edited copy, and the share of copies that still match at the
blocklist's threshold; then the distances between every pair of different photographs (false-match risk).
Needs scikit-image (development-only: `pip install scikit-image`).

    python -m benchmarks.image_blocklist      # from the repository root
"""
from __future__ import annotations

import io
import itertools
import statistics

import imagehash
import numpy as np
import skimage.data
from PIL import Image

from moderation.image.blocklist import MAX_DISTANCE

SAMPLES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "camera", "coins", "horse", "moon",
           "page", "text", "brick", "grass", "gravel", "cell", "retina", "clock", "logo", "immunohistochemistry")


def sample(name: str) -> Image.Image:
    pixels = getattr(skimage.data, name)()
    if pixels.dtype != np.uint8:  # the boolean / 16-bit ones
        pixels = (pixels.astype(float) / pixels.max() * 255).astype(np.uint8)
    return Image.fromarray(pixels).convert("RGB")


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def crop(image: Image.Image, fraction: float) -> Image.Image:
    dx, dy = int(image.width * fraction), int(image.height * fraction)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


EDITS = {
    "half size": lambda im: im.resize((im.width // 2, im.height // 2)),
    "quarter size": lambda im: im.resize((im.width // 4, im.height // 4)),
    "double size": lambda im: im.resize((im.width * 2, im.height * 2)),
    "squashed to half height": lambda im: im.resize((im.width, im.height // 2)),
    "greyscale": lambda im: im.convert("L").convert("RGB"),
    "JPEG quality 30": lambda im: jpeg(im, 30),
    "JPEG quality 10": lambda im: jpeg(im, 10),
    "half size + JPEG 50": lambda im: jpeg(im.resize((im.width // 2, im.height // 2)), 50),
    "crop 2% each side": lambda im: crop(im, 0.02),
    "crop 5% each side": lambda im: crop(im, 0.05),
    "crop 10% each side": lambda im: crop(im, 0.10),
    "mirrored": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
}


def main() -> None:
    photos = [sample(name) for name in SAMPLES]
    hashes = [imagehash.phash(photo) for photo in photos]
    print(f"64-bit pHash on {len(photos)} scikit-image sample photographs; match = distance <= {MAX_DISTANCE}")
    print(f"{'edit':<26} {'mean':>5} {'max':>4} {'matched':>8}")
    for name, edit in EDITS.items():
        distances = [original - imagehash.phash(edit(photo)) for photo, original in zip(photos, hashes, strict=True)]
        matched = sum(d <= MAX_DISTANCE for d in distances) / len(distances)
        print(f"{name:<26} {statistics.fmean(distances):5.1f} {max(distances):4d} {matched:8.0%}")
    different = [a - b for a, b in itertools.combinations(hashes, 2)]
    false_matches = sum(d <= MAX_DISTANCE for d in different)
    print(f"different photographs: {len(different)} pairs, min distance {min(different)}, "
          f"mean {statistics.fmean(different):.1f}, false matches {false_matches}")


if __name__ == "__main__":
    main()
