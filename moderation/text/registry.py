"""Which text models exist, which one is the default, and loading each once per process.

Classical models are rebuilt from the parameters and thresholds recorded in `data/model_card.json` (written by
`python -m moderation train`) and cached on disk per scikit-learn version and data version, so a library upgrade
means a quick refit rather than a silently mismatched pickle. Cached files are only ever our own.
"""
from __future__ import annotations

import hashlib
import json
import threading
import warnings
from importlib import resources
from pathlib import Path

import joblib
import numpy as np
import sklearn

from ..datasets import LABEL_COLUMNS, load_texts
from ..files import atomic_write, atomic_writer
from ..identity import with_counterfactuals
from ..settings import cache_dir
from .classical import SPECS, TrainedModel, fit_model, grid_search, read_model_card
from .features import UNKNOWN_SOURCE, analyze, feature_frame
from .cascade import load_cascade
from .finetuned import load_finetuned
from .transformer import TRANSFORMER_MODELS

DEFAULT = "default"
_loaded: dict[str, object] = {}
_lock = threading.Lock()

#: Models defined elsewhere register a loader here: name -> zero-argument callable. The transformer family's
#: loaders import torch only when one runs.
EXTRA_MODELS: dict[str, object] = {**TRANSFORMER_MODELS, "finetuned": load_finetuned, "cascade": load_cascade}


def data_version() -> str:
    payload = resources.files("moderation.data").joinpath("texts.csv").read_bytes()
    return hashlib.sha256(payload).hexdigest()[:12]


def features_version() -> str:
    """A digest of what turns a text into model inputs (normaliser, lexicon and its terms, feature code): a model
    cached under other features is refitted, never reused."""
    from .. import identity, lexicon, normalize
    from . import features

    digest = hashlib.sha256(resources.files("moderation.data").joinpath("lexicon.tsv").read_bytes())
    for module in (normalize, lexicon, features, identity):  # identity: the counterfactual copies trained on
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:12]


def default_model_name() -> str:
    return read_model_card().get("default", "logreg")


def available_models() -> list[str]:
    """Every name `moderate_text(model=...)` accepts."""
    return [DEFAULT, *SPECS, *EXTRA_MODELS]


def unavailable_models() -> dict[str, str]:
    """Text models that cannot be loaded here now -> why (see `hub.why_unavailable`); the classical ones always can."""
    from ..hub import why_unavailable
    from .transformer import configured_model_ids

    return {name: reason for name, model_id in configured_model_ids().items() if (reason := why_unavailable(model_id))}


def training_data(split: str):
    """(feature frame, label matrix) for a bundled split; a third of the rows hide their source so that models
    also work when the caller does not say where a text came from. The train split also gets a counterfactual
    copy of every text that names a group, with other groups in its place and the same labels, so no model can
    learn a group's name as evidence of hate (`moderation.identity.with_counterfactuals`)."""
    frame = load_texts(split)
    if split == "train":
        frame = with_counterfactuals(frame)
    hidden = frame["id"].map(lambda i: int(hashlib.md5(i.encode()).hexdigest(), 16) % 3 == 0)
    sources = frame["source"].where(~hidden, UNKNOWN_SOURCE)
    texts = frame["text"].tolist()
    X = feature_frame(texts, [analyze(t) for t in texts], sources)
    return X, frame[LABEL_COLUMNS].to_numpy(dtype=int)


def read_cached_model(path: Path):
    """A model this project cached at `path`, or None when there is none or it cannot be read (a truncated file,
    a library change): the caller then refits and overwrites it rather than failing every request."""
    if not path.is_file():
        return None
    try:
        return joblib.load(path)
    except Exception as exc:  # unpickling raises anything: EOFError, UnpicklingError, AttributeError, ...
        warnings.warn(f"refitting: the cached model {path.name} could not be read ({type(exc).__name__}: {exc})")
        return None


