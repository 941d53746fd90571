"""Loading pretrained models by id: a model that cannot be loaded is a fast, plain message, and stays one."""
from __future__ import annotations

import shutil
import time

import pytest

from moderation import hub
from moderation.hub import ModelUnavailableError, load_cached


@pytest.fixture(autouse=True)
def unreachable_hub(monkeypatch):
    """A hub endpoint on a closed loopback port: refused at once, like a machine without network."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    hub.clear_cache()
    yield
    hub.clear_cache()


def _load_tokenizer(source: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source)


def test_an_unreachable_hub_is_a_fast_message_and_the_failure_is_remembered(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="cannot be reached.*not in the local hub cache.*MODERATION_X"):
        load_cached("text encoder", "someone/some-model", "MODERATION_X", _load_tokenizer)
    assert time.monotonic() - started < 15  # the hub client's own retries took 47-93 s
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="This failure is from"):
        load_cached("text encoder", "someone/some-model", "MODERATION_X", _load_tokenizer)
    assert time.monotonic() - started < 1
    monkeypatch.setattr(hub, "RETRY_AFTER_SECONDS", 0.0)  # after the wait, the next request tries again
    with pytest.raises(ModelUnavailableError, match="cannot be reached") as again:
        load_cached("text encoder", "someone/some-model", "MODERATION_X", _load_tokenizer)
    assert "This failure is from" not in str(again.value)


def test_a_model_in_the_local_hub_cache_loads_without_the_hub(tiny_models, tmp_path, monkeypatch):
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = cache / "models--someone--tiny-bert" / "snapshots" / commit
    shutil.copytree(tiny_models["bert"], snapshot)
    (cache / "models--someone--tiny-bert" / "refs").mkdir()
    (cache / "models--someone--tiny-bert" / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    tokenizer = load_cached("text encoder", "someone/tiny-bert", "MODERATION_X", _load_tokenizer)
    assert tokenizer("hello")["input_ids"]
