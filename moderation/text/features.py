"""From raw texts to the feature frame every classical model reads, and the ColumnTransformer over it.

`analyze` runs the normaliser and the lexicon once per text; the frame it builds holds the normalised text
(for word and character TF-IDF), numeric text statistics (scaled), lexicon evidence per category (scaled) and
the text's source (one-hot). The same frame feeds training, prediction and span occlusion, so the model sees
exactly what the spans explain.
"""
from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain, repeat

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder
from sklearn.preprocessing import normalize as normalize_rows
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2
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


_ASCII_LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# ASCII bytes that are not word characters ("\w": letters, digits, "_") -> space, so split() finds the words
_NOT_WORD = bytes(c if chr(c).isalnum() or c == ord("_") else ord(" ") for c in range(256))


def text_statistics(text: str, norm: Normalized) -> list[float]:
    """Numeric signals that n-grams miss: shouting, numbers, links, phones, money, stretched punctuation, evasion.

    The two counts that `statistics` takes logarithms of (characters and words) stand where the logarithms go."""
    if text.isascii():  # most texts: counting on bytes gives the same figures several times faster
        raw = text.encode("ascii")
        letters = len(raw) - len(raw.translate(None, _ASCII_LETTERS))
        caps = (len(raw) - len(raw.translate(None, _ASCII_LETTERS[26:]))) / letters if letters else 0.0
        digit_count = len(raw) - len(raw.translate(None, b"0123456789"))
        words = len(raw.translate(_NOT_WORD).split())
    else:
        letters_list = [c for c in text if c.isalpha()]
        caps = sum(c.isupper() for c in letters_list) / len(letters_list) if letters_list else 0.0
        digit_count = len(_DIGIT.findall(text))
        words = len(_WORD.findall(text))
    # Each pattern is tried only where it can match (a link needs a "." or a "://", a phone number two digits, an
    # amount one, stretched punctuation two marks in a row): the counts are the same, without the regex engine
    # trying every position of every text.
    urls = len(_URL.findall(text)) if "." in text or "://" in text else 0
    phones = len(_PHONE.findall(text)) if digit_count >= 2 else 0
    amounts = len(_MONEY.findall(text)) if digit_count else 0
    stretched = len(_REPEATED_PUNCT.findall(text)) if "!!" in text or "??" in text or ".." in text else 0
    return [
        len(text), caps, digit_count / len(text) if text else 0.0, urls, phones, amounts, stretched,
        obfuscation_ratio(text, norm), words,
    ]


def statistics(texts, analyses) -> np.ndarray:
    """(texts x STAT_COLUMNS): `text_statistics` of every text, lengths and word counts as log1p."""
    values = np.array([text_statistics(t, a.normalized) for t, a in zip(texts, analyses)], dtype=float)
    values = values.reshape(len(texts), len(STAT_COLUMNS))
    for column in ("length_log", "word_count_log"):
        j = STAT_COLUMNS.index(column)
        values[:, j] = np.log1p(values[:, j])
    return values


def obfuscation_ratio(text: str, norm: Normalized) -> float:
    """The share of characters the normaliser had to change or remove *inside words*: high for "sh1t", "f.u.c.k",
    "fuuuuck" or a zero-width space inside "fuck"; zero for invisible characters around or between words, which
    hide nothing (a greeting followed by fifteen zero-width spaces read as obfuscated spam, harassment, self-harm)."""
    if text.isascii() and norm.text == text.lower():  # only lower-cased: nothing changed, nothing dropped
        return 0.0
    origin, normalized = norm.origin, norm.text
    if text.isascii() and len(normalized) == len(text):  # ASCII loses characters only: none lost, none moved
        return min(sum(map(str.__ne__, normalized, text.lower())) / len(text), 1.0)
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


NUMBER_COLUMNS = [*STAT_COLUMNS, *LEXICON_COLUMNS]
#: The word vectorizer's tokens: a word character, then word characters, apostrophes and masks ("f*ck", "don't").
TOKEN_PATTERN = r"(?u)\b\w[\w'*]*\b"


