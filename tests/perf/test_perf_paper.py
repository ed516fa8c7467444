"""Validation of the analytical performance model against SpAtten's published numbers.

Paper-like hardware: 1 GHz, 1024 multipliers (512 Q·K + 512 prob·V), 16 HBM channels x
32 GB/s = 512 GB/s, top-k parallelism 16, 1024-token buffers (SPATTEN.md §2.1).

Tolerances and why:
* BERT-base summarization (examples/configs/bert-base-spatten.toml: seq 384, token keep 0.5,
  head keep 0.9, local-V keep 0.5) vs the paper's 1.61 TFLOPS compute-bound (Fig. 18): +-25%.
  The paper's per-task BERT schedules are unpublished; our schedule is the paper's recipe.
* GPT-2-small generation (examples/configs/gpt2-small-traces.toml) vs the paper's GPT-2
  throughput: the paper itself gives 0.43 TFLOPS (Fig. 18 roofline) and 0.776 TFLOPS (Fig.
  19a, same application, P = 16). We require [0.7 x 0.43, 1.3 x 0.776] TFLOPS, a memory-bound
  roofline verdict (intensity below the 4 op/B ridge) and memory-bound unpruned layers.
* SpAtten1/8 (128 multipliers, 2 x 32 GB/s) vs 360 GOP/s (Table III). 360 GOP/s exceeds the
  256 GOP/s peak of 128 multipliers at 1 GHz, so it must count dense-equivalent work (as
  A3's 221 = 128 x 1.73 speedup does): we compare `effective_throughput_gops` on BERT-base
  within a factor 1.6 and check the useful throughput stays under the roof.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest

from spatten_hls.compiler.driver import compile_model, compile_spec
from spatten_hls.compiler.perf import performance_report
from spatten_hls.compiler.sim import simulate

PAPER_HW = """
[hardware]
clock_mhz = 1000.0
multipliers = 1024
hbm_channels = 16
hbm_gbps = 32.0
topk_parallelism = 16
max_tokens = 1024
"""
EXAMPLES = "examples/configs"


def _config(tmp_path_factory, base: str, extra: str = PAPER_HW, name: str = "c.toml"):
    text = open(f"{EXAMPLES}/{base}", encoding="utf-8").read() + extra
    path = tmp_path_factory.mktemp("cfg") / name
    path.write_text(text, encoding="utf-8")
    return path


def _run(model: str, path):
    compiled = compile_model(model, path)
    result = simulate(compiled.graph, seed=0, reference=False)
    return result, compiled.graph.lowered_plan(), compiled


def _with_hw(compiled, **hw):
    """The plan of the same model and config on other hardware."""
    cfg = compiled.config
    cfg = dataclasses.replace(cfg, hardware=dataclasses.replace(cfg.hardware, **hw))
    return compile_spec(compiled.model, cfg).graph.lowered_plan()


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return _run("bert-base", _config(tmp_path_factory, "bert-base-spatten.toml"))


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return _run("gpt2-small", _config(tmp_path_factory, "gpt2-small-traces.toml"))


def test_bert_base_compute_bound_near_1_61_tflops(bert):
    rep = performance_report(*bert[:2])
    assert rep.bound == "compute" and rep.roofline.bound == "compute"
    assert all(row.bound == "compute" for row in rep.layers)
    assert 1610 * 0.75 <= rep.throughput_gops <= 1610 * 1.25, rep.throughput_gops
    assert rep.throughput_gops <= rep.roofline.compute_roof_gops


def test_gpt2_small_generation_memory_bound(gpt2):
    rep = performance_report(*gpt2[:2])
    assert rep.bound == "memory" and rep.roofline.bound == "memory"
    assert rep.roofline.op_per_byte < rep.roofline.ridge_op_per_byte
    assert rep.layers[0].bound == "memory" and rep.layers[1].bound == "memory"
    assert 430 * 0.7 <= rep.throughput_gops <= 776 * 1.3, rep.throughput_gops


def test_spatten_one_eighth_near_360_gops(bert):
    result, _, compiled = bert
    rep = performance_report(result, _with_hw(compiled, multipliers=128, hbm_channels=2))
    assert rep.throughput_gops <= rep.roofline.compute_roof_gops == pytest.approx(256)
    assert 360 / 1.6 <= rep.effective_throughput_gops <= 360 * 1.6, rep.effective_throughput_gops


SMALL_GPT2 = """
[model]
stage = "generation"
seq_len = 480
gen_tokens = 6

[token_pruning]
enabled = true
keep_per_layer = [0.9, 0.7, 0.2, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]

[value_pruning]
enabled = true
keep = 0.2

[quantization]
q_bits = 16
k_msb_bits = 6
k_lsb_bits = 4
v_bits = 6
"""


def test_topk_parallelism_sweep_saturates_at_16(tmp_path):
    """Fig. 19a: throughput rises with the comparators and saturates at 16."""
    path = tmp_path / "g.toml"
    path.write_text(SMALL_GPT2 + PAPER_HW, encoding="utf-8")
    compiled = compile_model("gpt2-small", path)
    gops = {}
    for p in (1, 2, 4, 8, 16, 32):  # the top-k cycles come from the plan's comparators
        graph = compile_spec(
            compiled.model,
            dataclasses.replace(
                compiled.config,
                hardware=dataclasses.replace(compiled.config.hardware, topk_parallelism=p),
            ),
        ).graph
        result = simulate(graph, seed=0, reference=False)
        gops[p] = performance_report(result, graph.lowered_plan()).throughput_gops
    ps = sorted(gops)
    assert all(gops[a] <= gops[b] * (1 + 1e-9) for a, b in itertools.pairwise(ps)), gops
    # two value top-k threshold engines take the rows in turn (docs/hls.md), so one
    # comparator costs less than in the paper's single engine: 2.49x here (token budgets are
    # fractions of the current context, so the early steps keep fewer keys)
    assert gops[16] > 2.4 * gops[1], gops
    assert gops[32] < 1.05 * gops[16], gops
    assert not math.isclose(gops[8], gops[16]), gops
