"""Tokens/s of GPT-2-small-sized decoding on this CPU, plain `model.generate` versus `generate_moderated`.

A random-weight GPT2LMHeadModel with the real GPT-2 small shape (12 layers, width 768, 12 heads, 50,257-row output
layer) costs the same per token as the published `gpt2`, which the hub-less machines here cannot download. Its
tokenizer is a byte-level BPE trained on our bundled texts. Random weights write gibberish that the output check
often flags, so the guarded run also re-samples; tokens are counted as model forward passes, so tokens/s is per
token actually computed in both runs.

    python -m benchmarks.generation_speed [--tokens 40] [--runs 3]   (from the repository root)
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

from moderation.datasets import load_texts
from moderation.generation import (
    CHECK_EVERY_TOKENS,
    BlockedWordsProcessor,
    blocked_terms,
    generate_moderated,
    load_generator,
)
from moderation.testing.tiny_models import CORPUS, build_gpt2, gpt2_tokenizer
from moderation.text import moderate_text

GPT2_SMALL = dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12)
PROMPTS = [
    "The weather was great so we walked along the river and",
    "Thanks for the quick reply, I will send the report",
    "My sister baked bread this morning and the kitchen",
]


class ForwardCounter:
    """Counts model forward passes: one per generated token (the first also reads the prompt)."""

    def __init__(self, model):
        self.calls = 0
        model.register_forward_hook(self._count)

    def _count(self, *_):
        self.calls += 1


def measure(modes: dict, counter: ForwardCounter, runs: int) -> dict[str, tuple[float, float]]:
    """Median (seconds per computed token, seconds per call) for each mode.

    Runs alternate between the modes so that noise from other work on the machine hits both alike.
    """
    per_token = {name: [] for name in modes}
    per_call = {name: [] for name in modes}
    for i in range(runs):
        for name, run in modes.items():
            counter.calls = 0
            start = time.perf_counter()
            run(i)
            per_call[name].append(time.perf_counter() - start)
            per_token[name].append(per_call[name][-1] / counter.calls)
    return {name: (statistics.median(per_token[name]), statistics.median(per_call[name])) for name in modes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=40, help="new tokens per generation")
    parser.add_argument("--runs", type=int, default=3, help="timed generations per mode (after one warm-up)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        lines = [*CORPUS.splitlines(), *load_texts()["text"]]
        tokenizer = gpt2_tokenizer(lines, vocab_size=GPT2_SMALL["vocab_size"])
        build_gpt2(workdir, tokenizer=tokenizer, **GPT2_SMALL)
        print(f"built GPT-2-small-sized model ({len(tokenizer)} trained tokenizer tokens, "
              f"{GPT2_SMALL['vocab_size']} output rows) in {time.perf_counter() - start:.1f} s")

        start = time.perf_counter()
        loaded = load_generator(workdir)
        print(f"load + vocabulary index: {time.perf_counter() - start:.2f} s (once per process)")
        model, counter = loaded.model, ForwardCounter(loaded.model)

        def plain(i):
            ids = tokenizer(PROMPTS[i % len(PROMPTS)], return_tensors="pt")
            torch.manual_seed(i)
            with torch.inference_mode():
                model.generate(**ids, do_sample=True, temperature=0.8, top_p=0.95, max_new_tokens=args.tokens,
                               min_new_tokens=args.tokens, pad_token_id=tokenizer.eos_token_id)

        attempts = []

        def guarded(i):
            result = generate_moderated(PROMPTS[i % len(PROMPTS)], model=workdir, max_new_tokens=args.tokens, seed=i)
            attempts.append(result.attempts)

        plain(0), guarded(0)  # warm-up: first-call allocations, the text model's lazy load
        attempts.clear()
        timings = measure({"plain": plain, "guarded": guarded}, counter, args.runs)
        (plain_s, plain_call), (guarded_s, guarded_call) = timings["plain"], timings["guarded"]

        # Where the guard's time goes, per piece.
        start = time.perf_counter()
        blocker = BlockedWordsProcessor(blocked_terms(), loaded.vocabulary, tokenizer)
        build_ms = (time.perf_counter() - start) * 1e3
        context = tokenizer(PROMPTS[0])["input_ids"]
        start = time.perf_counter()
        for _ in range(200):
            blocker(torch.tensor([context]), torch.zeros(1, GPT2_SMALL["vocab_size"]))
        step_ms = (time.perf_counter() - start) / 200 * 1e3
        sample = "The weather was great so we walked along the river and then we went home for dinner."
        start = time.perf_counter()
        for _ in range(20):
            moderate_text(sample)
        check_ms = (time.perf_counter() - start) / 20 * 1e3

    print(f"\nGPT-2 small shape, {args.tokens} new tokens, median of {args.runs} runs")
    print(f"{'mode':<34}{'ms/token':>10}{'tokens/s':>10}{'s/call':>9}")
    print(f"{'model.generate (no guard)':<34}{plain_s * 1e3:>10.1f}{1 / plain_s:>10.1f}{plain_call:>9.2f}")
    print(f"{'generate_moderated (full guard)':<34}{guarded_s * 1e3:>10.1f}{1 / guarded_s:>10.1f}{guarded_call:>9.2f}")
    print(f"guard overhead per computed token: x{guarded_s / plain_s:.2f}; per call: x{guarded_call / plain_call:.2f} "
          f"(mean attempts per guarded call: {statistics.mean(attempts):.1f}; random weights write text the "
          f"output check often flags, so calls re-sample more than a trained model's would)")
    print(f"pieces: blocked-word processor build {build_ms:.1f} ms per call, {step_ms:.3f} ms per step; "
          f"output check (moderate_text) {check_ms:.1f} ms per check, one check per {CHECK_EVERY_TOKENS} tokens")


if __name__ == "__main__":
    main()
