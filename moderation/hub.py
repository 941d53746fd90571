"""Loading pretrained models by id: argument, else environment variable, else the default; cached once per process.

A model id is a Hugging Face hub id or a local directory. When loading fails (no network, a typo, a missing
directory) the caller gets a `ModelUnavailableError` that names the model and says how to point at a local copy,
instead of a deep traceback from the hub client. It comes fast: a hub id is not tried when the hub's host cannot
be reached at all (the hub client retried for 47-93 s first), and a failure is remembered for RETRY_AFTER_SECONDS,
so every later click gets the message at once rather than waiting again.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar
from urllib.parse import urlsplit

from . import settings

T = TypeVar("T")

_cache: dict[tuple[str, str], object] = {}
_failures: dict[tuple[str, str], tuple[float, "ModelUnavailableError"]] = {}
_lock = threading.Lock()
#: How long a failed load is remembered before the next request tries again.
RETRY_AFTER_SECONDS = 300.0
#: How long to wait for the hub's host to accept a connection before calling it unreachable.
HUB_CONNECT_TIMEOUT = 3.0


class ModelUnavailableError(RuntimeError):
    """A configured model could not be loaded; the message says which one and how to fix it."""


def resolve_model_id(explicit: str | os.PathLike | None, env_var: str, default: str) -> str:
    """The model id to use: the explicit argument, else the environment variable, else the default."""
    if explicit is not None and str(explicit).strip():
        return str(explicit)
    return settings.text(env_var, default)


def _looks_local(model_id: str) -> bool:
    """Hub ids look like `name` or `org/name`; anything else (absolute, relative, deeper paths) is a directory."""
    return model_id.startswith((".", "/", "~")) or model_id.count("/") > 1 or Path(model_id).expanduser().exists()


def load_cached(kind: str, model_id: str, env_var: str, loader: Callable[[str], T]) -> T:
    """Load `model_id` with `loader` once per process (thread-safe), translating failures into ModelUnavailableError.

    `kind` names what is being loaded ("image classifier", "text generator"...) for the error message and the cache key.
    """
    key = (kind, model_id)
    with _lock:
        if key in _cache:
            return _cache[key]  # type: ignore[return-value]
        failed = _failures.get(key)
        if failed and time.monotonic() - failed[0] < RETRY_AFTER_SECONDS:
            raise ModelUnavailableError(f"{failed[1]} (This failure is from {time.monotonic() - failed[0]:.0f} s ago; "
                                        f"the next try is after {RETRY_AFTER_SECONDS:.0f} s.)")
        try:
            loaded = _load(kind, model_id, env_var, loader)
        except ModelUnavailableError as exc:
            _failures[key] = (time.monotonic(), exc)
            raise
        _failures.pop(key, None)
        _cache[key] = loaded
        return loaded


def _load(kind: str, model_id: str, env_var: str, loader: Callable[[str], T]) -> T:
    path = Path(model_id).expanduser()
    how = (f"download the model elsewhere with save_pretrained() and set {env_var}=/path/to/that/directory (or pass "
           f"the model argument)")
    if _looks_local(model_id) and not path.is_dir():
        raise ModelUnavailableError(
            f"The {kind} model directory {model_id!r} does not exist. Set {env_var} (or pass the model argument) "
            f"to a directory written by save_pretrained(), or to a Hugging Face hub id."
        )
    if not path.is_dir() and (problem := hub_unreachable()):
        cached = _cached_snapshot(model_id)  # downloaded on an earlier, online day: usable offline
        if cached is None:
            raise ModelUnavailableError(f"Could not load the {kind} model {model_id!r}: {problem}, and it is not in "
                                        f"the local hub cache. To use it offline, {how}.")
        path = Path(cached)
    try:
        return loader(str(path) if path.is_dir() else model_id)
    except Exception as exc:  # the hub client raises many types: OSError, HTTP errors, ValueError...
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise ModelUnavailableError(
            f"Could not load the {kind} model {model_id!r} ({type(exc).__name__}: {reason}). If the Hugging Face hub "
            f"is unreachable, {how}."
        ) from exc


def _cached_snapshot(model_id: str) -> str | None:
    """The local hub-cache folder holding `model_id`, if an earlier download left one."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(model_id, local_files_only=True)
    except Exception:  # not cached (LocalEntryNotFoundError), or an id the hub client refuses
        return None


def hub_unreachable() -> str | None:
    """Why the hub cannot be used right now (offline mode, or its host refuses or does not resolve), or None.

    With HF_HUB_OFFLINE set the hub client looks only in its local cache, which is fast: nothing to check then."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return None
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=HUB_CONNECT_TIMEOUT).close()
    except OSError as exc:
        return f"the Hugging Face hub ({host}) cannot be reached ({type(exc).__name__}: {exc})"
    return None


#: How long a hub probe made for `why_unavailable` is reused (it runs on every page load of the app).
PROBE_REUSE_SECONDS = 60.0
_probe: tuple[float, str, str | None] = (float("-inf"), "", None)


def _recent_hub_problem() -> str | None:
    """`hub_unreachable()`, reusing an answer under a minute old for the same endpoint."""
    global _probe
    endpoint = os.environ.get("HF_ENDPOINT", "") + "|" + os.environ.get("HF_HUB_OFFLINE", "")
    at, probed_endpoint, problem = _probe
    if probed_endpoint != endpoint or time.monotonic() - at > PROBE_REUSE_SECONDS:
        problem = hub_unreachable()
        _probe = (time.monotonic(), endpoint, problem)
    return problem


def why_unavailable(model_id: str) -> str | None:
    """Why `model_id` cannot be loaded here now, or None when it may well load, found without loading it: a load
    of it failed recently, its directory is missing, or the hub is unreachable and it is not in the local hub cache.
    The app calls this to mark unusable models up front instead of letting a visitor click into the failure."""
    with _lock:
        for (kind, failed_id), (at, exc) in _failures.items():
            if failed_id == model_id and time.monotonic() - at < RETRY_AFTER_SECONDS:
                return str(exc)
    path = Path(model_id).expanduser()
    if path.is_dir():
        return None
    if _looks_local(model_id):
        return f"the model directory {model_id!r} does not exist"
    problem = _recent_hub_problem()
    if problem and _cached_snapshot(model_id) is None:
        return f"{problem}, and {model_id!r} is not in the local hub cache"
    return None


def clear_cache() -> None:
    """Forget every loaded model and remembered failure (tests use it to check lazy loading)."""
    global _probe
    with _lock:
        _cache.clear()
        _failures.clear()
        _probe = (float("-inf"), "", None)
