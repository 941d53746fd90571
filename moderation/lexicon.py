"""Word lists per category, matched over normalised text, with allow/block lists that go through the same normaliser.

Matching is word-boundary aware: a whole-word term ("cunt*", "ass") never fires inside "Scunthorpe",
"assassin" or "class", and stems that may hide in longer words ("*shit*") skip the allowlisted names that
contain them ("Shitterton"). Each letter of a term also accepts its leetspeak and look-alike forms (derived from
`normalize.LOOKALIKES`, the one table the normaliser's de-leeting comes from too) and, inside a word,
a masking "*" ("f*ck", "b***h"), and any number of repeats ("fuuuck"), so the normaliser and the matcher
together cover the common evasions.

Caller terms (a blocklist or allowlist passed with a request) are untrusted: a public server compiles whatever a
visitor types. They are cleaned to letters, digits, apostrophes and spaces, capped in number and length, and
built by `caller_term_pattern` from possessive pieces that the regex engine can read only one way, so one attempt
costs time linear in the text it reads (a 34-letter term like "a'a'a'...c" held the server for 32 s before).
"""
from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import accumulate
from typing import Iterable, Mapping

from .normalize import LETTER_FORMS, LOOKALIKES, normalize_text
from .taxonomy import TEXT_CATEGORIES

ALLOW = "allow"
# Which characters may stand for a letter (beyond the letter itself) come from the normaliser's one table; the
# symbols among them, and the masking "*", can start a word or a term and never separate the words of a term.
_SYMBOLS = "".join(ch for ch in LOOKALIKES if not ch.isalnum()) + "*"
_WORD_GAP = r"[^a-z0-9]{0,3}"
_START = r"(?<![a-z0-9])"
_WORD_START = re.compile(rf"(?<![a-z0-9{re.escape(_SYMBOLS)}])[^\W_]|(?<![a-z0-9])[{re.escape(_SYMBOLS)}]")
_ANY_FIRST = "abcdefghijklmnopqrstuvwxyz0123456789" + _SYMBOLS
_END = r"(?![a-z0-9])"
#: Caps on a caller's blocklist or allowlist (one request's terms): enough for a community's local words, small
#: enough that compiling and matching them stays a few milliseconds.
MAX_CALLER_TERMS = 200
MAX_CALLER_TERM_CHARS = 64
#: Between the words of a caller term: up to three separators, never a character that can stand for a letter.
_CALLER_GAP = rf"[^a-z0-9{re.escape(_SYMBOLS)}']{{0,3}}+"
LEXICON, BLOCKLIST = "lexicon", "blocklist"


@dataclass(frozen=True)
class LexiconEntry:
    category: str
    weight: float
    term: str
    source: str = LEXICON  # LEXICON (the bundled list) or BLOCKLIST (a caller's term: decisive, safe pattern)


@dataclass(frozen=True)
class LexiconMatch:
    """A term found in normalised text: [start, end) are offsets into the normalised string."""

    start: int
    end: int
    term: str
    category: str
    weight: float
    source: str = LEXICON

    @property
    def decisive(self) -> bool:
        """A caller's blocklist term flags its category whatever the model says."""
        return self.source == BLOCKLIST


def _letter_pattern(letter: str, position: str) -> str:
    """One letter of a term: a run of the letter (after at most one look-alike, "!idiot"), or ONE look-alike.

    `position` in a word of three or more characters is "first", "interior" or "last" ("plain" otherwise): between
    the first and the last letter, one "*" may stand for each interior letter or follow any letter, and any stars
    may precede the last one ("f*ck", "b***h", "f*u*c*k", "sh***t"). Look-alikes and masking stars count once each
    so that a run of them can be read only one way: letters that each took a run of shared characters let the regex
    engine try every split of the run ("s" and 40 stars held it for 35 seconds)."""
    forms = LETTER_FORMS.get(letter, "")
    # "[forms]?letter+ or one form" is "(a form or the letter), then the letter repeated": the same strings, tried in
    # the same order, and it starts with a character set, which lets the regex engine skip a term at once
    pattern = f"[{re.escape(forms + letter)}]{letter}*" if forms else f"{letter}+"
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
    return first + LETTER_FORMS.get(first, "")


