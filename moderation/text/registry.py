"""Which text models exist, what a user's model name resolves to, and loading each once per process.

Classical models are rebuilt from the parameters and thresholds recorded in the model card (`model_card`, written by
`python -m moderation train`) and cached on disk per scikit-learn version and data version, so a library upgrade
means a quick refit rather than a silently mismatched pickle. Cached files are only ever our own.
"""
from __future__ import annotations

import hashlib
import json
import threading
import warnings
from pathlib import Path

import joblib
import numpy as np
import sklearn

from ..datasets import LABEL_COLUMNS
from ..files import atomic_write, atomic_writer, sha256_of
from ..settings import cache_dir
from .cache import data_version, features_version, read_cached_model, training_data
from .cascade import load_cascade
from .classical import SPECS, TrainedModel, fit_model, grid_search
from .finetuned import load_finetuned
from .model import TextModel
from .model_card import DEFAULT, default_model_name, model_record, read_model_card, write_model_card
from .transformer import TRANSFORMER_MODELS

_loaded: dict[str, TextModel] = {}
_lock = threading.RLock()  # re-entrant: a model made of others (the cascade) loads them inside its own load

#: Models defined elsewhere register a loader here: name -> zero-argument callable. The transformer family's
#: loaders import torch only when one runs.
EXTRA_MODELS: dict[str, object] = {**TRANSFORMER_MODELS, "finetuned": load_finetuned,
                                   "cascade": lambda: load_cascade(get_text_model)}


def available_models() -> list[str]:
    """Every name `moderate_text(model=...)` accepts."""
    return [DEFAULT, *SPECS, *EXTRA_MODELS]


def resolve_model_name(model: str | None) -> str:
    """The registry name behind a model name a user gave: "default" or None is the model card's default; anything
    else must be one of `available_models()` (ValueError naming them otherwise, "" included). Every entry point
    that takes a model name (moderate_text, the app, evaluation, batch jobs, the command line) goes through here."""
    if model is None or model == DEFAULT:
        return default_model_name()
    if model not in available_models():
        raise ValueError(f"unknown text model {model!r}; available: {', '.join(available_models())}")
    return model


def unavailable_models() -> dict[str, str]:
    """Text models that cannot be loaded here now -> why (see `hub.why_unavailable`); the classical ones always can."""
    from ..hub import why_unavailable
    from .transformer import configured_model_ids

    return {name: reason for name, model_id in configured_model_ids().items() if (reason := why_unavailable(model_id))}


#: Fitted classical models shipped with the package (`python -m moderation ship`), so a first verdict need not wait
#: minutes for a fit. A file is used only when its name (library, data, features and parameter versions) is the one
#: this code would cache, and its SHA-256 is the model card's; otherwise the model is fitted and cached.
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "models" / "classical"


def _model_file_name(name: str) -> str:
    recorded = model_record(name)
    key = hashlib.sha256(json.dumps([recorded.get("best_params"), recorded.get("thresholds")],
                                    sort_keys=True).encode()).hexdigest()[:8]
    return f"{name}-sklearn{sklearn.__version__}-data{data_version()}-features{features_version()}-{key}.joblib"


def shipped_model_path(name: str) -> Path | None:
    """The shipped fitted model for `name` if there is one for exactly this code and data, with the card's checksum."""
    file_name = _model_file_name(name)
    path = SHIPPED_DIR / file_name
    expected = read_model_card().get("shipped", {}).get(file_name)
    if not path.is_file() or expected is None:
        return None
    if sha256_of(path) != expected:
        warnings.warn(f"refitting: the shipped model {file_name} does not match its SHA-256 in the model card")
        return None
    return path


def first_use_note(name: str | None = DEFAULT) -> str | None:
    """What the first use of text model `name` in this process will cost, or None when it is loaded already or is
    no model at all (the call that uses it then says so)."""
    try:
        name = resolve_model_name(name)
    except ValueError:
        return None
    if name in _loaded:
        return None
    if name not in SPECS:
        return f"Loading {name} (first use in this server: the model loads, once)"
    if shipped_model_path(name) or (cache_dir() / "models" / _model_file_name(name)).is_file():
        return f"Loading {name} (first use in this server: a few seconds, once)"
    return (f"Fitting {name} on the bundled data (first use on this machine: a few minutes on two CPU cores, once; "
            f"it is cached for every later start)")


def _build_classical(name: str) -> TrainedModel:
    spec = SPECS[name]
    recorded = model_record(name)
    params = recorded.get("best_params")
    path = cache_dir() / "models" / _model_file_name(name)
    shipped = shipped_model_path(name)
    cached = read_cached_model(shipped or path)
    if cached is not None:
        return cached
    X, y = training_data("train")
    if params is None:
        params = grid_search(spec, X, y)[0]
    model = fit_model(spec, params, X, y, recorded.get("thresholds"))
    model.record = recorded
    with atomic_writer(path) as handle:  # a crash never leaves half a cache file
        joblib.dump(model, handle)
    return model


def get_text_model(name: str | None = DEFAULT) -> TextModel:
    """The model called `name` (see `resolve_model_name`), loaded once per process."""
    name = resolve_model_name(name)
    with _lock:
        if name not in _loaded:
            _loaded[name] = _build_classical(name) if name in SPECS else EXTRA_MODELS[name]()
        return _loaded[name]


def predict_labels(model, frame) -> np.ndarray:
    proba = model.predict_proba(frame)
    return (proba >= np.array([model.thresholds[c] for c in LABEL_COLUMNS])).astype(int)


def ship_default_model(log=print) -> Path:
    """Fit (or read from the cache) the default classical model and ship it: its file under SHIPPED_DIR, its
    SHA-256 in the model card; shipped files of other versions are removed. `python -m moderation ship`."""
    name = default_model_name()
    get_text_model(name)
    file_name = _model_file_name(name)
    source = shipped_model_path(name) or cache_dir() / "models" / file_name
    SHIPPED_DIR.mkdir(parents=True, exist_ok=True)
    target = SHIPPED_DIR / file_name
    if source != target:
        atomic_write(target, source.read_bytes())
    for stale in SHIPPED_DIR.glob("*.joblib"):
        if stale.name != file_name:
            stale.unlink()
    card = read_model_card()
    card["shipped"] = {file_name: sha256_of(target)}
    write_model_card(card)
    log(f"shipped {target.relative_to(SHIPPED_DIR.parents[1])} ({target.stat().st_size / 2**20:.1f} MiB), "
        f"sha256 {card['shipped'][file_name]}")
    return target


def train_all(names=None, log=print, keep_params: bool = False) -> dict:
    """Grid-search, tune and test every named classical model; write the model card; return it. With keep_params,
    a model with a recorded grid search is refitted with its best parameters instead of searching again.

    The default becomes the best non-baseline model by macro-F1 on the bundled test split.
    """
    from .classical import train_model

    X_train, y_train = training_data("train")
    X_test, y_test = training_data("test")
    card = read_model_card()
    card.setdefault("models", {})
    for name in names or list(SPECS):
        log(f"training {name} ...")
        previous = card["models"].get(name) if keep_params and card["models"].get(name, {}).get("best_params") \
            else None
        model = train_model(SPECS[name], X_train, y_train, X_test, y_test, previous)
        card["models"][name] = model.record
        log(f"  {name}: test macro-F1 {model.record['test_f1_macro']} (cv {model.record['cv_best_f1_macro']}), "
            f"{model.record['train_seconds']} s, params {model.record['best_params']}")
        write_model_card(card)  # after every model, so an interrupted run keeps what it finished
    with _lock:
        _loaded.clear()
    return card
