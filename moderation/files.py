"""Writing a file so that a reader sees the old bytes or the new ones, never half of them, even after a crash.

The bytes go to a temporary file in the target's own folder (a rename is atomic only within one file system),
are flushed to disk, and the temporary file is renamed onto the target; on any error it is removed and the
target is untouched. Temporary files are named `.<target name>.<random>.tmp`, so two processes writing the
same target never share one, and `temporary_files` finds what a killed process left behind.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path
from typing import IO, Iterator


def temporary_files(path: str | os.PathLike) -> list[Path]:
    """The temporary files of writes to `path` that are under way or were cut short (by a kill or a power cut)."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.is_dir() else []


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "wb", **open_options) -> Iterator[IO]:
    """A file open for writing (`mode` and `open_options` as for `open`) that replaces `path` when the block ends
    without an error, for writers that stream (Parquet, a CSV of a million rows). Creates the folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # "x": created here or not at all. Unlike mkstemp's 0600, the umask decides who may read it, as for any file.
    handle = open(temporary, mode.replace("w", "x"), **open_options)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())  # the rename must never publish bytes that are not on disk yet
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Replace `path` with `data` (text is written as UTF-8) in one step: see the module doc."""
    with atomic_writer(path) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read a MiB at a time (shipped models and downloads are checked against one)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
