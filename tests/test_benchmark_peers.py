"""The benchmark's adapters for the peer libraries (benchmark-only dependencies: skipped when not installed)."""
from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("better_profanity",
                    reason="peer libraries not installed: pip install -r benchmarks/requirements.txt")
pytest.importorskip("profanity_check",
                    reason="peer libraries not installed: pip install -r benchmarks/requirements.txt")

from benchmarks import peers  # noqa: E402
from benchmarks.peers import CENSOR_CHAR, PEERS, censored_offsets  # noqa: E402


def _censored(text: str) -> list[str]:
    """The censored stretches, as text, in order."""
    offsets = sorted(censored_offsets(text))
    stretches, start = [], None
    for k, i in enumerate(offsets):
        start = i if start is None else start
        if k + 1 == len(offsets) or offsets[k + 1] != i + 1:
            stretches.append(text[start:i + 1])
            start = None
    return stretches


@pytest.mark.parametrize(
    "text, expected",
    [
        ("have a lovely day", []),
        ("what the hell is this", ["hell"]),
        ("shit, not again. shit!", ["shit", "shit"]),
        ("ass", ["ass"]),  # shorter than the four censor characters that replace it
        ("you sh1t head, hello", ["sh1t head"]),  # leetspeak, and two words it joins into one entry
    ],
)
def test_censored_offsets_point_at_the_words_better_profanity_censors(text, expected):
    assert _censored(text) == expected


def test_the_censor_character_cannot_be_confused_with_text():
    with pytest.raises(ValueError, match="censor character"):
        censored_offsets(f"a {CENSOR_CHAR} b")


def test_peers_share_the_evaluation_interface():
    texts = ["have a lovely day", "what the hell is this"]
    for peer in PEERS.values():
        assert peer.flag(texts).tolist() == [False, True], peer.name
        without = peer.predict(texts, False)
        assert without.flagged.tolist() == [False, True] and without.spam is None
        spans = peer.predict(texts, True).toxic_offsets
        assert spans[0] == set() and spans[1], peer.name
    whole = PEERS["alt-profanity-check"].predict(texts, True).toxic_offsets[1]
    assert whole == set(range(len(texts[1]))), "a flag without spans counts the whole post"


def test_cached_predictions_come_back_identical_and_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv("MODERATION_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(peers, "CACHE_CHUNK", 2)
    texts = ["what the hell", "lovely weather", "fine", "shit happens", "ok"]
    peer = PEERS["better-profanity"]
    first = peer.cached_predict(texts, True)
    assert first.flagged.tolist() == [True, False, False, True, False]
    assert first.toxic_offsets == [censored_offsets(t) for t in texts]
    assert len(list(tmp_path.rglob("*.pickle"))) == 3, "one cached piece per chunk"
    same_but_refusing = dataclasses.replace(peer, predict=lambda texts, spans: pytest.fail("recomputed"))
    again = same_but_refusing.cached_predict(texts, True)
    assert again.flagged.tolist() == first.flagged.tolist() and again.toxic_offsets == first.toxic_offsets