#: Fitted classical models shipped with the package (`python -m moderation ship`), so a first verdict need not wait
#: minutes for a fit. A file is used only when its name (library, data, features and parameter versions) is the one
#: this code would cache, and its SHA-256 is the model card's; otherwise the model is fitted as before.
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "models" / "classical"


def _model_file_name(name: str) -> str:
    recorded = read_model_card().get("models", {}).get(name, {})
    key = hashlib.sha256(json.dumps([recorded.get("best_params"), recorded.get("thresholds")],
                                    sort_keys=True).encode()).hexdigest()[:8]
    return f"{name}-sklearn{sklearn.__version__}-data{data_version()}-features{features_version()}-{key}.joblib"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def shipped_model_path(name: str) -> Path | None:
    """The shipped fitted model for `name` if there is one for exactly this code and data, with the card's checksum."""
    file_name = _model_file_name(name)
    path = SHIPPED_DIR / file_name
    expected = read_model_card().get("shipped", {}).get(file_name)
    if not path.is_file() or expected is None:
        return None
    if _sha256(path) != expected:
        warnings.warn(f"refitting: the shipped model {file_name} does not match its SHA-256 in the model card")
        return None
    return path


def first_use_note(name: str = DEFAULT) -> str | None:
    """What the first use of text model `name` in this process will cost, or None when it is loaded already."""
    name = default_model_name() if name in (DEFAULT, None) else name
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
    recorded = read_model_card().get("models", {}).get(name, {})
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


def get_text_model(name: str = DEFAULT):
    """The model called `name` ('default' resolves through the model card), loaded once per process."""
    if name == DEFAULT or name is None:
        name = default_model_name()
    if name not in SPECS and name not in EXTRA_MODELS:
        raise ValueError(f"unknown text model {name!r}; available: {', '.join(available_models())}")
    with _lock:
        if name not in _loaded:
            _loaded[name] = _build_classical(name) if name in SPECS else EXTRA_MODELS[name]()
        return _loaded[name]


def predict_labels(model, frame) -> np.ndarray:
    proba = model.predict_proba(frame)
    return (proba >= np.array([model.thresholds[c] for c in LABEL_COLUMNS])).astype(int)


def _write_model_card(card: dict) -> None:
    candidates = {n: r for n, r in card["models"].items() if n in SPECS and not r.get("teaching_baseline")}
    card["default"] = max(candidates, key=lambda n: candidates[n]["test_f1_macro"])
    card["data_version"] = data_version()
    path = resources.files("moderation.data").joinpath("model_card.json")
    with open(str(path), "w", encoding="utf-8") as handle:
        json.dump(card, handle, indent=1, sort_keys=True)
        handle.write("\n")


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
    card["shipped"] = {file_name: _sha256(target)}
    _write_model_card(card)
    log(f"shipped {target.relative_to(SHIPPED_DIR.parents[1])} ({target.stat().st_size / 2**20:.1f} MiB), "
        f"sha256 {card['shipped'][file_name]}")
    return target


def train_all(names=None, log=print) -> dict:
    """Grid-search, tune and test every named classical model; write the model card; return it.

    The default becomes the best non-baseline model by macro-F1 on the bundled test split.
    """
    from .classical import train_model

    X_train, y_train = training_data("train")
    X_test, y_test = training_data("test")
    card = read_model_card()
    card.setdefault("models", {})
    for name in names or list(SPECS):
        log(f"training {name} ...")
        model = train_model(SPECS[name], X_train, y_train, X_test, y_test)
        card["models"][name] = model.record
        log(f"  {name}: test macro-F1 {model.record['test_f1_macro']} (cv {model.record['cv_best_f1_macro']}), "
            f"{model.record['train_seconds']} s, params {model.record['best_params']}")
        _write_model_card(card)  # after every model, so an interrupted run keeps what it finished
    with _lock:
        _loaded.clear()
    return card
