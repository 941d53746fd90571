"""Throughput and peak memory of `python -m moderation batch` on a million short texts, local and on Dask, one run.

The input is N texts (default 1,000,000) sampled with replacement from our bundled data
(`moderation.datasets.load_texts`), written as CSV. Three contenders run one after another, each as its own process
tree whose resident memory is sampled five times a second:

- `moderate_text` over the texts already in memory, in the same chunks (no file, no checkpoint): the ceiling one
  process can reach, on the first `--peer-rows` texts;
- `batch --engine local`: one process streams, scores and checkpoints;
- `batch --engine dask`: a LocalCluster of `--workers` worker processes, one thread each.

rows/s (warm) leaves out start-up and model loading; rows/s (wall) is the whole command. Ratios compare runs of this
same invocation, because absolute speed on a shared machine drifts.

    python -m benchmarks.batch_scale [--rows 1000000] [--workers 2] [--chunk-rows 2000]

How it scales: blocks are independent and scoring is CPU-bound Python plus scikit-learn, so throughput grows with
worker processes about linearly, N workers on N free cores giving about N times one worker's warm rate, until the
cores, or the shared storage the parts are written to, run out. What does not scale: the client's scan of the
input for block boundaries (one pass, single-threaded, seconds per million rows, before scoring starts), each
worker's start-up and model load (a few seconds, once), and per-block scheduling (milliseconds per block of
thousands of rows). On this 2-core machine the two workers share the cores with the scheduler, the client and
other users, so the Dask figure here is a floor, not the slope. Peak memory grows with the number of workers (each
holds one model and one block), never with the number of rows.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from moderation.datasets import load_texts

ROOT = Path(__file__).resolve().parent.parent

#: The peer: the same texts, the same chunks, straight through `moderate_text` in one process.
PEER = """
import json, sys, time
import pandas as pd
from moderation import moderate_text
path, rows, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
texts = pd.read_csv(path, nrows=rows, dtype=str, keep_default_na=False)["text"].tolist()
moderate_text(texts[:chunk], explain_spans=False)  # load the model: start-up is not throughput
start = time.monotonic()
for i in range(0, len(texts), chunk):
    moderate_text(texts[i:i + chunk], explain_spans=False)
print(json.dumps({"rows": len(texts), "rows_per_second": len(texts) / (time.monotonic() - start)}))
"""


@dataclass(frozen=True)
class Run:
    label: str
    workers: int
    rows: int
    wall_seconds: float
    warm_rate: float
    peak_total_mb: float  # the whole process tree at its largest
    peak_process_mb: float  # the largest single process


def make_input(path: Path, rows: int, seed: int = 0) -> None:
    texts = load_texts()["text"].sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    texts.rename("text").to_frame().assign(id=lambda f: "t" + f.index.astype(str))[["id", "text"]].to_csv(
        path, index=False)


def run_measured(command: list[str]) -> tuple[dict, float, float, float]:
    """(the command's JSON on stdout, wall seconds, peak RSS of its process tree in MB, of its largest process)."""
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    root = psutil.Process(process.pid)
    peak_total = peak_single = 0
    while process.poll() is None:
        sizes = []
        for member in [root, *root.children(recursive=True)]:
            try:
                sizes.append(member.memory_info().rss)
            except psutil.Error:  # exited between listing and reading
                pass
        peak_total, peak_single = max(peak_total, sum(sizes)), max(peak_single, max(sizes, default=0))
        time.sleep(0.2)
    wall = time.monotonic() - start
    output = process.stdout.read()
    if process.returncode:
        sys.exit(f"{' '.join(command)} failed with exit code {process.returncode}")
    return json.loads(output), wall, peak_total / 2**20, peak_single / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="texts in the generated input")
    parser.add_argument("--workers", type=int, default=2, help="Dask LocalCluster worker processes")
    parser.add_argument("--chunk-rows", type=int, default=2000, help="rows per block")
    parser.add_argument("--peer-rows", type=int, default=100_000, help="texts the in-memory peer scores")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "texts.csv"
        make_input(source, args.rows)
        print(f"input: {args.rows:,} texts sampled from the bundled data, {source.stat().st_size / 2**20:.0f} MB "
              f"of CSV; {os.cpu_count()} cores; chunks of {args.chunk_rows:,} rows", flush=True)
        peer_rows = min(args.rows, args.peer_rows)
        summary, wall, total, single = run_measured(
            [sys.executable, "-c", PEER, str(source), str(peer_rows), str(args.chunk_rows)])
        runs = [Run("moderate_text in memory", 1, peer_rows, wall, summary["rows_per_second"], total, single)]
        for engine, workers in (("local", 1), ("dask", args.workers)):
            command = [sys.executable, "-m", "moderation", "batch", str(source), "--out",
                       str(Path(folder) / f"{engine}.parquet"), "--chunk-rows", str(args.chunk_rows),
                       "--engine", engine]
            summary, wall, total, single = run_measured(command + (["--workers", str(workers)] * (engine == "dask")))
            runs.append(Run(f"batch --engine {engine}", workers, summary["rows"], wall, summary["rows_per_second"],
                            total, single))

    print(f"\n{'':<26}{'workers':>8}{'rows':>11}{'wall s':>9}{'rows/s wall':>13}{'rows/s warm':>13}"
          f"{'peak MB tree':>14}{'largest proc':>14}")
    for run in runs:
        print(f"{run.label:<26}{run.workers:>8}{run.rows:>11,}{run.wall_seconds:>9.1f}"
              f"{run.rows / run.wall_seconds:>13,.0f}{run.warm_rate:>13,.0f}{run.peak_total_mb:>14,.0f}"
              f"{run.peak_process_mb:>14,.0f}")
    peer, local, dask = runs
    print(f"\nlocal batch / in-memory moderate_text (warm): {local.warm_rate / peer.warm_rate:.2f}x")
    print(f"dask ({dask.workers} workers) / local batch: {dask.warm_rate / local.warm_rate:.2f}x warm, "
          f"{(dask.rows / dask.wall_seconds) / (local.rows / local.wall_seconds):.2f}x wall")


if __name__ == "__main__":
    main()
