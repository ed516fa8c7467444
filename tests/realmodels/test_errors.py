"""Loading user model files: a tiny BERT directory and a tiny LLaMA GGUF, and every error.

Every error is a FrontendError with a one-line message naming the offending file.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import gguf
import numpy as np
import pytest

pytest.importorskip("safetensors")
pytest.importorskip("tokenizers")

from safetensors.numpy import save_file
from tokenizers import pre_tokenizers

from spatten_hls.compiler.errors import FrontendError
from spatten_hls.compiler.realmodels import bert, llama, locate

TINY_BERT = {
    "model_type": "bert",
    "architectures": ["BertForMaskedLM"],
    "vocab_size": 30522,
    "hidden_size": 8,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 16,
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "hidden_act": "gelu",
    "pad_token_id": 0,
}


def _raises(fn, path: Path, match: str) -> None:
    with pytest.raises(FrontendError, match=match) as exc:
        fn(path)
    message = str(exc.value)
    assert "\n" not in message and path.name in message, message


@pytest.fixture
def bert_dir(tmp_path: Path, minilm_path: Path) -> Path:
    """A random 1-layer BERT as a task model would save it: `bert.` prefix, TF gamma/beta."""
    d = tmp_path / "tiny-bert"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(TINY_BERT))
    shutil.copy(minilm_path / "tokenizer.json", d / "tokenizer.json")
    rng = np.random.default_rng(0)
    cfg = bert.parse_config(TINY_BERT, d / "config.json")
    tensors = {}
    for name, shape in bert.expected_shapes(cfg).items():
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma")
        name = name.replace("LayerNorm.bias", "LayerNorm.beta")
        tensors["bert." + name] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    tensors["cls.predictions.bias"] = np.zeros(30522, np.float32)  # ignored
    save_file(tensors, str(d / "model.safetensors"))
    return d


def test_user_bert_dir_loads(bert_dir):
    model = bert.load_bert(bert_dir / "config.json")
    assert model.name == "tiny-bert" and model.spec.num_heads == 2
    emb = model.embed(["hello world", "a second sentence"])
    assert emb.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-6)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"model_type": "roberta"}, "unsupported model family 'roberta'"),
        ({"model_type": "gpt2"}, "unsupported model family 'gpt2'"),
        ({"hidden_act": "gelu_new"}, "hidden_act"),
        ({"num_attention_heads": 3}, "multiple"),
        ({"hidden_size": "8"}, "hidden_size"),
    ],
)
def test_bad_bert_config(bert_dir, change, match):
    (bert_dir / "config.json").write_text(json.dumps({**TINY_BERT, **change}))
    _raises(bert.load_bert, bert_dir / "config.json", match)


def test_bert_config_not_json(bert_dir):
    (bert_dir / "config.json").write_text("{not json")
    _raises(bert.load_bert, bert_dir / "config.json", "invalid JSON")


def test_bert_missing_or_corrupt_weights(bert_dir):
    weights = bert_dir / "model.safetensors"
    weights.write_bytes(b"\x00" * 7 + b"garbage" * 20)
    _raises(lambda _: bert.load_bert(bert_dir), weights, "not a readable safetensors")
    weights.unlink()
    _raises(lambda _: bert.load_bert(bert_dir), weights, "no such file|no such safetensors")


def test_bert_weights_disagree_with_config(bert_dir):
    (bert_dir / "config.json").write_text(json.dumps({**TINY_BERT, "num_hidden_layers": 2}))
    _raises(
        lambda _: bert.load_bert(bert_dir),
        bert_dir / "model.safetensors",
        "missing tensor 'encoder.layer.1",
    )
    (bert_dir / "config.json").write_text(json.dumps({**TINY_BERT, "intermediate_size": 32}))
    _raises(lambda _: bert.load_bert(bert_dir), bert_dir / "model.safetensors", "has shape")


def test_bert_tokenizer_and_directory(bert_dir, tmp_path):
    (bert_dir / "tokenizer.json").write_text("{}")
    _raises(lambda _: bert.load_bert(bert_dir), bert_dir / "tokenizer.json", "tokenizer")
    (bert_dir / "tokenizer.json").unlink()
    _raises(lambda _: bert.load_bert(bert_dir), bert_dir / "tokenizer.json", "no such file")
    _raises(bert.load_bert, tmp_path / "nowhere", "no such model directory")
    a_file = tmp_path / "weights.bin"
    a_file.write_bytes(b"")
    _raises(bert.load_bert, a_file, "not a model directory")


# --- GGUF ----------------------------------------------------------------------------------


def _write_gguf(
    path: Path, arch: str = "llama", *, tensors: bool = True, pre: str = "smollm"
) -> Path:
    """A random 1-block LLaMA (hidden 8, 2 query heads, 1 KV head) with a byte-level vocab."""
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    tokens = sorted(pre_tokenizers.ByteLevel.alphabet())
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_merges([])
    w.add_token_types([1] * len(tokens))
    if tensors:
        rng = np.random.default_rng(0)
        shapes = {
            "token_embd.weight": (256, 8),
            "output_norm.weight": (8,),
            "blk.0.attn_norm.weight": (8,),
            "blk.0.attn_q.weight": (8, 8),
            "blk.0.attn_k.weight": (4, 8),
            "blk.0.attn_v.weight": (4, 8),
            "blk.0.attn_output.weight": (8, 8),
            "blk.0.ffn_norm.weight": (8,),
            "blk.0.ffn_gate.weight": (16, 8),
            "blk.0.ffn_up.weight": (16, 8),
            "blk.0.ffn_down.weight": (8, 16),
        }
        for name, shape in shapes.items():
            w.add_tensor(name, rng.standard_normal(shape).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_user_gguf_loads(tmp_path):
    model = llama.load_llama(_write_gguf(tmp_path / "tiny.gguf"))
    assert model.config.head_dim == 4 and model.config.vocab_size == 256
    ids = model.encode("hi 42")
    assert model.decode(ids) == "hi 42"
    logits = llama.forward(model, ids)
    assert logits.shape == (len(ids), 256) and np.isfinite(logits).all()
    assert np.isfinite(llama.perplexity(model, ids))


def test_gguf_errors(tmp_path):
    _raises(llama.load_llama, tmp_path / "missing.gguf", "no such file")
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    _raises(llama.load_llama, empty, "not a valid GGUF")
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF" + b"\xff" * 100)
    _raises(llama.load_llama, garbage, "not a valid GGUF")
    _raises(
        llama.load_llama,
        _write_gguf(tmp_path / "gpt2.gguf", "gpt2"),
        "unsupported architecture 'gpt2'",
    )
    _raises(
        llama.load_llama,
        _write_gguf(tmp_path / "empty-llama.gguf", tensors=False),
        "missing tensor 'token_embd.weight'",
    )


def test_truncated_gguf(tmp_path, smollm2_path):
    truncated = tmp_path / "truncated.gguf"
    with open(smollm2_path, "rb") as f:
        truncated.write_bytes(f.read(4 << 20))
    _raises(llama.load_llama, truncated, "not a valid GGUF")


def test_unsupported_pre_tokenizer(tmp_path):
    model = llama.load_llama(_write_gguf(tmp_path / "pre.gguf", pre="llama-bpe"))
    assert llama.forward(model, [1, 2, 3]).shape == (3, 256)  # the weights still work
    _raises(lambda _: model.tokenizer, tmp_path / "pre.gguf", "tokenizer.ggml.pre 'llama-bpe'")


def test_missing_package():
    with pytest.raises(FrontendError, match=re.escape("pip install --no-deps some-pkg==1.0")):
        locate.package_dir("spatten_no_such_package", "some-pkg==1.0")
