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
Per distinct chunk the work is cached (the character n-gram columns come from WordCachedCharTfidf's own cache).
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
from functools import lru_cache
from itertools import accumulate
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.preprocessing import MinMaxScaler

from ..taxonomy import TEXT_CATEGORIES
from ..verdict import Span
from .features import LEXICON_COLUMNS, NUMBER_COLUMNS, FeatureRows, lexicon_features, ngram_windows

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
#: 0.754 for 0.9).
LINEAR_RULE = LinearSpanRule(relative=0.8, floor=1.5)

_WORD = re.compile(r"(?<![\w*@$!'])[\w*@$!']*[^\W_][\w*@$!']*")  # from a run's start only: linear, not quadratic
_CHUNK = re.compile(r"\S+")  # what str.split() returns (same whitespace), with offsets
_CACHE_LIMIT = 200_000


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
    chunk_cache: dict = field(default_factory=dict)
    preprocess: object = None
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
            elif isinstance(transformer, MinMaxScaler) and list(columns) == list(LEXICON_COLUMNS):
                view.lexicon, view.lexicon_slice, view.lexicon_columns = transformer, where, list(columns)
            elif columns == "text" or (not isinstance(columns, str) and "text" in list(columns)):
                readable = False  # something else reads the text: its share would be missing
        vectorizers = [v for v in (view.words, view.chars) if v is not None]
        if vectorizers:
            preprocessors = {(v.lowercase, v.strip_accents, v.preprocessor) for v in vectorizers}
            readable = readable and len(preprocessors) == 1 and vectorizers[0].preprocessor is None
            view.preprocess = vectorizers[0].build_preprocessor()
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


class _Chunk(NamedTuple):
    """A whitespace-free chunk of the preprocessed text, as far as spans are concerned (cached per distinct chunk).

    bounds, content: its words ((start, end) in the chunk) and which are not stop words; char_cols: its character
    n-gram columns; kind: 0 when they all belong to its one word, -1 when it has no word, 1 when it has several,
    and then char_owners and char_weights split each n-gram between the words whose stretch of the chunk it covers
    (a word and the punctuation nearer to it than to another word); tokens: its non-stop word tokens with their
    word, for bigrams; word_cols, word_owners: the unigram columns of those tokens that are in the vocabulary, and
    their words."""

    bounds: np.ndarray
    content: np.ndarray
    n_units: int
    char_cols: np.ndarray
    kind: int
    char_owners: np.ndarray | None
    char_weights: np.ndarray | None
    tokens: tuple
    word_cols: np.ndarray
    word_owners: np.ndarray


@lru_cache(maxsize=8192)
def _one_word(start: int, end: int) -> np.ndarray:
    bounds = np.array([[start, end]], dtype=np.int64)
    bounds.flags.writeable = False  # shared by every chunk with its one word there
    return bounds


_CONTENT, _STOP, _NONE = np.array([True]), np.array([False]), np.zeros(0, dtype=np.int64)
_NO_WORDS, _NO_CONTENT = np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=bool)
for _shared in (_CONTENT, _STOP, _NONE, _NO_WORDS, _NO_CONTENT):
    _shared.flags.writeable = False
_OUR_TOKENS = r"(?u)\b\w[\w'*]*\b"  # features.build_preprocessor's token_pattern


def _chunk_columns(view: LinearView, chunk: str) -> list:
    """The chunk's character n-gram columns (all of them, in sklearn's order)."""
    columns = getattr(view.chars, "_columns", None)  # WordCachedCharTfidf: filled by the model's own transform
    if columns is not None:
        return columns(chunk)
    vocabulary = view.chars.vocabulary_
    return [vocabulary[g] for g in view.chars._char_wb_ngrams(chunk) if g in vocabulary]


