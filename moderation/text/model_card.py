"""The model card (`data/model_card.json`): what training recorded for every text model, and which one is the default.

This module is the card's only reader and writer, and the only place that knows which model "default" means, so a
verdict, a batch job, the app and the metrics can never disagree about it. Turning a user's model name into a
loadable one (unknown names refused) is `registry.resolve_model_name`, which asks `default_model_name` here.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..files import atomic_write
from .cache import data_version
from .classical import SPECS

#: The model name that means "whichever model the card names as the default".
DEFAULT = "default"
#: The default when the card names none (a checkout before its first `python -m moderation train`).
FALLBACK_DEFAULT = "logreg"


@lru_cache(maxsize=1)
def card_path() -> Path:
    """The card: package data, shipped with the wheel, rewritten by training."""
    return Path(str(resources.files("moderation.data").joinpath("model_card.json")))


def read_model_card() -> dict:
    """The card as a new dict (callers may change it and write it back)."""
    path = card_path()
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"models": {}}


_snapshot: tuple[object, dict] = (None, {})


def _current_card() -> dict:
    """The card as last read, read again only when the file changed (its size or time stamp): every verdict asks
    which model is the default, and parsing the card each time was a tenth of a single text's time."""
    global _snapshot
    path = card_path()
    try:
        stat = path.stat()
        key = (read_model_card, path, stat.st_mtime_ns, stat.st_size)  # the reader too: tests swap it
    except OSError:
        key = None
    if key != _snapshot[0]:
        _snapshot = (key, read_model_card())
    return _snapshot[1]


def write_model_card(card: dict) -> None:
    """Write `card` as the model card, with its default re-chosen (the best non-baseline classical model by test
    macro-F1) and the data version it was trained on; in one step, so a reader never sees half a card."""
    candidates = {n: r for n, r in card["models"].items() if n in SPECS and not r.get("teaching_baseline")}
    card["default"] = max(candidates, key=lambda n: candidates[n]["test_f1_macro"])
    card["data_version"] = data_version()
    atomic_write(card_path(), json.dumps(card, indent=1, sort_keys=True) + "\n")


def model_record(name: str) -> dict:
    """What training recorded for the model called `name` (a registry name, not "default"); {} when nothing."""
    return read_model_card().get("models", {}).get(name, {})


def default_model_name() -> str:
    """The registry name of the model that "default" means."""
    return _current_card().get("default", FALLBACK_DEFAULT)
