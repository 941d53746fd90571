"""Moderating whole datasets: a CSV, JSON Lines or Parquet file in, every row out with its scores, resumable.

The input is scanned once for block boundaries (the byte offset after every `chunk_rows`-th record, or slices of
Parquet row groups), so any block can be read on its own: in order by the local engine, on any worker of a Dask
cluster by `batch_dask`. Each block is scored with `moderate_text(..., explain_spans=False)` and written as one
Parquet part, atomically, named after the block; a rerun of the same job skips the parts that exist, so no row is
scored twice and none is lost. Only one block is in memory at a time (a Parquet input also holds one row group).
A .csv, .jsonl or .parquet output is assembled from the parts at the end; any other output path is a folder of
partitioned Parquet, the parts themselves.

Every input row comes out, in order, with `score_<category>` for each text category, `flagged`, `categories`
(comma-separated, most severe first) and `outcome`:

- scored: the text was moderated;
- missing_text: the text is null, absent or blank (scores and `flagged` are null, never a silent "clean");
- not_text: the value is not a string (a number, a list...);
- invalid_record: a CSV row with more fields than the header, or a JSON Lines line that is not a JSON object.

Text files are read as UTF-8; bytes that are not valid UTF-8 are read as Windows-1252, so a corpus stitched
together from old exports keeps "café" rather than "caf?". CSV follows RFC 4180 (quoted fields may hold commas,
newlines and doubled quotes). JSON Lines columns are the union of the keys; a column whose values mix types or
nest is carried as JSON text.
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import hashlib
import io
import json
import math
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, TextIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .taxonomy import TEXT_CATEGORIES, resolve_thresholds
from .text import moderate_text
from .text.classical import read_model_card
from .text.registry import DEFAULT, available_models, data_version, default_model_name, features_version

#: Rows per block: large enough that the model's fixed cost per call is small, small enough to checkpoint often.
DEFAULT_CHUNK_ROWS = 2000

SCORED, MISSING_TEXT, NOT_TEXT, INVALID_RECORD = "scored", "missing_text", "not_text", "invalid_record"
SCORE_COLUMNS = tuple(f"score_{category}" for category in TEXT_CATEGORIES)
_ADDED_SCHEMA = pa.schema([
    *(pa.field(name, pa.float64()) for name in SCORE_COLUMNS),
    pa.field("flagged", pa.bool_()),
    pa.field("categories", pa.string()),
    pa.field("outcome", pa.string()),
])
#: Columns the job adds after the input's own; an input that already has one of them is refused.
ADDED_COLUMNS = tuple(_ADDED_SCHEMA.names)

_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_CHECKPOINT = "_checkpoint.json"  # leading underscore: Parquet dataset readers skip it
_PART_KEY = b"moderation_part"  # Parquet metadata key of a part's stamp (Job.part_stamp)
_INT64 = range(-(2**63), 2**63)


class BatchError(ValueError):
    """The job cannot start as asked (unreadable input, missing text column, a foreign checkpoint...)."""


def _cp1252_fallback(error: UnicodeDecodeError) -> tuple[str, int]:
    return error.object[error.start:error.end].decode("cp1252", errors="replace"), error.end


@functools.lru_cache(maxsize=1)
def _prepare_readers() -> None:
    """Process-wide settings the readers need, made when a file is first read (never at import): the codec error
    handler behind `decode_text`, and CSV fields of any length (the csv module refuses fields over 128 KiB unless
    told otherwise). Idempotent; called in every process that reads, Dask workers included."""
    codecs.register_error("moderation-cp1252", _cp1252_fallback)
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


def decode_text(data: bytes) -> str:
    """Bytes of a text file as text: UTF-8, and any byte that is not valid UTF-8 read as Windows-1252."""
    _prepare_readers()
    return data.decode("utf-8", errors="moderation-cp1252")


def file_format(path) -> str | None:
    """'csv', 'jsonl' or 'parquet' from the file name; None for anything else (an output folder)."""
    return _SUFFIXES.get(Path(path).suffix.lower())


# --- reading ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """Input rows read, scored and written together: bytes [start, stop) of a text file, or rows [start, stop) of
    Parquet row group `row_group`."""

    index: int
    start: int
    stop: int
    rows: int
    row_group: int = 0


@dataclass(frozen=True)
class InputFile:
    """How to read any block of one input file. Small and picklable: Dask ships it to every task."""

    path: str
    format: str
    text_column: str
    #: The input's columns, then `outcome` (set by the reader for records it could not parse), as every block has them.
    schema: pa.Schema
    #: JSON Lines columns carried as JSON text (mixed or nested values, and the text column itself).
    json_text_columns: frozenset[str] = frozenset()

    @property
    def columns(self) -> list[str]:
        return self.schema.names[:-1]

    @property
    def meta(self) -> pd.DataFrame:
        """An empty frame with the dtypes of every block `read` returns."""
        return _to_frame(self.schema.empty_table())

    def read(self, block: Block) -> pd.DataFrame:
        return _to_frame(_READERS[self.format](self, block))

    def read_bytes(self, block: Block) -> bytes:
        with open(self.path, "rb") as handle:
            handle.seek(block.start)
            return handle.read(block.stop - block.start)


def _to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow-backed columns keep every input type exactly (ints stay ints next to nulls) through to the output."""
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _read_csv(source: InputFile, block: Block) -> pa.Table:
    _prepare_readers()
    width = len(source.columns)
    rows, outcomes = [], []
    for fields in csv.reader(io.StringIO(decode_text(source.read_bytes(block)), newline="")):
        if not fields:  # a blank line is not a row
            continue
        outcomes.append(INVALID_RECORD if len(fields) > width else None)
        rows.append(fields[:width] + [None] * (width - len(fields)))  # short rows: the missing trailing fields are null
    columns = [list(column) for column in zip(*rows)] if rows else [[] for _ in range(width)]
    return pa.Table.from_arrays([*columns, outcomes], schema=source.schema)


