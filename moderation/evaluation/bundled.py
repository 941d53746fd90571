"""Evaluating a model on a bundled dataset's test split or on a labelled CSV of your own.

Reports are cached per (data, model), so switching back to one already computed is instant; the cache is bounded.
"""
from __future__ import annotations

import hashlib
import io
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..datasets import BUNDLED, load_texts
from ..taxonomy import TEXT_CATEGORIES
from ..text import moderate_text
from ..text.cache import training_data
from ..text.registry import get_text_model, predict_labels, resolve_model_name
from .report import EvaluationReport

#: Most rows read from an uploaded CSV: enough for a real test set, bounded for a shared demo.
MAX_CSV_ROWS = 20_000
#: `label` values that mean "nothing wrong with this text".
CLEAN_LABELS = frozenset({"", "0", "clean", "none", "ok", "ham", "neither", "false"})
#: Reports kept in memory (oldest dropped first), so a stream of CSV uploads cannot grow the process without bound.
MAX_CACHED_REPORTS = 64

_cache: dict[tuple, EvaluationReport] = {}
_cache_lock = threading.Lock()


def cached_report(key: tuple, compute) -> EvaluationReport:
    """The report cached under `key`, computed by `compute()` on a miss (oldest report dropped beyond the bound)."""
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    report = compute()  # outside the lock: a slow evaluation must not block cache hits for other reports
    with _cache_lock:
        report = _cache.setdefault(key, report)
        while len(_cache) > MAX_CACHED_REPORTS:
            del _cache[next(iter(_cache))]
        return report


def evaluate_bundled(dataset: str = "texts", model: str = "default") -> EvaluationReport:
    """Score `model` on the test split of a bundled dataset (see `datasets.BUNDLED`); cached per process."""
    if dataset not in BUNDLED:
        raise ValueError(f"unknown bundled dataset {dataset!r}; available: {', '.join(BUNDLED)}")
    name = resolve_model_name(model)
    return cached_report(("bundled", dataset, name), lambda: _evaluate_bundled(dataset, name))


def _evaluate_bundled(dataset: str, model: str) -> EvaluationReport:
    text_model = get_text_model(model)
    X, y = training_data("test")
    keep = load_texts("test")["id"].isin(set(BUNDLED[dataset]("test")["id"])).to_numpy()
    predicted = predict_labels(text_model, X[keep])
    return EvaluationReport(
        dataset=f"{dataset} (test split)", model=model, categories=TEXT_CATEGORIES, y_true=y[keep], y_pred=predicted,
        flagged_true=y[keep].any(axis=1), flagged_pred=predicted.any(axis=1), thresholds=dict(text_model.thresholds),
    )


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with their truth: per-category 0/1 columns (`categories`), and whether each should be flagged."""

    texts: list[str]
    categories: tuple[str, ...]
    labels: np.ndarray  # (n, len(categories))
    flagged: np.ndarray  # (n,) bool


def read_labelled_csv(source: str | Path | bytes) -> LabelledTexts:
    """Parse a labelled CSV: a `text` column plus 0/1 columns named after categories, or a `label` column.

    `label` may hold 0/1 (flagged or not) or category names separated by `,`, `;` or `|` ("clean", "none", "ham" or
    empty for clean texts; a list of names is taken as exhaustive, so every category is evaluated).
    Raises ValueError with a message fit for the user when the file does not fit this shape.
    """
    payload = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    try:
        frame = pd.read_csv(io.BytesIO(payload), dtype=str, keep_default_na=False, encoding="utf-8",
                            encoding_errors="replace", nrows=MAX_CSV_ROWS + 1)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"Could not read the CSV: {exc}") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if len(frame) > MAX_CSV_ROWS:
        raise ValueError(f"The CSV has more than {MAX_CSV_ROWS:,} rows; evaluate a sample of it.")
    if "text" not in frame.columns:
        raise ValueError(f"The CSV needs a 'text' column; it has: {', '.join(frame.columns) or 'no columns'}.")
    frame = frame[frame["text"].str.strip() != ""]
    if frame.empty:
        raise ValueError("The CSV has no rows with text.")
    texts = frame["text"].tolist()
    categories = tuple(c for c in TEXT_CATEGORIES if c in frame.columns)
    if categories:
        labels = np.column_stack([_binary_column(frame[c], c) for c in categories])
        return LabelledTexts(texts, categories, labels, labels.any(axis=1))
    if "label" not in frame.columns:
        raise ValueError(f"The CSV needs 0/1 columns named after categories ({', '.join(TEXT_CATEGORIES)}) "
                         f"or a 'label' column.")
    values = frame["label"].str.strip().str.lower()
    if values.isin(["0", "1"]).all():
        flagged = _binary_column(frame["label"], "label").astype(bool)
        return LabelledTexts(texts, (), np.zeros((len(texts), 0), dtype=int), flagged)
    names = values.map(lambda v: {n.strip() for n in re.split(r"[,;|]", v)} - CLEAN_LABELS)
    unknown = sorted(set().union(*names) - set(TEXT_CATEGORIES))
    if unknown:
        raise ValueError(f"Unknown label(s) {', '.join(map(repr, unknown[:5]))}; use category names "
                         f"({', '.join(TEXT_CATEGORIES)}), 'clean', or 0/1.")
    labels = np.array([[int(c in row) for c in TEXT_CATEGORIES] for row in names], dtype=int)
    return LabelledTexts(texts, TEXT_CATEGORIES, labels, labels.any(axis=1))


def _binary_column(column: pd.Series, name: str) -> np.ndarray:
    values = column.str.strip()
    bad = sorted(set(values) - {"0", "1"})
    if bad:
        raise ValueError(f"Column {name!r} must hold 0 or 1; found {', '.join(map(repr, bad[:5]))}.")
    return values.astype(int).to_numpy()


def evaluate_labelled_csv(source: str | Path | bytes, model: str = "default",
                          name: str = "your CSV") -> EvaluationReport:
    """Score `model` on a labelled CSV (see `read_labelled_csv`) through `moderate_text`; cached by file content."""
    payload = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    model = resolve_model_name(model)
    key = ("csv", hashlib.sha256(payload).hexdigest(), model)
    return cached_report(key, lambda: evaluate_labelled(read_labelled_csv(payload), model, name))


def evaluate_labelled(data: LabelledTexts, model: str, name: str,
                      flagged_by: tuple[str, ...] | None = None) -> EvaluationReport:
    """Score `model` on `data` through `moderate_text` (uncached). `flagged_by`: the categories whose flags count as
    "flagged"; by default the labelled ones (a bare flagged/clean label is about every category)."""
    verdicts = moderate_text(data.texts, model=model, explain_spans=False)
    flagged_by = set(flagged_by or data.categories or TEXT_CATEGORIES)
    predicted = np.array([[int(c in v.categories) for c in data.categories] for v in verdicts],
                         dtype=int).reshape(len(verdicts), len(data.categories))
    return EvaluationReport(
        dataset=name, model=model, categories=data.categories, y_true=data.labels, y_pred=predicted,
        flagged_true=data.flagged, flagged_pred=np.array([bool(flagged_by & set(v.categories)) for v in verdicts]),
        thresholds=dict(verdicts[0].thresholds),
    )
