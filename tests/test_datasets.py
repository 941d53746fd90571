"""Datasets: the bundled texts' contract, and the public fetchers' mirror, cache, checksum and provenance.

No test touches the network: the one function that downloads (`datasets._fetch_bytes`) is replaced, and the
public files themselves are read from the mirror (tests needing it skip with a reason when it is absent).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile

import numpy as np
import pytest

from moderation import datasets
from moderation.data.build import TEST_SHARE, draw_split, near_duplicate_pairs
from moderation.datasets import LABEL_COLUMNS, DatasetUnavailableError

# Synthetic stand-ins written for these tests (never text from the public datasets).
FAKE_SMS = b"ham\tSee you at lunch tomorrow\nspam\tWIN a free prize, text CLAIM now\nham\tRunning late, sorry\n"


# --- bundled texts -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def texts():
    return datasets.load_texts()


def test_bundled_texts_have_the_documented_columns_and_binary_labels(texts):
    assert list(texts.columns) == ["id", "text", "source", "split", *LABEL_COLUMNS]
    assert texts["id"].is_unique
    assert (texts["text"].str.strip() != "").all()
    assert set(np.unique(texts[LABEL_COLUMNS].to_numpy())) <= {0, 1}
    assert set(texts["split"]) == set(datasets.SPLITS)


def test_splits_partition_the_texts_with_a_held_out_test_share(texts):
    train, test = datasets.load_texts("train"), datasets.load_texts("test")
    assert len(train) + len(test) == len(texts)
    assert 0.1 <= len(test) / len(texts) <= 0.4
    assert set(train["id"]).isdisjoint(test["id"])
    with pytest.raises(ValueError, match="split must be one of"):
        datasets.load_texts("validation")


def test_a_rows_split_depends_on_its_text_so_adding_rows_keeps_the_split_nearly_whole(texts):
    # Drawn from row positions, every new part re-drew the whole split and scores could not be compared across
    # data versions. Now order does not matter, and adding rows moves at most the rows at each group's boundary.
    rows = texts[["text", "source", *LABEL_COLUMNS]]
    whole = draw_split(rows).set_index("id")["split"]
    shuffled = draw_split(rows.sample(frac=1.0, random_state=3)).set_index("id")["split"]
    assert shuffled.sort_index().equals(whole.sort_index())
    before = draw_split(rows.sample(frac=0.95, random_state=1)).set_index("id")["split"]
    moved = int((whole.loc[before.index] != before).sum())
    groups = rows.groupby("source").ngroups * (len(LABEL_COLUMNS) + 1)
    assert moved <= TEST_SHARE * (len(rows) - len(before)) + groups, moved  # a random re-draw moves ~2,000


@pytest.mark.parametrize("split", [None, "train", "test"])
def test_at_least_40_percent_of_texts_are_clean(split):
    frame = datasets.load_texts(split)
    clean = (frame[LABEL_COLUMNS].sum(axis=1) == 0).mean()
    assert clean >= 0.40, f"only {clean:.0%} of the {split or 'whole'} split is clean"


def test_every_category_has_positives_in_both_splits():
    for split in datasets.SPLITS:
        counts = datasets.load_texts(split)[LABEL_COLUMNS].sum()
        assert (counts > 0).all(), f"{split} split lacks {list(counts[counts == 0].index)}"


def test_no_test_text_nearly_duplicates_a_training_text():
    train, test = datasets.load_texts("train"), datasets.load_texts("test")
    pairs = near_duplicate_pairs(test["text"].tolist(), train["text"].tolist())
    shown = [(test["text"][i], train["text"][j], round(score, 2)) for i, j, score in pairs[:3]]
    assert not pairs, f"{len(pairs)} test texts leak from train, e.g. {shown}"


def test_near_duplicate_pairs_sees_through_case_punctuation_and_small_edits():
    left = ["Win a FREE prize now, reply YES to claim it today!!!", "see you at the station at six"]
    right = ["win a free prize now reply yes to claim it today", "the cat sat on the warm window"]
    pairs = near_duplicate_pairs(left, right)
    assert [(i, j) for i, j, _ in pairs] == [(0, 0)]
    assert pairs[0][2] == pytest.approx(1.0)


def test_sms_email_view_is_the_sms_and_email_rows(texts):
    view = datasets.load_sms_email()
    assert set(view["source"]) <= {"sms", "email"}
    assert len(view) == texts["source"].isin(["sms", "email"]).sum() > 0
    assert set(datasets.BUNDLED) >= {"texts", "sms_email"}


# --- public datasets: read from the mirror -------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    def refuse(url):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(datasets, "_fetch_bytes", refuse)


def test_davidson_from_the_mirror(public_data, no_network):
    frame = datasets.fetch_davidson()
    assert len(frame) == 24_783
    assert frame["label"].value_counts().to_dict() == {1: 19_190, 2: 4_163, 0: 1_430}
    assert (frame["flagged"] == (frame["label"] != 2)).all()
    assert not frame["text"].str.contains("&amp;", regex=False).any(), "HTML entities are decoded"
    assert frame.attrs["licence"] == "MIT" and "Davidson" in frame.attrs["citation"]


def test_sms_spam_from_the_mirror(public_data, no_network):
    frame = datasets.fetch_sms_spam()
    assert len(frame) == 5_574 and int(frame["spam"].sum()) == 747
    assert (frame["text"].str.len() > 0).all()
    assert frame.attrs["licence"] == "CC BY 4.0"


@pytest.mark.parametrize("split, rows", [("train", 7_939), ("trial", 690), ("test", 2_000)])
def test_toxic_spans_from_the_mirror(public_data, no_network, split, rows):
    frame = datasets.fetch_toxic_spans(split)
    assert len(frame) == rows
    for text, offsets in zip(frame["text"], frame["spans"]):
        assert offsets == sorted(set(offsets))
        assert all(0 <= i < len(text) for i in offsets)
    assert frame["spans"].map(bool).mean() > 0.7  # most posts have a located toxic span
    assert frame.attrs["licence"] == "CC0 1.0"


def test_mirror_without_the_file_says_which_path_is_missing(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("MODERATION_DATA_MIRROR", str(tmp_path))
    with pytest.raises(DatasetUnavailableError, match=r"sms_spam[/\\]SMSSpamCollection does not exist"):
        datasets.fetch_sms_spam()


def test_mirror_with_a_different_file_is_refused(tmp_path, monkeypatch, no_network):
    (tmp_path / "sms_spam").mkdir()
    (tmp_path / "sms_spam" / "SMSSpamCollection").write_bytes(FAKE_SMS)
    monkeypatch.setenv("MODERATION_DATA_MIRROR", str(tmp_path))
    with pytest.raises(DatasetUnavailableError, match="SHA-256"):
        datasets.fetch_sms_spam()


def test_unknown_dataset_and_split_are_value_errors():
    with pytest.raises(ValueError, match="unknown public dataset"):
        datasets.dataset_path("imdb")
    with pytest.raises(ValueError, match="toxic_spans_dev"):
        datasets.fetch_toxic_spans("dev")


def test_citation_names_authors_licence_and_source():
    line = datasets.citation("sms_spam")
    assert "Almeida" in line and "CC BY 4.0" in line and line.endswith(datasets.PUBLIC_DATASETS["sms_spam"].url)


# --- public datasets: download, checksum, cache (download function replaced) ---------------------------------------


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """No mirror, an empty cache directory: the fetchers have to download."""
    monkeypatch.delenv("MODERATION_DATA_MIRROR", raising=False)
    monkeypatch.setenv("MODERATION_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "datasets"


def _zip_of(member: str, payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, payload)
    return buffer.getvalue()


def _serve(monkeypatch, payload: bytes) -> list[str]:
    """Replace the download with `payload`; returns the list of URLs asked for."""
    requested = []

    def fetch(url):
        requested.append(url)
        return payload

    monkeypatch.setattr(datasets, "_fetch_bytes", fetch)
    return requested


def _expect_sha256(monkeypatch, name: str, payload: bytes) -> None:
    spec = dataclasses.replace(datasets.PUBLIC_DATASETS[name], sha256=hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(datasets.PUBLIC_DATASETS, name, spec)


def test_download_with_the_wrong_checksum_is_refused_and_leaves_nothing(empty_cache, monkeypatch, capsys):
    _serve(monkeypatch, _zip_of("SMSSpamCollection", FAKE_SMS))  # the real SHA-256 cannot match these bytes
    with pytest.raises(DatasetUnavailableError, match="SHA-256"):
        datasets.fetch_sms_spam()
    assert list(empty_cache.rglob("*")) == [], "nothing is cached"
    assert "CC BY 4.0" in capsys.readouterr().err, "the licence is shown when downloading"


def test_download_with_the_right_checksum_is_cached_and_read_once(empty_cache, monkeypatch):
    _expect_sha256(monkeypatch, "sms_spam", FAKE_SMS)  # the checksum is of the file inside the zip
    requested = _serve(monkeypatch, _zip_of("SMSSpamCollection", FAKE_SMS))
    frame = datasets.fetch_sms_spam()
    assert frame["spam"].tolist() == [False, True, False]
    assert (empty_cache / "sms_spam" / "SMSSpamCollection").read_bytes() == FAKE_SMS
    assert [p.name for p in (empty_cache / "sms_spam").iterdir()] == ["SMSSpamCollection"], "no temporary left"
    datasets.fetch_sms_spam()
    assert requested == [datasets.PUBLIC_DATASETS["sms_spam"].url], "the second call reads the cache"


def test_plain_file_download_is_checked_too(empty_cache, monkeypatch):
    payload = b'spans,text\n"[0, 1, 2]",abc def\n[],fine words\n'
    _expect_sha256(monkeypatch, "toxic_spans_trial", payload)
    _serve(monkeypatch, payload)
    frame = datasets.fetch_toxic_spans("trial")
    assert frame["spans"].tolist() == [[0, 1, 2], []]
    _serve(monkeypatch, payload + b"[],changed upstream\n")
    with pytest.raises(DatasetUnavailableError, match="SHA-256"):
        datasets.fetch_toxic_spans("test")


def test_a_download_that_is_not_the_expected_zip_is_refused(empty_cache, monkeypatch):
    _serve(monkeypatch, b"<html>maintenance</html>")
    with pytest.raises(DatasetUnavailableError, match="not a zip"):
        datasets.fetch_sms_spam()


def test_network_failure_points_at_the_mirror_variable(empty_cache, monkeypatch):
    def offline(url):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(datasets, "_fetch_bytes", offline)
    with pytest.raises(DatasetUnavailableError, match="MODERATION_DATA_MIRROR"):
        datasets.fetch_davidson()
    with pytest.raises(DatasetUnavailableError, match="not cached"):
        datasets.dataset_path("davidson", download=False)
