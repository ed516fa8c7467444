"""The interpreter at the simulator's core: a typed attention IR as per-layer programs.

The graph is first turned into a per-layer program (nodes in canonical order with their
handler, operands and types); a frame (one layer's execution over some query rows) runs that
program, heads in parallel worker threads when the frame is large enough. `Simulation`
(simulation.py) drives frames over the layers and steps of a run.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from spatten_hls.compiler.errors import SimulationError
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops import HeadConcat, Op
from spatten_hls.compiler.ir.types import TensorType
from spatten_hls.compiler.sim.frame import Frame
from spatten_hls.compiler.sim.handlers import DENSE_HANDLERS, Handler, buffers_of
from spatten_hls.compiler.sim.handlers_spatten import SPATTEN_HANDLERS

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


def run_frame(
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
