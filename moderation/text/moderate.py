"""`moderate_text` as its data flows: preprocess -> score -> postprocess.

- preprocess: check the thresholds, read every text with the lexicon (the caller's block and allow lists included),
  build the feature rows the models read (its text cut at MAX_MODEL_CHARS).
- score: the model's probabilities; a text with nothing to read scores 0.
- postprocess: thresholds, the categories a caller's blocklist term decides, spans, one TextVerdict per text.
"""
from __future__ import annotations

import contextlib
import gc
import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..lexicon import default_lexicon
from ..taxonomy import TEXT_CATEGORIES, resolve_thresholds
from ..verdict import TextVerdict
from .features import Analysis, FeatureRows, analyze, feature_rows
from .model import TextModel
from .model_card import DEFAULT
from .registry import get_text_model, resolve_model_name
from .spans import explain

#: Texts longer than this are scored on their first MAX_MODEL_CHARS characters (the lexicon still reads all of
#: the text, so spans cover it whole); the verdict says `truncated=True`.
MAX_MODEL_CHARS = 20_000


def moderate_text(text_or_texts: str | Sequence[str], *, model: str | None = DEFAULT, thresholds=None,
                  blocklist=None, allowlist=None, explain_spans: bool = True):
    """Moderate one text (returns a TextVerdict) or a list of texts (returns a list, same order and length).

    model: a name of `available_models()`; "default" (or None) is the model card's default, and the verdicts name
    the model that judged.
    thresholds: a float for every category or a mapping category -> threshold, over the model's tuned ones.
    blocklist: terms that always flag (a list counts as profanity; a mapping category -> terms chooses).
    allowlist: terms that never count, e.g. a place name your community uses.
    explain_spans: False skips the model-occlusion spans (lexicon spans stay), for bulk jobs.
    A text with nothing to read (empty, blank, only control or zero-width characters) scores 0 in every category.
    """
    name = resolve_model_name(model)
    texts, single = _as_text_list(text_or_texts)  # before the model loads: a wrong argument costs nothing
    text_model = get_text_model(name)
    with _cyclic_gc_paused():
        batch = preprocess(texts, text_model, thresholds, blocklist, allowlist)
        proba = score(text_model, batch)
        verdicts = postprocess(batch, proba, text_model, name, explain_spans)
    return verdicts[0] if single else verdicts


@dataclass
class Batch:
    """The texts of one call as the model reads them."""

    texts: list[str]
    limits: dict[str, float]  # category -> threshold: the caller's over the model's tuned ones
    analyses: list[Analysis]  # normalised text and lexicon matches, of the whole text
    rows: FeatureRows  # the model's input rows (its text cut at MAX_MODEL_CHARS), which occlusion spans re-score


def preprocess(texts: list[str], text_model: TextModel, thresholds, blocklist, allowlist) -> Batch:
    """The caller's thresholds over the model's (ValueError for an unknown category or a value outside [0, 1]),
    every text analysed with the lexicon plus the caller's terms, and the feature rows."""
    limits = resolve_thresholds(thresholds, text_model.thresholds, TEXT_CATEGORIES)
    lexicon = default_lexicon().with_user_terms(blocklist, allowlist)
    analyses = [analyze(t, lexicon) for t in texts]
    rows = feature_rows(texts, analyses)  # statistics need the text the analysis was made from: all of it
    return Batch(texts, limits, analyses, FeatureRows([t[:MAX_MODEL_CHARS] for t in rows.texts], rows.numbers,
                                                      rows.sources))


def score(text_model: TextModel, batch: Batch) -> np.ndarray:
    """(n, len(TEXT_CATEGORIES)) probabilities; 0 for a text with nothing left to read (empty, blank, only control
    or zero-width characters), whatever a model extrapolates from an empty input (the classical ones flagged "" as
    profanity and "\\x00" as violence)."""
    if not batch.texts:
        return np.zeros((0, len(TEXT_CATEGORIES)))
    proba = text_model.predict_proba(batch.rows)
    blank = np.array([not a.normalized.text.strip() for a in batch.analyses], dtype=bool)
    return np.where(blank[:, None], 0.0, proba)


def postprocess(batch: Batch, proba: np.ndarray, text_model: TextModel, name: str,
                explain_spans: bool) -> list[TextVerdict]:
    """Verdicts: scores to 4 decimals, flagged where a score reaches its threshold or a decisive lexicon match (a
    caller's blocklist term) sets its category to 1, and the spans that explain each flagged category."""
    limits = batch.limits
    # Thresholds compared for the whole batch at once; a text's scores change only where a caller's blocklist term
    # decides its category (TEXT_CATEGORIES is in severity order, so the flagged lists come out sorted).
    rounded = np.round(proba, 4)
    model_hits = (rounded >= np.array([limits[c] for c in TEXT_CATEGORIES])).tolist()
    model_flagged = [[c for c, hit in zip(TEXT_CATEGORIES, hits) if hit] for hits in model_hits]  # the model's own
    scores_per_text, flagged_sets = [], []
    for analysis, row, flagged in zip(batch.analyses, rounded.tolist(), model_flagged):
        scores = dict(zip(TEXT_CATEGORIES, row))
        decided = [m.category for m in analysis.matches if m.decisive]
        if decided:
            scores.update(dict.fromkeys(decided, 1.0))
            flagged = [c for c in TEXT_CATEGORIES if scores[c] >= limits[c]]
        flagged_sets.append(flagged)
        scores_per_text.append(scores)

    spans_per_text = explain(text_model, batch.analyses, batch.rows, proba, flagged_sets,
                             occlusion=explain_spans, model_flagged_sets=model_flagged)
    return [
        TextVerdict(text=text, flagged=bool(flagged), scores=scores, categories=list(flagged),
                    spans=spans, thresholds=limits, model=name, truncated=len(text) > MAX_MODEL_CHARS)
        for text, scores, flagged, spans in zip(batch.texts, scores_per_text, flagged_sets, spans_per_text)
    ]


def _as_text_list(text_or_texts) -> tuple[list[str], bool]:
    if isinstance(text_or_texts, str):
        return [text_or_texts], True
    if isinstance(text_or_texts, (list, tuple)):
        for i, item in enumerate(text_or_texts):
            if not isinstance(item, str):
                raise TypeError(f"moderate_text() item {i} is {type(item).__name__}, expected str")
        return list(text_or_texts), False
    raise TypeError(f"moderate_text() expects a str or a list of str, got {type(text_or_texts).__name__}")


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextlib.contextmanager
def _cyclic_gc_paused():
    """Python's cycle collector off while a batch is scored, back as it was when the last concurrent call ends.

    A batch allocates millions of small objects that live until its verdicts are built (offset maps, matches,
    feature rows) and form no cycles; the collector re-scanned them over and over, a third of a 10,000-tweet call
    (`python -m benchmarks.text_speed --stages-only` shows it as time spread over every stage)."""
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()
