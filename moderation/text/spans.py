"""Spans that show why: lexicon matches plus the words the model itself leans on.

Linear models (logistic regression, the calibrated linear SVM, least squares) are explained exactly and without
re-scoring: a category's logit is intercept + sum over features of coefficient x feature value, and every feature
of the text part comes from a word, so the logit splits into one share per word (`word_contributions`):
- word TF-IDF: a unigram belongs to its word, a bigram half to each of its two words;
- character TF-IDF (`char_wb`): an n-gram never crosses a space, so it belongs to the word(s) of its chunk (what
  lies between two spaces) that it covers: each word owns its characters and the punctuation nearer to it than
  to another word of the chunk, and an n-gram is shared in proportion to the characters it has in each (a chunk
  with no word at all, "!!!", belongs to none);
- lexicon evidence (min-max scaled): what a category's columns add over a text without matches goes to the
  matches that produced it (the strongest term's weight to the strongest match, the count to every match), and
  from a match to its words.
A feature seen c times in a text gives each occurrence 1/c of its (sublinear, L2-normalised) TF-IDF value, so the
shares add up exactly to the model's logit minus the intercept, the text statistics and the source one-hot (which
belong to no word and are left out). The whole batch is one sparse product: (words x features) @ coefficients.
The batch is read as one string: its words, chunks and character n-grams are found with array operations (the
n-grams as exact integer keys, `features.GramKeys`), never one text or one word at a time.
For the calibrated SVM the explained score is the folds' mean calibrated log-odds (each fold is linear); for least
squares it is the output itself.

Other models (forest, tree, transformer) are explained by occlusion: blank one candidate word of the normalised
text (and drop the lexicon evidence it carried), re-score, and keep the words whose removal lowers a flagged
category's probability the most. At most MAX_OCCLUDED_WORDS candidates per text (the lexicon's words first, then
the longest content words); all variants of a batch go through the model in one call, built as one DataFrame.

Offsets are mapped back through the normaliser's origin map, so `text[start:end]` is exactly what the user wrote
("f.u.c.k", "іdіоt"). Stop words are never model spans: "you" carries harassment statistically, but it is not the
word that offends.
"""
from __future__ import annotations

import re
import weakref
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from itertools import chain
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.preprocessing import MinMaxScaler

from ..taxonomy import TEXT_CATEGORIES
from ..verdict import Span
from .features import (
    LEXICON_COLUMNS,
    NUMBER_COLUMNS,
    TOKEN_PATTERN,
    FeatureRows,
    WordCachedCharTfidf,
    gram_keys,
    lexicon_features,
    preprocessed,
)

#: Occlusion (models that are not linear): candidate words per text, re-scored one variant each.
MAX_OCCLUDED_WORDS = 24
#: Occlusion: a word explains a category when blanking it lowers that category's probability by at least this
#: much...
MIN_DROP = 0.08
#: ...and by at least this share of the largest drop any word in the text causes.
RELATIVE_DROP = 0.5


@dataclass(frozen=True)
class LinearSpanRule:
    """Linear models: a word explains a flagged category when its exact share of the category's logit is at least
    `relative` times the largest share any content word of the text has, and at least `floor` (log-odds; for the
    least-squares baseline, whose outputs are probabilities already, the floor is MIN_DROP)."""

    relative: float
    floor: float


#: The rule the linear models use. The first one carried the occlusion rule over (relative 0.5 = RELATIVE_DROP,
#: floor 0.32 = logit(0.5 + MIN_DROP), the share that moves p = 0.5 by MIN_DROP); this one is chosen on our own
#: span-annotated texts (moderation/data/spans.csv) by `python -m benchmarks.span_rule`, never on SemEval Toxic
#: Spans, which `python -m benchmarks.text_quality` only evaluates. Corpus v3's default chose relative 0.8; the v4
#: refit chose 0.9 (mean char F1 0.755 against 0.753 for 0.8, same floor); the v5 refit 0.8 again (0.759 against
#: 0.754 for 0.9); the v6 refit relative 0.7, floor 0.75 (0.756 against 0.754 for v5's rule).
LINEAR_RULE = LinearSpanRule(relative=0.7, floor=0.75)

#: What a word is made of: word characters and the symbols look-alikes use ("sh!t", "a$$", "f*ck", "sh'it").
_UNIT_CHAR = r"[\w*@$!']"
#: A word: a maximal run of them with a letter or a digit in it (from a run's start only: linear, not quadratic).
_WORD = re.compile(rf"(?<!{_UNIT_CHAR}){_UNIT_CHAR}*[^\W_]{_UNIT_CHAR}*")
_IS_UNIT_CHAR, _IS_ALNUM = re.compile(_UNIT_CHAR), re.compile(r"[^\W_]")
_IS_WORD_CHAR, _IS_TOKEN_CHAR = re.compile(r"\w"), re.compile(r"[\w'*]")


