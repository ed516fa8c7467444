"""Golden vectors for the testbench: the codes the simulator used (as DRAM images) and what it
computed.

Files (little-endian): q.bin, k_msb.bin, k_lsb.bin, v.bin (int16 codes, [layers][heads or
kv_heads][context][head_dim]); mult.bin, shift.bin, v_weight.bin (int64, [layers][heads]: the
host-computed score multipliers and head-importance weights); out.bin (int16, expected output
codes, like q.bin); state.bin (int64: final token_dropped_at, token_importance,
head_dropped_at, head_importance); run.bin (int64: first layer, layers, seq_len, steps: the
part of the stage the golden run covers, `RunExtent`). Nothing is quantized here: every number
is the simulator's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.sim import RunExtent, Simulation
from spatten_hls.compiler.sim.inputs import Inputs
from spatten_hls.compiler.sim.quantized import k_planes
from spatten_hls.compiler.sim.result import SimResult


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
    g: AttnGraph, inputs: Inputs | None = None, seed: int = 0, extent: RunExtent | None = None
) -> GoldenVectors:
    """Run the simulator over `extent` (default: the whole stage), keeping its codes, and
    package them and its results."""
    extent = extent or RunExtent.full(g.info)
    sim = Simulation(g, inputs, seed, reference=False, keep_codes=True)
    for layer in range(g.info.num_layers):  # the DRAM images hold every layer, run or not
        if sim.codes[layer] is None:
            sim.quantize(layer)
    result = sim.run(extent=extent)
    lsb_bits = g.lowered_plan().bits.k_lsb
    planes: dict[str, list[np.ndarray]] = {k: [] for k in ("q", "k_msb", "k_lsb", "v")}
    params: dict[str, list[np.ndarray]] = {k: [] for k in ("mult", "shift", "v_weight")}
    for codes in result.codes:
        msb, lsb = k_planes(codes.k_t, lsb_bits)
        planes["q"].append(codes.q)
        planes["k_msb"].append(msb.transpose(0, 2, 1))
        planes["k_lsb"].append(lsb.transpose(0, 2, 1))
        planes["v"].append(codes.v)
        params["mult"].append(codes.mult)
        params["shift"].append(codes.shift)
        params["v_weight"].append(codes.v_weights())
    arrays = {name: np.stack(values).astype(np.int16) for name, values in planes.items()}
    arrays.update({name: np.stack(values).astype(np.int64) for name, values in params.items()})
    arrays["out"] = np.stack(
        [result.out_codes[f"out{layer}"] for layer in range(g.info.num_layers)]
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
    arrays["run"] = np.array(extent.as_list(), dtype=np.int64)
    return GoldenVectors(arrays, result)
