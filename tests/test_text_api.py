"""The public text API: contract, obfuscation, Scunthorpe negatives, spans, batches and errors."""
import json

import pytest

import moderation
from moderation import TEXT_CATEGORIES, moderate_text
from moderation.datasets import load_texts


def test_public_names_and_taxonomy():
    assert set(TEXT_CATEGORIES) == {"harassment", "hate", "violence", "sexual", "self_harm", "profanity", "spam",
                                    "illicit"}
    for name in moderation.__all__:
        assert getattr(moderation, name) is not None


def test_verdict_shape_for_a_single_text():
    verdict = moderate_text("you are a worthless idiot")
    assert isinstance(verdict, moderation.TextVerdict)
    assert set(verdict.scores) == set(TEXT_CATEGORIES)
    assert all(0.0 <= s <= 1.0 for s in verdict.scores.values())
    assert verdict.flagged and "harassment" in verdict.categories
    assert verdict.flagged == any(verdict.scores[c] >= verdict.thresholds[c] for c in TEXT_CATEGORIES)
    data = verdict.to_dict()
    json.dumps(data)
    assert data["spans"] and all(s["text"] == verdict.text[s["start"]:s["end"]] for s in data["spans"])


@pytest.mark.parametrize("text", [
    "have a lovely weekend, see you on monday", "Scunthorpe United won 2-0 at home",
    "she absolutely killed it on stage", "the assassin in Assassin's Creed",
    "book a table at the cocktail bar in Cockermouth", "breast cancer screening saves lives",
    "as a gay Muslim woman I love this community", "Penistone and Shitterton are real villages",
])
def test_clean_and_hard_negative_texts_are_allowed(text):
    assert not moderate_text(text).flagged, moderate_text(text).scores


# Short replies are where a model trained on longer texts guesses: "see you", "bless you" and "you" alone read as
# harassment (0.89, 0.98, 1.0) before the short-replies part of the data, and "i'll hurt you" slipped past the
# lexicon's "i will hurt you" (violence 0.23). None of these texts is in the bundled data.
SHORT_CLEAN = ["see you then", "love you too", "thanks, you too", "you coming to the match?", "after you, please",
               "told you it would work", "you guys are amazing", "you up for pizza?", "hurry up, film starts at 8"]
SHORT_HARMFUL = [("you're such a loser", "harassment"), ("shut up idiot", "harassment"), ("f off", "profanity"),
                 ("i'll hurt you", "violence")]


def test_short_replies_are_allowed_and_short_insults_are_not():
    texts = SHORT_CLEAN + [text for text, _ in SHORT_HARMFUL]
    assert not set(texts) & set(load_texts()["text"]), "a test phrase is in the training data"
    verdicts = moderate_text(texts, explain_spans=False)
    assert [t for t, v in zip(texts, verdicts[:len(SHORT_CLEAN)]) if v.flagged] == []
    assert [t for (t, c), v in zip(SHORT_HARMFUL, verdicts[len(SHORT_CLEAN):]) if c not in v.categories] == []


@pytest.mark.parametrize("text, category, word", [
    ("you f*cking 1d10t", "profanity", "f*cking"),
    ("shut up you f.u.c.k.i.n.g loser", "profanity", "f.u.c.k.i.n.g"),
    ("go k i l l y o u r s e l f", "self_harm", "k i l l y o u r s e l f"),
    ("you are an іdіоt", "harassment", "іdіоt"),
    ("I will find you and kill you", "violence", "kill you"),
    ("WINNER! You have won a £1000 prize. Txt CLAIM to 81010 now", "spam", "won"),
])
def test_harmful_and_obfuscated_texts_are_flagged_with_spans_on_the_word(text, category, word):
    verdict = moderate_text(text)
    assert category in verdict.categories, verdict.scores
    spans = [s for s in verdict.spans if s.label == category]
    assert spans, verdict.spans
    assert any(word in text[s.start:s.end] or text[s.start:s.end] in word for s in spans)


def test_categories_are_most_severe_first():
    verdict = moderate_text("kill yourself you stupid f*cking loser")
    order = [TEXT_CATEGORIES.index(c) for c in verdict.categories]
    assert order == sorted(order) and len(order) >= 2


def test_batches_keep_order_and_length():
    texts = ["hello there", "you idiot", "", "   ", "buy cheap viagra now at www.pills.example", "thank you!"] * 7
    verdicts = moderate_text(texts)
    assert isinstance(verdicts, list) and len(verdicts) == len(texts)
    assert [v.text for v in verdicts] == texts
    single = [moderate_text(t).scores for t in texts[:6]]
    assert [v.scores for v in verdicts[:6]] == single
    assert moderate_text([]) == []


def test_spans_always_inside_the_text():
    texts = ["f.u.c.k you", "🙂 you іdіоt 🙂", "stupid\u200b stupid", "nothing here", "a" * 50 + " moron"]
    for verdict in moderate_text(texts):
        for span in verdict.spans:
            assert 0 <= span.start < span.end <= len(verdict.text)
            assert span.label in verdict.categories


def test_thresholds_blocklist_and_allowlist():
    text = "that pineapple pizza is on the menu"
    assert not moderate_text(text).flagged
    blocked = moderate_text(text, blocklist=["pineapple"])
    assert blocked.flagged and blocked.scores["profanity"] == 1.0
    assert [text[s.start:s.end] for s in blocked.spans] == ["pineapple"]
    assert blocked.categories == ["profanity"]  # the caller's term decides its category and moves no other
    assert "blocklist" in blocked.spans[0].source
    assert moderate_text(text, blocklist={"harassment": ["p1neapple"]}).categories == ["harassment"]
    assert not moderate_text("what a dick move", allowlist=["dick move"], thresholds={"profanity": 0.99}).flagged
    assert moderate_text("have a nice day", thresholds=0.0).flagged
    assert (not moderate_text("you idiot", thresholds=1.0).flagged
            or moderate_text("you idiot").scores["harassment"] == 1.0)


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["ok", 3], {"text": "x"}])
def test_non_string_input_is_a_type_error(bad):
    with pytest.raises(TypeError):
        moderate_text(bad)


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="unknown text model"):
        moderate_text("hi", model="nope")
    with pytest.raises(ValueError, match="unknown category"):
        moderate_text("hi", thresholds={"rudeness": 0.5})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        moderate_text("hi", thresholds={"spam": 2})


#: Examples the default model still gets wrong, kept in the app with their true expected verdict (README "Limits").
#: The test fails when one of them starts passing, so the list cannot go stale.
KNOWN_MISSES: set[str] = set()  # corpus v3 fixed the last one (self-deprecation read as harassment)


def test_every_example_gets_its_expected_verdict_from_the_default_model():
    """examples/texts.csv shows each example's expected verdict in the app; the default model must agree."""
    import csv
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "texts.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    verdicts = moderate_text([row["text"] for row in rows])
    wrong = {row["text"] for row, verdict in zip(rows, verdicts)
             if (row["expected"] == "allowed") == verdict.flagged
             or (row["expected"] != "allowed" and row["expected"] not in verdict.categories)}
    assert wrong == KNOWN_MISSES
