"""One batch job: score a block, write it as a verified Parquet part, keep the checkpoint, assemble the output.

Each block is scored with `moderate_text(..., explain_spans=False)` and written as one Parquet part, atomically,
named after the block and stamped with what it is; a rerun of the same job keeps the parts that pass that check,
so no row is scored twice and none is lost. A .csv, .jsonl or .parquet output is assembled from the parts at the
end; any other output path is a folder of partitioned Parquet, the parts themselves.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..files import atomic_write, atomic_writer
from ..taxonomy import TEXT_CATEGORIES
from ..text import moderate_text
from ..text.cache import data_version, features_version
from ..text.model_card import DEFAULT, model_record
from ..text.registry import resolve_model_name
from . import formats
from .formats import ADDED_SCHEMA, BatchError, Block, InputFile, is_missing, to_frame

CHECKPOINT = "_checkpoint.json"  # leading underscore: Parquet dataset readers skip it
_PART_KEY = b"moderation_part"  # Parquet metadata key of a part's stamp (Job.part_stamp)


def _outcome(value) -> str:
    if isinstance(value, str):
        return formats.SCORED if value.strip() else formats.MISSING_TEXT
    return formats.MISSING_TEXT if is_missing(value) else formats.NOT_TEXT


def score_frame(frame: pd.DataFrame, text_column: str, *, model: str = DEFAULT, thresholds=None) -> pd.DataFrame:
    """`frame` without its `outcome` column, followed by the added columns (see the package doc), same rows and order.

    An `outcome` already set (by a reader that could not parse a record) is kept; the rest is decided here.
    """
    size = len(frame)
    preset = frame["outcome"].tolist() if "outcome" in frame.columns else [None] * size
    outcomes = [_outcome(value) if is_missing(given) else given
                for value, given in zip(frame[text_column].tolist(), preset)]
    rows = [i for i, outcome in enumerate(outcomes) if outcome == formats.SCORED]
    texts = frame[text_column].take(rows).tolist()
    verdicts = moderate_text(texts, model=model, thresholds=thresholds, explain_spans=False) if rows else []
    added = {name: [None] * size for name in ADDED_SCHEMA.names}
    added["outcome"] = outcomes
    for i, verdict in zip(rows, verdicts):
        for category, name in zip(TEXT_CATEGORIES, formats.SCORE_COLUMNS):
            added[name][i] = verdict.scores[category]
        added["flagged"][i] = verdict.flagged
        added["categories"][i] = ",".join(verdict.categories)
    scores = to_frame(pa.Table.from_pydict(added, schema=ADDED_SCHEMA)).set_axis(frame.index)
    return pd.concat([frame.drop(columns="outcome", errors="ignore"), scores], axis=1)


def output_schema(source: InputFile) -> pa.Schema:
    return pa.schema([*source.schema.remove(len(source.schema) - 1), *ADDED_SCHEMA])


def part_path(parts_dir, index: int) -> Path:
    return Path(parts_dir) / f"part-{index:08d}.parquet"


@dataclass(frozen=True)
class Job:
    """What to do with every block. Picklable: Dask workers get exactly the instructions the local loop follows."""

    source: InputFile
    parts_dir: str
    model: str
    model_version: str  # see resolve_model
    thresholds: float | dict | None
    schema: pa.Schema  # of every part

    def part_stamp(self, index: int, rows: int) -> dict:
        """What a part of this job for block `index` records about itself (checked before it is trusted)."""
        return {"job": hashlib.sha256(f"{self.source.path}|{self.model_version}|{self.thresholds}".encode())
                .hexdigest()[:16], "block": index, "rows": rows}

    def run_block(self, frame: pd.DataFrame, index: int) -> int:
        """Score one block's rows and write them as part `index`, atomically; returns the number of rows."""
        scored = score_frame(frame, self.source.text_column, model=self.model, thresholds=self.thresholds)
        table = pa.Table.from_pandas(scored, schema=self.schema, preserve_index=False)
        # No pandas metadata (readers get plain dtypes); instead what the part is, so assembly can verify it.
        stamp = json.dumps(self.part_stamp(index, len(scored)), sort_keys=True).encode()
        with atomic_writer(part_path(self.parts_dir, index)) as handle:  # its temporary name is hidden from readers
            pq.write_table(table.replace_schema_metadata({_PART_KEY: stamp}), handle)
        return len(scored)


class LocalEngine:
    """Scores the blocks one after another in this process."""

    def __init__(self, *, scheduler: str | None = None, workers: int | None = None):
        if scheduler or workers:
            raise ValueError("scheduler and workers apply to engine='dask' only")

    def run(self, job: Job, blocks: list[Block]) -> Iterator[int]:
        """Score and write `blocks`; yield each block's row count as its part lands (for progress)."""
        for block in blocks:
            yield job.run_block(job.source.read(block), block.index)


