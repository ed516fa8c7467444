"""One hardware plan: for every preset, what the plan decides is what the emitted design is
configured with and what `spatten report` computes with."""

from __future__ import annotations

import re

import pytest

from spatten_hls.compiler.codegen.env import render
from spatten_hls.compiler.codegen.lower import project_context
from spatten_hls.compiler.driver import compile_model
from spatten_hls.compiler.frontend import preset_names
from spatten_hls.compiler.perf import performance_report
from spatten_hls.compiler.sim import simulate


def params_h(graph) -> dict[str, int]:
    text = render("params.h.j2", ctx=project_context(graph), sources=())
    return {
        name: int(value) for name, value in re.findall(r"static const int (\w+) = (-?\d+);", text)
    }


@pytest.fixture(scope="module")
def reports():
    out = {}
    for preset in preset_names():
        compiled = compile_model(preset, None)
        result = simulate(compiled.graph, reference=False)
        out[preset] = (
            compiled.graph,
            result,
            performance_report(result, compiled.graph.lowered_plan()),
        )
    return out


@pytest.mark.parametrize("preset", preset_names())
def test_plan_codegen_and_report_agree(reports, preset) -> None:
    graph, result, report = reports[preset]
    plan = graph.lowered_plan()
    emitted = params_h(graph)
    assert emitted["TILE"] == plan.fetcher.tile_tokens
    assert emitted["MAX_TILES"] == plan.fetcher.tiles
    assert emitted["TOPK_PARALLELISM"] == plan.topk.comparators
    assert emitted["QK_KEYS_PER_CYCLE"] == plan.qk.keys_per_cycle
    assert emitted["PV_KEYS_PER_CYCLE"] == plan.pv.keys_per_cycle
    assert emitted["THRESHOLD_CODE"] == plan.requant.threshold_code
    assert plan.qk.keys_per_cycle == 512 // graph.info.head_dim  # half of 1024 multipliers
    hardware = report.hardware
    assert (
        hardware["qk_keys_per_cycle"],
        hardware["pv_keys_per_cycle"],
        hardware["topk_parallelism"],
    ) == (plan.qk.keys_per_cycle, plan.pv.keys_per_cycle, plan.topk.comparators)
    layer0 = result.layer_steps(0)
    pairs, values = sum(s.pairs for s in layer0), sum(s.values for s in layer0)
    assert report.layers[0].cycles["qk"] * plan.qk.keys_per_cycle == pairs
    assert report.layers[0].cycles["pv"] * plan.pv.keys_per_cycle == values


def test_minilm_qk_takes_half_the_cycles_of_bert_base(reports) -> None:
    """head_dim 32 against 64 at 12 heads and 128 tokens: twice the keys per cycle."""
    minilm, bert = reports["minilm-l6"], reports["bert-base"]
    assert minilm[0].info.num_heads == bert[0].info.num_heads
    assert minilm[2].layers[0].tokens == bert[2].layers[0].tokens
    assert minilm[2].layers[0].cycles["qk"] * 2 == bert[2].layers[0].cycles["qk"]
