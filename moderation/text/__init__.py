"""Text moderation: `moderate_text` scores every category, applies thresholds and explains with spans.

Its flow, preprocess -> score -> postprocess, is `text/moderate.py`; the models it can use are `text/registry.py`,
what each one must offer is `text/model.py` (`TextModel`), and which one is the default is `text/model_card.py`.
"""
from __future__ import annotations

from ..verdict import Span, TextVerdict
from .model_card import default_model_name
from .moderate import MAX_MODEL_CHARS, moderate_text
from .registry import available_models

__all__ = ["moderate_text", "available_models", "default_model_name", "MAX_MODEL_CHARS", "Span", "TextVerdict"]
