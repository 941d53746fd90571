"""The Metrics tab's and `python -m moderation evaluate --dataset`'s reports on the public datasets (evaluation only):
the same EvaluationReport as the bundled sets, truth from the datasets' own labels, and a clear message when a
dataset can be neither downloaded nor read from MODERATION_DATA_MIRROR."""
from __future__ import annotations

import json

import numpy as np
import pytest

from moderation import datasets, evaluation, moderate_text
from moderation.cli import main

ROWS = 300


@pytest.mark.public_data
def test_davidson_report_is_moderate_texts_flags_against_davidsons_labels(public_data):
    report = evaluation.evaluate_public("davidson", "logreg", limit=ROWS)
    tweets = datasets.fetch_davidson()[:ROWS]
    verdicts = moderate_text(tweets["text"].tolist(), model="logreg", explain_spans=False)
    assert report.size == ROWS and report.views == [evaluation.FLAGGED_VIEW, "hate"]
    assert np.array_equal(report.flagged_true, tweets["flagged"].to_numpy())  # hate or offensive
    assert np.array_equal(report.flagged_pred, [v.flagged for v in verdicts])  # flagged in any category
    assert np.array_equal(report.binary("hate")[0], (tweets["label"] == 0).astype(int))
    assert np.array_equal(report.binary("hate")[1], ["hate" in v.categories for v in verdicts])
    table = report.category_table()
    assert table["class"].tolist()[:2] == ["hate", "accuracy"] and table["support"][0] == (tweets["label"] == 0).sum()
    assert report.confusion().sum() == ROWS and "davidson" in report.reading()


@pytest.mark.public_data
def test_sms_and_toxic_spans_reports(public_data):
    sms = evaluation.evaluate_public("sms_spam", "logreg", limit=ROWS)
    assert sms.views == [evaluation.FLAGGED_VIEW, "spam"]
    assert np.array_equal(sms.binary("spam")[0], datasets.fetch_sms_spam()["spam"][:ROWS].astype(int))
    spans = evaluation.evaluate_public("toxic_spans", "logreg", limit=ROWS)
    assert spans.views == [evaluation.FLAGGED_VIEW] and spans.category_table().empty
    assert spans.flagged_true.sum() == datasets.fetch_toxic_spans("test")["spans"][:ROWS].map(bool).sum()


@pytest.mark.public_data
def test_the_evaluate_command_prints_the_report(public_data, capsys):
    assert main(["evaluate", "--dataset", "sms_spam", "--models", "logreg", "--limit", str(ROWS)]) == 0
    out = capsys.readouterr().out
    assert "**logreg** on **sms_spam" in out and "Classification report, per category:" in out
    assert "Confusion matrix, spam ([[tn, fp], [fn, tp]]):" in out
    assert main(["evaluate", "--dataset", "sms_spam", "--models", "logreg", "--limit", str(ROWS), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["size"] == ROWS and set(report["confusion"]) == {evaluation.FLAGGED_VIEW, "spam"}


def test_a_dataset_that_cannot_be_read_is_a_clear_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODERATION_DATA_MIRROR", str(tmp_path))  # set, but empty
    with pytest.raises(datasets.DatasetUnavailableError, match="MODERATION_DATA_MIRROR is set but"):
        evaluation.evaluate_public("toxic_spans", "logreg")
    assert main(["evaluate", "--dataset", "davidson"]) == 2
    assert "error: MODERATION_DATA_MIRROR is set but" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown public dataset"):
        evaluation.evaluate_public("jigsaw")
    assert main(["evaluate", "--dataset", "nope"]) == 2


def test_the_metrics_tab_offers_the_public_sets_and_explains_an_unreadable_one(tmp_path, monkeypatch):
    from test_app import load_app  # the same app module test_app.py launches

    app = load_app()
    choices = [name for name, _ in _dataset_menu(app).choices]
    assert choices == ["texts", "sms_email", "davidson", "sms_spam", "toxic_spans"]
    monkeypatch.setenv("MODERATION_DATA_MIRROR", str(tmp_path))
    with pytest.raises(Exception, match="cannot be read here") as caught:
        app.on_evaluate("davidson", "logreg")
    assert str(tmp_path) not in str(caught.value)  # the server's folders stay in its log


def _dataset_menu(app):
    import gradio as gr

    return next(block for block in app.demo.blocks.values()
                if isinstance(block, gr.Dropdown) and block.label == "Dataset")
