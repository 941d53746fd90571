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


def _refuse_unknown_models(names) -> bool:
    """True, with the error printed, when a name is no text model: said before any minutes of scoring."""
    from .text.registry import resolve_model_name

    try:
        for name in names:
            resolve_model_name(name)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return True
    return False


def cmd_text(args) -> int:
    from . import moderate_text

    if _refuse_unknown_models([args.model]):
        return 2
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
    from .text.model_card import default_model_name
    from .text.registry import train_all

    names = [*args.models, *(args.model or [])]
    if "finetuned" in names:  # a transformer fine-tune, not a grid search: its own trainer and settings
        from .text.finetuned import FinetuneSettings, train_and_record

        chosen = {"epochs": args.epochs, "threads": args.threads, "learning_rate": args.learning_rate}
        record = train_and_record(FinetuneSettings(**{k: v for k, v in chosen.items() if v is not None}))
        print(f"finetuned: test macro-F1 {record['test_f1_macro_first_window']}, {record['train_minutes']} min")
        names.remove("finetuned")
        if not names:
            return 0
    train_all(names or None, keep_params=args.keep_params)
    print(f"default model: {default_model_name()}")
    return 0


def cmd_ship(args) -> int:
    from .text.registry import ship_default_model

    ship_default_model()
    return 0


def _print_report(report, as_json: bool) -> None:
    """An EvaluationReport as the Metrics tab shows it: the reading, then the classification reports."""
    if as_json:
        print(json.dumps(report.to_dict(), indent=1))
        return
    print(report.reading())
    for title, table in (("per category", report.category_table()), ("flagged vs clean", report.flagged_table())):
        if not table.empty:
            print(f"\nClassification report, {title}:\n{table.to_string(index=False)}")
    for view in report.views:
        print(f"\nConfusion matrix, {view} ([[tn, fp], [fn, tp]]): {report.confusion(view).tolist()}")


def cmd_evaluate(args) -> int:
    from functools import partial

    from . import moderate_text
    from .datasets import DatasetUnavailableError
    from .evaluation import PUBLIC, evaluate_bundled, evaluate_public, run_public_evaluation

    if _refuse_unknown_models(args.models):
        return 2
    if args.dataset:
        try:
            for name in args.models:
                report = (evaluate_public(args.dataset, name, limit=args.limit) if args.dataset in PUBLIC
                          else evaluate_bundled(args.dataset, name))
                _print_report(report, args.json)
        except (DatasetUnavailableError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
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


def cmd_serve(args) -> int:
    from . import serving, settings
    from .compat.server import serve

    try:
        import starlette  # noqa: F401  (the web server: the [api] extra, or gradio's dependencies)
        import uvicorn  # noqa: F401
    except ImportError as exc:
        print(f"error: {exc.name} is not installed; `pip install 'content-moderation-lab[api]'` installs the API "
              f"server", file=sys.stderr)
        return 2
    per_minute = args.rate_limit
    if per_minute is None:
        per_minute = settings.whole_number("MODERATION_RATE_LIMIT", serving.REQUESTS_PER_MINUTE)
    try:
        serve(args.host, args.port, args.model, requests_per_minute=per_minute, trust_forwarded=args.trust_forwarded)
    except ValueError as exc:  # an unknown model
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
    train.add_argument("--threads", type=int, help="torch threads for fine-tuning (finetuned only; default 2)")
    train.add_argument("--learning-rate", type=float, help="fine-tuning peak learning rate (finetuned only)")
    train.add_argument("--keep-params", action="store_true",
                       help="refit with the recorded grid-search winner (no new search): new data, same grid")
    train.set_defaults(func=cmd_train)

    ship = sub.add_parser("ship", help="write the fitted default model into the package (moderation/models/"
                                       "classical) with its SHA-256 in the model card, so first use need not fit")
    ship.set_defaults(func=cmd_ship)

    evaluate = sub.add_parser("evaluate", help="score models on the public datasets (evaluation only)")
    evaluate.add_argument("--models", nargs="+", default=["default"])
    evaluate.add_argument("--limit", type=int, help="only the first N rows of each dataset (quick look)")
    evaluate.add_argument("--dataset", help="one dataset's full report (confusion matrices, classification reports, "
                                            "reading): public davidson, sms_spam, toxic_spans, or bundled texts, "
                                            "sms_email (their test split)")
    evaluate.add_argument("--json", action="store_true", help="with --dataset: the report as JSON")
    evaluate.set_defaults(func=cmd_evaluate)

    serve = sub.add_parser("serve", help="serve the OpenAI- and Perspective-compatible HTTP APIs (no UI)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--model", default="default", help="the model for requests that name none")
    serve.add_argument("--rate-limit", type=int, help="requests per minute per client, 0 = off (default: "
                                                      "MODERATION_RATE_LIMIT, else 60)")
    serve.add_argument("--trust-forwarded", action="store_true",
                       help="behind a proxy or load balancer: the client is the first X-Forwarded-For address")
    serve.set_defaults(func=cmd_serve)

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
