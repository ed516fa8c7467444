"""`Simulation`: the bit-accurate simulator as a stepwise, public API; `simulate()` runs it all.

A simulation owns one run of a typed graph: the inputs (float Q/K/V per layer), the codes the
host quantizes them into, the pruning state that carries across layers and steps, and the
records. `run()` executes what `simulate()` does: summarization is one step over all tokens;
generation runs `gen_tokens` decode steps, each one query per head at position `seq_len + t`
against the KV cache of positions `0..seq_len + t`, layer after layer. The sessions
(session.py) drive the same object a layer at a time for real models, through `set_rows`,
`quantize`, `append_codes`, `run_layer` and `output`.

Hardware parameters come from the graph's plan only (the top-k engine's comparators set the
cycles it reports); a graph without a plan simulates the same values, without cycles.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from spatten_hls.compiler.errors import SimulationError
from spatten_hls.compiler.ir.graph import AttnGraph, GraphInfo
from spatten_hls.compiler.ir.ops import Scale
from spatten_hls.compiler.ir.ops_spatten import Requant
from spatten_hls.compiler.ir.token_state import token_state
from spatten_hls.compiler.ir.widths import bit_widths
from spatten_hls.compiler.sim.buffers import BufferPool
from spatten_hls.compiler.sim.dram import BASELINE_BITS, DramCounter, dense_baseline_bytes
from spatten_hls.compiler.sim.frame import Frame, PruningState
from spatten_hls.compiler.sim.inputs import (
    Inputs,
    check_inputs,
    check_working_set,
    input_shapes,
    random_inputs,
)
from spatten_hls.compiler.sim.interpreter import compile_program, run_frame
from spatten_hls.compiler.sim.quantized import (
    LayerCodes,
    k_planes,
    largest_v_scale,
    quantize_layer,
    quantize_rows,
    release,
)
from spatten_hls.compiler.sim.reference import reference_rows
from spatten_hls.compiler.sim.result import (
    PLANES,
    LayerRecord,
    RowProfile,
    SimResult,
    StepRecord,
)
from spatten_hls.compiler.sim.traffic import PortRows, coded_row_bytes, frame_traffic


def simulate(
    g: AttnGraph,
    inputs: Inputs | None = None,
    seed: int = 0,
    reference: bool = True,
    progress: bool = False,
    keep_codes: bool = False,
    extent: RunExtent | None = None,
) -> SimResult:
    """Simulate `g` (a typed graph) on `inputs` or seeded random inputs: the whole stage, or
    the part `extent` names.

    `reference=True` also runs the float64 reference on the same surviving rows and heads
    and records the relative error; `progress=True` shows a progress bar once a run passes
    one second; `keep_codes=True` keeps every layer's codes in the result (golden vectors).
    """
    return Simulation(g, inputs, seed, reference, keep_codes).run(progress, extent)


class Simulation:
    def __init__(
        self,
        g: AttnGraph,
        inputs: Inputs | None = None,
        seed: int = 0,
        reference: bool = True,
        keep_codes: bool = False,
    ) -> None:
        if "typed" not in g.properties:
            raise SimulationError("graph has no fixed-point types: run 'assign-quant-types' first")
        check_working_set(g.info)
        info = self.info = g.info
        self.seed = seed if inputs is None else None  # reported as null for user inputs
        self.inputs = (
            check_inputs(inputs, info, "inputs")
            if inputs is not None
            else random_inputs(info, seed)
        )
        self.programs = compile_program(g)
        self.bits = bit_widths(g)
        self.factor = _score_factor(g)
        self.comparators = g.plan.topk.comparators if g.plan and g.plan.topk else None
        self.value_comparators = (
            g.plan.value_topk.comparators if g.plan and g.plan.value_topk else None
        )
        self.port_rows = PortRows.of(g.plan, self.bits, info.head_dim)
        self.baseline_row = coded_row_bytes(g.plan, BASELINE_BITS, info.head_dim)
        self.reference, self.keep_codes = reference, keep_codes
        tokens = token_state(g)
        self.state = PruningState.fresh(info, tokens.rows, tokens.groups)
        self.dram = DramCounter()
        self.pool = BufferPool()
        self.workers: ThreadPoolExecutor | None = None
        self.v_scale_ref = largest_v_scale(
            (self.inputs[f"v{layer}"] for layer in range(info.num_layers)), self.bits.v
        )
        # Generation revisits every layer at every step: quantize once up front. A
        # summarization run needs each layer once: quantize on the way, reusing buffers.
        self.codes: list[LayerCodes | None] = [None] * info.num_layers
        if info.stage == "generation":
            for layer in range(info.num_layers):
                self.quantize(layer)
        shape = (info.num_heads, info.context, info.head_dim)
        self.out_codes = [np.zeros(shape, dtype=np.int64) for _ in range(info.num_layers)]
        self.v_scales: list[np.ndarray | None] = [None] * info.num_layers
        self.refs = [np.zeros(shape) for _ in range(info.num_layers)] if reference else []
        self.records = [LayerRecord(layer, 0, [], [], 0, 0.0) for layer in range(info.num_layers)]
        self.steps: list[StepRecord] = []
        self.requant = np.zeros((info.num_layers, 2), dtype=np.int64)
        self.step = 0

    @classmethod
    def streaming(cls, g: AttnGraph) -> Simulation:
        """A simulation whose inputs are zeros until a session writes each layer's rows."""
        zeros = {
            name: np.zeros(shape, dtype=np.float32) for name, shape in input_shapes(g.info).items()
        }
        return cls(g, zeros, reference=False)

    # -- inputs and codes (the sessions' side) --------------------------------------------------
    def visible_tokens(self, layer: int, end: int) -> np.ndarray:
        """Positions < end that `layer` still sees (all of them before any pruning)."""
        return self.state.visible_tokens(layer, end)

    def set_rows(self, layer: int, name: str, rows: np.ndarray | slice, x: np.ndarray) -> None:
        """Write float rows [heads, rows, d] of input `name` (q, k or v) of `layer`."""
        self.inputs[f"{name}{layer}"][:, rows] = x

    def set_v_scale_reference(self, v: np.ndarray) -> None:
        """Head importance weights are relative to the largest V scale of `v` (a streaming run
        cannot know the later layers': the sessions take the first layer's)."""
        self.v_scale_ref = largest_v_scale([v], self.bits.v)

    def quantize(self, layer: int) -> LayerCodes:
        """Quantize `layer`'s inputs now and keep the codes (per-head scales fixed from here)."""
        self.codes[layer] = quantize_layer(
            self.inputs, layer, self.info, self.bits, self.factor, v_scale_ref=self.v_scale_ref
        )
        return self.codes[layer]

    def append_codes(
        self, layer: int, position: int, q: np.ndarray, k: np.ndarray, v: np.ndarray
    ) -> None:
        """Quantize one new token's float rows (q [heads, d], k and v [kv_heads, d]) with the
        layer's fixed scales, saturating, into its codes at `position`."""
        codes, group = self.codes[layer], self.info.group_size
        codes.q[:, position] = quantize_rows(q, codes.q_scale, self.bits.q)
        k_codes = quantize_rows(k, codes.k_scale[::group], self.bits.k)
        codes.k_t[:, :, position] = k_codes
        codes.v[:, position] = quantize_rows(v, codes.v_scale[::group], self.bits.v)
        if codes.k_msb_t is not None:
            msb, lsb = k_planes(k_codes, self.bits.k_lsb)
            codes.k_msb_t[:, :, position] = msb * float(1 << self.bits.k_lsb)
            codes.k_lsb_t[:, :, position] = lsb

    def output(self, layer: int, rows: np.ndarray | slice) -> np.ndarray:
        """The dequantized attention output [heads, rows, d] of `layer` (float32)."""
        codes = self.out_codes[layer][:, rows]
        return (codes * self.v_scales[layer][:, None, None]).astype(np.float32)

    # -- running ------------------------------------------------------------------------------
    def run(self, progress: bool = False, extent: RunExtent | None = None) -> SimResult:
        """Every step of `extent` (default: the whole stage), layer after layer; the result."""
        extent = extent or RunExtent.full(self.info)
        extent.check(self.info)
        steps = run_steps(self.info, extent)
        layers = range(extent.first_layer, extent.first_layer + extent.layers)
        bar = tqdm(
            total=len(layers) * len(steps),
            desc="simulate",
            unit="layer-step",
            disable=not progress,
            delay=1.0,
            leave=False,
        )
        # Heads run in parallel threads (BLAS and the kernels release the GIL), each with
        # single-threaded kernels: no thread pool fights another for the cores.
        workers = min(2, os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) if workers > 1 else nullcontext() as pool, bar:
            self.workers = pool
            for queries, end, step_query in steps:
                for layer in layers:
                    self.run_layer(layer, queries, end, step_query)
                    bar.update()
                if layers[-1] != self.info.num_layers - 1:
                    self.step += 1  # run_layer counts a step at the model's last layer
        self.workers = None
        return self.finish()

    def run_layer(
        self, layer: int, queries: tuple[int, int], end: int, step_query: int | None
    ) -> None:
        """One layer over the visible query positions in [queries[0], queries[1]) against the
        keys < `end` it still sees; `step_query` is a decode step's own position."""
        # One BLAS thread: OpenBLAS workers spinning between calls starve the Numba kernels'
        # threads on a small machine (measured: 8 ms instead of 0.5 ms per head on 2 cores).
        with threadpool_limits(limits=1, user_api="blas"):
            self._run_layer(layer, queries, end, step_query)
        if layer == self.info.num_layers - 1:
            self.step += 1

    def _run_layer(
        self, layer: int, queries: tuple[int, int], end: int, step_query: int | None
    ) -> None:
        codes = self.codes[layer]
        if codes is None:
            codes = quantize_layer(
                self.inputs,
                layer,
                self.info,
                self.bits,
                self.factor,
                None if self.keep_codes else self.pool,
                self.v_scale_ref,
            )
        self.v_scales[layer] = codes.v_scale
        # With per-KV-head selection each KV head's query heads run over that KV head's own
        # tokens, one group after another (as the design does); else one frame for all heads.
        groups = self.state.token_groups
        group_heads = self.info.group_size if groups > 1 else self.info.num_heads
        for kv_group in range(groups):
            heads = np.zeros(self.info.num_heads, dtype=np.bool_)
            members = slice(kv_group * group_heads, (kv_group + 1) * group_heads)
            heads[members] = self.state.alive_heads(layer)[members]
            k_rows = self.state.visible_tokens(layer, end, kv_group)
            q_rows = k_rows[(k_rows >= queries[0]) & (k_rows < queries[1])]
            frame = Frame(
                codes,
                layer,
                q_rows,
                k_rows,
                heads,
                self.state,
                self.pool,
                self.comparators,
                self.value_comparators,
                step_query,
                end,
                kv_group=kv_group if groups > 1 else None,
                selects_heads=kv_group == groups - 1,
            )
            out = run_frame(self.programs[layer], frame, self.info.group_size, self.workers)
            self.out_codes[layer][members, q_rows] = out[members]
            traffic = frame_traffic(frame, self.port_rows, self.info.group_size)
            self.dram.add(traffic)
            self._record(frame, traffic, end)
            if self.reference:
                reference_rows(
                    self.inputs, layer, self.info, q_rows, k_rows, heads, self.refs[layer]
                )
        if self.codes[layer] is None:
            if self.keep_codes:
                self.codes[layer] = codes
            else:
                release(codes, self.pool)

    def _record(self, frame: Frame, traffic: DramCounter, end: int) -> None:
        info, layer = self.info, frame.layer
        fetched = traffic.as_dict()
        heads = frame.heads_alive
        kv_heads = sum(frame.group_alive(kv, info.group_size) for kv in range(info.num_kv_heads))
        self.steps.append(
            StepRecord(
                step=self.step,
                layer=layer,
                query_rows=len(frame.q_rows),
                keys=len(frame.k_rows),
                heads=int(heads.sum()),
                kv_heads=int(kv_heads),
                pairs=int(frame.visible.sum()) * int(heads.sum()),
                values=frame.values_fetched,
                prob_rows=frame.prob_rows,
                requant_rows=frame.requant_rows,
                topk_cycles=frame.topk_cycles if self.comparators else None,
                dram_bytes={p: fetched[p] for p in PLANES},
                rows=_row_profile(frame, end, info.group_size),
                kv_group=frame.kv_group,
            )
        )
        record = self.records[layer]
        first_group = frame.kv_group in (None, 0)
        # per-KV-head selection: the most keys any KV head saw, the heads of every group
        keys = len(frame.k_rows)
        record.tokens_in = keys if first_group else max(record.tokens_in, keys)
        record.heads_in = int(heads.sum()) + (0 if first_group else record.heads_in)
        record.values_fetched += frame.values_fetched
        record.topk_cycles = (
            (record.topk_cycles or 0) + frame.topk_cycles if self.comparators else None
        )
        self.requant[layer] += (frame.requant_rows, frame.prob_rows)

    def finish(self) -> SimResult:
        info = self.info
        result = SimResult(
            info,
            self.seed,
            [],
            self.dram.as_dict(),
            dense_baseline_bytes(info, self.baseline_row),
            self.inputs,
            {},
            {},
            pruning_state=self.state,
            steps=self.steps,
        )
        for layer, record in enumerate(self.records):
            # alive after the layer: its selection (dropped_at = layer) has run
            record.kept_tokens = [int(t) for t in self.state.kept_union(layer, info.context)]
            if self.state.token_groups > 1:
                record.kv_head_kept_tokens = [
                    self.state.visible_tokens(layer, info.context, kv).tolist()
                    for kv in range(self.state.token_groups)
                ]
            record.heads_kept = [int(h) for h in np.flatnonzero(self.state.head_dropped_at > layer)]
            redone, rows = self.requant[layer]
            record.requant_fraction = float(redone / rows) if rows else 0.0
            result.out_codes[f"out{layer}"] = self.out_codes[layer]
            scales = self.v_scales[layer]
            result.outputs[f"out{layer}"] = (
                self.out_codes[layer] * (scales[:, None, None] if scales is not None else 0.0)
            ).astype(np.float32)
            if self.reference:
                result.references[f"ref{layer}"] = self.refs[layer]
                record.rel_err_vs_float = _rel_err(result.outputs[f"out{layer}"], self.refs[layer])
        result.layers = self.records
        if self.keep_codes:
            result.codes = list(self.codes)
        return result


