"""Guarded generation: a causal language model (GPT-2 by default) continues a prompt; moderation guards it thrice.

1. Prompt screening: `moderate_text` on the prompt; `policy="refuse"` returns no continuation, `"warn"` goes on.
2. Decode-time suppression: a `LogitsProcessor` bans, at every step, each token that would complete a blocked word
   (default lexicon + caller blocklist) at a word boundary in the decoded text. It reasons about text, not token
   sequences, because one word has many tokenisations (" idiot", "idiot", "Idiot", " id"+"iot"...).
3. Streaming output check: the growing continuation is moderated every few tokens as it streams; once it is flagged
   the attempt stops, the offending spans are redacted and, up to `MAX_ATTEMPTS`, it is re-sampled with the next seed.

Sampling runs in our own token loop rather than `model.generate` so that every step can be checked and streamed and
the seed drives a private `torch.Generator`: results are reproducible and the global RNG is left alone.
"""
from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Iterable, Iterator

import torch
from transformers import LogitsProcessor, LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

from .generation_options import DEFAULT_MODEL, MAX_NEW_TOKENS_CAP, MAX_TEMPERATURE, MODEL_ENV_VAR, POLICIES
from .hub import load_cached, resolve_model_id
from .lexicon import category_terms, clean_caller_terms
from .taxonomy import TEXT_CATEGORIES
from .text import moderate_text
from .verdict import TextVerdict

MAX_ATTEMPTS = 3
#: The output check runs every this many new tokens (and at the end): each check costs a text-model call, about as
#: much as a few tokens of a small model, and this keeps the stream's chunks short.
CHECK_EVERY_TOKENS = 4
#: Seeds are below this; re-sample n of seed s uses s + n * SEED_LIMIT, so no two (seed, attempt) pairs share a stream.
SEED_LIMIT = 2**32
#: After the output check flags a stream, at most this many more tokens are drawn to finish the word in progress, so
#: a flagged (redacted) output never ends in the middle of a word.
MAX_WORD_END_TOKENS = 8
#: Lexicon categories whose words are banned while decoding. Spam terms ("free", "winner", "click here") are ordinary
#: words out of context, so spam is left to the output check.
SUPPRESSED_CATEGORIES = tuple(c for c in TEXT_CATEGORIES if c != "spam")
REDACTION_CHAR = "█"  # one per redacted character, so span offsets still point into the returned text


@dataclass(frozen=True)
class GenerationResult:
    """One guarded generation (or, while streaming, the state so far)."""

    prompt: str
    text: str  # the continuation only, redacted where the output check flagged it
    refused: bool
    prompt_verdict: TextVerdict
    output_verdict: TextVerdict | None  # None when refused, or before the first output check of a stream
    suppressed: int  # sampled tokens replaced because they would have completed a blocked word, all attempts
    attempts: int

    def to_dict(self) -> dict:
        return {
            "prompt": self.prompt,
            "text": self.text,
            "refused": self.refused,
            "prompt_verdict": self.prompt_verdict.to_dict(),
            "output_verdict": self.output_verdict.to_dict() if self.output_verdict else None,
            "suppressed": self.suppressed,
            "attempts": self.attempts,
        }


def generate_moderated(prompt, *, model=None, max_new_tokens=60, temperature=0.8, top_p=0.95, seed=None,
                       blocklist=None, policy="refuse") -> GenerationResult:
    """Continue `prompt` under the guard and return the final result (the last item `stream_moderated` yields)."""
    for result in stream_moderated(prompt, model=model, max_new_tokens=max_new_tokens, temperature=temperature,
                                   top_p=top_p, seed=seed, blocklist=blocklist, policy=policy):
        pass
    return result


