"""Turning untrusted uploads into a few RGB frames, safely.

Anything a user uploads goes through `load_frames` first: it accepts a PIL image, a path or raw bytes and
returns up to `MAX_FRAMES` RGB frames, or raises `ValueError` with a message fit to show the user. Limits are
checked on the header, before any pixel is decoded, so a 60000x60000 "decompression bomb" is refused in
microseconds rather than allocating gigabytes. The limits are arguments of each call; PIL's process-wide settings
(`Image.MAX_IMAGE_PIXELS`, `ImageFile.LOAD_TRUNCATED_IMAGES`) are left as they are, and PIL's own bomb check
still applies on top of ours.
"""
from __future__ import annotations

import io
import os
import struct
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps

ImageInput = Union[Image.Image, str, os.PathLike, bytes, bytearray, memoryview]

#: Largest upload accepted, in bytes (a 20 MiB JPEG is already a ~100-megapixel photograph).
MAX_IMAGE_BYTES = 20 * 1024 * 1024
#: Most pixels decoded per call, all frames together (50 MP: any phone photo; a 1080p GIF gets its first 24 frames).
MAX_IMAGE_PIXELS = 50_000_000
#: Frames of an animation that are checked, spread evenly over the part of it the pixel budget allows.
MAX_FRAMES = 8
#: Most frames a GIF may have: PIL counts frames by decoding its way through them (850,000 one-pixel frames held an
#: image slot for up to a minute), so GIFs are counted from their block structure first, and refused past this.
MAX_GIF_FRAMES = 5000
#: Formats we open (JPEG includes multi-picture MPO). An allow-list: PIL also opens formats such as EPS by running
#: external programs, and dozens of rarely used, little-tested decoders.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")

# What PIL and its codecs raise on broken data; all of them become one clear ValueError. (TypeError: a TIFF whose
# next directory lacks the image size, "Missing dimensions".)
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error,
                  Image.DecompressionBombError)


def load_frames(image: ImageInput, *, max_bytes: int = MAX_IMAGE_BYTES,
                max_pixels: int = MAX_IMAGE_PIXELS) -> list[Image.Image]:
    """Decode `image` into 1..MAX_FRAMES upright RGB frames; ValueError if it is not a usable image within limits."""
    if isinstance(image, Image.Image):
        start = image.tell()
        try:
            return _frames(image, max_pixels)
        finally:
            image.seek(start)  # leave the caller's image on the frame it was on
    data = _read_bytes(image, max_bytes)
    try:
        opened = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.UnidentifiedImageError:
        names = ", ".join(ALLOWED_FORMATS[:-1]) + " or " + ALLOWED_FORMATS[-1]
        raise ValueError(f"Not a supported image: the data is not a {names} file, or it is corrupt.") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"Image is too large to decode safely ({_reason(exc)}).") from exc
    except _DECODE_ERRORS as exc:
        raise ValueError(f"Could not read the image header ({_reason(exc)}).") from exc
    with opened:
        if opened.format == "GIF" and gif_frame_count(data, MAX_GIF_FRAMES) > MAX_GIF_FRAMES:
            raise ValueError(f"The GIF has more than {MAX_GIF_FRAMES:,} frames; the limit is {MAX_GIF_FRAMES:,}.")
        return _frames(opened, max_pixels)


