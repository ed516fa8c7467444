"""all-MiniLM-L6-v2 in numpy: reference embeddings, properties, the attention hook, loading.

Reference values: `REF_FIRST8` / `REF_SUMS` are the first 8 components and the sum of all 384
components of the float64 run of this same code (`load_bert(dtype=np.float64).embed(SENTENCES)`,
printed with 8 decimals). The float32 run is ~1e-7 from it (measured 9.1e-8), as
shared/REAL_MODELS.md reports for numpy float32 against torch/sentence-transformers (1.0e-7);
so 1e-6 leaves margin for BLAS blocking differences and still catches any real bug.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("safetensors")
pytest.importorskip("tokenizers")

from spatten_hls.compiler.realmodels import bert
from spatten_hls.compiler.realmodels.attention import AttentionOutput, dense_attention

SENTENCES = [
    "A man is playing a guitar.",
    "Someone is playing an acoustic guitar.",
    "The stock market fell sharply on Monday.",
    "A cat is sleeping on the windowsill.",
    "Python is a popular programming language.",
    "It rained all weekend in Paris.",
    "The quick brown fox jumps over the lazy dog.",
    "Neural networks learn representations from data.",
]
REF_FIRST8 = np.array(
    [
        [
            0.02166408,
            -0.00486420,
            -0.00964910,
            -0.06340125,
            -0.16749353,
            0.00467641,
            0.08059980,
            -0.02414212,
        ],
        [
            0.02071520,
            0.00866338,
            0.02333698,
            -0.02767011,
            -0.14211003,
            0.02899899,
            0.06974896,
            0.00843047,
        ],
        [
            0.04524583,
            -0.01358028,
            0.06935949,
            0.03798808,
            -0.01780935,
            0.02102722,
            -0.06148897,
            0.05096923,
        ],
        [
            0.09449522,
            -0.00525644,
            -0.05013337,
            0.10147306,
            -0.06521050,
            0.01487654,
            -0.00643815,
            0.01452122,
        ],
        [
            -0.03083172,
            -0.01335986,
            -0.00917531,
            0.01178767,
            -0.03829640,
            -0.11576739,
            0.00977412,
            0.09266243,
        ],
        [
            0.07043397,
            0.02324149,
            0.12867092,
            -0.01710560,
            0.10829176,
            -0.03843113,
            -0.01928928,
            -0.05797331,
        ],
        [
            0.04393354,
            0.05893442,
            0.04817837,
            0.07754812,
            0.02674440,
            -0.03762958,
            -0.00260510,
            -0.05994306,
        ],
        [
            -0.06015422,
            -0.07633531,
            0.02695965,
            0.05866153,
            0.01973569,
            0.06828690,
            0.01774589,
            -0.06538623,
        ],
    ]
)
REF_SUMS = np.array(
    [
        0.04026418,
        -0.06125684,
        0.05283814,
        0.28393060,
        0.39610369,
        0.09995462,
        0.15368247,
        0.23849984,
    ]
)


@pytest.fixture(scope="module")
def dense(minilm):
    return minilm.embed(SENTENCES)


def test_shape_and_spec(minilm):
    c = minilm.config
    assert (c.num_layers, c.num_heads, c.head_dim, c.hidden_size) == (6, 12, 32, 384)
    from spatten_hls.compiler.frontend import PRESETS

    preset = PRESETS["minilm-l6"]
    assert minilm.spec.name == "minilm-l6"
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
        assert getattr(minilm.spec, key) == getattr(preset, key)


def test_embeddings_match_reference(dense, minilm64):
    assert dense.dtype == np.float32 and dense.shape == (8, 384)
    np.testing.assert_allclose(np.linalg.norm(dense, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(dense[:, :8], REF_FIRST8, atol=1e-6)
    np.testing.assert_allclose(dense.sum(axis=1), REF_SUMS, atol=2e-6)
    # The float64 run of the same code, live: float32 rounding only.
    assert np.abs(dense - minilm64.embed(SENTENCES)).max() < 1e-6


def test_paraphrase_closer_than_unrelated(dense):
    cos = dense @ dense.T
    assert cos[0, 1] > 0.7  # guitar / guitar (measured 0.804)
    unrelated = cos[np.triu_indices(8, 1)][1:]  # every pair except (0, 1)
    assert cos[0, 1] > unrelated.max() + 0.4


def test_deterministic(minilm, dense):
    again = bert._load_cached.__wrapped__(str(minilm.source), "float32", None, ())
    assert again is not minilm
    assert again.weights.keys() == minilm.weights.keys()
    assert all(np.array_equal(again.weights[k], w) for k, w in minilm.weights.items())
    assert np.array_equal(again.embed(SENTENCES), dense)
    assert np.array_equal(minilm.embed(SENTENCES), dense)
    assert bert.load_bert() is minilm  # cached per process


def test_tokenize_pads_and_truncates(minilm):
    batch = minilm.tokenize(["short", "word " * 400])
    assert batch.ids.shape == (2, 256) and batch.lengths.tolist() == [3, 256]
    assert batch.ids[0, 0] == 101 and batch.ids[0, 2] == 102 and batch.ids[0, 3] == 0  # [CLS] [SEP]


def test_erf_and_gelu():
    x = np.linspace(-8, 8, 20001)
    exact = np.array([math.erf(v) for v in x])
    assert np.abs(bert.erf(x.copy()) - exact).max() <= 1.5e-7  # the approximation's bound
    # float32 evaluation: 1 - poly*exp rounds to float32 near erf ~ 0 (measured 5.3e-7 there,
    # where GELU multiplies it by x/2 ~ 0).
    x32 = x.astype(np.float32)
    exact32 = np.array([math.erf(float(v)) for v in x32])
    assert np.abs(bert.erf(x32).astype(np.float64) - exact32).max() <= 6e-7
    gelu_exact = (
        0.5
        * x32.astype(np.float64)
        * (1 + np.array([math.erf(float(v) / math.sqrt(2)) for v in x32]))
    )
    err = np.abs(bert.gelu(x32).astype(np.float64) - gelu_exact)
    assert (err / np.maximum(1, np.abs(x))).max() <= 2.5e-7  # measured 1.9e-7


def test_hook_receives_per_sequence_heads(minilm):
    calls = []

    def record(call):
        calls.append(call)
        return dense_attention(call)

    batch = minilm.tokenize(SENTENCES[:3])
    bert.forward(minilm, batch, record)
    assert [(c.layer, c.sequence) for c in calls] == [(i, s) for i in range(6) for s in range(3)]
    for c in calls:
        n = batch.lengths[c.sequence]
        assert c.q.shape == c.k.shape == c.v.shape == (12, n, 32) and c.q.dtype == np.float32
        assert c.q_positions.tolist() == list(range(n)) and not c.causal


def test_zero_hook_changes_output(minilm, dense):
    zeros = minilm.embed(SENTENCES, lambda call: np.zeros_like(call.q))
    assert np.abs(zeros - dense).max() > 0.1


def test_token_pruning_removes_rows(minilm, dense):
    keep_all = minilm.embed(SENTENCES, lambda c: AttentionOutput(dense_attention(c), c.k_positions))
    assert np.array_equal(keep_all, dense)

    seen = []

    def prune_after_layer_1(call):
        seen.append((call.layer, call.sequence, call.q.shape[1]))
        keep = call.k_positions[: (len(call.k_positions) + 1) // 2] if call.layer == 1 else None
        return AttentionOutput(dense_attention(call), keep)

    batch = minilm.tokenize(SENTENCES)
    out = bert.forward(minilm, batch, prune_after_layer_1)
    halves = [(n + 1) // 2 for n in batch.lengths]
    assert [len(p) for p in out.positions] == halves
    assert [n for layer, _, n in seen if layer == 2] == halves
    pooled = out.pooled()
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1, atol=1e-6)
    cos = np.sum(pooled * dense, axis=1)
    assert 0.5 < cos.min() and cos.max() < 1 - 1e-4  # changed, but still the same sentences