def stream_moderated(prompt, *, model=None, max_new_tokens=60, temperature=0.8, top_p=0.95, seed=None,
                     blocklist=None, policy="refuse") -> Iterator[GenerationResult]:
    """Yield growing `GenerationResult`s, each text already through the output check. The last one is final.

    Arguments are validated here, before the first item is requested, so bad input fails at the call site.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    _check_bounds(max_new_tokens, temperature, top_p, seed, policy)
    caller_terms = clean_caller_terms(blocklist)
    model_id = resolve_model_id(model, MODEL_ENV_VAR, DEFAULT_MODEL)
    return _guarded_stream(prompt, model_id, max_new_tokens, float(temperature), float(top_p), seed, caller_terms,
                           policy)


def _check_bounds(max_new_tokens, temperature, top_p, seed, policy) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) \
            or not 1 <= max_new_tokens <= MAX_NEW_TOKENS_CAP:
        raise ValueError(f"max_new_tokens must be an integer from 1 to {MAX_NEW_TOKENS_CAP}, got {max_new_tokens!r}")
    if not _is_number(temperature) or not 0.0 < temperature <= MAX_TEMPERATURE:
        raise ValueError(f"temperature must be in (0, {MAX_TEMPERATURE:g}], got {temperature!r}")
    if not _is_number(top_p) or not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT):
        raise ValueError(f"seed must be None or an integer from 0 to {SEED_LIMIT - 1}, got {seed!r}")
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # NaN != NaN




def blocked_terms(caller_terms=()) -> tuple[str, ...]:
    """The words decoding must not write: lexicon terms of SUPPRESSED_CATEGORIES, lower-cased, plus the caller's
    normalised the way the lexicon reads them (`clean_caller_terms`), so "sh1t" or "ＳＨＩＴ" blocks "shit"."""
    lexicon = category_terms()
    terms = (" ".join(term.lower().split()) for category in SUPPRESSED_CATEGORIES for term in lexicon.get(category, ()))
    return tuple(dict.fromkeys(term for term in [*terms, *clean_caller_terms(caller_terms)] if term))


# --- The model, loaded once per process ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedGenerator:
    tokenizer: object
    model: torch.nn.Module
    vocabulary: VocabularyIndex


def load_generator(model_id: str) -> LoadedGenerator:
    """The tokenizer, model and vocabulary index for `model_id`, loaded once per process through the hub helper."""
    return load_cached("text generator", model_id, MODEL_ENV_VAR, _load)


def _load(source: str) -> LoadedGenerator:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source).eval()
    return LoadedGenerator(tokenizer, model, VocabularyIndex(_token_texts(tokenizer)))


def _token_texts(tokenizer) -> list[str]:
    """The text each token adds when it follows another token ("" for special tokens).

    Decoding after an anchor keeps the leading space that SentencePiece tokenizers drop from a sequence's first token;
    for byte-level BPE (GPT-2) it equals decoding the token alone.
    """
    anchor = tokenizer.encode("a", add_special_tokens=False)[-1]
    anchor_text = tokenizer.decode([anchor])
    special = set(tokenizer.all_special_ids)
    pairs = tokenizer.batch_decode([[anchor, token_id] for token_id in range(len(tokenizer))])
    return ["" if token_id in special else pair[len(anchor_text):] for token_id, pair in enumerate(pairs)]


# --- Decode-time suppression -------------------------------------------------------------------------------------


class VocabularyIndex:
    """Every token's text, indexed so that checking a step against blocked words is dict look-ups, not decoding.

    `starts[s]`: tokens whose (lower-cased) text begins with `s` followed by a word boundary or the token's end.
    `contains[w]`: tokens with a whole word-start `w` inside them after a non-word character (" idiot", "(idiot!").
    Built once per tokenizer.
    """

    def __init__(self, token_texts: list[str]):
        self.starts: dict[str, list[int]] = defaultdict(list)
        self.contains: dict[str, list[int]] = defaultdict(list)
        for token_id, text in enumerate(token_texts):
            lowered = text.lower()
            ends = [j for j in range(1, len(lowered) + 1) if j == len(lowered) or not lowered[j].isalnum()]
            for j in ends:
                self.starts[lowered[:j]].append(token_id)
            for q in range(1, len(lowered)):
                if lowered[q].isalnum() and not lowered[q - 1].isalnum():
                    for j in ends:
                        if j > q:
                            self.contains[lowered[q:j]].append(token_id)


class BlockedWordsProcessor(LogitsProcessor):
    """Sets to -inf every token that would complete a blocked term at word boundaries in the decoded text.

    A term may start in the text so far ("... you id" + "iot") or inside the token (" idiot"); both are covered for
    every tokenisation, in any letter case. A term that ends exactly where the token ends is banned even though the
    next token might extend it ("idiot" -> "idiotic"): the guarantee errs on the side of blocking.
    """

    def __init__(self, terms: Iterable[str], vocabulary: VocabularyIndex, tokenizer):
        terms = [term.lower() for term in terms if term]
        self._tokenizer = tokenizer
        self._longest = max((len(term) for term in terms), default=0)
        # Enough trailing tokens to decode at least `longest` characters of context in practice.
        self._context_tokens = self._longest + 8
        always: set[int] = set()
        after_prefix: dict[str, set[int]] = defaultdict(set)
        for term in terms:
            always.update(vocabulary.contains.get(term, ()))
            for k in range(len(term)):
                after_prefix[term[:k]].update(vocabulary.starts.get(term[k:], ()))
        self._always = torch.tensor(sorted(always), dtype=torch.long)
        self._after_prefix = {prefix: torch.tensor(sorted(ids), dtype=torch.long)
                              for prefix, ids in after_prefix.items() if ids}

    def banned_ids(self, context_ids) -> torch.Tensor:
        """Token ids that must not follow `context_ids` (one sequence)."""
        if not self._longest:
            return self._always
        decoded = self._tokenizer.decode(context_ids[-self._context_tokens:], skip_special_tokens=True).lower()
        whole = len(context_ids) <= self._context_tokens and len(decoded) <= self._longest  # tail starts the text
        tail = decoded[-self._longest:]
        # Term prefixes the text may end with: from each word start in the tail to its end (the empty prefix too).
        starts = [p for p in range(len(tail) + 1)
                  if (p == 0 and whole) or (p > 0 and not tail[p - 1].isalnum())]
        banned = [self._always, *(self._after_prefix[tail[p:]] for p in starts if tail[p:] in self._after_prefix)]
        return torch.cat(banned) if len(banned) > 1 else self._always

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.clone()
        for row, context in enumerate(input_ids.tolist()):
            scores[row, self.banned_ids(context)] = float("-inf")
        return scores


# --- Sampling loop: preprocess -> forward -> postprocess ---------------------------------------------------------


def _encode_prompt(loaded: LoadedGenerator, prompt: str, max_new_tokens: int) -> torch.LongTensor:
    """Prompt token ids, left-truncated so prompt plus continuation fit the model's context window."""
    tokenizer = loaded.tokenizer
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if not ids:  # an empty prompt starts from the beginning-of-text token
        ids = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id]
    window = getattr(loaded.model.config, "max_position_embeddings", None)
    if window:
        ids = ids[-max(window - max_new_tokens, 1):]
    return torch.tensor([ids], dtype=torch.long)


