"""Hugging Face config.json -> ModelSpec, for each family, and its error messages."""

import json
from pathlib import Path

import pytest

from spatten_hls.compiler.errors import FrontendError
from spatten_hls.compiler.frontend.hf_config import read_hf_config, spec_from_hf_config

BERT = {
    "model_type": "bert",
    "architectures": ["BertModel"],
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "hidden_size": 768,
    "max_position_embeddings": 512,
    "intermediate_size": 3072,
}
GPT2 = {
    "model_type": "gpt2",
    "architectures": ["GPT2LMHeadModel"],
    "n_layer": 12,
    "n_head": 12,
    "n_embd": 768,
    "n_positions": 1024,
    "n_ctx": 1024,
}
SMOLLM2 = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "hidden_size": 576,
    "max_position_embeddings": 8192,
}
# Qwen3-like: head_dim given explicitly and not equal to hidden / heads.
EXPLICIT_HEAD_DIM = {
    "model_type": "llama",
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "hidden_size": 1024,
    "head_dim": 128,
    "max_position_embeddings": 40960,
}


def write_config(directory: Path, cfg, name: str = "config.json") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(cfg, indent=2))
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


def test_bert(tmp_path):
    path = write_config(tmp_path / "bert-base-uncased", BERT)
    spec = read_hf_config(path)
    assert shape(spec) == ("bert", 12, 12, 12, 64, 768, 512, False)
    assert spec.name == "bert-base-uncased"
    assert spec.source == str(path)


def test_gpt2(tmp_path):
    spec = read_hf_config(write_config(tmp_path / "gpt2", GPT2))
    assert shape(spec) == ("gpt2", 12, 12, 12, 64, 768, 1024, True)
    assert spec.name == "gpt2"


def test_gpt2_generic_aliases(tmp_path):
    cfg = {
        "model_type": "gpt2",
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "hidden_size": 1024,
        "max_position_embeddings": 2048,
    }
    spec = read_hf_config(write_config(tmp_path / "m", cfg))
    assert shape(spec) == ("gpt2", 24, 16, 16, 64, 1024, 2048, True)


def test_llama_with_gqa(tmp_path):
    spec = read_hf_config(write_config(tmp_path / "SmolLM2-135M", SMOLLM2))
    assert shape(spec) == ("llama", 30, 9, 3, 64, 576, 8192, True)
    assert spec.name == "SmolLM2-135M"
    assert spec.group_size == 3


def test_llama_with_explicit_head_dim(tmp_path):
    spec = read_hf_config(write_config(tmp_path / "qwen-like", EXPLICIT_HEAD_DIM))
    assert shape(spec) == ("llama", 28, 16, 8, 128, 1024, 40960, True)


def test_llama_kv_heads_default_to_heads_and_null_head_dim_is_derived(tmp_path):
    cfg = {**SMOLLM2, "num_key_value_heads": None, "head_dim": None}
    spec = read_hf_config(write_config(tmp_path / "m", cfg))
    assert (spec.num_heads, spec.num_kv_heads, spec.head_dim) == (9, 9, 64)


@pytest.mark.parametrize("model_type", ["mistral", "qwen2"])
def test_llama_style_decoders(tmp_path, model_type):
    spec = read_hf_config(write_config(tmp_path / "m", {**SMOLLM2, "model_type": model_type}))
    assert shape(spec) == ("llama", 30, 9, 3, 64, 576, 8192, True)


