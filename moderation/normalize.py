"""Evasion-resistant text normalisation that remembers where every character came from.

Moderation has to see through "f.u.c.k", "sh1t", "іdіоt" (Cyrillic і and о), "fuuuuck" and zero-width joiners,
yet report spans in the text the user actually wrote. `normalize` therefore returns the normalised string
together with `origin`: for every normalised character, the index of the original character it came from.

Steps, in order (each is idempotent, so normalising twice changes nothing):
0. HTML character references decoded ("&amp;" -> "&", "&#8220;" -> a quotation mark, "&#128514;" -> the emoji):
   text taken from web pages and social-media APIs carries them, and their digits would read as a number.
   (Applied after the other steps too, until none is left: text escaped twice decodes fully.)
1. Unicode NFKC per character (full-width letters, ligatures, styled maths letters), accents stripped,
   zero-width and control characters dropped.
2. Homoglyph folding of Cyrillic/Greek look-alikes, only inside words that mix them with Latin letters or
   consist of look-alikes alone (so real Russian or Greek words are left alone).
3. Case folding.
4. Separated single characters joined: "f.u.c.k", "k i l l" -> "fuck", "kill" (three or more in a row).
5. Leetspeak inside words (`LEET`: 0->o, 1->i, 3->e, 4/@->a, 5/$->s, 7->t, !->i, |->l, €->e), but not in tokens
   that look like numbers with a unit ("10pm", "2nd") or names with a number ("covid19"). `LEET` and the lexicon's
   per-letter forms both derive from the one table `LOOKALIKES`.
6. Letters repeated three or more times collapsed to one: "fuuuuck" -> "fuck", "sooo" -> "so".
"""
from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u034f\u180e")

HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ɡ": "g", "һ": "h",
    "ӏ": "l", "ԛ": "q", "ԝ": "w", "ь": "b",
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c", "Т": "t",
    "У": "y", "Х": "x", "Ѕ": "s", "І": "i", "Ј": "j",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "ϲ": "c", "ω": "w", "η": "n",
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o",
    "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
}
# Every look-alike in either case: the text is case-folded after this table is applied, so a capital whose small
# letter is a look-alike ("Ω" -> "ω") must be folded too, or normalising twice would change the text again.
HOMOGLYPHS |= {capital: latin for small, latin in list(HOMOGLYPHS.items())
               if len(capital := small.upper()) == 1 and capital != small and capital not in HOMOGLYPHS}

#: The one table of leetspeak and look-alike characters: each character -> the letters it is written for, the
#: normaliser's reading first. Both uses derive from it, so they cannot drift apart:
#: - `LEET`, what the normaliser rewrites inside words: every character except those in `READ_AS_THEMSELVES`, as its
#:   first letter;
#: - `LETTER_FORMS`, the lexicon's per-letter character classes: every character, for each letter it is written for
#:   (a class can complete only a listed term, so a character with an innocent reading of its own is harmless there).
LOOKALIKES = {
    "0": "o", "1": "il", "3": "e", "4": "a", "@": "a", "5": "s", "$": "s", "7": "t", "!": "i", "|": "li", "€": "e",
    "8": "b", "9": "g", "+": "t", "z": "s", "v": "u",
}
#: Look-alikes that ordinary text writes for themselves, so rewriting them in every word would raise Scunthorpe alarms
#: and blur the model's features: letters ("size", "zoo", "lives"), "8" that reads "ate" ("gr8", "l8r", "h8ers"), "9"
#: in names and times ("k9s", "9am") and "+" in "c++", "a+b" and as the separator in "k+i+l+l".
READ_AS_THEMSELVES = frozenset("89+zv")
LEET = {ch: letters[0] for ch, letters in LOOKALIKES.items() if ch not in READ_AS_THEMSELVES}
#: letter -> the characters that may stand for it in a lexicon term (beyond the letter itself).
LETTER_FORMS = {letter: "".join(ch for ch, letters in LOOKALIKES.items() if letter in letters)
                for letter in sorted(set("".join(LOOKALIKES.values())))}