def _forward(model, step_ids: torch.LongTensor, cache):
    """Logits for the next token and the updated key/value cache (only the new tokens are fed after the first step)."""
    output = model(input_ids=step_ids, cache=cache, use_cache=True, logits_to_keep=1)
    return output.logits[:, -1, :].float(), output.cache


def _sample(scores: torch.Tensor, generator: torch.Generator) -> int:
    return int(torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator))


def _sample_tokens(loaded: LoadedGenerator, prompt_ids: torch.LongTensor, max_new_tokens: int, temperature: float,
                   top_p: float, blocker: BlockedWordsProcessor, seed: int) -> Iterator[tuple[list[int], bool]]:
    """Sample up to `max_new_tokens`, yielding (new ids so far, whether this step was steered off a blocked word).

    The token is first drawn from the model's own top-p distribution; only if it would complete a blocked word is it
    redrawn from the blocked distribution. That counts real suppressions and leaves unaffected steps untouched.
    """
    warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature), TopPLogitsWarper(top_p)])
    generator = torch.Generator().manual_seed(seed)
    eos = loaded.tokenizer.eos_token_id
    sequence, step_ids, cache, new_ids = prompt_ids, prompt_ids, None, []
    for _ in range(max_new_tokens):
        # Inference mode is entered per step, never held across the `yield`: Gradio resumes a generator on another
        # worker thread, where a mode entered on the first thread is not in force and the cached key/value tensors
        # (inference tensors) then fail with "Inference tensors cannot be saved for backward".
        with torch.inference_mode():
            logits, cache = _forward(loaded.model, step_ids, cache)
            token = _sample(warpers(sequence, logits), generator)
            guarded = blocker(sequence, logits)
            steered = bool(torch.isinf(guarded[0, token]))
            if steered:
                token = _sample(warpers(sequence, guarded), generator)
            if token == eos:
                return
            new_ids.append(token)
            step_ids = torch.tensor([[token]], dtype=torch.long)
            sequence = torch.cat([sequence, step_ids], dim=1)
        yield new_ids, steered


