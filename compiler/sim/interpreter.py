"""`simulate(graph)`: run a typed attention IR through the bit-accurate Numba kernels.

An interpreter: the graph is first turned into a per-layer program (nodes in canonical order
with their handler, operands and types), then every frame (one layer's execution over some
query rows) runs that program. Summarization is one step over all tokens; generation runs
`gen_tokens` decode steps, each one query per head at position `seq_len + t` against the KV
cache of positions `0..seq_len + t`, layer after layer. Cascade pruning state (which tokens
and heads each layer still sees, and the importance scores) carries across layers and steps.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from spatten_hls.compiler.errors import SimulationError
from spatten_hls.compiler.ir.graph import AttnGraph, GraphInfo
from spatten_hls.compiler.ir.ops import HeadConcat, LoadK, LoadQ, LoadV, Op
from spatten_hls.compiler.ir.ops_spatten import LoadKLsb
from spatten_hls.compiler.ir.types import TensorType
from spatten_hls.compiler.sim.buffers import BufferPool
from spatten_hls.compiler.sim.dram import DramCounter, dense_baseline_bytes, row_bytes
from spatten_hls.compiler.sim.frame import Frame, PruningState
from spatten_hls.compiler.sim.handlers import DENSE_HANDLERS, Handler, buffers_of
from spatten_hls.compiler.sim.handlers_spatten import SPATTEN_HANDLERS
from spatten_hls.compiler.sim.inputs import (
    Inputs,
    check_inputs,
    check_working_set,
    random_inputs,
)
from spatten_hls.compiler.sim.quantized import LayerCodes, largest_v_scale, quantize_layer, release
from spatten_hls.compiler.sim.reference import reference_rows
from spatten_hls.compiler.sim.result import LayerRecord, SimResult

HANDLERS: dict[type[Op], Handler] = {**DENSE_HANDLERS, **SPATTEN_HANDLERS}
EXTERNAL = -1  # operand produced by an earlier layer: its effect lives in the pruning state


@dataclass(frozen=True)
class Instruction:
    node: str
    op: Op
    handler: Handler
    operands: tuple[int, ...]  # indices of earlier instructions of the same layer
    in_types: list[TensorType]
    out_type: TensorType
    index: int  # position in the layer's value list
    dying: tuple[int, ...] = ()  # operands whose value is dead after this instruction


@dataclass(frozen=True)
class LayerProgram:
    """A layer's instructions in three phases: shared loads, one chain per query head (the
    chains are independent and may run in parallel), then the layer-wide rest (head concat,
    importance, selections) in canonical order."""

    size: int
    prologue: list[Instruction]
    chains: list[list[Instruction]]
    epilogue: list[Instruction]


def compile_program(g: AttnGraph) -> list[LayerProgram]:
    """Per layer, the instructions resolved once (handler, operands, types) and phased."""
    layers: list[list[Instruction]] = [[] for _ in range(g.info.num_layers)]
    index: dict[str, tuple[int, int]] = {}
    for node in g.nodes():
        op = g.op(node)
        handler = HANDLERS.get(type(op))
        if handler is None:
            raise SimulationError(f"no simulator kernel for op '{op.KIND}' (node %{node})")
        program = layers[op.layer]
        operands = tuple(
            index[src][1] if index[src][0] == op.layer else EXTERNAL for src in g.operands(node)
        )
        index[node] = (op.layer, len(program))
        program.append(
            Instruction(
                node,
                op,
                handler,
                operands,
                g.operand_types(node),
                g.output_type(node),
                len(program),
            )
        )
    for layer, program in enumerate(layers):
        if not any(isinstance(i.op, HeadConcat) for i in program):
            raise SimulationError(f"layer {layer} has no head_concat")
    return [_phase(program) for program in layers]


def _phase(program: list[Instruction]) -> LayerProgram:
    """Split into phases; a value is released only by the phase or chain that made it."""
    group: list[object] = []
    for ins in program:
        head = getattr(ins.op, "head", None)
        if head is not None:
            group.append(head)
        elif all(o == EXTERNAL for o in ins.operands):
            group.append("prologue")
        else:
            group.append("epilogue")
    for i, ins in enumerate(program):  # chains read only loads and their own values
        for o in ins.operands:
            if o != EXTERNAL and group[o] not in (group[i], "prologue") and group[i] != "epilogue":
                raise SimulationError(f"%{ins.node} reads %{program[o].node} across heads")
    last_use: dict[int, int] = {}
    for i, ins in enumerate(program):
        for o in ins.operands:
            last_use[o] = i
    phased = [
        dataclasses.replace(
            ins,
            dying=tuple(
                sorted(
                    {
                        o
                        for o in ins.operands
                        if o != EXTERNAL
                        and last_use[o] == i
                        and (group[o] == group[i] or group[i] == "epilogue")
                    }
                )
            ),
        )
        for i, ins in enumerate(program)
    ]
    heads = sorted({g for g in group if not isinstance(g, str)})
    return LayerProgram(
        size=len(program),
        prologue=[p for p, g in zip(phased, group, strict=True) if g == "prologue"],
        chains=[[p for p, g in zip(phased, group, strict=True) if g == h] for h in heads],
        epilogue=[p for p, g in zip(phased, group, strict=True) if g == "epilogue"],
    )


def _skipped(ins: Instruction, frame: Frame, group_size: int) -> bool:
    """Work of pruned heads is not done: their Q, their chain, and K/V of dead groups."""
    head = getattr(ins.op, "head", None)
    if head is not None:
        return not frame.heads_alive[head]
    kv_head = getattr(ins.op, "kv_head", None)
    return kv_head is not None and not frame.group_alive(kv_head, group_size)


def _run(instructions: list[Instruction], values: list, frame: Frame, group_size: int) -> None:
    for ins in instructions:
        i = ins.index
        if _skipped(ins, frame, group_size):
            continue
        args = [values[o] if o != EXTERNAL else None for o in ins.operands]
        result = ins.handler(frame, ins.op, args, ins.in_types, ins.out_type)
        values[i] = result
        kept = {id(a) for a in buffers_of(result)}
        for o in ins.dying:
            for array in buffers_of(values[o]):
                if id(array) not in kept:
                    frame.pool.give_back(array)
            values[o] = None


# Below this many (query, key) pairs per head a worker thread costs more than it saves.
PARALLEL_MIN_PAIRS = 4096


def _run_frame(
    program: LayerProgram, frame: Frame, group_size: int, workers: ThreadPoolExecutor | None
) -> np.ndarray:
    values: list = [None] * program.size
    _run(program.prologue, values, frame, group_size)
    chains = [c for c in program.chains if not _skipped(c[0], frame, group_size)]
    if (
        workers is not None
        and len(chains) > 1
        and len(frame.q_rows) * len(frame.k_rows) >= PARALLEL_MIN_PAIRS
    ):
        forks = [frame.fork() for _ in chains]
        jobs = [
            workers.submit(_run, chain, values, fork, group_size)
            for chain, fork in zip(chains, forks, strict=True)
        ]
        for job, fork in zip(jobs, forks, strict=True):
            job.result()
            frame.merge(fork)
    else:
        for chain in chains:
            _run(chain, values, frame, group_size)
    _run(program.epilogue, values, frame, group_size)
    concat = next(ins for ins in program.epilogue if isinstance(ins.op, HeadConcat))
    return values[concat.index]


def simulate(
    g: AttnGraph,
    inputs: Inputs | None = None,
    seed: int = 0,
    reference: bool = True,
    progress: bool = False,
    topk_parallelism: int = 16,
) -> SimResult:
    """Simulate every layer of `g` (a typed graph) on `inputs` or seeded random inputs.

    `reference=True` also runs the float64 reference on the same surviving rows and heads
    and records the relative error; `progress=True` shows a progress bar once a run passes
    one second; `topk_parallelism` sets the top-k engine's comparators (its cycle count).
    """
    if "typed" not in g.properties:
        raise SimulationError("graph has no fixed-point types: run 'assign-quant-types' first")
    check_working_set(g.info)
    # One BLAS thread: OpenBLAS workers spinning between calls starve the Numba kernels'
    # threads on a small machine (measured: 8 ms instead of 0.5 ms per head on 2 cores).
    with threadpool_limits(limits=1, user_api="blas"):
        return _Run(g, inputs, seed, reference, topk_parallelism).run(progress)


class _Run:
    """One simulation: programs, codes, pruning state, counters and the result."""

    def __init__(
        self, g: AttnGraph, inputs: Inputs | None, seed: int, reference: bool, topk_parallelism: int
    ) -> None:
        info = self.info = g.info
        used_seed = seed if inputs is None else None  # reported as null for user inputs
        inputs = (
            check_inputs(inputs, info, "inputs")
            if inputs is not None
            else random_inputs(info, seed)
        )
        self.programs = compile_program(g)
        self.bits = _load_bits(self.programs)
        self.reference = reference
        self.topk_parallelism = topk_parallelism
        self.state = PruningState.fresh(info)
        self.dram = DramCounter()
        self.pool = BufferPool()
        # Generation revisits every layer at every step: quantize once up front. A
        # summarization run needs each layer once: quantize on the way, reusing buffers.
        self.codes: list[LayerCodes | None] = [None] * info.num_layers
        self.scales: list[np.ndarray | None] = [None] * info.num_layers
        self.v_scale_ref = largest_v_scale(
            (inputs[f"v{layer}"] for layer in range(info.num_layers)), self.bits["v"]
        )
        if info.stage == "generation":
            self.codes = [
                quantize_layer(inputs, layer, info, self.bits, v_scale_ref=self.v_scale_ref)
                for layer in range(info.num_layers)
            ]
        self.result = SimResult(info, used_seed, [], {}, dense_baseline_bytes(info), inputs, {}, {})
        shape = (info.num_heads, info.context, info.head_dim)
        self.out_codes = [np.zeros(shape, dtype=np.int64) for _ in range(info.num_layers)]
        self.refs = [np.zeros(shape) for _ in range(info.num_layers)] if reference else []
        self.records = [LayerRecord(layer, 0, [], [], 0, 0.0) for layer in range(info.num_layers)]
        self.requant = np.zeros((info.num_layers, 2), dtype=np.int64)

    def run(self, progress: bool) -> SimResult:
        info = self.info
        steps = _steps(info)
        # Heads run in parallel threads (BLAS and the kernels release the GIL), each with
        # single-threaded kernels: no thread pool fights another for the cores.
        workers = min(2, os.cpu_count() or 1)
        bar = tqdm(
            total=info.num_layers * len(steps),
            desc="simulate",
            unit="layer-step",
            disable=not progress,
            delay=1.0,
            leave=False,
        )
        with ThreadPoolExecutor(workers) if workers > 1 else nullcontext() as pool, bar:
            self.workers = pool
            for q_end, end, step_query in steps:
                for layer in range(info.num_layers):
                    self._run_layer(layer, q_end, end, step_query)
                    bar.update()
        return self._finish()

    def _run_layer(
        self, layer: int, q_end: tuple[int, int], end: int, step_query: int | None
    ) -> None:
        k_rows = self.state.visible_tokens(layer, end)
        q_rows = k_rows[(k_rows >= q_end[0]) & (k_rows < q_end[1])]
        heads = self.state.alive_heads(layer)
        codes = self.codes[layer]
        if codes is None:
            codes = quantize_layer(
                self.result.inputs, layer, self.info, self.bits, self.pool, self.v_scale_ref
            )
        self.scales[layer] = codes.v_scale
        frame = Frame(
            codes,
            layer,
            q_rows,
            k_rows,
            heads,
            self.state,
            self.dram,
            self.pool,
            self.topk_parallelism,
            step_query,
        )
        out = _run_frame(
            self.programs[layer], frame, self.info.group_size, getattr(self, "workers", None)
        )
        self.out_codes[layer][:, q_rows] = out
        self._account(frame)
        record = self.records[layer]
        record.tokens_in = len(k_rows)
        record.heads_in = int(heads.sum())
        record.values_fetched += frame.values_fetched
        record.topk_cycles += frame.topk_cycles
        self.requant[layer] += (frame.requant_rows, frame.prob_rows)
        if self.reference:
            reference_rows(
                self.result.inputs, layer, self.info, q_rows, k_rows, heads, self.refs[layer]
            )
        if self.codes[layer] is None:
            release(codes, self.pool)

    def _account(self, frame: Frame) -> None:
        """V rows and K LSB planes are fetched on demand: count them once per frame."""
        d = self.info.head_dim
        for used in frame.v_fetch.values():
            self.dram.v += int(used.sum()) * row_bytes(self.bits["v"], d)
        if frame.k_lsb_fetch:
            lsb = row_bytes(self.bits["k_lsb"], d)
            self.dram.k_lsb += len(frame.k_lsb_fetch) * len(frame.k_rows) * lsb

    def _finish(self) -> SimResult:
        info, result = self.info, self.result
        end = info.context
        for layer, record in enumerate(self.records):
            record.kept_tokens = [
                int(t) for t in np.flatnonzero(self.state.token_dropped_at[:end] > layer)
            ]
            record.heads_kept = [int(h) for h in np.flatnonzero(self.state.head_dropped_at > layer)]
            redone, rows = self.requant[layer]
            record.requant_fraction = float(redone / rows) if rows else 0.0
            result.out_codes[f"out{layer}"] = self.out_codes[layer]
            result.outputs[f"out{layer}"] = (
                self.out_codes[layer] * self.scales[layer][:, None, None]
            ).astype(np.float32)
            if self.reference:
                result.references[f"ref{layer}"] = self.refs[layer]
                record.rel_err_vs_float = _rel_err(result.outputs[f"out{layer}"], self.refs[layer])
        result.layers = self.records
        result.dram_bytes = self.dram.as_dict()
        result.pruning_state = self.state
        return result


def _load_bits(programs: list[LayerProgram]) -> dict[str, int]:
    bits = {}
    loads = [i.op for p in programs for i in p.prologue + [c for ch in p.chains for c in ch]]
    for kind, key in ((LoadQ, "q"), (LoadK, "k"), (LoadV, "v"), (LoadKLsb, "k_lsb")):
        widths = {op.bits for op in loads if isinstance(op, kind)}
        if len(widths) > 1:
            raise SimulationError(f"{kind.KIND} nodes disagree on bit width: {sorted(widths)}")
        if widths:
            bits[key] = widths.pop()
    if "k" not in bits:  # progressive quantization: K is the two planes together
        msb = {op.bits for op in loads if op.KIND == "load_k_msb"}
        bits["k"] = msb.pop() + bits["k_lsb"]
    return bits


def _steps(info: GraphInfo) -> list[tuple[tuple[int, int], int, int | None]]:
    """Per step: (query position range, sequence length, the step's own token or None)."""
    if info.stage == "summarization":
        return [((0, info.seq_len), info.seq_len, None)]
    return [((p, p + 1), p + 1, p) for p in range(info.seq_len, info.seq_len + info.gen_tokens)]


def _rel_err(out: np.ndarray, ref: np.ndarray) -> float:
    scale = float(np.max(np.abs(ref)))
    diff = float(np.max(np.abs(out.astype(np.float64) - ref)))
    return diff / scale if scale > 0 else diff