def _lexicon_spans(analysis, flagged) -> list[Span]:
    spans = []
    for m in analysis.matches:
        if m.category in flagged:
            start, end = analysis.normalized.original_span(m.start, m.end)
            spans.append(Span(start, end, m.category, round(min(m.weight, 1.0), 4),
                              m.source))
    return spans


#: Quote marks that sit around a word ("'shit'") rather than in it: a span never starts or ends with one.
_EDGE_QUOTES = "'\"`\u2018\u2019\u201c\u201d"


def _without_edge_quotes(original: str, spans: list[Span]) -> list[Span]:
    """Spans with surrounding quote marks left out: the words allow apostrophes for look-alikes like "sh'it", so
    a quoted word's span took its quotes along."""
    trimmed = []
    for span in spans:
        start, end = span.start, span.end
        while end - start > 1 and original[start] in _EDGE_QUOTES:
            start += 1
        while end - start > 1 and original[end - 1] in _EDGE_QUOTES:
            end -= 1
        trimmed.append(span if (start, end) == (span.start, span.end) else
                       Span(start, end, span.label, span.score, span.source))
    return trimmed


def _merge(spans: list[Span]) -> list[Span]:
    """Merge overlapping spans of the same label, keeping the higher score and both sources."""
    if len(spans) < 2:
        return list(spans)
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.label, s.start, -s.end)):
        last = merged[-1] if merged else None
        if last and last.label == span.label and span.start < last.end:
            sources = "+".join(sorted(set(last.source.split("+")) | set(span.source.split("+"))))
            merged[-1] = Span(last.start, max(last.end, span.end), last.label, max(last.score, span.score), sources)
        else:
            merged.append(span)
    return sorted(merged, key=lambda s: (s.start, s.end, s.label))


# ----------------------------------------------------------------------------------------------------------------
# Linear models: the exact decomposition of the logit into words
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class LinearView:
    """What a linear pipeline's logits are made of: coefficients (features x categories) and where each part of
    the ColumnTransformer's output lies. `scale` is "logit" (a sigmoid follows) or "probability" (least squares)."""

    weights: np.ndarray
    scale: str
    words: TfidfVectorizer | None = None
    words_slice: slice | None = None
    chars: TfidfVectorizer | None = None
    chars_slice: slice | None = None
    lexicon: MinMaxScaler | None = None
    lexicon_slice: slice | None = None
    lexicon_columns: list = field(default_factory=list)
    reader: TfidfVectorizer | None = None  # the vectorizer whose preprocessing the text parts share
    token_pattern: object = None
    stop_words: frozenset = frozenset()


