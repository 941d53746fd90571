"""Spans: on the offending word as written (obfuscated, look-alike, leet, long texts), for lexicon and model spans
separately; a linear model's spans are its exact logit decomposition (checked against the pipeline and by brute
force); other models are explained by occlusion of a few words; spans never change scores."""
from __future__ import annotations

import numpy as np
import pytest

from moderation import moderate_text
from moderation.text import MAX_MODEL_CHARS, registry
from moderation.text import spans as spans_module
from moderation.text.features import LEXICON_COLUMNS, analyze, feature_frame, lexicon_features
from moderation.text.registry import get_text_model

FILLER = "the weather is lovely today and we walked to the park. "
HOSTILE_END = " you stupid f.u.c.k.i.n.g idiot"


def _long(length: int) -> str:
    return (FILLER * (length // len(FILLER) + 1))[:length - len(HOSTILE_END)] + HOSTILE_END


# (text, category, the words as written that may carry it)
CASES = [
    ("f.u.c.k you", "profanity", {"f.u.c.k"}),
    ("you are an іdіоt", "harassment", {"іdіоt"}),  # Cyrillic і and о
    ("this is sh1t", "profanity", {"sh1t"}),
    ("shut up you f.u.c.k.i.n.g loser", "profanity", {"f.u.c.k.i.n.g"}),
    ("you f*cking 1d10t", "harassment", {"1d10t", "f*cking"}),
    ("  you are\t an   іdіоt \n", "harassment", {"іdіоt"}),  # irregular white space
    (_long(20_000), "profanity", {"f.u.c.k.i.n.g"}),  # the insult at the very end of what the model reads
    (_long(25_000), "profanity", {"f.u.c.k.i.n.g"}),  # the insult past MAX_MODEL_CHARS: lexicon evidence only
]


@pytest.fixture(scope="module")
def logreg():
    return get_text_model("logreg")


def _model_spans_only(monkeypatch, texts, **kwargs):
    monkeypatch.setattr(spans_module, "_lexicon_spans", lambda analysis, flagged: [])
    return moderate_text(texts, **kwargs)


@pytest.mark.parametrize("text, category, words", CASES, ids=lambda c: c[:24] if isinstance(c, str) else None)
def test_lexicon_spans_are_the_word_as_written(text, category, words):
    verdict = moderate_text(text, explain_spans=False)  # lexicon spans only
    assert category in verdict.categories, verdict.scores
    spans = [s for s in verdict.spans if s.label == category]
    assert spans and all("lexicon" in s.source for s in spans)
    assert {text[s.start:s.end] for s in spans} <= words


@pytest.mark.parametrize("text, category, words", CASES, ids=lambda c: c[:24] if isinstance(c, str) else None)
def test_model_spans_are_the_word_as_written(text, category, words, monkeypatch):
    verdict = _model_spans_only(monkeypatch, text, model="logreg")
    assert category in verdict.categories, verdict.scores
    spans = [s for s in verdict.spans if s.label == category]
    assert spans and all(s.source == "model" for s in spans)
    assert {text[s.start:s.end] for s in spans} <= words, [text[s.start:s.end] for s in spans]
    for span in verdict.spans:  # every category's spans: inside the text, on a word, never a stop word
        assert 0 <= span.start < span.end <= len(text)
        assert text[span.start:span.end].strip() == text[span.start:span.end]
        assert text[span.start:span.end].lower() not in {"you", "are", "an", "up", "the", "this", "is"}


def test_long_text_spans_point_past_the_model_limit(monkeypatch):
    text = _long(25_000)
    verdict = _model_spans_only(monkeypatch, text)
    assert verdict.truncated
    assert any(s.start >= MAX_MODEL_CHARS and text[s.start:s.end] == "f.u.c.k.i.n.g" for s in verdict.spans)


def test_spans_never_change_scores(logreg):
    texts = [case[0] for case in CASES] + ["have a lovely weekend", "buy cheap viagra now at www.pills.xyz",
                                           "I will find you and kill you", "you,idiot!!", "", "   "]
    with_spans = moderate_text(texts, model="logreg")
    without = moderate_text(texts, model="logreg", explain_spans=False)
    assert [v.scores for v in with_spans] == [v.scores for v in without]
    # ...and they are the model's own probabilities to 4 decimals (none of these texts has a blocklist match)
    analyses = [analyze(t) for t in texts]
    frame = feature_frame(texts, analyses)
    frame["text"] = frame["text"].str.slice(0, MAX_MODEL_CHARS)
    proba = np.round(logreg.predict_proba(frame), 4)
    for verdict, row, analysis in zip(with_spans, proba, analyses):
        if analysis.normalized.text.strip():
            assert list(verdict.scores.values()) == row.tolist()


# ------------------------------------------------------------------------------------------------------------
# The linear decomposition, checked against the pipeline itself
# ------------------------------------------------------------------------------------------------------------

LINEAR_TEXTS = ["you are a f.u.c.k.i.n.g idiot", "I will kill you, bitch!!!", "sh1t happens", "you,idiot and,moron",
                "go k i l l y o u r s e l f", "buy cheap viagra now at www.pills.xyz http://t.co/xyz",
                "nice day, have fun", "  you   stupid\t\tidiot,  moron ", "", "!!! ???"]


def _frame(texts):
    analyses = [analyze(t) for t in texts]
    frame = feature_frame(texts, analyses)
    frame["text"] = frame["text"].str.slice(0, MAX_MODEL_CHARS)
    return analyses, frame


def _logits(model, frame) -> np.ndarray:
    """Per-category log-odds of the one-vs-rest logistic regression, straight from scikit-learn."""
    X = model.pipeline[:-1].transform(frame)
    return np.column_stack([e.decision_function(X) for e in model.pipeline[-1].estimators_])


def test_reconstructed_tfidf_equals_the_vectorizers(logreg):
    analyses, frame = _frame(LINEAR_TEXTS + [_long(20_000)])
    view = spans_module.linear_view(logreg)
    _, outputs = spans_module.word_contributions(view, frame["text"].tolist(), analyses,
                                                 frame[LEXICON_COLUMNS].to_numpy(), return_outputs=True)
    assert abs(outputs["words"] - view.words.transform(frame["text"])).max() < 1e-12
    assert abs(outputs["chars"] - view.chars.transform(frame["text"])).max() < 1e-12


def test_word_shares_add_up_to_the_logit(logreg):
    """logit = intercept + statistics + source + lexicon baseline + sum of the words' shares, exactly."""
    analyses, frame = _frame(LINEAR_TEXTS)
    view = spans_module.linear_view(logreg)
    results = spans_module.word_contributions(view, frame["text"].tolist(), analyses, frame[LEXICON_COLUMNS].to_numpy())
    # the same texts with no words: what remains is everything that belongs to no word
    empty = frame.copy()
    empty["text"] = [" " * len(t) for t in frame["text"]]
    empty[LEXICON_COLUMNS] = 0.0
    rest = _logits(logreg, empty)
    full = _logits(logreg, frame)
    for text, contributions, f, r in zip(LINEAR_TEXTS, results, full, rest):
        if text == "!!! ???":  # punctuation with no word at all: its n-grams belong to no word
            continue
        np.testing.assert_allclose(contributions.shares.sum(axis=0), f - r, atol=1e-9, err_msg=text)


def test_the_largest_share_is_the_word_whose_removal_lowers_the_logit_most(logreg):
    """A brute-force check: blank each content word (and drop its lexicon matches), re-score with scikit-learn. The
    two are not the same measure (blanking a word re-normalises the other words' TF-IDF, so two words of close
    shares can swap), so the texts here have one clearly strongest word."""
    texts = ["you are a f.u.c.k.i.n.g idiot", "you worthless loser", "I will kill you tomorrow", "what a stupid idea",
             "you are so dumb lol", "click here for free money"]
    analyses, frame = _frame(texts)
    view = spans_module.linear_view(logreg)
    results = spans_module.word_contributions(view, frame["text"].tolist(), analyses, frame[LEXICON_COLUMNS].to_numpy())
    full = _logits(logreg, frame)
    checked = 0
    for i, (analysis, contributions) in enumerate(zip(analyses, results)):
        k = int(np.argmax(full[i]))  # the category the model is surest of
        words = [u for u, c in zip(contributions.units, contributions.content) if c]
        variants = frame.iloc[[i] * len(words)].reset_index(drop=True)
        text = frame["text"][i]
        variants["text"] = [text[:s] + " " * (e - s) + text[e:] for s, e in words]
        variants[LEXICON_COLUMNS] = np.array([
            lexicon_features([m for m in analysis.matches if m.end <= s or m.start >= e]) for s, e in words])
        drops = full[i, k] - _logits(logreg, variants)[:, k]
        shares = contributions.shares[contributions.content, k]
        assert int(np.argmax(shares)) == int(np.argmax(drops)), (texts[i], words, shares, drops)
        checked += 1
    assert checked == len(texts)


# ------------------------------------------------------------------------------------------------------------
# Models that are not linear: occlusion of at most MAX_OCCLUDED_WORDS words, in one batch
# ------------------------------------------------------------------------------------------------------------


class _Opaque:
    """A model the span code cannot read as linear (no pipeline): it has to be explained by occlusion."""

    def __init__(self, inner):
        self.inner, self.thresholds, self.calls = inner, inner.thresholds, []

    def predict_proba(self, frame):
        self.calls.append(len(frame))
        return self.inner.predict_proba(frame)


def test_occlusion_explains_other_models_on_the_word(logreg, monkeypatch):
    opaque = _Opaque(logreg)
    monkeypatch.setitem(registry.EXTRA_MODELS, "opaque", lambda: opaque)
    monkeypatch.setitem(registry._loaded, "opaque", opaque)
    assert spans_module.linear_view(opaque) is None
    texts = ["you are an іdіоt", "this is sh1t", "f.u.c.k you", _long(25_000),
             " ".join(["lovely", "sunny"] * 40) + HOSTILE_END]  # 83 content words: more than the cap
    verdicts = _model_spans_only(monkeypatch, texts, model="opaque")
    assert len(opaque.calls) == 2  # the texts, then every variant of the batch in one call
    flagged = sum(1 for v in verdicts if v.flagged)
    assert flagged == len(texts) and opaque.calls[1] <= spans_module.MAX_OCCLUDED_WORDS * flagged
    allowed = [{"іdіоt"}, {"sh1t"}, {"f.u.c.k"}, {"f.u.c.k.i.n.g", "stupid", "idiot"},
               {"f.u.c.k.i.n.g", "stupid", "idiot"}]
    for i, (verdict, words) in enumerate(zip(verdicts, allowed)):
        model_spans = {verdict.text[s.start:s.end] for s in verdict.spans if s.source == "model"}
        assert model_spans <= words, model_spans
        # "you are an іdіоt" is sure harassment even blanked ("you are an"): occlusion's blind spot, not the linear one
        assert model_spans or i == 0, (verdict.text[-40:], verdict.scores)


# ------------------------------------------------------------------------------------------------------------
# The other linear models: the calibrated linear SVM and the least-squares baseline (small fits, seconds)
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_fits():
    from moderation.datasets import LABEL_COLUMNS, load_texts
    from moderation.text.classical import SPECS

    data = load_texts("train").sample(n=2500, random_state=0).reset_index(drop=True)
    texts = data["text"].tolist()
    X = feature_frame(texts, [analyze(t) for t in texts], data["source"])
    y = data[LABEL_COLUMNS].to_numpy(dtype=int)
    return {name: SPECS[name].pipeline().fit(X, y) for name in ("svm", "linreg")}


def _surrogate(pipeline, frame) -> np.ndarray:
    """What the span code explains, computed by scikit-learn: the SVM folds' mean calibrated log-odds; the least-squares
    outputs."""
    X = pipeline[:-1].transform(frame)
    clf = pipeline[-1]
    if hasattr(clf, "regressor_"):
        return clf.regressor_.predict(X.toarray())
    columns = []
    for estimator in clf.estimators_:
        folds = [-(c.calibrators[0].a_ * c.estimator.decision_function(X) + c.calibrators[0].b_)
                 for c in estimator.calibrated_classifiers_]
        columns.append(np.mean(folds, axis=0))
    return np.column_stack(columns)


@pytest.mark.parametrize("name", ["svm", "linreg"])
def test_other_linear_models_are_decomposed_exactly(small_fits, name):
    from moderation.text.classical import TrainedModel

    model = TrainedModel(name, small_fits[name], {})
    view = spans_module.linear_view(model)
    assert view is not None and view.scale == ("probability" if name == "linreg" else "logit")
    texts = LINEAR_TEXTS[:8]
    analyses, frame = _frame(texts)
    results = spans_module.word_contributions(view, frame["text"].tolist(), analyses, frame[LEXICON_COLUMNS].to_numpy())
    empty = frame.copy()
    empty["text"] = [" " * len(t) for t in frame["text"]]
    empty[LEXICON_COLUMNS] = 0.0
    expected = _surrogate(model.pipeline, frame) - _surrogate(model.pipeline, empty)
    for text, contributions, e in zip(texts, results, expected):
        np.testing.assert_allclose(contributions.shares.sum(axis=0), e, atol=1e-8, err_msg=text)


def test_quote_marks_around_a_word_are_not_part_of_its_span():
    from moderation import moderate_text

    # "this is 'shit'" was highlighted as "'shit'" (the words allow apostrophes, for look-alikes like "sh'it").
    for text, word in [("this is 'shit'", "shit"), ("that's bullshit'", "bullshit"),
                       ("“idiot” is what you are", "idiot"), ('"you idiot"', "idiot")]:
        shown = {text[s.start:s.end] for s in moderate_text(text).spans}
        assert word in shown and not any(piece[0] in "'\"“”" or piece[-1] in "'\"“”" for piece in shown), (text, shown)


def test_the_batch_layout_finds_the_regexes_words_and_tokens():
    """Words (`_WORD`) and tokens (the word vectorizer's pattern) are found by character classes over the whole batch;
    they are exactly what the regexes find in each text, on odd punctuation, underscores, apostrophes, masks and
    non-Latin scripts."""
    import re

    texts = ["don't 'tis f*ck *hole* ''quoted'' a_b __ _x_ !!! sh!t a$$ @user: http://t.co/x1",
             "l'été 日本語 テキスト ١٢٣ x²y ß", "", "   ", "'*'", "you,idiot;;and-then", "it's" * 50,
             "tab\tand\nnewline\u3000ideographic\u00a0nbsp"]
    layout = spans_module._layout(texts)
    tokens = re.compile(spans_module.TOKEN_PATTERN)
    found_words = list(zip(layout.unit_starts.tolist(), layout.unit_ends.tolist()))
    found_tokens = list(zip(layout.token_starts.tolist(), layout.token_ends.tolist()))
    words, token_spans = [], []
    for text, start in zip(texts, layout.doc_starts.tolist()):
        words += [(start + a, start + b) for a, b in (m.span() for m in spans_module._WORD.finditer(text))]
        token_spans += [(start + a, start + b) for a, b in (m.span() for m in tokens.finditer(text))]
    assert found_words == words
    assert found_tokens == token_spans
