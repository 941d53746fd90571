"""Shared pytest fixtures. Add yours; do not rewrite others'."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# The public evaluation datasets live next to the checkout (../shared/datasets) on project machines and in CI;
# a user's clone usually lacks them, and the tests that need them skip with a reason.
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
if "MODERATION_DATA_MIRROR" not in os.environ and _SHARED.is_dir():
    os.environ["MODERATION_DATA_MIRROR"] = str(_SHARED)


# Tests write only under temporary folders: fitted models go to a per-run cache, never the user's ~/.cache/moderation
# (set MODERATION_CACHE_DIR yourself to reuse one between runs), and browser screenshots to a temporary folder
# (`python -m pytest tests/test_browser.py` with MODERATION_SCREENSHOTS=docs/screenshots refreshes the README's).
if "MODERATION_CACHE_DIR" not in os.environ:
    os.environ["MODERATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="moderation-test-cache-")


@pytest.fixture(scope="session")
def public_data() -> Path:
    """The public datasets' folder, or a skip saying why the test cannot run."""
    mirror = os.environ.get("MODERATION_DATA_MIRROR")
    if not mirror or not Path(mirror).is_dir():
        pytest.skip("public evaluation datasets not found: "
                    "set MODERATION_DATA_MIRROR or place them in ../shared/datasets")
    return Path(mirror)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict:
    """Tiny random-weight bert/vit/gpt2 checkpoints, built once per session: {name: directory}."""
    from moderation.testing.tiny_models import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny_models"))