# Symbols that are only leet between two word characters ("sh!t", "b@stard"); at a word's edge they are punctuation.
_EDGE_SENSITIVE = frozenset("!|@")
# A single letter or digit, then two or more times: the same separator and another single character.
_SPACED_RUN = re.compile(r"(?<![^\W_])[^\W_](?=([ .\-_·•,/+~]))(?:\1[^\W_](?![^\W_])){2,}")
_LOOKALIKES = frozenset(HOMOGLYPHS)
_LEET_CHARS = frozenset(LEET)
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_STRETCHED = re.compile(r"([^\W\d_])\1\1")
_NUMBER_WITH_UNIT = re.compile(r"^\d+[a-z]{0,3}$|^[a-z]+\d+$")
# A word-like token for leetspeak: a maximal run of letters and digits (not "_"), leet symbols and "*" masks. Only
# a run that holds a leet character can change.
_TOKEN_RUN = re.compile("(?:[^\\W_]|[" + re.escape("".join(ch for ch in LEET if not ch.isalnum())) + "*])+")
# Inside a token, what may change: a run of edge-sensitive symbols (leet only inside the token) or one other leet
# character.
_LEET_RUN = re.compile(f"[{re.escape(''.join(_EDGE_SENSITIVE))}]+|"
                       f"[{re.escape(''.join(set(LEET) - _EDGE_SENSITIVE))}]")
# Three or more of one character: a stretched letter when that character is a letter.
_RUN_OF_THREE = re.compile(r"(.)\1{2,}", re.S)
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class Normalized:
    """A normalised string and, for each of its characters, the index of the original character it came from."""

    text: str
    origin: tuple[int, ...]
    original: str

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span of the normalised text back to a half-open span of the original text."""
        if start >= end:
            raise ValueError("empty span")
        return self.origin[start], self.origin[end - 1] + 1


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    """NFKC, then strip combining accents; returns '' for characters that carry no text."""
    if ch in ZERO_WIDTH:
        return ""
    category = unicodedata.category(ch)
    if category in ("Cc", "Cf", "Cs", "Co", "Cn") and ch not in "\t\n":
        return ""
    if ch.isascii():
        return ch
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", ch))
    return "".join(c for c in decomposed if not unicodedata.combining(c)) or ""


def _fold_homoglyph_words(chars: list[str]) -> list[str]:
    """Replace look-alikes only in words that mix them with Latin letters, or are made of look-alikes alone."""
    out = list(chars)
    i, n = 0, len(chars)
    while i < n:
        if not chars[i].isalpha():
            i += 1
            continue
        j = i
        while j < n and (chars[j].isalpha() or chars[j] in LEET):
            j += 1
        word = chars[i:j]
        letters = [c for c in word if c.isalpha()]
        lookalikes = sum(c in HOMOGLYPHS for c in letters)
        latin = sum(c.isascii() for c in letters)
        if lookalikes and (latin or lookalikes == len(letters)):
            for k in range(i, j):
                out[k] = HOMOGLYPHS.get(chars[k], chars[k])
        i = j
    return out


def _unleet(text: str) -> str:
    """Turn leetspeak into letters inside word-like tokens that contain at least one letter (same length)."""
    pieces, done = [], 0
    for token_match in _TOKEN_RUN.finditer(text):
        token = token_match.group()
        if _LEET_CHARS.isdisjoint(token) or not _LETTER.search(token) or _NUMBER_WITH_UNIT.match(token):
            continue
        i, j = token_match.span()
        for run in _LEET_RUN.finditer(text, i, j):
            start, end = run.span()
            if text[start] in _EDGE_SENSITIVE and (start == i or end == j):  # such a run is leet only with word
                continue  # characters on both sides
            pieces += [text[done:start], "".join(LEET[c] for c in text[start:end])]
            done = end
    return "".join(pieces) + text[done:] if pieces else text


def _join_spaced_letters(text: str, origin: list[int] | None) -> tuple[str, list[int] | None]:
    """Join three or more single characters split by one repeated separator: 'k i l l', 'f.u.c.k', 'k 1 l l'.
    `origin` None stands for "each character is its own origin" (the caller's fast path)."""
    drop: set[int] = set()
    for match in _SPACED_RUN.finditer(text):
        if any(c.isalpha() for c in match.group(0)):
            drop.update(i for i in range(match.start(), match.end()) if not text[i].isalnum())
    if not drop:
        return text, origin
    origin = range(len(text)) if origin is None else origin
    kept = [i for i in range(len(text)) if i not in drop]
    return "".join(text[i] for i in kept), [origin[i] for i in kept]


def _collapse_repeats(text: str, origin: list[int] | None) -> tuple[str, list[int]]:
    """Collapse a letter repeated three or more times to one: stretched words become dictionary words."""
    origin = range(len(text)) if origin is None else origin
    out_c: list[str] = []
    out_o: list[int] = []
    done = 0
    for run in _RUN_OF_THREE.finditer(text):
        if run.group(1).isalpha():
            keep = run.start() + 1
            out_c.append(text[done:keep])
            out_o += origin[done:keep]
            done = run.end()
    return "".join(out_c) + text[done:], out_o + list(origin[done:])


#: An HTML character reference: named ("&amp;"), decimal ("&#8220;") or hexadecimal ("&#x1F602;"), with its ";".
_CHARACTER_REFERENCE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});")


