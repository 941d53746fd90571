"""Our span-annotated texts (data/spans.csv): every row parses, every marked substring is where it says, and no row
repeats the training texts (the spans choose the span rule's constants, so they must be data the models never saw)."""
from __future__ import annotations

import csv
from importlib import resources
from types import SimpleNamespace

import pytest

from moderation import datasets
from moderation.data.build import NEAR_DUPLICATE, near_duplicate_pairs
from moderation.taxonomy import TEXT_CATEGORIES

SOURCES = {"tweet", "comment", "chat", "sms", "forum", "review", "email", "prompt"}


@pytest.fixture(scope="module")
def raw_rows():
    with resources.files("moderation.data").joinpath("spans.csv").open("r", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def span_texts():
    return datasets.load_span_texts()


def test_every_row_parses_with_the_four_columns(raw_rows, span_texts):
    assert list(raw_rows[0]) == ["text", "source", "labels", "toxic"]
    assert len(span_texts) == len(raw_rows) == 600
    assert list(span_texts.columns) == ["text", "source", "labels", "spans"]
    assert set(span_texts["source"]) <= SOURCES
    assert all(text.strip() for text in span_texts["text"])


def test_labels_are_known_text_categories(span_texts):
    assert all(set(labels) <= set(TEXT_CATEGORIES) for labels in span_texts["labels"])
    assert not any("spam" in labels or "illicit" in labels for labels in span_texts["labels"])


def test_every_marked_substring_is_found_and_slices_back(raw_rows, span_texts):
    for row, (_, parsed) in zip(raw_rows, span_texts.iterrows()):
        marked = {part.strip() for part in row["toxic"].split(" | ") if part.strip()}
        found = {parsed.text[start:end] for start, end in parsed.spans}
        assert found == marked, parsed.text
        assert all(0 <= start < end <= len(parsed.text) for start, end in parsed.spans)
        for (_, end), (next_start, _) in zip(parsed.spans, parsed.spans[1:]):
            assert end <= next_start, f"overlapping spans in {parsed.text!r}"


def test_clean_rows_have_no_spans_and_toxic_rows_have_some(span_texts):
    toxic = span_texts["labels"].map(bool)
    assert span_texts.loc[~toxic, "spans"].map(len).eq(0).all()
    assert span_texts.loc[toxic, "spans"].map(len).gt(0).all()
    assert toxic.sum() == 420


def test_every_occurrence_is_marked_and_whole_words_only():
    row = SimpleNamespace(text="pathetic. so pathetic, apathetic", toxic="pathetic", labels=["harassment"])
    assert datasets._marked_spans(row, 2) == [(0, 8), (13, 21)]
    masked = SimpleNamespace(text="you f*cking id1ot", toxic="f*cking | id1ot", labels=["harassment"])
    assert datasets._marked_spans(masked, 2) == [(4, 11), (12, 17)]


def test_a_substring_missing_from_its_text_names_the_row():
    row = SimpleNamespace(text="you idiots", toxic="idiot", labels=["harassment"])
    with pytest.raises(ValueError, match="line 7.*'idiot'"):
        datasets._marked_spans(row, 7)
    with pytest.raises(ValueError, match="line 3.*unknown labels"):
        datasets._marked_spans(SimpleNamespace(text="x", toxic="", labels=["rude"]), 3)


def test_no_row_near_duplicates_the_training_texts_or_another_row(span_texts):
    mine = span_texts["text"].tolist()
    assert near_duplicate_pairs(mine, datasets.load_texts()["text"].tolist(), NEAR_DUPLICATE) == []
    assert [(i, j) for i, j, _ in near_duplicate_pairs(mine, mine, NEAR_DUPLICATE) if i < j] == []