def _json_record(line: bytes) -> dict | None:
    """The JSON object on one line, or None when the line holds something else (or a lone surrogate, "\\ud800":
    valid JSON, but no UTF-8 string, so Arrow cannot store it and the whole job would stop)."""
    try:
        record = json.loads(decode_text(line))
        if b"\\ud" in line.lower():  # cheap test first: only escapes can make a surrogate
            json.dumps(record, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return None
    return record if isinstance(record, dict) else None


def _read_jsonl(source: InputFile, block: Block) -> pa.Table:
    columns = {name: [] for name in source.columns}
    outcomes = []
    for line in source.read_bytes(block).split(b"\n"):
        if not line.strip():
            continue
        record = _json_record(line)
        if record is None:
            outcomes.append(INVALID_RECORD)
            record = {}
        else:
            text = record.get(source.text_column)
            outcomes.append(NOT_TEXT if text is not None and not isinstance(text, str) else None)
        for name, values in columns.items():
            value = record.get(name)
            if name in source.json_text_columns and value is not None and not isinstance(value, str):
                value = json.dumps(value, ensure_ascii=False)
            values.append(value)
    return pa.Table.from_arrays([*columns.values(), outcomes], schema=source.schema)


@functools.lru_cache(maxsize=1)
def _row_group(path: str, mtime_ns: int, group: int) -> pa.Table:
    """One row group, kept while its blocks are read one after another (a row group is read whole or not at all)."""
    return pq.ParquetFile(path).read_row_group(group).replace_schema_metadata()


def _read_parquet(source: InputFile, block: Block) -> pa.Table:
    table = _row_group(source.path, os.stat(source.path).st_mtime_ns, block.row_group)
    table = table.slice(block.start, block.stop - block.start)
    return table.append_column(source.schema.field("outcome"), pa.nulls(table.num_rows, pa.string()))


_READERS = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}


# --- scanning: block boundaries and the schema, in one streaming pass ----------------------------------------------


