"""The batch job on a Dask cluster (`moderate_file(..., engine="dask")`): the same blocks, scoring and parts as the
local engine, scheduled by `distributed`, so the output is identical and either engine resumes the other's run.

Blocks become partitions with `dd.from_map`, each worker reading its own blocks from the input path; partitions
are scored and written with `map_partitions`; the model is loaded once per worker process by a worker plugin.
Scoring is CPU-bound Python (normaliser, lexicon) plus scikit-learn, so workers are processes with one thread each.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import dask
import dask.dataframe as dd
import pandas as pd
from distributed import Client, LocalCluster, WorkerPlugin, as_completed

from ..text.registry import get_text_model
from .formats import Block
from .job import Job, resolve_model

_WRITTEN = pd.DataFrame({"rows": pd.Series(dtype="int64")})


class LoadModel(WorkerPlugin):
    """Load the text model as each worker joins, once per worker process, before its first block; refuse a worker
    whose model is another version than the client's, whose scores would differ from the local engine's."""

    def __init__(self, model: str, version: str):
        self.model, self.version = model, version

    def setup(self, worker) -> None:
        version = resolve_model(self.model)[1]
        if version != self.version:
            raise RuntimeError(f"worker {worker.address} has version {version} of model {self.model!r}, the client "
                               f"{self.version}: install the same moderation package on the client and every worker")
        get_text_model(self.model)


def _score_partition(frame: pd.DataFrame, job: Job, block_indices: tuple[int, ...], partition_info=None):
    """Score and write one partition as the part of the block it was read from; return its row count."""
    return pd.DataFrame({"rows": [job.run_block(frame, block_indices[partition_info["number"]])]})


class DaskEngine:
    """Scores the blocks on a LocalCluster of `workers` processes (default one per core), or on the cluster whose
    scheduler is at `scheduler` (its workers must see the input and output paths)."""

    def __init__(self, *, scheduler: str | None = None, workers: int | None = None):
        self.scheduler, self.workers = scheduler, workers

    def run(self, job: Job, blocks: list[Block]) -> Iterator[int]:
        """Score and write `blocks` on the cluster; yield each block's row count as its part lands (for progress)."""
        with contextlib.ExitStack() as stack:
            cluster = self.scheduler or stack.enter_context(
                LocalCluster(n_workers=self.workers, threads_per_worker=1, dashboard_address=None))
            client = stack.enter_context(Client(cluster))
            client.register_plugin(LoadModel(job.model, job.model_version))
            partitions = dd.from_map(job.source.read, blocks, meta=job.source.meta)
            # One shared copy of the block numbers for the whole graph, not one per task.
            indices = dask.delayed(tuple(block.index for block in blocks), traverse=False)
            written = partitions.map_partitions(_score_partition, job, indices, meta=_WRITTEN)
            for _, result in as_completed(client.compute(written.to_delayed()), with_results=True):
                yield int(result["rows"].iat[0])