@dataclass
class FeatureRows:
    """The rows every text model reads, as plain arrays: what the model reads of each text (`texts`), its statistics
    and lexicon evidence (`numbers`, texts x NUMBER_COLUMNS; None for rows read from a frame that has only texts)
    and its source. Cheap to make and to read, which is most of a single text's time when it goes through pandas;
    `frame` is the same rows as a DataFrame (the one they were read from, or made on first use), for models that
    want one."""

    texts: list[str]
    numbers: np.ndarray | None
    sources: list[str]
    source_frame: pd.DataFrame | None = field(default=None, repr=False)

    @classmethod
    def of(cls, rows: "FeatureRows | pd.DataFrame") -> "FeatureRows":
        """`rows` itself, or the rows of a DataFrame (training and evaluation build feature frames)."""
        if isinstance(rows, FeatureRows):
            return rows
        numbers = rows[NUMBER_COLUMNS].to_numpy(dtype=float) if set(NUMBER_COLUMNS) <= set(rows.columns) else None
        sources = rows["source"].tolist() if "source" in rows.columns else [UNKNOWN_SOURCE] * len(rows)
        return cls(rows["text"].tolist(), numbers, sources, rows)

    def __len__(self) -> int:
        return len(self.texts)

    def columns(self, names) -> np.ndarray:
        """The named number columns (a copy), texts x names."""
        if self.numbers is None:
            return self.frame[list(names)].to_numpy(dtype=float)
        return self.numbers[:, [NUMBER_COLUMNS.index(n) for n in names]]

    def take(self, indices) -> "FeatureRows":
        indices = list(indices)
        frame = None if self.source_frame is None else self.source_frame.iloc[indices].reset_index(drop=True)
        return FeatureRows([self.texts[i] for i in indices], None if self.numbers is None else self.numbers[indices],
                           [self.sources[i] for i in indices], frame)

    @property
    def frame(self) -> pd.DataFrame:
        if self.source_frame is None:
            frame = pd.DataFrame({"text": self.texts})
            if self.numbers is not None:  # one float block, built at once
                frame = pd.concat([frame, pd.DataFrame(self.numbers, columns=NUMBER_COLUMNS)], axis=1)
            frame["source"] = self.sources
            self.source_frame = frame
        return self.source_frame


def feature_rows(texts, analyses, sources=None) -> FeatureRows:
    """Statistics of each text as written, lexicon evidence and the model text of its analysis, and its source."""
    numbers = np.hstack([statistics(texts, analyses),
                         np.array([lexicon_features(a.matches) for a in analyses], dtype=float).reshape(
                             len(analyses), len(LEXICON_COLUMNS))])
    sources = list(sources) if sources is not None else [UNKNOWN_SOURCE] * len(analyses)
    return FeatureRows([a.model_text for a in analyses], numbers, sources)


def feature_frame(texts, analyses, sources=None) -> pd.DataFrame:
    """The frame the ColumnTransformer is fitted on: text, statistics, lexicon evidence and source."""
    return feature_rows(texts, analyses, sources).frame


def _tfidf(vectorizer: TfidfVectorizer, counts: sp.csr_matrix) -> sp.csr_matrix:
    """TfidfTransformer.transform's steps on a count matrix with sorted indices (so the same floats come out)."""
    if vectorizer.sublinear_tf:
        np.log(counts.data, counts.data)
        counts.data += 1.0
    if vectorizer.use_idf:
        counts.data *= vectorizer.idf_[counts.indices]
    if vectorizer.norm == "l2":  # what sklearn.preprocessing.normalize runs, without its per-call validation
        inplace_csr_row_normalize_l2(counts)
        return counts
    return normalize_rows(counts, norm=vectorizer.norm, copy=False) if vectorizer.norm else counts


def _check_documents(vectorizer: TfidfVectorizer, raw_documents) -> None:
    if not hasattr(vectorizer, "idf_"):  # what check_is_fitted finds, without its per-call cost
        check_is_fitted(vectorizer, "idf_")
    if isinstance(raw_documents, str):
        raise ValueError("Iterable over raw text documents expected, string object received.")


def preprocessed(vectorizer: TfidfVectorizer, raw_documents) -> list[str]:
    """What the vectorizer's preprocessor makes of each document: for texts with lower-casing alone (ours), str.lower
    itself rather than scikit-learn's wrapper around it, one call per text."""
    documents = list(raw_documents)
    plain = vectorizer.input == "content" and vectorizer.preprocessor is None and vectorizer.strip_accents is None
    if plain and all(isinstance(d, str) for d in documents):
        return [d.lower() for d in documents] if vectorizer.lowercase else documents
    preprocess = vectorizer.build_preprocessor()
    return [preprocess(vectorizer.decode(d)) for d in documents]