def _cut_blocks(records: Iterator[tuple[int, bool]], start: int, chunk_rows: int) -> list[Block]:
    """Blocks of `chunk_rows` rows from (end offset, is a row) per record; blank records ride along uncounted."""
    blocks, rows, end = [], 0, start
    for end, is_row in records:
        rows += is_row
        if rows == chunk_rows:
            blocks.append(Block(len(blocks), start, end, rows))
            start, rows = end, 0
    if rows:
        blocks.append(Block(len(blocks), start, end, rows))
    return blocks


def _csv_records(handle) -> Iterator[tuple[int, bool]]:
    """(end offset, is a row) of every CSV record. A newline ends a record only outside quotes, which with RFC 4180
    quoting (a quote inside a quoted field is doubled) is exactly where the count of quotes so far is even."""
    offset = quotes = 0
    blank = True
    for line in handle:
        offset += len(line)
        quotes += line.count(b'"')
        blank = blank and not line.strip(b"\r\n")
        if quotes % 2 == 0:
            yield offset, not blank
            blank = True
    if quotes % 2:  # an unterminated quote runs to the end of the file, as the CSV reader will read it
        yield offset, True


def _scan_csv(path: str, chunk_rows: int, text_column: str) -> tuple[InputFile, list[Block]]:
    with open(path, "rb") as handle:
        records = _csv_records(handle)
        header_end = next((end for end, is_row in records if is_row), None)
        if header_end is None:
            raise BatchError(f"{path} is empty: a CSV file needs a header row naming its columns")
        blocks = _cut_blocks(records, header_end, chunk_rows)
        handle.seek(0)
        raw_header = handle.read(header_end)
    if b"\r" in raw_header.replace(b"\r\n", b""):  # records are cut at line feeds: a CR-only file would be one
        raise BatchError(f"{path} ends its lines with a carriage return alone (old Mac format); save it with Windows "
                         "or Unix line ends first")
    header = decode_text(raw_header.removeprefix(codecs.BOM_UTF8))
    names = next(fields for fields in csv.reader(io.StringIO(header, newline="")) if fields)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise BatchError(f"{path}: the header repeats column name(s) {', '.join(map(repr, repeated))}")
    schema = pa.schema([pa.field(name, pa.string()) for name in names] + [_ADDED_SCHEMA.field("outcome")])
    return InputFile(path, "csv", text_column, schema), blocks


#: JSON value types -> the Arrow type a column of only those types (and nulls) gets; anything else is JSON text.
_JSON_TYPES = (({str}, pa.string()), ({bool}, pa.bool_()), ({int}, pa.int64()), ({int, float}, pa.float64()))


def _scan_jsonl(path: str, chunk_rows: int, text_column: str) -> tuple[InputFile, list[Block]]:
    seen: dict[str, set[type]] = {}  # column -> Python types of its non-null values, in order of first appearance

    def records(handle):
        offset = 0
        for line in handle:
            offset += len(line)
            if not line.strip():
                yield offset, False
                continue
            for name, value in (_json_record(line) or {}).items():
                types = seen.setdefault(name, set())
                if value is not None:
                    types.add(object if type(value) is int and value not in _INT64 else type(value))
            yield offset, True

    with open(path, "rb") as handle:
        blocks = _cut_blocks(records(handle), 0, chunk_rows)
    fields, json_text = [], {text_column}
    for name, types in seen.items():
        arrow_type = next((t for allowed, t in _JSON_TYPES if types <= allowed), None)
        if arrow_type is None or name == text_column:
            arrow_type = pa.string()
            json_text.add(name)
        fields.append(pa.field(name, arrow_type))
    schema = pa.schema(fields + [_ADDED_SCHEMA.field("outcome")])
    return InputFile(path, "jsonl", text_column, schema, frozenset(json_text)), blocks


def _scan_parquet(path: str, chunk_rows: int, text_column: str) -> tuple[InputFile, list[Block]]:
    parquet = pq.ParquetFile(path)
    blocks = []
    for group in range(parquet.metadata.num_row_groups):
        size = parquet.metadata.row_group(group).num_rows
        for start in range(0, size, chunk_rows):
            stop = min(start + chunk_rows, size)
            blocks.append(Block(len(blocks), start, stop, stop - start, group))
    schema = parquet.schema_arrow.remove_metadata().append(_ADDED_SCHEMA.field("outcome"))
    return InputFile(path, "parquet", text_column, schema), blocks


