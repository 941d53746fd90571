"""Memory and start-up costs: resident memory with every model loaded, next to each peer's, and the app's cold start.

Each figure comes from a fresh Python process, so nothing measured earlier stays resident:
- ours: RSS after each stage (import, default text model, every classical text model, any transformer text model,
  ViT-base image moderation, GPT-2-small guarded generation) and the process's peak RSS at the end. The hub is
  not reachable here, so the ViT and GPT-2 checkpoints are random-weight models of the published shapes
  (benchmarks/image_speed.py and benchmarks/generation_speed.py): same architecture, same memory;
- each peer library: peak RSS after loading it and checking one text;
- the app: `python app.py` on loopback, timed from launch until its first text verdict reaches a gradio_client,
  with the server's peak RSS at that moment.

    python -m benchmarks.footprint [--skip-app] [--app app.py]      (from the repository root; Linux: reads /proc)
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_IMAGE = ROOT / "examples" / "images" / "coffee.jpg"
FIRST_TEXT = "thanks for the quick reply, see you tomorrow"
MB = 1024 * 1024


# --- measured in a child process ----------------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """The process's high-water RSS (VmHWM; unlike ru_maxrss it is not inherited from the parent across exec)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            return next(int(line.split()[1]) / 1024 for line in handle if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None


def report(stage: str, started: float) -> None:
    print(json.dumps({"stage": stage, "rss_mb": round(rss_mb(), 1), "peak_mb": round(peak_rss_mb(), 1),
                      "seconds": round(time.perf_counter() - started, 2)}), flush=True)


def child_ours(vit_dir: str, gpt2_dir: str, *classical: str) -> None:
    """Load every model the project has, one stage at a time, and report memory after each."""
    started = time.perf_counter()
    from moderation import generate_moderated, moderate_image, moderate_text
    from moderation.hub import ModelUnavailableError
    from moderation.text.registry import EXTRA_MODELS

    report("import moderation", started)
    moderate_text(FIRST_TEXT)
    report("+ default text model", started)
    for name in classical:
        moderate_text(FIRST_TEXT, model=name)
    report(f"+ classical text models ({', '.join(classical)})", started)
    for name in EXTRA_MODELS:
        try:
            moderate_text(FIRST_TEXT, model=name)
            report(f"+ transformer text model {name}", started)
        except ModelUnavailableError as exc:
            print(json.dumps({"stage": f"transformer text model {name}", "skipped": str(exc)}), flush=True)
    moderate_image(EXAMPLE_IMAGE, model=vit_dir)
    report("+ image: ViT-base shape", started)
    generate_moderated("The weather was great so we walked", model=gpt2_dir, max_new_tokens=5, seed=0)
    report("+ generation: GPT-2 small shape", started)


def child_peer(name: str) -> None:
    started = time.perf_counter()
    from benchmarks.peers import PEERS

    PEERS[name].flag([FIRST_TEXT])
    report(f"{PEERS[name].title}, loaded", started)


# --- the parent: builds checkpoints, starts children, times the app ------------------------------------------------


def run_child(*args: str) -> list[dict]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "benchmarks.footprint", "--child", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def build_checkpoints(workdir: Path) -> tuple[Path, Path]:
    """Random-weight ViT-base and GPT-2-small-shaped checkpoints (the benchmarks that time them build the same)."""
    from benchmarks.generation_speed import GPT2_SMALL
    from benchmarks.image_speed import build_vit_base
    from moderation.testing.tiny_models import build_gpt2

    vit, gpt2 = workdir / "vit-base", workdir / "gpt2-small"
    vit.mkdir()
    gpt2.mkdir()
    build_vit_base(vit)
    build_gpt2(gpt2, **GPT2_SMALL)  # the small trained tokenizer; the 50,257-row embedding is the real size
    return vit, gpt2


