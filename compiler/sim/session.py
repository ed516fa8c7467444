"""Layer-by-layer simulation for inputs that exist only as a model runs.

`simulate()` needs every layer's Q, K and V up front; a real model's layer L+1 input depends on
layer L's output. The sessions drive one `Simulation` (same handlers, pruning state, DRAM
accounting and records) a layer at a time through its public stepwise API.

Quantization scales are per (layer, head) over the rows given, as in `simulate()`. Head
importance weights need one V scale as reference for the whole model; here it is the first
layer's largest V scale (a streaming run cannot know the later layers').
"""

from __future__ import annotations

import numpy as np

from spatten_hls.compiler.errors import SimulationError
from spatten_hls.compiler.ir.graph import AttnGraph, GraphInfo
from spatten_hls.compiler.sim.frame import PruningState
from spatten_hls.compiler.sim.result import SimResult
from spatten_hls.compiler.sim.simulation import Simulation


def _check_rows(layer: int, name: str, x: np.ndarray, rows: int, what: str) -> None:
    if x.shape[1] != rows or not np.all(np.isfinite(x)):
        raise SimulationError(
            f"layer {layer}: {what} {name} must hold {rows} finite rows, got shape {list(x.shape)}"
        )


class SummarizationSession:
    """A summarization run, one layer per call, for a forward that prunes as it goes."""

    def __init__(self, g: AttnGraph) -> None:
        if g.info.stage != "summarization":
            raise SimulationError("a layer-by-layer session runs the summarization stage")
        self._sim = Simulation.streaming(g)
        self._next_layer = 0

    @property
    def info(self) -> GraphInfo:
        return self._sim.info

    def visible_tokens(self, layer: int) -> np.ndarray:
        """Original positions the layer sees (all of them before any pruning)."""
        return self._sim.visible_tokens(layer, self.info.seq_len)

    def layer(
        self, layer: int, q: np.ndarray, k: np.ndarray, v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run one layer on float q [heads, n, d], k and v [kv_heads, n, d] of the visible
        tokens; return (output [heads, n, d] float32, positions alive after the layer: all
        of them when the layer selects for its own KV cache only)."""
        if layer != self._next_layer:
            raise SimulationError(
                f"layers run in order: expected layer {self._next_layer}, got {layer}"
            )
        sim, seq_len = self._sim, self.info.seq_len
        rows = self.visible_tokens(layer)
        for name, x in (("q", q), ("k", k), ("v", v)):
            _check_rows(layer, name, x, len(rows), "the visible tokens'")
            sim.set_rows(layer, name, rows, x)
        if layer == 0:
            sim.set_v_scale_reference(v)
        sim.run_layer(layer, (0, seq_len), seq_len, None)
        self._next_layer += 1
        if sim.state.token_rows > 1:  # the layer evicted from its own KV cache only
            alive = np.arange(seq_len)
        else:
            alive = sim.state.visible_tokens(layer, seq_len)
        return sim.output(layer, rows), alive

    def finish(self) -> SimResult:
        if self._next_layer != self.info.num_layers:
            raise SimulationError(f"only {self._next_layer} of {self.info.num_layers} layers ran")
        return self._sim.finish()


class GenerationSession:
    """Decode steps one (step, layer) at a time, for a decoder running token by token.

    The prompt's K/V (positions < seq_len) form the initial cache and calibrate the
    quantization: per (layer, head) scales come from the prompt's Q, K and V rows and stay
    fixed (later rows are quantized with them, saturating), as a streaming accelerator's
    static scales would. Steps run at positions seq_len, seq_len + 1, ... in order; each step
    calls `step` for layer 0, 1, ... with the new token's rows.
    """

    def __init__(self, g: AttnGraph) -> None:
        if g.info.stage != "generation":
            raise SimulationError("a GenerationSession runs the generation stage")
        self._sim = Simulation.streaming(g)
        self._calibrated = [False] * g.info.num_layers
        self._next = (g.info.seq_len, 0)  # (position, layer) of the next step

    @property
    def info(self) -> GraphInfo:
        return self._sim.info

    def prompt(self, layer: int, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> None:
        """The prompt's float rows of one layer (q [heads, P, d], k and v [kv_heads, P, d])."""
        sim, p = self._sim, self.info.seq_len
        for name, x in (("q", q), ("k", k), ("v", v)):
            _check_rows(layer, name, x, p, "prompt")
            sim.set_rows(layer, name, slice(0, p), x)
        if layer == 0:
            sim.set_v_scale_reference(v)
        sim.quantize(layer)
        self._calibrated[layer] = True

    def adopt_prompt_selection(self, prompt_state: PruningState) -> None:
        """Start the decode steps from the token selection a summarization of the prompt made
        (the prefill protocol): each layer sees the prompt tokens that run left visible to
        it, in the same rows (one cascade row, or one per layer or per layer and KV head)."""
        if self._next != (self.info.seq_len, 0):
            raise SimulationError("adopt the prompt's selection before the first step")
        p, context = self.info.seq_len, self.info.context
        rows = prompt_state.token_rows
        dropped = np.full((rows, context), self.info.num_layers, dtype=np.int64)
        dropped[:, :p] = prompt_state.token_dropped_at.reshape(rows, -1)[:, :p]
        self._sim.state = PruningState(
            dropped.ravel(),
            np.zeros(rows * context, dtype=np.int64),
            self._sim.state.head_dropped_at,
            self._sim.state.head_importance,
            rows,
            prompt_state.token_groups,
        )

    def step(
        self, layer: int, position: int, q: np.ndarray, k: np.ndarray, v: np.ndarray
    ) -> np.ndarray:
        """One layer of one decode step: the new token's q [heads, 1, d] and its k, v
        [kv_heads, 1, d]; returns the dequantized attention output [heads, 1, d]."""
        if (position, layer) != self._next:
            raise SimulationError(
                f"steps run in order: expected position {self._next[0]} "
                f"layer {self._next[1]}, got {position} {layer}"
            )
        if not self._calibrated[layer]:
            raise SimulationError(f"layer {layer}: give the prompt before the first step")
        sim = self._sim
        sim.append_codes(layer, position, q[:, 0], k[:, 0], v[:, 0])
        sim.run_layer(layer, (position, position + 1), position + 1, position)
        last = layer + 1 == self.info.num_layers
        self._next = (position + 1, 0) if last else (position, layer + 1)
        return sim.output(layer, slice(position, position + 1))

    def finish(self) -> SimResult:
        return self._sim.finish()