def _chunk_info(view: LinearView, chunk: str) -> _Chunk:
    if chunk.isalnum():  # the common case, a plain word: one word ("\w" is exactly str.isalnum() or "_")
        cols = _chunk_columns(view, chunk) if view.chars is not None else []
        if view.words is None:
            tokens = ()
        elif view.token_pattern.pattern == _OUR_TOKENS:  # a run of word characters is one token
            tokens = () if chunk in view.stop_words else ((chunk, 0),)
        else:
            tokens = tuple((m.group(), 0) for m in view.token_pattern.finditer(chunk)
                           if m.group() not in view.stop_words)
        return _Chunk(_one_word(0, len(chunk)), _STOP if chunk in ENGLISH_STOP_WORDS else _CONTENT, 1,
                      np.asarray(cols, dtype=np.int64), 0, None, None, tokens, *_unigrams(view, tokens))
    units = [m.span() for m in _WORD.finditer(chunk)]
    if len(units) <= 1:  # one word and its punctuation ("you,", "@name", "idiot!!!"), or no word at all ("!!!")
        cols = _chunk_columns(view, chunk) if view.chars is not None else []
        start, end = units[0] if units else (0, 0)
        tokens = () if view.words is None else tuple(
            (m.group(), 0 if start <= m.start() < end else -1)
            for m in view.token_pattern.finditer(chunk) if m.group() not in view.stop_words)
        if units:
            bounds, content = _one_word(start, end), _STOP if chunk[start:end] in ENGLISH_STOP_WORDS else _CONTENT
        else:
            bounds, content = _NO_WORDS, _NO_CONTENT
        return _Chunk(bounds, content, len(units), np.asarray(cols, dtype=np.int64), len(units) - 1, None, None,
                      tokens, *_unigrams(view, tokens))
    starts, ends = [u[0] for u in units], [u[1] for u in units]
    content = [chunk[s:e] not in ENGLISH_STOP_WORDS for s, e in units]
    cols, kind, owners, weights = [], 1, None, None
    if view.chars is not None:
        # The chunk's characters are split into one stretch per word: the word and the punctuation nearer to it
        # than to any other word ("you,idiot": "you," and "idiot"), so an n-gram's weight goes to the words whose
        # stretches it covers, in proportion to the characters it has in each.
        size = len(chunk)
        edges = np.array([0] + [end + (start - end + 1) // 2 for (_, end), (start, _) in zip(units, units[1:])]
                         + [size], dtype=np.int64)
        get, padded = view.chars.vocabulary_.get, " " + chunk + " "
        found = [(col, a, b) for a, b in ngram_windows(size + 2, *view.chars.ngram_range)
                 if (col := get(padded[a:b])) is not None]
        found = np.array(found, dtype=np.int64).reshape(len(found), 3)
        # The n-gram's characters in the chunk (padding belongs to none), and the first and last word they touch:
        # one entry per (n-gram, word), in n-gram order, weighted by the n-gram's characters in the word's stretch.
        lo, hi = np.maximum(found[:, 1] - 1, 0), np.minimum(found[:, 2] - 1, size)
        stretch = np.repeat(np.arange(len(units)), np.diff(edges))
        first = stretch[lo]
        repeats = stretch[hi - 1] - first + 1
        entry = np.repeat(np.arange(len(found)), repeats)
        owners = first[entry] + np.arange(entry.size) - np.repeat(np.cumsum(repeats) - repeats, repeats)
        lo, hi = lo[entry], hi[entry]
        cols = found[entry, 0]
        weights = (np.minimum(hi, edges[owners + 1]) - np.maximum(lo, edges[owners])) / (hi - lo)
    tokens = []
    if view.words is not None:
        stop = view.stop_words
        for m in view.token_pattern.finditer(chunk):
            token = m.group()
            if token not in stop:
                u = bisect_right(starts, m.start()) - 1  # a token lies inside one word (its characters are word's)
                tokens.append((token, u if u >= 0 and m.start() < ends[u] else -1))
    return _Chunk(np.asarray(units, dtype=np.int64).reshape(len(units), 2), np.asarray(content, dtype=bool),
                  len(units), np.asarray(cols, dtype=np.int64), kind, owners, weights, tuple(tokens),
                  *_unigrams(view, tokens))


def _unigrams(view: LinearView, tokens) -> tuple[np.ndarray, np.ndarray]:
    if view.words is None or not tokens:
        return _NONE, _NONE
    vocabulary = view.words.vocabulary_
    found = [(vocabulary[t], u) for t, u in tokens if t in vocabulary]
    if not found:
        return _NONE, _NONE
    return np.asarray([c for c, _ in found], dtype=np.int64), np.asarray([u for _, u in found], dtype=np.int64)


def _gathered(arrays: list[np.ndarray], occurrences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.concatenate([arrays[i] for i in occurrences])` (rows of 2-D arrays), and each occurrence's length, from
    one concatenation of the distinct arrays and one gather."""
    sizes = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    if not occurrences.size:
        empty = arrays[0][:0] if arrays else _NONE
        return empty, np.zeros(0, dtype=np.int64)
    flat = np.concatenate(arrays)
    starts = np.cumsum(sizes) - sizes
    per_occurrence = sizes[occurrences]
    ends = np.cumsum(per_occurrence)
    index = np.repeat(starts[occurrences] - (ends - per_occurrence), per_occurrence) + np.arange(ends[-1])
    return flat[index], per_occurrence


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
    cache = view.chunk_cache
    get = cache.get
    n_docs = len(texts)
    # Each chunk occurrence is a slot into `distinct` (this batch's distinct chunks): the per-chunk arrays are put
    # together once per distinct chunk and gathered for the occurrences with numpy, not once per occurrence.
    slots: dict[str, int] = {}
    distinct: dict[str, _Chunk] = {}
    occurrences, bases, chunks_per_doc, lengths, irregular = [], [], [], [], {}
    n_units = 0
    word_docs, word_cols, word_owners, word_weights = [], [], [], []
    words_vocabulary = view.words.vocabulary_ if view.words is not None else {}
    bigrams = view.words is not None and view.words.ngram_range[1] == 2
    for d, text in enumerate(texts):
        lowered = view.preprocess(text) if view.preprocess is not None else text
        if len(lowered) != len(text):  # offsets would not map back: no text shares for this one (lexicon only)
            chunks_per_doc.append(0)
            continue
        parts = lowered.split()  # the chunks sklearn's char_wb analyser reads
        infos = [get(part) for part in parts]
        if None in infos:
            if len(cache) + len(parts) >= _CACHE_LIMIT:
                cache.clear()
            for k, part in enumerate(parts):
                if infos[k] is None:
                    infos[k] = cache[part] = _chunk_info(view, part)
        if " ".join(parts) != lowered:  # not single-spaced: where each chunk starts, found the slow way
            irregular[len(occurrences)] = [m.start() for m in _CHUNK.finditer(lowered)]
        occurrences.extend([slots.setdefault(part, len(slots)) for part in parts])
        distinct.update(zip(parts, infos))  # same order as the slots: first appearance
        lengths.extend(map(len, parts))
        chunks_per_doc.append(len(parts))
        doc_bases = list(accumulate([info.n_units for info in infos], initial=n_units))
        bases.extend(doc_bases[:-1])
        n_units = doc_bases[-1]
        if bigrams:
            tokens = [(t, base + u if u >= 0 else -1) for info, base in zip(infos, doc_bases) for t, u in info.tokens]
            for (a, owner_a), (b, owner_b) in zip(tokens, tokens[1:]):
                col = words_vocabulary.get(a + " " + b)
                if col is not None:  # half to each of its two words
                    word_docs += (d, d)
                    word_cols += (col, col)
                    word_owners += (owner_a, owner_b)
                    word_weights += (0.5, 0.5)
    # Where each chunk starts: after the previous one and one space, within its text (or as found, when irregular)
    steps = np.asarray(lengths, dtype=np.int64) + 1
    ats = np.cumsum(steps) - steps
    doc_chunk_first = np.cumsum(chunks_per_doc) - np.asarray(chunks_per_doc, dtype=np.int64)
    ats -= np.repeat(ats[np.minimum(doc_chunk_first, max(len(ats) - 1, 0))] if len(ats) else doc_chunk_first,
                     chunks_per_doc)
    for first_chunk, positions in irregular.items():
        ats[first_chunk:first_chunk + len(positions)] = positions
    chunk_docs = np.repeat(np.arange(n_docs), chunks_per_doc)
    bases = np.asarray(bases, dtype=np.int64)
    per_chunk = np.diff(np.append(bases, n_units))
    occurrences, distinct = np.asarray(occurrences, dtype=np.int64), list(distinct.values())
    if occurrences.size:
        bounds = _gathered([c.bounds for c in distinct], occurrences)[0] + np.repeat(ats, per_chunk)[:, None]
        content = _gathered([c.content for c in distinct], occurrences)[0]
    else:
        bounds, content = np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=bool)
    starts, ends = bounds[:, 0], bounds[:, 1]
    doc_first = np.searchsorted(np.repeat(chunk_docs, per_chunk), np.arange(n_docs + 1))

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
    if view.chars is not None and occurrences.size:
        cols, lengths = _gathered([c.char_cols for c in distinct], occurrences)
        kinds = np.fromiter((c.kind for c in distinct), dtype=np.int64, count=len(distinct))[occurrences]
        owners = np.repeat(np.where(kinds == 0, bases, -1), lengths)
        weights = np.ones(cols.size)
        offsets = np.cumsum(lengths) - lengths
        for k in np.flatnonzero(kinds == 1).tolist():
            chunk, at, size = distinct[occurrences[k]], int(offsets[k]), int(lengths[k])
            owners[at:at + size] = chunk.char_owners + bases[k]
            weights[at:at + size] = chunk.char_weights
        char_shares, outputs["chars"] = _tfidf_shares(view.chars, np.repeat(chunk_docs, lengths), cols, owners,
                                                      weights, n_docs, n_all, return_outputs)
        shares += char_shares @ view.weights[view.chars_slice]
    if view.words is not None:
        local, counts = _gathered([c.word_owners for c in distinct], occurrences)
        unigram_owners = np.where(local >= 0, local + np.repeat(bases, counts), -1)
        unigram_docs = np.repeat(chunk_docs, counts)
        docs = np.concatenate([unigram_docs, np.asarray(word_docs, dtype=np.int64)])
        cols = np.concatenate([_gathered([c.word_cols for c in distinct], occurrences)[0],
                               np.asarray(word_cols, dtype=np.int64)])
        owners = np.concatenate([unigram_owners, np.asarray(word_owners, dtype=np.int64)])
        weights = np.concatenate([np.ones(unigram_docs.size), np.asarray(word_weights, dtype=float)])
        word_shares, outputs["words"] = _tfidf_shares(view.words, docs, cols, owners, weights, n_docs, n_all,
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