def _term_pieces(term: str) -> tuple[str, list[str], str]:
    """A term's pattern in three pieces: its head (word start and a wildcard prefix), one pattern per word (joined
    by _WORD_GAP), and its tail (a wildcard suffix or a plural ending and the word end)."""
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
    head = _START + ("[a-z*]*" if prefix_wild else "")
    tail = "[a-z*]*" if suffix_wild else "(?:e?s)?" + _END
    return head, parts, tail


def term_pattern(term: str) -> str:
    """Regex source for one term (syntax in data/lexicon.tsv): leetspeak, masks, stretching, word boundaries."""
    head, parts, tail = _term_pieces(term)
    return head + _WORD_GAP.join(parts) + tail


def _continuation_patterns(term: str) -> list[str]:
    """For a term of several words: its first word(s), then at most a gap's worth of non-letters and the end of the
    string. A chunk (text between whitespace) that one of these matches at a word start may begin a match of the
    term that runs on past the chunk's end; no other match can (a gap is the only part of a term that can read
    whitespace)."""
    head, parts, _ = _term_pieces(term)
    return [head + _WORD_GAP.join(parts[:k]) + r"[^a-z0-9]{0,3}\Z" for k in range(1, len(parts))]


def caller_term_pattern(term: str) -> str:
    """Regex source for a caller's term (already cleaned by `clean_caller_terms`) that cannot backtrack.

    Each run of one letter in the term ("ss" in "kiss") becomes ONE possessive run of that letter and its
    look-alikes, at least as long as the term's run; an inner letter may instead be a single "*" mask; an optional
    apostrophe after any letter and the separators between words are possessive too. Consecutive runs are of
    different letters, so no piece can take characters the next one needs: at each start the engine reads the
    text once. The price is a few exotic spellings the bundled lexicon's patterns accept (runs of masks).
    """
    words = term.replace("'", "").split()
    if not words:
        raise ValueError(f"empty term {term!r}")
    parts = []
    for word in words:
        runs: list[list] = []
        for ch in word:
            if runs and runs[-1][0] == ch:
                runs[-1][1] += 1
            else:
                runs.append([ch, 1])
        pieces = []
        for i, (ch, count) in enumerate(runs):
            letters = re.escape(ch + LETTER_FORMS.get(ch, ""))
            run = f"[{letters}]{{{count},}}+" if count > 1 else f"[{letters}]++"
            if 0 < i < len(runs) - 1 and count == 1:
                run = rf"(?>{run}|\*)"
            pieces.append(run + "'?+")
        parts.append("".join(pieces))
    return _START + _CALLER_GAP.join(parts) + "(?:e?s)?+" + _END


def clean_caller_terms(terms, kind: str = "blocklist") -> list[str]:
    """A caller's terms normalised like the text and reduced to letters, digits, apostrophes and single spaces.

    A lone str is refused (it would otherwise be read letter by letter); so are more than MAX_CALLER_TERMS terms,
    a term over MAX_CALLER_TERM_CHARS characters and a term with no letter or digit (".*" once allowed every word).
    """
    if terms is None:
        return []
    if isinstance(terms, str) or not isinstance(terms, Iterable):
        raise TypeError(f"{kind} must be a list of terms, not {type(terms).__name__}")
    terms = list(terms)
    if len(terms) > MAX_CALLER_TERMS:
        raise ValueError(f"{kind} has {len(terms):,} terms; at most {MAX_CALLER_TERMS} are accepted")
    cleaned = []
    for term in terms:
        if not isinstance(term, str):
            raise TypeError(f"{kind} terms must be str, got {type(term).__name__}")
        if len(term) > MAX_CALLER_TERM_CHARS:
            raise ValueError(f"a {kind} term is {len(term):,} characters long; at most {MAX_CALLER_TERM_CHARS} "
                             f"are accepted")
        plain = " ".join(re.sub(r"[^a-z0-9' ]+", " ", normalize_text(term)).split())
        if not term.strip():
            continue
        if not re.search("[a-z0-9]", plain):
            raise ValueError(f"{kind} term {term!r} has no letter or digit to match")
        cleaned.append(plain)
    return list(dict.fromkeys(cleaned))


