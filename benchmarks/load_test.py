"""Load test of the web app: `python app.py` on loopback, driven by concurrent gradio_client callers.

    python -m benchmarks.load_test                                  # 50 text callers for 60 s
    python -m benchmarks.load_test --callers 10 --duration 20       # a quick look
    python -m benchmarks.load_test --requests 10000 --callers 20    # does memory stay flat over 10,000 requests?
    python -m benchmarks.load_test --image-callers 2                # image callers too (tiny local ViT)
    python -m benchmarks.load_test --callers 0 --rest-callers 20 --requests 5000 --rss-every 500
                                                                    # raw REST: every request a new session
    python -m benchmarks.load_test --callers 0 --rest-callers 10 --flood 300 --duration 60
                                                                    # one client floods /generate meanwhile

The server runs as a visitor meets it: its own process, Gradio's queue and concurrency limits, HTTP and JSON, with
analytics and the hub off and a throw-away image blocklist. Every caller is its own `gradio_client.Client` (its own
session) and sends one request after another, cycling through the bundled test texts and a few hostile ones (empty,
emoji and right-to-left, zero-width evasions, 5 KB); image callers send the example photos. The script prints
requests, failures, throughput, latency p50/p95/max as callers see it (queueing included) and the server's resident
memory (RSS, from /proc) after warm-up and at the end, and every --rss-every requests in --requests mode.

REST callers (`--rest-callers`) are what scripts and hostile visitors send: plain HTTP to /gradio_api/call, each
request a new Gradio session, each from another loopback address (127.0.0.10 to .249 in turn), so the server's
per-client rate limit (on, as the app ships it) sees many visitors. `--flood N` adds one more client
(127.0.0.250) that posts N generation requests as fast as it can without reading a result, while the others are
served: the report gives the others' latency and how many of the flood were refused (HTTP 429). The
gradio_client callers all come from 127.0.0.1, so the rate limit is off (MODERATION_RATE_LIMIT=0) unless
--rest-callers or --flood is used and --callers is 0.

It stops by itself: at --duration (or after --requests) no caller starts another request, requests in flight get
--request-timeout to finish, and the server is terminated. Exit status 1 if any request failed or never finished.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from itertools import cycle
from pathlib import Path

from gradio_client import Client, handle_file

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_TEXTS = ["", "   ", "you f.u.c.k.i.n.g іdіоt 🙂", "مرحبا my friend, שלום 👨\u200d👩\u200d👧",
                 "id\u200biot\x00", "have a lovely day " * 280]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mib(pid: int) -> float | None:
    """Resident memory of process `pid` in MiB, or None where /proc is not available."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            line = next(line for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return None
    return int(line.split()[1]) / 1024


