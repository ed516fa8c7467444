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

from spatten_hls.compiler.errors import SimulationError
from spatten_hls.compiler.ir.graph import AttnGraph, GraphInfo
from spatten_hls.compiler.sim.inputs import input_shapes
from spatten_hls.compiler.sim.interpreter import _Run
from spatten_hls.compiler.sim.quantized import largest_v_scale, quantize_layer
from spatten_hls.compiler.sim.result import SimResult


def _blank_run(g: AttnGraph, topk_parallelism: int) -> _Run:
    """A simulation whose inputs are zeros until the session writes each layer's rows."""
    zeros = {
        name: np.zeros(shape, dtype=np.float32) for name, shape in input_shapes(g.info).items()
    }
    return _Run(g, zeros, 0, False, topk_parallelism)


class SummarizationSession:
    def __init__(self, g: AttnGraph, topk_parallelism: int = 16) -> None:
        if g.info.stage != "summarization":
            raise SimulationError("a layer-by-layer session runs the summarization stage")
        self._run = _blank_run(g, topk_parallelism)
        self._next_layer = 0

    @property
    def info(self) -> GraphInfo:
        return self._run.info

    def visible_tokens(self, layer: int) -> np.ndarray:
        """Original positions the layer sees (all of them before any pruning)."""
        return self._run.state.visible_tokens(layer, self.info.seq_len)

    def layer(
        self, layer: int, q: np.ndarray, k: np.ndarray, v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run one layer on float q [heads, n, d], k and v [kv_heads, n, d] of the visible
        tokens; return (output [heads, n, d] float32, positions alive after the layer)."""
        if layer != self._next_layer:
            raise SimulationError(
                f"layers run in order: expected layer {self._next_layer}, got {layer}"
            )
        run, info = self._run, self.info
        rows = self.visible_tokens(layer)
        for name, x in (("q", q), ("k", k), ("v", v)):
            if x.shape[1] != len(rows) or not np.all(np.isfinite(x)):
                raise SimulationError(
                    f"layer {layer}: {name} must hold {len(rows)} finite rows "
                    f"(the visible tokens), got shape {list(x.shape)}"
                )
            run.result.inputs[f"{name}{layer}"][:, rows] = x
        if layer == 0:
            run.v_scale_ref = largest_v_scale([run.result.inputs["v0"]], run.bits["v"])
        with threadpool_limits(limits=1, user_api="blas"):
            run._run_layer(layer, (0, info.seq_len), info.seq_len, None)
        self._next_layer += 1
        codes = run.out_codes[layer][:, rows]
        scales = run.scales[layer][:, None, None]
        out = (codes * scales).astype(np.float32)
        alive = np.flatnonzero(run.state.token_dropped_at[: info.seq_len] > layer)
        return out, alive

    def finish(self) -> SimResult:
        if self._next_layer != self.info.num_layers:
            raise SimulationError(f"only {self._next_layer} of {self.info.num_layers} layers ran")
        return self._run._finish()


class GenerationSession:
    """Decode steps one (step, layer) at a time, for a decoder running token by token.

    The prompt's K/V (positions < seq_len) form the initial cache and calibrate the
    quantization: per (layer, head) scales come from the prompt's Q, K and V rows and stay
    fixed (later rows are quantized with them, saturating), as a streaming accelerator's
    static scales would. Steps run at positions seq_len, seq_len + 1, ... in order; each step
    calls `step` for layer 0, 1, ... with the new token's rows.
    """

    def __init__(self, g: AttnGraph, topk_parallelism: int = 16) -> None:
        if g.info.stage != "generation":
            raise SimulationError("a GenerationSession runs the generation stage")
        info = g.info
        self._run = _blank_run(g, topk_parallelism)
        self._calibrated = [False] * info.num_layers
        self._next = (info.seq_len, 0)  # (position, layer) of the next step

    @property
    def info(self) -> GraphInfo:
        return self._run.info

    def prompt(self, layer: int, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> None:
        """The prompt's float rows of one layer (q [heads, P, d], k and v [kv_heads, P, d])."""
        run, info = self._run, self.info
        p = info.seq_len
        for name, x in (("q", q), ("k", k), ("v", v)):
            if x.shape[1] != p or not np.all(np.isfinite(x)):
                raise SimulationError(f"layer {layer}: prompt {name} must hold {p} finite rows")
            run.result.inputs[f"{name}{layer}"][:, :p] = x
        if layer == 0:
            run.v_scale_ref = largest_v_scale([v], run.bits["v"])
        codes = quantize_layer(
            run.result.inputs, layer, info, run.bits, v_scale_ref=run.v_scale_ref
        )
        run.codes[layer] = codes
        run.scales[layer] = codes.v_scale
        self._calibrated[layer] = True

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
        run, info = self._run, self.info
        codes = run.codes[layer]
        group = info.group_size
        q_scale, k_scale = codes.q_scale, codes.k_scale[::group]
        v_scale = codes.v_scale[::group]
        codes.q[:, position] = quantize_rows(q[:, 0], q_scale, run.bits["q"])
        k_codes = quantize_rows(k[:, 0], k_scale, run.bits["k"])
        codes.k_t[:, :, position] = k_codes
        codes.v[:, position] = quantize_rows(v[:, 0], v_scale, run.bits["v"])
        if codes.k_msb_t is not None:
            step = float(1 << run.bits["k_lsb"])
            msb = np.floor(k_codes / step) * step
            codes.k_msb_t[:, :, position] = msb
            codes.k_lsb_t[:, :, position] = k_codes - msb
        run._run_layer(layer, (position, position + 1), position + 1, position)
        self._next = (position, layer + 1) if layer + 1 < info.num_layers else (position + 1, 0)
        out = run.out_codes[layer][:, position : position + 1] * codes.v_scale[:, None, None]
        return out.astype(np.float32)

    def finish(self) -> SimResult:
        return self._run._finish()


def quantize_rows(x: np.ndarray, scales: np.ndarray, bits: int) -> np.ndarray:
    """Codes of x [heads, d] with fixed per-head scales (saturating), as float64 integers."""
    qmax = (1 << (bits - 1)) - 1
    return np.clip(np.rint(x.astype(np.float64) / scales[:, None]), -qmax, qmax)
