"""`pip install .`: pyproject.toml declares what requirements*.txt pin, the wheel carries every file the package reads,
and the installed `moderation` command works from outside the checkout (offline: the wheel is built with the
setuptools already installed, and installed without dependencies into a venv that sees this environment's)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins(path: Path) -> dict[str, str]:
    """name -> requirement line with `==` for every pin in a requirements file (its `-r` includes aside)."""
    lines = [line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return {_name(line): line for line in lines if line and not line.startswith("-")}


def test_pyproject_declares_every_pinned_requirement_with_the_pin_as_lower_bound():
    declared = [*PYPROJECT["dependencies"],
                *(r for extra in PYPROJECT["optional-dependencies"].values() for r in extra)]
    bounds = {_name(r): r for r in declared if _name(r) != PYPROJECT["name"]}
    pins = {**_pins(ROOT / "requirements.txt"), **_pins(ROOT / "requirements-dev.txt")}
    assert {name: bounds.get(name, "").replace(">=", "==") for name in pins} == pins
    unpinned = {name for name, r in bounds.items() if ">=" not in r}
    assert unpinned == {"scipy", "joblib", "threadpoolctl", "starlette", "uvicorn"}  # what the pins bring along
    assert PYPROJECT["scripts"] == {"moderation": "moderation.cli:main"}


def _built_wheel(tmp_path: Path) -> Path:
    """The wheel of a copy of the checkout (building writes build/ and *.egg-info next to the sources)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "moderation", source / "moderation", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(tmp_path / "dist"), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return next((tmp_path / "dist").glob("*.whl"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _built_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_carries_every_module_and_data_file(wheel):
    packaged = set(zipfile.ZipFile(wheel).namelist())
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "moderation").rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert expected - packaged == set()
    assert {"moderation/data/texts.csv", "moderation/data/lexicon.tsv", "moderation/data/model_card.json"} <= packaged


def test_the_installed_moderation_command_works_outside_the_checkout(wheel, tmp_path):
    from moderation.text.registry import get_text_model

    get_text_model("default")  # fitted into this run's cache; the installed copy has the same bytes, so it reuses it
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                           "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(venv / "bin" / "moderation"), "text", "hello", "you are an idiot"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith("ok") and first.endswith("hello") and second.startswith("FLAGGED harassment")
    where = subprocess.run([str(python), "-c", "import moderation; print(moderation.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert Path(where.strip()).is_relative_to(venv)  # the installed copy, not the checkout