class Server:
    """`python app.py` on a free loopback port; output goes to a log file that is shown if the server dies."""

    def __init__(self, workdir: Path, with_image_model: bool, start_timeout: float, rate_limit: bool = False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port),
               "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "MODERATION_SHARE": "0",
               "MODERATION_IMAGE_BLOCKLIST": str(workdir / "blocklist.json")}
        if not rate_limit:
            env["MODERATION_RATE_LIMIT"] = "0"
        if with_image_model:
            from moderation.testing.tiny_models import build_tiny_models  # torch: only when images are sent

            models = build_tiny_models(workdir / "models")
            env.update(MODERATION_IMAGE_MODEL=str(models["vit"]), MODERATION_GENERATION_MODEL=str(models["gpt2"]))
        self.log_path = workdir / "server.log"
        self.log = open(self.log_path, "w", encoding="utf-8")
        started = time.monotonic()
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_until_ready(start_timeout)
        self.startup_seconds = time.monotonic() - started

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with status {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "config", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"app.py did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    @property
    def rss(self) -> float | None:
        return rss_mib(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Tally:
    """Shared by the callers: request slots handed out, latencies, failures, memory samples."""

    def __init__(self, server: Server, limit: int | None, rss_every: int):
        self.server, self.limit, self.rss_every = server, limit, rss_every
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.issued = 0
        self.latencies: dict[str, list[float]] = {}
        self.failures: Counter[str] = Counter()
        self.rss_samples: list[tuple[int, float | None]] = []

    def claim(self) -> bool:
        """May a caller send one more request?"""
        with self.lock:
            if self.stop.is_set() or (self.limit is not None and self.issued >= self.limit):
                return False
            self.issued += 1
            return True

    @property
    def completed(self) -> int:
        return sum(map(len, self.latencies.values())) + sum(self.failures.values())

    def record(self, endpoint: str, seconds: float | None, error: BaseException | None) -> None:
        with self.lock:
            if error is None:
                self.latencies.setdefault(endpoint, []).append(seconds)
            else:
                message = str(error).splitlines()[0][:160] if str(error) else ""
                self.failures[f"{endpoint}: {type(error).__name__}: {message}"] += 1
            done = self.completed
            if self.limit is not None and done % self.rss_every == 0:
                self.rss_samples.append((done, self.server.rss))
            if self.limit is not None and done >= self.limit:
                self.stop.set()


def caller(client: Client, endpoint: str, inputs, tally: Tally, request_timeout: float) -> None:
    for value in cycle(inputs):
        if not tally.claim():
            return
        started = time.perf_counter()
        try:
            client.submit(value, api_name=endpoint).result(timeout=request_timeout)
        except Exception as error:  # every failure is counted and reported, whatever its kind
            tally.record(endpoint, None, error)
        else:
            tally.record(endpoint, time.perf_counter() - started, None)


def rest_call(base_url: str, source: str, endpoint: str, payload: dict, timeout: float) -> int:
    """One raw REST call from loopback address `source` (a new Gradio session): POST, then read the result stream.
    Returns the HTTP status of the POST; raises on a failed result."""
    import http.client
    import json

    connection = http.client.HTTPConnection("127.0.0.1", int(base_url.rsplit(":", 1)[1].strip("/")), timeout=timeout,
                                            source_address=(source, 0))
    try:
        connection.request("POST", f"/gradio_api/call/v2{endpoint}", body=json.dumps(payload),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        reply = response.read()
        if response.status != 200:
            return response.status
        event_id = json.loads(reply)["event_id"]
        connection.request("GET", f"/gradio_api/call/v2{endpoint}/{event_id}")
        stream = connection.getresponse().read().decode("utf-8", "replace")
    finally:
        connection.close()
    if "event: error" in stream:
        raise RuntimeError(stream.split("data:", 1)[-1].strip()[:160])
    return 200


def rest_caller(base_url: str, first: int, stride: int, inputs, tally: Tally, request_timeout: float) -> None:
    """Requests from a new loopback address each time (127.0.0.10 to .249): many visitors, each a new session."""
    addresses = cycle(range(10 + first, 250, stride))
    for value in cycle(inputs):
        if not tally.claim():
            return
        started = time.perf_counter()
        try:
            status = rest_call(base_url, f"127.0.0.{next(addresses)}", "/moderate_text", {"text": value},
                               request_timeout)
            if status != 200:
                raise RuntimeError(f"HTTP {status}")
        except Exception as error:  # every failure is counted and reported, whatever its kind
            tally.record("REST /moderate_text", None, error)
        else:
            tally.record("REST /moderate_text", time.perf_counter() - started, None)


def flood(base_url: str, count: int, statuses: Counter) -> None:
    """`count` generation requests from one address, as fast as possible, never reading a result."""
    import http.client
    import json

    port = int(base_url.rsplit(":", 1)[1].strip("/"))
    for _ in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=("127.0.0.250", 0))
        try:
            connection.request("POST", "/gradio_api/call/v2/generate", body=json.dumps({"prompt": "Once upon a time"}),
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            statuses[response.status] += 1
        except OSError as error:
            statuses[type(error).__name__] += 1
        finally:
            connection.close()


def texts_to_send() -> list[str]:
    from moderation.datasets import load_texts

    return load_texts("test")["text"].tolist()[:400] + HOSTILE_TEXTS


def percentile_line(latencies: list[float]) -> str:
    if len(latencies) < 2:
        return "not enough requests for percentiles"
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return f"p50 {cuts[49]:.3f} s, p95 {cuts[94]:.3f} s, max {max(latencies):.3f} s"


def run(args) -> int:
    texts = texts_to_send()
    images = [handle_file(str(p)) for p in sorted((ROOT / "examples" / "images").glob("*.jpg"))]
    with tempfile.TemporaryDirectory(prefix="moderation-load-") as workdir:
        limited = (args.rest_callers or args.flood) and not args.callers and not args.image_callers
        server = Server(Path(workdir), with_image_model=args.image_callers > 0 or args.flood > 0,
                        start_timeout=args.start_timeout, rate_limit=bool(limited))
        try:
            print(f"server: python app.py at {server.url} (pid {server.process.pid}), up in "
                  f"{server.startup_seconds:.1f} s", flush=True)
            plan = [("/moderate_text", texts[i::args.callers] or texts) for i in range(args.callers)]
            plan += [("/moderate_image", images[i % len(images):] + images[:i % len(images)])
                     for i in range(args.image_callers)]
            clients = [Client(server.url, verbose=False, analytics_enabled=False, download_files=False)
                       for _ in plan]
            warm = clients[0] if clients else Client(server.url, verbose=False, analytics_enabled=False)
            for endpoint in {*dict(plan), "/moderate_text"}:  # warm-up: models load on first use, before memory
                warm.predict((texts if endpoint == "/moderate_text" else images)[0], api_name=endpoint)
            rss_before = server.rss
            tally = Tally(server, args.requests, args.rss_every)
            threads = [threading.Thread(target=caller, args=(client, endpoint, inputs, tally, args.request_timeout),
                                        daemon=True) for client, (endpoint, inputs) in zip(clients, plan)]
            threads += [threading.Thread(target=rest_caller, daemon=True,
                                         args=(server.url, i, args.rest_callers, texts[i::args.rest_callers],
                                               tally, args.request_timeout)) for i in range(args.rest_callers)]
            flood_statuses: Counter = Counter()
            if args.flood:
                threads.append(threading.Thread(target=flood, args=(server.url, args.flood, flood_statuses),
                                                daemon=True))
            started = time.monotonic()
            for thread in threads:
                thread.start()
            deadline = started + (args.max_duration if args.requests else args.duration)
            while not tally.stop.is_set() and time.monotonic() < deadline:
                tally.stop.wait(0.5)
            tally.stop.set()
            give_up = time.monotonic() + args.request_timeout  # requests in flight may still finish
            for thread in threads:
                thread.join(timeout=max(0.0, give_up - time.monotonic()))
            elapsed = time.monotonic() - started
            unfinished = sum(thread.is_alive() for thread in threads)
            rss_after = server.rss
            if server.process.poll() is not None:
                print(f"the server died during the test:\n{server.log_tail()}")
        finally:
            server.stop()
    report(args, tally, elapsed, unfinished, rss_before, rss_after)
    if args.flood:
        print(f"flood from one client ({args.flood} generation requests, results never read): "
              + ", ".join(f"HTTP {status}: {count}" for status, count in sorted(flood_statuses.items(), key=str)))
    return 1 if tally.failures or unfinished else 0


def report(args, tally: Tally, elapsed: float, unfinished: int, rss_before, rss_after) -> None:
    ok = sum(map(len, tally.latencies.values()))
    failed = sum(tally.failures.values())
    print(f"callers: {args.callers} text + {args.image_callers} image + {args.rest_callers} REST, ran {elapsed:.1f} s"
          + (f" for {args.requests:,} requests" if args.requests else f" (limit {args.duration:.0f} s)"))
    print(f"requests: {ok + failed:,} completed, {failed:,} failed, {unfinished} unfinished; "
          f"{(ok + failed) / elapsed:.1f} requests/s")
    for endpoint, latencies in tally.latencies.items():
        print(f"latency {endpoint} ({len(latencies):,} ok): {percentile_line(latencies)}")
    for failure, count in tally.failures.most_common(10):
        print(f"  failed x{count}: {failure}")
    if rss_before is None:
        print("server RSS: not available (no /proc on this system)")
        return
    print(f"server RSS: {rss_before:.0f} MiB after warm-up, {rss_after:.0f} MiB at the end "
          f"({rss_after - rss_before:+.0f} MiB)")
    samples = [(done, rss) for done, rss in tally.rss_samples if rss is not None]
    if samples:
        print("server RSS by requests completed: " + ", ".join(f"{done:,}: {rss:.0f}" for done, rss in samples))
        later = samples[len(samples) // 2:]  # the first half includes caches and allocator arenas filling up
        if len(later) >= 2:
            fit = statistics.linear_regression([done for done, _ in later], [rss for _, rss in later])
            print(f"trend over the second half ({later[0][0]:,} to {later[-1][0]:,} requests): "
                  f"{fit.slope * 1024:+.2f} KiB/request (least squares; a leak shows as a steady positive slope)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=50, help="concurrent text callers (default 50)")
    parser.add_argument("--image-callers", type=int, default=0, help="concurrent image callers (default 0)")
    parser.add_argument("--rest-callers", type=int, default=0,
                        help="concurrent raw REST text callers, each request a new session (default 0)")
    parser.add_argument("--flood", type=int, default=0,
                        help="one more client posts this many /generate requests at once (default 0)")
    parser.add_argument("--duration", type=float, default=60, help="seconds to send requests for (default 60)")
    parser.add_argument("--requests", type=int, help="send this many requests instead of running for --duration")
    parser.add_argument("--max-duration", type=float, default=3600, help="limit on a --requests run, in seconds")
    parser.add_argument("--rss-every", type=int, default=1000, help="sample server memory every N requests")
    parser.add_argument("--request-timeout", type=float, default=120, help="seconds one request may take")
    parser.add_argument("--start-timeout", type=float, default=300, help="seconds app.py may take to start")
    args = parser.parse_args(argv)
    if min(args.callers, args.image_callers, args.rest_callers, args.flood) < 0 or \
            args.callers + args.image_callers + args.rest_callers == 0:
        parser.error("need at least one caller")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
