"""`model="cascade"`: the fast classical model scores every text; only the uncertain ones go to `finetuned`.

A text is uncertain when, in some category, the classical probability lies within `band` of that category's
threshold; for those texts the fine-tuned model's probabilities decide every category. The verdict applies one
set of thresholds (the classical model's), so the fine-tuned probabilities are mapped piecewise-linearly onto that
scale: 0 -> 0, the fine-tuned threshold -> the classical threshold, 1 -> 1. Default thresholds therefore give
exactly the deciding model's verdict, and a caller's own thresholds move both models the same way.

Spans come from whichever model decided: exact logit shares for the classical model, occlusion of a handful of
candidate words for the fine-tuned one. The band is chosen by `benchmarks/cascade.py` on the validation slice of
our train split (never on public data) and recorded in the model card under "cascade".
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from ..hub import ModelUnavailableError
from ..taxonomy import TEXT_CATEGORIES
from .features import FeatureRows


@dataclass
class CascadeModel:
    """A classical first stage, a fine-tuned second stage and the band of uncertainty that links them."""

    name: str
    first: object  # classical TrainedModel (predict_proba, thresholds)
    second: object  # finetuned.FinetunedModel
    band: float
    record: dict = field(default_factory=dict)
    #: This thread's last `predict_proba`: its texts, which went on, and the second stage's own probabilities
    #: (read by `model_spans`, which `moderate_text` calls right after scoring the same frame).
    _last: threading.local = field(default_factory=threading.local, repr=False, compare=False)

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

    def predict_proba(self, rows) -> np.ndarray:
        rows = FeatureRows.of(rows)
        proba = np.asarray(self.first.predict_proba(rows), dtype=float)
        sent = self.uncertain(proba)
        second = np.full(proba.shape, np.nan)
        if sent.any():
            picked = np.flatnonzero(sent)
            second[picked] = self.second.predict_proba(rows.take(picked))
            proba[picked] = self.to_first_scale(second[picked])
        self._last.texts, self._last.sent, self._last.second = rows.texts, sent, second
        return proba

    def model_spans(self, rows: FeatureRows, analyses, indices: list[int], flagged_sets) -> list[list]:
        """Spans of the model that decided each text of `indices` (`flagged_sets` aligned with them), model words
        only (the caller adds the lexicon's): exact logit shares for the classical stage, occlusion for the
        fine-tuned one against its own probabilities."""
        from .spans import explain

        rows = FeatureRows.of(rows)
        if getattr(self._last, "texts", None) != rows.texts:
            self.predict_proba(rows)
        sent, second_proba = self._last.sent, self._last.second
        out: list[list] = [[] for _ in indices]
        for stage_sent, stage in ((False, self.first), (True, self.second)):
            picked = [j for j, i in enumerate(indices) if bool(sent[i]) == stage_sent]
            if not picked:
                continue
            chosen = [indices[j] for j in picked]
            sub_rows = rows.take(chosen)
            proba = second_proba[chosen] if stage_sent else np.asarray(stage.predict_proba(sub_rows), dtype=float)
            found = explain(stage, [analyses[i] for i in chosen], sub_rows, proba,
                            [[] for _ in chosen], model_flagged_sets=[flagged_sets[j] for j in picked])
            for j, spans in zip(picked, found):
                out[j] = spans
        return out


def load_cascade(get_text_model) -> CascadeModel:
    """The default classical model in front of `finetuned`, with the band the model card records; both stages are
    loaded through `get_text_model` (the registry's), so they are the very models their names give everywhere."""
    from .model_card import model_record

    record = model_record("cascade")
    if "band" not in record:
        raise ModelUnavailableError("The cascade has no band in the model card yet: choose one on the train "
                                    "validation slice with `python -m benchmarks.cascade --write-card`.")
    first_name = record.get("first", "logreg")
    return CascadeModel("cascade", get_text_model(first_name), get_text_model("finetuned"), float(record["band"]),
                        record)
