"""The emitted C++ equals the Numba simulator bit for bit, per technique and shape.

Each case is compiled, emitted and built once (through the ctypes harness, see conftest.py);
then several seeds of golden vectors from the simulator are run through the library and the
output codes and the final pruning state are compared with np.array_equal. Each technique's
case also checks that the technique really acted (tokens or heads dropped, rows requantized,
outputs changed by value pruning), so that a match cannot come from a technique left idle.
The real testbench binary (`run_csim`) runs once, and once more on a corrupted golden file.
"""

from __future__ import annotations

import dataclasses
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from spatten_hls.compiler.codegen.cosim_run import cosim_extent
from spatten_hls.compiler.codegen.csim import run_csim
from spatten_hls.compiler.codegen.lower import project_context
from spatten_hls.compiler.codegen.vectors import golden_vectors
from spatten_hls.compiler.ir.ops_spatten import HeadSelect, TokenSelect
from spatten_hls.compiler.sim import RunExtent, simulate
from spatten_hls.compiler.sim.result import PLANES

pytestmark = pytest.mark.csim

SEEDS = (0, 1, 2)
ALL_TECHNIQUES = {
    "token_pruning": {
        "enabled": True,
        "keep": 0.5,
        "skip_first": 0.0,
        "keep_first": 1,
        "keep_recent": 2,
    },
    "head_pruning": {"enabled": True, "keep": 0.5, "skip_first": 0.0},
    "value_pruning": {"enabled": True, "keep": 0.4},
    "quantization": {"progressive": True, "requant_threshold": 0.4},
}


def model(
    name: str, family: str, layers: int, heads: int, head_dim: int, kv_heads: int | None = None
) -> dict:
    return {
        "name": name,
        "family": family,
        "layers": layers,
        "heads": heads,
        "kv_heads": kv_heads or heads,
        "head_dim": head_dim,
    }


