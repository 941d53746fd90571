"""Shared pytest fixtures. Add yours; do not rewrite others'."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict:
    """Tiny random-weight bert/vit/gpt2 checkpoints, built once per session: {name: directory}."""
    from moderation.testing.tiny_models import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny_models"))