_views: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _category_weights(clf):
    """(features x categories) coefficients of the model's log-odds (or of its outputs, for least squares), and the
    scale; None when the classifier is not one we can read as linear."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    if hasattr(clf, "regressor_") and hasattr(clf.regressor_, "coef_"):  # ThresholdedLinearRegression
        coef = np.atleast_2d(np.asarray(clf.regressor_.coef_, dtype=float))
        return (coef.T if coef.shape[0] == len(TEXT_CATEGORIES) else None), "probability"
    if not isinstance(clf, OneVsRestClassifier) or len(clf.estimators_) != len(TEXT_CATEGORIES):
        return None, None
    columns, n_features = [], None
    for estimator in clf.estimators_:
        if isinstance(estimator, LogisticRegression) and estimator.coef_.shape[0] == 1:
            column = np.asarray(estimator.coef_[0], dtype=float)
        elif isinstance(estimator, CalibratedClassifierCV):
            # Each fold's probability is expit(-(a * decision + b)): its log-odds are linear with weights -a * coef.
            # The folds' probabilities are averaged; their mean log-odds is the linear surrogate we explain.
            parts = []
            for calibrated in estimator.calibrated_classifiers_:
                inner, calibrators = calibrated.estimator, calibrated.calibrators
                if not isinstance(inner, LinearSVC) or len(calibrators) != 1 or not hasattr(calibrators[0], "a_"):
                    return None, None
                parts.append(-calibrators[0].a_ * np.asarray(inner.coef_[0], dtype=float))
            column = np.mean(parts, axis=0)
        elif hasattr(estimator, "y_") and not hasattr(estimator, "coef_"):  # a category constant in training
            column = None
        else:
            return None, None
        columns.append(column)
        if column is not None:
            n_features = column.size
    if n_features is None:
        return None, None
    return np.column_stack([c if c is not None else np.zeros(n_features) for c in columns]), "logit"


def linear_view(model) -> LinearView | None:
    """The LinearView of `model` (a TrainedModel), or None when it is not a linear pipeline over our features."""
    from sklearn.compose import ColumnTransformer

    pipeline = getattr(model, "pipeline", None)
    if pipeline is None or not hasattr(pipeline, "steps") or len(pipeline.steps) != 2:
        return None
    try:
        return _views[pipeline]
    except (KeyError, TypeError):
        pass
    view = None
    features, clf = pipeline.steps[0][1], pipeline.steps[1][1]
    weights, scale = _category_weights(clf) if isinstance(features, ColumnTransformer) else (None, None)
    if weights is not None and weights.shape[0] == sum(s.stop - s.start for s in features.output_indices_.values()):
        view = LinearView(weights=weights, scale=scale)
        readable = True
        for name, transformer, columns in features.transformers_:
            where = features.output_indices_.get(name)
            if where is None or where.stop == where.start:
                continue
            if isinstance(transformer, TfidfVectorizer) and columns == "text":
                if transformer.analyzer == "word" and view.words is None:
                    view.words, view.words_slice = transformer, where
                elif transformer.analyzer == "char_wb" and view.chars is None:
                    view.chars, view.chars_slice = transformer, where
                else:
                    readable = False
                if transformer.norm not in ("l2", "l1", None) or transformer.binary:
                    readable = False
                if transformer.analyzer == "char_wb" and (not isinstance(transformer, WordCachedCharTfidf)
                                                          or not 2 <= transformer.ngram_range[0] <= 3
                                                          or gram_keys(transformer) is None):
                    readable = False  # no per-chunk columns, n-grams of one character, words shorter than min n
            elif isinstance(transformer, MinMaxScaler) and list(columns) == list(LEXICON_COLUMNS):
                view.lexicon, view.lexicon_slice, view.lexicon_columns = transformer, where, list(columns)
            elif columns == "text" or (not isinstance(columns, str) and "text" in list(columns)):
                readable = False  # something else reads the text: its share would be missing
        vectorizers = [v for v in (view.words, view.chars) if v is not None]
        if vectorizers:
            preprocessors = {(v.lowercase, v.strip_accents, v.preprocessor) for v in vectorizers}
            readable = readable and len(preprocessors) == 1 and vectorizers[0].preprocessor is None
            view.reader = vectorizers[0]
        if view.words is not None:
            view.token_pattern = re.compile(view.words.token_pattern)
            view.stop_words = frozenset(view.words.get_stop_words() or ())
            readable = readable and view.token_pattern.groups == 0 and view.words.tokenizer is None \
                and tuple(view.words.ngram_range) in ((1, 1), (1, 2))
        view = view if readable else None
    try:
        _views[pipeline] = view
    except TypeError:
        pass
    return view


class _Layout(NamedTuple):
    """Where a batch's chunks (what lies between whitespace: the pieces char_wb pads) and words lie in the one
    string of its texts, each text after a newline, and which text each is in."""

    text: str
    doc_starts: np.ndarray
    space: np.ndarray  # per character of `text`
    chunk_starts: np.ndarray
    chunk_ends: np.ndarray
    unit_starts: np.ndarray
    unit_ends: np.ndarray
    unit_chunks: np.ndarray
    token_starts: np.ndarray  # the tokens of `features.build_preprocessor`'s token pattern (`TOKEN_PATTERN`)
    token_ends: np.ndarray


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends of the runs of True in `mask` (False at both ends)."""
    steps = np.diff(mask.astype(np.int8))
    return np.flatnonzero(steps == 1) + 1, np.flatnonzero(steps == -1) + 1


def _layout(texts: list[str]) -> _Layout:
    """A word is a maximal run of `_UNIT_CHAR` characters with a letter or digit in it (what `_WORD` finds); the
    character classes are looked up once per distinct character of the batch."""
    text = "\n" + "\n".join(texts) + "\n"
    doc_starts = np.cumsum([1] + [len(t) + 1 for t in texts[:-1]]) if texts else np.zeros(0, dtype=np.int64)
    distinct = set(text)
    table = np.zeros(max(map(ord, distinct)) + 1, dtype=np.uint8)
    for ch in distinct:
        in_word, alnum = _IS_UNIT_CHAR.match(ch) is not None, _IS_ALNUM.match(ch) is not None
        word_char, token_char = _IS_WORD_CHAR.match(ch) is not None, _IS_TOKEN_CHAR.match(ch) is not None
        table[ord(ch)] = ch.isspace() | in_word << 1 | alnum << 2 | word_char << 3 | token_char << 4
    classes = table[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)]
    space, alnum = (classes & 1).astype(bool), (classes & 4).astype(bool)
    chunk_starts, chunk_ends = _runs(~space)
    run_starts, run_ends = _runs((classes & 2).astype(bool))
    alnum_before = np.r_[0, np.cumsum(alnum)]
    has_alnum = alnum_before[run_ends] > alnum_before[run_starts]
    unit_starts, unit_ends = run_starts[has_alnum], run_ends[has_alnum]
    unit_chunks = np.searchsorted(chunk_starts, unit_starts, side="right") - 1
    # `TOKEN_PATTERN` finds one token in each run of [\w'*] with a word character in it: from its first word
    # character (a boundary: only "'" or "*" come before it in the run) to its last (the last boundary in the run)
    word_at = np.flatnonzero(classes & 8)
    run_starts, run_ends = _runs((classes & 16).astype(bool))
    firsts, lasts = np.searchsorted(word_at, run_starts), np.searchsorted(word_at, run_ends) - 1
    has_word = firsts <= lasts
    return _Layout(text, doc_starts, space, chunk_starts, chunk_ends, unit_starts, unit_ends, unit_chunks,
                   word_at[firsts[has_word]], word_at[lasts[has_word]] + 1)