def _compile_terms(entries, build) -> tuple[dict[str, re.Pattern], dict[str, tuple[str, list[LexiconEntry]]]]:
    """One regex per possible first character (at each word start only the terms that can begin there are tried),
    and the entries behind each named group; longer terms come first in each alternation.

    Every term's pattern starts with the word-start assertion _START: written once in front, it leaves each
    alternative starting with its first letter's character set, and an empty named group at its end says which
    term matched, so the engine rejects a term that cannot start here with one test instead of entering its group."""
    by_term: dict[str, list[LexiconEntry]] = {}
    for entry in entries:
        by_term.setdefault(entry.term, []).append(entry)
    groups: dict[str, tuple[str, list[LexiconEntry]]] = {}
    alternatives_by_char: dict[str, list[str]] = {}
    for i, term in enumerate(sorted(by_term, key=lambda t: (-len(t.strip("*")), t))):
        groups[f"t{i}"] = (term, by_term[term])
        for ch in _first_chars(term):
            alternatives_by_char.setdefault(ch, []).append(f"{_without_start(build(term))}(?P<t{i}>)")
    return {ch: re.compile(f"{_START}(?:{'|'.join(alts)})") for ch, alts in alternatives_by_char.items()}, groups


def _without_start(pattern: str) -> str:
    if not pattern.startswith(_START):
        raise ValueError(f"a term pattern must start with {_START}: {pattern[:40]!r}")
    return pattern[len(_START):]


def _attempts(normalized: str, by_first_char, allowed: list[tuple[int, int]]):
    """The scan's attempts in order: (word start, its match or None), for every word start not inside an earlier
    match, skipping matches inside allowlisted words."""
    # Allowed spans are sorted and disjoint: only the last one starting at or before a match can contain it.
    allowed_starts = [a for a, _ in allowed]
    covered_until = 0
    failed_star = -2
    for word_start in _WORD_START.finditer(normalized):
        pos = word_start.start()
        regex = by_first_char.get(normalized[pos])
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
            yield pos, None
            continue
        start, end = m.span()
        inside = bisect_right(allowed_starts, start) - 1
        if inside >= 0 and end <= allowed[inside][1]:
            continue
        covered_until = end
        yield pos, m


def _scan(normalized: str, by_first_char, groups, allowed: list[tuple[int, int]]) -> list[LexiconMatch]:
    """Non-overlapping matches of one compiled term set, word start by word start, outside allowlisted words."""
    matches: list[LexiconMatch] = []
    for _, m in _attempts(normalized, by_first_char, allowed):
        if m is not None:
            term, entries = groups[m.lastgroup]
            matches.extend(LexiconMatch(m.start(), m.end(), term, e.category, e.weight, e.source) for e in entries)
    return matches


