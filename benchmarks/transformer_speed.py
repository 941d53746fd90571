"""Transformer embedding speed: our path (length-sorted batches, dynamic padding, inference_mode) against the naive
loop (every batch padded to 128 tokens, batch 64, no_grad), plus variants, measured side by side in one run.

For each variant: texts/s over the same texts (best of --rounds, variants interleaved so that load from other
processes hits them alike), the ratio to the naive loop, the lowest cosine between its embeddings and the naive
loop's, and the macro-F1 of the "transformer" heads on our bundled test split when fed that variant's
embeddings (the quality a speed-up costs, if any).

    MODERATION_DATA_MIRROR=../shared/datasets python -m benchmarks.transformer_speed [--texts 2000] [--rounds 2]

Timing texts are Davidson et al. tweets when the mirror is there (timing only), else our own bundled texts.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from sklearn.metrics import f1_score

from moderation import datasets
from moderation.text import embedding
from moderation.text.classical import apply_thresholds
from moderation.text.registry import training_data
from moderation.text.transformer import bundled_minilm, load_encoder_heads, with_embeddings

NAIVE_LENGTH, NAIVE_BATCH = 128, 64


def naive_embed(checkpoint: embedding.Checkpoint, texts: list[str]) -> np.ndarray:
    """The loop most examples show: fixed padding to 128 tokens, batches of 64 in input order."""
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


def variants(fp32: embedding.Checkpoint, bf16: embedding.Checkpoint) -> list[Variant]:
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    heads_model = load_encoder_heads("transformer")  # trains and caches the heads on first use
    fp32 = heads_model.checkpoint
    bf16 = embedding.read_checkpoint(bundled_minilm(), dtype=torch.bfloat16)
    texts, source = timing_texts(args.texts)
    X_test, y_test = training_data("test")
    print(f"{len(texts)} {source}, mean {np.mean([len(fp32.tokenizer(t)['input_ids']) for t in texts]):.1f} tokens; "
          f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")

    runs = variants(fp32, bf16)
    for variant in runs:  # warm-up: first calls allocate
        variant.run(texts[:64])
    best = {v.label: 0.0 for v in runs}
    vectors = {}
    for _ in range(args.rounds):
        for variant in runs:
            started = time.perf_counter()
            vectors[variant.label] = variant.run(texts)
            best[variant.label] = max(best[variant.label], len(texts) / (time.perf_counter() - started))

    naive = runs[0].label
    print(f"\n{'variant':<50} {'texts/s':>8} {'x naive':>8} {'min cos':>8} {'test macro-F1':>14}")
    for variant in runs:
        cosine = float((vectors[variant.label] * vectors[naive]).sum(axis=1).min())
        test_vectors = variant.run(X_test["text"].tolist())
        proba = heads_model.heads.predict_proba(with_embeddings(X_test, test_vectors))
        macro = f1_score(y_test, apply_thresholds(proba, heads_model.thresholds), average="macro", zero_division=0)
        print(f"{variant.label:<50} {best[variant.label]:>8.1f} {best[variant.label] / best[naive]:>8.2f} "
              f"{cosine:>8.5f} {macro:>14.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