def _spread(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]) in one step."""
    sizes = ends - starts
    return np.arange(int(sizes.sum())) + np.repeat(starts - (np.cumsum(sizes) - sizes), sizes)


def _char_entries(view: LinearView, layout: _Layout):
    """One entry per (character n-gram occurrence in the vocabulary, word it belongs to): its text, column, word
    (-1: a chunk with no word) and weight. A chunk of one word gives it all its n-grams, whose columns the
    vectorizer keeps per distinct chunk; in a chunk of several, an n-gram belongs to the words whose stretch (the
    word and the punctuation nearer to it than to another word: "you," and "idiot" in "you,idiot") holds its
    characters, in proportion to the characters it has in each (padding belongs to none)."""
    text, chunk_starts, chunk_ends = layout.text, layout.chunk_starts, layout.chunk_ends
    unit_chunks, n_chunks, n_units = layout.unit_chunks, chunk_starts.size, layout.unit_starts.size
    chunk_docs = np.searchsorted(layout.doc_starts, chunk_starts, side="right") - 1
    words_in_chunk = np.bincount(unit_chunks, minlength=n_chunks)
    simple, several = np.flatnonzero(words_in_chunk <= 1), np.flatnonzero(words_in_chunk > 1)
    # Chunks of one word (or none): their columns, gathered per occurrence from one array of the distinct ones.
    slots: dict[str, int] = {}
    occurrence = np.fromiter((slots.setdefault(text[a:b], len(slots)) for a, b in
                              zip(chunk_starts[simple].tolist(), chunk_ends[simple].tolist())),
                             dtype=np.int64, count=simple.size)
    columns = view.chars.word_columns(list(slots))
    sizes = np.fromiter(map(len, columns), dtype=np.int64, count=len(columns))
    flat = np.fromiter(chain.from_iterable(columns), dtype=np.int64, count=int(sizes.sum()))
    first_column, per_occurrence = np.cumsum(sizes) - sizes, sizes[occurrence]
    word_of_chunk = np.full(n_chunks, -1, dtype=np.int64)
    word_of_chunk[unit_chunks] = np.arange(n_units)  # the one word of a chunk of one word
    parts = [(np.repeat(chunk_docs[simple], per_occurrence),
              flat[_spread(first_column[occurrence], first_column[occurrence] + per_occurrence)],
              np.repeat(word_of_chunk[simple], per_occurrence), np.ones(int(per_occurrence.sum())))]
    if several.size:
        parts.append(_shared_char_entries(view, layout, several, chunk_docs))
    return tuple(np.concatenate(column) for column in zip(*parts))


def _shared_char_entries(view: LinearView, layout: _Layout, chunks: np.ndarray, chunk_docs: np.ndarray):
    """`_char_entries` of the chunks of several words (`chunks`), from the batch's string: every window of n
    characters that starts on a chunk's padding space or on one of its characters, as one integer key each."""
    keys = gram_keys(view.chars)
    min_n, max_n = view.chars.ngram_range
    chunk_starts, chunk_ends = layout.chunk_starts, layout.chunk_ends
    ranks = keys.ranks(layout.text)
    ranks[layout.space] = keys.ranks(" ")[0]  # every chunk is padded with a space each side
    size = ranks.size
    chunk_of = np.full(size, -1, dtype=np.int64)
    chunk_of[_spread(chunk_starts[chunks] - 1, chunk_ends[chunks])] = np.repeat(
        chunks, chunk_ends[chunks] - chunk_starts[chunks] + 1)
    limit = np.where(chunk_of >= 0, chunk_ends[np.maximum(chunk_of, 0)] + 1, 0)
    starts, sizes, grams = keys.windows(ranks, limit, range(min_n, max_n + 1))
    cols = keys.columns(grams)
    hit = cols >= 0
    starts, sizes, cols = starts[hit], sizes[hit], cols[hit]
    owner_chunks = chunk_of[starts]
    lo, hi = np.maximum(starts, chunk_starts[owner_chunks]), np.minimum(starts + sizes, chunk_ends[owner_chunks])
    unit_starts, unit_ends, unit_chunks = layout.unit_starts, layout.unit_ends, layout.unit_chunks
    same_chunk = unit_chunks[:-1] == unit_chunks[1:]
    middle = unit_ends[:-1] + (unit_starts[1:] - unit_ends[:-1] + 1) // 2
    stretch_ends, stretch_starts = chunk_ends[unit_chunks], chunk_starts[unit_chunks]
    stretch_ends[:-1][same_chunk], stretch_starts[1:][same_chunk] = middle[same_chunk], middle[same_chunk]
    stretch_of = np.full(size, -1, dtype=np.int64)
    stretch_of[_spread(stretch_starts, stretch_ends)] = np.repeat(np.arange(unit_starts.size),
                                                                  stretch_ends - stretch_starts)
    first = stretch_of[lo]
    repeats = stretch_of[hi - 1] - first + 1
    entry = np.repeat(np.arange(cols.size), repeats)
    owners = first[entry] + np.arange(entry.size) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    lo, hi = lo[entry], hi[entry]
    inside = np.minimum(hi, stretch_ends[owners]) - np.maximum(lo, stretch_starts[owners])
    return chunk_docs[owner_chunks][entry], cols[entry], owners, inside / (hi - lo)


