"""Quality on real public data, ours and the peers' side by side: a Markdown table and confusion-matrix figures.

For each text model that loads offline and for both peer libraries (benchmarks/peers.py), on the full public sets
(evaluation only: nothing here trains or tunes on them):
- Davidson et al. tweets: flagged (hate or offensive) vs neither: macro-F1, recall, false-positive rate;
- UCI SMS Spam Collection: F1 of the `spam` category, and the share of legitimate (ham) messages flagged at all;
- SemEval-2021 Toxic Spans (test): the task's character-offset F1, and the share of toxic posts flagged.

    MODERATION_DATA_MIRROR=../shared/datasets python -m benchmarks.text_quality [--models default svm] [--limit 500]

Figures go to docs/figures/confusion_<dataset>.png; `--json FILE` also saves every figure's numbers.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from benchmarks.peers import PEERS  # noqa: E402
from moderation import datasets, moderate_text  # noqa: E402
from moderation.evaluation import evaluate_predictor, run_public_evaluation  # noqa: E402
from moderation.hub import ModelUnavailableError  # noqa: E402
from moderation.text import available_models, default_model_name  # noqa: E402
from moderation.text.registry import DEFAULT, get_text_model, resolve_model_name  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "figures"
#: dataset -> (results key holding the matrix, figure title, negative and positive class names)
CONFUSION_VIEWS = {
    "davidson": ("davidson", "Davidson et al. tweets: flagged vs neither", ("neither", "hate/offensive")),
    "sms_spam": ("sms_spam", "UCI SMS Spam Collection: spam category vs ham", ("ham", "spam")),
    "toxic_spans": ("toxic_spans", "SemEval-2021 Toxic Spans (test): post flagged vs post with a gold toxic span",
                    ("no gold span", "gold span")),
}


def our_models(requested: list[str] | None) -> list[str]:
    """Model names to evaluate: the requested ones, else every registered model ('default' is one of them)."""
    names = requested or [n for n in available_models() if n != DEFAULT]
    return [resolve_model_name(n) for n in names]


def load_model(name: str) -> str | None:
    """Load `name` now, so its (possibly long, one-off) load is not counted as evaluation time; why not, if it fails."""
    started = time.perf_counter()
    try:
        get_text_model(name)
    except (ModelUnavailableError, ImportError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    print(f"loaded {name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return None


def _cell(value, fmt: str = "{:.3f}") -> str:
    return "n/a" if value is None else fmt.format(value)


#: Peers whose published model was trained on one of the public sets: their figures there are not a held-out test.
TRAINED_ON = {"alt-profanity-check": "davidson"}  # its README: trained on Davidson et al. and Jigsaw Wikipedia comments


def markdown_table(rows: dict[str, dict], default: str) -> str:
    header = ("| tool | Davidson macro-F1 | Davidson recall | Davidson FPR | SMS spam F1 | SMS ham flagged | "
              "Toxic Spans char F1 | toxic posts flagged |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for tool, result in rows.items():
        if "skipped" in result:
            lines.append(f"| {tool} | skipped: {result['skipped']} |" + " |" * 6)
            continue
        d, s, t = result["davidson"], result["sms_spam"], result["toxic_spans"]
        name = f"**{tool}** (default)" if tool == default else tool
        seen = "‡" if TRAINED_ON.get(tool) == "davidson" else ""
        whole = "†" if tool in PEERS and "whole" in PEERS[tool].spans_note else ""
        lines.append(
            f"| {name} | {d['macro_f1']:.3f}{seen} | {d['recall']:.3f}{seen} | {d['false_positive_rate']:.3f}{seen} | "
            f"{_cell(s['f1'])} | {s['ham_flagged_any']:.3f} | {_cell(t['char_f1'])}{whole} | "
            f"{t['toxic_posts_flagged']:.3f} |"
        )
    return "\n".join(lines)


NOTES = (
    "SMS spam F1 is n/a for the peers: they have no spam category. "
    "† alt-profanity-check gives no spans: a post it flags counts as toxic as a whole. "
    "‡ alt-profanity-check was trained on the Davidson et al. tweets (its README), so these are training-set figures."
)


def confusion_grid(rows: dict[str, dict], dataset: str) -> Figure | None:
    """One confusion matrix per tool (rows: truth, columns: prediction), side by side; tools without the
    dataset's category (the peers have no spam category) are left out."""
    key, title, labels = CONFUSION_VIEWS[dataset]
    tools = [(tool, r[key]["confusion_matrix"]) for tool, r in rows.items()
             if "skipped" not in r and "confusion_matrix" in r[key]]
    if not tools:
        return None
    figure = Figure(figsize=(3.2 * len(tools), 3.6), layout="constrained")
    figure.suptitle(title)
    for axes, (tool, matrix) in zip(np.atleast_1d(figure.subplots(1, len(tools))), tools):
        ConfusionMatrixDisplay(np.array(matrix), display_labels=labels).plot(ax=axes, colorbar=False, cmap="Blues",
                                                                             values_format="d")
        axes.set_title(tool, fontsize=10)
        axes.tick_params(labelsize=8)
    return figure


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", help="our models to evaluate (default: every registered model)")
    parser.add_argument("--no-peers", action="store_true", help="leave out the peer libraries")
    parser.add_argument("--no-ours", action="store_true", help="only the peers (e.g. to fill their cache)")
    parser.add_argument("--limit", type=int, help="first N rows of each dataset (debugging; report full runs)")
    parser.add_argument("--figures", type=Path, default=FIGURES, help="folder for the confusion-matrix PNGs")
    parser.add_argument("--json", type=Path, help="also write every figure's numbers to this JSON file")
    args = parser.parse_args()

    try:
        citations = [datasets.citation(n) for n in ("davidson", "sms_spam", "toxic_spans_test")]
        for name in ("davidson", "sms_spam", "toxic_spans_test"):
            datasets.dataset_path(name)
    except datasets.DatasetUnavailableError as exc:
        print(f"cannot evaluate: {exc}", file=sys.stderr)
        return 2

    rows: dict[str, dict] = {}
    for name in [] if args.no_ours else our_models(args.models):
        if name in rows:
            continue
        problem = load_model(name)
        if problem:
            rows[name] = {"skipped": problem}
            continue
        rows[name] = run_public_evaluation(partial(moderate_text, model=name), limit=args.limit)
        print(f"evaluated {name}", file=sys.stderr)
    if not args.no_peers:
        for peer in PEERS.values():
            rows[peer.name] = evaluate_predictor(peer.cached_predict, limit=args.limit)
            print(f"evaluated {peer.name}", file=sys.stderr)

    scope = f"first {args.limit} rows of each set" if args.limit else "full sets"
    print(f"\nQuality on public data ({scope}; Toxic Spans: test split)\n")
    print(markdown_table(rows, default_model_name()))
    print("\n" + NOTES)
    print("Peers: " + ", ".join(p.title for p in PEERS.values() if p.name in rows))
    print("\nData: " + "\n      ".join(citations))

    args.figures.mkdir(parents=True, exist_ok=True)
    for dataset in CONFUSION_VIEWS:
        figure = confusion_grid(rows, dataset)
        if figure is not None:
            path = args.figures / f"confusion_{dataset}.png"
            figure.savefig(path, dpi=110)
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"scope": scope, "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