def _row_profile(frame: Frame, end: int, group_size: int) -> RowProfile:
    deferred = [frame.deferred[h] for h in sorted(frame.deferred) if len(frame.deferred[h])]
    return RowProfile(
        end=end,
        keys=len(frame.k_rows),
        visible=frame.visible.copy(),
        heads=tuple(int(h) for h in np.flatnonzero(frame.heads_alive)),
        deferred_visible=(
            np.concatenate([frame.visible[r] for r in deferred])
            if deferred
            else np.zeros(0, dtype=np.int64)
        ),
        deferred_kv_heads=len({h // group_size for h in frame.deferred if len(frame.deferred[h])}),
        value_topk_cycles=frame.value_topk_cycles,
        v_rows=tuple(
            sum(int(used.sum()) for (p, _), used in frame.v_fetch.items() if p == which)
            for which in (0, 1)
        ),
        token_selected=frame.token_selected,
        head_candidates=frame.head_candidates,
    )


@dataclass(frozen=True)
class RunExtent:
    """Which part of the stage a run covers: layers [first_layer, first_layer + layers) at
    every step; `seq_len` tokens (summarization: the sequence; generation: the prompt, the
    first decode step at position seq_len) and `steps` decode steps (1 when summarizing). The
    whole stage is `RunExtent.full`; a shorter one is a reduced run (the co-simulation golden
    run) of the same design, whose arrays keep their full shapes."""

    first_layer: int
    layers: int
    seq_len: int
    steps: int

    @classmethod
    def full(cls, info: GraphInfo) -> RunExtent:
        steps = info.gen_tokens if info.stage == "generation" else 1
        return cls(0, info.num_layers, info.seq_len, steps)

    def check(self, info: GraphInfo) -> None:
        generation = info.stage == "generation"
        limits = (
            ("first_layer", self.first_layer, 0, info.num_layers - 1),
            ("layers", self.layers, 1, info.num_layers - self.first_layer),
            ("seq_len", self.seq_len, 1, info.seq_len),
            ("steps", self.steps, 1, info.context - self.seq_len if generation else 1),
        )
        for name, value, low, high in limits:
            if not low <= value <= high:
                raise SimulationError(f"run extent {name} = {value} is outside [{low}, {high}]")

    def as_list(self) -> list[int]:
        return [self.first_layer, self.layers, self.seq_len, self.steps]


def run_steps(
    info: GraphInfo, extent: RunExtent | None = None
) -> list[tuple[tuple[int, int], int, int | None]]:
    """Per step: (query position range, sequence length, the step's own token or None)."""
    extent = extent or RunExtent.full(info)
    if info.stage == "summarization":
        return [((0, extent.seq_len), extent.seq_len, None)]
    first = extent.seq_len
    return [((p, p + 1), p + 1, p) for p in range(first, first + extent.steps)]


def _score_factor(g: AttnGraph) -> float:
    """The one score factor (1/sqrt(d)) of every scale and requant node."""
    factors = {g.op(n).factor for n in g.nx_graph.nodes if isinstance(g.op(n), Scale | Requant)}
    if len(factors) != 1:
        raise SimulationError(
            f"scale and requant nodes disagree on the score factor: {sorted(factors)}"
        )
    return factors.pop()


def _rel_err(out: np.ndarray, ref: np.ndarray) -> float:
    scale = float(np.max(np.abs(ref)))
    diff = float(np.max(np.abs(out.astype(np.float64) - ref)))
    return diff / scale if scale > 0 else diff
