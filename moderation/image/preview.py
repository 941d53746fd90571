"""A censored preview of a flagged image, so a UI can show that something was there without showing it."""
from __future__ import annotations

from PIL import Image, ImageFilter

from .decode import ImageInput, load_frames

#: Blocks across the longer side when pixelating: enough to show the layout, too few to recognise content.
PIXEL_BLOCKS = 16


def censored_preview(image: ImageInput, *, style: str = "pixelate", max_side: int = 512) -> Image.Image:
    """A small RGB copy of the image's first frame, pixelated (default) or heavily blurred.

    The result is never larger than `max_side` on its longer side, so previews of huge uploads stay cheap to send.
    """
    if style not in ("pixelate", "blur"):
        raise ValueError(f"style must be 'pixelate' or 'blur', got {style!r}")
    frame = load_frames(image)[0]
    frame.thumbnail((max_side, max_side))
    width, height = frame.size
    if style == "blur":
        return frame.filter(ImageFilter.GaussianBlur(radius=max(width, height) / 24))
    scale = PIXEL_BLOCKS / max(width, height)
    blocks = frame.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BOX)
    return blocks.resize((width, height), Image.Resampling.NEAREST)
