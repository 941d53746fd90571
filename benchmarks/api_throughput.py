"""Throughput of the OpenAI-compatible `/v1/moderations` against calling `moderate_text` in the same process.

    python -m benchmarks.api_throughput --duration 60            # 4 clients, 32 texts a request, 60 s
    python -m benchmarks.api_throughput --duration 10 --baseline-duration 5    # a quick look

First `moderate_text(batch, explain_spans=False)` (what the endpoint calls: OpenAI's format has no spans) runs in this
process, in one thread and then in --clients threads, for --baseline-duration each. Then `python -m moderation serve`
starts in its own process (rate limit off: every client here is 127.0.0.1) and --clients threads post batches of
--batch bundled test texts as JSON, one request after another, for --duration. Every answer is checked (HTTP 200,
one result per text); anything else counts as failed. It prints texts/s of each, the overhead ratio (in-process
texts/s / API texts/s, against both in-process runs), request latency p50/p95 and the load average, since the
cores may be shared. Exit status 1 if any request failed.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from itertools import cycle
from pathlib import Path

import httpx

from moderation import moderate_text
from moderation.datasets import load_texts

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def batches_of(size: int) -> list[list[str]]:
    """The bundled test texts in full batches of `size`, in file order."""
    texts = load_texts("test")["text"].tolist()
    return [texts[i:i + size] for i in range(0, len(texts) - size + 1, size)]


def run_threads(threads: int, seconds: float, batches: list[list[str]], work) -> tuple[list[float], int]:
    """`work(batch)` in `threads` threads, each batch after batch from its own starting point, until `seconds` have
    passed: (latencies, failures)."""
    latencies, failures, lock = [], [0], threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(start: int):
        turn = cycle(batches[start:] + batches[:start])
        while time.monotonic() < deadline:
            began = time.perf_counter()
            ok = work(next(turn))
            with lock:
                latencies.append(time.perf_counter() - began)
                failures[0] += not ok
    workers = [threading.Thread(target=loop, args=(i * len(batches) // threads,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, failures[0]


def summary(label: str, latencies: list[float], seconds: float, batch: int) -> float:
    rate = len(latencies) * batch / seconds
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else latencies[0]
    print(f"{label:<34} {len(latencies):>6} batches  {rate:>7.0f} texts/s  "
          f"p50 {statistics.median(latencies) * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms", flush=True)
    return rate


def start_server(port: int, model: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "MODERATION_API_KEY"}
    process = subprocess.Popen([sys.executable, "-m", "moderation", "serve", "--port", str(port), "--model", model,
                                "--rate-limit", "0"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the API server exited with status {process.returncode}")
        try:
            httpx.post(f"http://127.0.0.1:{port}/v1/moderations", json={"input": "warm up"}, timeout=30)
            return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the API server did not start within 300 s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of API load")
    parser.add_argument("--baseline-duration", type=float, default=30.0, help="seconds of each in-process run")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32, help="texts per request")
    parser.add_argument("--model", default="default")
    args = parser.parse_args(argv)
    batches, model = batches_of(args.batch), args.model
    print(f"{len(batches)} batches of {args.batch} bundled test texts, model {model}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)

    def in_process(batch: list[str]) -> bool:
        return len(moderate_text(batch, model=model, explain_spans=False)) == len(batch)

    in_process(batches[0])  # load the model before timing
    latencies, _ = run_threads(1, args.baseline_duration, batches, in_process)
    single_rate = summary("in-process, 1 thread", latencies, args.baseline_duration, args.batch)
    latencies, _ = run_threads(args.clients, args.baseline_duration, batches, in_process)
    threads_rate = summary(f"in-process, {args.clients} threads", latencies, args.baseline_duration, args.batch)

    port = free_port()
    server = start_server(port, model)
    url = f"http://127.0.0.1:{port}/v1/moderations"
    clients = threading.local()

    def over_http(batch: list[str]) -> bool:
        if not hasattr(clients, "http"):
            clients.http = httpx.Client(timeout=60)
        try:
            reply = clients.http.post(url, json={"input": batch, "model": model})
            return reply.status_code == 200 and len(reply.json()["results"]) == len(batch)
        except (httpx.HTTPError, ValueError, KeyError):
            return False

    try:
        latencies, failed = run_threads(args.clients, args.duration, batches, over_http)
    finally:
        server.terminate()
        server.wait(timeout=30)
    api_rate = summary(f"/v1/moderations, {args.clients} clients", latencies, args.duration, args.batch)
    print(f"requests {len(latencies)}, failed {failed}; overhead ratio (in-process texts/s / API texts/s): "
          f"{single_rate / api_rate:.2f} against 1 thread, {threads_rate / api_rate:.2f} against {args.clients} "
          f"threads; load average {os.getloadavg()[0]:.1f}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
