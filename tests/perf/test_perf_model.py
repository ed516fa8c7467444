"""Monotonicity, JSON shape, resources and the CLI of the analytical performance model."""

from __future__ import annotations

import argparse
import json

import pytest

from spatten_hls.compiler.cli import report_cmd
from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.driver import compile_model
from spatten_hls.compiler.frontend import load_model
from spatten_hls.compiler.frontend.builder import build_attention_graph
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline
from spatten_hls.compiler.perf import performance_report
from spatten_hls.compiler.perf.resources import estimate_resources
from spatten_hls.compiler.sim import simulate


def _lowered(raw: dict, model: str = "bert-base", **hardware):
    """The compiled graph of `raw` with `hardware` keys overridden."""
    cfg = config_from_dict({**raw, "hardware": {**raw.get("hardware", {}), **hardware}})
    return run_pipeline(build_attention_graph(load_model(model), cfg), cfg, DEFAULT_PIPELINE)


def _sim(raw: dict, model: str = "bert-base"):
    graph = _lowered(raw, model)
    return simulate(graph, seed=1, reference=False), graph.lowered_plan()


SMALL = {
    "model": {"seq_len": 64},
    "token_pruning": {"enabled": True, "keep": 0.5, "skip_first": 0.0},
}


def _hw(**hardware):
    """The plan of SMALL on other hardware (the simulation's values do not depend on it)."""
    return _lowered(SMALL, **hardware).lowered_plan()


@pytest.mark.parametrize("stage", ["summarization", "generation"])
def test_more_pruning_never_more_bytes_or_cycles(stage):
    model = "bert-base" if stage == "summarization" else "gpt2-small"
    prev = None
    for keep in (1.0, 0.7, 0.4):
        raw = {
            "model": {"seq_len": 64, "stage": stage, "gen_tokens": 3},
            "token_pruning": {"enabled": keep < 1.0, "keep": keep, "skip_first": 0.0},
            "value_pruning": {"enabled": keep < 1.0, "keep": keep},
        }
        rep = performance_report(*_sim(raw, model))
        if prev is not None:
            assert rep.dram_bytes <= prev.dram_bytes
            assert rep.latency_cycles <= prev.latency_cycles
        prev = rep


@pytest.fixture(scope="module")
def small():
    return _sim(SMALL)


def test_more_multipliers_and_bandwidth_never_more_cycles(small):
    result, _ = small
    last = None
    for m in (128, 256, 512, 1024, 2048):
        lat = performance_report(result, _hw(multipliers=m)).latency_cycles
        assert last is None or lat <= last
        last = lat
    last = None
    for ch in (1, 2, 4, 16, 32):
        lat = performance_report(result, _hw(hbm_channels=ch)).latency_cycles
        assert last is None or lat <= last
        last = lat
    slow = performance_report(result, _hw(hbm_channels=1, hbm_gbps=0.5))
    assert slow.bound == "memory"


def test_json_keys_and_text(small):
    rep = performance_report(*small)
    doc = json.loads(json.dumps(rep.as_dict(), allow_nan=False))
    for key in (
        "latency_cycles",
        "latency_s",
        "throughput_gops",
        "bound",
        "dram_reduction",
        "dram_reduction_fp16",
        "resources",
        "fits",
        "layers",
    ):
        assert key in doc
    for key in ("dsp", "bram_18k", "uram", "capacity"):
        assert key in doc["resources"]
    assert doc["bound"] in ("compute", "memory")
    assert doc["dram_reduction_fp16"] == pytest.approx(doc["dram_reduction"] * 16 / 12, rel=1e-3)
    assert len(doc["layers"]) == 12 and {"tokens", "heads", "dram_bytes", "cycles", "bound"} <= set(
        doc["layers"][0]
    )
    assert sum(r["dram_bytes"] for r in doc["layers"]) == doc["dram_bytes"]
    text = rep.to_text()
    assert "GOP/s" in text and "fits" in text


def test_resources_u280_fits_bert_base():
    res = estimate_resources(_lowered({}).lowered_plan())
    assert res.fits is True and res.capacity == {"dsp": 9024, "bram_18k": 4032, "uram": 960}
    assert res.dsp >= 1024
    # 128 tokens in 64 cyclic banks: two rows deep, so the K/V buffers are LUTRAM
    assert res.uram == 0 and any(n.startswith("LUTRAM: ") for n in res.notes)
    # 4096 tokens: 64-deep banks of 1024-bit words go to URAM, and still fit
    long = estimate_resources(
        _lowered({"model": {"seq_len": 4096}}, max_tokens=4096).lowered_plan()
    )
    assert long.fits is True and long.uram > 0 and long.uram > res.uram


def test_resources_parts_and_overflow():
    res = estimate_resources(_hw(max_tokens=1 << 16, multipliers=1 << 16))
    assert res.fits is False and any(n.startswith("dsp: needs ") for n in res.notes)
    u50 = estimate_resources(_hw(part="xcu50-fsvh2104-2-e"))
    assert u50.capacity["dsp"] == 5952 and u50.fits is True
    unknown = estimate_resources(_hw(part="xc7z020clg400-1"))
    assert unknown.fits is None and unknown.capacity is None and unknown.notes
    assert estimate_resources(_hw(multipliers=16384)).fits is False


def _cli(argv, capsys):
    common = argparse.ArgumentParser(add_help=False)
    parser = argparse.ArgumentParser(prog="spatten", parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)
    report_cmd.add_parser(sub, common, "model")
    args = parser.parse_args(argv)
    assert args.run(args) == 0
    return capsys.readouterr().out


def test_cli_model_json_and_text(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nseq_len = 32\n", encoding="utf-8")
    doc = json.loads(_cli(["report", "bert-base", "--config", str(cfg), "--json"], capsys))
    assert doc["resources"]["fits"] is True and doc["latency_cycles"] > 0
    assert "latency" in _cli(["report", "bert-base", "--config", str(cfg)], capsys)


def test_cli_project_dir(tmp_path, capsys):
    from spatten_hls.compiler.ir.serialize import to_json

    cfg_text = "[model]\nseq_len = 32\n\n[hardware]\nmultipliers = 256\n"
    (tmp_path / "config.toml").write_text(cfg_text, encoding="utf-8")
    compiled = compile_model("bert-base", tmp_path / "config.toml")
    (tmp_path / "ir").mkdir()
    (tmp_path / "ir" / "final.ir.json").write_text(to_json(compiled.graph), encoding="utf-8")
    doc = json.loads(_cli(["report", str(tmp_path), "--json"], capsys))
    assert doc["hardware"]["multipliers"] == 256
