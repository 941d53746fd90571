"""Reading a batch input: CSV, JSON Lines or Parquet, scanned once for block boundaries, any block read alone.

The scan streams the file once and records the byte offset after every `chunk_rows`-th record (or slices of
Parquet row groups), so any block can be read on its own, in order by the local engine or on any worker of a Dask
cluster. Only one block is in memory at a time (a Parquet input also holds one row group).

Text files are read as UTF-8; bytes that are not valid UTF-8 are read as Windows-1252, so a corpus stitched
together from old exports keeps "café" rather than "caf?". CSV follows RFC 4180 (quoted fields may hold commas,
newlines and doubled quotes). JSON Lines columns are the union of the keys; a column whose values mix types or
nest is carried as JSON text. A record the reader cannot parse gets its `outcome` here (see the package doc).
"""
from __future__ import annotations

import codecs
import csv
import functools
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..taxonomy import TEXT_CATEGORIES

#: Rows per block: large enough that the model's fixed cost per call is small, small enough to checkpoint often.
DEFAULT_CHUNK_ROWS = 2000

SCORED, MISSING_TEXT, NOT_TEXT, INVALID_RECORD = "scored", "missing_text", "not_text", "invalid_record"
SCORE_COLUMNS = tuple(f"score_{category}" for category in TEXT_CATEGORIES)
#: The columns the job adds after the input's own, with their types.
ADDED_SCHEMA = pa.schema([
    *(pa.field(name, pa.float64()) for name in SCORE_COLUMNS),
    pa.field("flagged", pa.bool_()),
    pa.field("categories", pa.string()),
    pa.field("outcome", pa.string()),
])
#: An input that already has one of these columns is refused.
ADDED_COLUMNS = tuple(ADDED_SCHEMA.names)

_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
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
        return to_frame(self.schema.empty_table())

    def read(self, block: Block) -> pd.DataFrame:
        return to_frame(_READERS[self.format](self, block))

    def read_bytes(self, block: Block) -> bytes:
        with open(self.path, "rb") as handle:
            handle.seek(block.start)
            return handle.read(block.stop - block.start)


def to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow-backed columns keep every input type exactly (ints stay ints next to nulls) through to the output."""
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def is_missing(value) -> bool:
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


def forget_row_group() -> None:
    """Drop the row group the Parquet reader keeps between blocks (at the end of a job)."""
    _row_group.cache_clear()


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
    schema = pa.schema([pa.field(name, pa.string()) for name in names] + [ADDED_SCHEMA.field("outcome")])
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
    schema = pa.schema(fields + [ADDED_SCHEMA.field("outcome")])
    return InputFile(path, "jsonl", text_column, schema, frozenset(json_text)), blocks


def _scan_parquet(path: str, chunk_rows: int, text_column: str) -> tuple[InputFile, list[Block]]:
    parquet = pq.ParquetFile(path)
    blocks = []
    for group in range(parquet.metadata.num_row_groups):
        size = parquet.metadata.row_group(group).num_rows
        for start in range(0, size, chunk_rows):
            stop = min(start + chunk_rows, size)
            blocks.append(Block(len(blocks), start, stop, stop - start, group))
    schema = parquet.schema_arrow.remove_metadata().append(ADDED_SCHEMA.field("outcome"))
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
