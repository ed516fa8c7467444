"""The dense attention hook against a naive float64 softmax, and the hook checks."""

from __future__ import annotations

import numpy as np
import pytest

from spatten_hls.compiler.errors import SimulationError
from spatten_hls.compiler.realmodels.attention import (
    AttentionCall,
    AttentionOutput,
    dense_attention,
    run_hook,
)


def _call(heads=6, kv_heads=2, n=7, d=8, causal=True, k_positions=None, seed=0):
    rng = np.random.default_rng(seed)
    q_pos = np.arange(n, dtype=np.int64)
    k_pos = q_pos if k_positions is None else np.asarray(k_positions, dtype=np.int64)
    q = rng.standard_normal((heads, n, d)).astype(np.float32)
    k = rng.standard_normal((kv_heads, len(k_pos), d)).astype(np.float32)
    v = rng.standard_normal((kv_heads, len(k_pos), d)).astype(np.float32)
    return AttentionCall(0, 0, q, k, v, q_pos, k_pos, causal)


def _naive(call: AttentionCall) -> np.ndarray:
    g = call.group_size
    out = np.zeros(call.q.shape)
    for h in range(call.q.shape[0]):
        q, k, v = (t.astype(np.float64) for t in (call.q[h], call.k[h // g], call.v[h // g]))
        s = q @ k.T / np.sqrt(q.shape[1])
        if call.causal:
            s[call.k_positions[None, :] > call.q_positions[:, None]] = -np.inf
        for i, row in enumerate(s):
            if np.isfinite(row).any():
                p = np.exp(row - row.max())
                out[h, i] = p / p.sum() @ v
    return out


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kv_heads", [1, 2, 6])
def test_dense_matches_naive_softmax(causal, kv_heads):
    call = _call(kv_heads=kv_heads, causal=causal)
    out = dense_attention(call)
    assert out.dtype == np.float32 and out.shape == call.q.shape
    np.testing.assert_allclose(out, _naive(call), atol=2e-6)


def test_pruned_keys_and_fully_masked_rows():
    # Keys 0 and 3 are gone: query 0 sees no key at all (zero context), the rest see fewer.
    call = _call(k_positions=[1, 2, 4, 5, 6])
    out = dense_attention(call)
    assert np.all(out[:, 0] == 0)
    np.testing.assert_allclose(out, _naive(call), atol=2e-6)


def test_run_hook_checks_shape_and_keep():
    call = _call()
    with pytest.raises(SimulationError, match=r"layer 0, sequence 0.*shape"):
        run_hook(lambda c: c.q[:, :2], call)
    with pytest.raises(SimulationError, match="keep"):
        run_hook(lambda c: AttentionOutput(dense_attention(c), np.array([0, 99])), call)
    out, keep = run_hook(lambda c: AttentionOutput(dense_attention(c), [3, 1]), call)
    assert keep.tolist() == [1, 3] and out.shape == call.q.shape
