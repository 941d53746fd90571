"""Word lists per category, matched over normalised text, with allow/block lists that go through the same normaliser.

Matching is word-boundary aware: a whole-word term ("cunt*", "ass") never fires inside "Scunthorpe",
"assassin" or "class", and stems that may hide in longer words ("*shit*") skip the allowlisted names that
contain them ("Shitterton"). Each letter of a term also accepts its leetspeak forms and, inside a word,
a masking "*" ("f*ck", "b***h"), and any number of repeats ("fuuuck"), so the normaliser and the matcher
together cover the common evasions.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Iterable, Mapping

from .normalize import normalize_text
from .taxonomy import TEXT_CATEGORIES

ALLOW = "allow"
# Which characters may stand for a letter (beyond the letter itself): leetspeak and common misspellings.
_LETTER_FORMS = {
    "a": "@4", "b": "8", "e": "3", "g": "9", "i": "1!|", "l": "1|", "o": "0", "s": "5$z", "t": "7+", "u": "v",
}
_WORD_GAP = r"[^a-z0-9]{0,3}"
_START = r"(?<![a-z0-9])"
_WORD_START = re.compile(r"(?<![a-z0-9@$!|*+])[^\W_]|(?<![a-z0-9])[@$!|*+]")
_ANY_FIRST = "abcdefghijklmnopqrstuvwxyz0123456789@$!|*+"
_END = r"(?![a-z0-9])"


@dataclass(frozen=True)
class LexiconEntry:
    category: str
    weight: float
    term: str


@dataclass(frozen=True)
class LexiconMatch:
    """A term found in normalised text: [start, end) are offsets into the normalised string."""

    start: int
    end: int
    term: str
    category: str
    weight: float


def _letter_pattern(letter: str, position: str) -> str:
    """One letter of a term: a run of the letter (after at most one look-alike, "!idiot"), or ONE look-alike.

    `position` in a word of three or more characters is "first", "interior" or "last" ("plain" otherwise): between
    the first and the last letter, one "*" may stand for each interior letter or follow any letter, and any stars
    may precede the last one ("f*ck", "b***h", "f*u*c*k", "sh***t"). Look-alikes and masking stars count once each
    so that a run of them can be read only one way: letters that each took a run of shared characters let the regex
    engine try every split of the run ("s" and 40 stars held it for 35 seconds)."""
    forms = _LETTER_FORMS.get(letter, "")
    pattern = f"(?:[{re.escape(forms)}]?{letter}+|[{re.escape(forms)}])" if forms else f"{letter}+"
    if position == "first":
        return pattern + r"\*?"
    if position == "interior":
        return rf"(?:{pattern}\*?|\*)"
    if position == "last":
        return r"\**+" + pattern
    return pattern


def _first_chars(term: str) -> str:
    """Characters a match of `term` can start with (every character for a term with a wildcard prefix)."""
    if term.startswith("*"):
        return _ANY_FIRST
    first = term[0]
    return first + _LETTER_FORMS.get(first, "")


def term_pattern(term: str) -> str:
    """Regex source for one term (syntax in data/lexicon.tsv): leetspeak, masks, stretching, word boundaries."""
    prefix_wild = term.startswith("*")
    suffix_wild = term.endswith("*") and not term.endswith("**")
    words = term.strip("*").split()
    if not words:
        raise ValueError(f"empty lexicon term {term!r}")
    parts = []
    for word in words:
        letters = []
        for i, ch in enumerate(word):
            if ch.isalnum():
                position = ("plain" if len(word) < 3 else "first" if i == 0
                            else "last" if i == len(word) - 1 else "interior")
                letters.append(_letter_pattern(ch, position))
            elif ch == "'":
                letters.append("'?")
            else:
                letters.append(re.escape(ch) + "?")
        parts.append("".join(letters))
    body = _WORD_GAP.join(parts)
    head = _START + ("[a-z*]*" if prefix_wild else "")
    tail = "[a-z*]*" if suffix_wild else "(?:e?s)?" + _END
    return head + body + tail


class Lexicon:
    """A compiled set of terms; `find` returns every non-overlapping match, longest term first."""

    def __init__(self, entries: Iterable[LexiconEntry], allow_terms: Iterable[str] = ()):
        self.entries = tuple(entries)
        self.allow_terms = tuple(dict.fromkeys(t for t in allow_terms if t.strip()))
        by_term: dict[str, list[LexiconEntry]] = {}
        for entry in self.entries:
            by_term.setdefault(entry.term, []).append(entry)
        self._by_group: dict[str, tuple[str, list[LexiconEntry]]] = {}
        alternatives_by_char: dict[str, list[str]] = {}
        for i, term in enumerate(sorted(by_term, key=lambda t: (-len(t.strip("*")), t))):
            self._by_group[f"t{i}"] = (term, by_term[term])
            alternative = f"(?P<t{i}>{term_pattern(term)})"
            for ch in _first_chars(term):
                alternatives_by_char.setdefault(ch, []).append(alternative)
        # One regex per possible first character: at each word start only the terms that can begin there are tried.
        self._by_first_char = {ch: re.compile("|".join(alts)) for ch, alts in alternatives_by_char.items()}
        self._allow_regex = (
            re.compile("|".join(term_pattern(t) for t in sorted(self.allow_terms, key=len, reverse=True)))
            if self.allow_terms else None
        )

    def allowed_spans(self, normalized: str) -> list[tuple[int, int]]:
        """Where allowlisted words lie in `normalized`: sorted, disjoint (start, end) pairs."""
        return [m.span() for m in self._allow_regex.finditer(normalized)] if self._allow_regex else []

    def find(self, normalized: str, allowed: list[tuple[int, int]] | None = None) -> list[LexiconMatch]:
        """Matches in `normalized` (already normalised text), skipping those inside allowlisted words (`allowed`,
        from `allowed_spans`, when the caller has them already)."""
        if not self._by_first_char or not normalized:
            return []
        allowed = self.allowed_spans(normalized) if allowed is None else allowed
        # Allowed spans are sorted and disjoint: only the last one starting at or before a match can contain it.
        allowed_starts = [a for a, _ in allowed]
        matches: list[LexiconMatch] = []
        covered_until = 0
        failed_star = -2
        for word_start in _WORD_START.finditer(normalized):
            pos = word_start.start()
            regex = self._by_first_char.get(normalized[pos])
            if pos < covered_until or regex is None:
                continue
            if normalized[pos] == "*" and pos == failed_star + 1:
                # Only wildcard-prefix terms start at a "*", and their [a-z*]* prefix already read this star in the
                # failed attempt at the one before: a run of stars costs one attempt, not one per star.
                failed_star = pos
                continue
            m = regex.match(normalized, pos)
            if m is None:
                failed_star = pos if normalized[pos] == "*" else failed_star
                continue
            start, end = m.span()
            inside = bisect_right(allowed_starts, start) - 1
            if inside >= 0 and end <= allowed[inside][1]:
                continue
            covered_until = end
            term, entries = self._by_group[m.lastgroup]
            matches.extend(LexiconMatch(start, end, term, e.category, e.weight) for e in entries)
        return matches

    def blank_allowed(self, normalized: str, allowed: list[tuple[int, int]] | None = None) -> str:
        """`normalized` with allowlisted words replaced by spaces (same length, so offsets still hold)."""
        allowed = self.allowed_spans(normalized) if allowed is None else allowed
        if not allowed:
            return normalized
        pieces, done = [], 0
        for start, end in allowed:
            pieces += [normalized[done:start], " " * (end - start)]
            done = end
        return "".join(pieces) + normalized[done:]

    def with_user_terms(self, blocklist=None, allowlist=None) -> "Lexicon":
        """This lexicon plus a caller's blocklist and allowlist (normalised the same way as the text)."""
        extra = list(_user_entries(blocklist))
        allow = [normalize_text(t).strip() for t in (allowlist or ())]
        if not extra and not allow:
            return self
        return _extended(self, tuple(extra), tuple(allow))


