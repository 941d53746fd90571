"""Guarded generation on the tiny GPT-2: prompt screening, decode-time suppression, output check, bounds."""
from __future__ import annotations

import re
from dataclasses import replace

import pytest
import torch

from moderation import generation
from moderation.generation import (
    MAX_ATTEMPTS,
    REDACTION_CHAR,
    BlockedWordsProcessor,
    GenerationResult,
    blocked_terms,
    generate_moderated,
    load_generator,
    stream_moderated,
)
from moderation.text import moderate_text

PROMPT = "The weather was great so we"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tiny model's matrices are too small to share out; a second thread only waits (badly, on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def gpt2(tiny_models) -> str:
    return str(tiny_models["gpt2"])


def whole_words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def word_ends(text: str, terms) -> list[int]:
    """End offsets of every occurrence of a term in `text` with a non-alphanumeric character (or nothing) around it."""
    ends = []
    for term in terms:
        start = text.find(term)
        while start != -1:
            end = start + len(term)
            if (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
                ends.append(end)
            start = text.find(term, start + 1)
    return ends


def test_abusive_prompt_is_refused_with_its_verdict(gpt2):
    prompt = "shut up you stupid idiot"
    result = generate_moderated(prompt, model=gpt2, seed=0)
    assert result.refused and result.text == "" and result.attempts == 0
    assert result.output_verdict is None
    assert result.prompt_verdict.flagged
    assert {prompt[s.start:s.end] for s in result.prompt_verdict.spans} >= {"stupid", "idiot"}
    assert result.to_dict()["prompt_verdict"]["flagged"] is True


def test_warn_policy_generates_but_reports_the_prompt(gpt2):
    result = generate_moderated("shut up you stupid idiot", model=gpt2, seed=0, policy="warn", max_new_tokens=20)
    assert not result.refused and result.prompt_verdict.flagged
    assert result.text and result.output_verdict is not None and result.attempts >= 1


def test_clean_prompt_is_continued(gpt2):
    result = generate_moderated(PROMPT, model=gpt2, seed=0, max_new_tokens=30)
    assert not result.refused and not result.prompt_verdict.flagged and 1 <= result.attempts <= MAX_ATTEMPTS
    assert result.text and len(result.output_verdict.text) == len(result.text)  # redaction keeps offsets valid


def test_blocked_words_produced_with_a_seed_are_suppressed_with_the_same_seed(gpt2):
    # output_verdict.text is what the model wrote, before any redaction by the output check.
    first = generate_moderated(PROMPT, model=gpt2, seed=7, max_new_tokens=30)
    produced = sorted(w for w in whole_words(first.output_verdict.text) - whole_words(PROMPT) if len(w) >= 3)
    assert produced, first.output_verdict.text
    second = generate_moderated(PROMPT, model=gpt2, seed=7, max_new_tokens=30, blocklist=produced)
    assert second.suppressed > first.suppressed
    assert not whole_words(second.output_verdict.text) & set(produced), second.output_verdict.text


def test_lexicon_words_are_suppressed_even_when_the_prompt_starts_them(gpt2):
    # The prompt ends inside a lexicon word: no continuation may complete it, whatever the seed.
    for seed in range(3):
        result = generate_moderated("what a mor", model=gpt2, seed=seed, max_new_tokens=8, policy="warn")
        assert not re.match(r"on(?![a-z0-9])", result.output_verdict.text.lower()), result.output_verdict.text


@pytest.mark.parametrize("context", ["", "you are an id", "what a ", "Shut up, you stu", "so ID", "(", "kill"])
def test_processor_bans_every_token_that_completes_a_blocked_word(gpt2, context):
    """Brute force over the whole vocabulary: any token whose text completes a term at word boundaries is banned."""
    loaded = load_generator(gpt2)
    tokenizer = loaded.tokenizer
    terms = ["idiot", "stupid", "moron", "kill you", "sh*t", "the"]
    processor = BlockedWordsProcessor(terms, loaded.vocabulary, tokenizer)
    context_ids = tokenizer(context, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
    before = tokenizer.decode(context_ids, skip_special_tokens=True).lower()
    banned = set(processor.banned_ids(context_ids).tolist())
    for token_id in range(len(tokenizer)):
        after = tokenizer.decode(context_ids + [token_id], skip_special_tokens=True).lower()
        if any(end > len(before) for end in word_ends(after, terms)):
            assert token_id in banned, (context, tokenizer.decode([token_id]))
    assert len(banned) < len(tokenizer) / 2  # it steers, it does not silence the model


def test_processor_covers_every_spelling_and_tokenisation(gpt2):
    loaded = load_generator(gpt2)
    tokenizer = loaded.tokenizer
    processor = BlockedWordsProcessor(["idiot"], loaded.vocabulary, tokenizer)
    for text in ["you idiot", "you Idiot", "you IDIOT", "idiot", "(idiot)", "you i d"]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        last_token_banned = [int(ids[i]) in processor.banned_ids(ids[:i] or [tokenizer.eos_token_id]).tolist()
                             for i in range(len(ids))]
        assert any(last_token_banned) == ("idiot" in text.lower()), (text, tokenizer.convert_ids_to_tokens(ids))
    ids = tokenizer("you idiot", add_special_tokens=False)["input_ids"]
    guarded = processor(torch.tensor([ids[:-1]]), torch.zeros(1, len(tokenizer)))  # the LogitsProcessor interface
    assert guarded[0, ids[-1]] == float("-inf") and torch.isfinite(guarded).sum() > len(tokenizer) // 2


@pytest.mark.parametrize("caller_term", ["pineapple", "p1n3@pple", "ＰＩＮＥＡＰＰＬＥ", "P I N E A P P L E"])
def test_caller_terms_block_the_word_the_lexicon_reads_them_as(gpt2, caller_term):
    """A caller's term is normalised as the lexicon normalises it, so every spelling blocks the plain word."""
    assert [term for term in blocked_terms([caller_term]) if term not in blocked_terms()] == ["pineapple"]
    loaded = load_generator(gpt2)
    tokenizer = loaded.tokenizer
    processor = BlockedWordsProcessor(blocked_terms([caller_term]), loaded.vocabulary, tokenizer)
    ids = tokenizer("I like pineapple", add_special_tokens=False)["input_ids"]
    assert any(int(ids[i]) in processor.banned_ids(ids[:i]).tolist() for i in range(1, len(ids)))


def test_caller_spellings_of_a_lexicon_word_add_no_new_term():
    assert blocked_terms(["sh1t", "ＳＨＩＴ", "$h!t"]) == blocked_terms() and "shit" in blocked_terms()


def test_stream_yields_several_growing_checked_parts(gpt2):
    parts = list(stream_moderated(PROMPT, model=gpt2, seed=3, max_new_tokens=24))
    assert len(parts) >= 3 and all(isinstance(p, GenerationResult) for p in parts)
    same_attempt = [(a, b) for a, b in zip(parts, parts[1:]) if a.attempts == b.attempts]
    assert all(b.text.startswith(a.text) and len(b.text) >= len(a.text) for a, b in same_attempt)
    assert all(p.output_verdict.text == p.text for p in parts if not p.output_verdict.flagged)
    assert parts[-1] == generate_moderated(PROMPT, model=gpt2, seed=3, max_new_tokens=24)


@pytest.mark.parametrize("bad", [
    {"max_new_tokens": 0}, {"max_new_tokens": 201}, {"max_new_tokens": 2.5}, {"max_new_tokens": True},
    {"temperature": 0}, {"temperature": -1}, {"temperature": 2.01}, {"temperature": float("nan")},
    {"top_p": 0}, {"top_p": 1.5}, {"seed": -1}, {"seed": "42"}, {"policy": "ignore"},
])
def test_out_of_range_arguments_are_rejected_before_anything_runs(bad):
    with pytest.raises(ValueError):
        generate_moderated("hello", model="/nonexistent/model", **bad)
    with pytest.raises(ValueError):
        stream_moderated("hello", model="/nonexistent/model", **bad)  # at the call, not at the first next()


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError):
        generate_moderated(b"hello")
    with pytest.raises(TypeError):
        generate_moderated("hello", blocklist="idiot")
    with pytest.raises(TypeError):
        generate_moderated("hello", blocklist=[1, 2])


def test_edge_bounds_are_accepted(gpt2):
    result = generate_moderated(PROMPT, model=gpt2, seed=1, max_new_tokens=1, temperature=2.0, top_p=1.0)
    assert not result.refused


def test_a_seed_reproduces_the_result_and_leaves_the_global_rng_alone(gpt2):
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    first = generate_moderated(PROMPT, model=gpt2, seed=11, max_new_tokens=20)
    assert torch.equal(torch.rand(3), expected)
    again = generate_moderated(PROMPT, model=gpt2, seed=11, max_new_tokens=20)
    other = generate_moderated(PROMPT, model=gpt2, seed=1000, max_new_tokens=20)
    assert again.to_dict() == first.to_dict()
    assert other.text != first.text


def test_flagged_output_is_redacted_and_resampled(gpt2, monkeypatch):
    """An output check that flags a word the decoder was not told about: stop, redact it, re-sample with a new seed."""
    first = generate_moderated(PROMPT, model=gpt2, seed=5, max_new_tokens=24)
    harmful = sorted(whole_words(first.output_verdict.text) - whole_words(PROMPT), key=lambda w: (len(w), w))[-1]
    strict = lambda text, blocklist=None: moderate_text(text, blocklist=[*(blocklist or []), harmful])  # noqa: E731
    monkeypatch.setattr(generation, "moderate_text", strict)

    parts = list(stream_moderated(PROMPT, model=gpt2, seed=5, max_new_tokens=24))
    caught = [p for p in parts if harmful in whole_words(p.output_verdict.text)]
    assert caught, "the same seed writes the same word again"
    for part in caught:
        assert part.output_verdict.flagged and REDACTION_CHAR in part.text
        assert harmful not in whole_words(part.text)
    final = parts[-1]
    assert 2 <= final.attempts <= MAX_ATTEMPTS
    assert harmful not in whole_words(final.text)


def test_missing_model_directory_names_the_variable(tmp_path):
    from moderation.hub import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="MODERATION_GENERATION_MODEL"):
        generate_moderated("hello there", model=str(tmp_path / "missing"))


