"""The feature path's fast parts give exactly what the plain scikit-learn path gives, and cached models that
cannot be read are refitted instead of failing."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from moderation.datasets import load_texts
from moderation.files import atomic_write
from moderation.normalize import normalize
from moderation.text import cache
from moderation.text.features import WordCachedCharTfidf

ODD_TEXTS = ["", "   ", "a", "ab\tcd\n\nef", "x\u3000y\u00a0z", "ÉCOLE école", "sh1t!!! f*ck", "🙂🙂 ok 🙂",
             "word " * 300, "\u200b\u200b"]


@pytest.fixture(scope="module")
def fitted():
    texts = [normalize(t).text for t in load_texts("train")["text"]]
    return WordCachedCharTfidf(max_features=20000).fit(texts)


@pytest.fixture(scope="module")
def unseen_texts():
    """Test-split texts (unseen words too) and odd whitespace, each twice so the second pass reads the cache."""
    texts = load_texts("test")["text"].tolist() + ODD_TEXTS
    return texts + texts[::-1]


def test_cached_transform_equals_tfidf_vectorizer(fitted, unseen_texts):
    ours = fitted.transform(unseen_texts)
    reference = TfidfVectorizer.transform(fitted, unseen_texts)
    assert ours.shape == reference.shape
    assert abs(ours - reference).max() == 0.0
    np.testing.assert_array_equal(ours.indices, reference.indices)  # same sparse layout, not just same values


def test_a_bounded_cache_gives_the_same_matrix(fitted, unseen_texts, monkeypatch):
    small = pickle.loads(pickle.dumps(fitted))
    monkeypatch.setattr(WordCachedCharTfidf, "MAX_CACHED_WORDS", 50)
    assert abs(small.transform(unseen_texts) - fitted.transform(unseen_texts)).max() == 0.0
    assert len(small.__dict__["_word_columns"]) <= 50


def test_the_word_cache_is_not_pickled(fitted, unseen_texts):
    fitted.transform(unseen_texts[:50])
    assert fitted.__dict__["_word_columns"]
    assert "_word_columns" not in pickle.loads(pickle.dumps(fitted)).__dict__


def test_a_single_string_is_refused_like_scikit_learn_does(fitted):
    with pytest.raises(ValueError, match="Iterable over raw text documents"):
        fitted.transform("one text")


def test_an_unreadable_cached_model_is_refitted(tmp_path):
    path = tmp_path / "models" / "logreg.joblib"
    path.parent.mkdir()
    path.write_bytes(b"\x80\x04 truncated pickle")
    with pytest.warns(UserWarning, match="refitting"):
        assert cache.read_cached_model(path) is None
    atomic_write(path, pickle.dumps({"model": 1}))
    assert cache.read_cached_model(path) == {"model": 1}
    assert [p.name for p in path.parent.iterdir()] == ["logreg.joblib"], "a temporary file was left behind"
