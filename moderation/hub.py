"""Loading pretrained models by id: argument, else environment variable, else the default; cached once per process.

A model id is a Hugging Face hub id or a local directory. When loading fails (no network, a typo, a missing
directory) the caller gets a `ModelUnavailableError` that names the model and says how to point at a local copy,
instead of a deep traceback from the hub client.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")

_cache: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


class ModelUnavailableError(RuntimeError):
    """A configured model could not be loaded; the message says which one and how to fix it."""


def resolve_model_id(explicit: str | os.PathLike | None, env_var: str, default: str) -> str:
    """The model id to use: the explicit argument, else the environment variable, else the default."""
    if explicit is not None and str(explicit).strip():
        return str(explicit)
    return os.environ.get(env_var, "").strip() or default


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
        path = Path(model_id).expanduser()
        if _looks_local(model_id) and not path.is_dir():
            raise ModelUnavailableError(
                f"The {kind} model directory {model_id!r} does not exist. Set {env_var} (or pass the model argument) "
                f"to a directory written by save_pretrained(), or to a Hugging Face hub id."
            )
        try:
            loaded = loader(str(path) if path.is_dir() else model_id)
        except Exception as exc:  # the hub client raises many types: OSError, HTTP errors, ValueError...
            raise ModelUnavailableError(
                f"Could not load the {kind} model {model_id!r} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
                f"If the Hugging Face hub is unreachable, download the model elsewhere with save_pretrained() "
                f"and set {env_var}=/path/to/that/directory."
            ) from exc
        _cache[key] = loaded
        return loaded


def clear_cache() -> None:
    """Forget every loaded model (tests use it to check lazy loading)."""
    with _lock:
        _cache.clear()