CASES: dict[str, dict] = {
    "bert-dense-d64": {
        "model": model("bert-dense", "bert", 2, 4, 64),
        "config": {"model": {"seq_len": 32}},
    },
    "gpt-dense-causal-d32": {
        "model": model("gpt-dense", "gpt2", 2, 4, 32),
        "config": {"model": {"seq_len": 28}},
    },
    "token-pruning": {
        "model": model("tokens", "gpt2", 3, 4, 16),
        "config": {
            "model": {"seq_len": 40},
            "token_pruning": {
                "enabled": True,
                "keep": 0.4,
                "skip_first": 0.0,
                "keep_first": 3,
                "keep_recent": 4,
            },
        },
    },
    "head-pruning": {
        "model": model("heads", "bert", 3, 6, 16),
        "config": {
            "model": {"seq_len": 24},
            "head_pruning": {"enabled": True, "keep": 0.5, "skip_first": 0.0},
        },
    },
    "value-pruning": {
        "model": model("values", "bert", 2, 4, 16),
        "config": {"model": {"seq_len": 32}, "value_pruning": {"enabled": True, "keep": 0.3}},
    },
    "progressive-requant": {
        "model": model("progressive", "bert", 2, 4, 16),
        "config": {
            "model": {"seq_len": 32},
            "quantization": {"progressive": True, "requant_threshold": 0.6},
        },
    },
    "progressive-none": {
        "model": model("progressive-none", "gpt2", 2, 4, 16),
        "config": {
            "model": {"seq_len": 32},
            "quantization": {"progressive": True, "requant_threshold": 0.001},
        },
    },
    "all-techniques": {
        "model": model("all", "gpt2", 3, 6, 16),
        "config": {"model": {"seq_len": 36}, **ALL_TECHNIQUES},
    },
    "generation-dense": {
        "model": model("gen-dense", "gpt2", 2, 4, 16),
        "config": {"model": {"seq_len": 12, "stage": "generation", "gen_tokens": 4}},
    },
    "generation-all-techniques": {
        "model": model("gen-all", "llama", 3, 4, 16, kv_heads=2),
        "config": {
            "model": {"seq_len": 12, "stage": "generation", "gen_tokens": 5},
            **ALL_TECHNIQUES,
        },
    },
    "gqa-6h-2kv": {
        "model": model("gqa", "llama", 2, 6, 16, kv_heads=2),
        "config": {
            "model": {"seq_len": 20},
            "head_pruning": {"enabled": True, "keep": 0.34, "skip_first": 0.0},
        },
    },
    "odd-sizes": {
        "model": model("odd", "bert", 2, 3, 24),
        "config": {
            "model": {"seq_len": 77},
            "token_pruning": {"enabled": True, "keep": 0.37, "skip_first": 0.0},
            "value_pruning": {"enabled": True, "keep": 0.37},
            "quantization": {"q_bits": 7, "k_msb_bits": 5, "k_lsb_bits": 3, "v_bits": 9},
            "hardware": {"topk_parallelism": 3},
        },
    },
    "key-tiles": {
        "model": model("tiles", "gpt2", 2, 4, 16, kv_heads=2),
        "config": {"model": {"seq_len": 40}, **ALL_TECHNIQUES, "hardware": {"max_tokens": 16}},
    },
    # the per-layer policies: each layer's own KV cache (a state row per layer)
    "generation-per-layer": {
        "model": model("gen-per-layer", "llama", 3, 4, 16, kv_heads=2),
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
    # per-layer scores that decay (score -= score >> 2 before each step adds), per KV head
    "generation-per-layer-decay": {
        "model": model("gen-decay", "llama", 2, 4, 16, kv_heads=2),
        "config": {
            "model": {"seq_len": 14, "stage": "generation", "gen_tokens": 6},
            "token_pruning": {
                "enabled": True,
                "policy": "per-layer",
                "schedule": "uniform",
                "granularity": "kv_head",
                "keep": 0.5,
                "keep_first": 1,
                "keep_recent": 1,
                "decay_shift": 2,
            },
        },
    },
    # a decoder's prompt (the prefill): each KV head of each layer keeps its own tokens,
    # scored by the queries of the last 6 positions only (the observation window)
    "prefill-observation-window": {
        "model": model("prefill-window", "llama", 2, 4, 16, kv_heads=2),
        "config": {
            "model": {"seq_len": 20},
            "token_pruning": {
                "enabled": True,
                "policy": "current",
                "schedule": "uniform",
                "granularity": "kv_head",
                "keep": 0.5,
                "keep_first": 1,
                "observation_window": 6,
            },
        },
    },
    "generation-current": {
        "model": model("gen-current", "gpt2", 2, 4, 16),
        "config": {
            "model": {"seq_len": 14, "stage": "generation", "gen_tokens": 5},
            "token_pruning": {
                "enabled": True,
                "policy": "current",
                "keep": 0.45,
                "skip_first": 0.0,
            },
        },
    },
    "generation-window": {
        "model": model("gen-window", "llama", 2, 4, 16, kv_heads=2),
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
    # per-KV-head selection: a row of token state per (layer, KV head); the KV heads run one
    # after another, and the head top-k after the last of them
    "generation-kv-head": {
        "model": model("gen-kv-head", "llama", 2, 4, 16, kv_heads=2),
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
}


def uses(*names: str):
    """Name the cases a test reads, so that `designs` can build them ahead (in parallel)."""

    def mark(function):
        function.cases = names
        return function

    return mark


@pytest.fixture(scope="module")
def designs(design_factory, request: pytest.FixtureRequest):
    """Start the builds of every case the collected tests of this module read, then hand out."""
    wanted: list[str] = []
    for item in request.session.items:
        if item.path == Path(__file__):
            params = item.callspec.params if hasattr(item, "callspec") else {}
            wanted += [params["name"]] if "name" in params else []
            wanted += getattr(item.function, "cases", ())
    design_factory.prefetch(CASES[name] for name in dict.fromkeys(wanted))
    return design_factory


def state_parts(design, state: np.ndarray) -> dict[str, np.ndarray]:
    info = design.graph.info
    ctx = info.context * design.graph.plan.importance.token_state_rows
    heads = info.num_heads
    return {
        "token_dropped_at": state[:ctx],
        "token_importance": state[ctx : 2 * ctx],
        "head_dropped_at": state[2 * ctx : 2 * ctx + heads],
        "head_importance": state[2 * ctx + heads :],
    }


@pytest.mark.parametrize("name", list(CASES))
def test_design_matches_simulator(designs, name: str) -> None:
    """Bit-exact, byte-exact per plane; a run the C++ stream model warns about raises
    (compiler/codegen/harness.py, StreamMisuse)."""
    design = designs.get(CASES[name])
    for seed in SEEDS:
        vectors, run = design.run(seed)
        golden = vectors.arrays
        if seed == 0:  # the helper's vectors are the ones the project ships
            shipped = {
                p.removeprefix("tb/data/"): b
                for p, b in design.files.items()
                if p.startswith("tb/data/")
            }
            assert vectors.files() == shipped
        layers = golden["out"].shape[0]
        assert np.all(np.any(golden["out"].reshape(layers, -1) != 0, axis=1)), "zero layer"
        assert run.out.dtype == golden["out"].dtype and run.out.shape == golden["out"].shape
        assert np.array_equal(run.out, golden["out"]), (
            f"{name} seed {seed}: {np.count_nonzero(run.out != golden['out'])} codes differ"
        )
        assert np.array_equal(run.state, golden["state"]), f"{name} seed {seed}: state"
        # the simulator's DRAM accounting is the design's traffic at its ports, exactly
        for plane in PLANES:
            assert run.measured.dram_bytes[plane] == vectors.result.dram_bytes[plane], (
                f"{name} seed {seed}: {plane} bytes: design {run.measured.dram_bytes[plane]}, "
                f"simulator {vectors.result.dram_bytes[plane]}"
            )
        assert run.measured.dram_bytes["out"] > 0 and run.measured.dram_bytes["state"] > 0


def reduced_extents(design) -> list[RunExtent]:
    """The co-simulation run, the last layer alone on about half the sequence (two decode
    steps when generating), and layers 1.. on a shorter sequence (every step but one)."""
    info = design.graph.info
    generation = info.stage == "generation"
    later = min(1, info.num_layers - 1)
    return [
        cosim_extent(project_context(design.graph)),
        RunExtent(info.num_layers - 1, 1, info.seq_len // 2 + 1, 2 if generation else 1),
        RunExtent(
            later,
            info.num_layers - later,
            max(1, info.seq_len - 5),
            info.gen_tokens + 4 if generation else 1,
        ),
    ]


@pytest.mark.parametrize("name", list(CASES))
def test_reduced_runs_match_the_simulator(designs, name: str) -> None:
    """A reduced golden run (`spatten compile --cosim-size`, and any other extent) through the
    same design: bit-exact in the layers it ran, nothing written in the others, the pruning
    state and the bytes per plane equal."""
    design = designs.get(CASES[name])
    for extent in reduced_extents(design):
        vectors = golden_vectors(design.graph, seed=4, extent=extent)
        golden, run = vectors.arrays, design.library.run(vectors)
        ran = np.zeros(design.graph.info.num_layers, dtype=bool)
        ran[extent.first_layer : extent.first_layer + extent.layers] = True
        assert np.all(np.any(golden["out"][ran].reshape(ran.sum(), -1) != 0, axis=1)), extent
        assert not np.any(golden["out"][~ran]) and not np.any(run.out[~ran]), extent
        assert np.array_equal(run.out, golden["out"]), (name, extent)
        assert np.array_equal(run.state, golden["state"]), (name, extent)
        for plane in PLANES:
            assert run.measured.dram_bytes[plane] == vectors.result.dram_bytes[plane], (
                name,
                extent,
                plane,
            )


@uses("token-pruning", "generation-kv-head")
def test_the_cosim_run_goes_through_the_token_selection(designs) -> None:
    """The reduced run's layer selects tokens: its state drops exactly what the layer's keep
    fraction says at the reduced sequence length (one decode step: its context)."""
    for name in ("token-pruning", "generation-kv-head"):
        design = designs.get(CASES[name])
        info = design.graph.info
        extent = cosim_extent(project_context(design.graph))
        vectors = golden_vectors(design.graph, seed=0, extent=extent)
        run = design.library.run(vectors)
        assert np.array_equal(run.state, vectors.arrays["state"])
        layer = extent.first_layer
        context = extent.seq_len + (1 if info.stage == "generation" else 0)
        selects = [
            op
            for op in (design.graph.op(n) for n in design.graph.nx_graph.nodes)
            if isinstance(op, TokenSelect) and op.layer == layer
        ]
        kept = selects[0].kept(context)
        record = vectors.result.layers[layer]
        caches = record.kv_head_kept_tokens or [record.kept_tokens]
        seen = [[t for t in tokens if t < context] for tokens in caches]  # later: never seen
        assert kept < context
        assert [len(tokens) for tokens in seen] == [kept] * len(caches), name


def select_keeps(design, kind: type) -> dict[int, int]:
    """Layer -> keep count of the graph's TokenSelect (at the whole context) / HeadSelect
    nodes."""
    ops = (design.graph.op(n) for n in design.graph.nx_graph.nodes)
    context = design.graph.info.context
    return {
        op.layer: op.kept(context) if isinstance(op, TokenSelect) else op.keep
        for op in ops
        if isinstance(op, kind)
    }


def assert_alive_counts(dropped_at: np.ndarray, keeps: dict[int, int]) -> None:
    """After each selecting layer l exactly keep[l] entries stay visible (l < dropped_at)."""
    assert keeps
    for layer, keep in keeps.items():
        assert np.count_nonzero(dropped_at > layer) == keep, (layer, keep, dropped_at)


@uses("token-pruning")
def test_token_pruning_drops_tokens_and_protects_first_and_recent(designs) -> None:
    design = designs.get(CASES["token-pruning"])
    layers, seq = design.graph.info.num_layers, design.graph.info.seq_len
    keeps = select_keeps(design, TokenSelect)
    assert keeps == {0: 24, 1: 16, 2: 8}  # keep 0.4 over 3 layers: 0.6, 0.4, 0.2 of 40
    protected = {0, 1, 2, seq - 4, seq - 3, seq - 2, seq - 1}
    for seed in SEEDS:
        vectors, run = design.run(seed)
        assert np.array_equal(run.state, vectors.arrays["state"])
        dropped = state_parts(design, run.state)["token_dropped_at"]
        assert_alive_counts(dropped, keeps)
        assert protected <= set(np.flatnonzero(dropped == layers).tolist())


@uses("head-pruning")
def test_head_pruning_drops_heads(designs) -> None:
    design = designs.get(CASES["head-pruning"])
    keeps = select_keeps(design, HeadSelect)
    assert keeps == {0: 4, 1: 3, 2: 1}  # keep 0.5 of 6 heads: 0.75, 0.5, 0.25
    for seed in SEEDS:
        _, run = design.run(seed)
        assert_alive_counts(state_parts(design, run.state)["head_dropped_at"], keeps)


@uses("gqa-6h-2kv")
def test_gqa_prunes_heads_within_kv_groups(designs) -> None:
    design = designs.get(CASES["gqa-6h-2kv"])
    assert (design.graph.info.num_heads, design.graph.info.num_kv_heads) == (6, 2)
    assert b"GROUP = 3;" in design.files["src/params.h"]
    keeps = select_keeps(design, HeadSelect)
    assert keeps == {0: 3, 1: 1}
    groups_skipped = 0
    for seed in (*SEEDS, 3, 4, 5):
        vectors, run = design.run(seed)
        assert np.array_equal(run.out, vectors.arrays["out"]), seed
        assert np.array_equal(run.state, vectors.arrays["state"]), seed
        dropped = state_parts(design, run.state)["head_dropped_at"]
        assert_alive_counts(dropped, keeps)
        # all three query heads of a KV head dropped after layer 0: layer 1 skips that KV head
        groups_skipped += sum(bool(np.all(dropped[g * 3 : g * 3 + 3] == 0)) for g in range(2))
    assert groups_skipped >= 2


def _without(name: str, section: str) -> dict:
    case = CASES[name]
    config = {k: v for k, v in case["config"].items() if k != section}
    return {"model": case["model"], "config": config}


@pytest.mark.parametrize(
    ("name", "section"),
    [
        ("value-pruning", "value_pruning"),
        ("odd-sizes", "value_pruning"),
        ("token-pruning", "token_pruning"),
        ("head-pruning", "head_pruning"),
    ],
)
def test_technique_changes_the_output(designs, name: str, section: str) -> None:
    """The same inputs without the technique give other codes: the match above is not dense."""
    design = designs.get(CASES[name])
    graph, cfg = designs.compile(_without(name, section))
    plain = designs.vectors(graph, cfg, seed=0).arrays
    pruned, run = design.run(0)
    for plane in ("q", "k_msb", "k_lsb", "v"):
        assert np.array_equal(plain[plane], pruned.arrays[plane])
    assert not np.array_equal(plain["out"], pruned.arrays["out"])
    assert np.array_equal(run.out, pruned.arrays["out"])


POLICY_CASES = ("generation-per-layer", "generation-current", "generation-window")


@uses(*POLICY_CASES, "generation-kv-head")
@uses("generation-per-layer-decay")
def test_decaying_scores_are_in_the_design(designs) -> None:
    """The design's own constant, and a decay that acts: the same design's golden run with the
    decay taken out of the graph keeps other tokens (so a design that ignored the constant
    could not match the decayed golden run checked in test_design_matches_simulator)."""
    design = designs.get(CASES["generation-per-layer-decay"])
    assert b"TOKEN_DECAY_SHIFT = 2;" in design.files["src/params.h"]
    undecayed = without(design.graph, "decay_shift")
    ours = golden_vectors(design.graph, seed=1).arrays["state"]
    plain = golden_vectors(undecayed, seed=1).arrays["state"]
    assert not np.array_equal(ours, plain)
    _, run = design.run(1)
    assert np.array_equal(run.state, ours)


@uses("prefill-observation-window")
def test_the_observation_window_is_in_the_design(designs) -> None:
    """The design's own constant, and a window that acts: scored by every query row, the same
    prompt keeps other tokens."""
    design = designs.get(CASES["prefill-observation-window"])
    assert b"TOKEN_OBSERVATION_WINDOW = 6;" in design.files["src/params.h"]
    ours = golden_vectors(design.graph, seed=1).arrays["state"]
    every_row = golden_vectors(without(design.graph, "observation_window"), seed=1)
    assert not np.array_equal(ours, every_row.arrays["state"])
    _, run = design.run(1)
    assert np.array_equal(run.state, ours)


def without(graph, attribute: str):
    """A copy of `graph` whose token importance ops have `attribute` 0 (no decay, every
    query row scoring)."""
    copy = graph.copy()
    for node in copy.nx_graph.nodes:
        op = copy.op(node)
        if getattr(op, attribute, 0):
            copy.nx_graph.nodes[node]["op"] = dataclasses.replace(op, **{attribute: 0})
    return copy


def test_per_layer_policies_keep_a_cache_per_layer(designs) -> None:
    """Each layer's row of the design's state (each KV head's, per KV head) evicts tokens of
    its own, down to floor(context * keep_l) at the end; the window policy keeps its sinks
    and the most recent."""
    for name in (*POLICY_CASES, "generation-kv-head"):
        design = designs.get(CASES[name])
        keeps = select_keeps(design, TokenSelect)
        info = design.graph.info
        groups = info.num_kv_heads if name == "generation-kv-head" else 1
        params = design.files["src/params.h"].decode()
        assert f"TOKEN_STATE_ROWS = {info.num_layers * groups};" in params
        assert f"TOKEN_STATE_GROUPS = {groups};" in params
        assert ("TOKEN_BY_RECENCY = true;" in params) == (name == "generation-window")
        fresh = name in ("generation-current", "generation-kv-head")
        assert ("TOKEN_SCORES_FRESH = true;" in params) == fresh
        _, run = design.run(1)
        dropped = state_parts(design, run.state)["token_dropped_at"]
        rows = dropped.reshape(info.num_layers * groups, -1)
        for i, row in enumerate(rows):
            layer = i // groups
            kept = np.flatnonzero(row > layer)
            assert set(np.unique(row[row <= layer]).tolist()) <= {layer}
            assert len(kept) == keeps[layer], (name, layer)
            if name == "generation-window":
                recent = keeps[layer] - 2
                assert kept.tolist() == [0, 1, *range(info.context - recent, info.context)]
        kept_sets = [tuple(np.flatnonzero(r > i // groups)) for i, r in enumerate(rows)]
        assert len(set(kept_sets)) > 1 or name == "generation-window", name
        if groups > 1:  # the KV heads of a layer select apart
            by_layer = [kept_sets[i : i + groups] for i in range(0, len(kept_sets), groups)]
            assert any(len(set(layer_sets)) > 1 for layer_sets in by_layer), name


@uses("progressive-requant")
def test_progressive_requantizes_rows_like_the_simulator(designs) -> None:
    design = designs.get(CASES["progressive-requant"])
    for seed in SEEDS:
        _, run = design.run(seed)
        assert run.requants.sum() > 0
        result = simulate(design.graph, seed=seed, reference=False)
        rows = [record.heads_in * record.tokens_in for record in result.layers]  # no pruning
        for layer, record in enumerate(result.layers):
            assert run.requants[layer] == round(record.requant_fraction * rows[layer])
        assert run.requants.sum() < sum(rows)  # the decision is made per row, not for all


@uses("progressive-none")
def test_progressive_with_low_threshold_requantizes_nothing(designs) -> None:
    design = designs.get(CASES["progressive-none"])
    assert b"PROGRESSIVE = true;" in design.files["src/params.h"]
    for seed in SEEDS:
        _, run = design.run(seed)
        assert run.requants.tolist() == [0] * design.graph.info.num_layers


@uses("all-techniques", "generation-all-techniques")
def test_all_techniques_act_together(designs) -> None:
    for name in ("all-techniques", "generation-all-techniques"):
        design = designs.get(CASES[name])
        layers = design.graph.info.num_layers
        params = design.files["src/params.h"]
        for flag in ("PROGRESSIVE", "TOKEN_PRUNING", "HEAD_PRUNING", "VALUE_PRUNING"):
            assert f"{flag} = true;".encode() in params, (name, flag)
        _, run = design.run(1)
        parts = state_parts(design, run.state)
        assert np.any(parts["token_dropped_at"] < layers), name
        assert np.any(parts["head_dropped_at"] < layers), name
        assert run.requants.sum() > 0, name


@uses("generation-dense")
def test_generation_runs_every_decode_step(designs) -> None:
    design = designs.get(CASES["generation-dense"])
    info = design.graph.info
    vectors, run = design.run(0)
    computed = np.any(run.out != 0, axis=-1)  # [layers, heads, context]
    assert computed[:, :, info.seq_len :].all()  # each generated position has its output row
    assert not computed[:, :, : info.seq_len].any()  # the prompt rows are not recomputed
    assert np.array_equal(run.out, vectors.arrays["out"])


@uses("key-tiles")
def test_keys_beyond_max_tokens_are_tiled(designs) -> None:
    """40 keys on 16-row K/V buffers: every row walks 3 tiles (the last one partial)."""
    design = designs.get(CASES["key-tiles"])
    params = design.files["src/params.h"]
    assert b"TILE = 16;" in params and b"MAX_TILES = 3;" in params
    vectors, run = design.run(5)
    assert np.array_equal(run.out, vectors.arrays["out"])
    assert np.array_equal(run.state, vectors.arrays["state"])
    assert run.requants.sum() > 0


# -- the real testbench binary ---------------------------------------------------------------


@uses("generation-all-techniques")
def test_run_csim_passes_and_a_corrupted_golden_file_fails(designs, tmp_path: Path) -> None:
    design = designs.get(CASES["generation-all-techniques"])
    layers = design.graph.info.num_layers
    broken = tmp_path / "broken"
    shutil.copytree(design.project, broken)
    out_bin = broken / "tb" / "data" / "out.bin"
    data = bytearray(out_bin.read_bytes())
    data[len(data) // 2 + 1] ^= 0x5A
    out_bin.write_bytes(bytes(data))
    with ThreadPoolExecutor(max_workers=2) as pool:  # side by side: both build (a cache miss)
        result, broken_result = pool.map(run_csim, [design.project, broken])

    assert result.ok, result.output
    assert (result.passed, result.failed, result.stream_warnings) == (layers + 1, 0, [])
    assert not broken_result.ok
    assert broken_result.failed >= 1 and broken_result.passed == layers
    assert "output codes differ" in broken_result.output
