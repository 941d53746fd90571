"""The peer libraries people use today, behind the interface the evaluation and the speed benchmark use for ours.

- alt-profanity-check: a linear SVM over TF-IDF, trained on tweets and Wikipedia comments; flags whole texts.
- better-profanity: a word list with leetspeak variants; censors the words it finds, which gives it spans.

Benchmark-only (`pip install -r benchmarks/requirements.txt`); nothing under moderation/ imports them.
"""
from __future__ import annotations

import difflib
import hashlib
import pickle
from dataclasses import dataclass
from importlib import metadata
from typing import Callable, Sequence

import numpy as np

from moderation.evaluation import Predictions
from moderation.files import atomic_write
from moderation.settings import cache_dir

#: What better-profanity writes over a word it censors: a private-use character no real post contains, so the
#: censored stretches can be lined up with the original text to recover character offsets.
CENSOR_CHAR = "\ue000"
#: Texts per cached piece of a peer's predictions.
CACHE_CHUNK = 500


def _import(module: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        raise SystemExit(f"{exc.name} is missing: pip install -r benchmarks/requirements.txt") from exc


@dataclass(frozen=True)
class Peer:
    name: str  # also its distribution name on PyPI
    kind: str
    flag: Callable[[Sequence[str]], np.ndarray]  # texts -> bool per text, the library's fastest batch path
    predict: Callable[[Sequence[str], bool], Predictions]  # the evaluation's Predictor
    spans_note: str  # how its Toxic Spans figure was obtained

    @property
    def version(self) -> str:
        return metadata.version(self.name)

    @property
    def title(self) -> str:
        return f"{self.name} {self.version} ({self.kind})"

    def cached_predict(self, texts: Sequence[str], want_spans: bool) -> Predictions:
        """`predict`, remembered on disk per library version and chunk of input: the peers never change between
        runs, and the word list takes about an hour over the public sets, so an interrupted run resumes."""
        parts = [self._cached_chunk(texts[i:i + CACHE_CHUNK], want_spans) for i in range(0, len(texts), CACHE_CHUNK)]
        return Predictions(
            flagged=np.concatenate([p.flagged for p in parts]) if parts else np.zeros(0, dtype=bool),
            spam=None if not parts or parts[0].spam is None else np.concatenate([p.spam for p in parts]),
            toxic_offsets=None if not parts or parts[0].toxic_offsets is None else [
                offsets for p in parts for offsets in p.toxic_offsets],
        )

    def _cached_chunk(self, texts: Sequence[str], want_spans: bool) -> Predictions:
        key = hashlib.sha256("\0".join([self.title, str(want_spans), *texts]).encode()).hexdigest()[:20]
        path = cache_dir() / "benchmarks" / f"{self.name}-{key}.pickle"
        if path.is_file():
            with open(path, "rb") as handle:
                return pickle.load(handle)  # our own file, written below
        predictions = self.predict(texts, want_spans)
        atomic_write(path, pickle.dumps(predictions))
        return predictions


# --- alt-profanity-check ------------------------------------------------------------------------------------------


def _svm_flag(texts: Sequence[str]) -> np.ndarray:
    return _import("profanity_check").predict(list(texts)).astype(bool)


def _svm_predict(texts: Sequence[str], want_spans: bool) -> Predictions:
    """It says nothing about where: when it flags a post, the whole post counts as its span (the SemEval
    'whole text' reading); it has no spam category."""
    flagged = _svm_flag(texts)
    offsets = [set(range(len(t))) if f else set() for t, f in zip(texts, flagged)] if want_spans else None
    return Predictions(flagged=flagged, toxic_offsets=offsets)


# --- better-profanity ---------------------------------------------------------------------------------------------


def _word_list():
    """The library's module-level censor, with its default word list loaded (once)."""
    profanity = _import("better_profanity").profanity
    if not profanity.CENSOR_WORDSET:
        profanity.load_censor_words()
    return profanity


def censored_offsets(text: str) -> set[int]:
    """Offsets of the characters better-profanity censors in `text`.

    It replaces each profane stretch (a word, or words it joins such as "sh1t head") by four censor characters,
    whatever the stretch's length, so the stretches are found by aligning the censored text with the original."""
    if CENSOR_CHAR in text:
        raise ValueError("the text contains the private-use censor character; alignment would be ambiguous")
    censored = _word_list().censor(text, CENSOR_CHAR)
    if censored == text:
        return set()
    matcher = difflib.SequenceMatcher(None, text, censored, autojunk=False)
    return {i for tag, i1, i2, _, _ in matcher.get_opcodes() if tag != "equal" for i in range(i1, i2)}


def _word_list_flag(texts: Sequence[str]) -> np.ndarray:
    profanity = _word_list()
    return np.array([profanity.contains_profanity(t) for t in texts], dtype=bool)


def _word_list_predict(texts: Sequence[str], want_spans: bool) -> Predictions:
    if not want_spans:
        return Predictions(flagged=_word_list_flag(texts))
    offsets = [censored_offsets(t) for t in texts]
    return Predictions(flagged=np.array([bool(o) for o in offsets], dtype=bool), toxic_offsets=offsets)


PEERS = {
    peer.name: peer
    for peer in (
        Peer("better-profanity", "word list", _word_list_flag, _word_list_predict, "its censored words"),
        Peer("alt-profanity-check", "linear SVM", _svm_flag, _svm_predict,
             "whole post when flagged: it gives no spans"),
    )
}


def warm_up() -> None:
    """Load both peers' word list and model, so that no timing includes a one-off load."""
    for peer in PEERS.values():
        peer.flag(["warm up"])
