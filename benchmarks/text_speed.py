"""Text moderation speed, ours and the peers' in one run: batch throughput, single-text latency, ratios per peer.

Throughput is texts/s over one batch of tweets (Davidson et al. from the mirror, else our bundled texts repeated);
latency is p50/p95 over single-text calls on texts spread through that batch, the same texts for every tool.
Every model runs on the default path without occlusion spans (what bulk jobs use); the default model also runs
with them (what the app shows). Ratios compare tools measured in this same process minutes apart, because
absolute times on a shared machine drift.

    MODERATION_DATA_MIRROR=../shared/datasets python -m benchmarks.text_speed [--batch 10000] [--singles 200]

better-profanity checks about ten tweets a second, so its batch figure is measured on the first
`--word-list-texts` texts of the batch (its cost per text does not depend on the batch: it has no batch path).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from itertools import cycle, islice
from typing import Callable, Sequence

import numpy as np
import sklearn

from benchmarks.peers import PEERS, warm_up
from moderation import datasets, moderate_text
from moderation.text import available_models, default_model_name
from moderation.text.registry import DEFAULT

#: The goals the project set itself (issue 7): default path vs the word list, and closing on the linear SVM.
WORD_LIST, SVM = "better-profanity", "alt-profanity-check"
GOAL_VS_WORD_LIST = 50.0


@dataclass(frozen=True)
class Contender:
    label: str
    batch: Callable[[Sequence[str]], object]
    single: Callable[[str], object]
    batch_limit: int | None = None  # measure the batch on its first N texts only (the word list)


@dataclass(frozen=True)
class Timing:
    texts_per_s: float
    batch_texts: int
    p50_ms: float
    p95_ms: float


def batch_texts(size: int) -> tuple[list[str], str]:
    """`size` real tweets when the mirror is there, else our own texts repeated; and where they came from."""
    try:
        tweets = datasets.fetch_davidson()["text"].tolist()
        source = "Davidson et al. tweets (first {n:,})"
    except datasets.DatasetUnavailableError as exc:
        print(f"note: {exc}; timing on the bundled texts instead", file=sys.stderr)
        tweets = datasets.load_texts()["text"].tolist()
        source = "bundled texts, repeated to {n:,}"
    texts = list(islice(cycle(tweets), size))
    return texts, source.format(n=size)


def contenders(models: list[str], word_list_texts: int) -> list[Contender]:
    ours = [Contender(f"{name} (no spans)", moderator(name, False), moderator(name, False)) for name in models]
    default = default_model_name()
    ours.append(Contender(f"{default} + spans", moderator(default, True), moderator(default, True)))
    peers = [Contender(p.name, p.flag, lambda text, p=p: p.flag([text]),
                       word_list_texts if p.name == WORD_LIST else None) for p in PEERS.values()]
    return ours + peers


def moderator(model: str, spans: bool) -> Callable:
    """Our public entry point for one model; it takes one text or a list."""
    return lambda text_or_texts: moderate_text(text_or_texts, model=model, explain_spans=spans)


def measure(contender: Contender, texts: list[str], singles: list[str]) -> Timing:
    batch = texts[:contender.batch_limit] if contender.batch_limit else texts
    started = time.perf_counter()
    contender.batch(batch)
    texts_per_s = len(batch) / (time.perf_counter() - started)
    latencies = []
    for text in singles:
        started = time.perf_counter()
        contender.single(text)
        latencies.append(time.perf_counter() - started)
    p50, p95 = np.percentile(latencies, [50, 95]) * 1000
    return Timing(texts_per_s, len(batch), float(p50), float(p95))


def ratio(ours: float, theirs: float) -> str:
    value = ours / theirs
    return f"{value:,.0f}x" if value >= 100 else f"{value:.3g}x"


def table(timings: dict[str, Timing], batch_size: int) -> str:
    word_list, svm = timings[WORD_LIST], timings[SVM]
    lines = [
        "| tool | batch texts/s | vs better-profanity | vs alt-profanity-check | p50 ms | p95 ms "
        "| p50 vs better-profanity | p50 vs alt-profanity-check |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, t in timings.items():
        partial_batch = f" (first {t.batch_texts:,})" if t.batch_texts != batch_size else ""
        lines.append(
            f"| {label} | {t.texts_per_s:,.0f}{partial_batch} | {ratio(t.texts_per_s, word_list.texts_per_s)} | "
            f"{ratio(t.texts_per_s, svm.texts_per_s)} | {t.p50_ms:.2f} | {t.p95_ms:.2f} | "
            f"{ratio(word_list.p50_ms, t.p50_ms)} | {ratio(svm.p50_ms, t.p50_ms)} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
            f"scikit-learn {sklearn.__version__}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=10_000, help="texts in the throughput batch")
    parser.add_argument("--singles", type=int, default=200, help="single-text calls for the latency percentiles")
    parser.add_argument("--word-list-texts", type=int, default=1_000, help="batch texts timed for better-profanity")
    parser.add_argument("--models", nargs="+", help="our models (default: every registered model)")
    args = parser.parse_args()

    texts, source = batch_texts(args.batch)
    singles = texts[:: max(1, len(texts) // args.singles)][: args.singles]
    models = [default_model_name() if n == DEFAULT else n for n in (args.models or available_models())]
    models = list(dict.fromkeys(models))
    print(f"machine: {machine()}\nbatch: {source}; latency: {len(singles)} single texts from it", flush=True)

    runners = contenders(models, args.word_list_texts)
    warm_up()
    for contender in runners:  # first calls load models, fit caches and allocate: not what is being measured
        contender.batch(texts[:20])
    timings = {}
    for contender in runners:
        timings[contender.label] = measure(contender, texts, singles)
        print(f"measured {contender.label}", file=sys.stderr, flush=True)

    print()
    print(table(timings, len(texts)))
    default = timings[f"{default_model_name()} (no spans)"]
    word_list = default.texts_per_s / timings[WORD_LIST].texts_per_s
    svm = default.texts_per_s / timings[SVM].texts_per_s
    verdict = "met" if word_list >= GOAL_VS_WORD_LIST else "NOT met"
    print(f"\ndefault path (no spans): {word_list:.0f}x better-profanity's throughput (goal >= {GOAL_VS_WORD_LIST:.0f}x: "
          f"{verdict}); {svm:.3f}x alt-profanity-check's ({1 / svm:.1f}x slower than the linear SVM)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
