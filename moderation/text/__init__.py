"""Text moderation: `moderate_text` scores every category, applies thresholds and explains with spans.

preprocess (normalise, match the lexicon, build the feature frame) -> forward (the model's probabilities)
-> postprocess (caller blocklist, thresholds, severity order, spans mapped back to the original text).
"""
from __future__ import annotations

import contextlib
import gc
import threading
from typing import Sequence

import numpy as np

from ..lexicon import default_lexicon
from ..taxonomy import TEXT_CATEGORIES, resolve_thresholds
from ..verdict import Span, TextVerdict
from .features import analyze, feature_frame
from .registry import DEFAULT, available_models, default_model_name, get_text_model
from .spans import explain

__all__ = ["moderate_text", "available_models", "default_model_name", "MAX_MODEL_CHARS"]

#: Texts longer than this are scored on their first MAX_MODEL_CHARS characters (the lexicon still reads all of
#: the text, so spans cover it whole); the verdict says `truncated=True`.
MAX_MODEL_CHARS = 20_000


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


def moderate_text(text_or_texts: str | Sequence[str], *, model: str = DEFAULT, thresholds=None, blocklist=None,
                  allowlist=None, explain_spans: bool = True):
    """Moderate one text (returns a TextVerdict) or a list of texts (returns a list, same order and length).

    thresholds: a float for every category or a mapping category -> threshold, over the model's tuned ones.
    blocklist: terms that always flag (a list counts as profanity; a mapping category -> terms chooses).
    allowlist: terms that never count, e.g. a place name your community uses.
    explain_spans: False skips the model-occlusion spans (lexicon spans stay), for bulk jobs.
    A text with nothing to read (empty, blank, only control or zero-width characters) scores 0 in every category.
    """
    texts, single = _as_text_list(text_or_texts)
    text_model = get_text_model(model)
    with _cyclic_gc_paused():
        results = _moderate(texts, text_model, model, thresholds, blocklist, allowlist, explain_spans)
    return results[0] if single else results


def _moderate(texts, text_model, model, thresholds, blocklist, allowlist, explain_spans) -> list[TextVerdict]:
    limits = resolve_thresholds(thresholds, text_model.thresholds, TEXT_CATEGORIES)
    lexicon = default_lexicon().with_user_terms(blocklist, allowlist)
    analyses = [analyze(t, lexicon) for t in texts]
    frame = feature_frame(texts, analyses)  # statistics need the text the analysis was made from: all of it
    frame["text"] = frame["text"].str.slice(0, MAX_MODEL_CHARS)
    proba = text_model.predict_proba(frame) if texts else np.zeros((0, len(TEXT_CATEGORIES)))
    # Nothing left to read (empty, blank, only control or zero-width characters) is nothing to flag, whatever a
    # model extrapolates from an empty input (the classical ones flagged "" as profanity and "\x00" as violence).
    blank = np.array([not a.normalized.text.strip() for a in analyses], dtype=bool)
    proba = np.where(blank[:, None], 0.0, proba)
    name = default_model_name() if model == DEFAULT else model

    # Thresholds compared for the whole batch at once; a text's scores change only where a caller's blocklist term
    # decides its category (TEXT_CATEGORIES is in severity order, so the flagged lists come out sorted).
    rounded = np.round(proba, 4)
    model_hits = (rounded >= np.array([limits[c] for c in TEXT_CATEGORIES])).tolist()
    model_flagged = [[c for c, hit in zip(TEXT_CATEGORIES, hits) if hit] for hits in model_hits]  # the model's own
    verdicts, flagged_sets = [], []
    for text, analysis, row, flagged in zip(texts, analyses, rounded.tolist(), model_flagged):
        scores = dict(zip(TEXT_CATEGORIES, row))
        decided = [m.category for m in analysis.matches if m.decisive]
        if decided:
            scores.update(dict.fromkeys(decided, 1.0))
            flagged = [c for c in TEXT_CATEGORIES if scores[c] >= limits[c]]
        flagged_sets.append(flagged)
        verdicts.append((text, scores))

    spans_per_text = explain(text_model, texts, analyses, frame, proba, flagged_sets, occlusion=explain_spans,
                             model_flagged_sets=model_flagged)
    results = [
        TextVerdict(text=text, flagged=bool(flagged), scores=scores, categories=list(flagged),
                    spans=spans, thresholds=limits, model=name, truncated=len(text) > MAX_MODEL_CHARS)
        for (text, scores), flagged, spans in zip(verdicts, flagged_sets, spans_per_text)
    ]
    return results


__all__ += ["Span", "TextVerdict"]
