"""Content moderation for text, images and generated text, with one taxonomy and plain dataclass verdicts.

    >>> from moderation import moderate_text
    >>> moderate_text("have a lovely day").flagged
    False

Heavy modules (scikit-learn models, torch, transformers) are imported on first use, not at import time.
"""
from __future__ import annotations

import importlib

from .taxonomy import IMAGE_CATEGORIES, TEXT_CATEGORIES

__all__ = [
    "TEXT_CATEGORIES",
    "IMAGE_CATEGORIES",
    "moderate_text",
    "TextVerdict",
    "Span",
    "moderate_image",
    "ImageVerdict",
    "generate_moderated",
    "stream_moderated",
    "GenerationResult",
    "ModelUnavailableError",
    "moderate_file",
    "BatchSummary",
]

# Public name -> module that defines it; resolved lazily so `import moderation` stays instant.
_LAZY = {
    "moderate_text": ".text",
    "TextVerdict": ".verdict",
    "Span": ".verdict",
    "moderate_image": ".image",
    "ImageVerdict": ".image",
    "generate_moderated": ".generation",
    "stream_moderated": ".generation",
    "GenerationResult": ".generation",
    "ModelUnavailableError": ".hub",
    "moderate_file": ".batch",
    "BatchSummary": ".batch",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'moderation' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
