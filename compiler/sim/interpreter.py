"""`simulate(graph)`: run a typed attention IR through the bit-accurate Numba kernels.

An interpreter: every op kind dispatches to one handler that calls its kernel in `kernels/`
on integer codes. Summarization runs each layer once over all queries; generation runs
`gen_tokens` decode steps, each one query per head against the KV cache of every earlier
position (the prompt's `seq_len` positions are the initial cache).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from compiler.errors import SimulationError
from compiler.ir.graph import AttnGraph, GraphInfo
from compiler.ir.ops import (
    CausalMask, HeadConcat, LoadK, LoadQ, LoadV, MatMulPV, MatMulQK, Op, Scale, Softmax,
)
from compiler.ir.types import TensorType
from compiler.sim.dram import DramCounter, dense_baseline_bytes, row_bytes
from compiler.sim.inputs import Inputs, check_inputs, random_inputs
from compiler.sim.quantized import LayerCodes, quantize_layer
from compiler.sim.result import LayerRecord, SimResult
from kernels.formats import SCORE_FRAC
from kernels.mask import causal_mask
from kernels.pv import pv_accumulate, requantize_output
from kernels.qk import qk_scores
from kernels.reference import attention_float
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
    values_fetched: int = 0


Handler = Callable[[Frame, Op, list[np.ndarray], TensorType], np.ndarray]


def _load_q(f: Frame, op: LoadQ, args: list, out: TensorType) -> np.ndarray:
    f.dram.q += len(f.q_rows) * row_bytes(op.bits, op.head_dim)
    return f.codes.q[op.head][f.q_rows]


def _load_k(f: Frame, op: LoadK, args: list, out: TensorType) -> np.ndarray:
    # K lives in DRAM as separate MSB and LSB planes; without progressive quantization the
    # engine fetches both.
    f.dram.k_msb += len(f.k_rows) * row_bytes(op.msb_bits, op.head_dim)
    if op.bits > op.msb_bits:
        f.dram.k_lsb += len(f.k_rows) * row_bytes(op.bits - op.msb_bits, op.head_dim)
    return f.codes.k[op.kv_head][f.k_rows]


def _load_v(f: Frame, op: LoadV, args: list, out: TensorType) -> np.ndarray:
    f.dram.v += len(f.k_rows) * row_bytes(op.bits, op.head_dim)
    return f.codes.v[op.kv_head][f.k_rows]


def _qk(f: Frame, op: MatMulQK, args: list, out: TensorType) -> np.ndarray:
    return qk_scores(args[0], args[1])


def _scale(f: Frame, op: Scale, args: list, out: TensorType) -> np.ndarray:
    c = f.codes.q_scale[op.head] * f.codes.k_scale[op.head] * op.factor * 2.0**SCORE_FRAC
    m, sh = scale_multiplier(c)
    return scale_scores(args[0], m, sh)


def _mask(f: Frame, op: CausalMask, args: list, out: TensorType) -> np.ndarray:
    return causal_mask(args[0], int(f.q_rows[0]) - int(f.k_rows[0]) + op.q_offset)


def _softmax(f: Frame, op: Softmax, args: list, out: TensorType) -> np.ndarray:
    return softmax_rows(args[0], *softmax_tables())


def _pv(f: Frame, op: MatMulPV, args: list, out: TensorType) -> np.ndarray:
    probs, v = args
    f.values_fetched += _visible_pairs(f)
    return requantize_output(pv_accumulate(probs, v), out.dtype.width)


def _concat(f: Frame, op: HeadConcat, args: list, out: TensorType) -> np.ndarray:
    return np.stack(args)


HANDLERS: dict[type[Op], Handler] = {
    LoadQ: _load_q, LoadK: _load_k, LoadV: _load_v, MatMulQK: _qk, Scale: _scale,
    CausalMask: _mask, Softmax: _softmax, MatMulPV: _pv, HeadConcat: _concat,
}


def _visible_pairs(f: Frame) -> int:
    """(query, key) pairs whose V row the prob·V engine multiplies."""
    visible = np.minimum(f.q_rows + 1, len(f.k_rows)) if f.codes.causal else len(f.k_rows)
    return int(np.sum(np.broadcast_to(visible, f.q_rows.shape)))


def _layer_nodes(g: AttnGraph) -> list[list[str]]:
    by_layer: list[list[str]] = [[] for _ in range(g.info.num_layers)]
    for node in g.nodes():
        by_layer[g.op(node).layer].append(node)
    return by_layer


def _run_frame(g: AttnGraph, nodes: list[str], frame: Frame) -> np.ndarray:
    values: dict[str, np.ndarray] = {}
    result = None
    for node in nodes:
        op = g.op(node)
        handler = HANDLERS.get(type(op))
        if handler is None:
            raise SimulationError(f"no simulator kernel for op '{op.KIND}' (node %{node})")
        args = [values[src] for src in g.operands(node)]
        values[node] = handler(frame, op, args, g.output_type(node))
        if isinstance(op, HeadConcat):
            result = values[node]
    if result is None:
        raise SimulationError(f"layer of %{nodes[0]} has no head_concat output")
    return result


def simulate(g: AttnGraph, inputs: Inputs | None = None, seed: int = 0,
             reference: bool = True, progress: bool = False) -> SimResult:
    """Simulate every layer of `g` (a typed graph) on `inputs` or seeded random inputs."""
    if "typed" not in g.properties:
        raise SimulationError("graph has no fixed-point types: run 'assign-quant-types' first")
    info = g.info
    inputs = check_inputs(inputs, info, "inputs") if inputs is not None \
        else random_inputs(info, seed)
    plan = _schedule(info)
    dram = DramCounter()
    bits = _load_bits(g)
    tokens = info.context
    result = SimResult(info, seed, [], {}, dense_baseline_bytes(info), inputs, {}, {})
    bar = tqdm(total=info.num_layers * len(plan), desc="simulate", unit="layer-step",
               disable=not progress, delay=1.0, leave=False)
    for layer, nodes in enumerate(_layer_nodes(g)):
        codes = quantize_layer(inputs, layer, info, bits)
        out_codes = np.zeros((info.num_heads, tokens, info.head_dim), dtype=np.int64)
        values = 0
        for q_rows, k_rows in plan:
            frame = Frame(codes, q_rows, k_rows, dram)
            out_codes[:, q_rows] = _run_frame(g, nodes, frame)
            values += frame.values_fetched
            bar.update()
        result.out_codes[f"out{layer}"] = out_codes
        result.outputs[f"out{layer}"] = (out_codes * codes.v_scale_per_head()[:, None, None]
                                         ).astype(np.float32)
        record = LayerRecord(layer, tokens, list(range(tokens)), list(range(info.num_heads)),
                             values, 0.0)
        if reference:
            ref = _reference_layer(inputs, layer, info, plan)
            result.references[f"ref{layer}"] = ref
            record.rel_err_vs_float = _rel_err(result.outputs[f"out{layer}"], ref)
        result.layers.append(record)
    bar.close()
    result.dram_bytes = dram.as_dict()
    return result


def _load_bits(g: AttnGraph) -> dict[str, int]:
    bits = {}
    for kind, key in ((LoadQ, "q"), (LoadK, "k"), (LoadV, "v")):
        widths = {g.op(n).bits for n in g.nodes_of(kind)}
        if len(widths) != 1:
            raise SimulationError(f"{kind.KIND} nodes disagree on bit width: {sorted(widths)}")
        bits[key] = widths.pop()
    return bits


def _schedule(info: GraphInfo) -> list[tuple[np.ndarray, np.ndarray]]:
    """(query positions, key positions) per execution of a layer."""
    if info.stage == "summarization":
        rows = np.arange(info.seq_len)
        return [(rows, rows)]
    return [(np.array([p]), np.arange(p + 1))
            for p in range(info.seq_len, info.seq_len + info.gen_tokens)]


def _reference_layer(inputs: Inputs, layer: int, info: GraphInfo,
                     plan: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    ref = np.zeros((info.num_heads, info.context, info.head_dim))
    q, k, v = (inputs[f"{t}{layer}"] for t in "qkv")
    for head in range(info.num_heads):
        kv = head // info.group_size
        for q_rows, k_rows in plan:
            offset = int(q_rows[0]) - int(k_rows[0])
            ref[head, q_rows] = attention_float(q[head, q_rows], k[kv, k_rows], v[kv, k_rows],
                                                causal=info.causal, q_offset=offset)
    return ref


def _rel_err(out: np.ndarray, ref: np.ndarray) -> float:
    scale = float(np.max(np.abs(ref)))
    diff = float(np.max(np.abs(out.astype(np.float64) - ref)))
    return diff / scale if scale > 0 else diff

