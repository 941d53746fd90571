"""moderation.evaluation: reports, confusion matrices, figures and the plain-language reading, on real predictions."""
from __future__ import annotations

import numpy as np
import pytest

from moderation import evaluation
from moderation.datasets import load_sms_email, load_texts
from moderation.evaluation import bundled
from moderation.taxonomy import TEXT_CATEGORIES


def _report(flagged_true, flagged_pred, categories=(), y_true=None, y_pred=None):
    n = len(flagged_true)
    empty = np.zeros((n, 0), dtype=int)
    return evaluation.EvaluationReport(
        "hand-made", "toy", tuple(categories), empty if y_true is None else np.asarray(y_true),
        empty if y_pred is None else np.asarray(y_pred), np.asarray(flagged_true, bool), np.asarray(flagged_pred, bool),
    )


# 100 texts: 15 caught, 5 false alarms, 3 missed, 77 correctly left alone.
TRUTH = np.array([1] * 15 + [0] * 5 + [1] * 3 + [0] * 77)
PREDICTED = np.array([1] * 15 + [1] * 5 + [0] * 3 + [0] * 77)


def test_confusion_counts_and_reading_use_the_real_numbers():
    report = _report(TRUTH, PREDICTED)
    assert report.confusion().tolist() == [[77, 5], [3, 15]]
    reading = report.reading()
    assert "right about 92 of 100 texts, 92.0%" in reading
    assert "called 20 texts flagged; 15 of them really were, 75.0%" in reading
    assert "of the 18 texts that really are flagged, it caught 15, 83.3%; it missed 3" in reading
    assert "18 flagged, 82 clean" in reading
    assert "always answering \"clean\" would already score 82.0%" in reading


def test_reading_says_when_precision_and_recall_are_undefined():
    reading = evaluation.plain_reading(np.array([[10, 0], [0, 0]]), "not spam", "spam")
    assert "called no text spam, so precision is undefined" in reading
    assert "no text here is really spam, so recall is undefined" in reading


def test_flagged_table_matches_sklearn_layout():
    table = _report(TRUTH, PREDICTED).flagged_table()
    assert table["class"].tolist() == ["clean", "flagged", "accuracy", "macro avg", "weighted avg"]
    flagged = table.set_index("class").loc["flagged"]
    assert (flagged["precision"], flagged["recall"], flagged["support"]) == (0.75, 0.833, 18)
    accuracy = table.set_index("class").loc["accuracy"]
    assert accuracy["f1-score"] == 0.92 and accuracy["support"] == 100 and np.isnan(accuracy["precision"])


def test_category_views_of_a_multi_label_report():
    y_true = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
    y_pred = np.array([[1, 0], [0, 1], [0, 1], [0, 1]])
    report = _report(y_true.any(1), y_pred.any(1), ("hate", "spam"), y_true, y_pred)
    assert report.views == [evaluation.FLAGGED_VIEW, "hate", "spam"]
    assert report.confusion("hate").tolist() == [[2, 0], [1, 1]]
    assert report.confusion("spam").tolist() == [[1, 1], [0, 2]]
    table = report.category_table().set_index("class")
    assert table.loc["accuracy", "f1-score"] == 0.5  # exact match: rows 1 and 4 have every category right
    assert {"hate", "spam", "micro avg", "macro avg", "weighted avg", "samples avg"} <= set(table.index)
    with pytest.raises(ValueError, match="unknown view"):
        report.confusion("violence")


def test_confusion_figure_shows_counts_and_normalised_rates():
    figure = evaluation.confusion_figure(_report(TRUTH, PREDICTED))
    counts, normalised = figure.axes
    assert sorted(t.get_text() for t in counts.texts) == sorted(["77", "5", "3", "15"])
    assert sorted(t.get_text() for t in normalised.texts) == sorted(["0.94", "0.06", "0.17", "0.83"])
    report = _report(TRUTH, PREDICTED)
    png = evaluation.confusion_png(report)
    assert png.startswith(b"\x89PNG") and evaluation.confusion_png(report) is png  # drawn once, then cached
    twin = _report(TRUTH, PREDICTED)  # equal numbers, another report: its own figure, never another report's
    assert twin != report and evaluation.confusion_png(twin) is not png


def _csv(text: str) -> bytes:
    return text.encode("utf-8")