def _word_entries(view: LinearView, layout: _Layout):
    """One entry per (word unigram or bigram occurrence in the vocabulary, word it belongs to): a unigram to the word
    its token starts in, a bigram half to each of its tokens' words (stop words go before bigrams are formed)."""
    vocabulary, stop = view.words.vocabulary_, view.stop_words
    text = layout.text
    if view.token_pattern.pattern == TOKEN_PATTERN:
        found = [(a, text[a:b]) for a, b in zip(layout.token_starts.tolist(), layout.token_ends.tolist())]
    else:
        found = [(m.start(), m.group()) for m in view.token_pattern.finditer(text)]
    tokens = [token for _, token in found if token not in stop]
    at = np.fromiter((start for start, token in found if token not in stop), dtype=np.int64, count=len(tokens))
    docs = np.searchsorted(layout.doc_starts, at, side="right") - 1
    unit_starts, unit_ends = layout.unit_starts, layout.unit_ends
    if unit_starts.size:
        u = np.searchsorted(unit_starts, at, side="right") - 1
        owners = np.where((u >= 0) & (at < unit_ends[np.maximum(u, 0)]), u, -1)
    else:
        owners = np.full(at.size, -1, dtype=np.int64)
    unigrams = np.fromiter((vocabulary.get(t, -1) for t in tokens), dtype=np.int64, count=len(tokens))
    parts = [(docs, unigrams, owners, np.ones(at.size))]
    if view.words.ngram_range[1] == 2 and len(tokens) > 1:
        bigrams = np.fromiter((vocabulary.get(a + " " + b, -1) for a, b in zip(tokens, tokens[1:])),
                              dtype=np.int64, count=len(tokens) - 1)
        bigrams[docs[:-1] != docs[1:]] = -1
        parts += [(docs[:-1], bigrams, owners[:-1], np.full(bigrams.size, 0.5)),
                  (docs[1:], bigrams, owners[1:], np.full(bigrams.size, 0.5))]
    docs, cols, owners, weights = (np.concatenate(column) for column in zip(*parts))
    kept = cols >= 0
    return docs[kept], cols[kept], owners[kept], weights[kept]


def _tfidf_shares(vectorizer, docs, cols, owners, weights, n_docs, n_units, with_output: bool = False):
    """(units x vocabulary) matrix of each word's share of the vectorizer's output, and with `with_output` the
    output itself (docs x vocabulary, equal to `vectorizer.transform`; else None). One entry per (occurrence, word)
    pair; an occurrence's weights sum to one, so summing them per (doc, column) gives the counts."""
    width = len(vectorizer.vocabulary_)
    if cols.size == 0:
        return sp.csr_matrix((n_units, width)), sp.csr_matrix((n_docs, width)) if with_output else None
    keys = docs * width + cols
    order = np.argsort(keys, kind="stable")  # np.unique's sort, but this one is several times faster on int64
    ordered = keys[order]
    new_key = np.empty(ordered.size, dtype=bool)
    new_key[0], new_key[1:] = True, ordered[1:] != ordered[:-1]
    unique = ordered[new_key]
    inverse = np.empty(keys.size, dtype=np.int64)
    inverse[order] = np.cumsum(new_key) - 1
    counts = np.rint(np.bincount(inverse, weights=weights))
    u_docs, u_cols = unique // width, unique % width
    values = (np.log(counts) + 1.0) if vectorizer.sublinear_tf else counts.copy()
    if vectorizer.use_idf:
        values *= vectorizer.idf_[u_cols]
    if vectorizer.norm == "l2":
        norms = np.sqrt(np.bincount(u_docs, weights=values * values, minlength=n_docs))
    elif vectorizer.norm == "l1":
        norms = np.bincount(u_docs, weights=np.abs(values), minlength=n_docs)
    else:
        norms = np.ones(n_docs)
    norms[norms == 0] = 1.0
    values /= norms[u_docs]
    output = sp.csr_matrix((values, (u_docs, u_cols)), shape=(n_docs, width)) if with_output else None
    share = weights * (values / counts)[inverse]
    keep = owners >= 0
    shares = sp.csr_matrix((share[keep], (owners[keep], cols[keep])), shape=(n_units, width))
    return shares, output


