"""Every model `get_text_model` can return is a `TextModel`: tuned thresholds for every category, its record, and
(n, len(TEXT_CATEGORIES)) probabilities for a feature frame. Real models: the fitted default, every classical spec
fitted on a slice of the bundled data, the transformer family on a tiny BERT, the shipped fine-tuned model and the
cascade. Offline, well under a minute."""
from __future__ import annotations

import typing
from collections.abc import Mapping

import numpy as np
import pytest

from moderation.datasets import LABEL_COLUMNS, load_texts
from moderation.taxonomy import TEXT_CATEGORIES
from moderation.text import registry
from moderation.text.features import analyze, feature_frame
from moderation.text.model import TextModel

TEXTS = ["have a lovely day", "you are a worthless idiot", "WINNER! claim your free prize now", ""]


@pytest.fixture(scope="module")
def frame():
    return feature_frame(TEXTS, [analyze(t) for t in TEXTS])


@pytest.fixture(scope="module")
def bundled_slice():
    """A few positives of every category and some clean texts of the bundled train split: (frame, labels)."""
    rows = load_texts("train")
    clean = rows[rows[LABEL_COLUMNS].sum(axis=1) == 0].head(24)
    picked = [rows[rows[c] == 1].head(12) for c in LABEL_COLUMNS] + [clean]
    rows = rows.loc[sorted(set().union(*(p.index for p in picked)))].reset_index(drop=True)
    texts = rows["text"].tolist()
    return feature_frame(texts, [analyze(t) for t in texts], rows["source"]), rows[LABEL_COLUMNS].to_numpy(dtype=int)


def assert_text_model(model, frame):
    assert isinstance(model, TextModel)
    assert set(model.thresholds) >= set(TEXT_CATEGORIES)
    assert all(0.0 <= model.thresholds[c] <= 1.0 for c in TEXT_CATEGORIES)
    assert isinstance(model.record, Mapping)
    proba = np.asarray(model.predict_proba(frame))
    assert proba.shape == (len(frame), len(TEXT_CATEGORIES))
    assert np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1).all()


def test_get_text_model_is_annotated_with_the_protocol():
    assert typing.get_type_hints(registry.get_text_model)["return"] is TextModel


def test_an_object_without_probabilities_is_not_a_text_model():
    class ThresholdsOnly:
        thresholds = {c: 0.5 for c in TEXT_CATEGORIES}
        record: dict = {}

    assert not isinstance(ThresholdsOnly(), TextModel)


def test_the_default_model(frame):
    model = registry.get_text_model("default")
    assert_text_model(model, frame)
    assert model.record == registry.model_record(registry.default_model_name())


@pytest.mark.parametrize("name", list(registry.SPECS))
def test_every_classical_model(name, bundled_slice, frame):
    from moderation.text.classical import SPECS, fit_model

    X, y = bundled_slice
    small = {"forest": {"clf__n_estimators": 10}}.get(name, {})  # the family, not its full size, is under test
    assert_text_model(fit_model(SPECS[name], small, X, y, {c: 0.5 for c in TEXT_CATEGORIES}), frame)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from moderation.testing.tiny_models import build_bert

    return str(build_bert(tmp_path_factory.mktemp("tiny_bert")))


def test_the_encoder_heads_model(tiny_bert, bundled_slice, frame):
    from moderation.text import embedding
    from moderation.text import transformer as tr

    X, y = bundled_slice
    bert = embedding.load_checkpoint("text encoder", tiny_bert, tr.BERT_ENV)
    assert_text_model(tr.EncoderHeadsModel("tiny-heads", bert, tr.train_heads(bert, X, y, X, y)), frame)


def test_the_label_mapped_model(tiny_bert, bundled_slice, frame, tmp_path):
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from moderation.text import embedding
    from moderation.text import transformer as tr

    labels = dict(enumerate(tr.TOXIC_BERT_LABELS))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        BertForSequenceClassification.from_pretrained(
            tiny_bert, id2label=labels, label2id={v: k for k, v in labels.items()},
            problem_type="multi_label_classification").save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(tmp_path)
    checkpoint = embedding.load_checkpoint("toxicity classifier", str(tmp_path), tr.TOXIC_BERT_ENV, classifier=True)
    X, y = bundled_slice
    mapped = tr.LabelMappedModel("tiny-toxic", checkpoint, tr.map_labels(checkpoint.model.config.id2label))
    assert_text_model(tr.calibrate(mapped, X, y, X, y), frame)


@pytest.mark.parametrize("name", ["finetuned", "cascade"])
def test_the_shipped_fine_tuned_model_and_the_cascade(name, frame):
    from moderation.hub import ModelUnavailableError

    try:
        model = registry.get_text_model(name)
    except ModelUnavailableError as exc:
        pytest.skip(f"{name} cannot load here: {exc}")
    assert_text_model(model, frame)
