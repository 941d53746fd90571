"""Scoring text moderators on real public data nobody on this project wrote (evaluation only, never training).

Conventions (see ../shared/datasets/README.md): Davidson "flagged" is `class != 2` (hate or offensive vs neither);
SMS is the `spam` category against ham/spam; Toxic Spans uses the SemEval-2021 metric, the mean over posts of
the character-offset F1 between predicted and gold spans (1.0 when both are empty, 0.0 when exactly one is).

Two ways in: `evaluate_public` gives the same `EvaluationReport` as the bundled sets (the Metrics tab,
`python -m moderation evaluate --dataset`); `evaluate_predictor` takes any function from texts to `Predictions`, so
the benchmarks put peer libraries through exactly the same data and metrics as `moderate_text`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, recall_score

from .. import datasets
from ..taxonomy import TEXT_CATEGORIES, TOXIC_CATEGORIES
from ..text.registry import resolve_model_name
from .bundled import LabelledTexts, cached_report, evaluate_bundled, evaluate_labelled
from .report import EvaluationReport


@dataclass(frozen=True)
class Predictions:
    """What a tool said about a batch of texts, reduced to what the public datasets can check."""

    flagged: np.ndarray  # bool per text: flagged for anything
    spam: np.ndarray | None = None  # bool per text; None for a tool without a spam category
    toxic_offsets: list[set[int]] | None = None  # toxic character offsets per text; None for a tool without spans


#: (texts, want_spans) -> Predictions. `want_spans` is False where no metric reads the spans, so a tool can skip
#: the costly part of explaining itself (our occlusion spans) on the large sets.
Predictor = Callable[[Sequence[str], bool], Predictions]


def span_f1(predicted: Sequence[int] | set[int], gold: Sequence[int] | set[int]) -> float:
    """SemEval-2021 Task 5 per-post F1 over character offsets."""
    predicted, gold = set(predicted), set(gold)
    if not predicted and not gold:
        return 1.0
    if not predicted or not gold:
        return 0.0
    overlap = len(predicted & gold)
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(gold)
    return 2 * precision * recall / (precision + recall)


def toxic_offsets(verdict) -> set[int]:
    """Character offsets covered by the verdict's toxic spans."""
    return {i for s in verdict.spans if s.label in TOXIC_CATEGORIES for i in range(s.start, s.end)}


def verdict_predictions(verdicts) -> Predictions:
    """`Predictions` from our `TextVerdict`s."""
    return Predictions(
        flagged=np.array([v.flagged for v in verdicts], dtype=bool),
        spam=np.array(["spam" in v.categories for v in verdicts], dtype=bool),
        toxic_offsets=[toxic_offsets(v) for v in verdicts],
    )


def evaluate_flagging(flagged, truth) -> dict:
    """Binary scores of `flagged` against `truth`, with the confusion matrix [[tn, fp], [fn, tp]] for figures."""
    truth = np.asarray(truth, dtype=bool)
    flagged = np.asarray(flagged, dtype=bool)
    negatives = ~truth
    return {
        "macro_f1": round(float(f1_score(truth, flagged, average="macro", zero_division=0)), 4),
        "f1": round(float(f1_score(truth, flagged, zero_division=0)), 4),
        "recall": round(float(recall_score(truth, flagged, zero_division=0)), 4),
        "false_positive_rate": round(float(flagged[negatives].mean()) if negatives.any() else 0.0, 4),
        "n": int(truth.size),
        "confusion_matrix": confusion_matrix(truth, flagged, labels=[False, True]).tolist(),
    }


def _timed(predict: Predictor, texts: list[str], want_spans: bool) -> tuple[Predictions, float]:
    started = time.perf_counter()
    predictions = predict(texts, want_spans)
    return predictions, round(time.perf_counter() - started, 1)


