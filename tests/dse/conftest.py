"""Shared pieces of the sweep tests: a tiny model and a space file writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TINY = {
    "model_type": "bert",
    "num_hidden_layers": 4,
    "num_attention_heads": 2,
    "hidden_size": 64,
    "max_position_embeddings": 32768,
}


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


@pytest.fixture
def write_space():
    """`write_space(directory, text, name="space.toml")`: the path of a new SPACE.toml."""

    def write(directory: Path, text: str, name: str = "space.toml") -> Path:
        path = directory / name
        path.write_text(text)
        return path

    return write
