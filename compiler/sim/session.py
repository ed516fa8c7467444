"""Layer-by-layer simulation for inputs that exist only as a model runs.

`simulate()` needs every layer's Q, K and V up front; a real model's layer L+1 input depends on
layer L's output. A `SummarizationSession` runs the same simulator (same handlers, pruning
state, DRAM accounting) one layer at a time: the caller hands in the float Q/K/V of the tokens
the layer still sees and gets back the dequantized attention output and the tokens that stay
alive for the later layers (cascade token pruning).

Quantization scales are per (layer, head) over the rows given, as in `simulate()`. Head
importance weights need one V scale as reference for the whole model; here it is the first
layer's largest V scale (a streaming run cannot know the later layers').
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from compiler.errors import SimulationError
from compiler.ir.graph import AttnGraph, GraphInfo
from compiler.sim.inputs import input_shapes
from compiler.sim.interpreter import _Run
from compiler.sim.quantized import largest_v_scale
from compiler.sim.result import SimResult


class SummarizationSession:
    def __init__(self, g: AttnGraph, topk_parallelism: int = 16) -> None:
        if g.info.stage != "summarization":
            raise SimulationError("a layer-by-layer session runs the summarization stage")
        info = g.info
        zeros = {name: np.zeros(shape, dtype=np.float32)
                 for name, shape in input_shapes(info).items()}
        self._run = _Run(g, zeros, 0, False, topk_parallelism)
        self._next_layer = 0

    @property
    def info(self) -> GraphInfo:
        return self._run.info

    def visible_tokens(self, layer: int) -> np.ndarray:
        """Original positions the layer sees (all of them before any pruning)."""
        return self._run.state.visible_tokens(layer, self.info.seq_len)

    def layer(self, layer: int, q: np.ndarray, k: np.ndarray, v: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """Run one layer on float q [heads, n, d], k and v [kv_heads, n, d] of the visible
        tokens; return (output [heads, n, d] float32, positions alive after the layer)."""
        if layer != self._next_layer:
            raise SimulationError(f"layers run in order: expected layer {self._next_layer}, "
                                  f"got {layer}")
        run, info = self._run, self.info
        rows = self.visible_tokens(layer)
        for name, x in (("q", q), ("k", k), ("v", v)):
            if x.shape[1] != len(rows) or not np.all(np.isfinite(x)):
                raise SimulationError(f"layer {layer}: {name} must hold {len(rows)} finite rows "
                                      f"(the visible tokens), got shape {list(x.shape)}")
            run.result.inputs[f"{name}{layer}"][:, rows] = x
        if layer == 0:
            run.v_scale_ref = largest_v_scale([run.result.inputs["v0"]], run.bits["v"])
        with threadpool_limits(limits=1, user_api="blas"):
            run._run_layer(layer, (0, info.seq_len), info.seq_len, None)
        self._next_layer += 1
        codes = run.out_codes[layer][:, rows]
        scales = run.scales[layer][:, None, None]
        out = (codes * scales).astype(np.float32)
        alive = np.flatnonzero(run.state.token_dropped_at[:info.seq_len] > layer)
        return out, alive

    def finish(self) -> SimResult:
        if self._next_layer != self.info.num_layers:
            raise SimulationError(f"only {self._next_layer} of {self.info.num_layers} layers ran")
        return self._run._finish()

