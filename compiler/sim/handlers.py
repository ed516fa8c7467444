"""Op handlers of the simulator: one per op kind, each calling its kernel in `kernels/`.

A handler receives the frame (which query and key rows are live, the layer's codes, the
DRAM counter), its op, its operand values and the operand and result types.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from compiler.errors import SimulationError
from compiler.ir.ops import (
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
from compiler.ir.types import TensorType
from compiler.sim.buffers import BufferPool
from compiler.sim.dram import DramCounter, row_bytes
from compiler.sim.quantized import LayerCodes
from kernels.formats import SCORE_FRAC
from kernels.fused import pv_accumulate_f64, qk_accumulate_f64, scaled_softmax
from kernels.mask import causal_mask
from kernels.pv import requantize_output
from kernels.scale import scale_multiplier, scale_scores
from kernels.softmax import softmax_rows
from kernels.tables import softmax_tables


@dataclass
class Frame:
    """One execution of a layer's nodes: which query and key rows are live."""

    codes: LayerCodes
    q_rows: np.ndarray  # absolute positions of the queries computed now
    k_rows: np.ndarray  # absolute positions of the keys in the cache now
    dram: DramCounter
    pool: BufferPool
    values_fetched: int = 0

    def __post_init__(self) -> None:
        # Contiguous positions become slices: views instead of gathered copies, and BLAS sees
        # C-contiguous operands (a gathered K^T can come out in a slow layout).
        self.q_index = _as_index(self.q_rows)
        self.k_index = _as_index(self.k_rows)


def _as_index(rows: np.ndarray) -> slice | np.ndarray:
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1:
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


Handler = Callable[[Frame, Op, list, list[TensorType], TensorType], object]


def _load_q(f: Frame, op: LoadQ, args: list, ins: list[TensorType], out: TensorType) -> np.ndarray:
    f.dram.q += len(f.q_rows) * row_bytes(op.bits, op.head_dim)
    return f.codes.q[op.head, f.q_index]


def _load_k(f: Frame, op: LoadK, args: list, ins: list[TensorType], out: TensorType) -> np.ndarray:
    # K lives in DRAM as separate MSB and LSB planes; without progressive quantization the
    # engine fetches both.
    f.dram.k_msb += len(f.k_rows) * row_bytes(op.msb_bits, op.head_dim)
    if op.bits > op.msb_bits:
        f.dram.k_lsb += len(f.k_rows) * row_bytes(op.bits - op.msb_bits, op.head_dim)
    return np.ascontiguousarray(f.codes.k_t[op.kv_head][:, f.k_index]).T


def _load_v(f: Frame, op: LoadV, args: list, ins: list[TensorType], out: TensorType) -> np.ndarray:
    f.dram.v += len(f.k_rows) * row_bytes(op.bits, op.head_dim)
    return f.codes.v[op.kv_head, f.k_index]


@dataclass(frozen=True)
class PendingScores:
    """Score codes not yet materialized: scale (m, sh), then an optional causal mask.

    Scale and mask handlers return this instead of a matrix so that the softmax handler can
    run the fused kernel (one pass over memory, bit-identical to the chain); any other
    consumer calls `materialize()` and gets exactly what the unfused kernels give.
    """

    acc: np.ndarray  # exact integer Q·K^T accumulator, held in float64
    m: int
    sh: int
    mask_offset: int | None = None

    def materialize(self) -> np.ndarray:
        scores = scale_scores(self.acc.astype(np.int64), self.m, self.sh)
        return scores if self.mask_offset is None else causal_mask(scores, self.mask_offset)


def _qk(f: Frame, op: MatMulQK, args: list, ins: list[TensorType], out: TensorType) -> np.ndarray:
    q_bits, k_bits = (t.dtype.width for t in ins)
    out = f.pool.take((args[0].shape[0], args[1].shape[0]))
    return qk_accumulate_f64(args[0], args[1], q_bits, k_bits, out=out)


def _scale(
    f: Frame, op: Scale, args: list, ins: list[TensorType], out: TensorType
) -> PendingScores:
    c = f.codes.q_scale[op.head] * f.codes.k_scale[op.head] * op.factor * 2.0**SCORE_FRAC
    try:
        m, sh = scale_multiplier(c)
    except ValueError as exc:  # inputs scaled far outside what the score format can carry
        raise SimulationError(
            f"layer {op.layer} head {op.head}: Q and K scales {f.codes.q_scale[op.head]:.3g} "
            f"and {f.codes.k_scale[op.head]:.3g} are out of range for the score datapath "
            f"({exc}); rescale the inputs"
        ) from None
    return PendingScores(args[0], m, sh)


def _mask(
    f: Frame, op: CausalMask, args: list, ins: list[TensorType], out: TensorType
) -> PendingScores:
    offset = int(f.q_rows[0]) - int(f.k_rows[0]) + op.q_offset
    return dataclasses.replace(args[0], mask_offset=offset)


def _softmax(
    f: Frame, op: Softmax, args: list, ins: list[TensorType], out: TensorType
) -> np.ndarray:
    scores = args[0]
    if isinstance(scores, PendingScores):
        masked = scores.mask_offset is not None
        return scaled_softmax(
            scores.acc,
            scores.m,
            scores.sh,
            scores.mask_offset if masked else 0,
            masked,
            *softmax_tables(),
            out=f.pool.take(scores.acc.shape),
        )
    return softmax_rows(scores, *softmax_tables()).astype(np.float64)


def _pv(f: Frame, op: MatMulPV, args: list, ins: list[TensorType], out: TensorType) -> np.ndarray:
    probs, v = args
    f.values_fetched += _visible_pairs(f)
    acc = pv_accumulate_f64(probs, v, ins[1].dtype.width).astype(np.int64)
    return requantize_output(acc, out.dtype.width)


def _concat(
    f: Frame, op: HeadConcat, args: list, ins: list[TensorType], out: TensorType
) -> np.ndarray:
    return np.stack(args)


HANDLERS: dict[type[Op], Handler] = {
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


def _visible_pairs(f: Frame) -> int:
    """(query, key) pairs whose V row the prob·V engine multiplies."""
    visible = np.minimum(f.q_rows + 1, len(f.k_rows)) if f.codes.causal else len(f.k_rows)
    return int(np.sum(np.broadcast_to(visible, f.q_rows.shape)))


def buffers_of(value: object) -> list[np.ndarray]:
    """Arrays a value keeps alive (a pending score matrix aliases its accumulator)."""
    if isinstance(value, PendingScores):
        return [value.acc]
    return [value] if isinstance(value, np.ndarray) else []
