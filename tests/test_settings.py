"""The settings table: every MODERATION_* variable the code reads is documented in it, the README shows it, and the
typed readers parse values the way their callers relied on."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from moderation import settings

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"\bMODERATION_[A-Z0-9_]*[A-Z0-9]\b")


def _names_in(paths) -> set[str]:
    return {name for path in paths for name in NAME.findall(path.read_text(encoding="utf-8"))}


def test_every_variable_the_code_names_is_in_the_table_and_every_row_is_read_somewhere():
    sources = [*(ROOT / "moderation").rglob("*.py"), ROOT / "app.py", *(ROOT / "benchmarks").glob("*.py"),
               ROOT / "tests" / "test_browser.py"]
    named = _names_in(path for path in sources if path.name != "settings.py")
    documented = {setting.name for setting in settings.SETTINGS}
    assert named - documented == set(), "add a row to moderation.settings.SETTINGS"
    assert documented - named == set(), "a row for a variable nothing reads"


def test_the_readme_table_is_the_settings_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"<!-- settings table: start -->\n(.*?)<!-- settings table: end -->", readme, re.S)
    assert shown is not None, "README.md lost its settings table markers"
    assert shown.group(1) == settings.markdown_table()


def test_documented_defaults_are_the_ones_the_code_uses():
    from moderation import generation, serving
    from moderation.image import classifier
    from moderation.text import transformer

    documented = {s.name: s.default for s in settings.SETTINGS}
    assert documented["MODERATION_GENERATION_MODEL"] == f"`{generation.DEFAULT_MODEL}`"
    assert documented["MODERATION_IMAGE_MODEL"] == f"`{classifier.DEFAULT_IMAGE_MODEL}`"
    assert documented["MODERATION_BERT_MODEL"] == f"`{transformer.DEFAULT_BERT}`"
    assert documented["MODERATION_TOXIC_BERT_MODEL"] == f"`{transformer.DEFAULT_TOXIC_BERT}`"
    assert documented["MODERATION_RATE_LIMIT"] == f"`{serving.REQUESTS_PER_MINUTE}`"
    assert documented["MODERATION_UPLOAD_BUDGET_MB"] == f"`{serving.UPLOAD_BUDGET_BYTES // 2**20}`"


def test_an_undocumented_name_cannot_be_read(monkeypatch):
    monkeypatch.setenv("MODERATION_NOT_A_SETTING", "1")
    with pytest.raises(KeyError, match="add a row"):
        settings.value("MODERATION_NOT_A_SETTING")


@pytest.mark.parametrize("given, expected", [("1", True), (" yes ", True), ("ON", True), ("true", True),
                                             ("0", False), ("off", False), ("maybe", False), ("", None), (None, None)])
def test_flags(monkeypatch, given, expected):
    if given is None:
        monkeypatch.delenv("MODERATION_SHARE", raising=False)
    else:
        monkeypatch.setenv("MODERATION_SHARE", given)
    for default in (True, False):
        assert settings.flag("MODERATION_SHARE", default) is (default if expected is None else expected)


def test_numbers_fall_back_when_unset_and_name_the_variable_when_malformed(monkeypatch):
    monkeypatch.delenv("MODERATION_MAX_SESSIONS", raising=False)
    assert settings.whole_number("MODERATION_MAX_SESSIONS", 1000) == 1000
    monkeypatch.setenv("MODERATION_MAX_SESSIONS", " 30 ")
    assert settings.whole_number("MODERATION_MAX_SESSIONS", 1000) == 30
    monkeypatch.setenv("MODERATION_MAX_SESSIONS", "3.5")
    with pytest.raises(ValueError, match="MODERATION_MAX_SESSIONS must be a whole number, got '3.5'"):
        settings.whole_number("MODERATION_MAX_SESSIONS", 1000)
    monkeypatch.setenv("MODERATION_UPLOAD_BUDGET_MB", "0.5")
    assert settings.number("MODERATION_UPLOAD_BUDGET_MB", 2048.0) == 0.5
    monkeypatch.setenv("MODERATION_UPLOAD_BUDGET_MB", "lots")
    with pytest.raises(ValueError, match="MODERATION_UPLOAD_BUDGET_MB must be a number"):
        settings.number("MODERATION_UPLOAD_BUDGET_MB", 2048.0)


def test_cache_dir_follows_the_variable_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MODERATION_CACHE_DIR", str(tmp_path / "mine"))
    assert settings.cache_dir() == tmp_path / "mine"
    monkeypatch.setenv("MODERATION_CACHE_DIR", "  ")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert settings.cache_dir() == tmp_path / "xdg" / "moderation"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert settings.cache_dir() == tmp_path / "home" / ".cache" / "moderation"


def test_paths_expand_the_home_folder_and_blank_means_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MODERATION_IMAGE_BLOCKLIST", "~/lists/known.json")
    assert settings.path("MODERATION_IMAGE_BLOCKLIST") == tmp_path / "lists" / "known.json"
    monkeypatch.setenv("MODERATION_IMAGE_BLOCKLIST", "   ")
    assert settings.path("MODERATION_IMAGE_BLOCKLIST") is None


def test_model_ids_come_from_the_argument_then_the_variable_then_the_default(monkeypatch):
    from moderation.hub import resolve_model_id

    monkeypatch.setenv("MODERATION_IMAGE_MODEL", " /models/vit ")
    assert resolve_model_id(None, "MODERATION_IMAGE_MODEL", "hub/default") == "/models/vit"
    assert resolve_model_id("mine", "MODERATION_IMAGE_MODEL", "hub/default") == "mine"
    monkeypatch.delenv("MODERATION_IMAGE_MODEL")
    assert resolve_model_id("  ", "MODERATION_IMAGE_MODEL", "hub/default") == "hub/default"


def test_the_image_package_finds_its_blocklist_without_pandas():
    import subprocess
    import sys

    code = ("import sys; from moderation.image import blocklist_path; blocklist_path(); "
            "print('pandas' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.stdout.strip() == "False", result.stderr
