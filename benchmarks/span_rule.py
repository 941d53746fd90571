"""Choose the linear models' span rule on our own span-annotated texts (moderation/data/spans.csv).

A linear model's word is a span of a flagged category when its exact share of the category's logit is at least
`relative` x the text's largest share and at least `floor` (moderation.text.spans.LinearSpanRule). This script
scores every rule of a small grid by the SemEval-2021 per-text character F1 (the same metric, on our texts: a text
with no gold span and no predicted span scores 1) through the public API, `moderate_text` with its defaults, and
prints the table and the best rule (on a tie, the stricter one: fewer words shown). SemEval Toxic Spans is not
read here: it stays an evaluation set (`--public` reports it for the chosen rule and the current one, after the
choice, when the mirror is there).

    python -m benchmarks.span_rule [--models logreg svm] [--public]
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import os

import numpy as np

from moderation import datasets, moderate_text
from moderation.evaluation.public import span_f1, toxic_offsets
from moderation.text import spans

RELATIVE = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
FLOOR = (0.1, 0.32, 0.75, 1.5, 3.0)


@contextlib.contextmanager
def linear_rule(rule: spans.LinearSpanRule):
    before = spans.LINEAR_RULE
    spans.LINEAR_RULE = rule
    try:
        yield
    finally:
        spans.LINEAR_RULE = before


def gold_offsets(frame) -> list[set[int]]:
    return [{i for start, end in row for i in range(start, end)} for row in frame["spans"]]


def char_f1(texts: list[str], gold: list[set[int]], model: str, rule: spans.LinearSpanRule) -> float:
    with linear_rule(rule):
        verdicts = moderate_text(texts, model=model)
    return float(np.mean([span_f1(toxic_offsets(v), g) for v, g in zip(verdicts, gold)]))


def grid(texts: list[str], gold: list[set[int]], model: str) -> dict[spans.LinearSpanRule, float]:
    return {rule: char_f1(texts, gold, model, rule)
            for rule in (spans.LinearSpanRule(r, f) for r, f in itertools.product(RELATIVE, FLOOR))}


def best_rule(scores: dict[spans.LinearSpanRule, float]) -> spans.LinearSpanRule:
    """Highest F1 (to 3 decimals, so noise does not decide); on a tie the stricter rule (higher relative, then
    higher floor)."""
    return max(scores, key=lambda rule: (round(scores[rule], 3), rule.relative, rule.floor))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["logreg"])
    parser.add_argument("--public", action="store_true", help="also report SemEval Toxic Spans (evaluation only)")
    args = parser.parse_args(argv)
    frame = datasets.load_span_texts()
    texts, gold = frame["text"].tolist(), gold_offsets(frame)
    print(f"{len(texts)} texts of ours ({sum(map(bool, gold))} with gold spans); current rule "
          f"relative={spans.LINEAR_RULE.relative} floor={spans.LINEAR_RULE.floor}")
    for model in args.models:
        scores = grid(texts, gold, model)
        print(f"\n## {model}: mean per-text char F1 (rows: relative, columns: floor)")
        print("relative " + " ".join(f"{f:>6}" for f in FLOOR))
        for r in RELATIVE:
            print(f"{r:>8} " + " ".join(f"{scores[spans.LinearSpanRule(r, f)]:>6.3f}" for f in FLOOR))
        chosen = best_rule(scores)
        print(f"best: relative={chosen.relative} floor={chosen.floor} (F1 {scores[chosen]:.3f}; current "
              f"{scores.get(spans.LINEAR_RULE, float('nan')):.3f})")
        if args.public:
            public_figures(model, [spans.LINEAR_RULE, chosen])
    return 0


def public_figures(model: str, rules: list[spans.LinearSpanRule]) -> None:
    os.environ.setdefault("MODERATION_DATA_MIRROR", os.path.join("..", "shared", "datasets"))
    try:
        posts = datasets.fetch_toxic_spans("test")
    except datasets.DatasetUnavailableError as exc:
        print(f"  Toxic Spans not reported: {exc}")
        return
    texts = posts["text"].tolist()
    gold = [set(s) for s in posts["spans"]]
    for rule in dict.fromkeys(rules):
        print(f"  Toxic Spans test char F1, relative={rule.relative} floor={rule.floor}: "
              f"{char_f1(texts, gold, model, rule):.4f}")


if __name__ == "__main__":
    raise SystemExit(main())