def test_roberta_is_bert_family_without_the_padding_offset(tmp_path):
    cfg = {**BERT, "model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}
    spec = read_hf_config(write_config(tmp_path / "roberta-base", cfg))
    assert shape(spec) == ("bert", 12, 12, 12, 64, 768, 512, False)


def test_distilbert_keys(tmp_path):
    cfg = {
        "model_type": "distilbert",
        "n_layers": 6,
        "n_heads": 12,
        "dim": 768,
        "max_position_embeddings": 512,
    }
    spec = read_hf_config(write_config(tmp_path / "distilbert", cfg))
    assert shape(spec) == ("bert", 6, 12, 12, 64, 768, 512, False)


def test_family_from_architectures_when_model_type_is_absent(tmp_path):
    cfg = {k: v for k, v in SMOLLM2.items() if k != "model_type"}
    spec = read_hf_config(write_config(tmp_path / "m", cfg))
    assert (spec.family, spec.causal, spec.num_kv_heads) == ("llama", True, 3)
    cfg = {k: v for k, v in GPT2.items() if k != "model_type"}
    assert read_hf_config(write_config(tmp_path / "g", cfg)).family == "gpt2"


def test_name_is_file_stem_for_other_json_names(tmp_path):
    spec = read_hf_config(write_config(tmp_path, GPT2, name="tiny-gpt2.json"))
    assert spec.name == "tiny-gpt2"


def test_spec_from_dict_uses_given_name_and_source():
    spec = spec_from_hf_config(BERT, "inline", name="my-bert")
    assert (spec.name, spec.source, spec.num_layers) == ("my-bert", "inline", 12)


# ---- errors: one line naming the file and the key/value at fault ----


def error_of(path: Path) -> str:
    with pytest.raises(FrontendError) as info:
        read_hf_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_invalid_json_reports_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "model_type": "bert",\n  "num_hidden_layers": 12,,\n}\n')
    message = error_of(path)
    assert "invalid JSON" in message
    assert "line 3" in message


def test_top_level_must_be_an_object(tmp_path):
    path = write_config(tmp_path, [1, 2])
    assert "JSON object" in error_of(path)


def test_missing_key(tmp_path):
    cfg = {k: v for k, v in SMOLLM2.items() if k != "num_attention_heads"}
    assert "missing required key 'num_attention_heads'" in error_of(write_config(tmp_path, cfg))


def test_missing_gpt2_key_lists_aliases(tmp_path):
    cfg = {k: v for k, v in GPT2.items() if k != "n_layer"}
    message = error_of(write_config(tmp_path, cfg))
    assert "missing required key 'n_layer'" in message
    assert "'num_hidden_layers'" in message


def test_missing_model_type_and_architectures(tmp_path):
    cfg = {k: v for k, v in BERT.items() if k not in ("model_type", "architectures")}
    assert "missing required key 'model_type'" in error_of(write_config(tmp_path, cfg))


def test_string_where_int_expected(tmp_path):
    message = error_of(write_config(tmp_path, {**BERT, "num_hidden_layers": "12"}))
    assert "'num_hidden_layers'" in message
    assert "must be an integer" in message
    assert '"12"' in message


def test_bool_is_not_an_int(tmp_path):
    message = error_of(write_config(tmp_path, {**GPT2, "n_head": True}))
    assert "'n_head' must be an integer, got true" in message


def test_float_is_not_an_int(tmp_path):
    message = error_of(write_config(tmp_path, {**BERT, "hidden_size": 768.0}))
    assert "'hidden_size' must be an integer, got 768.0" in message


def test_zero_layers(tmp_path):
    message = error_of(write_config(tmp_path, {**BERT, "num_hidden_layers": 0}))
    assert "'num_hidden_layers' must be positive, got 0" in message


def test_unsupported_model_type_lists_supported(tmp_path):
    message = error_of(write_config(tmp_path, {**BERT, "model_type": "t5"}))
    assert "unsupported model_type 't5'" in message
    for supported in ("bert", "gpt2", "llama"):
        assert supported in message


def test_unsupported_architecture(tmp_path):
    cfg = {k: v for k, v in BERT.items() if k != "model_type"}
    cfg["architectures"] = ["T5ForConditionalGeneration"]
    assert "unsupported architecture 'T5ForConditionalGeneration'" in error_of(
        write_config(tmp_path, cfg)
    )


def test_hidden_not_divisible_by_heads(tmp_path):
    message = error_of(write_config(tmp_path, {**BERT, "hidden_size": 770}))
    assert "'hidden_size' = 770 is not divisible by 'num_attention_heads' = 12" in message


def test_heads_not_multiple_of_kv_heads(tmp_path):
    message = error_of(write_config(tmp_path, {**SMOLLM2, "num_key_value_heads": 2}))
    assert "'num_attention_heads' = 9 is not a multiple of 'num_key_value_heads' = 2" in message


def test_more_kv_heads_than_heads(tmp_path):
    message = error_of(write_config(tmp_path, {**SMOLLM2, "num_key_value_heads": 18}))
    assert "'num_key_value_heads' = 18" in message


def test_not_utf8(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"model_type": "\xff"}')
    assert "not UTF-8" in error_of(path)


def test_nonexistent_file(tmp_path):
    assert "no such model config" in error_of(tmp_path / "nope" / "config.json")