def _decode_references(text: str) -> tuple[str, list[int]] | None:
    """`text` with its HTML character references decoded and, per decoded character, the index of the original
    character it came from (a reference's characters all come from its "&"); None when it has none that decode."""
    decoded, origin, done = [], [], 0
    for match in _CHARACTER_REFERENCE.finditer(text):
        value = html.unescape(match.group())
        if value == match.group():
            continue  # not a reference HTML knows ("&nbsp" is, "&lol;" is not): kept as written
        decoded.append(text[done:match.start()])
        origin += range(done, match.start())
        decoded.append(value)
        origin += [match.start()] * len(value)
        done = match.end()
    if not decoded:
        return None
    decoded.append(text[done:])
    origin += range(done, len(text))
    return "".join(decoded), origin


def normalize(text: str) -> Normalized:
    """Normalise `text` for matching and features; see the module docstring for the steps.

    Each step is skipped when the text cannot need it (plain ASCII, no look-alikes, no leet characters, no
    stretched letters), which keeps ordinary text cheap.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize() expects str, got {type(text).__name__}")
    # Decoded until none is left, so that normalising twice changes nothing: text escaped twice ("&amp;lt;"), or a
    # reference that step 1 spells out ("＆amp;" -> "&amp;"), decodes again; each round shortens the text.
    source, origin = text, None  # origin: where in `text` each character of `source` came from (None: itself)
    while True:
        references = _decode_references(source) if "&" in source else None
        if references is not None:
            source, decoded_origin = references
            origin = decoded_origin if origin is None else [origin[i] for i in decoded_origin]
        result = _normalize_decoded(source)
        if origin is not None:
            result = Normalized(result.text, tuple([origin[i] for i in result.origin]), text)
        if "&" not in result.text or _decode_references(result.text) is None:
            return result
        source, origin = result.text, result.origin


def _normalize_decoded(text: str) -> Normalized:
    """`normalize` from step 1 on."""
    if text.isascii() and _ASCII_CONTROL.search(text) is None:
        if _SPACED_RUN.search(text) is None:
            return _normalize_by_piece(text)
        # Lower-casing ASCII keeps every character in place: the origin map stays the identity (None) until a step
        # drops or joins characters.
        folded, origin = text.lower(), None
    else:
        by_piece = _normalize_by_piece(text)
        if by_piece is not None:
            return by_piece
        folded, origin = _fold_characters(text)
    folded, origin = _join_spaced_letters(folded, origin)
    return _within_runs(folded, origin, text)


def _fold_characters(text: str) -> tuple[str, list[int]]:
    """Steps 1 to 3 (NFKC and accents, look-alike words, case folding) and each character's origin."""
    chars, origin = [], []
    for index, ch in enumerate(text):
        for folded_ch in _fold_char(ch):
            chars.append(folded_ch)
            origin.append(index)
    if not _LOOKALIKES.isdisjoint(chars):
        chars = _fold_homoglyph_words(chars)
    lowered_chars: list[str] = []
    lowered_origin: list[int] = []
    for ch, o in zip(chars, origin):
        for low in ch.casefold():
            lowered_chars.append(low)
            lowered_origin.append(o)
    return "".join(lowered_chars), lowered_origin


