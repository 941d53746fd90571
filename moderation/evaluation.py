"""Scoring text models on real public data nobody on this project wrote (evaluation only, never training).

Conventions (see ../shared/datasets/README.md): Davidson "flagged" is `class != 2` (hate or offensive vs neither);
SMS is the `spam` category against ham/spam; Toxic Spans uses the SemEval-2021 metric, the mean over posts of
the character-offset F1 between predicted and gold spans (1.0 when both are empty, 0.0 when exactly one is).
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

import numpy as np
from sklearn.metrics import f1_score, recall_score

from . import datasets

#: Categories whose spans count as "toxic" for the Toxic Spans task (spam is not toxicity).
TOXIC_CATEGORIES = frozenset({"harassment", "hate", "violence", "sexual", "self_harm", "profanity"})


def span_f1(predicted: Iterable[int], gold: Iterable[int]) -> float:
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


def evaluate_flagging(flagged: np.ndarray, truth: np.ndarray) -> dict:
    truth = np.asarray(truth, dtype=bool)
    flagged = np.asarray(flagged, dtype=bool)
    negatives = ~truth
    return {
        "macro_f1": round(float(f1_score(truth, flagged, average="macro")), 4),
        "f1": round(float(f1_score(truth, flagged)), 4),
        "recall": round(float(recall_score(truth, flagged)), 4),
        "false_positive_rate": round(float(flagged[negatives].mean()) if negatives.any() else 0.0, 4),
        "n": int(truth.size),
    }


def run_public_evaluation(moderate: Callable, limit: int | None = None) -> dict:
    """Evaluate `moderate(texts) -> verdicts` (e.g. a partial of moderate_text) on the three public datasets.

    Returns {"davidson": {...}, "sms_spam": {...}, "toxic_spans": {...}} with the figures the README reports.
    `limit` takes the first rows of each set for a quick look; reported figures use all rows.
    """
    results = {}
    davidson = datasets.fetch_davidson()[:limit]
    started = time.perf_counter()
    verdicts = moderate(davidson["text"].tolist())
    results["davidson"] = evaluate_flagging([v.flagged for v in verdicts], davidson["flagged"].to_numpy())
    results["davidson"]["seconds"] = round(time.perf_counter() - started, 1)

    sms = datasets.fetch_sms_spam()[:limit]
    started = time.perf_counter()
    verdicts = moderate(sms["text"].tolist())
    spam_pred = np.array(["spam" in v.categories for v in verdicts])
    results["sms_spam"] = evaluate_flagging(spam_pred, sms["spam"].to_numpy())
    ham = ~sms["spam"].to_numpy()
    results["sms_spam"]["ham_flagged_any"] = round(float(np.mean([v.flagged for v, h in zip(verdicts, ham) if h])), 4)
    results["sms_spam"]["seconds"] = round(time.perf_counter() - started, 1)

    spans = datasets.fetch_toxic_spans("test")[:limit]
    started = time.perf_counter()
    verdicts = moderate(spans["text"].tolist())
    scores = [span_f1(toxic_offsets(v), gold) for v, gold in zip(verdicts, spans["spans"])]
    has_gold = spans["spans"].map(bool).to_numpy()
    results["toxic_spans"] = {
        "char_f1": round(float(np.mean(scores)), 4),
        "toxic_posts_flagged": round(float(np.mean([v.flagged for v, g in zip(verdicts, has_gold) if g])), 4),
        "n": len(scores),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return results