def test_model_comes_from_the_environment(gpt2, monkeypatch):
    monkeypatch.setenv("MODERATION_GENERATION_MODEL", gpt2)
    assert generate_moderated(PROMPT, seed=0, max_new_tokens=5) == generate_moderated(
        PROMPT, model=gpt2, seed=0, max_new_tokens=5)


def test_streams_resumed_on_other_threads_never_fail(gpt2):
    """Gradio resumes a streaming handler on whichever worker thread is free. Inference mode held across a `yield`
    made generations fail with "Inference tensors cannot be saved for backward"."""
    import threading

    def next_on_a_new_thread(stream):
        box = {}

        def step():
            try:
                box["value"] = next(stream, None)
            except Exception as exc:  # noqa: BLE001 - re-raised on the test's thread
                box["error"] = exc

        thread = threading.Thread(target=step)
        thread.start()
        thread.join(timeout=120)
        if "error" in box:
            raise box["error"]
        return box["value"]

    finals = []
    for seed in range(6):
        stream = stream_moderated(PROMPT, model=gpt2, max_new_tokens=12, seed=seed)
        result = None
        while (step := next_on_a_new_thread(stream)) is not None:  # every step on a thread of its own
            result = step
        finals.append(result)
    assert all(isinstance(r, GenerationResult) for r in finals) and len(finals) == 6
    again = generate_moderated(PROMPT, model=gpt2, max_new_tokens=12, seed=3)
    assert again.text == finals[3].text  # same seed, same text, whichever threads ran it


def test_a_flagged_output_stops_at_the_end_of_a_word(gpt2, monkeypatch):
    # The check runs every few tokens; a flagged attempt stopped right there, often in the middle of a word.
    def flag_every_output(text, blocklist=None):
        verdict = moderate_text(text)
        return verdict if text == PROMPT else replace(verdict, flagged=True, categories=["harassment"])

    for seed in range(6):
        monkeypatch.undo()
        unguarded = generate_moderated(PROMPT, model=gpt2, seed=seed, max_new_tokens=30)
        if unguarded.output_verdict.flagged or unguarded.attempts != 1:
            continue
        full = unguarded.output_verdict.text
        monkeypatch.setattr(generation, "moderate_text", flag_every_output)
        first = next(p for p in stream_moderated(PROMPT, model=gpt2, seed=seed, max_new_tokens=30)
                     if p.output_verdict is not None and p.output_verdict.flagged)
        stopped = first.output_verdict.text
        assert full.startswith(stopped) and len(first.text) == len(stopped)
        following = full[len(stopped):len(stopped) + 1]
        assert not following or not following.isalnum(), (seed, stopped, full)