# --- The guard ----------------------------------------------------------------------------------------------------


def _guarded_stream(prompt, model_id, max_new_tokens, temperature, top_p, seed, caller_terms, policy):
    def check(text: str) -> TextVerdict:  # the caller's words count as harmful in the prompt and output too
        return moderate_text(text, blocklist=caller_terms or None)

    prompt_verdict = check(prompt)
    if prompt_verdict.flagged and policy == "refuse":
        yield GenerationResult(prompt, "", True, prompt_verdict, None, 0, 0)
        return
    loaded = load_generator(model_id)
    blocker = BlockedWordsProcessor(blocked_terms(caller_terms), loaded.vocabulary, loaded.tokenizer)
    prompt_ids = _encode_prompt(loaded, prompt, max_new_tokens)
    seed = secrets.randbelow(SEED_LIMIT) if seed is None else seed
    suppressed, safest = 0, None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        new_ids, verdict, checked, flagged_at = [], None, -1, None
        for new_ids, steered in _sample_tokens(loaded, prompt_ids, max_new_tokens, temperature, top_p, blocker,
                                               seed + (attempt - 1) * SEED_LIMIT):
            suppressed += steered
            if flagged_at is not None:  # flagged: finish the word in progress, then stop
                if _starts_a_word(loaded.tokenizer, new_ids):
                    new_ids = new_ids[:-1]
                    break
                if len(new_ids) - flagged_at >= MAX_WORD_END_TOKENS:
                    break
                continue
            if len(new_ids) % CHECK_EVERY_TOKENS == 0:
                verdict, checked = check(loaded.tokenizer.decode(new_ids, skip_special_tokens=True)), len(new_ids)
                if verdict.flagged:
                    flagged_at = len(new_ids)
                    continue
                yield GenerationResult(prompt, verdict.text, False, prompt_verdict, verdict, suppressed, attempt)
        if checked != len(new_ids):  # the tokens after the last check
            verdict = check(loaded.tokenizer.decode(new_ids, skip_special_tokens=True))
            if not verdict.flagged:
                yield GenerationResult(prompt, verdict.text, False, prompt_verdict, verdict, suppressed, attempt)
        if not verdict.flagged:
            return
        result = GenerationResult(prompt, _redact(verdict), False, prompt_verdict, verdict, suppressed, attempt)
        yield result
        safest = min(safest or result, result, key=_harm)
    if safest is not result:
        yield replace(safest, suppressed=suppressed, attempts=MAX_ATTEMPTS)


def _starts_a_word(tokenizer, ids: list[int]) -> bool:
    """Whether the last token begins something new (a space, punctuation, the end), so the word before it is whole."""
    added = tokenizer.decode(ids, skip_special_tokens=True)[len(tokenizer.decode(ids[:-1], skip_special_tokens=True)):]
    return not added or not (added[0].isalnum() or added[0] in "'’-")


def _redact(verdict: TextVerdict) -> str:
    """The checked text with the spans of the flagged categories masked; with no span to point at, all of it."""
    text = verdict.text
    spans = [span for span in verdict.spans if span.label in verdict.categories]
    if not spans:
        return REDACTION_CHAR * len(text)
    chars = list(text)
    for span in spans:
        chars[span.start:span.end] = REDACTION_CHAR * (span.end - span.start)
    return "".join(chars)


def _harm(result: GenerationResult) -> float:
    """How harmful a flagged attempt is: its highest score among the categories it was flagged for."""
    return max((result.output_verdict.scores[c] for c in result.output_verdict.categories), default=0.0)
