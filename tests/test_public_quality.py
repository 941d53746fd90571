"""Quality floors on real public data nobody on this project wrote (evaluation only; skipped when absent).

Fixed samples keep the suite fast; `python -m moderation evaluate` and benchmarks/ report the full sets.
"""
import numpy as np
import pytest

from moderation import moderate_text
from moderation.datasets import fetch_davidson, fetch_sms_spam, fetch_toxic_spans
from moderation.evaluation import evaluate_flagging, span_f1, toxic_offsets

pytestmark = pytest.mark.public_data


def test_davidson_flagged_vs_neither(public_data):
    # The full set (24,783 tweets, a few seconds with spans off): the floor is an earlier issue's, stated for the
    # full set, and this version's default is close to it (0.808; a 3,000-tweet sample gave 0.794).
    tweets = fetch_davidson()
    verdicts = moderate_text(tweets["text"].tolist(), explain_spans=False)
    result = evaluate_flagging([v.flagged for v in verdicts], tweets["flagged"].to_numpy())
    assert result["macro_f1"] >= 0.80, result


def test_sms_spam(public_data):
    sample = fetch_sms_spam().sample(2000, random_state=7)
    verdicts = moderate_text(sample["text"].tolist(), explain_spans=False)
    result = evaluate_flagging(["spam" in v.categories for v in verdicts], sample["spam"].to_numpy())
    assert result["f1"] >= 0.80, result  # an earlier issue's floor (0.891 on the full set in this version)


def test_toxic_spans_character_f1(public_data):
    sample = fetch_toxic_spans("test").sample(400, random_state=7)
    verdicts = moderate_text(sample["text"].tolist())
    score = np.mean([span_f1(toxic_offsets(v), gold) for v, gold in zip(verdicts, sample["spans"])])
    # Regression guard: 0.463 on the full set with corpus v6's default (0.443 with v2's; the first release had 0.545;
    # later corpora flag fewer of these comments, README "Results").
    assert score >= 0.40, score


def test_span_metric_matches_the_semeval_definition():
    assert span_f1([], []) == 1.0
    assert span_f1([1, 2], []) == 0.0
    assert span_f1([], [1]) == 0.0
    assert span_f1([1, 2, 3, 4], [3, 4, 5, 6]) == pytest.approx(0.5)
