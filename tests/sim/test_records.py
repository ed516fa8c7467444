"""The simulator records what every layer did at every step, and the performance model uses
those records as they are (no modelled keys, live heads or apportioned bytes)."""

from __future__ import annotations

import numpy as np
import pytest

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.frontend.builder import build_attention_graph
from spatten_hls.compiler.frontend.model import ModelSpec
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline
from spatten_hls.compiler.perf import performance_report
from spatten_hls.compiler.sim import Simulation, simulate
from spatten_hls.compiler.sim.result import PLANES

SPEC = ModelSpec("toy", "llama", 3, 4, 2, 16, 64, 512, True, "test:toy")
CONFIG = {
    "model": {"stage": "generation", "seq_len": 12, "gen_tokens": 6},
    "token_pruning": {"enabled": True, "keep": 0.5, "skip_first": 0.0, "keep_recent": 1},
    "head_pruning": {"enabled": True, "keep": 0.5, "skip_first": 0.0},
    "value_pruning": {"enabled": True, "keep": 0.5},
    "quantization": {"progressive": True, "requant_threshold": 0.4},
}


@pytest.fixture(scope="module")
def run():
    cfg = config_from_dict(CONFIG)
    graph = run_pipeline(build_attention_graph(SPEC, cfg), cfg, DEFAULT_PIPELINE)
    return graph, simulate(graph, seed=3, reference=False)


def test_one_record_per_layer_and_step(run) -> None:
    _, result = run
    assert [(s.step, s.layer) for s in result.steps] == [
        (step, layer) for step in range(6) for layer in range(3)
    ]
    for s in result.steps:
        assert s.query_rows == 1 and s.keys <= 12 + s.step + 1
        assert 1 <= s.kv_heads <= 2 and s.heads <= 4
        assert s.pairs == s.keys * s.heads  # one query sees every visible key
        assert s.values <= s.pairs and s.requant_rows <= s.prob_rows == s.heads
        assert s.topk_cycles is not None  # the graph has a plan: its comparators count
    # cascade pruning: keys per layer never grow back within a step
    for step in range(6):
        keys = [s.keys for s in result.steps if s.step == step]
        assert keys == sorted(keys, reverse=True)
    assert result.steps[-1].keys < result.steps[2].keys + 6  # pruning did happen


def test_the_records_add_up_to_the_totals(run) -> None:
    _, result = run
    for plane in PLANES:
        assert sum(s.dram_bytes[plane] for s in result.steps) == result.dram_bytes[plane]
    for record in result.layers:
        steps = result.layer_steps(record.layer)
        assert sum(s.values for s in steps) == record.values_fetched
        assert sum(s.topk_cycles for s in steps) == record.topk_cycles
        assert steps[-1].keys == record.tokens_in and steps[-1].heads == record.heads_in


def test_the_report_uses_the_records_exactly(run) -> None:
    graph, result = run
    report = performance_report(result, graph.lowered_plan())
    for row in report.layers:
        steps = result.layer_steps(row.layer)
        assert row.dram_bytes == sum(sum(s.dram_bytes.values()) for s in steps)
        # Q·K: a pipelined loop of ceil(keys / keys_per_cycle) blocks per row, one row per
        # live head and step, again for each row the requant decision deferred
        qk = graph.lowered_plan().qk
        assert row.cycles["qk"] == sum(
            (s.heads + s.requant_rows) * (-(-s.keys // qk.keys_per_cycle) - 1 + qk.depth)
            for s in steps
        )


def test_a_graph_without_a_plan_counts_no_cycles() -> None:
    cfg = config_from_dict(CONFIG)
    typed = run_pipeline(
        build_attention_graph(SPEC, cfg),
        cfg,
        [p for p in DEFAULT_PIPELINE if p not in ("tile", "lower-to-engines")],
    )
    result = simulate(typed, seed=3, reference=False)
    assert all(s.topk_cycles is None for s in result.steps)
    assert all(r.topk_cycles is None for r in result.layers)


def test_stepwise_runs_equal_simulate(run) -> None:
    """The public stepwise API, driven by hand, is `simulate()`."""
    graph, result = run
    sim = Simulation(graph, seed=3, reference=False)
    for position in range(12, 18):
        for layer in range(3):
            sim.run_layer(layer, (position, position + 1), position + 1, position)
    again = sim.finish()
    assert again.steps == result.steps
    for layer in range(3):
        assert np.array_equal(again.out_codes[f"out{layer}"], result.out_codes[f"out{layer}"])