class _ChunkScanner:
    """The bundled terms' scan, remembered per chunk (a run of text between whitespace): chunks repeat (words do),
    and a term can read whitespace only in the gap between its words, so a text's matches are its chunks' matches
    put together, unless a term of several words may run from one chunk into the next.

    Per distinct chunk it keeps the matches and, for each word start where a term's first word(s) reach the
    chunk's end (`_continuation_patterns`), what the attempt there found. A text whose attempts at those places
    find the same in the whole text (almost always: "you" then "are" is not "you suck") gets its chunks' matches;
    any other is scanned whole. Same matches as `_scan`, several times faster on text the process has seen words of.
    """

    MAX_CHUNKS = 200_000

    def __init__(self, by_first_char, groups, entries):
        self.by_first_char, self.groups = by_first_char, groups
        continuations: dict[str, list[str]] = {}
        for term in dict.fromkeys(e.term for e in entries):
            if len(term.strip("*").split()) > 1:
                for ch in _first_chars(term):
                    continuations.setdefault(ch, []).extend(
                        _without_start(p) for p in _continuation_patterns(term))
        self.continuations = {ch: re.compile(f"{_START}(?:{'|'.join(alts)})") for ch, alts in continuations.items()}
        self.chunks: dict[str, tuple] = {}

    def _chunk(self, chunk: str) -> tuple:
        found, risky = [], []
        for pos, m in _attempts(chunk, self.by_first_char, []):
            if m is not None:
                term, entries = self.groups[m.lastgroup]
                found.extend((m.start(), m.end(), term, e.category, e.weight, e.source) for e in entries)
            continuation = self.continuations.get(chunk[pos])
            if continuation is not None and continuation.match(chunk, pos):
                risky.append((pos, None if m is None else (m.end(), m.lastgroup)))
        if len(self.chunks) >= self.MAX_CHUNKS:
            self.chunks.clear()
        result = self.chunks[chunk] = (tuple(found), tuple(risky))
        return result

    def find(self, normalized: str) -> list[LexiconMatch]:
        chunks, known = normalized.split(), self.chunks
        results = [known.get(c) or self._chunk(c) for c in chunks]
        needed = [i for i, (found, risky) in enumerate(results) if found or risky]
        if not needed:
            return []
        if " ".join(chunks) == normalized:  # one space between chunks: where each starts is a running sum
            starts = list(accumulate(map(len, chunks), lambda at, size: at + size + 1, initial=0))
        else:
            starts, at = [], 0
            for chunk in chunks:
                at = normalized.find(chunk, at)
                starts.append(at)
                at += len(chunk)
        matches: list[LexiconMatch] = []
        for i in needed:
            found, risky = results[i]
            at = starts[i]
            for pos, local in risky:
                m = self.by_first_char[chunks[i][pos]].match(normalized, at + pos)
                if (None if m is None else (m.end() - at, m.lastgroup)) != local:
                    return _scan(normalized, self.by_first_char, self.groups, [])  # a term runs across chunks
            matches += [LexiconMatch(at + start, at + end, *rest) for start, end, *rest in found]
        return matches


def _allow_regex(allow: list[tuple[str, str]]) -> re.Pattern:
    """One alternation of the allowlist's patterns (longest term first), searched over the whole text.

    Every pattern starts with the word-start assertion _START; written once in front, behind a look-ahead for the
    characters a term can start with (when every term starts with a letter or digit), it lets the engine reject
    most positions at once instead of trying each term there (73 -> 11 µs a tweet). Same matches."""
    patterns = [(caller_term_pattern if source == BLOCKLIST else term_pattern)(t)
                for t, source in sorted(allow, key=lambda a: -len(a[0]))]
    if not all(p.startswith(_START) for p in patterns):
        return re.compile("|".join(patterns))
    bodies = "|".join(p[len(_START):] for p in patterns)
    if not all(t[0].isalnum() for t, _ in allow):  # a term that starts with "*" or "'": any start may match
        return re.compile(f"{_START}(?:{bodies})")
    firsts = "".join(sorted({ch for t, _ in allow for ch in _first_chars(t)}))
    return re.compile(f"(?=[{re.escape(firsts)}]){_START}(?:{bodies})")


