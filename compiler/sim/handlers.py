"""Op handlers of the simulator for the dense datapath: one per op kind, each calling its
kernel in `kernels/`.

A handler receives the frame (live query and key rows, live heads, the layer's codes, DRAM
counters), its op, its operand values and the operand and result types. Values are numpy
arrays of integer codes held in float64 (exact), or `PendingScores`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from spatten_hls.compiler.ir.ops import (
    CausalMask,
    HeadConcat,
    LoadK,
    LoadQ,
    LoadV,
    MatMulPV,
    MatMulQK,
    Op,
    Scale,
    Softmax,
)
from spatten_hls.compiler.ir.types import TensorType
from spatten_hls.compiler.sim.frame import Frame
from spatten_hls.kernels.fused import (
    pv_accumulate_f64,
    qk_accumulate_f64,
    scaled_softmax_visible,
)
from spatten_hls.kernels.mask import mask_beyond
from spatten_hls.kernels.pv import requantize_output
from spatten_hls.kernels.scale import scale_scores
from spatten_hls.kernels.softmax import softmax_rows
from spatten_hls.kernels.tables import softmax_tables

Handler = Callable[[Frame, Op, list, list[TensorType], TensorType], object]
PARALLEL_MIN_ROWS = 16


@dataclass(frozen=True)
class PendingScores:
    """Score codes not yet materialized: scale (m, sh), then optionally the causal mask.

    Scale and mask handlers return this instead of a matrix so that the softmax handler can
    run the fused kernel (one pass over memory, bit-identical to the chain); any other
    consumer calls `materialize()` and gets exactly what the unfused kernels give.
    """

    acc: np.ndarray  # exact integer Q·K^T accumulator, held in float64
    m: int
    sh: int
    visible: np.ndarray | None = None  # with the causal mask: keys seen by each row

    def materialize(self) -> np.ndarray:
        scores = scale_scores(self.acc.astype(np.int64), self.m, self.sh)
        return scores if self.visible is None else mask_beyond(scores, self.visible)


@dataclass(frozen=True)
class PrunedProbs:
    """Probabilities after local value pruning, with the V rows (key columns) they use."""

    probs: np.ndarray
    fetched: np.ndarray  # bool [pass, key column]: the rows of each pass (Frame.row_pass)


def score_multiplier(f: Frame, head: int) -> tuple[int, int]:
    """(M, sh) of the head's score scaling, formed with the layer's codes (quantized.py)."""
    return int(f.codes.mult[head]), int(f.codes.shift[head])


# DRAM traffic is not counted here: sim/traffic.py applies the design's fetch rules to what
# the frame did.
def _load_q(f: Frame, op: LoadQ, args: list, ins: list, out: TensorType) -> np.ndarray:
    return f.codes.q[op.head, f.q_index]


def _load_k(f: Frame, op: LoadK, args: list, ins: list, out: TensorType) -> np.ndarray:
    return np.ascontiguousarray(f.codes.k_t[op.kv_head][:, f.k_index]).T


def _load_v(f: Frame, op: LoadV, args: list, ins: list, out: TensorType) -> np.ndarray:
    return f.codes.v[op.kv_head, f.k_index]


def _qk(f: Frame, op: MatMulQK, args: list, ins: list, out: TensorType) -> np.ndarray:
    q_bits, k_bits = (t.dtype.width for t in ins)
    buffer = f.pool.take((args[0].shape[0], args[1].shape[0]))
    return qk_accumulate_f64(args[0], args[1], q_bits, k_bits, out=buffer)


def _scale(f: Frame, op: Scale, args: list, ins: list, out: TensorType) -> PendingScores:
    return PendingScores(args[0], *score_multiplier(f, op.head))


def _mask(f: Frame, op: CausalMask, args: list, ins: list, out: TensorType) -> PendingScores:
    return dataclasses.replace(args[0], visible=f.visible)


def _softmax(f: Frame, op: Softmax, args: list, ins: list, out: TensorType) -> np.ndarray:
    scores = args[0]
    if isinstance(scores, PendingScores):
        visible = (
            scores.visible
            if scores.visible is not None
            else np.full(scores.acc.shape[0], scores.acc.shape[1], dtype=np.int64)
        )
        # A thread team costs more than a few rows (decode steps have one) take.
        threads = not f.in_worker and scores.acc.shape[0] >= PARALLEL_MIN_ROWS
        return scaled_softmax_visible(
            scores.acc,
            scores.m,
            scores.sh,
            visible,
            *softmax_tables(),
            out=f.pool.take(scores.acc.shape),
            threads=threads,
        )
    return softmax_rows(scores, *softmax_tables()).astype(np.float64)


def _pv(f: Frame, op: MatMulPV, args: list, ins: list, out: TensorType) -> np.ndarray:
    probs, v = args
    if isinstance(probs, PrunedProbs):
        used, probs = probs.fetched, probs.probs
    else:  # every visible key's V row is multiplied, in the row's pass
        passes = f.row_pass(op.head)
        keys = np.arange(len(f.k_rows))
        used = np.zeros((2, len(f.k_rows)), dtype=np.bool_)
        for p in (0, 1):
            if (passes == p).any():
                used[p] = keys < int(f.visible[passes == p].max())
        f.values_fetched += int(f.visible.sum())
    for p in (0, 1):
        f.use_v((p, op.kv_head), used[p])
    acc = pv_accumulate_f64(probs, v, ins[1].dtype.width)
    return requantize_output(acc, out.dtype.width)


def _concat(f: Frame, op: HeadConcat, args: list, ins: list, out: TensorType) -> np.ndarray:
    shape = (len(f.q_rows), f.codes.q.shape[2])
    return np.stack([a if a is not None else np.zeros(shape, dtype=np.int64) for a in args])


DENSE_HANDLERS: dict[type[Op], Handler] = {
    LoadQ: _load_q,
    LoadK: _load_k,
    LoadV: _load_v,
    MatMulQK: _qk,
    Scale: _scale,
    CausalMask: _mask,
    Softmax: _softmax,
    MatMulPV: _pv,
    HeadConcat: _concat,
}


def buffers_of(value: object) -> list[np.ndarray]:
    """Arrays a value keeps alive (a pending score matrix aliases its accumulator)."""
    if isinstance(value, PendingScores):
        return [value.acc]
    if isinstance(value, PrunedProbs):
        return [value.probs]
    return [value] if isinstance(value, np.ndarray) else []
