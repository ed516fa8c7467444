"""What C-simulation measures of the emitted design (engines/csim.h): the bytes at its m_axi
ports and the loop-level cycle estimate, against the performance model and the plan.

Small versions of the shapes `spatten report` is checked on (dense BERT, a SpAtten schedule,
a generation trace, GQA, a tiled design) run through the ctypes harness; the bytes are the
design's own traffic, the cycles the emitted loop nest's arithmetic (engines/csim.h).
"""

from __future__ import annotations

import numpy as np
import pytest

from spatten_hls.compiler.perf import performance_report
from spatten_hls.compiler.perf.cycles import all_layer_cycles

pytestmark = pytest.mark.csim


def qk_cycles(plan, keys: int, rows: int, kv_heads: int) -> int:
    """Q·K of `rows` rows over `keys` keys (non-causal), `kv_heads` of them the first of their
    KV head: those score the K rows as they arrive, `k_lanes` every `qk_stream_ii` cycles; the
    others take `keys_per_cycle` keys a cycle from the buffer. Each loop is pipelined."""
    if rows == 0:
        return 0
    qk, lanes = plan.qk, plan.fetcher.k_lanes
    streamed = (-(-keys // lanes) - 1) * plan.qk_stream_ii + qk.depth
    buffered = -(-keys // qk.keys_per_cycle) - 1 + qk.depth
    return kv_heads * streamed + (rows - kv_heads) * buffered


def model(family: str, layers: int, heads: int, head_dim: int, kv_heads: int | None = None):
    return {
        "name": f"measured-{family}",
        "family": family,
        "layers": layers,
        "heads": heads,
        "kv_heads": kv_heads or heads,
        "head_dim": head_dim,
    }


SCHEDULE = {
    "token_pruning": {"enabled": True, "keep": 0.5, "skip_first": 0.0, "keep_recent": 2},
    "head_pruning": {"enabled": True, "keep": 0.6, "skip_first": 0.0},
    "value_pruning": {"enabled": True, "keep": 0.3},
    "quantization": {"progressive": True, "requant_threshold": 0.3},
}
SHAPES = {
    "dense-bert": {
        "model": model("bert", 2, 4, 64),
        "config": {"model": {"seq_len": 64}},
    },
    "spatten-bert": {
        "model": model("bert", 3, 4, 64),
        "config": {"model": {"seq_len": 64}, **SCHEDULE},
    },
    "generation-trace": {
        "model": model("gpt2", 3, 4, 64),
        "config": {"model": {"seq_len": 24, "stage": "generation", "gen_tokens": 6}, **SCHEDULE},
    },
    "gqa-generation": {
        "model": model("llama", 2, 6, 32, kv_heads=2),
        "config": {
            "model": {"seq_len": 20, "stage": "generation", "gen_tokens": 4},
            "head_pruning": {"enabled": True, "keep": 0.5, "skip_first": 0.0},
        },
    },
    # the per-layer policies: a row of token state per layer (loaded and stored once), and the
    # window's selection without the quick-select (the same cases as test_csim_bitexact's)
    "per-layer-generation": {
        "model": {
            "name": "gen-per-layer",
            "family": "llama",
            "layers": 3,
            "heads": 4,
            "kv_heads": 2,
            "head_dim": 16,
        },
        "config": {
            "model": {"seq_len": 14, "stage": "generation", "gen_tokens": 5},
            "token_pruning": {
                "enabled": True,
                "policy": "per-layer",
                "schedule": "uniform",
                "keep": 0.5,
                "keep_first": 2,
                "keep_recent": 2,
            },
            "value_pruning": {"enabled": True, "keep": 0.5},
        },
    },
    "window-generation": {
        "model": {
            "name": "gen-window",
            "family": "llama",
            "layers": 2,
            "heads": 4,
            "kv_heads": 2,
            "head_dim": 16,
        },
        "config": {
            "model": {"seq_len": 14, "stage": "generation", "gen_tokens": 5},
            "token_pruning": {
                "enabled": True,
                "policy": "window",
                "schedule": "uniform",
                "keep": 0.5,
                "keep_first": 2,
            },
        },
    },
    "kv-head-generation": {
        "model": {
            "name": "gen-kv-head",
            "family": "llama",
            "layers": 2,
            "heads": 4,
            "kv_heads": 2,
            "head_dim": 16,
        },
        "config": {
            "model": {"seq_len": 14, "stage": "generation", "gen_tokens": 5},
            "token_pruning": {
                "enabled": True,
                "policy": "current",
                "schedule": "uniform",
                "granularity": "kv_head",
                "keep": 0.5,
                "keep_first": 1,
            },
            "head_pruning": {"enabled": True, "keep": 0.75, "skip_first": 0.0},
            "value_pruning": {"enabled": True, "keep": 0.5},
        },
    },
    # a 16-row buffer under a context of up to 22 keys: the dense decode steps past 16 keys
    # stream K and V per query row; the per-layer budget of half the context fits the buffer
    "tiled-gqa-generation": {
        "model": model("llama", 2, 6, 16, kv_heads=2),
        "config": {
            "model": {"seq_len": 14, "stage": "generation", "gen_tokens": 8},
            "hardware": {"max_tokens": 16},
        },
    },
    "tiled-gqa-generation-pruned": {
        "model": model("llama", 2, 6, 16, kv_heads=2),
        "config": {
            "model": {"seq_len": 14, "stage": "generation", "gen_tokens": 8},
            "hardware": {"max_tokens": 16},
            "token_pruning": {
                "enabled": True,
                "policy": "per-layer",
                "schedule": "uniform",
                "keep": 0.5,
                "keep_first": 1,
            },
        },
    },
    # summarization of 24 tokens on 16-row buffers: layer 0 streams, the cascade leaves the
    # later layers 12 tokens, which stay on chip
    "tiled-summarization-pruned": {
        "model": model("bert", 3, 4, 16),
        "config": {
            "model": {"seq_len": 24},
            "hardware": {"max_tokens": 16},
            "token_pruning": {"enabled": True, "keep_per_layer": [0.5, 0.5, 0.5]},
        },
    },
    "tiled": {
        "model": model("bert", 2, 4, 32),
        "config": {
            "model": {"seq_len": 48},
            "value_pruning": {"enabled": True, "keep": 0.5},
            "hardware": {"max_tokens": 16},
        },
    },
}


@pytest.fixture(scope="module")
def designs(design_factory):
    design_factory.prefetch(SHAPES.values())
    return design_factory


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_model_is_within_15_percent_of_csim(designs, shape: str) -> None:
    design = designs.get(SHAPES[shape])
    plan = design.graph.lowered_plan()
    vectors, run = design.run(0)
    assert np.array_equal(run.out, vectors.arrays["out"])
    report = performance_report(vectors.result, plan)
    measured = run.measured.cycles["total"]
    assert measured > 0
    assert abs(report.latency_cycles / measured - 1) <= 0.15, (report.latency_cycles, measured)
    # the report's bytes are the ports' code bytes
    code_bytes = sum(run.measured.dram_bytes[p] for p in ("q", "k_msb", "k_lsb", "v"))
    assert report.dram_bytes == code_bytes


def test_progressive_quantization_and_value_pruning_cut_the_measured_bytes(designs) -> None:
    """Decode steps: one row per live head, so a KV head's LSB plane is fetched only when its
    row was deferred, and its V rows are the ones that row keeps. The measured bytes are the
    simulator's, and below what fetching every live KV head's planes whole would move (the
    rule without progressive quantization and value pruning; in summarization the rows of a
    KV head together defer and keep nearly everything)."""
    trace = designs.get(SHAPES["generation-trace"])
    f = trace.graph.lowered_plan().fetcher
    vectors, run = trace.run(2)
    assert run.requants.sum() > 0  # some rows were deferred: their K LSBs were fetched
    measured = run.measured.dram_bytes
    for plane in ("q", "k_msb", "k_lsb", "v"):
        assert measured[plane] == vectors.result.dram_bytes[plane], plane
    planes = sum(s.kv_heads * s.keys for s in vectors.result.steps) * 32
    assert 0 < measured["k_lsb"] < planes * f.k_lsb_beats
    assert measured["v"] < 0.6 * planes * f.v_beats  # value pruning keeps 0.3 of each row


def test_a_decode_step_fetches_and_computes_only_its_own_query(designs) -> None:
    design = designs.get(SHAPES["gqa-generation"])
    info, plan = design.graph.info, design.graph.lowered_plan()
    vectors, run = design.run(0)
    rows = sum(s.heads for s in vectors.result.steps)  # one query row per live head and step
    assert rows < info.num_layers * info.gen_tokens * info.num_heads  # head pruning acted
    assert run.measured.dram_bytes["q"] == rows * plan.fetcher.q_beats * 32
    assert run.measured.dram_bytes["out"] == rows * plan.fetcher.v_beats * 32
    # Q·K: the step's one row per live head over the keys, none for other positions
    assert run.measured.cycles["qk"] == sum(
        qk_cycles(plan, s.keys, s.heads, s.kv_heads) for s in vectors.result.steps
    )


def test_pruned_tokens_and_heads_cost_no_cycles(designs) -> None:
    """Q·K's loop runs over the live rows and keys only: its measured cycles are the sum over
    the rows the layers computed, pruned tokens and heads adding nothing."""
    design = designs.get(SHAPES["spatten-bert"])
    plan = design.graph.lowered_plan()
    vectors, run = design.run(3)
    expected = 0
    for s in vectors.result.steps:
        expected += qk_cycles(plan, s.keys, s.heads * s.query_rows, s.kv_heads)
        # deferred rows pass Q·K again, the first of each KV head streaming its K rows
        expected += qk_cycles(plan, s.keys, s.requant_rows, s.rows.deferred_kv_heads)
    assert run.measured.cycles["qk"] == expected
    steps = vectors.result.steps
    assert steps[-1].keys < steps[0].keys and steps[-1].heads < steps[0].heads


def test_per_kv_head_selection_scans_each_kv_heads_row(designs) -> None:
    """The design runs a layer's KV heads one after another: its scan loop (SCAN_LANES state
    entries a cycle, II 1, depth 2) walks the token state once per KV head and invocation, as
    C-simulation counts it; the model's loops outside the row pipeline equal the measured
    ones."""
    design = designs.get(SHAPES["kv-head-generation"])
    info, plan = design.graph.info, design.graph.lowered_plan()
    vectors, run = design.run(0)
    lanes = plan.importance.scan_lanes
    ends = range(info.seq_len + 1, info.context + 1)  # one decode step per end
    per_scan = sum(-(-end // lanes) + 1 for end in ends)  # blocks - 1 + depth 2
    assert run.measured.cycles["scan"] == info.num_layers * info.num_kv_heads * per_scan
    layers = all_layer_cycles(vectors.result, plan)
    for engine in ("state", "scan", "importance", "topk"):
        assert sum(c.engines[engine] for c in layers) == run.measured.cycles[engine], engine


@pytest.mark.parametrize(
    "shape", ["tiled-gqa-generation", "tiled-gqa-generation-pruned", "tiled-summarization-pruned"]
)
def test_a_tiled_design_keeps_the_keys_that_fit_on_chip(designs, shape: str) -> None:
    """The K buffer holds 16 rows. An invocation that sees more keys streams them per query
    row (in a decode step the 3 query heads of a GQA group each fetch them); one that sees at
    most 16 - every decode step once the per-layer budget halves the context, the layers
    after the cascade's first cut - fetches each KV head's K rows once and keeps them for its
    rows. The measured K bytes are that rule, invocation by invocation."""
    design = designs.get(SHAPES[shape])
    plan = design.graph.lowered_plan()
    f = plan.fetcher
    assert f.tiles == 2 and f.tile_tokens == 16
    vectors, run = design.run(1)
    assert np.array_equal(run.out, vectors.arrays["out"])
    beats = f.k_msb_beats + f.k_lsb_beats  # no progressive quantization: both planes
    expected, resident = 0, []
    for s in vectors.result.steps:
        fits = s.keys <= f.tile_tokens
        resident.append(fits)
        expected += (s.kv_heads if fits else s.heads * s.query_rows) * s.keys * beats * 32
    measured = run.measured.dram_bytes["k_msb"] + run.measured.dram_bytes["k_lsb"]
    assert measured == expected
    layers = design.graph.info.num_layers
    if shape == "tiled-gqa-generation-pruned":
        assert all(resident)  # the first step's 15 keys, then half the context
    elif shape == "tiled-gqa-generation":
        assert sum(resident) == 2 * layers  # contexts 15 and 16 of 15..22
        assert measured > sum(s.kv_heads * s.keys * beats * 32 for s in vectors.result.steps)
    else:
        assert resident == [False] + [True] * (layers - 1)  # streamed, then on chip
