"""What every cached text model is fitted on and keyed by: the bundled training data, the data and feature versions
in a cached model's name, and reading a cached model back.

It sits below the registry and the model families the registry loads (classical, transformer, finetuned), so each
family reads the same data and versions without importing the registry that imports it.
"""
from __future__ import annotations

import hashlib
import warnings
from importlib import resources
from pathlib import Path

import joblib

from .. import identity, lexicon, normalize
from ..datasets import LABEL_COLUMNS, load_texts
from ..identity import with_counterfactuals
from . import features
from .features import UNKNOWN_SOURCE, analyze, feature_frame


def data_version() -> str:
    payload = resources.files("moderation.data").joinpath("texts.csv").read_bytes()
    return hashlib.sha256(payload).hexdigest()[:12]


def features_version() -> str:
    """A digest of what turns a text into model inputs (normaliser, lexicon and its terms, feature code): a model
    cached under other features is refitted, never reused."""
    digest = hashlib.sha256(resources.files("moderation.data").joinpath("lexicon.tsv").read_bytes())
    for module in (normalize, lexicon, features, identity):  # identity: the counterfactual copies trained on
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:12]


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
