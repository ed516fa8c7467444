"""What a worker runs for one point: metrics of both kinds, failures as results, the real
model and the dense baseline loaded once per worker process."""

from __future__ import annotations

import pytest

from spatten_hls.compiler.dse import worker
from spatten_hls.compiler.dse.space import EvalSpec

GENERATION = {
    "model": {"stage": "generation", "seq_len": 8, "gen_tokens": 8},
    "token_pruning": {"enabled": True, "policy": "current", "schedule": "uniform"},
}


def test_a_point_that_fails_in_the_worker_is_a_result_not_an_exception(tiny_model):
    doc = {"model": {"seq_len": 32768}, "hardware": {"max_tokens": 32768}}
    result = worker.evaluate_point(str(tiny_model), doc, None, None)
    assert result["status"] == "error"
    assert "over the 8 GiB limit" in result["error"]
    assert result["seconds"] >= 0


def test_performance_metrics_match_the_report(tiny_model):
    from spatten_hls.compiler.config import config_from_dict
    from spatten_hls.compiler.driver import compile_model
    from spatten_hls.compiler.perf import performance_report
    from spatten_hls.compiler.sim import simulate

    doc = {"token_pruning": {"enabled": True, "keep": 0.5}}
    result = worker.evaluate_point(str(tiny_model), doc, None, None)
    assert result["status"] == "ok"
    cfg_path = tiny_model.with_name("c.toml")
    cfg_path.write_text(config_from_dict(doc).to_toml())
    compiled = compile_model(str(tiny_model), cfg_path)
    report = performance_report(
        simulate(compiled.graph, seed=0, reference=False), compiled.graph.lowered_plan()
    ).as_dict()
    m = result["metrics"]
    assert (m["latency_cycles"], m["dram_bytes"], m["dsp"], m["fits"]) == (
        report["latency_cycles"],
        report["dram_bytes"],
        report["resources"]["dsp"],
        report["fits"],
    )


def test_fidelity_loads_the_model_and_the_dense_baseline_once_per_process():
    pytest.importorskip("tokenizers")
    from spatten_hls.compiler.realmodels import llama

    options = EvalSpec(None, tokens=16, prompt=8, sentences=2, protocol="decode").as_dict()
    worker._dense_decoding.cache_clear()
    loads_before = llama._load_cached.cache_info().misses
    results = []
    for keep in (0.5, 1.0):
        doc = {**GENERATION, "token_pruning": {**GENERATION["token_pruning"], "keep": keep}}
        results.append(worker.evaluate_point("smollm2-135m", doc, options, None))
    assert [r["status"] for r in results] == ["ok", "ok"], results
    assert worker._dense_decoding.cache_info().misses == 1  # the baseline ran once
    assert worker._dense_decoding.cache_info().hits == 1
    assert llama._load_cached.cache_info().misses - loads_before <= 1  # at most the first load
    half, full = (r["metrics"] for r in results)
    assert half["ppl_dense"] == full["ppl_dense"]
    assert half["kv_read_fraction"] < full["kv_read_fraction"] == 1.0
    assert half["ppl_change"] == pytest.approx(half["ppl"] / half["ppl_dense"] - 1, rel=1e-12)