# --- checkpoint, verification, assembly -----------------------------------------------------------------------------


def part_problem(job: Job, block: Block) -> str | None:
    """Why block's part cannot be trusted (missing, unreadable, another block's or job's, wrong row count), or None."""
    path = part_path(job.parts_dir, block.index)
    if not path.is_file():
        return "missing"
    try:
        metadata = pq.read_metadata(path)
        stamp = json.loads((metadata.metadata or {}).get(_PART_KEY, b"null"))
    except Exception as exc:  # a truncated or foreign file: pyarrow raises several kinds
        return f"unreadable ({type(exc).__name__})"
    if stamp != job.part_stamp(block.index, block.rows) or metadata.num_rows != block.rows:
        return "not this block's part (another block's, another job's, or a different number of rows)"
    return None


def verified_parts(job: Job, blocks: list[Block], done: set[int], warn=None) -> set[int]:
    """The blocks in `done` whose parts pass `part_problem`; the others are deleted so they are scored again."""
    good = set()
    for block in blocks:
        if block.index not in done:
            continue
        problem = part_problem(job, block)
        if problem is None:
            good.add(block.index)
        else:
            part_path(job.parts_dir, block.index).unlink(missing_ok=True)
            if warn:
                warn(f"part {block.index} is {problem}: scoring that block again")
    return good


def _read_checkpoint(manifest: Path) -> dict:
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BatchError(f"the checkpoint {manifest} is damaged ({exc}); "
                         f"delete {manifest.parent} to start over") from None
    if not isinstance(recorded, dict):
        raise BatchError(f"the checkpoint {manifest} is not a checkpoint of this program (it holds a "
                         f"{type(recorded).__name__}); delete {manifest.parent} to start over")
    return recorded


def open_checkpoint(parts_dir: Path, identity: dict) -> set[int]:
    """Indices of the blocks an earlier run of this same job already wrote; a new checkpoint when there is none."""
    manifest = parts_dir / CHECKPOINT
    if manifest.is_file():
        recorded = _read_checkpoint(manifest)
        changed = [key for key in identity if recorded.get(key) != identity[key]]
        if changed:
            raise BatchError(f"{parts_dir} holds a run of a different job ({', '.join(changed)} changed); rerun with "
                             f"the same input and options to resume it, or delete {parts_dir} to start over")
        return {int(path.stem.removeprefix("part-")) for path in parts_dir.glob("part-*.parquet")}
    if parts_dir.exists() and any(parts_dir.iterdir()):
        raise BatchError(f"{parts_dir} already exists and is not a checkpoint of this job; choose another output")
    atomic_write(manifest, json.dumps(identity, indent=1))
    return set()


@contextlib.contextmanager
def _writer(path: Path, fmt: str, schema: pa.Schema):
    """A function that appends a table of parts to `path` in format `fmt`; `path` is replaced when the block ends."""
    if fmt == "parquet":
        with atomic_writer(path) as handle, pq.ParquetWriter(handle, schema) as writer:
            yield writer.write_table
        return
    with atomic_writer(path, "w", encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            to_frame(schema.empty_table()).to_csv(handle, index=False)
            yield lambda table: to_frame(table).to_csv(handle, header=False, index=False)
        else:
            yield lambda table: handle.writelines(json.dumps(record, ensure_ascii=False, default=str) + "\n"
                                                  for record in table.to_pylist())


def assemble(parts_dir: Path, blocks: list[Block], output: Path, fmt: str, schema: pa.Schema) -> None:
    """Concatenate the parts, in input order, into one file; it appears under its name only once complete."""
    with _writer(output, fmt, schema) as write:
        for block in blocks:
            write(pq.read_table(part_path(parts_dir, block.index), schema=schema))


def tally(parts_dir: Path, blocks: list[Block]) -> tuple[dict[str, int], int]:
    """Outcome counts and flagged rows over every part, this run's and earlier ones'."""
    outcomes, flagged = Counter(), 0
    for block in blocks:
        table = pq.read_table(part_path(parts_dir, block.index), columns=["outcome", "flagged"])
        outcomes.update(table["outcome"].to_pylist())
        flagged += table["flagged"].to_pylist().count(True)
    return dict(outcomes), flagged


def resolve_model(model: str) -> tuple[str, str]:
    """The model's name and a version that changes when it is retrained or its data changes, so that a resumed run
    never mixes the scores of two versions of a model."""
    try:
        name = resolve_model_name(model)
    except ValueError as exc:
        raise BatchError(str(exc)) from None
    recorded = model_record(name)
    versions = json.dumps([recorded, data_version(), features_version()], sort_keys=True)
    return name, hashlib.sha256(versions.encode()).hexdigest()[:12]