@dataclass
class Contributions:
    """Per explained text: its words (starts and ends in the normalised text), which are content words (not stop
    words), and their exact shares of every category's logit (words x categories)."""

    starts: np.ndarray
    ends: np.ndarray
    content: np.ndarray
    shares: np.ndarray

    @property
    def units(self) -> list[tuple[int, int]]:
        return list(zip(self.starts.tolist(), self.ends.tolist()))


@dataclass
class BatchContributions:
    """Contributions of a batch in one piece: text d's words are rows doc_first[d]:doc_first[d + 1]."""

    starts: np.ndarray
    ends: np.ndarray
    content: np.ndarray
    shares: np.ndarray
    doc_first: np.ndarray


def word_contributions(view: LinearView, texts, analyses, lexicon_values, return_outputs: bool = False,
                       per_text: bool = True):
    """Exact per-word shares of each category's logit for `texts` (what the model read), a list of Contributions
    (or, with per_text=False, one BatchContributions for them all).

    lexicon_values: the raw lexicon columns of those texts (texts x LEXICON_COLUMNS). With return_outputs, also the
    reconstructed TF-IDF outputs {"words": ..., "chars": ...} (tests check them against the vectorizers)."""
    n_docs = len(texts)
    lowered = preprocessed(view.reader, texts) if view.reader is not None else list(texts)
    # offsets of a text whose lower-casing changes its length would not map back: no text shares (lexicon only)
    layout = _layout([low if len(low) == len(text) else "" for low, text in zip(lowered, texts)])
    unit_docs = np.searchsorted(layout.doc_starts, layout.unit_starts, side="right") - 1
    starts, ends = layout.unit_starts - layout.doc_starts[unit_docs], layout.unit_ends - layout.doc_starts[unit_docs]
    content = np.fromiter((layout.text[a:b] not in ENGLISH_STOP_WORDS for a, b in
                           zip(layout.unit_starts.tolist(), layout.unit_ends.tolist())), dtype=bool, count=starts.size)
    n_units = starts.size
    doc_first = np.searchsorted(unit_docs, np.arange(n_docs + 1))

    # Lexicon matches: to the words they overlap, or (past what the model reads, or on no word) a word of their own.
    match_units, extra = [], []  # per doc: [(match, [(unit, fraction), ...])]; extra: (doc, start, end)
    for d, analysis in enumerate(analyses):
        owned = []
        if analysis.matches:
            first, last = int(doc_first[d]), int(doc_first[d + 1])
            word_starts, word_ends = starts[first:last].tolist(), ends[first:last].tolist()
            for match in analysis.matches:
                lo, hi = bisect_right(word_ends, match.start), bisect_left(word_starts, match.end)
                pieces = [(first + u, min(word_ends[u], match.end) - max(word_starts[u], match.start))
                          for u in range(lo, hi)]
                pieces = [(u, n) for u, n in pieces if n > 0]
                # "kill yourself": the evidence goes to "kill", not to the stop word that can never be a span
                pieces = [(u, n) for u, n in pieces if content[u]] or pieces
                if not pieces:
                    pieces = [(n_units + len(extra), 1)]
                    extra.append((d, match.start, match.end))
                total = sum(n for _, n in pieces)
                owned.append((match, [(u, n / total) for u, n in pieces]))
        match_units.append(owned)
    n_all = n_units + len(extra)

    n_categories = view.weights.shape[1]
    shares = np.zeros((n_all, n_categories))
    outputs = {}
    if view.chars is not None:
        char_shares, outputs["chars"] = _tfidf_shares(view.chars, *_char_entries(view, layout), n_docs, n_all,
                                                      return_outputs)
        shares += char_shares @ view.weights[view.chars_slice]
    if view.words is not None:
        word_shares, outputs["words"] = _tfidf_shares(view.words, *_word_entries(view, layout), n_docs, n_all,
                                                      return_outputs)
        shares += word_shares @ view.weights[view.words_slice]
    if view.lexicon is not None and any(match_units):
        scaler = view.lexicon
        raw = np.asarray(lexicon_values, dtype=float).reshape(n_docs, len(view.lexicon_columns))
        low, high = scaler.feature_range
        scaled, baseline = raw * scaler.scale_ + scaler.min_, np.zeros_like(raw) * scaler.scale_ + scaler.min_
        if scaler.clip:
            scaled, baseline = np.clip(scaled, low, high), np.clip(baseline, low, high)
        delta = scaled - baseline
        lexicon_weights = view.weights[view.lexicon_slice]
        column_of = {name: j for j, name in enumerate(view.lexicon_columns)}
        for d, owned in enumerate(match_units):
            by_category = {}
            for match, pieces in owned:
                by_category.setdefault(match.category, []).append((match, pieces))
            for category, entries in by_category.items():
                strongest = max(m.weight for m, _ in entries)
                top = [p for m, p in entries if m.weight == strongest]  # the strongest term's weight: its match(es)
                for name, receivers in ((f"lex_{category}", top), (f"lexn_{category}", [p for _, p in entries])):
                    j = column_of.get(name)
                    if j is None or not delta[d, j]:
                        continue
                    part = delta[d, j] * lexicon_weights[j] / len(receivers)
                    for pieces in receivers:
                        for u, fraction in pieces:
                            shares[u] += fraction * part

    if extra:  # a word of its own for a match on no word: put it with its text's words (doc order)
        extra_docs = np.asarray([d for d, _, _ in extra], dtype=np.int64)
        full_texts = [analyses[d].model_text for d, _, _ in extra]
        order = np.argsort(np.r_[np.repeat(np.arange(n_docs), np.diff(doc_first)), extra_docs], kind="stable")
        starts = np.r_[starts, [s for _, s, _ in extra]].astype(np.int64)[order]
        ends = np.r_[ends, [e for _, _, e in extra]].astype(np.int64)[order]
        content = np.r_[content, [t[s:e] not in ENGLISH_STOP_WORDS for t, (_, s, e) in zip(full_texts, extra)]
                        ].astype(bool)[order]
        shares = shares[order]
        doc_first = doc_first + np.searchsorted(np.sort(extra_docs), np.arange(n_docs + 1))
    batch = BatchContributions(starts, ends, content, shares, doc_first)
    if not per_text:
        return batch
    results = [Contributions(starts[first:last], ends[first:last], content[first:last], shares[first:last])
               for first, last in zip(doc_first[:-1].tolist(), doc_first[1:].tolist())]
    return (results, outputs) if return_outputs else results


