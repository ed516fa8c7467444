"""Golden vectors for the testbench: the simulator's inputs (as DRAM images) and results.

Files (little-endian): q.bin, k_msb.bin, k_lsb.bin, v.bin (int16 codes, [layers][heads or
kv_heads][context][head_dim]); mult.bin, shift.bin, v_weight.bin (int64, [layers][heads]: the
host-computed score multipliers and head-importance weights); out.bin (int16, expected output
codes, like q.bin); state.bin (int64: final token_dropped_at, token_importance,
head_dropped_at, head_importance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spatten_hls.compiler.errors import CodegenError
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops import Scale
from spatten_hls.compiler.sim import simulate
from spatten_hls.compiler.sim.inputs import Inputs
from spatten_hls.compiler.sim.quantized import largest_v_scale, quantize_layer
from spatten_hls.compiler.sim.result import SimResult
from spatten_hls.kernels.formats import SCORE_FRAC
from spatten_hls.kernels.scale import scale_multiplier


@dataclass(frozen=True)
class GoldenVectors:
    arrays: dict[str, np.ndarray]  # file stem -> array (int16 or int64)
    result: SimResult | None = None  # the simulation that produced them

    def files(self) -> dict[str, bytes]:
        return {
            f"{name}.bin": array.astype(array.dtype.newbyteorder("<")).tobytes()
            for name, array in self.arrays.items()
        }


def golden_vectors(
    g: AttnGraph,
    cfg_bits: dict[str, int],
    lsb_bits: int,
    inputs: Inputs | None = None,
    seed: int = 0,
    topk_parallelism: int = 16,
) -> GoldenVectors:
    """Run the simulator and package its inputs and results for the testbench."""
    info = g.info
    result = simulate(g, inputs, seed=seed, reference=False, topk_parallelism=topk_parallelism)
    inputs = result.inputs
    factor = next(g.op(n).factor for n in g.nx_graph.nodes if isinstance(g.op(n), Scale))
    v_ref = largest_v_scale(
        (inputs[f"v{layer}"] for layer in range(info.num_layers)), cfg_bits["v"]
    )
    planes: dict[str, list[np.ndarray]] = {k: [] for k in ("q", "k_msb", "k_lsb", "v")}
    params: dict[str, list[np.ndarray]] = {k: [] for k in ("mult", "shift", "v_weight")}
    for layer in range(info.num_layers):
        codes = quantize_layer(inputs, layer, info, cfg_bits, v_scale_ref=v_ref)
        k = codes.k_t.transpose(0, 2, 1)
        msb = np.floor(k / float(1 << lsb_bits))
        planes["q"].append(codes.q)
        planes["k_msb"].append(msb)
        planes["k_lsb"].append(k - msb * float(1 << lsb_bits))
        planes["v"].append(codes.v)
        pairs = [
            _multiplier(codes.q_scale[h] * codes.k_scale[h] * factor * 2.0**SCORE_FRAC, layer, h)
            for h in range(info.num_heads)
        ]
        params["mult"].append(np.array([m for m, _ in pairs], dtype=np.int64))
        params["shift"].append(np.array([s for _, s in pairs], dtype=np.int64))
        params["v_weight"].append(codes.v_weights())
    arrays = {name: np.stack(values).astype(np.int16) for name, values in planes.items()}
    arrays.update({name: np.stack(values).astype(np.int64) for name, values in params.items()})
    arrays["out"] = np.stack(
        [result.out_codes[f"out{layer}"] for layer in range(info.num_layers)]
    ).astype(np.int16)
    state = result.pruning_state
    arrays["state"] = np.concatenate(
        [
            state.token_dropped_at,
            state.token_importance,
            state.head_dropped_at,
            state.head_importance,
        ]
    ).astype(np.int64)
    return GoldenVectors(arrays, result)


def _multiplier(c: float, layer: int, head: int) -> tuple[int, int]:
    try:
        return scale_multiplier(c)
    except ValueError as exc:
        raise CodegenError(f"layer {layer} head {head}: score multiplier {c:.3g}: {exc}") from None
