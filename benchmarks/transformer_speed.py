"""Transformer speed on long texts with spans on: seconds and peak memory per model, each in a fresh process.

The bar (issue 14): 2,000 long texts of our own (median >= 350 characters, like real prompts) moderated with spans
on in <= 120 s and <= 2 GB peak RSS. The texts are paragraphs of 3-9 bundled texts joined in a seeded order, so
they are ours, reproducible and varied (benign, 30% with one harmful text inside). Each model runs in its own child
process (`--child`), so its peak RSS is its own and a model that overruns `--timeout` is reported, not waited on.

    python -m benchmarks.transformer_speed [--models finetuned transformer] [--texts 2000] [--timeout 600]
    python -m benchmarks.transformer_speed --embedding-variants   # the encoder batching comparison (below)

`--embedding-variants` keeps the earlier measurement: our embedding path (length-sorted batches, dynamic padding,
inference_mode) against the naive loop (every batch padded to 128 tokens) and variants, on tweets, side by side.
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np

from moderation import datasets

NAIVE_LENGTH, NAIVE_BATCH = 128, 64


#: Share of the long texts with one harmful bundled text inside (real prompts are mostly benign).
HARMFUL_SHARE = 0.3


def long_texts(count: int, seed: int = 0) -> list[str]:
    """`count` paragraphs of 3-9 benign bundled texts each, HARMFUL_SHARE of them with one harmful bundled text in
    place of one of those (all splits; timing only, never scored); median >= 350 characters."""
    frame = datasets.load_texts()
    harmful = frame[datasets.LABEL_COLUMNS].any(axis=1)
    benign, harmful = frame.loc[~harmful, "text"].tolist(), frame.loc[harmful, "text"].tolist()
    rng = random.Random(seed)
    paragraphs = []
    for _ in range(count):
        parts = rng.sample(benign, rng.randint(3, 9))
        if rng.random() < HARMFUL_SHARE:
            parts[rng.randrange(len(parts))] = rng.choice(harmful)
        paragraphs.append(" ".join(parts))
    return paragraphs


def child(model: str, count: int) -> dict:
    """Moderate the long texts with spans on in this process: seconds (model loaded first) and peak RSS."""
    from moderation import moderate_text
    from moderation.text.registry import get_text_model

    texts = long_texts(count)
    get_text_model(model)
    moderate_text(["warm up", "you idiot"], model=model)
    started = time.perf_counter()
    verdicts = moderate_text(texts, model=model)
    seconds = time.perf_counter() - started
    return {"model": model, "texts": len(texts), "median_chars": float(np.median([len(t) for t in texts])),
            "seconds": round(seconds, 1), "texts_per_s": round(len(texts) / seconds, 1),
            "flagged": sum(v.flagged for v in verdicts),
            "model_spans": sum(s.source == "model" for v in verdicts for s in v.spans),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def long_text_table(models: list[str], count: int, timeout: float) -> int:
    lengths = [len(t) for t in long_texts(count)]
    print(f"{count} long texts of ours, median {np.median(lengths):.0f} chars (min {min(lengths)}, "
          f"max {max(lengths)}); "
          f"spans on; {platform.processor() or platform.machine()}; bar: <= 120 s and <= 2,048 MB")
    print(f"\n{'model':<14} {'seconds':>8} {'texts/s':>8} {'peak RSS MB':>12} {'flagged':>8} {'model spans':>12}")
    for model in models:
        try:
            done = subprocess.run([sys.executable, "-m", "benchmarks.transformer_speed", "--child", model,
                                   "--texts", str(count)], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"{model:<14} {'> ' + str(int(timeout)):>8}  (did not finish within --timeout)")
            continue
        if done.returncode:
            reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
            print(f"{model:<14} failed: {reason}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{model:<14} {r['seconds']:>8.1f} {r['texts_per_s']:>8.1f} {r['peak_rss_mb']:>12,} {r['flagged']:>8} "
              f"{r['model_spans']:>12}")
    return 0


# --- the encoder batching comparison (--embedding-variants) ---------------------------------------------------------


def naive_embed(checkpoint, texts: list[str]) -> np.ndarray:
    """The loop most examples show: fixed padding to 128 tokens, batches of 64 in input order."""
    import torch

    rows = []
    with torch.no_grad():
        for start in range(0, len(texts), NAIVE_BATCH):
            batch = checkpoint.tokenizer(texts[start:start + NAIVE_BATCH], padding="max_length", truncation=True,
                                         max_length=NAIVE_LENGTH, return_tensors="pt")
            hidden = checkpoint.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            rows.append(((hidden * mask).sum(1) / mask.sum(1)).float())
    vectors = torch.cat(rows).numpy()
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@contextmanager
def torch_threads(count: int | None):
    import torch

    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Variant:
    label: str
    run: Callable[[list[str]], np.ndarray]


def variants(fp32, bf16) -> list[Variant]:
    from moderation.text import embedding

    def ours(checkpoint, size=embedding.BATCH_SIZE, threads=None):
        def run(texts):
            with torch_threads(threads):
                return embedding.embed(checkpoint, texts, size)
        return run

    return [
        Variant(f"naive: pad to {NAIVE_LENGTH}, batch {NAIVE_BATCH}, fp32", lambda t: naive_embed(fp32, t)),
        Variant(f"ours: sorted + dynamic padding, batch {embedding.BATCH_SIZE}, fp32", ours(fp32)),
        Variant("ours, batch 32", ours(fp32, 32)),
        Variant("ours, batch 128", ours(fp32, 128)),
        Variant("ours, 1 torch thread", ours(fp32, threads=1)),
        Variant("ours, bf16 weights", ours(bf16)),
    ]


def timing_texts(count: int) -> tuple[list[str], str]:
    try:
        return datasets.fetch_davidson()["text"].tolist()[:count], "Davidson et al. tweets"
    except datasets.DatasetUnavailableError:
        texts = datasets.load_texts()["text"].tolist()
        return (texts * (count // len(texts) + 1))[:count], "bundled texts"


def embedding_variants(count: int, rounds: int) -> int:
    """texts/s of each variant (best of `rounds`, interleaved), ratio to the naive loop, lowest cosine to it, and the
    "transformer" heads' test macro-F1 when fed that variant's embeddings."""
    import torch
    from sklearn.metrics import f1_score

    from moderation.text import embedding
    from moderation.text.cache import training_data
    from moderation.text.classical import apply_thresholds
    from moderation.text.transformer import bundled_minilm, load_encoder_heads, with_embeddings

    heads_model = load_encoder_heads("transformer")  # trains and caches the heads on first use
    fp32 = heads_model.checkpoint
    bf16 = embedding.read_checkpoint(bundled_minilm(), dtype=torch.bfloat16)
    texts, source = timing_texts(count)
    X_test, y_test = training_data("test")
    print(f"{len(texts)} {source}, mean {np.mean([len(fp32.tokenizer(t)['input_ids']) for t in texts]):.1f} tokens; "
          f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    runs = variants(fp32, bf16)
    for variant in runs:  # warm-up: first calls allocate
        variant.run(texts[:64])
    best = {v.label: 0.0 for v in runs}
    vectors = {}
    for _ in range(rounds):
        for variant in runs:
            started = time.perf_counter()
            vectors[variant.label] = variant.run(texts)
            best[variant.label] = max(best[variant.label], len(texts) / (time.perf_counter() - started))
    naive = runs[0].label
    print(f"\n{'variant':<50} {'texts/s':>8} {'x naive':>8} {'min cos':>8} {'test macro-F1':>14}")
    for variant in runs:
        cosine = float((vectors[variant.label] * vectors[naive]).sum(axis=1).min())
        proba = heads_model.heads.predict_proba(with_embeddings(X_test, variant.run(X_test["text"].tolist())))
        macro = f1_score(y_test, apply_thresholds(proba, heads_model.thresholds), average="macro", zero_division=0)
        print(f"{variant.label:<50} {best[variant.label]:>8.1f} {best[variant.label] / best[naive]:>8.2f} "
              f"{cosine:>8.5f} {macro:>14.4f}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["finetuned"])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per model before it is reported as over")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--embedding-variants", action="store_true", help="the encoder batching comparison instead")
    parser.add_argument("--rounds", type=int, default=2, help="--embedding-variants: best of this many rounds")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.texts)))
        return 0
    if args.embedding_variants:
        return embedding_variants(args.texts, args.rounds)
    return long_text_table(args.models, args.texts, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