def _linear_spans(view, batch: BatchContributions, analyses, flagged_sets) -> list[list[Span]]:
    """Per text, the content words that LINEAR_RULE keeps for each flagged category; score: the word's part of the
    positive shares of content words."""
    n_docs = len(flagged_sets)
    out = [[] for _ in range(n_docs)]
    counts = np.diff(batch.doc_first)
    if not counts.sum():
        return out
    rule = LINEAR_RULE  # read at call time: benchmarks.span_rule compares rules through the public API
    floor = rule.floor if view.scale == "logit" else MIN_DROP
    flagged = np.zeros((n_docs, len(TEXT_CATEGORIES)), dtype=bool)
    for d, categories in enumerate(flagged_sets):
        for category in categories:
            flagged[d, TEXT_CATEGORIES.index(category)] = True
    masked = np.where(batch.content[:, None], batch.shares, -np.inf)
    nonempty = counts > 0
    firsts = batch.doc_first[:-1][nonempty]
    best = np.full(flagged.shape, -np.inf)
    evidence = np.zeros(flagged.shape)
    best[nonempty] = np.maximum.reduceat(masked, firsts, axis=0)
    evidence[nonempty] = np.add.reduceat(np.where(masked > 0, masked, 0.0), firsts, axis=0)
    bar = np.maximum(floor, rule.relative * best)
    keep = flagged & (best >= bar)
    unit_docs = np.repeat(np.arange(n_docs), counts)
    units, ks = np.nonzero(keep[unit_docs] & (masked >= bar[unit_docs]))
    if not units.size:
        return out
    docs = unit_docs[units]
    scores = np.minimum(masked[units, ks] / evidence[docs, ks], 1.0).round(4)
    for d, u, k, score in zip(docs.tolist(), units.tolist(), ks.tolist(), scores.tolist()):
        o_start, o_end = analyses[d].normalized.original_span(int(batch.starts[u]), int(batch.ends[u]))
        out[d].append(Span(o_start, o_end, TEXT_CATEGORIES[k], score, "model"))
    return out


# ----------------------------------------------------------------------------------------------------------------
# Other models: occlusion of a few candidate words
# ----------------------------------------------------------------------------------------------------------------


def _candidates(analysis, model_text: str, ranking=None, limit: int = MAX_OCCLUDED_WORDS) -> list[tuple[int, int]]:
    """At most `limit` words to occlude: the lexicon's words first, then by `ranking` (word -> score,
    e.g. a linear model's contribution) when given, else the longest content words."""
    words = [m.span() for m in _WORD.finditer(model_text) if m.group(0) not in ENGLISH_STOP_WORDS]
    starts = [s for s, _ in words]
    chosen, seen = [], set()
    for match in analysis.matches:
        lo = max(bisect_right(starts, match.start) - 1, 0)
        hits = [w for w in words[lo:bisect_left(starts, match.end)] if w[1] > match.start and w[0] < match.end]
        for word in hits or [(match.start, match.end)]:
            if word not in seen:
                seen.add(word), chosen.append(word)
    rest = [w for w in words if w not in seen]
    if ranking is not None:
        rest.sort(key=lambda w: -ranking.get(w, 0.0))
    else:
        rest.sort(key=lambda w: -(w[1] - w[0]))
    return (chosen + rest)[:limit]


