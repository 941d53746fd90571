"""Evaluation on the public datasets: the SemEval span metric, the flagging scores, and any tool through one path."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from moderation import moderate_text
from moderation.evaluation import (
    Predictions,
    evaluate_flagging,
    evaluate_predictor,
    run_public_evaluation,
    span_f1,
    toxic_offsets,
    verdict_predictions,
)
from moderation.verdict import Span, TextVerdict


@pytest.mark.parametrize(
    "predicted, gold, expected",
    [
        ([], [], 1.0),  # nothing to find, nothing found
        ([1, 2], [], 0.0),
        ([], [1, 2], 0.0),
        ([5, 6], [1, 2], 0.0),
        ([1, 2, 3, 4], [3, 4, 5, 6], 0.5),  # precision 1/2, recall 1/2
        ([3, 4], [3, 4, 5, 6], 2 / 3),  # precision 1, recall 1/2
        ([1, 1, 2], [1, 2], 1.0),  # offsets are a set
    ],
)
def test_span_f1_is_the_semeval_per_post_f1(predicted, gold, expected):
    assert span_f1(predicted, gold) == pytest.approx(expected)


def test_evaluate_flagging_scores_and_confusion_matrix():
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    flagged = np.array([1, 1, 0, 1, 0, 0, 0, 0], dtype=bool)
    scores = evaluate_flagging(flagged, truth)
    assert scores["confusion_matrix"] == [[4, 1], [1, 2]]  # [[tn, fp], [fn, tp]]
    assert scores["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert scores["false_positive_rate"] == pytest.approx(1 / 5)
    assert scores["f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2, abs=1e-4)
    assert scores["n"] == 8


def test_verdict_predictions_keep_only_toxic_spans():
    text = "you idiot, click here"
    verdict = TextVerdict(text, True, {}, ["harassment", "spam"],
                          spans=[Span(4, 9, "harassment", 0.9), Span(11, 21, "spam", 0.8)])
    predictions = verdict_predictions([verdict])
    assert predictions.flagged.tolist() == [True] and predictions.spam.tolist() == [True]
    assert predictions.toxic_offsets == [set(range(4, 9))] == [toxic_offsets(verdict)]


def test_a_tool_without_spam_or_spans_gets_none_not_a_made_up_score(public_data):
    calls = []

    def flag_everything(texts, want_spans):
        calls.append(want_spans)
        return Predictions(flagged=np.ones(len(texts), dtype=bool))

    results = evaluate_predictor(flag_everything, limit=40)
    assert calls == [False, False, True], "spans are only asked for on Toxic Spans"
    assert results["davidson"]["recall"] == 1.0 and results["davidson"]["false_positive_rate"] == 1.0
    assert results["sms_spam"]["f1"] is None and results["sms_spam"]["ham_flagged_any"] == 1.0
    assert results["toxic_spans"]["char_f1"] is None and results["toxic_spans"]["toxic_posts_flagged"] == 1.0


def test_run_public_evaluation_scores_our_default_model(public_data):
    results = run_public_evaluation(partial(moderate_text, model="default"), limit=60)
    for name in ("davidson", "sms_spam", "toxic_spans"):
        assert results[name]["n"] == 60
    assert 0.0 <= results["toxic_spans"]["char_f1"] <= 1.0
    assert 0.0 <= results["sms_spam"]["f1"] <= 1.0
    # Davidson's first rows are mostly offensive tweets: a working model flags many of them.
    assert results["davidson"]["recall"] > 0.3
