"""load_model: presets, config.json paths, model directories, .gguf files, and bad arguments."""

import json
from pathlib import Path

import gguf
import pytest

from spatten_hls.compiler.errors import FrontendError
from spatten_hls.compiler.frontend import PRESETS, load_model

GPT2 = {"model_type": "gpt2", "n_layer": 24, "n_head": 16, "n_embd": 1024, "n_positions": 1024}


def write_llama_gguf(path: Path) -> Path:
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("Tiny Llama")
    writer.add_block_count(4)
    writer.add_head_count(8)
    writer.add_head_count_kv(2)
    writer.add_embedding_length(256)
    writer.add_context_length(2048)
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


def test_preset():
    assert load_model("gpt2-medium") is PRESETS["gpt2-medium"]


def test_json_file(tmp_path):
    path = tmp_path / "my-gpt2.json"
    path.write_text(json.dumps(GPT2))
    spec = load_model(str(path))
    assert shape(spec) == ("gpt2", 24, 16, 16, 64, 1024, 1024, True)
    assert (spec.name, spec.source) == ("my-gpt2", str(path))


def test_model_directory_with_config_json(tmp_path):
    model_dir = tmp_path / "gpt2-medium-local"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps(GPT2))
    (model_dir / "model.safetensors").write_bytes(b"")  # weights beside it are not read here
    spec = load_model(str(model_dir))
    assert shape(spec) == ("gpt2", 24, 16, 16, 64, 1024, 1024, True)
    assert spec.name == "gpt2-medium-local"
    assert spec.source == str(model_dir / "config.json")


def test_gguf_file(tmp_path):
    path = write_llama_gguf(tmp_path / "tiny.Q8_0.gguf")
    spec = load_model(str(path))
    assert shape(spec) == ("llama", 4, 8, 2, 32, 256, 2048, True)
    assert spec.name == "tiny-llama"


def test_directory_with_single_gguf(tmp_path):
    write_llama_gguf(tmp_path / "tiny.gguf")
    spec = load_model(str(tmp_path))
    assert shape(spec) == ("llama", 4, 8, 2, 32, 256, 2048, True)
    assert spec.source == str(tmp_path / "tiny.gguf")


def test_directory_prefers_config_json_over_gguf(tmp_path):
    write_llama_gguf(tmp_path / "tiny.gguf")
    (tmp_path / "config.json").write_text(json.dumps(GPT2))
    assert load_model(str(tmp_path)).family == "gpt2"


def test_directory_with_two_ggufs_is_ambiguous(tmp_path):
    write_llama_gguf(tmp_path / "a.gguf")
    write_llama_gguf(tmp_path / "b.gguf")
    with pytest.raises(FrontendError, match=r"several \.gguf files \(a\.gguf, b\.gguf\)"):
        load_model(str(tmp_path))


def test_empty_directory(tmp_path):
    with pytest.raises(FrontendError) as info:
        load_model(str(tmp_path))
    assert str(tmp_path) in str(info.value)
    assert "neither config.json nor a .gguf file" in str(info.value)


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0")
    with pytest.raises(FrontendError, match=r"weights\.bin: unsupported model file type '\.bin'"):
        load_model(str(path))


def test_unknown_preset_name_lists_presets():
    with pytest.raises(FrontendError) as info:
        load_model("bert-huge")
    message = str(info.value)
    assert message.startswith("unknown model 'bert-huge': not a preset (bert-base, bert-large, ")
    assert "smollm2-135m) and no such file" in message


def test_near_miss_suggests_preset():
    with pytest.raises(FrontendError, match=r"did you mean 'gpt2-small'\?"):
        load_model("gpt2-smal")


@pytest.mark.parametrize("name", ["missing.json", "missing.gguf", "models/missing"])
def test_nonexistent_path(tmp_path, name):
    arg = str(tmp_path / name)
    with pytest.raises(FrontendError) as info:
        load_model(arg)
    assert str(info.value) == f"{arg}: no such file"
