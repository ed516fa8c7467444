"""Op handlers of the SpAtten techniques: K planes and the requant decision, value top-k,
token and head importance and their top-k selections (which update the pruning state)."""

from __future__ import annotations

import numpy as np

from spatten_hls.compiler.ir.ops import Op
from spatten_hls.compiler.ir.ops_spatten import (
    HeadImportance,
    HeadSelect,
    LoadKLsb,
    LoadKMsb,
    Requant,
    TokenImportance,
    TokenSelect,
    ValueTopK,
)
from spatten_hls.compiler.ir.types import TensorType
from spatten_hls.compiler.sim.frame import Frame
from spatten_hls.compiler.sim.handlers import (
    PARALLEL_MIN_ROWS,
    Handler,
    PrunedProbs,
    score_multiplier,
)
from spatten_hls.kernels.fused import qk_accumulate_f64, scaled_softmax_visible
from spatten_hls.kernels.importance import (
    abs_sum,
    add_column_sums,
    keep_recent,
    select_survivors,
    value_topk_rows,
)
from spatten_hls.kernels.tables import softmax_tables


def _load_k_msb(f: Frame, op: LoadKMsb, args: list, ins: list, out: TensorType) -> np.ndarray:
    return np.ascontiguousarray(f.codes.k_msb_t[op.kv_head][:, f.k_index]).T


def _load_k_lsb(f: Frame, op: LoadKLsb, args: list, ins: list, out: TensorType) -> np.ndarray:
    return np.ascontiguousarray(f.codes.k_lsb_t[op.kv_head][:, f.k_index]).T


def _requant(f: Frame, op: Requant, args: list, ins: list, out: TensorType) -> np.ndarray:
    probs, q, k_msb, k_lsb = args
    f.prob_rows += probs.shape[0]
    rows = np.flatnonzero(probs.max(axis=1) < op.threshold_code)
    if len(rows) == 0:
        return probs
    f.requant_rows += len(rows)
    f.deferred[op.head] = rows  # the design runs them again, with the K LSBs fetched
    k_full = k_msb + k_lsb  # the LSBs land in the low bits of the widened MSB word
    q_bits, k_bits = ins[1].dtype.width, ins[2].dtype.width
    acc = qk_accumulate_f64(np.ascontiguousarray(q[rows]), k_full, q_bits, k_bits)
    visible = f.visible[rows] if op.causal else np.full(len(rows), acc.shape[1], np.int64)
    m, sh = score_multiplier(f, op.head)
    redone = scaled_softmax_visible(
        acc,
        m,
        sh,
        visible,
        *softmax_tables(),
        threads=not f.in_worker and len(rows) >= PARALLEL_MIN_ROWS,
    )
    result = f.pool.take(probs.shape)
    np.copyto(result, probs)
    result[rows] = redone
    return result


def _value_topk(f: Frame, op: ValueTopK, args: list, ins: list, out: TensorType) -> PrunedProbs:
    probs = args[0]
    keep = op.keep_ratio
    pruned = f.pool.take(probs.shape)
    fetched = np.zeros((2, probs.shape[1]), dtype=np.bool_)
    kept, cycles = value_topk_rows(
        probs,
        f.visible,
        keep.numerator,
        keep.denominator,
        f.value_comparators or 1,
        pruned,
        fetched,
        f.row_pass(op.head),
    )
    f.values_fetched += kept
    f.value_topk_cycles += cycles if f.value_comparators else 0
    return PrunedProbs(pruned, fetched)


def _token_importance(
    f: Frame, op: TokenImportance, args: list, ins: list, out: TensorType
) -> None:
    importance = f.token_row()[1]
    if op.fresh:  # this invocation's attention only
        importance[f.k_rows] = 0
    elif op.decay_shift:  # older steps count for less
        importance[f.k_rows] -= importance[f.k_rows] >> op.decay_shift
    observed = slice(None)  # the query rows that score: all, or the observation window's
    if op.observation_window:
        observed = f.q_rows >= f.seq_end - op.observation_window
    for probs in args[: len(op.heads)]:
        if probs is not None:  # None: a pruned head
            add_column_sums(importance, f.k_rows, np.ascontiguousarray(probs[observed]))


def _token_select(f: Frame, op: TokenSelect, args: list, ins: list, out: TensorType) -> None:
    candidates = f.k_rows
    keep = op.kept(f.end)
    if len(candidates) <= keep:
        return
    end = f.end
    protected = (candidates < op.keep_first) | (candidates >= end - op.keep_recent)
    if f.step_query is not None:  # a decode step never prunes its own token
        protected |= candidates == f.step_query
    dropped_at, importance = f.token_row()
    if op.by_recency:
        survivors, cycles = keep_recent(protected, keep, f.topk_comparators or 1)
    else:
        survivors, cycles = select_survivors(
            importance[candidates], protected, keep, f.topk_comparators or 1
        )
    f.topk_cycles += cycles if f.topk_comparators else 0
    f.token_selected = True
    dropped_at[candidates[~survivors]] = op.layer


def _head_importance(f: Frame, op: HeadImportance, args: list, ins: list, out: TensorType) -> None:
    weights = f.codes.v_weights()
    for head, codes in zip(op.heads, args[: len(op.heads)], strict=True):
        if codes is not None:
            f.state.head_importance[head] += abs_sum(codes) * int(weights[head])


def _head_select(f: Frame, op: HeadSelect, args: list, ins: list, out: TensorType) -> None:
    if not f.selects_heads:  # an earlier KV head's frame: the layer's heads are not all done
        return
    alive = np.flatnonzero(f.state.alive_heads(f.layer))
    if len(alive) <= op.keep:
        return
    survivors, cycles = select_survivors(
        f.state.head_importance[alive],
        np.zeros(len(alive), dtype=np.bool_),
        op.keep,
        f.topk_comparators or 1,
    )
    f.topk_cycles += cycles if f.topk_comparators else 0
    f.head_candidates = len(alive)
    f.state.head_dropped_at[alive[~survivors]] = op.layer


SPATTEN_HANDLERS: dict[type[Op], Handler] = {
    LoadKMsb: _load_k_msb,
    LoadKLsb: _load_k_lsb,
    Requant: _requant,
    ValueTopK: _value_topk,
    TokenImportance: _token_importance,
    TokenSelect: _token_select,
    HeadImportance: _head_importance,
    HeadSelect: _head_select,
}
