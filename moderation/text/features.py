"""From raw texts to the feature frame every classical model reads, and the ColumnTransformer over it.

`analyze` runs the normaliser and the lexicon once per text; the frame it builds holds the normalised text
(for word and character TF-IDF), numeric text statistics (scaled), lexicon evidence per category (scaled) and
the text's source (one-hot). The same frame feeds training, prediction and span occlusion, so the model sees
exactly what the spans explain.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder
from sklearn.preprocessing import normalize as normalize_rows
from sklearn.utils.validation import check_is_fitted

from ..lexicon import Lexicon, LexiconMatch, default_lexicon
from ..normalize import Normalized, normalize
from ..taxonomy import TEXT_CATEGORIES

UNKNOWN_SOURCE = "unknown"
# Host labels and amounts have a bounded length: an unbounded run, tried from every position of a long run of
# letters and hyphens or of digits, made the regex engine re-read the run each time (20,000 digits took a minute).
_URL = re.compile(r"https?://|www\.|\b[a-z0-9-]{1,63}\.(?:com|net|org|co|uk|ly|io|info|biz|xyz)\b", re.I)
_PHONE = re.compile(r"(?:\+?\d[\d\s-]{6,}\d)")
_DIGIT = re.compile(r"\d")
_REPEATED_PUNCT = re.compile(r"([!?.])\1{1,}")
_MONEY = re.compile(r"[£$€]\s?\d|\d{1,12}\s?(?:p|pence|usd|gbp)\b", re.I)
_WORD = re.compile(r"\w+")

STAT_COLUMNS = [
    "length_log", "caps_ratio", "digit_ratio", "url_count", "phone_count", "money_count",
    "repeated_punct", "obfuscation_ratio", "word_count_log",
]
LEXICON_COLUMNS = [f"lex_{c}" for c in TEXT_CATEGORIES] + [f"lexn_{c}" for c in TEXT_CATEGORIES]


@dataclass(frozen=True)
class Analysis:
    """One text after normalisation and lexicon matching (computed once, used for features and spans)."""

    normalized: Normalized
    matches: tuple[LexiconMatch, ...]
    model_text: str  # normalised text with allowlisted words blanked out


def analyze(text: str, lexicon: Lexicon | None = None) -> Analysis:
    lexicon = lexicon or default_lexicon()
    norm = normalize(text)
    allowed = lexicon.allowed_spans(norm.text)  # one pass of the allowlist serves both matching and blanking
    return Analysis(norm, tuple(lexicon.find(norm.text, allowed)), lexicon.blank_allowed(norm.text, allowed))


def text_statistics(text: str, norm: Normalized) -> list[float]:
    """Numeric signals that n-grams miss: shouting, numbers, links, phones, money, stretched punctuation, evasion."""
    if text.isascii():  # most texts: counting with C-level maps gives the same figures several times faster
        letters = sum(map(str.isalpha, text))
        caps = sum(map(str.isupper, text)) / letters if letters else 0.0
    else:
        letters_list = [c for c in text if c.isalpha()]
        caps = sum(c.isupper() for c in letters_list) / len(letters_list) if letters_list else 0.0
    digit_count = len(_DIGIT.findall(text))
    # Each pattern is tried only where it can match (a link needs a "." or a "://", a phone number two digits, an
    # amount one): the counts are the same, without the regex engine trying every position of every text.
    urls = len(_URL.findall(text)) if "." in text or "://" in text else 0
    phones = len(_PHONE.findall(text)) if digit_count >= 2 else 0
    amounts = len(_MONEY.findall(text)) if digit_count else 0
    return [
        float(np.log1p(len(text))), caps, digit_count / len(text) if text else 0.0,
        float(urls), float(phones), float(amounts),
        float(len(_REPEATED_PUNCT.findall(text))), obfuscation_ratio(text, norm),
        float(np.log1p(len(_WORD.findall(text)))),
    ]


def obfuscation_ratio(text: str, norm: Normalized) -> float:
    """The share of characters the normaliser had to change or remove *inside words*: high for "sh1t", "f.u.c.k",
    "fuuuuck" or a zero-width space inside "fuck"; zero for invisible characters around or between words, which
    hide nothing (a greeting followed by fifteen zero-width spaces read as obfuscated spam, harassment, self-harm)."""
    if text.isascii() and norm.text == text.lower():  # only lower-cased: nothing changed, nothing dropped
        return 0.0
    origin, normalized = norm.origin, norm.text
    if text.isascii():  # one character's casefold is then its lower case, and C-level maps compare them
        changed = sum(map(str.__ne__, normalized, map(text.lower().__getitem__, origin)))
    else:
        changed = sum(1 for a, i in zip(normalized, origin) if a != text[i].casefold())
    steps = np.diff(np.asarray(origin, dtype=np.int64)) if len(origin) > 1 else np.zeros(0, dtype=np.int64)
    removed_inside_words = sum(
        int(steps[k]) - 1
        for k in np.flatnonzero(steps > 1).tolist()
        if normalized[k].isalnum() and normalized[k + 1].isalnum()
    )
    return min((changed + removed_inside_words) / max(len(text), 1), 1.0)


def lexicon_features(matches) -> list[float]:
    """Per category: the strongest matching bundled term's weight, and how many bundled terms matched.

    A caller's blocklist terms are left out: they decide their own category whatever the model says, and as model
    evidence they moved other categories too (a blocklisted "pineapple" was also flagged as harassment)."""
    strongest = dict.fromkeys(TEXT_CATEGORIES, 0.0)
    counts = dict.fromkeys(TEXT_CATEGORIES, 0.0)
    for m in matches:
        if m.decisive:
            continue
        strongest[m.category] = max(strongest[m.category], m.weight)
        counts[m.category] += 1.0
    return [strongest[c] for c in TEXT_CATEGORIES] + [counts[c] for c in TEXT_CATEGORIES]


def feature_frame(texts, analyses, sources=None) -> pd.DataFrame:
    """The frame the ColumnTransformer reads: text, statistics, lexicon evidence and source."""
    rows = [
        [a.model_text, *text_statistics(t, a.normalized), *lexicon_features(a.matches)]
        for t, a in zip(texts, analyses)
    ]
    frame = pd.DataFrame(rows, columns=["text", *STAT_COLUMNS, *LEXICON_COLUMNS])
    frame["source"] = list(sources) if sources is not None else UNKNOWN_SOURCE
    return frame


class WordCachedCharTfidf(TfidfVectorizer):
    """Character n-grams within word boundaries (`analyzer="char_wb"`), TF-IDF weighted; `transform` gives exactly
    TfidfVectorizer's matrix but reads each distinct word's n-gram columns from a per-process cache.

    Why: "char_wb" n-grams never cross a space, so a text's n-grams are the union of its words' n-grams, and words
    repeat (Zipf). Generating and looking up ~300 n-grams per tweet in Python was 45% of the default model's time.
    tests/test_features.py checks the matrices against TfidfVectorizer.transform itself.
    """

    #: Distinct words remembered per vectorizer; past it the cache starts again (memory stays bounded).
    MAX_CACHED_WORDS = 200_000

    def __init__(self, *, ngram_range=(2, 5), min_df=2, sublinear_tf=True, max_features=None):
        super().__init__(analyzer="char_wb", ngram_range=ngram_range, min_df=min_df, sublinear_tf=sublinear_tf,
                         max_features=max_features)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_word_columns", None)  # a cache, not part of the fitted model
        return state

    def _columns(self, word: str) -> list[int]:
        cache = self.__dict__.setdefault("_word_columns", {})
        columns = cache.get(word)
        if columns is None:
            if len(cache) >= self.MAX_CACHED_WORDS:
                cache.clear()
            vocabulary = self.vocabulary_
            grams = self._char_wb_ngrams(word)  # sklearn's own n-grams of one word, padded with spaces
            columns = cache[word] = [vocabulary[g] for g in grams if g in vocabulary]
        return columns

    def transform(self, raw_documents):
        check_is_fitted(self, "vocabulary_")
        if isinstance(raw_documents, str):
            raise ValueError("Iterable over raw text documents expected, string object received.")
        preprocess = self.build_preprocessor()
        indptr, indices = [0], []
        for document in raw_documents:
            for word in preprocess(self.decode(document)).split():
                indices.extend(self._columns(word))
            indptr.append(len(indices))
        counts = sp.csr_matrix((np.ones(len(indices)), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
                               shape=(len(indptr) - 1, len(self.vocabulary_)))
        counts.sum_duplicates()  # repeated n-grams become counts, indices sorted, as CountVectorizer leaves them
        if self.sublinear_tf:
            np.log(counts.data, counts.data)
            counts.data += 1.0
        counts.data *= self.idf_[counts.indices]
        return normalize_rows(counts, norm=self.norm, copy=False) if self.norm else counts


def build_preprocessor(max_word_features: int = 30000, max_char_features: int = 50000) -> ColumnTransformer:
    """Word and character TF-IDF on the normalised text, min-max scaled (and clipped) statistics and lexicon evidence,
    one-hot source."""
    return ColumnTransformer(
        [
            # Content words only: in a short text "you" or "are" would otherwise carry the whole TF-IDF vector and
            # read as harassment or hate; the character n-grams still see phrasing such as " you ".
            ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=max_word_features,
                                      stop_words="english", token_pattern=r"(?u)\b\w[\w'*]*\b"), "text"),
            ("chars", WordCachedCharTfidf(ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                                          max_features=max_char_features), "text"),
            # Clipped to the range seen in training: a 10,000-character letter or a text of forty "!" must not
            # score as if it were ten times more of whatever the longest training text was (with StandardScaler
            # a long friendly letter scored 1.0 for violence and spam).
            ("stats", MinMaxScaler(clip=True), STAT_COLUMNS),
            ("lexicon", MinMaxScaler(clip=True), LEXICON_COLUMNS),
            ("source", OneHotEncoder(handle_unknown="ignore"), ["source"]),
        ],
        sparse_threshold=1.0,
    )
