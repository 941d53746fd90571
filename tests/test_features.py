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
from moderation.text.features import TokenCachedWordTfidf, WordCachedCharTfidf, gram_keys, stack_columns

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


@pytest.fixture(scope="module")
def fitted_words():
    texts = [normalize(t).text for t in load_texts("train")["text"]]
    return TokenCachedWordTfidf(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=20000,
                                stop_words="english", token_pattern=r"(?u)\b\w[\w'*]*\b").fit(texts)


@pytest.mark.parametrize("documents", ["unseen", "one", "stop words only"])
def test_vectorised_word_transform_equals_tfidf_vectorizer(fitted_words, unseen_texts, documents):
    docs = {"unseen": unseen_texts + ["you are an idiot idiot", "the the the", "idiot the idiot"],
            "one": unseen_texts[:1], "stop words only": ["the and of", "", "a an"]}[documents]
    ours = fitted_words.transform(docs)
    reference = TfidfVectorizer.transform(fitted_words, docs)
    assert ours.shape == reference.shape
    assert abs(ours - reference).max() == 0.0
    np.testing.assert_array_equal(ours.indptr, reference.indptr)
    np.testing.assert_array_equal(ours.indices, reference.indices)


def test_stacked_columns_equal_scipy_hstack():
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    for rows in (1, 7, 300):
        dense = rng.random((rows, 9)) * (rng.random((rows, 9)) > 0.5)  # zeros that hstack leaves out
        blocks = [sp.random(rows, 40, density=0.1, format="csr", random_state=1), dense, np.zeros((rows, 3)),
                  sp.csr_matrix((rows, 5)), sp.random(rows, 60, density=0.3, format="csr", random_state=2)]
        ours, reference = stack_columns(blocks), sp.hstack(blocks).tocsr()
        assert ours.shape == reference.shape
        for part in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(ours, part), getattr(reference, part))


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


@pytest.mark.parametrize("ngram_range", [(1, 3), (4, 6), (2, 5)])
def test_batched_ngram_lookup_equals_scikit_learn_for_any_range(ngram_range):
    """Words shorter than the smallest n (one n-gram: the padded word), characters outside the vocabulary's
    alphabet, emoji and other planes: the integer keys find exactly the n-grams scikit-learn's analyser finds."""
    train = [normalize(t).text for t in load_texts("train")["text"][:3000]]
    vectorizer = WordCachedCharTfidf(ngram_range=ngram_range, min_df=1).fit(train)
    docs = ODD_TEXTS + ["a b c", "ab x🙂y 𝔣𝔬𝔬 ∑∫", "zz zzz zzzz", "日本語 テキスト"] + train[:200]
    ours = vectorizer.transform(docs)
    reference = TfidfVectorizer.transform(vectorizer, docs)
    assert abs(ours - reference).max() == 0.0
    np.testing.assert_array_equal(ours.indices, reference.indices)
    for word in ("a", "ab", "abcdefg", "🙂"):  # one word alone, shorter than the longest n-gram
        one = TfidfVectorizer.transform(vectorizer, [word])
        assert sorted(set(vectorizer.word_columns([word])[0])) == sorted(one.indices.tolist())


def test_an_alphabet_too_large_for_integer_keys_is_looked_up_word_by_word():
    words = [chr(0x4E00 + i) + chr(0x4E00 + i + 1) for i in range(3000)]  # 3,001 characters: 12 bits x 6 > 63
    vectorizer = WordCachedCharTfidf(ngram_range=(2, 6), min_df=1).fit([" ".join(words)])
    assert gram_keys(vectorizer) is None
    docs = [" ".join(words[:50]), "一丁 x"]
    assert abs(vectorizer.transform(docs) - TfidfVectorizer.transform(vectorizer, docs)).max() == 0.0