def _occlusion_spans(model, rows: FeatureRows, analyses, proba, flagged_sets, indices, spans,
                     limit: int = MAX_OCCLUDED_WORDS) -> None:
    texts = rows.texts
    owners, words_per_text, variant_texts, variant_lexicon = [], {}, [], []
    for i in indices:
        analysis, model_text = analyses[i], texts[i]
        words = _candidates(analysis, model_text, limit=limit)
        words_per_text[i] = (words, len(variant_texts))
        for start, end in words:
            if start < len(model_text):
                end_in = min(end, len(model_text))
                variant_texts.append(model_text[:start] + " " * (end_in - start) + model_text[end_in:])
            else:  # a lexicon match past what the model reads: only its evidence goes
                variant_texts.append(model_text)
            variant_lexicon.append(lexicon_features([m for m in analysis.matches if m.end <= start or m.start >= end]))
        owners.extend([i] * len(words))
    if not variant_texts:
        return
    numbers = None
    if rows.numbers is not None:  # one set of rows for the batch, not one per word
        numbers = rows.numbers[owners]
        numbers[:, [NUMBER_COLUMNS.index(c) for c in LEXICON_COLUMNS]] = np.asarray(variant_lexicon, dtype=float)
    variants = FeatureRows(variant_texts, numbers, [rows.sources[i] for i in owners])
    variant_proba = model.predict_proba(variants)
    for i, (words, offset) in words_per_text.items():
        drops = proba[i] - variant_proba[offset:offset + len(words)]
        analysis = analyses[i]
        for category in flagged_sets[i]:
            k = TEXT_CATEGORIES.index(category)
            column = drops[:, k]
            if column.size == 0:
                continue
            bar = max(MIN_DROP, RELATIVE_DROP * float(column.max()))
            for (start, end), drop in zip(words, column):
                if drop >= bar:
                    o_start, o_end = analysis.normalized.original_span(start, end)
                    spans[i].append(Span(o_start, o_end, category,
                                         round(float(min(drop / proba[i, k], 1.0)), 4), "model"))


def explain(model, analyses, rows, proba, flagged_sets, occlusion: bool = True,
            model_flagged_sets=None) -> list[list[Span]]:
    """Spans for every text: lexicon spans of flagged categories, plus the model's own (exact shares of a linear
    model's logit, occlusion otherwise) when `occlusion`, for the categories the model itself flagged
    (`model_flagged_sets`, default `flagged_sets`: a category flagged only by a caller's blocklist term has no model
    words to show). Scores are never changed here.

    rows: the FeatureRows (or feature frame) the model scored (its texts are what the model read, the lexicon columns
    its evidence); occlusion re-scores variants of them, the linear decomposition reads those two parts."""
    rows = FeatureRows.of(rows)
    spans = [_lexicon_spans(a, set(flagged)) for a, flagged in zip(analyses, flagged_sets)]
    if not occlusion:
        return [_merge(_without_edge_quotes(a.normalized.original, s)) for a, s in zip(analyses, spans)]
    flagged_sets = flagged_sets if model_flagged_sets is None else model_flagged_sets
    indices = [i for i, flagged in enumerate(flagged_sets) if flagged and analyses[i].normalized.text.strip()]
    if indices:
        view = linear_view(model)
        if view is not None:
            model_texts = rows.texts
            lexicon_values = rows.columns(view.lexicon_columns)[indices] if view.lexicon is not None else None
            chosen = [analyses[i] for i in indices]
            batch = word_contributions(view, [model_texts[i] for i in indices], chosen, lexicon_values, per_text=False)
            for i, model_spans in zip(indices, _linear_spans(view, batch, chosen, [flagged_sets[i] for i in indices])):
                spans[i].extend(model_spans)
        elif hasattr(model, "model_spans"):  # models made of others (the cascade: whichever stage decided)
            own = model.model_spans(rows, analyses, indices, [flagged_sets[i] for i in indices])
            for i, model_spans in zip(indices, own):
                spans[i].extend(model_spans)
        else:  # a model may ask for fewer candidates (finetuned: each one is a full transformer pass)
            _occlusion_spans(model, rows, analyses, proba, flagged_sets, indices, spans,
                             limit=getattr(model, "occlusion_candidates", MAX_OCCLUDED_WORDS))
    return [_merge(_without_edge_quotes(a.normalized.original, s)) for a, s in zip(analyses, spans)]