def _within_runs(folded: str, origin, text: str) -> Normalized:
    """Steps 5 and 6 (leetspeak, stretched letters), which work within runs of non-space characters."""
    folded, origin = _leet_and_repeats(folded, origin)
    return Normalized(folded, tuple(range(len(folded))) if origin is None else tuple(origin), text)


def _leet_and_repeats(folded: str, origin):
    if not _LEET_CHARS.isdisjoint(folded):
        folded = _unleet(folded)
    if _STRETCHED.search(folded):
        folded, origin = _collapse_repeats(folded, origin)
    return folded, origin


#: Piece (text between single spaces) -> (its normalised form, its origin map or None for the identity, and for a
#: piece that is not plain ASCII its form after steps 1 to 3, else None).
_pieces: dict[str, tuple[str, tuple[int, ...] | None, str | None]] = {}
_MAX_PIECES = 200_000


def _normalize_piece(piece: str) -> tuple[str, tuple[int, ...] | None, str | None]:
    known = _pieces.get(piece)
    if known is None:
        if piece.isascii() and _ASCII_CONTROL.search(piece) is None:
            folded3 = None
            folded, origin = _leet_and_repeats(piece.lower(), None)
        else:
            folded3, origin = _fold_characters(piece)
            folded, origin = _leet_and_repeats(folded3, origin)
        if len(_pieces) >= _MAX_PIECES:
            _pieces.clear()
        known = _pieces[piece] = (folded, None if origin is None else tuple(origin), folded3)
    return known


def _normalize_by_piece(text: str) -> Normalized | None:
    """Every step but joining separated letters works within a piece of text between single spaces (steps 1 to 3
    character by character or word by word, 5 and 6 within runs of non-space characters), so a text with no
    separated letters to join is normalised piece by piece, each distinct piece once per process (words repeat),
    with the same result as the whole-text steps. None when, after steps 1 to 3, the text has separated letters
    (the caller checks plain ASCII text for them first)."""
    pieces, known = text.split(" "), _pieces.get
    results = [known(p) or _normalize_piece(p) for p in pieces]
    if any(r[2] is not None for r in results):
        folded3 = " ".join([p.lower() if r[2] is None else r[2] for p, r in zip(pieces, results)])
        if _SPACED_RUN.search(folded3) is not None:
            return None
    folded = " ".join([r[0] for r in results])
    if all(r[1] is None for r in results):  # each character is its own origin
        return Normalized(folded, tuple(range(len(text))), text)
    origin: list[int] = []
    at = 0
    for piece, (normal, piece_origin, _) in zip(pieces, results):
        if piece_origin is None:
            origin.extend(range(at, at + len(normal)))
        else:
            origin.extend(at + o for o in piece_origin)
        origin.append(at + len(piece))  # the space after it (one too many at the end)
        at += len(piece) + 1
    return Normalized(folded, tuple(origin[:-1]), text)


def normalize_text(text: str) -> str:
    """Just the normalised string (what the vectorisers and the lexicon read)."""
    return normalize(text).text
