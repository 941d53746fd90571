"""The progress line of a batch job: rows done, rate and ETA, redrawn in place on a terminal or logged at intervals."""
from __future__ import annotations

import time
from typing import TextIO


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
