"""SmolLM2-135M-Instruct (Q4_1 GGUF) in numpy: perplexity, greedy text, the hook, loading."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

pytest.importorskip("tokenizers")

from spatten_hls.compiler.realmodels import llama
from spatten_hls.compiler.realmodels.attention import AttentionOutput, dense_attention
from spatten_hls.compiler.realmodels.text import default_text

# sha256 (first 16 hex digits) of the first 256 token ids of default_text() under CPython
# 3.11, where the span's perplexity measured 19.5908 (numpy float32; a float64 rotate-half
# reference gave the same to 1e-6).
SPAN_SHA = "da22a8db2760548a"
SPAN_PPL = 19.5908


@pytest.fixture(scope="module")
def span(smollm2):
    ids = smollm2.encode(default_text())[:256]
    assert len(ids) == 256
    return ids


def test_config_and_spec(smollm2):
    c = smollm2.config
    assert (
        c.num_layers,
        c.num_heads,
        c.num_kv_heads,
        c.head_dim,
        c.hidden_size,
        c.ffn_size,
        c.vocab_size,
    ) == (30, 9, 3, 64, 576, 1536, 49152)
    assert c.rope_base == 100000.0
    from spatten_hls.compiler.frontend import PRESETS

    preset = PRESETS["smollm2-135m"]
    assert smollm2.spec.name == "smollm2-135m"
    for key in (
        "family",
        "num_layers",
        "num_heads",
        "num_kv_heads",
        "head_dim",
        "hidden_size",
        "max_positions",
        "causal",
    ):
        assert getattr(smollm2.spec, key) == getattr(preset, key)
    assert smollm2.weights["output.weight"] is smollm2.weights["token_embd.weight"]  # tied


def test_perplexity_on_pydoc_span(smollm2, span):
    """shared/REAL_MODELS.md measured 18.16 on 8x256 tokens of other pydoc topics.

    A single 256-token span varies around that: 16 consecutive spans of default_text() gave
    12.9 .. 25.6 (8x256 of them: 17.06). So the tolerance is a factor 1.5 either way of 18.16;
    when the span is the exact one measured (same CPython text), the value is also pinned.
    """
    ppl = llama.perplexity(smollm2, span)
    assert 18.16 / 1.5 < ppl < 18.16 * 1.5
    if hashlib.sha256(span.astype("<i8").tobytes()).hexdigest()[:16] == SPAN_SHA:
        assert ppl == pytest.approx(SPAN_PPL, rel=1e-4)


def test_chunked_perplexity(smollm2, span):
    """Two chunks of 128 = the mean NLL over both halves, each starting at position 0."""
    halves = [llama.perplexity(smollm2, span[:128]), llama.perplexity(smollm2, span[128:])]
    chunked = llama.perplexity(smollm2, span, chunk=128)
    assert chunked == pytest.approx(np.exp(np.mean(np.log(halves))), rel=1e-9)


def test_greedy_paris(smollm2):
    assert smollm2.encode("The capital of France is").tolist() == [504, 3575, 282, 4649, 314]
    assert llama.greedy(smollm2, "The capital of France is") == " Paris"


def test_tokenizer_round_trip_and_digits(smollm2):
    text = "In 2024, x = 12345 costs $3.50 -- naïve café."
    ids = smollm2.encode(text)
    assert smollm2.decode(ids) == text
    digits = [smollm2.decode([i]) for i in smollm2.encode("12345")]
    assert digits == ["1", "2", "3", "4", "5"]  # the smollm pre-tokenizer splits digits
    assert smollm2.encode("<|im_start|>").tolist() == [1]  # special tokens stay atomic


def test_hook_shapes_and_zero_hook(smollm2):
    ids = smollm2.encode("The quick brown fox jumps over the lazy dog.")
    calls = []

    def record(call):
        calls.append(call)
        return dense_attention(call)

    dense = llama.forward(smollm2, ids, record)
    n = len(ids)
    assert [c.layer for c in calls] == list(range(30))
    for c in calls:
        assert c.q.shape == (9, n, 64) and c.k.shape == c.v.shape == (3, n, 64)
        assert c.causal and c.q.dtype == np.float32 and c.group_size == 3
    assert np.array_equal(llama.forward(smollm2, ids), dense)  # deterministic
    zeros = llama.forward(smollm2, ids, lambda call: np.zeros_like(call.q))
    assert np.abs(zeros - dense).max() > 1.0


def test_key_pruning(smollm2):
    ids = smollm2.encode("The quick brown fox jumps over the lazy dog.")
    dense = llama.forward(smollm2, ids)
    keep_all = llama.forward(
        smollm2, ids, lambda c: AttentionOutput(dense_attention(c), c.k_positions)
    )
    assert np.array_equal(keep_all, dense)
    seen = []

    def drop_key_1(call):
        seen.append(call.k_positions.tolist())
        keep = np.delete(call.k_positions, 1) if call.layer == 0 else None
        return AttentionOutput(dense_attention(call), keep)

    pruned = llama.forward(smollm2, ids, drop_key_1)
    assert 1 not in seen[1] and all(s == seen[1] for s in seen[1:])
    assert np.array_equal(pruned[0], dense[0])  # position 0 never attends key 1
    assert np.abs(pruned[1:] - dense[1:]).max(axis=1).min() > 1e-3  # every later one does


def test_loader_is_deterministic(smollm2):
    st = smollm2.source.stat()
    again = llama._load_cached.__wrapped__(str(smollm2.source), (st.st_mtime_ns, st.st_size))
    assert again is not smollm2
    assert again.weights.keys() == smollm2.weights.keys()
    assert all(np.array_equal(again.weights[k], w) for k, w in smollm2.weights.items())
    assert np.array_equal(again.rope_inv_freq, smollm2.rope_inv_freq)
    text = "Deterministic loading, twice."
    assert again.encode(text).tolist() == smollm2.encode(text).tolist()
    assert llama.load_llama() is smollm2  # cached per process
