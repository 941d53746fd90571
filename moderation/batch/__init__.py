"""Moderating whole datasets: a CSV, JSON Lines or Parquet file in, every row out with its scores, resumable.

`formats` scans the input once for block boundaries, so any block can be read on its own; an engine ("local": in
order in this process, "dask": on any worker of a Dask cluster) hands each block to `job`, which scores it and
writes it as one verified Parquet part; a rerun of the same job keeps the parts that exist, so no row is scored
twice and none is lost; `progress` draws the progress line.

Every input row comes out, in order, with `score_<category>` for each text category, `flagged`, `categories`
(comma-separated, most severe first) and `outcome`:

- scored: the text was moderated;
- missing_text: the text is null, absent or blank (scores and `flagged` are null, never a silent "clean");
- not_text: the value is not a string (a number, a list...);
- invalid_record: a CSV row with more fields than the header, or a JSON Lines line that is not a JSON object.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from ..taxonomy import TEXT_CATEGORIES, resolve_thresholds
from ..text.registry import DEFAULT
from .formats import (
    ADDED_COLUMNS,
    DEFAULT_CHUNK_ROWS,
    INVALID_RECORD,
    MISSING_TEXT,
    NOT_TEXT,
    SCORE_COLUMNS,
    SCORED,
    BatchError,
    Block,
    InputFile,
    decode_text,
    file_format,
    forget_row_group,
    open_input,
)
from .job import (
    Job,
    LocalEngine,
    assemble,
    open_checkpoint,
    output_schema,
    part_path,
    part_problem,
    resolve_model,
    score_frame,
    tally,
    verified_parts,
)
from .progress import Progress

__all__ = [
    "ADDED_COLUMNS", "DEFAULT_CHUNK_ROWS", "ENGINES", "INVALID_RECORD", "MISSING_TEXT", "NOT_TEXT", "SCORED",
    "SCORE_COLUMNS", "BatchError", "BatchSummary", "Block", "InputFile", "Job", "Progress", "decode_text",
    "moderate_file", "open_input", "part_path", "resolve_model", "score_frame",
]


def _dask_engine(**options):
    """The Dask engine, imported only when chosen: dask is an optional dependency, and slow to import."""
    try:
        from .dask_engine import DaskEngine
    except ImportError as exc:
        raise BatchError(f"engine 'dask' needs dask and distributed ({exc}); pip install 'dask[dataframe]' "
                         "distributed") from None
    return DaskEngine(**options)


#: Engine name -> what builds it from the `scheduler` and `workers` options.
ENGINES = {"local": LocalEngine, "dask": _dask_engine}


@dataclass(frozen=True)
class BatchSummary:
    """What a finished job did: counts over the whole output, and the speed of this run."""

    input: str
    output: str
    engine: str
    model: str
    rows: int
    flagged: int
    outcomes: dict[str, int]
    resumed_rows: int  # rows an earlier, interrupted run had already written
    seconds: float
    rows_per_second: float  # this run's scoring rate once warm (see Progress.rate)

    def to_dict(self) -> dict:
        return asdict(self)


def moderate_file(input_path, output_path, *, text_column: str = "text", model: str = DEFAULT, thresholds=None,
                  chunk_rows: int | None = None, engine: str = "local", scheduler: str | None = None,
                  workers: int | None = None, progress: bool | TextIO = True) -> BatchSummary:
    """Moderate every row of a CSV, JSON Lines or Parquet file into `output_path` (see the package doc).

    output_path: a .csv, .jsonl or .parquet file, or a folder that receives partitioned Parquet.
    engine: "local" scores blocks one after another in this process; "dask" spreads them over a Dask cluster,
      a LocalCluster of `workers` processes (default one per core) or the scheduler at `scheduler`, whose workers
      must see the input and output paths. Both write the same parts, so either can resume the other's run.
    progress: True for a progress line on stderr, False for none, or the stream to draw it on.
    Rerunning an interrupted job resumes it; a job with other options refuses to touch its checkpoint.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(map(repr, ENGINES))}, got {engine!r}")
    runner = ENGINES[engine](scheduler=scheduler, workers=workers)
    started = time.monotonic()
    model_name, model_version = resolve_model(model)
    resolve_thresholds(thresholds, {}, TEXT_CATEGORIES)  # a bad threshold fails now, not after the scan
    chunk_rows = chunk_rows or DEFAULT_CHUNK_ROWS
    source, blocks = open_input(input_path, text_column, chunk_rows)
    output = Path(output_path).absolute()
    fmt = file_format(output)
    parts_dir = output if fmt is None else output.with_name(output.name + ".parts")
    if fmt is not None and output.exists() and not parts_dir.exists():
        raise BatchError(f"{output} already exists; delete it or choose another output")
    stat = os.stat(source.path)
    identity = {"input": source.path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "text_column": text_column, "model": model_name, "model_version": model_version,
                "thresholds": thresholds, "chunk_rows": chunk_rows}
    done = open_checkpoint(parts_dir, json.loads(json.dumps(identity)))
    stream = sys.stderr if progress is True else progress or None
    job = Job(source, str(parts_dir), model_name, model_version, thresholds, output_schema(source))
    done = verified_parts(job, blocks, done, warn=(lambda line: print(line, file=stream)) if stream else None)
    pending = [block for block in blocks if block.index not in done]
    bar = Progress(sum(b.rows for b in blocks), sum(b.rows for b in blocks if b.index in done), stream)
    try:
        for rows in runner.run(job, pending) if pending else ():
            bar.advance(rows)
    finally:
        forget_row_group()
    bar.close()
    rate = bar.rate
    # Every part is checked again before it is counted or copied: a part replaced while the job ran (by another
    # block's part, or a stray file) must fail the job, never yield a success over duplicated and missing rows.
    problems = [f"part {block.index}: {problem}" for block in blocks if (problem := part_problem(job, block))]
    if problems:
        raise BatchError(f"{len(problems)} part(s) in {parts_dir} cannot be trusted ({'; '.join(problems[:3])}); "
                         f"rerun the same command to score those blocks again")
    outcomes, flagged = tally(parts_dir, blocks)
    if fmt is not None:
        assemble(parts_dir, blocks, output, fmt, job.schema)
        shutil.rmtree(parts_dir)
    return BatchSummary(
        input=source.path, output=str(output), engine=engine, model=model_name, rows=sum(outcomes.values()),
        flagged=flagged, outcomes=outcomes, resumed_rows=bar.done - bar.new_rows,
        seconds=round(time.monotonic() - started, 2), rows_per_second=round(rate, 1),
    )