def gif_frame_count(data: bytes, stop_after: int) -> int:
    """Image descriptors in a GIF's block structure, counted without decoding, stopping at `stop_after` + 1.

    Header and screen descriptor (with the global colour table), then blocks until the trailer: extensions
    (0x21) and images (0x2C, with a local colour table and LZW data) are sequences of sized sub-blocks.
    A truncated or malformed structure ends the count where it breaks (PIL then reports it properly)."""
    def skip_sub_blocks(pos: int) -> int:
        while pos < len(data) and data[pos]:
            pos += data[pos] + 1
        return pos + 1

    if len(data) < 13:
        return 0
    pos = 13 + (3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    frames = 0
    while pos < len(data) and frames <= stop_after:
        block = data[pos]
        if block == 0x21:  # extension: label, then sub-blocks
            pos = skip_sub_blocks(pos + 2)
        elif block == 0x2C:  # image descriptor: 9 bytes, optional local colour table, LZW code size, sub-blocks
            if pos + 10 > len(data):
                break
            flags = data[pos + 9]
            pos += 10 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
            pos = skip_sub_blocks(pos + 1)
            frames += 1
        else:  # trailer (0x3B) or garbage
            break
    return frames


def _read_bytes(image: ImageInput, max_bytes: int) -> bytes:
    """The upload's bytes, refusing empty or oversized input before reading it whole."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
    elif isinstance(image, (str, os.PathLike)):
        path = Path(image).expanduser()
        if not path.is_file():
            raise ValueError(f"Image file not found: {str(path)!r}.")
        size = path.stat().st_size
        if size > max_bytes:
            raise ValueError(f"Image file is too large: {size:,} bytes; the limit is {max_bytes:,} bytes.")
        data = path.read_bytes()
    else:
        raise TypeError(f"Expected a PIL image, a path or bytes, got {type(image).__name__}.")
    if not data:
        raise ValueError("The image is empty (0 bytes).")
    if len(data) > max_bytes:
        raise ValueError(f"Image is too large: {len(data):,} bytes; the limit is {max_bytes:,} bytes.")
    return data


def _frames(image: Image.Image, max_pixels: int) -> list[Image.Image]:
    """Check the header's size, then decode the sampled frames."""
    width, height = image.size
    pixels = width * height
    if pixels == 0:
        raise ValueError(f"The image has no pixels ({width}x{height}).")
    if pixels > max_pixels:
        raise ValueError(
            f"Image is too large: {width}x{height} = {pixels:,} pixels; the limit is {max_pixels:,} pixels "
            f"(a header this size is typical of a decompression bomb)."
        )
    try:
        indices = frame_indices(getattr(image, "n_frames", 1), pixels, max_pixels)  # GIF scans its blocks here
        return [_upright_rgb(image, index) for index in indices]
    except _DECODE_ERRORS as exc:
        raise ValueError(
            f"The image could not be decoded: it is truncated, corrupt or of an unsupported kind ({_reason(exc)})."
        ) from exc


def frame_indices(n_frames: int, frame_pixels: int, max_pixels: int) -> list[int]:
    """Which frames to check: up to MAX_FRAMES, evenly spread over the frames the pixel budget can decode.

    Seeking to frame k of a GIF or WebP decodes every frame before it, so the budget limits the last index, not
    the number of frames sampled.
    """
    reachable = max(1, min(n_frames, max_pixels // frame_pixels))
    count = min(MAX_FRAMES, reachable)
    return sorted({round(i * (reachable - 1) / max(count - 1, 1)) for i in range(count)})


def _upright_rgb(image: Image.Image, index: int) -> Image.Image:
    """Frame `index` as an 8-bit RGB copy, EXIF-rotated, transparency flattened onto white."""
    image.seek(index)
    frame = ImageOps.exif_transpose(image)  # always a copy, so later seeks cannot change it
    if frame.mode in ("I", "F") or frame.mode.startswith("I;16"):
        frame = _to_8bit(frame)
    if frame.has_transparency_data:
        rgba = frame.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return frame.convert("RGB")


def _to_8bit(frame: Image.Image) -> Image.Image:
    """Scale a 16-bit, 32-bit or float greyscale frame to 8 bits (PIL's convert clips everything above 255 to white)."""
    values = np.asarray(frame, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if frame.mode.startswith("I;16"):
        scaled = values / 257.0  # 0..65535 onto 0..255, so brightness matches the 8-bit version of the picture
    elif frame.mode == "I" and low >= 0 and high <= 255:
        scaled = values  # 32-bit storage of 8-bit values
    else:
        scaled = (values - low) / ((high - low) or 1.0) * 255.0  # no fixed scale (float, 32-bit): stretch
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
