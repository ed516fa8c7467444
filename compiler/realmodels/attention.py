"""The pluggable attention hook shared by the BERT and LLaMA forward passes.

Contract
--------
Both forwards (`bert.forward`, `llama.forward`) compute everything outside the attention core
themselves (embeddings, projections, RoPE, norms, FFN) and call an `AttentionFn` once per
(layer, sequence), layer-major: every sequence of layer 0, then every sequence of layer 1, ...
The call gets one `AttentionCall`:

* `q` [heads, n_q, head_dim], `k` and `v` [kv_heads, n_k, head_dim], C-contiguous, in the
  model's compute dtype (float32 unless the model was loaded with `dtype=np.float64`). `q` is
  not pre-scaled; the scale is 1/sqrt(head_dim). Grouped-query attention is *not* expanded:
  query head `h` reads KV head `h // (heads // kv_heads)` (the simulator's `q{L}`/`k{L}`/`v{L}`
  layout, compiler/sim/inputs.py). LLaMA's q and k already carry RoPE.
* `q_positions` [n_q], `k_positions` [n_k]: int64, ascending, the *original* token index of
  every row (0 = first token of the sequence, CLS for BERT). Padding never reaches the hook:
  each sequence arrives with its real tokens only, so no mask or valid length is needed.
* `causal`: key j is visible to query i iff `k_positions[j] <= q_positions[i]` (LLaMA).
  BERT calls are not causal: every key is visible to every query.

The hook returns the context [heads, n_q, head_dim] (softmax(q k^T / sqrt(d)) v per head), or an
`AttentionOutput(context, keep)` to prune tokens from this layer on:

* `keep`: the original positions (a subset of `k_positions`) that stay alive for the *later*
  layers. BERT: the hidden-state rows of the other tokens are removed after
  this layer (the FFN of this layer still runs on them, which does not matter: it is per token),
  so later layers get fewer rows in q, k and v, and the sentence embedding mean-pools the
  survivors. LLaMA: only keys/values are removed for later layers (the queries of all positions
  are still computed, every position needs its logits), i.e. SpAtten's KV-cache pruning; a
  query whose visible keys are all pruned (its own included) gets a zero context.
* A pruned head is expressed by returning zeros for its rows; nothing else is needed.

The hook may be a stateful object (pruning state, importance accumulators, statistics): the
call order above is fixed and `AttentionCall.sequence` names the batch entry (the chunk, for
LLaMA perplexity). This is how the bit-accurate simulator plugs in layer by layer (notes in
the `compiler.realmodels` package docstring).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from spatten_hls.compiler.errors import SimulationError


@dataclass(frozen=True)
class AttentionCall:
    """One (layer, sequence) attention problem; see the module docstring for the contract."""

    layer: int
    sequence: int
    q: np.ndarray  # [heads, n_q, head_dim]
    k: np.ndarray  # [kv_heads, n_k, head_dim]
    v: np.ndarray  # [kv_heads, n_k, head_dim]
    q_positions: np.ndarray  # int64 [n_q], original token indices, ascending
    k_positions: np.ndarray  # int64 [n_k]
    causal: bool

    @property
    def group_size(self) -> int:
        """Query heads per KV head."""
        return self.q.shape[0] // self.k.shape[0]


@dataclass(frozen=True)
class AttentionOutput:
    """A context plus the original positions that stay alive for the later layers."""

    context: np.ndarray
    keep: np.ndarray | None = None


AttentionFn = Callable[[AttentionCall], "np.ndarray | AttentionOutput"]


def dense_attention(call: AttentionCall) -> np.ndarray:
    """Dense softmax attention in the inputs' dtype (the default hook).

    Rows whose keys are all masked (possible only after key pruning) get a zero context.
    """
    q, k, v = call.q, call.k, call.v
    heads, n_q, d = q.shape
    kv_heads, n_k, _ = k.shape
    g = heads // kv_heads
    dtype = q.dtype
    # [kv, g*n_q, d] @ [kv, d, n_k]: the group's query heads share one K (no repeat).
    s = q.reshape(kv_heads, g * n_q, d) @ k.transpose(0, 2, 1)
    s *= dtype.type(1.0 / np.sqrt(d))
    s = s.reshape(kv_heads, g, n_q, n_k)
    if call.causal:
        hidden = call.k_positions[None, :] > call.q_positions[:, None]
        if hidden.any():
            s[:, :, hidden] = -np.inf
    m = s.max(axis=-1, keepdims=True)
    m[~np.isfinite(m)] = 0
    s -= m
    np.exp(s, out=s)
    total = s.sum(axis=-1, keepdims=True)
    total[total == 0] = 1
    s /= total
    out = s.reshape(kv_heads, g * n_q, n_k) @ v
    return out.reshape(heads, n_q, d)


def run_hook(attention: AttentionFn, call: AttentionCall) -> tuple[np.ndarray, np.ndarray | None]:
    """Call the hook and check what it returned: (context, keep or None)."""
    out = attention(call)
    keep = None
    if isinstance(out, AttentionOutput):
        out, keep = out.context, out.keep
    where = f"attention hook (layer {call.layer}, sequence {call.sequence})"
    expected = call.q.shape
    if not isinstance(out, np.ndarray) or out.shape != expected:
        got = out.shape if isinstance(out, np.ndarray) else type(out).__name__
        raise SimulationError(f"{where} returned {got}, expected an array of shape {expected}")
    if keep is not None:
        keep = np.asarray(keep, dtype=np.int64)
        if (
            keep.ndim != 1
            or not np.isin(keep, call.k_positions).all()
            or len(np.unique(keep)) != len(keep)
        ):
            raise SimulationError(f"{where}: keep must list distinct positions out of k_positions")
        keep = np.sort(keep)
    return out.astype(call.q.dtype, copy=False), keep
