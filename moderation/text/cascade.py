"""`model="cascade"`: the fast classical model scores every text; only the uncertain ones go to `finetuned`.

A text is uncertain when, in some category, the classical probability lies within `band` of that category's
threshold; for those texts the fine-tuned model's probabilities decide every category. The verdict applies one
set of thresholds (the classical model's), so the fine-tuned probabilities are mapped piecewise-linearly onto that
scale: 0 -> 0, the fine-tuned threshold -> the classical threshold, 1 -> 1. Default thresholds therefore give
exactly the deciding model's verdict, and a caller's own thresholds move both models the same way.

Spans come from whichever model decided: exact logit shares for the classical model, gradient x input for the
fine-tuned one. The band is chosen by `benchmarks/cascade.py` on the validation slice of our train split
(never on public data) and recorded in the model card under "cascade"; `band` is part of the card's record.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..hub import ModelUnavailableError
from ..taxonomy import TEXT_CATEGORIES


@dataclass
class CascadeModel:
    """A classical first stage, a fine-tuned second stage and the band of uncertainty that links them."""

    name: str
    first: object  # classical TrainedModel (predict_proba, thresholds)
    second: object  # finetuned.FinetunedModel
    band: float
    record: dict = field(default_factory=dict)
    #: Per text of the last `predict_proba` call: True where the second stage decided (read by `model_spans`).
    last_sent: np.ndarray | None = field(default=None, repr=False)
    last_texts: list | None = field(default=None, repr=False)

    @property
    def thresholds(self) -> dict[str, float]:
        return self.first.thresholds

    def uncertain(self, proba: np.ndarray) -> np.ndarray:
        """Texts with some category's classical probability within `band` of its threshold."""
        limits = np.array([self.first.thresholds[c] for c in TEXT_CATEGORIES])
        return (np.abs(proba - limits) <= self.band).any(axis=1)

    def to_first_scale(self, proba: np.ndarray) -> np.ndarray:
        """Fine-tuned probabilities moved onto the classical thresholds' scale (monotone, decisions unchanged)."""
        mine = np.array([self.second.thresholds[c] for c in TEXT_CATEGORIES])
        theirs = np.array([self.first.thresholds[c] for c in TEXT_CATEGORIES])
        below = proba * theirs / mine
        above = theirs + (proba - mine) * (1 - theirs) / (1 - mine)
        return np.where(proba < mine, below, above).clip(0.0, 1.0)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        proba = np.asarray(self.first.predict_proba(frame), dtype=float)
        sent = self.uncertain(proba)
        if sent.any():
            rows = np.flatnonzero(sent)
            proba[rows] = self.to_first_scale(self.second.predict_proba(frame.iloc[rows].reset_index(drop=True)))
        self.last_sent, self.last_texts = sent, frame["text"].tolist()
        return proba

    def deciders(self, frame: pd.DataFrame) -> np.ndarray:
        """True where the fine-tuned model decided each text of `frame` (recomputed unless `frame` was the last
        one scored, as it is inside `moderate_text`)."""
        if self.last_sent is not None and self.last_texts == frame["text"].tolist():
            return self.last_sent
        return self.uncertain(np.asarray(self.first.predict_proba(frame), dtype=float))

    def model_spans(self, frame: pd.DataFrame, analyses, indices: list[int], flagged_sets) -> list[list]:
        """Spans of the model that decided each text: classical ones through `spans.explain` (model words only),
        fine-tuned ones by gradient x input."""
        from .spans import explain

        sent = self.deciders(frame)
        out: list[list] = [[] for _ in indices]
        for stage_sent, stage in ((False, self.first), (True, self.second)):
            picked = [j for j, i in enumerate(indices) if bool(sent[i]) == stage_sent]
            if not picked:
                continue
            rows = [indices[j] for j in picked]
            sub_frame = frame.iloc[rows].reset_index(drop=True)
            chosen = [flagged_sets[j] for j in picked]
            if stage_sent:
                found = stage.model_spans(sub_frame, [analyses[i] for i in rows], list(range(len(rows))), chosen)
            else:  # no lexicon spans here (the caller adds those): only the model's own words
                found = explain(stage, [None] * len(rows), [analyses[i] for i in rows], sub_frame, None,
                                [[] for _ in rows], model_flagged_sets=chosen)
            for j, spans in zip(picked, found):
                out[j] = spans
        return out


def load_cascade() -> CascadeModel:
    """The default classical model in front of `finetuned`, with the band the model card records."""
    from .classical import read_model_card
    from .registry import get_text_model

    record = read_model_card().get("models", {}).get("cascade", {})
    if "band" not in record:
        raise ModelUnavailableError("The cascade has no band in the model card yet: choose one on the train "
                                    "validation slice with `python -m benchmarks.cascade --write-card`.")
    first_name = record.get("first", "logreg")
    return CascadeModel("cascade", get_text_model(first_name), get_text_model("finetuned"), float(record["band"]),
                        record)