class Lexicon:
    """A compiled set of terms; `find` returns every non-overlapping match, longest term first."""

    def __init__(self, entries: Iterable[LexiconEntry], allow_terms: Iterable[str] = (),
                 caller_allow_terms: Iterable[str] = (), bundled_like: "Lexicon | None" = None):
        """bundled_like: a lexicon with the same bundled (LEXICON) entries, whose compiled scan and per-chunk
        results are shared instead of built again (a caller's terms extend the default lexicon per request)."""
        self.entries = tuple(entries)
        self.allow_terms = tuple(dict.fromkeys(t for t in allow_terms if t.strip()))
        self.caller_allow_terms = tuple(dict.fromkeys(t for t in caller_allow_terms if t.strip()))
        # The bundled terms and a caller's blocklist are scanned apart, so a caller's term flags its category even
        # where a bundled term covers the same words ("fuck" inside the bundled "*fuck*").
        bundled = [e for e in self.entries if e.source == LEXICON]
        shared = bundled_like is not None and [e for e in bundled_like.entries if e.source == LEXICON] == bundled
        self._scanners = [
            bundled_like._scanners[0] if shared else _compile_terms(bundled, term_pattern),
            _compile_terms([e for e in self.entries if e.source == BLOCKLIST], caller_term_pattern),
        ]
        allow = [*((t, LEXICON) for t in self.allow_terms), *((t, BLOCKLIST) for t in self.caller_allow_terms)]
        self._allow_regex = _allow_regex(allow) if allow else None
        self._allow_chunks = {} if all(len(t.split()) == 1 for t, _ in allow) else None
        by_char, groups = self._scanners[0]
        if shared:
            self._bundled = bundled_like._bundled
        else:
            self._bundled = _ChunkScanner(by_char, groups, bundled) if by_char else None

    def allowed_spans(self, normalized: str) -> list[tuple[int, int]]:
        """Where allowlisted words lie in `normalized`: sorted, disjoint (start, end) pairs."""
        if self._allow_regex is None:
            return []
        if self._allow_chunks is not None:
            # Terms of one word never read whitespace: a text none of whose chunks holds one holds none. Per
            # distinct chunk the answer is remembered, so most texts cost one split and a dictionary look-up a chunk.
            known, search = self._allow_chunks, self._allow_regex.search
            if len(known) >= _ChunkScanner.MAX_CHUNKS:
                known.clear()
            if not any([known[c] if c in known else known.setdefault(c, search(c) is not None)
                        for c in normalized.split()]):
                return []
        return [m.span() for m in self._allow_regex.finditer(normalized)]

    def find(self, normalized: str, allowed: list[tuple[int, int]] | None = None) -> list[LexiconMatch]:
        """Matches in `normalized` (already normalised text), skipping those inside allowlisted words (`allowed`,
        from `allowed_spans`, when the caller has them already)."""
        if not normalized or not any(by_char for by_char, _ in self._scanners):
            return []
        allowed = self.allowed_spans(normalized) if allowed is None else allowed
        (bundled_by_char, bundled_groups), (caller_by_char, caller_groups) = self._scanners
        if not bundled_by_char:
            matches = []
        elif allowed:  # a skipped match inside an allowed word does not cover what follows: scan the text whole
            matches = _scan(normalized, bundled_by_char, bundled_groups, allowed)
        else:
            matches = self._bundled.find(normalized)
        if caller_by_char:
            matches = sorted(matches + _scan(normalized, caller_by_char, caller_groups, allowed),
                             key=lambda m: m.start)
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
        """This lexicon plus a caller's blocklist and allowlist (cleaned by `clean_caller_terms`)."""
        extra = _user_entries(blocklist)
        allow = clean_caller_terms(allowlist, "allowlist")
        if not extra and not allow:
            return self
        return _extended(self, tuple(extra), tuple(allow))


@lru_cache(maxsize=64)
def _extended(base: Lexicon, extra: tuple[LexiconEntry, ...], allow: tuple[str, ...]) -> Lexicon:
    return Lexicon(base.entries + extra, base.allow_terms, base.caller_allow_terms + allow, bundled_like=base)


def _user_entries(blocklist) -> list[LexiconEntry]:
    """A blocklist is a list of terms (counted as profanity) or a mapping category -> list of terms."""
    if blocklist is None:
        return []
    if isinstance(blocklist, str):
        raise TypeError("blocklist must be a list of terms or a mapping category -> terms, not a single string")
    groups = blocklist.items() if isinstance(blocklist, Mapping) else [("profanity", blocklist)]
    entries = []
    for category, terms in groups:
        if category not in TEXT_CATEGORIES:
            raise ValueError(f"unknown blocklist category {category!r}; expected one of {', '.join(TEXT_CATEGORIES)}")
        if isinstance(terms, str):
            terms = [terms]
        entries += [LexiconEntry(category, 1.0, term, BLOCKLIST) for term in clean_caller_terms(terms)]
    if len(entries) > MAX_CALLER_TERMS:
        raise ValueError(f"blocklist has {len(entries):,} terms; at most {MAX_CALLER_TERMS} are accepted")
    return entries


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
