"""The layer-by-layer session is the simulator, one layer at a time."""

from __future__ import annotations

import numpy as np
import pytest

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.errors import SimulationError
from spatten_hls.compiler.frontend.builder import build_attention_graph
from spatten_hls.compiler.frontend.model import ModelSpec
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline
from spatten_hls.compiler.sim import simulate
from spatten_hls.compiler.sim.inputs import random_inputs
from spatten_hls.compiler.sim.session import SummarizationSession

SPEC = ModelSpec("toy", "bert", 4, 4, 4, 16, 64, 512, False, "test:toy")
CONFIG = {
    "model": {"seq_len": 20},
    "token_pruning": {"enabled": True, "keep": 0.5, "skip_first": 0.25},
    "head_pruning": {"enabled": True, "keep": 0.5, "skip_first": 0.25},
    "value_pruning": {"enabled": True, "keep": 0.5},
}


def graph():
    cfg = config_from_dict(CONFIG)
    return run_pipeline(build_attention_graph(SPEC, cfg), cfg, DEFAULT_PIPELINE)


def test_session_equals_simulate_on_the_rows_it_was_given():
    """Quantization scales cover the rows given: a session sees only the surviving tokens, so
    it matches `simulate()` on inputs whose pruned rows are zero (max|x| unchanged)."""
    g = graph()
    inputs = random_inputs(g.info, 5)
    inputs["v0"] = inputs["v0"] * 3  # layer 0 holds the largest V scale (the session's ref)
    session, outputs, visible = SummarizationSession(g), [], []
    for layer in range(4):
        rows = session.visible_tokens(layer)
        visible.append(rows)
        out, keep = session.layer(layer, *(inputs[f"{t}{layer}"][:, rows] for t in "qkv"))
        outputs.append(out)
        assert set(keep) <= set(rows)
    result = session.finish()
    zeroed = {k: v.copy() for k, v in inputs.items()}
    for layer, rows in enumerate(visible):
        gone = np.setdiff1d(np.arange(20), rows)
        for t in "qkv":
            zeroed[f"{t}{layer}"][:, gone] = 0
    expected = simulate(g, zeroed, reference=False)
    assert len(visible[-1]) < 20  # pruning really happened
    for layer, rows in enumerate(visible):
        assert np.array_equal(outputs[layer], expected.outputs[f"out{layer}"][:, rows])
    assert result.dram_bytes == expected.dram_bytes
    assert [r.kept_tokens for r in result.layers] == [r.kept_tokens for r in expected.layers]


def test_session_rejects_out_of_order_layers_and_wrong_rows():
    g = graph()
    inputs = random_inputs(g.info, 0)
    session = SummarizationSession(g)
    with pytest.raises(SimulationError, match="expected layer 0"):
        session.layer(1, inputs["q1"], inputs["k1"], inputs["v1"])
    with pytest.raises(SimulationError, match="20 finite rows"):
        session.layer(0, inputs["q0"][:, :5], inputs["k0"], inputs["v0"])
    with pytest.raises(SimulationError, match="only 0 of 4"):
        session.finish()


def test_generation_session_equals_simulate_when_the_prompt_sets_the_scales():
    """Decode steps one (step, layer) at a time give what `simulate()` gives, when no later
    row exceeds the prompt's per-head maxima (then both quantize with the same scales)."""
    from spatten_hls.compiler.sim.session import GenerationSession

    spec = ModelSpec("toy", "llama", 3, 4, 2, 16, 64, 512, True, "test:toy")
    cfg = config_from_dict(
        {
            "model": {"stage": "generation", "seq_len": 12, "gen_tokens": 6},
            "token_pruning": {"enabled": True, "keep": 0.5, "keep_first": 1, "keep_recent": 2},
            "value_pruning": {"enabled": True, "keep": 0.5},
            "quantization": {
                "progressive": True,
                "k_msb_bits": 6,
                "k_lsb_bits": 4,
                "requant_threshold": 0.4,
            },
        }
    )
    g = run_pipeline(build_attention_graph(spec, cfg), cfg, DEFAULT_PIPELINE)
    inputs = random_inputs(g.info, 2)
    for name in inputs:
        inputs[name][:, 12:] *= 0.5  # the prompt holds every head's largest value
    expected = simulate(g, inputs, reference=False)
    session = GenerationSession(g)
    for layer in range(3):
        session.prompt(layer, *(inputs[f"{t}{layer}"][:, :12] for t in "qkv"))
    for position in range(12, 18):
        for layer in range(3):
            out = session.step(
                layer, position, *(inputs[f"{t}{layer}"][:, position : position + 1] for t in "qkv")
            )
            assert np.array_equal(out[:, 0], expected.outputs[f"out{layer}"][:, position])
    result = session.finish()
    assert result.dram_bytes == expected.dram_bytes
    assert [r.kept_tokens for r in result.layers] == [r.kept_tokens for r in expected.layers]
    assert sum(r.requant_fraction for r in result.layers) > 0  # progressive really acted
