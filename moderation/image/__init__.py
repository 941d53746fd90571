"""Image moderation: an ImageNet ViT whose classes map to the image taxonomy, an optional NSFW model, a
perceptual-hash blocklist of known images, safe decoding of any upload, and censored previews.

    >>> from moderation.image import moderate_image
    >>> verdict = moderate_image("examples/images/coffee.jpg")  # doctest: +SKIP
    >>> verdict.scores["alcohol"], verdict.labels[0]             # doctest: +SKIP

Importing this package is cheap: torch and transformers load when `moderate_image` first runs.
"""
from __future__ import annotations

from .blocklist import (
    MAX_DISTANCE,
    MAX_ENTRIES,
    MAX_NOTE_CHARS,
    BlocklistEntry,
    BlocklistError,
    BlocklistMatch,
    add_to_blocklist,
    blocklist_path,
    list_blocklist,
    match_blocklist,
    remove_from_blocklist,
    remove_stale_writes,
)
from .categories import IMAGENET_CLASSES, NSFW_CLASSES
from .decode import ALLOWED_FORMATS, MAX_FRAMES, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, load_frames
from .moderate import ImageVerdict, moderate_image
from .preview import censored_preview

__all__ = [
    "moderate_image",
    "ImageVerdict",
    "load_frames",
    "censored_preview",
    "add_to_blocklist",
    "list_blocklist",
    "remove_from_blocklist",
    "remove_stale_writes",
    "match_blocklist",
    "blocklist_path",
    "BlocklistEntry",
    "BlocklistMatch",
    "BlocklistError",
    "IMAGENET_CLASSES",
    "NSFW_CLASSES",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_FRAMES",
    "MAX_DISTANCE",
    "MAX_ENTRIES",
    "MAX_NOTE_CHARS",
    "ALLOWED_FORMATS",
]