def prepare_text_models(names: list[str]) -> None:
    """Fit and cache any classical model that is not cached yet, here, so its training memory is not counted."""
    from moderation.text.registry import get_text_model

    for name in names:
        get_text_model(name)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def text_endpoint(client) -> str:
    """The app's text-moderation endpoint: the named endpoint that mentions text (and not image or generation)."""
    names = list(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    candidates = [n for n in names if "text" in n and not any(w in n for w in ("image", "generat", "stream"))]
    if not candidates:
        raise RuntimeError(f"no text endpoint among {names}; pass --api-name")
    return min(candidates, key=len)


def endpoint_arguments(client, api_name: str, text: str) -> list:
    """`text` for the first input; every other input at its default, or left empty (no blocklist, no override)."""
    parameters = client.view_api(print_info=False, return_format="dict")["named_endpoints"][api_name]["parameters"]
    empty = {"str": "", "bool": False}
    return [text] + [
        p["parameter_default"] if p.get("parameter_has_default")
        else empty.get(p["python_type"]["type"], p["example_input"])
        for p in parameters[1:]
    ]


def app_cold_start(app: Path, api_name: str | None, timeout: float) -> dict:
    """Seconds from `python app.py` to a listening server, and to the first text verdict through gradio_client."""
    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        server = subprocess.Popen([sys.executable, str(app)], cwd=app.parent, env=env, stdout=log, stderr=log)
        try:
            client = None
            while client is None:
                if server.poll() is not None or time.perf_counter() - started > timeout:
                    log.seek(0)
                    raise RuntimeError(f"{app} did not start within {timeout:.0f} s:\n{log.read()[-3000:].decode()}")
                try:
                    client = Client(url, verbose=False, download_files=False)
                except Exception:  # not listening yet: connection refused, or the config is not served yet
                    time.sleep(0.1)
            listening = time.perf_counter() - started
            api_name = api_name or text_endpoint(client)
            client.predict(*endpoint_arguments(client, api_name, FIRST_TEXT), api_name=api_name)
            first_verdict = time.perf_counter() - started
            return {"listening_s": round(listening, 2), "first_verdict_s": round(first_verdict, 2),
                    "server_peak_mb": peak_rss_mb(server.pid)}
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-app", action="store_true", help="leave out the app cold start")
    parser.add_argument("--app", type=Path, default=ROOT / "app.py", help="the Gradio app to cold-start")
    parser.add_argument("--api-name", help="the app's text endpoint (default: found from the app's API listing)")
    parser.add_argument("--app-timeout", type=float, default=300, help="seconds to wait for the app")
    parser.add_argument("--models", nargs="+", help="classical text models to load (default: all of them)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "ours":
            child_ours(*args.child[1:])
        else:
            child_peer(args.child[1])
        return 0

    from moderation.text.classical import SPECS

    classical = args.models or list(SPECS)
    prepare_text_models(classical)
    with tempfile.TemporaryDirectory() as workdir:
        vit, gpt2 = build_checkpoints(Path(workdir))
        ours = run_child("ours", str(vit), str(gpt2), *classical)
    from benchmarks.peers import PEERS

    peers = [row for name in PEERS for row in run_child("peer", name)]
    everything = ours[-1]["peak_mb"]
    print("| process | RSS after stage (MB) | peak RSS so far (MB) | seconds since start |\n|---|---|---|---|")
    for row in ours:
        if "skipped" in row:
            print(f"| {row['stage']} | skipped: {row['skipped']} | | |")
        else:
            print(f"| ours: {row['stage']} | {row['rss_mb']:.0f} | {row['peak_mb']:.0f} | {row['seconds']:.1f} |")
    for row in peers:
        print(f"| {row['stage']} | {row['rss_mb']:.0f} | {row['peak_mb']:.0f} | {row['seconds']:.1f} |")
    text_only = next(row["peak_mb"] for row in ours if row["stage"] == "+ default text model")
    print(f"\npeak RSS, ours with every model loaded: {everything:.0f} MB; ours with the default text model only: "
          f"{text_only:.0f} MB = " + ", ".join(f"{text_only / row['peak_mb']:.2f}x {row['stage'].split()[0]}"
                                               for row in peers))

    if args.skip_app:
        return 0
    if not args.app.is_file():
        print(f"\napp cold start: skipped, {args.app} does not exist yet")
        return 0
    cold = app_cold_start(args.app, args.api_name, args.app_timeout)
    peak = f"{cold['server_peak_mb']:.0f} MB" if cold["server_peak_mb"] else "unknown"
    print(f"\napp cold start ({args.app.name}, loopback): listening after {cold['listening_s']:.1f} s, first text "
          f"verdict through gradio_client after {cold['first_verdict_s']:.1f} s; server peak RSS then {peak}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
