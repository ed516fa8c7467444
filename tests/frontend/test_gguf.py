"""GGUF metadata -> ModelSpec, with files written by gguf.GGUFWriter, and its errors."""

import os
from pathlib import Path

import gguf
import pytest

from spatten_hls.compiler.errors import FrontendError
from spatten_hls.compiler.frontend.gguf_meta import read_gguf


def write_gguf(
    path: Path,
    arch: str,
    *,
    name: str | None = None,
    layers: int | None = 30,
    heads=9,
    kv_heads=None,
    hidden: int = 576,
    context: int = 8192,
    key_length: int | None = None,
    extra=None,
) -> Path:
    """A metadata-only GGUF file (no tensors), the way llama.cpp's converters name keys."""
    writer = gguf.GGUFWriter(path, arch)
    if name is not None:
        writer.add_name(name)
    if layers is not None:
        writer.add_block_count(layers)
    writer.add_head_count(heads)
    if kv_heads is not None:
        writer.add_head_count_kv(kv_heads)
    writer.add_embedding_length(hidden)
    writer.add_context_length(context)
    if key_length is not None:
        writer.add_key_length(key_length)
    for key, value in (extra or {}).items():
        writer.add_string(key, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    return path


def shape(spec):
    return (
        spec.family,
        spec.num_layers,
        spec.num_heads,
        spec.num_kv_heads,
        spec.head_dim,
        spec.hidden_size,
        spec.max_positions,
        spec.causal,
    )


def test_llama_with_gqa(tmp_path):
    path = write_gguf(tmp_path / "model.gguf", "llama", name="SmolLM2 135M", kv_heads=3)
    spec = read_gguf(path)
    assert shape(spec) == ("llama", 30, 9, 3, 64, 576, 8192, True)
    assert spec.name == "smollm2-135m"
    assert spec.source == str(path)


def test_gpt2(tmp_path):
    path = write_gguf(
        tmp_path / "gpt2-small.gguf", "gpt2", layers=12, heads=12, hidden=768, context=1024
    )
    spec = read_gguf(path)
    assert shape(spec) == ("gpt2", 12, 12, 12, 64, 768, 1024, True)
    assert spec.name == "gpt2-small"  # no general.name: the file stem


def test_bert_is_not_causal(tmp_path):
    path = write_gguf(
        tmp_path / "m.gguf", "bert", name="MiniLM L6", layers=6, heads=12, hidden=384, context=512
    )
    assert shape(read_gguf(path)) == ("bert", 6, 12, 12, 32, 384, 512, False)


def test_key_length_sets_head_dim(tmp_path):
    path = write_gguf(
        tmp_path / "m.gguf",
        "llama",
        layers=28,
        heads=16,
        kv_heads=8,
        hidden=1024,
        context=40960,
        key_length=128,
    )
    assert shape(read_gguf(path)) == ("llama", 28, 16, 8, 128, 1024, 40960, True)


def test_uniform_per_layer_head_counts(tmp_path):
    path = write_gguf(
        tmp_path / "m.gguf", "llama", layers=3, heads=[8, 8, 8], kv_heads=[2, 2, 2], hidden=512
    )
    spec = read_gguf(path)
    assert (spec.num_heads, spec.num_kv_heads, spec.head_dim) == (8, 2, 64)


def test_varying_per_layer_head_counts_are_rejected(tmp_path):
    path = write_gguf(tmp_path / "m.gguf", "llama", layers=2, heads=8, kv_heads=[2, 4], hidden=512)
    with pytest.raises(FrontendError, match=r"'llama.attention.head_count_kv' varies per layer"):
        read_gguf(path)


# ---- errors ----


def error_of(path: Path) -> str:
    with pytest.raises(FrontendError) as info:
        read_gguf(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_random_bytes_are_not_gguf(tmp_path):
    path = tmp_path / "corrupt.gguf"
    path.write_bytes(os.urandom(256))
    assert "not a valid GGUF file" in error_of(path)


def test_truncated_gguf(tmp_path):
    good = write_gguf(tmp_path / "good.gguf", "llama", kv_heads=3)
    path = tmp_path / "truncated.gguf"
    path.write_bytes(good.read_bytes()[:60])
    assert "not a valid GGUF file" in error_of(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    assert "not a valid GGUF file" in error_of(path)


def test_missing_block_count(tmp_path):
    path = write_gguf(tmp_path / "m.gguf", "llama", layers=None, kv_heads=3)
    assert "missing required key 'llama.block_count'" in error_of(path)


def test_unsupported_architecture(tmp_path):
    path = write_gguf(tmp_path / "m.gguf", "mamba")
    message = error_of(path)
    assert "unsupported architecture 'mamba'" in message
    assert "llama" in message and "gpt2" in message and "bert" in message


def test_string_where_int_expected(tmp_path):
    path = write_gguf(
        tmp_path / "m.gguf", "llama", layers=None, extra={"llama.block_count": "thirty"}
    )
    assert "key 'llama.block_count' must be an integer, got string" in error_of(path)


def test_hidden_not_divisible_by_heads(tmp_path):
    path = write_gguf(tmp_path / "m.gguf", "gpt2", heads=12, hidden=770)
    assert (
        "'gpt2.embedding_length' = 770 is not divisible by 'gpt2.attention.head_count' = 12"
        in error_of(path)
    )


def test_heads_not_multiple_of_kv_heads(tmp_path):
    path = write_gguf(tmp_path / "m.gguf", "llama", heads=9, kv_heads=2)
    assert (
        "'llama.attention.head_count' = 9 is not a multiple of "
        "'llama.attention.head_count_kv' = 2" in error_of(path)
    )


def test_nonexistent_file(tmp_path):
    assert "no such GGUF file" in error_of(tmp_path / "absent.gguf")