_SCANNERS = {"csv": _scan_csv, "jsonl": _scan_jsonl, "parquet": _scan_parquet}


def open_input(path, text_column: str = "text", chunk_rows: int = DEFAULT_CHUNK_ROWS) -> tuple[InputFile, list[Block]]:
    """Scan `path` once (streaming) and return how to read it and its blocks of `chunk_rows` rows.

    Raises BatchError for an unsupported or UTF-16 file, or one without `text_column` (naming the columns it has).
    """
    _prepare_readers()
    path = os.path.abspath(path)  # Dask workers may run in another directory
    fmt = file_format(path)
    if fmt is None:
        raise BatchError(f"{path}: unsupported input; expected one of {', '.join(_SUFFIXES)}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if fmt != "parquet":
        with open(path, "rb") as handle:
            if handle.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
                raise BatchError(f"{path} is UTF-16 text; save it as UTF-8 first")
    source, blocks = _SCANNERS[fmt](path, chunk_rows, text_column)
    if text_column not in source.columns:
        raise BatchError(f"{path} has no column {text_column!r}; available columns: "
                         f"{', '.join(map(repr, source.columns)) or '(none)'}")
    clashing = [name for name in source.columns if name in ADDED_COLUMNS]
    if clashing:
        raise BatchError(f"{path} already has column(s) {', '.join(map(repr, clashing))}, which the batch job adds; "
                         "rename them first")
    return source, blocks


# --- scoring --------------------------------------------------------------------------------------------------------


def _outcome(value) -> str:
    if isinstance(value, str):
        return SCORED if value.strip() else MISSING_TEXT
    return MISSING_TEXT if _is_missing(value) else NOT_TEXT


def score_frame(frame: pd.DataFrame, text_column: str, *, model: str = DEFAULT, thresholds=None) -> pd.DataFrame:
    """`frame` without its `outcome` column, followed by the added columns (see the module doc), same rows and order.

    An `outcome` already set (by a reader that could not parse a record) is kept; the rest is decided here.
    """
    size = len(frame)
    preset = frame["outcome"].tolist() if "outcome" in frame.columns else [None] * size
    outcomes = [_outcome(value) if _is_missing(given) else given
                for value, given in zip(frame[text_column].tolist(), preset)]
    rows = [i for i, outcome in enumerate(outcomes) if outcome == SCORED]
    texts = frame[text_column].take(rows).tolist()
    verdicts = moderate_text(texts, model=model, thresholds=thresholds, explain_spans=False) if rows else []
    added = {name: [None] * size for name in _ADDED_SCHEMA.names}
    added["outcome"] = outcomes
    for i, verdict in zip(rows, verdicts):
        for category, name in zip(TEXT_CATEGORIES, SCORE_COLUMNS):
            added[name][i] = verdict.scores[category]
        added["flagged"][i] = verdict.flagged
        added["categories"][i] = ",".join(verdict.categories)
    scores = _to_frame(pa.Table.from_pydict(added, schema=_ADDED_SCHEMA)).set_axis(frame.index)
    return pd.concat([frame.drop(columns="outcome", errors="ignore"), scores], axis=1)


def output_schema(source: InputFile) -> pa.Schema:
    return pa.schema([*source.schema.remove(len(source.schema) - 1), *_ADDED_SCHEMA])


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
        path = part_path(self.parts_dir, index)
        partial = path.with_name(f".{path.name}.{os.getpid()}")  # dot prefix: Parquet dataset readers skip it
        with open(partial, "wb") as handle:
            table = pa.Table.from_pandas(scored, schema=self.schema, preserve_index=False)
            # No pandas metadata (readers get plain dtypes); instead what the part is, so assembly can verify it.
            stamp = json.dumps(self.part_stamp(index, len(scored)), sort_keys=True).encode()
            pq.write_table(table.replace_schema_metadata({_PART_KEY: stamp}), handle)
            handle.flush()
            os.fsync(handle.fileno())  # the rename below must never publish a part whose bytes are not on disk
        os.replace(partial, path)
        return len(scored)


def _run_local(job: Job, blocks: list[Block]) -> Iterator[int]:
    for block in blocks:
        yield job.run_block(job.source.read(block), block.index)


# --- checkpoint, output and progress --------------------------------------------------------------------------------


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
        raise BatchError(f"the checkpoint {manifest} is damaged ({exc}); delete {manifest.parent} to start over") from None
    if not isinstance(recorded, dict):
        raise BatchError(f"the checkpoint {manifest} is not a checkpoint of this program (it holds a "
                         f"{type(recorded).__name__}); delete {manifest.parent} to start over")
    return recorded


def _open_checkpoint(parts_dir: Path, identity: dict) -> set[int]:
    """Indices of the blocks an earlier run of this same job already wrote; a new checkpoint when there is none."""
    manifest = parts_dir / _CHECKPOINT
    if manifest.is_file():
        recorded = _read_checkpoint(manifest)
        changed = [key for key in identity if recorded.get(key) != identity[key]]
        if changed:
            raise BatchError(f"{parts_dir} holds a run of a different job ({', '.join(changed)} changed); rerun with "
                             f"the same input and options to resume it, or delete {parts_dir} to start over")
        return {int(path.stem.removeprefix("part-")) for path in parts_dir.glob("part-*.parquet")}
    if parts_dir.exists() and any(parts_dir.iterdir()):
        raise BatchError(f"{parts_dir} already exists and is not a checkpoint of this job; choose another output")
    parts_dir.mkdir(parents=True, exist_ok=True)
    partial = parts_dir / f".{_CHECKPOINT}"
    partial.write_text(json.dumps(identity, indent=1), encoding="utf-8")
    os.replace(partial, manifest)
    return set()


@contextlib.contextmanager
def _writer(path: Path, fmt: str, schema: pa.Schema):
    """A function that appends a table of parts to `path` in format `fmt`, one table after another."""
    if fmt == "parquet":
        with pq.ParquetWriter(path, schema) as writer:
            yield writer.write_table
        return
    with open(path, "w", encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            _to_frame(schema.empty_table()).to_csv(handle, index=False)
            yield lambda table: _to_frame(table).to_csv(handle, header=False, index=False)
        else:
            yield lambda table: handle.writelines(json.dumps(record, ensure_ascii=False, default=str) + "\n"
                                                  for record in table.to_pylist())


def _assemble(parts_dir: Path, blocks: list[Block], output: Path, fmt: str, schema: pa.Schema) -> None:
    """Concatenate the parts, in input order, into one file; it appears under its name only once complete."""
    partial = output.with_name(f".{output.name}.partial")
    with _writer(partial, fmt, schema) as write:
        for block in blocks:
            write(pq.read_table(part_path(parts_dir, block.index), schema=schema))
    os.replace(partial, output)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


class Progress:
    """`rows done/total, rows/s, ETA` on a stream: redrawn in place on a terminal, a new line every `interval` seconds
    elsewhere (logs, CI). The rate counts only rows scored by this run, so a resumed run's ETA stays honest."""

    def __init__(self, total: int, done: int = 0, stream: TextIO | None = None, interval: float = 10.0):
        self.total, self.done, self.new_rows = total, done, 0
        self.stream, self.interval = stream, interval
        self.started = self._drawn = time.monotonic()
        self._drawn_rows = -1
        self.warm: tuple[float, int] | None = None  # (time, rows) when the first block landed
        self.interactive = stream is not None and stream.isatty()

    @property
    def rate(self) -> float:
        """Rows per second since the first block landed: starting workers and loading the model is not throughput."""
        since, base = self.warm if self.warm and self.new_rows > self.warm[1] else (self.started, 0)
        elapsed = time.monotonic() - since
        return (self.new_rows - base) / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate
        eta = _duration((self.total - self.done) / rate) if rate else "?"
        share = 100.0 * self.done / self.total if self.total else 100.0
        return f"{self.done:,}/{self.total:,} rows ({share:.1f}%)  {rate:,.0f} rows/s  ETA {eta}"

    def advance(self, rows: int) -> None:
        self.done += rows
        self.new_rows += rows
        self.warm = self.warm or (time.monotonic(), self.new_rows)
        if self.stream is not None and (self.interactive or time.monotonic() - self._drawn >= self.interval):
            self._draw(end="")

    def close(self) -> None:
        if self.stream is not None and (self.interactive or self._drawn_rows != self.done):
            self._draw(end="\n")

    def _draw(self, end: str) -> None:
        self._drawn, self._drawn_rows = time.monotonic(), self.done
        self.stream.write(f"\r{self.line():<72}{end}" if self.interactive else self.line() + "\n")
        self.stream.flush()


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


def _tally(parts_dir: Path, blocks: list[Block]) -> tuple[dict[str, int], int]:
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
    name = default_model_name() if model in (DEFAULT, None) else model
    if name not in available_models():
        raise BatchError(f"unknown text model {model!r}; available: {', '.join(available_models())}")
    recorded = read_model_card().get("models", {}).get(name)
    return name, hashlib.sha256(json.dumps([recorded, data_version(), features_version()], sort_keys=True).encode()).hexdigest()[:12]


def moderate_file(input_path, output_path, *, text_column: str = "text", model: str = DEFAULT, thresholds=None,
                  chunk_rows: int | None = None, engine: str = "local", scheduler: str | None = None,
                  workers: int | None = None, progress: bool | TextIO = True) -> BatchSummary:
    """Moderate every row of a CSV, JSON Lines or Parquet file into `output_path` (see the module doc).

    output_path: a .csv, .jsonl or .parquet file, or a folder that receives partitioned Parquet.
    engine: "local" scores blocks one after another in this process; "dask" spreads them over a Dask cluster,
      a LocalCluster of `workers` processes (default one per core) or the scheduler at `scheduler`, whose workers
      must see the input and output paths. Both write the same parts, so either can resume the other's run.
    progress: True for a progress line on stderr, False for none, or the stream to draw it on.
    Rerunning an interrupted job resumes it; a job with other options refuses to touch its checkpoint.
    """
    if engine not in ("local", "dask"):
        raise ValueError(f"engine must be 'local' or 'dask', got {engine!r}")
    if engine == "local" and (scheduler or workers):
        raise ValueError("scheduler and workers apply to engine='dask' only")
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
    done = _open_checkpoint(parts_dir, json.loads(json.dumps(identity)))
    stream = sys.stderr if progress is True else progress or None
    job = Job(source, str(parts_dir), model_name, model_version, thresholds, output_schema(source))
    done = verified_parts(job, blocks, done, warn=(lambda line: print(line, file=stream)) if stream else None)
    pending = [block for block in blocks if block.index not in done]
    bar = Progress(sum(b.rows for b in blocks), sum(b.rows for b in blocks if b.index in done), stream)
    try:
        if pending:
            if engine == "dask":
                from .batch_dask import run_blocks

                written = run_blocks(job, pending, scheduler=scheduler, workers=workers)
            else:
                written = _run_local(job, pending)
            for rows in written:
                bar.advance(rows)
    finally:
        _row_group.cache_clear()
    bar.close()
    rate = bar.rate
    # Every part is checked again before it is counted or copied: a part replaced while the job ran (by another
    # block's part, or a stray file) must fail the job, never yield a success over duplicated and missing rows.
    problems = [f"part {block.index}: {problem}" for block in blocks if (problem := part_problem(job, block))]
    if problems:
        raise BatchError(f"{len(problems)} part(s) in {parts_dir} cannot be trusted ({'; '.join(problems[:3])}); "
                         f"rerun the same command to score those blocks again")
    outcomes, flagged = _tally(parts_dir, blocks)
    if fmt is not None:
        _assemble(parts_dir, blocks, output, fmt, job.schema)
        shutil.rmtree(parts_dir)
    return BatchSummary(
        input=source.path, output=str(output), engine=engine, model=model_name, rows=sum(outcomes.values()),
        flagged=flagged, outcomes=outcomes, resumed_rows=bar.done - bar.new_rows,
        seconds=round(time.monotonic() - started, 2), rows_per_second=round(rate, 1),
    )