@lru_cache(maxsize=64)
def _extended(base: Lexicon, extra: tuple[LexiconEntry, ...], allow: tuple[str, ...]) -> Lexicon:
    return Lexicon(base.entries + extra, base.allow_terms + allow)


def _user_entries(blocklist) -> Iterable[LexiconEntry]:
    """A blocklist is a list of terms (counted as profanity) or a mapping category -> list of terms."""
    if blocklist is None:
        return
    if isinstance(blocklist, str):
        raise TypeError("blocklist must be a list of terms or a mapping category -> terms, not a single string")
    groups = blocklist.items() if isinstance(blocklist, Mapping) else [("profanity", blocklist)]
    for category, terms in groups:
        if category not in TEXT_CATEGORIES:
            raise ValueError(f"unknown blocklist category {category!r}; expected one of {', '.join(TEXT_CATEGORIES)}")
        if isinstance(terms, str):
            terms = [terms]
        for term in terms:
            cleaned = re.sub(r"[^a-z0-9' ]+", " ", normalize_text(str(term))).strip()
            if cleaned:
                yield LexiconEntry(category, 1.0, cleaned)


def _read_entries() -> tuple[list[LexiconEntry], list[str]]:
    entries, allow = [], []
    text = resources.files("moderation.data").joinpath("lexicon.tsv").read_text(encoding="utf-8")
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        category, weight, term = line.split("\t")
        if category == ALLOW:
            allow.append(term)
        elif category in TEXT_CATEGORIES:
            entries.append(LexiconEntry(category, float(weight), term))
        else:
            raise ValueError(f"lexicon.tsv line {line_no}: unknown category {category!r}")
    return entries, allow


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The bundled lexicon, compiled once per process."""
    entries, allow = _read_entries()
    return Lexicon(entries, allow)


def category_terms() -> dict[str, tuple[str, ...]]:
    """Plain spellings of the default terms per category (for decode-time blocking in generation)."""
    terms: dict[str, list[str]] = {c: [] for c in TEXT_CATEGORIES}
    for entry in default_lexicon().entries:
        terms[entry.category].append(entry.term.strip("*"))
    return {c: tuple(dict.fromkeys(t)) for c, t in terms.items()}
