"""The transformer text path on the tiny BERT: real loading code, head training on a small slice of our data,
the moderate_text contract (spans inside the text, batch order), the cache, and clear errors. Offline, seconds."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from moderation.datasets import LABEL_COLUMNS, load_texts
from moderation.hub import ModelUnavailableError, clear_cache
from moderation.taxonomy import TEXT_CATEGORIES
from moderation.text import embedding, moderate_text, registry
from moderation.text import transformer as tr
from moderation.text.features import LEXICON_COLUMNS, analyze, feature_frame


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MODERATION_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(autouse=True, scope="module")
def _forget_loaded_models():
    """The tiny checkpoints stay loaded for this module only."""
    yield
    clear_cache()


def _bundled_slice(split: str, per_category: int):
    """A few positives of every category plus some clean texts from our bundled data, as (frame, labels)."""
    frame = load_texts(split)
    parts = [frame[frame[c] == 1].head(per_category) for c in LABEL_COLUMNS]
    parts.append(frame[frame[LABEL_COLUMNS].sum(axis=1) == 0].head(2 * per_category))
    rows = frame.loc[sorted(set().union(*(p.index for p in parts)))].reset_index(drop=True)
    texts = rows["text"].tolist()
    return feature_frame(texts, [analyze(t) for t in texts], rows["source"]), rows[LABEL_COLUMNS].to_numpy(dtype=int)


@pytest.fixture(scope="module")
def slices():
    return _bundled_slice("train", 24), _bundled_slice("test", 8)


@pytest.fixture(scope="module")
def bert(tiny_models):
    return embedding.load_checkpoint("text encoder", str(tiny_models["bert"]), tr.BERT_ENV)


@pytest.fixture(scope="module")
def heads_model(bert, slices):
    (X_train, y_train), (X_test, y_test) = slices
    return tr.EncoderHeadsModel("tiny-heads", bert, tr.train_heads(bert, X_train, y_train, X_test, y_test))


@pytest.fixture(scope="module")
def toxic_dir(tiny_models, tmp_path_factory):
    """A tiny BertForSequenceClassification with unitary/toxic-bert's six labels."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    labels = dict(enumerate(["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]))
    target = tmp_path_factory.mktemp("tiny_toxic_bert")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        BertForSequenceClassification.from_pretrained(
            tiny_models["bert"], id2label=labels, label2id={v: k for k, v in labels.items()},
            problem_type="multi_label_classification",
        ).save_pretrained(target)
    AutoTokenizer.from_pretrained(tiny_models["bert"]).save_pretrained(target)
    return str(target)


# --- embedding: preprocess -> forward -> postprocess ----------------------------------------------------------------


def test_embeddings_are_unit_vectors_one_per_text_in_input_order(bert):
    texts = ["have a lovely day", "you are such an idiot", "", "have a lovely day"]
    vectors = embedding.embed(bert, texts)
    assert vectors.shape == (4, bert.model.config.hidden_size)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[3])
    assert not np.allclose(vectors[0], vectors[1])


