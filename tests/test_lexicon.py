"""Lexicon matching: evasion-proof, word-boundary aware, extensible by callers."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation.lexicon import Lexicon, LexiconEntry, category_terms, default_lexicon
from moderation.normalize import LOOKALIKES, normalize
from moderation.taxonomy import TEXT_CATEGORIES


def matched(text, lexicon=None):
    norm = normalize(text)
    found = (lexicon or default_lexicon()).find(norm.text)
    return [(text[slice(*norm.original_span(m.start, m.end))], m.category) for m in found]


@pytest.mark.parametrize("text, word, category", [
    ("you f*cking idiot", "f*cking", "profanity"),
    ("what a b***h", "b***h", "profanity"),
    ("F.U.C.K off", "F.U.C.K", "profanity"),
    ("fuuuuuck this", "fuuuuuck", "profanity"),
    ("go k i l l y o u r s e l f", "k i l l y o u r s e l f", "self_harm"),
    ("ur such a 1d10t", "1d10t", "harassment"),
    ("you're an іdіоt", "іdіоt", "harassment"),
    ("a$$hole", "a$$hole", "profanity"),
    ("MOTHERFUCKER", "MOTHERFUCKER", "profanity"),
    ("I'll kill you", "kill you", "violence"),
])
def test_obfuscated_forms_are_found(text, word, category):
    assert (word, category) in matched(text)


@pytest.mark.parametrize("text", [
    "Scunthorpe United won again", "the assassin's creed DLC", "a classic cocktail in Cockermouth",
    "we stayed in Penistone and Shitterton", "Dickens and Hancock", "Fukushima and Fukuoka", "she killed it on stage",
    "grasshopper passion", "a mishit drive", "Middlesex, Essex and Sussex", "document the analytics", "therapist",
])
def test_scunthorpe_family_never_matches(text):
    assert matched(text) == []


@pytest.mark.parametrize("text, word, category", [
    ("you 8itch", "8itch", "profanity"),        # 8 for b
    ("ni99er", "ni99er", "hate"),               # 9 for g
    ("what a bi+ch", "bi+ch", "profanity"),     # + for t
    ("you cvnt", "cvnt", "profanity"),          # v for u
    ("ztupid azzhole", "ztupid", "harassment"),  # z for s
    ("n1gg3r", "n1gg3r", "hate"),
    ("wh0r€", "wh0r€", "profanity"),            # € for e
])
def test_lookalike_letters_are_matched_in_listed_terms(text, word, category):
    assert (word, category) in matched(text)


@pytest.mark.parametrize("text", [
    "a trip to the zoo", "one size fits all", "nine lives", "a v8 engine", "c++ and a+b", "meet at 9am",
    "pizza and jazz", "a buzzword", "fizz", "gr8 h8ers", "vivid views",
])
def test_lookalike_letters_raise_no_scunthorpe_alarm(text):
    assert matched(text) == []


@pytest.mark.parametrize("char", sorted(LOOKALIKES))
def test_the_lexicon_accepts_each_lookalike_for_every_letter_the_table_gives(char):
    """The lexicon's letter classes come from the normaliser's table: each character stands for each of its letters,
    in bundled terms and in a caller's blocklist, and whatever the normaliser reads it as still matches."""
    for letter in LOOKALIKES[char]:
        term = f"q{letter}q"
        bundled = Lexicon([LexiconEntry("profanity", 0.9, term)])
        caller = Lexicon([]).with_user_terms(blocklist=[term])
        assert [m.term for m in bundled.find(f"q{char}q")] == [term]
        assert [m.term for m in caller.find(f"q{char}q")] == [term]
    read_as = f"q{LOOKALIKES[char][0]}q"
    normalised = normalize(f"q{char}q").text
    assert [m.term for m in Lexicon([LexiconEntry("profanity", 0.9, read_as)]).find(normalised)] == [read_as]


def test_caller_blocklist_goes_through_the_same_normaliser():
    lexicon = default_lexicon().with_user_terms(blocklist=["pineapple"])
    assert matched("p1n3@pple on pizza", lexicon) == [("p1n3@pple", "profanity")]
    assert matched("P I N E A P P L E", lexicon) == [("P I N E A P P L E", "profanity")]


def test_blocklist_mapping_chooses_the_category_and_rejects_unknown_ones():
    lexicon = default_lexicon().with_user_terms(blocklist={"spam": ["crypto king"]})
    # The caller's term is matched apart from the bundled ones, so it counts even where "crypto" also matches.
    assert ("CRYPTO KING", "spam") in matched("the CRYPTO KING is here", lexicon)
    with pytest.raises(ValueError):
        default_lexicon().with_user_terms(blocklist={"rudeness": ["x"]})
    with pytest.raises(TypeError):
        default_lexicon().with_user_terms(blocklist="a single string")


def test_allowlist_silences_a_term_inside_an_allowed_name():
    lexicon = default_lexicon().with_user_terms(allowlist=["Dick Van Dyke"])
    assert matched("I love Dick Van Dyke films", lexicon) == []
    assert matched("what a dick", lexicon)


def test_category_terms_cover_every_category():
    terms = category_terms()
    assert set(terms) == set(TEXT_CATEGORIES)
    assert all(terms[c] for c in TEXT_CATEGORIES)
    assert all("*" not in t for ts in terms.values() for t in ts)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_matches_lie_inside_the_normalised_text(text):
    norm = normalize(text)
    for m in default_lexicon().find(norm.text):
        assert 0 <= m.start < m.end <= len(norm.text)


_PIECES = ["you", "suck", "shut", "the", "fuck", "up", "go", "die", "kill", "yourself", "white", "trash", "i",
           "know", "where", "you", "live", "sh1t", "f*ck", "scunthorpe", "idiot", "x", "*", "!!"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_PIECES), st.sampled_from([" ", "  ", ". ", "-", ".", " - ", "\u2028",
                                                                      "!! ", " *", "..."])), max_size=8))
def test_the_per_chunk_scan_finds_what_the_whole_text_scan_finds(pieces):
    """Multi-word terms may run across chunks ("shut the fuck up", "go die"): the remembered per-chunk results
    are used only where they cannot differ from scanning the text whole."""
    from moderation.lexicon import _scan

    lexicon = default_lexicon()
    text = normalize("".join(word + gap for word, gap in pieces)).text
    whole = _scan(text, *lexicon._scanners[0], lexicon.allowed_spans(text))
    assert [(m.start, m.end, m.term) for m in lexicon.find(text)] == [(m.start, m.end, m.term) for m in whole]


def test_a_callers_terms_reuse_the_bundled_scan():
    """Extending the default lexicon per request shares its compiled bundled terms and remembered chunks, and finds
    the same bundled matches plus the caller's."""
    base = default_lexicon()
    extended = base.with_user_terms(["pineapple pizza"], ["cumming"])
    assert extended._bundled is base._bundled and extended._scanners[0] is base._scanners[0]
    text = normalize("you idiot, pineapple pizza is shit").text
    found = [(m.start, m.term) for m in extended.find(text)]
    callers = [(text.index("pineapple"), "pineapple pizza")]
    assert found == sorted([(m.start, m.term) for m in base.find(text)] + callers)