@lru_cache(maxsize=512)
def ngram_windows(size: int, min_n: int, max_n: int) -> tuple[tuple[int, int], ...]:
    """Where scikit-learn's `_char_wb_ngrams` takes its n-grams in a padded word of `size` characters, in its order
    (every n, offsets 0..; a word shorter than n gives one n-gram and ends the list): (start, end) pairs."""
    windows = []
    for n in range(min_n, max_n + 1):
        windows += [(o, o + n) for o in range(max(size - n, 0) + 1)]
        if size <= n:
            break
    return tuple(windows)


@dataclass(frozen=True)
class GramKeys:
    """Character n-grams as exact integer keys: each character of the vocabulary's alphabet has a rank 1..A, and an
    n-gram's key holds its characters' ranks, `bits` bits each (a character outside the alphabet, rank 0, is in no
    n-gram of the vocabulary). The vocabulary's keys sit in an open-addressing hash table (linear probing, at most
    half full), so a batch's million n-grams are looked up in a few array passes."""

    bits: int
    rank: np.ndarray  # code point -> rank; the last entry (0) stands for every code point past the alphabet's
    slot_keys: np.ndarray  # the hash table: a key per slot, -1 where empty
    slot_columns: np.ndarray

    _MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the key's high product bits pick the slot

    @classmethod
    def of(cls, vocabulary: dict[str, int], max_n: int) -> "GramKeys | None":
        """None when the keys would not fit in 63 bits (an alphabet of thousands of characters)."""
        alphabet = sorted(set("".join(vocabulary)))
        bits = len(alphabet).bit_length()
        if not vocabulary or bits * max_n > 63 or "\0" in alphabet or any(len(g) > max_n for g in vocabulary):
            return None  # ("\0" pads the n-grams below, so it must not have a rank of its own)
        codes = np.fromiter(map(ord, alphabet), dtype=np.int64, count=len(alphabet))
        rank = np.zeros(int(codes.max()) + 2, dtype=np.int64)
        rank[codes] = np.arange(1, len(alphabet) + 1)
        grams = list(vocabulary)
        ranks = rank[np.frombuffer("".join(g.ljust(max_n, "\0") for g in grams).encode("utf-32-le"),
                                   dtype=np.uint32).astype(np.int64)].reshape(len(grams), max_n)
        keys = (ranks << (bits * np.arange(max_n))).sum(axis=1)
        columns = np.fromiter((vocabulary[g] for g in grams), dtype=np.int64, count=len(grams))
        size = 1 << (2 * len(keys) - 1).bit_length()
        slot_keys, slot_columns = np.full(size, -1, dtype=np.int64), np.full(size, -1, dtype=np.int64)
        home, pending, probe = cls._home(keys, size), np.arange(keys.size), 0
        while pending.size:  # each round, every key still out takes its next slot if free (one key per slot)
            slots = (home[pending] + probe) & (size - 1)
            free = slot_keys[slots] == -1
            slots, candidates = slots[free], pending[free]
            taken, first = np.unique(slots, return_index=True)
            slot_keys[taken], slot_columns[taken] = keys[candidates[first]], columns[candidates[first]]
            placed = np.zeros(keys.size, dtype=bool)
            placed[candidates[first]] = True
            pending, probe = pending[~placed[pending]], probe + 1
            # a key that lost its slot tries the next one; the probe offset is per round, so a key that waited
            # one round for a slot moves on with the others (lookups probe the same sequence and stop at -1)
        return cls(bits, rank, slot_keys, slot_columns)

    @classmethod
    def _home(cls, keys: np.ndarray, size: int) -> np.ndarray:
        shift = np.uint64(64 - (size.bit_length() - 1))
        return ((keys.astype(np.uint64) * cls._MULTIPLIER) >> shift).astype(np.int64)

    def windows(self, ranks: np.ndarray, limit: np.ndarray, lengths: range):
        """Every window of n characters (n in `lengths`) that starts at a position p, ends by limit[p] and holds
        only characters of the alphabet: its start, n and key, n by n (starts ascending within each n)."""
        key, known = np.zeros(ranks.size, dtype=np.int64), np.ones(ranks.size, dtype=bool)
        empty = np.zeros(0, dtype=np.int64)
        starts, sizes, keys = [empty], [empty], [empty]
        for j in range(lengths.stop - 1):  # windows of n = j + 1 characters start at key's positions
            n, m = j + 1, ranks.size - j
            if m <= 0:
                break
            key = key[:m] | (ranks[j:] << (self.bits * j))
            known = known[:m] & (ranks[j:] > 0)
            if n in lengths:
                at = np.flatnonzero(known & (np.arange(m) + n <= limit[:m]))
                starts.append(at), sizes.append(np.full(at.size, n, dtype=np.int64)), keys.append(key[at])
        return np.concatenate(starts), np.concatenate(sizes), np.concatenate(keys)

    def ranks(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        return self.rank[np.minimum(codes, self.rank.size - 1)]

    def columns(self, keys: np.ndarray) -> np.ndarray:
        """The vocabulary column of each key, -1 for keys of n-grams outside the vocabulary."""
        size = self.slot_keys.size
        found = np.full(keys.size, -1, dtype=np.int64)
        home, active, probe = self._home(keys, size), np.arange(keys.size), 0
        while active.size:
            slots = (home[active] + probe) & (size - 1)
            in_slot = self.slot_keys[slots]
            hit = in_slot == keys[active]
            found[active[hit]] = self.slot_columns[slots[hit]]
            active, probe = active[~hit & (in_slot != -1)], probe + 1
        return found


_gram_keys: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def gram_keys(vectorizer: TfidfVectorizer) -> GramKeys | None:
    """The GramKeys of a fitted character vectorizer's vocabulary (made once per vocabulary, kept beside it)."""
    vocabulary, keys = _gram_keys.get(vectorizer, (None, None))
    if vocabulary is not vectorizer.vocabulary_:  # first use, or fitted again since
        vocabulary = vectorizer.vocabulary_
        keys = GramKeys.of(vocabulary, vectorizer.ngram_range[1])
        _gram_keys[vectorizer] = (vocabulary, keys)
    return keys


class WordCachedCharTfidf(TfidfVectorizer):
    """Character n-grams within word boundaries (`analyzer="char_wb"`), TF-IDF weighted; `transform` gives exactly
    TfidfVectorizer's matrix, from a per-process cache of each distinct word's n-gram columns.

    Why: "char_wb" n-grams never cross a space, so a text's n-gram counts are the sum of its words' (words repeat:
    Zipf): one sparse product (texts x distinct words) @ (distinct words x n-grams) gives the whole batch's counts.
    Generating and looking up ~300 n-grams per tweet in Python was 45% of the default model's time.
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

    def word_columns(self, words) -> list[list[int]]:
        """Each of `words`' (distinct) n-gram columns, in scikit-learn's order (the word padded with a space each
        side): from the cache, and the words not in it found together and remembered."""
        cache = self.__dict__.setdefault("_word_columns", {})
        columns = [cache.get(w) for w in words]
        missing = [w for w, c in zip(words, columns) if c is None]
        if not missing:
            return columns
        found = dict(zip(missing, self._columns_of(missing)))
        if len(cache) + len(found) > self.MAX_CACHED_WORDS:
            cache.clear()
        if len(found) <= self.MAX_CACHED_WORDS:
            cache.update(found)
        return [c if c is not None else found[w] for w, c in zip(words, columns)]

    def _columns_of(self, words) -> list[list[int]]:
        """Each word's n-gram columns, in scikit-learn's order: every n-gram of the batch is made and looked up at
        once, as integer keys (`GramKeys`), instead of one string slice and one dictionary lookup each."""
        keys = gram_keys(self)
        min_n, max_n = self.ngram_range
        if keys is None or not words:  # an alphabet too large for exact keys: scikit-learn's way, per word
            get = self.vocabulary_.get
            return [[column for a, b in ngram_windows(len(w) + 2, min_n, max_n)
                     if (column := get(f" {w} "[a:b])) is not None] for w in words]
        padded = "".join([f" {w} " for w in words])
        sizes = np.fromiter(map(len, words), dtype=np.int64, count=len(words)) + 2
        word_of = np.repeat(np.arange(len(words)), sizes)
        word_start, word_size = np.repeat(np.cumsum(sizes) - sizes, sizes), np.repeat(sizes, sizes)
        starts, lengths, grams = keys.windows(keys.ranks(padded), word_start + word_size,
                                              range(min(min_n, int(sizes.min())), max_n + 1))
        # every window inside its padded word; a padded word shorter than min_n is one n-gram, itself
        kept = (lengths >= min_n) | ((starts == word_start[starts]) & (lengths == word_size[starts]))
        owners, grams = word_of[starts[kept]], grams[kept]
        order = np.argsort(owners, kind="stable")  # by word, then n, then offset: scikit-learn's order
        owners, columns = owners[order], keys.columns(grams[order])
        hit = columns >= 0
        bounds = np.r_[0, np.cumsum(np.bincount(owners[hit], minlength=len(words)))].tolist()
        flat = columns[hit].tolist()
        return [flat[a:b] for a, b in zip(bounds, bounds[1:])]

    def transform(self, raw_documents):
        _check_documents(self, raw_documents)
        words_per_document = [document.split() for document in preprocessed(self, raw_documents)]
        distinct: dict[str, int] = {}
        occurrences = [distinct.setdefault(w, len(distinct)) for w in chain.from_iterable(words_per_document)]
        columns = self.word_columns(list(distinct))
        width = len(self.vocabulary_)
        grams = sp.csr_matrix(
            (np.ones(sum(map(len, columns))), np.fromiter(chain.from_iterable(columns), dtype=np.int64),
             np.r_[0, np.cumsum(list(map(len, columns)), dtype=np.int64)]), shape=(len(distinct), width))
        words = sp.csr_matrix(
            (np.ones(len(occurrences)), np.asarray(occurrences, dtype=np.int64),
             np.r_[0, np.cumsum(list(map(len, words_per_document)), dtype=np.int64)]),
            shape=(len(words_per_document), len(distinct)))
        counts = words @ grams
        counts.sum_duplicates()  # indices sorted, as CountVectorizer leaves them
        return _tfidf(self, counts)


class TokenCachedWordTfidf(TfidfVectorizer):
    """Word unigrams and bigrams after stop words are dropped, TF-IDF weighted; `transform` gives exactly
    TfidfVectorizer's matrix with one vectorised pass over the batch: each token becomes an id (the tokens the
    vocabulary is made of; -1 any other, so that it still separates its neighbours), unigram and bigram columns are
    looked up as arrays. tests/test_features.py checks the matrices against TfidfVectorizer.transform itself."""

    _UNKNOWN, _STOP = -1, -2

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_token_table", None)  # derived from the vocabulary
        return state

    def _table(self):
        """(token -> id, unigram column per id or -1, sorted bigram keys first id * n + second id, their columns)."""
        table = self.__dict__.get("_token_table")
        if table is None:
            ids: dict[str, int] = {}
            for feature in self.vocabulary_:
                for token in feature.split(" "):
                    ids.setdefault(token, len(ids))
            unigram = np.full(len(ids), -1, dtype=np.int64)
            keys, columns = [], []
            for feature, column in self.vocabulary_.items():
                parts = feature.split(" ")
                if len(parts) == 1:
                    unigram[ids[feature]] = column
                else:
                    keys.append(ids[parts[0]] * len(ids) + ids[parts[1]])
                    columns.append(column)
            order = np.argsort(keys)
            codes = dict.fromkeys(self.get_stop_words() or (), self._STOP) | ids
            table = self.__dict__["_token_table"] = (codes, unigram, np.asarray(keys, dtype=np.int64)[order],
                                                     np.asarray(columns, dtype=np.int64)[order])
        return table

    def transform(self, raw_documents):
        _check_documents(self, raw_documents)
        if self.analyzer != "word" or self.tokenizer is not None or tuple(self.ngram_range) not in ((1, 1), (1, 2)):
            return super().transform(raw_documents)
        codes, unigram, bigram_keys, bigram_columns = self._table()
        tokenize, code = self.build_tokenizer(), codes.get
        per_document = [list(map(code, tokenize(d), repeat(self._UNKNOWN))) for d in preprocessed(self, raw_documents)]
        tokens = np.fromiter(chain.from_iterable(per_document), dtype=np.int64)
        documents = np.repeat(np.arange(len(per_document)), list(map(len, per_document)))
        kept = tokens != self._STOP  # stop words go before n-grams are formed, as in scikit-learn
        tokens, documents = tokens[kept], documents[kept]
        known = tokens >= 0
        columns = unigram[tokens[known]]
        rows = [documents[known][columns >= 0]]
        cols = [columns[columns >= 0]]
        if self.ngram_range[1] == 2 and tokens.size > 1 and bigram_keys.size:
            first, second = tokens[:-1], tokens[1:]
            pair = (first >= 0) & (second >= 0) & (documents[:-1] == documents[1:])
            keys = first[pair] * len(unigram) + second[pair]
            at = np.minimum(np.searchsorted(bigram_keys, keys), bigram_keys.size - 1)
            hit = bigram_keys[at] == keys
            rows.append(documents[:-1][pair][hit])
            cols.append(bigram_columns[at[hit]])
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        counts = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(len(per_document), len(self.vocabulary_)))
        counts.sum_duplicates()
        return _tfidf(self, counts)


def build_preprocessor(max_word_features: int = 30000, max_char_features: int = 50000) -> ColumnTransformer:
    """Word and character TF-IDF on the normalised text, min-max scaled (and clipped) statistics and lexicon evidence,
    one-hot source."""
    return ColumnTransformer(
        [
            # Content words only: in a short text "you" or "are" would otherwise carry the whole TF-IDF vector and
            # read as harassment or hate; the character n-grams still see phrasing such as " you ".
            ("words", TokenCachedWordTfidf(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                           max_features=max_word_features, stop_words="english",
                                           token_pattern=TOKEN_PATTERN), "text"),
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


def transform_rows(preprocessor: ColumnTransformer, rows: FeatureRows):
    """`preprocessor.transform(rows.frame)` for the layout `build_preprocessor` makes: the same matrix without the
    ColumnTransformer's per-call checks and pandas selections (most of a single text's time). The vectorisers read
    the texts, the scalers do what MinMaxScaler.transform does, the source's one-hot rows are looked up once per
    distinct source. Any other preprocessor goes through its own transform."""
    if not getattr(preprocessor, "sparse_output_", False) or rows.numbers is None:
        return preprocessor.transform(rows.frame)
    blocks = []
    for name, transformer, columns in preprocessor.transformers_:
        where = preprocessor.output_indices_.get(name)
        if where is None or where.stop == where.start:
            continue
        if isinstance(transformer, TfidfVectorizer) and columns == "text":
            blocks.append(transformer.transform(rows.texts))
        elif isinstance(transformer, MinMaxScaler) and set(columns) <= set(NUMBER_COLUMNS):
            values = rows.columns(columns)  # a copy: scaled in place below
            values *= transformer.scale_
            values += transformer.min_
            if transformer.clip:
                np.clip(values, *transformer.feature_range, out=values)
            blocks.append(values)
        elif isinstance(transformer, OneHotEncoder) and list(columns) == ["source"]:
            blocks.append(_one_hot_rows(transformer, rows.sources))
        else:
            return preprocessor.transform(rows.frame)
    return stack_columns(blocks)


def stack_columns(blocks) -> sp.csr_matrix:
    """`scipy.sparse.hstack(blocks).tocsr()` for CSR and dense blocks of the same rows, built in one pass: the same
    matrix (each row's entries block by block, a dense block's zeros left out), at a fraction of the cost (the
    general hstack took 0.4 ms for one text)."""
    n_rows = blocks[0].shape[0]
    parts = []  # per block: (entries per row, column indices, values)
    offset = 0
    for block in blocks:
        if sp.issparse(block):
            block = block if block.format == "csr" else block.tocsr()
            parts.append((np.diff(block.indptr), block.indices + offset, block.data))
        else:
            rows, columns = np.nonzero(block)
            parts.append((np.bincount(rows, minlength=n_rows), columns + offset, block[rows, columns]))
        offset += block.shape[1]
    per_row = sum(counts for counts, _, _ in parts)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(per_row, out=indptr[1:])
    indices = np.empty(indptr[-1], dtype=np.int32 if offset < 2**31 else np.int64)
    data = np.empty(indptr[-1])
    before = indptr[:-1].copy()  # where each row's next block starts
    for counts, columns, values in parts:
        if columns.size:
            first_of_row = np.cumsum(counts) - counts  # where each row's entries start within the block
            at = np.repeat(before - first_of_row, counts) + np.arange(columns.size)
            indices[at], data[at] = columns, values
        before += counts
    return sp.csr_matrix((data, indices, indptr), shape=(n_rows, offset))


#: encoder -> {source value: its one-hot row}, beside the fitted encoder rather than in it (it is pickled).
_one_hot_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _one_hot_rows(encoder: OneHotEncoder, values: list) -> sp.csr_matrix:
    rows = _one_hot_cache.setdefault(encoder, {})
    distinct = set(values)
    for value in distinct - rows.keys():
        rows[value] = sp.csr_matrix(encoder.transform(pd.DataFrame({"source": [value]})))
    if len(distinct) != 1:
        return sp.vstack([rows[v] for v in values]).tocsr() if values else sp.csr_matrix((0, sum(
            len(c) for c in encoder.categories_)))
    row, n = rows[values[0]], len(values)
    return sp.csr_matrix((np.tile(row.data, n), np.tile(row.indices, n), np.arange(n + 1) * row.nnz),
                         shape=(n, row.shape[1]))