def test_batching_and_dynamic_padding_do_not_change_a_text_s_embedding(bert):
    texts = ["shut up", "the train was late again so I missed the start of the game " * 3, "what a moron"]
    together = embedding.embed(bert, texts)
    alone = np.vstack([embedding.embed(bert, [t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    reversed_order = embedding.embed(bert, texts[::-1])
    np.testing.assert_allclose(reversed_order[::-1], together, atol=1e-5)


def test_long_texts_are_read_whole_in_windows(bert):
    long_text = "the cat sat on the warm window " * 60 + "you stupid clown"
    windows = embedding.preprocess(bert, ["short text", long_text])
    window = bert.model.config.max_position_embeddings
    assert all(len(ids) <= window for ids in windows.input_ids)
    assert windows.owner.tolist().count(1) > 1 and windows.owner.tolist().count(0) == 1
    # The tail of a long text changes its embedding: it is not truncated away.
    head_only = "the cat sat on the warm window " * 60
    assert not np.allclose(embedding.embed(bert, [long_text]), embedding.embed(bert, [head_only]))


# --- heads -------------------------------------------------------------------------------------------------------


def test_heads_train_on_a_slice_with_thresholds_and_a_test_record(heads_model, slices):
    (X_train, _), _ = slices
    assert set(heads_model.thresholds) == set(TEXT_CATEGORIES)
    assert all(0.0 < t < 1.0 for t in heads_model.thresholds.values())
    record = heads_model.record
    assert record["encoder"] == heads_model.checkpoint.model_id
    assert 0.0 <= record["test_f1_macro"] <= 1.0 and set(record["test_f1"]) == set(TEXT_CATEGORIES)
    assert all(np.isfinite(r["mean_f1_macro"]) for r in record["cv_results"]), "the grid search could not score"
    proba = heads_model.predict_proba(X_train.head(12))
    assert proba.shape == (12, len(TEXT_CATEGORIES)) and ((proba >= 0) & (proba <= 1)).all()


def test_lexicon_evidence_reaches_the_heads(heads_model):
    """An obfuscated swear word counts through the lexicon columns, whatever the encoder's vocabulary makes of it."""
    texts = ["f.u.c.k the weather was great"]
    frame = feature_frame(texts, [analyze(t) for t in texts])
    assert frame.loc[0, "lex_profanity"] > 0
    without = frame.copy()
    without[LEXICON_COLUMNS] = 0.0
    k = TEXT_CATEGORIES.index("profanity")
    assert heads_model.predict_proba(frame)[0, k] > heads_model.predict_proba(without)[0, k]


@pytest.fixture
def registered(heads_model, monkeypatch):
    """The slice-trained tiny model under a registry name, as moderate_text sees any text model."""
    monkeypatch.setitem(registry.EXTRA_MODELS, "tiny-heads", lambda: heads_model)
    monkeypatch.setitem(registry._loaded, "tiny-heads", heads_model)
    return "tiny-heads"


def test_moderate_text_keeps_batch_order_and_spans_stay_inside_the_text(registered):
    texts = ["Have a lovely day", "You are such an IDIOT, f.u.c.k off", "", "Win a FREE phone now, click this link",
             "sh1t, the train was late"]
    verdicts = moderate_text(texts, model=registered)
    assert [v.text for v in verdicts] == texts
    for text, verdict in zip(texts, verdicts):
        assert verdict.model == registered and set(verdict.scores) == set(TEXT_CATEGORIES)
        single = moderate_text(text, model=registered)
        assert single.scores == pytest.approx(verdict.scores, abs=1e-4)
        for span in verdict.spans:
            assert 0 <= span.start < span.end <= len(text) and span.label in verdict.categories
    json.dumps([v.to_dict() for v in verdicts])


def test_occlusion_spans_come_from_the_transformer_heads(registered):
    verdict = moderate_text("You are such an idiot, nobody wants you here", model=registered, thresholds=0.01)
    assert verdict.flagged
    assert any("model" in span.source for span in verdict.spans)


# --- loading, cache, errors --------------------------------------------------------------------------------------


@pytest.fixture
def small_bundled_data(monkeypatch, slices):
    """Train and calibrate on the slices instead of the whole bundled data (same code path, seconds not minutes)."""
    monkeypatch.setattr(tr, "_bundled_splits", lambda: slices)


def test_heads_are_trained_once_then_read_from_the_cache(tiny_models, heads_model, small_bundled_data, monkeypatch,
                                                         tmp_path):
    trained = []

    def train_heads(checkpoint, *splits):
        trained.append(checkpoint.model_id)
        return heads_model.heads  # trained by the fixture on the same slices: the cache is under test here

    monkeypatch.setattr(tr, "train_heads", train_heads)
    first = tr.load_encoder_heads("transformer", model=str(tiny_models["bert"]))
    assert trained == [str(tiny_models["bert"])]
    assert len(list((tmp_path / "cache" / "models").glob("heads-*.joblib"))) == 1
    second = tr.load_encoder_heads("bert-base-uncased", model=str(tiny_models["bert"]))
    assert len(trained) == 1, "the same encoder's heads were trained twice"
    assert second.thresholds == first.thresholds
    frame = feature_frame(["what a moron"], [analyze("what a moron")])
    np.testing.assert_allclose(second.predict_proba(frame), first.predict_proba(frame))


@pytest.mark.parametrize("name, env_var", [("transformer", tr.TRANSFORMER_ENV), ("bert-base-uncased", tr.BERT_ENV)])
def test_encoder_comes_from_the_environment_and_a_missing_directory_is_a_clear_error(name, env_var, monkeypatch,
                                                                                     tmp_path):
    missing = str(tmp_path / "no-such-model")
    monkeypatch.setenv(env_var, missing)
    with pytest.raises(ModelUnavailableError, match=env_var) as caught:
        tr.load_encoder_heads(name)
    assert missing in str(caught.value)


def test_toxic_bert_labels_feed_our_categories_and_the_lexicon_covers_the_rest(toxic_dir, small_bundled_data):
    model = tr.load_toxic_bert(model=toxic_dir)
    assert model.label_categories == dict(tr.TOXIC_BERT_LABELS)
    assert set(model.thresholds) == set(TEXT_CATEGORIES)
    texts = ["win a free phone now, click this link", "have a lovely day", "you stupid clown"]
    frame = feature_frame(texts, [analyze(t) for t in texts])
    proba = model.predict_proba(frame)
    assert proba.shape == (3, len(TEXT_CATEGORIES)) and ((proba >= 0) & (proba <= 1)).all()
    uncovered = [k for k, c in enumerate(TEXT_CATEGORIES) if c not in set(tr.TOXIC_BERT_LABELS.values())]
    np.testing.assert_allclose(proba[:, uncovered], frame[[f"lex_{TEXT_CATEGORIES[k]}" for k in uncovered]].to_numpy())
    label_proba = embedding.classify(model.checkpoint, frame["text"].tolist())
    np.testing.assert_allclose(proba[:, TEXT_CATEGORIES.index("hate")], label_proba[:, 5], rtol=1e-6)


def test_a_classifier_whose_labels_map_to_nothing_is_refused(tiny_models, tmp_path):
    from transformers import AutoTokenizer, BertForSequenceClassification

    BertForSequenceClassification.from_pretrained(tiny_models["bert"], num_labels=2).save_pretrained(tmp_path / "clf")
    AutoTokenizer.from_pretrained(tiny_models["bert"]).save_pretrained(tmp_path / "clf")
    with pytest.raises(ModelUnavailableError, match="none of the labels"):
        tr.load_toxic_bert(model=str(tmp_path / "clf"))


def test_fingerprint_tells_checkpoints_apart(bert, toxic_dir):
    toxic = embedding.read_checkpoint(toxic_dir, classifier=True)
    again = embedding.read_checkpoint(bert.model_id)
    assert again.fingerprint == bert.fingerprint != toxic.fingerprint


def test_every_transformer_model_is_registered():
    assert set(tr.TRANSFORMER_MODELS) <= set(registry.available_models())


def test_importing_the_text_package_does_not_load_torch():
    code = "import sys, moderation.text, moderation.text.transformer; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"



def test_the_metrics_tab_reads_the_transformer_s_own_grid_search(registered):
    from moderation import evaluation

    assert "GridSearchCV tried 3 parameter combination(s)" in evaluation.grid_search_summary(registered)
    assert len(evaluation.grid_search_table(registered)) == 3
