"""Float64 reference of the rows a frame computed: the same surviving tokens and heads,
dense float attention (no quantization, no value pruning)."""

from __future__ import annotations

import numpy as np

from spatten_hls.compiler.ir.graph import GraphInfo
from spatten_hls.compiler.sim.inputs import Inputs


def reference_rows(
    inputs: Inputs,
    layer: int,
    info: GraphInfo,
    q_rows: np.ndarray,
    k_rows: np.ndarray,
    heads_alive: np.ndarray,
    out: np.ndarray,
) -> None:
    """Write softmax(q k^T / sqrt(d), causal by position) v into out[h, q_rows]."""
    q, k, v = (inputs[f"{t}{layer}"] for t in "qkv")
    causal = info.causal
    keep = k_rows[None, :] <= q_rows[:, None] if causal else None
    scale = 1.0 / np.sqrt(info.head_dim)
    for head in np.flatnonzero(heads_alive):
        kv = head // info.group_size
        qh = q[head, q_rows].astype(np.float64)
        kh = k[kv, k_rows].astype(np.float64)
        z = (qh @ kh.T) * scale
        if keep is not None:
            z = np.where(keep, z, -np.inf)
        w = np.exp(z - z.max(axis=1, keepdims=True))
        out[head, q_rows] = (w / w.sum(axis=1, keepdims=True)) @ v[kv, k_rows].astype(np.float64)