def evaluate_predictor(predict: Predictor, limit: int | None = None) -> dict:
    """Score `predict` on the three public datasets.

    Returns {"davidson": {...}, "sms_spam": {...}, "toxic_spans": {...}}. A tool without a spam category gets
    `sms_spam["f1"] = None`; one without spans gets `toxic_spans["char_f1"] = None`.
    `limit` takes the first rows of each set for a quick look; reported figures use all rows.
    """
    results = {}
    davidson = datasets.fetch_davidson()[:limit]
    predictions, seconds = _timed(predict, davidson["text"].tolist(), False)
    results["davidson"] = {**evaluate_flagging(predictions.flagged, davidson["flagged"]), "seconds": seconds}

    sms = datasets.fetch_sms_spam()[:limit]
    predictions, seconds = _timed(predict, sms["text"].tolist(), False)
    spam = sms["spam"].to_numpy(dtype=bool)
    if predictions.spam is None:
        results["sms_spam"] = {"f1": None, "recall": None, "n": int(spam.size)}
    else:
        results["sms_spam"] = evaluate_flagging(predictions.spam, spam)
    results["sms_spam"]["ham_flagged_any"] = round(float(predictions.flagged[~spam].mean()), 4)
    results["sms_spam"]["seconds"] = seconds

    spans = datasets.fetch_toxic_spans("test")[:limit]
    predictions, seconds = _timed(predict, spans["text"].tolist(), True)
    has_gold = spans["spans"].map(bool).to_numpy(dtype=bool)
    posts = evaluate_flagging(predictions.flagged, has_gold)
    char_f1 = None
    if predictions.toxic_offsets is not None:
        char_f1 = round(float(np.mean([span_f1(p, g) for p, g in zip(predictions.toxic_offsets, spans["spans"])])), 4)
    results["toxic_spans"] = {
        "char_f1": char_f1,
        "toxic_posts_flagged": posts["recall"],
        "n": int(has_gold.size),
        "confusion_matrix": posts["confusion_matrix"],
        "seconds": seconds,
    }
    return results


def run_public_evaluation(moderate: Callable, limit: int | None = None) -> dict:
    """Evaluate `moderate(texts, explain_spans=...) -> verdicts` (e.g. a partial of moderate_text) on the three
    public datasets; see `evaluate_predictor` for what comes back."""
    return evaluate_predictor(lambda texts, spans: verdict_predictions(moderate(texts, explain_spans=spans)), limit)


# --- The public datasets as EvaluationReports ---------------------------------------------------------------------


def _davidson() -> LabelledTexts:
    frame = datasets.fetch_davidson()
    hate = (frame["label"] == 0).to_numpy(dtype=int)[:, None]
    return LabelledTexts(frame["text"].tolist(), ("hate",), hate, frame["flagged"].to_numpy(dtype=bool))


def _sms_spam() -> LabelledTexts:
    frame = datasets.fetch_sms_spam()
    spam = frame["spam"].to_numpy(dtype=bool)
    return LabelledTexts(frame["text"].tolist(), ("spam",), spam.astype(int)[:, None], spam)


def _toxic_spans() -> LabelledTexts:
    frame = datasets.fetch_toxic_spans("test")
    return LabelledTexts(frame["text"].tolist(), (), np.zeros((len(frame), 0), dtype=int),
                         frame["spans"].map(bool).to_numpy(dtype=bool))


#: Public datasets the Metrics tab and `python -m moderation evaluate --dataset` report on, with the truth each gives
#: (the conventions above): Davidson flagged = hate or offensive, and its hate class as `hate`; SMS spam as `spam`
#: (a legitimate message flagged for anything is a false alarm); Toxic Spans test posts with any toxic span as
#: flagged. A flag in any category counts as flagged, as a user of the verdict would read it.
PUBLIC = {"davidson": _davidson, "sms_spam": _sms_spam, "toxic_spans": _toxic_spans}


def evaluate_public(dataset: str, model: str = "default", limit: int | None = None) -> EvaluationReport:
    """Score `model` on a public dataset (see `PUBLIC`), fetched with its checksum checked or read from
    MODERATION_DATA_MIRROR (`datasets.DatasetUnavailableError` when neither works); `limit` takes the first rows for
    a quick look. Cached per process."""
    if dataset not in PUBLIC:
        raise ValueError(f"unknown public dataset {dataset!r}; available: {', '.join(PUBLIC)}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of rows, got {limit}")
    name = resolve_model_name(model)

    def compute():
        data = PUBLIC[dataset]()
        if limit is not None:
            data = LabelledTexts(data.texts[:limit], data.categories, data.labels[:limit], data.flagged[:limit])
        title = f"{dataset} (public, {len(data.texts):,} texts{'' if limit is None else ', first rows only'})"
        return evaluate_labelled(data, name, title, flagged_by=TEXT_CATEGORIES)

    return cached_report(("public", dataset, name, limit), compute)


def evaluate_dataset(dataset: str, model: str = "default") -> EvaluationReport:
    """A bundled dataset's test split or a whole public dataset, by name (the Metrics tab's one dropdown)."""
    return evaluate_public(dataset, model) if dataset in PUBLIC else evaluate_bundled(dataset, model)
