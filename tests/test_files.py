"""atomic_write: a reader sees the old file or the new one, a failed write leaves the old one and no debris, and what
a killed writer leaves behind is found by the same names the server's start-up clean-up removes."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from moderation.files import atomic_write, atomic_writer, temporary_files


def test_text_and_bytes_replace_the_file_whole(tmp_path):
    target = tmp_path / "new" / "folder" / "card.json"
    atomic_write(target, "café\n")
    assert target.read_bytes() == "café\n".encode("utf-8")
    atomic_write(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["card.json"]


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "model.joblib"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_writer(target) as handle:
            handle.write(b"half of the new")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_a_streamed_text_write_keeps_its_newlines(tmp_path):
    target = tmp_path / "out.csv"
    with atomic_writer(target, "w", encoding="utf-8", newline="") as handle:
        handle.write("a,b\r\n1,2\r\n")
    assert target.read_bytes() == b"a,b\r\n1,2\r\n"


def test_new_files_get_the_permissions_of_any_new_file_not_0600(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write(tmp_path / "shared.parquet", b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "shared.parquet").stat().st_mode) == 0o644


def test_what_a_killed_writer_leaves_is_found_and_removed_at_start(tmp_path):
    from moderation.image import remove_stale_writes

    target = tmp_path / "blocklist.json"
    atomic_write(target, '{"version": 1, "entries": []}\n')
    killed = ("import os, sys; from moderation.files import atomic_writer\n"
              "with atomic_writer(sys.argv[1]) as handle:\n    handle.write(b'{half'); handle.flush(); os._exit(9)")
    assert subprocess.run([sys.executable, "-c", killed, str(target)], timeout=60).returncode == 9
    (tmp_path / "other.tmp").write_text("not ours", encoding="utf-8")
    leftovers = temporary_files(target)
    assert len(leftovers) == 1 and leftovers[0].read_bytes() == b"{half"
    assert target.read_text(encoding="utf-8") == '{"version": 1, "entries": []}\n'
    assert remove_stale_writes(target) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocklist.json", "other.tmp"]