def test_read_labelled_csv_with_category_columns():
    data = evaluation.read_labelled_csv(_csv("Text,spam,hate\nwin cash now,1,0\nhello there,0,0\n  ,1,1\n"))
    assert data.texts == ["win cash now", "hello there"]  # blank texts are dropped
    assert data.categories == ("hate", "spam")  # taxonomy order, whatever the column order
    assert data.labels.tolist() == [[0, 1], [0, 0]] and data.flagged.tolist() == [True, False]


def test_read_labelled_csv_with_a_label_column():
    binary = evaluation.read_labelled_csv(_csv("text,label\na,1\nb,0\n"))
    assert binary.categories == () and binary.flagged.tolist() == [True, False]
    named = evaluation.read_labelled_csv(_csv('text,label\na,"spam, hate"\nb,clean\nc,ham\n'))
    assert named.categories == TEXT_CATEGORIES
    assert [set(np.array(TEXT_CATEGORIES)[row == 1]) for row in named.labels] == [{"spam", "hate"}, set(), set()]


@pytest.mark.parametrize("content, message", [
    ("comment,spam\nhi,0\n", "needs a 'text' column"),
    ("text,other\nhi,0\n", "or a 'label' column"),
    ("text,spam\nhi,yes\n", "must hold 0 or 1"),
    ("text,label\nhi,rude\n", "Unknown label"),
    ("text,label\n", "no rows with text"),
    ("", "Could not read the CSV"),
])
def test_read_labelled_csv_explains_what_is_wrong(content, message):
    with pytest.raises(ValueError, match=message):
        evaluation.read_labelled_csv(_csv(content))


def test_read_labelled_csv_is_bounded(monkeypatch):
    monkeypatch.setattr(bundled, "MAX_CSV_ROWS", 3)
    with pytest.raises(ValueError, match="more than 3 rows"):
        evaluation.read_labelled_csv(_csv("text,label\n" + "a,0\n" * 4))


def test_evaluate_bundled_scores_the_test_split_and_caches_it():
    report = evaluation.evaluate_bundled("texts")
    assert report.size == len(load_texts("test")) and report.categories == TEXT_CATEGORIES
    assert evaluation.evaluate_bundled("texts", report.model) is report  # "default" and its name share the cache
    flagged = report.flagged_table().set_index("class")
    assert flagged.loc["flagged", "support"] + flagged.loc["clean", "support"] == report.size
    assert flagged.loc["flagged", "f1-score"] > 0.6  # a real model, far better than chance on its own data
    assert evaluation.evaluate_bundled("sms_email").size == len(load_sms_email("test"))
    with pytest.raises(ValueError, match="unknown bundled dataset"):
        evaluation.evaluate_bundled("nope")


def test_evaluate_labelled_csv_runs_the_model(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("text,harassment\nyou are a worthless idiot,1\nthanks for the lovely dinner last night,0\n",
                    encoding="utf-8")
    report = evaluation.evaluate_labelled_csv(path, name="mine.csv")
    assert report.dataset == "mine.csv" and report.categories == ("harassment",)
    assert report.y_pred[:, 0].tolist() == [1, 0]
    assert evaluation.evaluate_labelled_csv(path.read_bytes()) is report


def test_grid_search_record_from_the_model_card():
    from moderation.text.model_card import read_model_card
    from moderation.text.registry import resolve_model_name

    name = resolve_model_name("default")
    record = read_model_card()["models"][name]
    table = evaluation.grid_search_table()
    assert len(table) == len(record["cv_results"]) and table["rank"].tolist() == list(range(1, len(table) + 1))
    assert table["mean_f1_macro"].is_monotonic_decreasing
    assert f"{record['cv_best_f1_macro']:.3f}" in evaluation.grid_search_summary()


def test_grid_search_summary_without_a_record(monkeypatch):
    from moderation.text import model_card

    monkeypatch.setattr(model_card, "read_model_card", lambda: {"models": {}})
    assert evaluation.grid_search_table("svm").empty
    assert "python -m moderation train svm" in evaluation.grid_search_summary("svm")


def test_report_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(bundled, "MAX_CACHED_REPORTS", 1)
    first, second = _csv("text,label\nhello,0\n"), _csv("text,label\ngoodbye,0\n")
    report = evaluation.evaluate_labelled_csv(first)
    assert evaluation.evaluate_labelled_csv(first) is report
    evaluation.evaluate_labelled_csv(second)  # pushes the first one out
    assert evaluation.evaluate_labelled_csv(first) is not report
