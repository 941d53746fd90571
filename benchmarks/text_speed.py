"""Text moderation speed, ours and the peers' in one run: batch throughput, single-text latency, ratios per peer.

Throughput is texts/s over one batch of tweets (Davidson et al. from the mirror, else our bundled texts repeated);
latency is p50/p95 over single-text calls on texts spread through that batch, the same texts for every tool.
Every model runs on the default path without occlusion spans (what bulk jobs use); the default model also runs
with them (what the app shows). Ratios compare tools measured in this same process minutes apart, because
absolute times on a shared machine drift.

First it prints where the default model's time goes: microseconds per text in each stage of one `moderate_text`
call over the batch (spans on and off), timed around the real functions while the real call runs.

    MODERATION_DATA_MIRROR=../shared/datasets python -m benchmarks.text_speed [--batch 10000] [--singles 200]
    MODERATION_DATA_MIRROR=../shared/datasets python -m benchmarks.text_speed --stages-only

better-profanity checks about ten tweets a second, so its batch figure is measured on the first
`--word-list-texts` texts of the batch (its cost per text does not depend on the batch: it has no batch path).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from itertools import cycle, islice
from typing import Callable, Sequence

import numpy as np
import sklearn

import moderation.text.moderate as text_api
from benchmarks.peers import PEERS, warm_up
from moderation import datasets, moderate_text
from moderation.text import available_models, default_model_name, features
from moderation.text.registry import get_text_model, resolve_model_name

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


STAGES = ["normalise", "lexicon", "statistics", "word TF-IDF", "char TF-IDF", "classifier", "spans", "verdicts"]


@contextlib.contextmanager
def timed_stages(model: str):
    """Wrap the functions `moderate_text` calls so that each adds its wall time to a stage; yields the totals.

    normalise: `normalize`; lexicon: the rest of `analyze` (allowlist, matching, blanking); statistics: building the
    feature rows (text statistics, lexicon evidence); word and char TF-IDF: the fitted vectorizers' transform;
    classifier: the rest of the model's predict_proba (scaling, stacking, the classifier); spans: `explain`;
    verdicts: whatever else the call spends (thresholds, verdict objects), measured as the call's remainder.
    """
    seconds: dict[str, float] = defaultdict(float)

    def timing(stage: str, function: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[stage] += time.perf_counter() - started
        return wrapper

    text_model = get_text_model(model)
    vectorizers = text_model.pipeline.steps[0][1].named_transformers_
    patches = [(features, "normalize", "normalise"), (text_api, "analyze", "analyze"),
               (text_api, "feature_rows", "statistics"), (text_api, "explain", "spans"),
               (vectorizers["words"], "transform", "word TF-IDF"), (vectorizers["chars"], "transform", "char TF-IDF"),
               (text_model, "predict_proba", "model")]
    originals = [(owner, name, owner.__dict__.get(name)) for owner, name, _ in patches]
    for owner, name, stage in patches:
        setattr(owner, name, timing(stage, getattr(owner, name)))
    try:
        yield seconds
    finally:
        for owner, name, original in originals:
            if original is None:
                delattr(owner, name)  # an instance attribute over the class's method: the method shows again
            else:
                setattr(owner, name, original)


def stage_costs(texts: list[str], model: str, spans: bool) -> dict[str, float]:
    """Microseconds per text in each of STAGES for one `moderate_text(texts)` call, and the call's total."""
    with timed_stages(model) as seconds:
        started = time.perf_counter()
        moderate_text(texts, model=model, explain_spans=spans)
        total = time.perf_counter() - started
    stages = {
        "normalise": seconds["normalise"],
        "lexicon": seconds["analyze"] - seconds["normalise"],
        "statistics": seconds["statistics"],
        "word TF-IDF": seconds["word TF-IDF"],
        "char TF-IDF": seconds["char TF-IDF"],
        "classifier": seconds["model"] - seconds["word TF-IDF"] - seconds["char TF-IDF"],
        "spans": seconds["spans"],
    }
    stages["verdicts"] = total - sum(stages.values())
    stages["total"] = total
    return {stage: value * 1e6 / len(texts) for stage, value in stages.items()}


def stage_table(texts: list[str], other_texts: list[str], model: str) -> str:
    """Per-stage cost with spans on (over `texts`) and off (over `other_texts`): each call the first to see its
    batch, as in the yardstick (per-word caches warm up within a batch, not from the one before)."""
    on = stage_costs(texts, model, spans=True)
    off = stage_costs(other_texts, model, spans=False)
    lines = [f"| stage ({model}, µs per text) | spans on | spans off |", "|---|---|---|"]
    lines += [f"| {stage} | {on[stage]:,.1f} | {off[stage]:,.1f} |" for stage in [*STAGES, "total"]]
    lines.append(f"| texts/s | {1e6 / on['total']:,.0f} | {1e6 / off['total']:,.0f} |")
    return "\n".join(lines)


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
    parser.add_argument("--stages-only", action="store_true", help="print the per-stage costs, not the peers' table")
    args = parser.parse_args()

    texts, source = batch_texts(args.batch)
    other_texts = batch_texts(2 * args.batch)[0][args.batch:]
    singles = texts[:: max(1, len(texts) // args.singles)][: args.singles]
    models = [resolve_model_name(n) for n in (args.models or available_models())]
    models = list(dict.fromkeys(models))
    print(f"machine: {machine()}\nbatch: {source}; latency: {len(singles)} single texts from it", flush=True)

    default_name = default_model_name()
    moderate_text(["warm up", "you idiot"], model=default_name)  # loads the model: not a stage of a call
    print(f"stages: spans on over the batch, spans off over the next {len(other_texts):,} texts", flush=True)
    print(stage_table(texts, other_texts, default_name), flush=True)
    if args.stages_only:
        return 0

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
    print(f"\ndefault path (no spans): {word_list:.0f}x better-profanity's throughput "
          f"(goal >= {GOAL_VS_WORD_LIST:.0f}x: {verdict}); {svm:.3f}x alt-profanity-check's "
          f"({1 / svm:.1f}x slower than the linear SVM)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
