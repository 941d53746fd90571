"""Command line: `python -m moderation text|models|train|evaluate|batch ...` (see `--help` of each)."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys

from .taxonomy import TEXT_CATEGORIES


def _read_lines(path: str | None, texts: list[str]):
    """Texts from arguments, else one per line from a file or stdin ('-'); invalid UTF-8 is replaced, not fatal."""
    if texts:
        yield from texts
        return
    if path in (None, "-"):
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
        context = contextlib.nullcontext(stdin)
    else:
        context = open(path, encoding="utf-8", errors="replace", newline="")
    with context as handle:
        for line in handle:
            yield line.rstrip("\r\n")


def _format_row(verdict) -> str:
    status = "FLAGGED " + ",".join(verdict.categories) if verdict.flagged else "ok"
    top = max(verdict.scores, key=verdict.scores.get)
    preview = verdict.text if len(verdict.text) <= 60 else verdict.text[:57] + "..."
    return f"{status:<32} {top}={verdict.scores[top]:.2f}  {preview}"


def cmd_text(args) -> int:
    from . import moderate_text

    batch: list[str] = []

    def flush():
        for verdict in moderate_text(batch, model=args.model, explain_spans=not args.no_spans):
            print(json.dumps(verdict.to_dict(), ensure_ascii=False) if args.json else _format_row(verdict), flush=True)
        batch.clear()

    for line in _read_lines(args.file, args.texts):
        batch.append(line)
        if len(batch) >= args.batch_size:
            flush()
    if batch:
        flush()
    return 0


def cmd_train(args) -> int:
    from .text.registry import train_all

    names = [*args.models, *(args.model or [])]
    if "finetuned" in names:  # a transformer fine-tune, not a grid search: its own trainer and settings
        from .text.finetuned import FinetuneSettings, train_and_record

        record = train_and_record(FinetuneSettings(epochs=args.epochs) if args.epochs else None)
        print(f"finetuned: test macro-F1 {record['test_f1_macro_first_window']}, {record['train_minutes']} min")
        names.remove("finetuned")
        if not names:
            return 0
    card = train_all(names or None)
    print(f"default model: {card['default']}")
    return 0


def cmd_evaluate(args) -> int:
    from functools import partial

    from . import moderate_text
    from .datasets import DatasetUnavailableError
    from .evaluation import run_public_evaluation

    results = {}
    for name in args.models:
        try:
            results[name] = run_public_evaluation(partial(moderate_text, model=name), limit=args.limit)
        except DatasetUnavailableError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(json.dumps(results, indent=1))
    return 0


def cmd_batch(args) -> int:
    from .batch import moderate_file

    try:
        summary = moderate_file(args.input, args.out, text_column=args.text_column, model=args.model,
                                thresholds=args.threshold, chunk_rows=args.chunk_rows, engine=args.engine,
                                scheduler=args.scheduler, workers=args.workers)
    except (ValueError, OSError) as exc:  # BatchError is a ValueError: bad input, options or checkpoint
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: rerun the same command to resume where it stopped", file=sys.stderr)
        return 130
    print(json.dumps(summary.to_dict(), indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m moderation", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    text = sub.add_parser("text", help="moderate texts: one per line in, one verdict per line out")
    text.add_argument("texts", nargs="*", help="texts to moderate (default: read lines from --file or stdin)")
    text.add_argument("--file", help="file with one text per line, or - for stdin")
    text.add_argument("--model", default="default", help="text model name (see `python -m moderation models`)")
    text.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    text.add_argument("--no-spans", action="store_true", help="skip the model's occlusion spans (faster)")
    text.add_argument("--batch-size", type=int, default=256)
    text.set_defaults(func=cmd_text)

    models = sub.add_parser("models", help="list the text models and categories")
    models.set_defaults(func=lambda a: print(json.dumps(_models_listing(), indent=1)) or 0)

    train = sub.add_parser("train", help="grid-search, tune and test the classical models; update the model card")
    train.add_argument("models", nargs="*", help="model names (default: all classical models)")
    train.add_argument("--model", action="append", help="a model to train, e.g. finetuned (repeatable)")
    train.add_argument("--epochs", type=float, help="fine-tuning epochs (finetuned only)")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="score models on the public datasets (evaluation only)")
    evaluate.add_argument("--models", nargs="+", default=["default"])
    evaluate.add_argument("--limit", type=int, help="only the first N rows of each dataset (quick look)")
    evaluate.set_defaults(func=cmd_evaluate)

    batch = sub.add_parser("batch", help="moderate every row of a CSV, JSON Lines or Parquet file (resumable)")
    batch.add_argument("input", help="a .csv, .jsonl/.ndjson or .parquet file")
    batch.add_argument("--out", required=True,
                       help="a .csv, .jsonl or .parquet file, or a folder for partitioned Parquet")
    batch.add_argument("--text-column", default="text", help="the column holding the text (default: text)")
    batch.add_argument("--model", default="default", help="text model name (see `python -m moderation models`)")
    batch.add_argument("--threshold", type=float, help="one threshold for every category (default: the model's)")
    batch.add_argument("--chunk-rows", type=int, help="rows scored and checkpointed together (default 2000)")
    batch.add_argument("--engine", choices=["local", "dask"], default="local")
    batch.add_argument("--scheduler", help="Dask scheduler address (default: a LocalCluster); its workers must "
                                           "see the input and output paths")
    batch.add_argument("--workers", type=int, help="LocalCluster worker processes (default: one per core)")
    batch.set_defaults(func=cmd_batch)
    return parser


def _models_listing() -> dict:
    from .text import available_models, default_model_name

    return {"text_models": available_models(), "default": default_model_name(), "categories": list(TEXT_CATEGORIES)}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
