"""`TextModel`: what `moderate_text` needs of a text model, whatever its family.

The classical pipelines, the encoder heads, the label-mapped classifier, the fine-tuned transformer and the cascade
all answer to it, so scoring, thresholds and the app's sliders never ask which family a model is.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .features import FeatureRows


@runtime_checkable
class TextModel(Protocol):
    """A text model as `registry.get_text_model` returns it.

    thresholds: category -> the probability from which that category is flagged (tuned on our train split).
    record: what training recorded about it (its model-card entry, or its own for a model trained on first use).
    predict_proba(rows): for `features.FeatureRows` (or the DataFrame `features.feature_frame` makes of the same
    rows), an (n, len(TEXT_CATEGORIES)) array of probabilities, columns in TEXT_CATEGORIES order.
    """

    thresholds: Mapping[str, float]
    record: Mapping

    def predict_proba(self, rows: FeatureRows | pd.DataFrame) -> np.ndarray: ...
