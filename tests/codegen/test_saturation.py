"""The adversarial case of the output requantization, through the simulator and the design.

Identical keys make attention uniform: over 344 keys each probability rounds to 191 / 2^16,
so a row sums to 65704 > 65536 and full-scale V (every code at +qmax) accumulates past what
the output format holds; the one implementation of the requantization must saturate to qmax
(an off-by-one saturation in the simulator or the emitted C++ changes these codes).
"""

from __future__ import annotations

import numpy as np
import pytest

from spatten_hls.compiler.codegen.vectors import golden_vectors
from spatten_hls.kernels.formats import PROB_FRAC, sym_max

KEYS, V_BITS = 344, 12
CASE = {
    "model": {"name": "uniform", "family": "bert", "layers": 1, "heads": 1, "head_dim": 8},
    "config": {"model": {"seq_len": KEYS}, "quantization": {"v_bits": V_BITS}},
}


def adversarial_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    shape = (1, KEYS, 8)
    return {
        "q0": rng.standard_normal(shape).astype(np.float32),
        "k0": np.ones(shape, dtype=np.float32),  # every key the same: uniform rows
        "v0": np.full(shape, 3.0, dtype=np.float32),
    }  # V at full scale: every code +qmax


@pytest.fixture(scope="module")
def run(design_factory):
    design = design_factory.get(CASE)
    vectors = golden_vectors(design.graph, inputs=adversarial_inputs())
    return vectors, design.library.run(vectors)


def test_the_case_overflows_the_output_format(run) -> None:
    vectors, _ = run
    codes = vectors.result.codes[0]
    assert np.all(codes.v == sym_max(V_BITS))
    probability = round((1 << PROB_FRAC) / KEYS)  # the uniform row's codes
    assert probability * KEYS == 65704 > 1 << PROB_FRAC
    unsaturated = (probability * KEYS * sym_max(V_BITS) + (1 << (PROB_FRAC - 1))) >> PROB_FRAC
    assert unsaturated > sym_max(V_BITS)


def test_the_simulator_saturates_to_qmax(run) -> None:
    vectors, _ = run
    assert np.all(vectors.arrays["out"][0, 0, :KEYS] == sym_max(V_BITS))


@pytest.mark.csim
def test_the_design_saturates_like_the_simulator(run) -> None:
    vectors, design = run
    assert np.array_equal(design.out, vectors.arrays["out"])
    assert np.array_equal(design.state, vectors.arrays["state"])
