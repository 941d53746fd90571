"""The fine-tuning code, run for real on a tiny BERT: training, thresholds, saving, loading, spans.

Quality is measured by benchmarks, not here; one test checks the shipped weights on two obvious texts when the
repository has them.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from moderation.datasets import LABEL_COLUMNS
from moderation.hub import ModelUnavailableError
from moderation.testing.tiny_models import CORPUS
from moderation.text import finetuned
from moderation.text.features import FeatureRows
from moderation.text.finetuned import FinetuneSettings

torch = pytest.importorskip("torch")

RUDE = [line for line in CORPUS.splitlines() if any(w in line for w in ("idiot", "stupid", "moron", "loser", "fool"))]
POLITE = [line for line in CORPUS.splitlines()[:20]]


def labelled_frame(repeats: int = 3) -> pd.DataFrame:
    """A learnable set: rude corpus lines are harassment, polite ones nothing (ids unique, so the hash splits)."""
    rows = []
    for r in range(repeats):
        for i, text in enumerate(RUDE + POLITE):
            rows.append({"id": f"t{r}-{i}", "text": text, "source": "chat", "split": "train",
                         **{c: int(c == "harassment" and text in RUDE) for c in LABEL_COLUMNS}})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from moderation.testing.tiny_models import build_bert

    torch.manual_seed(0)
    return str(build_bert(tmp_path_factory.mktemp("bert")))


def tiny_settings(base: str, **overrides) -> FinetuneSettings:
    return FinetuneSettings(**{"base": base, "epochs": 20, "learning_rate": 3e-3, "batch_size": 16, "threads": 1,
                               "max_steps": 40, **overrides})


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
    """(result, thresholds tuning's labels): a tiny model trained, tuned and saved once for the module."""
    seen = []
    from moderation.text import classical

    original = classical.tune_thresholds

    def recording(y_true, proba):
        seen.append(np.asarray(y_true).copy())
        return original(y_true, proba)

    classical.tune_thresholds = recording
    try:
        frame = labelled_frame()
        result = finetuned.train_finetuned(tiny_settings(tiny_bert), tmp_path_factory.mktemp("out"), frame=frame,
                                           test_frame=frame.head(10), work_dir=tmp_path_factory.mktemp("work"),
                                           log=lambda _: None)
    finally:
        classical.tune_thresholds = original
    return result, seen


def test_loss_decreases_on_a_learnable_set(tiny_bert, tmp_path):
    texts = finetuned.model_texts(RUDE + POLITE)
    labels = np.array([[float(c == "harassment" and t in RUDE) for c in LABEL_COLUMNS] for t in RUDE + POLITE],
                      dtype=np.float32)
    *_, steps, losses, _ = finetuned.fine_tune(texts, labels, tiny_settings(tiny_bert, max_steps=30), tmp_path,
                                               log=lambda _: None)
    assert steps == 30
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_validation_is_split_before_counterfactual_copies():
    frame = labelled_frame(repeats=6)
    frame.loc[0, "text"] = "Muslims and Christians are my neighbours"  # gets a counterfactual copy
    held_out = finetuned.is_validation(frame["id"])
    assert 0 < held_out.sum() < len(frame) * 0.3
    train_texts, _, val_texts, _ = finetuned.training_splits(frame)
    assert len(val_texts) == held_out.sum()
    assert len(train_texts) >= (~held_out).sum()
    assert not set(finetuned.model_texts(frame.loc[held_out, "text"])) & set(train_texts) - set(
        finetuned.model_texts(frame.loc[~held_out, "text"]))


def test_thresholds_come_from_the_validation_slice(trained):
    result, seen = trained
    held_out = finetuned.is_validation(labelled_frame()["id"])
    assert len(seen) == 1 and seen[0].shape == (held_out.sum(), len(LABEL_COLUMNS))
    assert result.record["validation_texts"] == held_out.sum()
    assert set(result.record["thresholds"]) == set(LABEL_COLUMNS)


def test_saved_weights_are_fp16_and_recorded(trained):
    from safetensors import safe_open

    result, _ = trained
    weights = result.directory / finetuned.WEIGHTS_FILE
    with safe_open(str(weights), "pt") as handle:
        assert {handle.get_tensor(k).dtype for k in handle.keys()} == {torch.float16}
    saved = json.loads((result.directory / finetuned.METADATA_FILE).read_text())
    assert saved["weights_sha256"] == finetuned.sha256_of(weights)
    assert saved["labels"] == list(LABEL_COLUMNS)


def test_round_trip_gives_the_saved_models_probabilities(tiny_bert, tmp_path):
    from moderation.text.embedding import Checkpoint, classify

    texts = finetuned.model_texts(RUDE + POLITE)
    labels = np.zeros((len(texts), len(LABEL_COLUMNS)), dtype=np.float32)
    tokenizer, model, *_ = finetuned.fine_tune(texts, labels, tiny_settings(tiny_bert, max_steps=3), tmp_path / "w",
                                               log=lambda _: None)
    record = {"thresholds": {c: 0.5 for c in LABEL_COLUMNS}}
    finetuned.save_finetuned(model, tokenizer, tmp_path / "saved", record)
    in_memory = Checkpoint("memory", tokenizer, model.float().eval(), "x", classifier=True)
    loaded = finetuned.load_finetuned(tmp_path / "saved")
    frame = pd.DataFrame({"text": texts})
    np.testing.assert_allclose(loaded.predict_proba(frame), classify(in_memory, texts), atol=1e-6)


def test_damaged_or_missing_files_give_a_clear_error(trained, tmp_path):
    import shutil

    result, _ = trained
    damaged = tmp_path / "damaged"
    shutil.copytree(result.directory, damaged)
    payload = bytearray((damaged / finetuned.WEIGHTS_FILE).read_bytes())
    payload[-100] ^= 0xFF
    (damaged / finetuned.WEIGHTS_FILE).write_bytes(bytes(payload))
    with pytest.raises(ModelUnavailableError, match="damaged"):
        finetuned.load_finetuned(damaged)
    (damaged / "config.json").unlink()
    with pytest.raises(ModelUnavailableError, match="missing config.json"):
        finetuned.load_finetuned(damaged)


def test_spans_occlude_a_handful_of_words_in_one_batch(trained, monkeypatch):
    from moderation import moderate_text
    from moderation.text import registry

    model = finetuned.load_finetuned(trained[0].directory)
    model.thresholds = {c: 0.0 for c in LABEL_COLUMNS}  # everything flagged: every text gets model spans
    rows_per_call = []
    score = model.predict_proba
    monkeypatch.setattr(model, "predict_proba", lambda frame: rows_per_call.append(len(frame)) or score(frame))
    monkeypatch.setitem(registry._loaded, "finetuned", model)
    texts = [" ".join(POLITE[:6]), "Go away loser, you are pathetic and dumb"]
    moderate_text(texts, model="finetuned")
    assert rows_per_call[0] == 2 and len(rows_per_call) == 2  # the texts, then every variant in one call
    # the long text has dozens of content words but gets the cap; the short one gets a variant per content word
    assert finetuned.OCCLUSION_CANDIDATES < rows_per_call[1] <= 2 * finetuned.OCCLUSION_CANDIDATES


def test_spans_land_on_the_original_text_of_an_obfuscated_long_input(monkeypatch):
    """A stand-in whose harassment score depends on one word: its span must be exactly what the user wrote."""
    from moderation import moderate_text
    from moderation.text import registry

    def harassment_if_loser(rows):
        texts = FeatureRows.of(rows).texts
        proba = np.zeros((len(texts), len(LABEL_COLUMNS)))
        proba[:, LABEL_COLUMNS.index("harassment")] = [0.9 if "loser" in t else 0.1 for t in texts]
        return proba

    model = finetuned.FinetunedModel("finetuned", None, {c: 0.5 for c in LABEL_COLUMNS}, {})
    monkeypatch.setattr(model, "predict_proba", harassment_if_loser)
    monkeypatch.setitem(registry._loaded, "finetuned", model)
    original = " ".join(POLITE * 10) + " honestly, you are a l.o.s.e.r, mate"
    verdict = moderate_text(original, model="finetuned")
    model_spans = [(original[s.start:s.end], s.label) for s in verdict.spans if "model" in s.source]
    assert model_spans == [("l.o.s.e.r", "harassment")]
    assert verdict.categories == ["harassment"]


SHIPPED = (finetuned.SHIPPED_DIR / finetuned.WEIGHTS_FILE).is_file()


@pytest.mark.skipif(not SHIPPED, reason="the fine-tuned weights are not in this checkout")
def test_shipped_model_flags_an_attack_and_passes_a_statement_about_a_group():
    from moderation import moderate_text

    texts = ["I will kill you, you worthless piece of trash", "Black people deserve equal rights"]
    attack, statement = moderate_text(texts, model="finetuned")
    assert attack.flagged and {"violence", "harassment"} & set(attack.categories)
    assert not statement.flagged, statement.scores
