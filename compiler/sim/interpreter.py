"""`simulate(graph)`: run a typed attention IR through the bit-accurate Numba kernels.

An interpreter: the graph is first turned into a per-layer program (nodes in canonical order
with their handler, operands and types), then every frame (a layer's execution over some
query rows) runs that program. Summarization runs each layer once over all queries;
generation runs `gen_tokens` decode steps, each one query per head at position
`seq_len + t` against the KV cache of positions `0..seq_len + t`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from compiler.errors import SimulationError
from compiler.ir.graph import AttnGraph, GraphInfo
from compiler.ir.ops import HeadConcat, LoadK, LoadQ, LoadV, Op
from compiler.ir.types import TensorType
from compiler.sim.buffers import BufferPool
from compiler.sim.dram import DramCounter, dense_baseline_bytes
from compiler.sim.handlers import HANDLERS, Frame, Handler, buffers_of
from compiler.sim.inputs import Inputs, check_inputs, random_inputs
from compiler.sim.quantized import quantize_layer
from compiler.sim.result import LayerRecord, SimResult
from kernels.reference import attention_float


@dataclass(frozen=True)
class Instruction:
    node: str
    op: Op
    handler: Handler
    operands: tuple[int, ...]  # indices of earlier instructions of the same layer
    in_types: list[TensorType]
    out_type: TensorType
    dying: tuple[int, ...] = ()  # operands whose value is dead after this instruction


def compile_program(g: AttnGraph) -> list[list[Instruction]]:
    """Per layer, the instructions in canonical order (resolved once, run every frame)."""
    layers: list[list[Instruction]] = [[] for _ in range(g.info.num_layers)]
    index: dict[str, int] = {}
    for node in g.nodes():
        op = g.op(node)
        handler = HANDLERS.get(type(op))
        if handler is None:
            raise SimulationError(f"no simulator kernel for op '{op.KIND}' (node %{node})")
        program = layers[op.layer]
        operands = tuple(index[src] for src in g.operands(node))
        index[node] = len(program)
        program.append(Instruction(node, op, handler, operands, g.operand_types(node),
                                   g.output_type(node)))
    for layer, program in enumerate(layers):
        if not program or not isinstance(program[-1].op, HeadConcat):
            raise SimulationError(f"layer {layer} does not end in a head_concat")
    return [_with_liveness(program) for program in layers]


def _with_liveness(program: list[Instruction]) -> list[Instruction]:
    last_use: dict[int, int] = {}
    for i, ins in enumerate(program):
        for operand in ins.operands:
            last_use[operand] = i
    return [dataclasses.replace(ins, dying=tuple(sorted(
        {o for o in ins.operands if last_use[o] == i}))) for i, ins in enumerate(program)]


def _run_frame(program: list[Instruction], frame: Frame) -> np.ndarray:
    values: list = []
    for ins in program:
        args = [values[i] for i in ins.operands]
        result = ins.handler(frame, ins.op, args, ins.in_types, ins.out_type)
        values.append(result)
        kept = {id(a) for a in buffers_of(result)}
        for i in ins.dying:
            for array in buffers_of(values[i]):
                if id(array) not in kept:
                    frame.pool.give_back(array)
            values[i] = None
    return values[-1]


def simulate(g: AttnGraph, inputs: Inputs | None = None, seed: int = 0,
             reference: bool = True, progress: bool = False) -> SimResult:
    """Simulate every layer of `g` (a typed graph) on `inputs` or seeded random inputs.

    `reference=True` also runs the float64 reference on the same rows and records the
    relative error; `progress=True` shows a progress bar once a run passes one second.
    """
    if "typed" not in g.properties:
        raise SimulationError("graph has no fixed-point types: run 'assign-quant-types' first")
    # One BLAS thread: OpenBLAS workers spinning between calls starve the Numba kernels'
    # threads on a small machine (measured: 8 ms instead of 0.5 ms per head on 2 cores).
    with threadpool_limits(limits=1, user_api="blas"):
        return _simulate(g, inputs, seed, reference, progress)


def _simulate(g: AttnGraph, inputs: Inputs | None, seed: int, reference: bool,
              progress: bool) -> SimResult:
    info = g.info
    used_seed = seed if inputs is None else None  # reported as null for user inputs
    inputs = check_inputs(inputs, info, "inputs") if inputs is not None \
        else random_inputs(info, seed)
    programs = compile_program(g)
    plan = _schedule(info)
    bits = _load_bits(programs)
    result = SimResult(info, used_seed, [], {},
                       dense_baseline_bytes(info), inputs, {}, {})
    dram = DramCounter()
    pool = BufferPool()
    with tqdm(total=info.num_layers * len(plan), desc="simulate", unit="layer-step",
              disable=not progress, delay=1.0, leave=False) as bar:
        for layer, program in enumerate(programs):
            record = _simulate_layer(layer, program, plan, inputs, bits, (dram, pool), result,
                                     bar)
            if reference:
                ref = _reference_layer(inputs, layer, info, plan)
                result.references[f"ref{layer}"] = ref
                record.rel_err_vs_float = _rel_err(result.outputs[f"out{layer}"], ref)
            result.layers.append(record)
    result.dram_bytes = dram.as_dict()
    return result


def _simulate_layer(layer: int, program: list[Instruction], plan: list, inputs: Inputs,
                    bits: dict[str, int], env: tuple[DramCounter, BufferPool],
                    result: SimResult, bar: tqdm) -> LayerRecord:
    info = result.info
    codes = quantize_layer(inputs, layer, info, bits)
    out_codes = np.zeros((info.num_heads, info.context, info.head_dim), dtype=np.int64)
    values = 0
    for q_rows, k_rows in plan:
        frame = Frame(codes, q_rows, k_rows, *env)
        out_codes[:, q_rows] = _run_frame(program, frame)
        values += frame.values_fetched
        bar.update()
    result.out_codes[f"out{layer}"] = out_codes
    result.outputs[f"out{layer}"] = (out_codes * codes.v_scale[:, None, None]).astype(np.float32)
    tokens = info.context
    return LayerRecord(layer, tokens, list(range(tokens)), list(range(info.num_heads)),
                       values, 0.0)


def _load_bits(programs: list[list[Instruction]]) -> dict[str, int]:
    bits = {}
    for kind, key in ((LoadQ, "q"), (LoadK, "k"), (LoadV, "v")):
        widths = {i.op.bits for p in programs for i in p if isinstance(i.op, kind)}
        if len(widths) != 1:
            raise SimulationError(f"{kind.KIND} nodes disagree on bit width: {sorted(widths)}")
        bits[key] = widths.pop()
    return bits


def _schedule(info: GraphInfo) -> list[tuple[np.ndarray, np.ndarray]]:
    """(query positions, key positions) of each execution of a layer."""
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
