"""Known-image blocklist: perceptual hashes of images a moderator has marked, matched the way platforms match
known abuse images.

A 64-bit pHash (`imagehash.phash`) changes little when an image is resized, re-encoded or lightly cropped, and a
lot between different images. Measured on 19 of scikit-image's sample photographs (benchmarks/image_blocklist.py):
resizing, squashing, greyscale and JPEG re-encoding down to quality 10 move the hash by at most 8 bits (all
match); a 2% crop from each side moves it by 6 on average (95% match), a 5% crop by 13 (32% match); the 171
pairs of different photographs are 20 to 44 bits apart (none matches). A match is a Hamming distance of at most
`MAX_DISTANCE` (10) bits. Heavier crops, rotation, mirroring and overlays defeat pHash: it is a first line
against re-uploads, not a substitute for PhotoDNA/PDQ hash-sharing programmes.

The list is a small JSON file: the `path` argument, else $MODERATION_IMAGE_BLOCKLIST, else `image_blocklist.json`
in the package's cache directory (`moderation.settings.cache_dir()`: $MODERATION_CACHE_DIR, else
~/.cache/moderation, under $XDG_CACHE_HOME when set). Writes go to a temporary file that replaces the old one
atomically (`moderation.files.atomic_writer`), so a crash never leaves half a file; \
a file that is nevertheless corrupt raises `BlocklistError`
rather than being treated as empty, because an emptied blocklist silently lets known images back in. One writer
at a time: writers in different processes may lose each other's additions (a lock guards threads of one process).
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import imagehash
from PIL import Image

from .. import settings
from ..files import atomic_writer, temporary_files
from .decode import ImageInput, load_frames

BLOCKLIST_ENV = "MODERATION_IMAGE_BLOCKLIST"
#: Largest Hamming distance (out of 64 bits) that still counts as the same image.
MAX_DISTANCE = 10
#: Caps that keep the file small when strangers can reach the editing endpoints: every add rewrites the file.
MAX_ENTRIES = 10_000
MAX_NOTE_CHARS = 500
_FORMAT_VERSION = 1
_HASH_HEX_DIGITS = 16  # 64 bits

_write_lock = threading.Lock()


class BlocklistError(ValueError):
    """The blocklist file exists but cannot be used; the message names the file and what is wrong with it."""


@dataclass(frozen=True)
class BlocklistEntry:
    """One marked image: its pHash as 16 hex digits, the moderator's note and when it was added (UTC, ISO 8601)."""

    hash: str
    note: str
    added: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BlocklistMatch:
    """The entry an upload matched and how many of the 64 hash bits differ."""

    entry: BlocklistEntry
    distance: int

    def to_dict(self) -> dict:
        return {**self.entry.to_dict(), "distance": self.distance}


def blocklist_path(path: str | os.PathLike | None = None) -> Path:
    """The blocklist file: `path`, else $MODERATION_IMAGE_BLOCKLIST, else one in the package's cache directory."""
    if path is not None and str(path).strip():
        return Path(path).expanduser()
    return settings.path(BLOCKLIST_ENV) or settings.cache_dir() / "image_blocklist.json"


def _phash(frame: Image.Image) -> imagehash.ImageHash:
    """The 64-bit perceptual hash of a decoded frame (str() of it gives the 16 hex digits we store)."""
    return imagehash.phash(frame)


def list_blocklist(path: str | os.PathLike | None = None) -> list[BlocklistEntry]:
    """Every entry, oldest first; an absent file is an empty list."""
    return _read(blocklist_path(path))


def add_to_blocklist(image: ImageInput, *, note: str = "", path: str | os.PathLike | None = None) -> BlocklistEntry:
    """Hash `image` (first frame) and store it; adding an image already listed returns the existing entry.

    A note over MAX_NOTE_CHARS characters, or a list already holding MAX_ENTRIES images, raises ValueError.
    """
    if len(note) > MAX_NOTE_CHARS:
        raise ValueError(f"The note is {len(note):,} characters long; at most {MAX_NOTE_CHARS} are kept.")
    digest = str(_phash(load_frames(image)[0]))
    target = blocklist_path(path)
    with _write_lock:
        entries = _read(target)
        existing = next((entry for entry in entries if entry.hash == digest), None)
        if existing is not None:
            return existing
        if len(entries) >= MAX_ENTRIES:
            raise ValueError(f"The known-image blocklist is full ({MAX_ENTRIES:,} images); remove some first.")
        entry = BlocklistEntry(digest, note, datetime.now(timezone.utc).isoformat(timespec="seconds"))
        _write(target, [*entries, entry])
        return entry


def remove_from_blocklist(hash_hex: str, *, path: str | os.PathLike | None = None) -> bool:
    """Remove the entry with this hash; False if there was none."""
    target = blocklist_path(path)
    with _write_lock:
        entries = _read(target)
        kept = [entry for entry in entries if entry.hash != hash_hex.strip().lower()]
        if len(kept) == len(entries):
            return False
        _write(target, kept)
        return True


def remove_stale_writes(path: str | os.PathLike | None = None) -> int:
    """Delete temporary files that a killed write left beside the blocklist; returns how many were removed.

    Called when a server starts, before any write of its own can be under way."""
    stale = temporary_files(blocklist_path(path))
    for leftover in stale:
        leftover.unlink(missing_ok=True)
    return len(stale)


def match_blocklist(frames: list[Image.Image], *, path: str | os.PathLike | None = None,
                    max_distance: int = MAX_DISTANCE) -> BlocklistMatch | None:
    """The closest entry within `max_distance` bits of any frame, or None."""
    entries = _read(blocklist_path(path))
    if not entries:
        return None
    hashes = [_phash(frame) for frame in frames]
    best = min(
        (BlocklistMatch(entry, int(frame_hash - imagehash.hex_to_hash(entry.hash)))
         for entry in entries for frame_hash in hashes),
        key=lambda match: match.distance,
    )
    return best if best.distance <= max_distance else None


def _read(path: Path) -> list[BlocklistEntry]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    try:
        document = json.loads(raw.decode("utf-8"))
        if document.get("version") != _FORMAT_VERSION:
            raise ValueError(f"unsupported version {document.get('version')!r}")
        entries = [BlocklistEntry(str(item["hash"]), str(item.get("note", "")), str(item.get("added", "")))
                   for item in document["entries"]]
        for entry in entries:
            if len(entry.hash) != _HASH_HEX_DIGITS or any(c not in "0123456789abcdef" for c in entry.hash):
                raise ValueError(f"{entry.hash!r} is not a 64-bit hash in lower-case hex")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise BlocklistError(
            f"The image blocklist {str(path)!r} is corrupt ({type(exc).__name__}: {exc}). Fix or remove the file; "
            f"it is never emptied automatically, so known images are not silently let through."
        ) from exc
    return entries


def _write(path: Path, entries: list[BlocklistEntry]) -> None:
    """Write the whole list to a temporary file beside `path`, then swap it in with one atomic rename."""
    document = {"version": _FORMAT_VERSION, "hash": "phash-64", "entries": [entry.to_dict() for entry in entries]}
    with atomic_writer(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
