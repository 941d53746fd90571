"""One owner of the model card and of which model is the default (text/model_card.py), and one rule for a user's
model name (registry.resolve_model_name) at every entry point: "default" or None is the card's default, "" or an
unknown name is a ValueError naming the available models."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from moderation import app_support as support
from moderation import cli, evaluation, moderate_text
from moderation.batch import BatchError, resolve_model
from moderation.text import model_card, registry

PACKAGE = Path(__file__).resolve().parents[1] / "moderation"


def test_no_model_means_the_default_and_the_verdict_names_it():
    default = model_card.default_model_name()
    assert moderate_text("have a lovely day", model=None).model == default
    assert moderate_text(["you idiot"], model="default")[0].model == default
    assert registry.get_text_model(None) is registry.get_text_model(default)


@pytest.mark.parametrize("name", ["", "nope", "Default", " logreg"])
def test_a_name_that_is_no_model_is_refused_naming_the_available_ones(name):
    with pytest.raises(ValueError, match=r"unknown text model .*; available: default, logreg"):
        registry.resolve_model_name(name)


def test_every_available_name_resolves_to_a_loadable_one():
    assert registry.resolve_model_name("default") == registry.resolve_model_name(None) == "logreg"
    for name in registry.available_models()[1:]:
        assert registry.resolve_model_name(name) == name


@pytest.mark.parametrize("entry_point", [
    lambda name: moderate_text("hello", model=name),
    lambda name: evaluation.evaluate_bundled("texts", name),
    lambda name: evaluation.evaluate_labelled_csv(b"text,label\nhello,0\n", name),
    lambda name: evaluation.evaluate_fairness(name),
    lambda name: evaluation.grid_search_summary(name),
    lambda name: support.tuned_thresholds(name),
    lambda name: resolve_model(name),
], ids=["moderate_text", "evaluate_bundled", "evaluate_labelled_csv", "evaluate_fairness", "grid_search_summary",
        "tuned_thresholds", "batch"])
@pytest.mark.parametrize("name", ["", "nope"])
def test_every_entry_point_applies_the_same_rule(entry_point, name):
    with pytest.raises(ValueError, match="unknown text model"):
        entry_point(name)


def test_a_batch_job_says_it_as_a_batch_error():
    with pytest.raises(BatchError, match="unknown text model ''"):
        resolve_model("")
    assert resolve_model(None) == resolve_model("default") == resolve_model(model_card.default_model_name())


@pytest.mark.parametrize("argv", [["text", "--model", "", "hello"], ["evaluate", "--models", "default", "nope"]])
def test_the_command_line_refuses_an_unknown_model_before_any_scoring(argv, capsys):
    assert cli.main(argv) == 2
    assert "error: unknown text model" in capsys.readouterr().err


def test_the_app_line_compares_with_the_cards_default():
    default = model_card.default_model_name()
    assert support.model_status(default) == f"Model `{default}`"
    weak = model_card.model_record("tree")["test_f1_macro"]
    best = model_card.model_record(default)["test_f1_macro"]
    assert f"{weak:.2f}, against {best:.2f} for `{default}`" in support.model_status("tree")


def test_writing_the_card_rechooses_the_default_and_reading_it_back(tmp_path, monkeypatch):
    monkeypatch.setattr(model_card, "card_path", lambda: tmp_path / "model_card.json")
    assert model_card.read_model_card() == {"models": {}}
    assert model_card.default_model_name() == model_card.FALLBACK_DEFAULT  # no card yet
    model_card.write_model_card({"models": {
        "logreg": {"test_f1_macro": 0.80},
        "svm": {"test_f1_macro": 0.82, "thresholds": {"spam": 0.4}},
        "linreg": {"test_f1_macro": 0.90, "teaching_baseline": True},  # never the default
        "finetuned": {"test_f1_macro": 0.95},  # not a classical model: never the default
    }})
    written = json.loads((tmp_path / "model_card.json").read_text(encoding="utf-8"))
    assert written["default"] == "svm" and written["data_version"]
    assert model_card.default_model_name() == "svm" == registry.resolve_model_name(None)
    assert model_card.model_record("svm")["thresholds"] == {"spam": 0.4}
    assert model_card.model_record("tree") == {} and model_card.model_record("default") == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_card.json"]  # no temporary file left


def test_no_module_but_model_card_reads_the_card_or_its_default_by_hand():
    by_hand = re.compile(r"model_card\.json|[\w)\]]\[[\"']default[\"']\]|\.get\([\"']default[\"']")  # card["default"]
    offenders = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                 if path.name != "model_card.py" and by_hand.search(path.read_text(encoding="utf-8"))]
    assert not offenders, f"read the card through moderation/text/model_card.py: {offenders}"
