"""Spans that show why: lexicon matches plus the words the model itself leans on, found by occlusion.

Occlusion is model-agnostic: blank one word of the normalised text (and drop the lexicon evidence it carried),
re-score, and keep the words whose removal lowers a flagged category's probability the most. All variants of a
batch go through the model in one call. Offsets are mapped back through the normaliser's origin map, so
`text[start:end]` is exactly what the user wrote ("f.u.c.k", "іdіоt").
"""
from __future__ import annotations

import re

import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from ..taxonomy import TEXT_CATEGORIES
from ..verdict import Span
from .features import LEXICON_COLUMNS, lexicon_features

MAX_OCCLUDED_WORDS = 60
#: A word explains a category when blanking it lowers that category's probability by at least this much...
MIN_DROP = 0.08
#: ...and by at least this share of the largest drop any word in the text causes.
RELATIVE_DROP = 0.5
_WORD = re.compile(r"(?<![\w*@$!'])[\w*@$!']*[^\W_][\w*@$!']*")  # from a run's start only: linear, not quadratic


def _lexicon_spans(analysis, flagged) -> list[Span]:
    spans = []
    for m in analysis.matches:
        if m.category in flagged:
            start, end = analysis.normalized.original_span(m.start, m.end)
            spans.append(Span(start, end, m.category, round(min(m.weight, 1.0), 4),
                              m.source))
    return spans


def _occlusion_variants(analysis, frame_row):
    """One feature row per content word with that word blanked; returns (word spans in normalised text, rows).

    Stop words are skipped: "you" carries harassment statistically, but it is not the word that offends."""
    model_text = frame_row["text"]  # what the model read: the start of a long text (MAX_MODEL_CHARS)
    words = [m.span() for m in _WORD.finditer(model_text) if m.group(0) not in ENGLISH_STOP_WORDS]
    words = words[:MAX_OCCLUDED_WORDS]
    rows = []
    for start, end in words:
        row = frame_row.copy()
        row["text"] = model_text[:start] + " " * (end - start) + model_text[end:]
        kept = [m for m in analysis.matches if m.end <= start or m.start >= end]
        row[LEXICON_COLUMNS] = lexicon_features(kept)
        rows.append(row)
    return words, rows


def _merge(spans: list[Span]) -> list[Span]:
    """Merge overlapping spans of the same label, keeping the higher score and both sources."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.label, s.start, -s.end)):
        last = merged[-1] if merged else None
        if last and last.label == span.label and span.start < last.end:
            sources = "+".join(sorted(set(last.source.split("+")) | set(span.source.split("+"))))
            merged[-1] = Span(last.start, max(last.end, span.end), last.label, max(last.score, span.score), sources)
        else:
            merged.append(span)
    return sorted(merged, key=lambda s: (s.start, s.end, s.label))


def explain(model, texts, analyses, frame, proba, flagged_sets, occlusion: bool = True) -> list[list[Span]]:
    """Spans for every text: lexicon spans of flagged categories, plus occlusion spans when `occlusion`."""
    spans = [_lexicon_spans(a, set(flagged)) for a, flagged in zip(analyses, flagged_sets)]
    if not occlusion:
        return [_merge(s) for s in spans]
    words_per_text, rows = {}, []
    for i, (analysis, flagged) in enumerate(zip(analyses, flagged_sets)):
        if not flagged:
            continue
        words, variant_rows = _occlusion_variants(analysis, frame.iloc[i])
        words_per_text[i] = (words, len(rows))
        rows.extend(variant_rows)
    if rows:
        variant_proba = model.predict_proba(pd.DataFrame(rows).reset_index(drop=True))
        for i, (words, offset) in words_per_text.items():
            drops = proba[i] - variant_proba[offset:offset + len(words)]
            analysis = analyses[i]
            for category in flagged_sets[i]:
                k = TEXT_CATEGORIES.index(category)
                column = drops[:, k]
                if column.size == 0:
                    continue
                bar = max(MIN_DROP, RELATIVE_DROP * float(column.max()))
                for (start, end), drop in zip(words, column):
                    if drop >= bar:
                        o_start, o_end = analysis.normalized.original_span(start, end)
                        spans[i].append(Span(o_start, o_end, category, round(float(min(drop / proba[i, k], 1.0)), 4), "model"))
    return [_merge(s) for s in spans]
