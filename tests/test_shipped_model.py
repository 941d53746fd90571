"""The fitted default model shipped in the package: used when it fits this code exactly, refitted otherwise."""
import shutil
import time
import warnings

import pytest

from moderation import moderate_text
from moderation.text import registry


@pytest.fixture
def fresh_registry(tmp_path, monkeypatch):
    """An empty model cache and no model loaded in this process (restored afterwards for the other tests)."""
    monkeypatch.setenv("MODERATION_CACHE_DIR", str(tmp_path / "cache"))
    loaded = dict(registry._loaded)
    registry._loaded.clear()
    yield tmp_path
    registry._loaded.clear()
    registry._loaded.update(loaded)


def test_the_default_model_ships_fitted_for_exactly_this_code_and_data():
    name = registry.default_model_name()
    assert registry.shipped_model_path(name) is not None, (
        "the shipped model does not match this code, data or model card: rebuild it with `python -m moderation ship`")
    assert (sorted(p.name for p in registry.SHIPPED_DIR.glob("*.joblib"))
            == sorted(registry.read_model_card()["shipped"]))


def test_an_empty_cache_needs_no_fit_for_the_first_verdict(fresh_registry, monkeypatch):
    def no_fit(*args, **kwargs):
        raise AssertionError("the default model was fitted although a shipped one fits")

    monkeypatch.setattr(registry, "fit_model", no_fit)
    assert registry.first_use_note() is not None and "Fitting" not in registry.first_use_note()
    started = time.monotonic()
    verdict = moderate_text("you are a worthless idiot")
    assert verdict.flagged and "harassment" in verdict.categories
    assert time.monotonic() - started < 30  # the fit took minutes on two cores
    assert registry.first_use_note() is None  # loaded now


def test_a_shipped_file_that_does_not_match_its_checksum_is_not_used(fresh_registry, monkeypatch):
    shipped = fresh_registry / "shipped"
    shutil.copytree(registry.SHIPPED_DIR, shipped)
    for path in shipped.glob("*.joblib"):
        with open(path, "r+b") as handle:  # one byte changed: the pickle could still load, so the checksum decides
            handle.seek(1000)
            byte = handle.read(1)
            handle.seek(1000)
            handle.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(registry, "SHIPPED_DIR", shipped)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert registry.shipped_model_path(registry.default_model_name()) is None
    assert any("does not match its SHA-256" in str(w.message) for w in caught)
    assert "Fitting" in registry.first_use_note()
