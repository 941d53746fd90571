"""The cascade: only texts the classical model is unsure of reach the fine-tuned model; order and spans hold."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from moderation.taxonomy import TEXT_CATEGORIES
from moderation.text.cascade import CascadeModel
from moderation.text.features import FeatureRows, analyze
from moderation.verdict import Span

HARASSMENT = TEXT_CATEGORIES.index("harassment")


class Stage:
    """A stand-in model: fixed probabilities per text, counting what it is asked to score and to explain."""

    def __init__(self, name, thresholds, proba_of):
        self.name, self.thresholds, self.proba_of = name, thresholds, proba_of
        self.scored, self.explained = [], []

    def predict_proba(self, rows):
        texts = FeatureRows.of(rows).texts
        self.scored.extend(texts)
        return np.array([self.proba_of(t) for t in texts], dtype=float)

    def model_spans(self, rows, analyses, indices, flagged_sets):
        texts = FeatureRows.of(rows).texts
        self.explained.extend(texts[i] for i in indices)
        return [[Span(0, 2, flagged[0], 1.0, self.name)] for flagged in flagged_sets]


def row(harassment: float) -> list[float]:
    values = [0.01] * len(TEXT_CATEGORIES)
    values[HARASSMENT] = harassment
    return values


CLASSICAL = {"sure no": 0.02, "unsure low": 0.45, "sure yes": 0.97, "unsure high": 0.58}


@pytest.fixture
def cascade():
    first = Stage("first", {c: 0.5 for c in TEXT_CATEGORIES}, lambda t: row(CLASSICAL[t]))
    second = Stage("second", {c: 0.3 for c in TEXT_CATEGORIES}, lambda t: row(0.9 if "high" in t else 0.1))
    return CascadeModel("cascade", first, second, band=0.1)


def test_only_uncertain_texts_go_on_and_rows_keep_input_order(cascade):
    texts = ["unsure high", "sure no", "unsure low", "sure yes", "sure no"]
    proba = cascade.predict_proba(pd.DataFrame({"text": texts}))
    assert cascade.second.scored == ["unsure high", "unsure low"]
    assert cascade.first.scored == texts
    # unsure high: 0.9 on the fine-tuned scale (threshold 0.3) -> 0.5 + 0.6 * 0.5 / 0.7 on the classical scale
    np.testing.assert_allclose(proba[:, HARASSMENT], [0.5 + 0.6 * 0.5 / 0.7, 0.02, 0.1 * 0.5 / 0.3, 0.97, 0.02])
    assert (proba[:, HARASSMENT] >= 0.5).tolist() == [True, False, False, True, False]


def test_threshold_mapping_keeps_every_decision(cascade):
    grid = np.linspace(0, 1, 101)[:, None].repeat(len(TEXT_CATEGORIES), axis=1)
    mapped = cascade.to_first_scale(grid)
    assert ((grid >= 0.3) == (mapped >= 0.5)).all()
    assert (np.diff(mapped[:, 0]) >= 0).all() and mapped[0, 0] == 0 and mapped[-1, 0] == 1


def test_spans_come_from_the_model_that_decided(cascade):
    texts = ["sure yes", "unsure high"]
    frame = pd.DataFrame({"text": texts})
    cascade.predict_proba(frame)
    spans = cascade.model_spans(frame, [analyze(t) for t in texts], [0, 1], [["harassment"], ["harassment"]])
    assert [[s.source for s in found] for found in spans] == [["first"], ["second"]]
    assert cascade.first.explained == ["sure yes"] and cascade.second.explained == ["unsure high"]


def test_cascade_through_moderate_text_on_real_models(tmp_path, monkeypatch):
    """The real default classical model in front of a tiny fine-tuned BERT: counted calls, order, spans on."""
    torch = pytest.importorskip("torch")
    from moderation import moderate_text
    from moderation.testing.tiny_models import build_bert
    from moderation.text import registry
    from moderation.text.features import feature_frame
    from moderation.text.finetuned import FinetuneSettings, fine_tune, load_finetuned, save_finetuned

    torch.manual_seed(0)
    base = str(build_bert(tmp_path / "bert"))
    texts = ["Have a lovely day", "You are such an idiot, nobody wants you here", "the weather is fine",
             "shut up loser", "Win a free phone now, click this link", "we watched a film"]
    labels = np.zeros((len(texts), len(TEXT_CATEGORIES)), dtype=np.float32)
    tokenizer, model, *_ = fine_tune(texts, labels, FinetuneSettings(base=base, max_steps=1, threads=1), tmp_path / "w",
                                     log=lambda _: None)
    save_finetuned(model, tokenizer, tmp_path / "ft", {"thresholds": {c: 0.5 for c in TEXT_CATEGORIES}})
    second = load_finetuned(tmp_path / "ft")
    calls = []
    real_predict = second.predict_proba
    monkeypatch.setattr(second, "predict_proba",
                        lambda rows: calls.append(FeatureRows.of(rows).texts) or real_predict(rows))
    first = registry.get_text_model("logreg")
    classical = first.predict_proba(feature_frame(texts, [analyze(t) for t in texts]))
    distance = np.abs(classical - np.array([first.thresholds[c] for c in TEXT_CATEGORIES])).min(axis=1)
    band = float(np.sort(distance)[2])  # the three least certain texts go on
    monkeypatch.setitem(registry._loaded, "cascade", CascadeModel("cascade", first, second, band))

    verdicts = moderate_text(texts, model="cascade")
    expected = [t.lower() for t, d in zip(texts, distance) if d <= band]
    assert [s.lower() for s in calls[0]] == expected and len(expected) == 3
    # later calls are occlusion variants (a word blanked, same length) of the texts the fine-tuned model decided
    assert all(len(variant) in {len(t) for t in expected} for call in calls[1:] for variant in call)
    assert [v.text for v in verdicts] == texts and all(v.model == "cascade" for v in verdicts)
    for verdict in verdicts:
        for span in verdict.spans:
            assert verdict.text[span.start:span.end].strip()


def test_the_registry_loads_the_cascade_and_its_stages_in_one_call(monkeypatch):
    """load_cascade asks the registry for its stages while the registry is loading it: no deadlock."""
    import threading

    from moderation.text import registry

    first = Stage("first", {c: 0.5 for c in TEXT_CATEGORIES}, lambda t: row(0.5))
    second = Stage("second", {c: 0.5 for c in TEXT_CATEGORIES}, lambda t: row(0.5))
    monkeypatch.setitem(registry._loaded, "logreg", first)
    monkeypatch.setitem(registry._loaded, "finetuned", second)
    monkeypatch.delitem(registry._loaded, "cascade", raising=False)
    monkeypatch.setattr("moderation.text.model_card.read_model_card",
                        lambda: {"models": {"cascade": {"band": 0.1, "first": "logreg"}}})
    loaded = []
    worker = threading.Thread(target=lambda: loaded.append(registry.get_text_model("cascade")), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert loaded, "get_text_model('cascade') did not return"
    assert loaded[0].first is first and loaded[0].second is second and loaded[0].band == 0.1


def test_the_cards_cascade_record_holds_the_thresholds_its_verdicts_use():
    """The app's sliders start at the card's thresholds: the cascade's are its first stage's."""
    from moderation.text.model_card import read_model_card

    models = read_model_card()["models"]
    if "cascade" not in models:
        pytest.skip("no cascade in the model card")
    assert models["cascade"]["thresholds"] == models[models["cascade"]["first"]]["thresholds"]
    assert 0 < models["cascade"]["band"] < 0.5


def test_the_band_is_the_best_one_within_the_sending_budget():
    from benchmarks.cascade import choose_band

    validation = {0.02: {"sent_on": 0.01, "f1_macro": 0.82}, 0.1: {"sent_on": 0.044, "f1_macro": 0.83},
                  0.15: {"sent_on": 0.045, "f1_macro": 0.83}, 0.3: {"sent_on": 0.15, "f1_macro": 0.86}}
    assert choose_band(validation, 0.05) == 0.1  # 0.3 scores higher but sends 15% on; 0.15 ties, 0.1 is narrower
    assert choose_band(validation, 0.2) == 0.3
    assert choose_band(validation, 0.001) == 0.02  # nothing affordable: the narrowest
