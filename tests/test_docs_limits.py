"""docs/cli.md states the ranges and limits the code enforces (one decision, documented once)."""

from __future__ import annotations

import re
from pathlib import Path

from spatten_hls.compiler import config, limits
from spatten_hls.compiler.limits import format_bytes

CLI_MD = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")


def config_row(key: str) -> str:
    found = re.search(rf"^\| `{re.escape(key)}` \|[^|]*\| ([^|]*) \|$", CLI_MD, re.MULTILINE)
    assert found, key
    return found.group(1)


def test_every_integer_key_documents_its_range() -> None:
    for key, (lo, hi) in config._INT_RANGES.items():
        assert f"{lo}..{hi}" in config_row(key), key


def test_every_float_key_documents_its_range() -> None:
    for key, (lo, hi) in config._FLOAT_RANGES.items():
        assert f"[{lo:g}, {hi:g}]" in config_row(key), key
    for key in config._FRACTIONS:
        assert f"[{config.MIN_FRACTION:g}, 1]" in config_row(key), key


def test_the_limits_table_holds_every_limit() -> None:
    table = CLI_MD.split("\n## Limits\n", 1)[1]
    for value in (
        limits.MAX_LAYERS,
        limits.MAX_HEADS,
        limits.MAX_MODEL_HEADS,
        limits.MAX_HEAD_DIM,
        limits.MAX_HIDDEN,
        limits.MAX_POSITIONS,
        limits.MAX_SEQ_LEN,
        limits.MAX_GEN_TOKENS,
        limits.MAX_BUFFER_TOKENS,
        limits.MAX_GGUF_TENSORS,
        limits.MAX_GGUF_KEYS,
        limits.MAX_GGUF_ARRAY,
        limits.MAX_GGUF_ARRAY_DEPTH,
        limits.MAX_GGUF_DIMS,
    ):
        assert re.search(rf"\b{value}\b", table), value
    for size in (
        limits.MAX_WORKING_SET_BYTES,
        limits.MAX_GGUF_STRING,
        *limits.FILE_LIMITS.values(),
    ):
        assert format_bytes(size) in table, format_bytes(size)
