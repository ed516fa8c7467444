"""One hardware plan: for every preset, what the plan decides is what the emitted design is
configured with and what `spatten report` computes with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spatten_hls.compiler.codegen.env import render
from spatten_hls.compiler.codegen.lower import project_context
from spatten_hls.compiler.codegen.project import INTERFACE_BUNDLES
from spatten_hls.compiler.driver import compile_model
from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.frontend import preset_names
from spatten_hls.compiler.ir.plan import FETCH_FIFO_DEPTH, STATE_ARRAYS
from spatten_hls.compiler.perf import performance_report
from spatten_hls.compiler.perf.cycles import all_layer_cycles
from spatten_hls.compiler.perf.resources import bram_blocks, estimate_resources, uram_blocks
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


def row_blocks(result, layer: int, keys_per_cycle: int) -> tuple[int, int]:
    """(pipelined-loop blocks over every query row of `layer`, rows) for an unpruned
    summarization: a row of visible index j sees j + 1 keys when causal, all otherwise."""
    info, record = result.info, result.layers[layer]
    n = record.tokens_in
    visible = range(1, n + 1) if info.causal else [n] * n
    blocks = sum(-(-v // keys_per_cycle) for v in visible)
    return record.heads_in * blocks, record.heads_in * n


@pytest.mark.parametrize("preset", preset_names())
def test_plan_codegen_and_report_agree(reports, preset) -> None:
    graph, result, report = reports[preset]
    plan = graph.lowered_plan()
    emitted = params_h(graph)
    f = plan.fetcher
    assert {
        name: emitted[name]
        for name in (
            "TILE",
            "MAX_TILES",
            "TOPK_PARALLELISM",
            "QK_KPC",
            "PV_KPC",
            "SOFTMAX_LANES",
            "VALUE_TOPK_P",
            "VALUE_TOPK_ENGINES",
            "SCAN_LANES",
            "QK_DEPTH",
            "PV_DEPTH",
            "EXP_DEPTH",
            "NORM_DEPTH",
            "K_LANES",
            "V_LANES",
            "K_BANKS",
            "V_BANKS",
            "Q_BEATS",
            "K_MSB_BEATS",
            "K_LSB_BEATS",
            "V_BEATS",
            "BEAT_MILLICYCLES",
            "FETCH_LATENCY",
            "THRESHOLD_CODE",
            "QK_STREAM_II",
            "PV_STREAM_II",
            "FETCH_FIFO_DEPTH",
        )
    } == {
        "TILE": f.tile_tokens,
        "MAX_TILES": f.tiles,
        "TOPK_PARALLELISM": plan.topk.comparators,
        "QK_KPC": plan.qk.keys_per_cycle,
        "PV_KPC": plan.pv.keys_per_cycle,
        "SOFTMAX_LANES": plan.softmax.lanes,
        "VALUE_TOPK_P": plan.value_topk.comparators,
        "VALUE_TOPK_ENGINES": plan.value_topk.engines,
        "SCAN_LANES": plan.importance.scan_lanes,
        "QK_DEPTH": plan.qk.depth,
        "PV_DEPTH": plan.pv.depth,
        "EXP_DEPTH": plan.softmax.exp_depth,
        "NORM_DEPTH": plan.softmax.norm_depth,
        "K_LANES": f.k_lanes,
        "V_LANES": f.v_lanes,
        "K_BANKS": plan.qk.banks,
        "V_BANKS": plan.pv.banks,
        "Q_BEATS": f.q_beats,
        "K_MSB_BEATS": f.k_msb_beats,
        "K_LSB_BEATS": f.k_lsb_beats,
        "V_BEATS": f.v_beats,
        "BEAT_MILLICYCLES": f.beat_millicycles,
        "FETCH_LATENCY": f.latency,
        "THRESHOLD_CODE": plan.requant.threshold_code,
        "QK_STREAM_II": -(-f.k_lanes // plan.qk.keys_per_cycle),
        "PV_STREAM_II": -(-f.v_lanes // plan.pv.keys_per_cycle),
        "FETCH_FIFO_DEPTH": FETCH_FIFO_DEPTH,
    }
    assert plan.qk.keys_per_cycle == 512 // graph.info.head_dim  # half of 1024 multipliers
    assert plan.softmax.lanes == plan.qk.keys_per_cycle  # matched to the Q·K output rate
    hardware = report.hardware
    assert (
        hardware["qk_keys_per_cycle"],
        hardware["pv_keys_per_cycle"],
        hardware["topk_parallelism"],
    ) == (plan.qk.keys_per_cycle, plan.pv.keys_per_cycle, plan.topk.comparators)
    # the report's engine cycles are the emitted loops': (blocks - 1) x II + depth per row,
    # except that the first row of a KV head takes its K and V rows as they arrive (Q·K scores
    # them, prob·V multiplies them; both keep them) and that a later row's prob·V first
    # stores the V rows it brings in (causal: one, at each row of a KV head's first query head)
    n = result.layers[0].tokens_in
    kv_heads = result.layers[0].heads_in // graph.info.group_size
    first_visible = 1 if graph.info.causal else n

    def first_row_extra(lanes: int, stream_ii: int, keys_per_cycle: int, keys: int) -> int:
        return (-(-keys // lanes) - 1) * stream_ii - (-(-first_visible // keys_per_cycle) - 1)

    blocks, rows = row_blocks(result, 0, plan.qk.keys_per_cycle)
    extra = first_row_extra(f.k_lanes, plan.qk_stream_ii, plan.qk.keys_per_cycle, n)
    qk = blocks + rows * (plan.qk.depth - 1) + kv_heads * extra
    assert report.layers[0].cycles["qk"] == qk
    blocks, rows = row_blocks(result, 0, plan.pv.keys_per_cycle)
    extra = first_row_extra(f.v_lanes, plan.pv_stream_ii, plan.pv.keys_per_cycle, first_visible)
    stores = n - 1 if graph.info.causal else 0
    pv = blocks + rows * (plan.pv.depth - 1) + kv_heads * (extra + stores)
    assert report.layers[0].cycles["pv"] == pv


def test_minilm_qk_takes_half_the_blocks_of_bert_base(reports) -> None:
    """head_dim 32 against 64 at 12 heads and 128 tokens: twice the keys per cycle."""
    minilm, bert = reports["minilm-l6"], reports["bert-base"]
    assert minilm[0].info.num_heads == bert[0].info.num_heads
    assert minilm[2].layers[0].tokens == bert[2].layers[0].tokens
    m_plan, b_plan = minilm[0].lowered_plan(), bert[0].lowered_plan()
    assert m_plan.qk.keys_per_cycle == 2 * b_plan.qk.keys_per_cycle
    m_blocks, rows = row_blocks(minilm[1], 0, m_plan.qk.keys_per_cycle)
    b_blocks, _ = row_blocks(bert[1], 0, b_plan.qk.keys_per_cycle)
    assert 2 * m_blocks == b_blocks
    assert minilm[2].layers[0].cycles["qk"] - rows * (m_plan.qk.depth - 1) == m_blocks


ENGINES_DIR = Path(__file__).parents[2] / "templates" / "hls" / "engines"


def test_resources_count_the_emitted_multipliers_and_buffers(tmp_path) -> None:
    """The report's DSPs and K/V buffers are the emitted ones: a multiplier per code of every
    Q·K and prob·V lane, `[TILE][HEAD_DIM]` 16-bit buffers (one each, in Q·K's and prob·V's
    processes) cut into K_BANKS / V_BANKS cyclic banks (a 1024-token GPT-2 design, so that the
    banks are deep enough for URAM), and FETCH_FIFO_DEPTH-step fetcher FIFOs."""
    rows_h = (ENGINES_DIR / "rows.h").read_text()
    layer_h = (ENGINES_DIR / "layer.h").read_text()
    types_h = (ENGINES_DIR / "spatten_types.h").read_text()
    for declaration in (
        "static code_t k[Cfg::TILE][Cfg::HEAD_DIM];",
        "static lsb_t k_lsb[Cfg::TILE][Cfg::HEAD_DIM];",
        "static code_t v[Cfg::TILE][Cfg::HEAD_DIM];",
        "variable = k cyclic factor = Cfg::K_BANKS dim = 1",
        "variable = v cyclic factor = Cfg::V_BANKS dim = 1",
    ):
        assert declaration in rows_h, declaration
    for fifo in ("k_msb", "k_lsb", "v_rows"):
        assert f"STREAM variable = {fifo} depth = Cfg::FETCH_FIFO_DEPTH" in layer_h, fifo
    assert "typedef ap_int<16> code_t;" in types_h and "typedef ap_uint<16> lsb_t;" in types_h
    config = tmp_path / "long.toml"
    config.write_text("[model]\nseq_len = 1024\n")
    graph = compile_model("gpt2-medium", config).graph
    p = params_h(graph)
    res = estimate_resources(graph.lowered_plan())
    assert res.breakdown["multipliers"]["dsp"] == (p["QK_KPC"] + p["PV_KPC"]) * p["HEAD_DIM"]
    word = p["HEAD_DIM"] * 16  # a row reshaped into one word
    for name, banks in (("k_buffer", p["K_BANKS"]), ("v_buffer", p["V_BANKS"])):
        depth = -(-p["TILE"] // banks)
        assert res.breakdown[name]["uram"] == banks * uram_blocks(word, depth), name
    assert res.uram >= res.breakdown["k_buffer"]["uram"] > 0
    assert p["FETCH_FIFO_DEPTH"] == FETCH_FIFO_DEPTH


def cxx_function(source: str, name: str) -> str:
    """The text of the C++ function `name` in `source`: from its signature to the closing
    brace at the start of a line."""
    start = source.index(f"void {name}(")
    return source[start : source.index("\n}\n", start)]


def test_each_dot_engine_counts_its_buffer_and_its_streamed_array(tmp_path) -> None:
    """Q·K and prob·V each have two multiplier arrays in rows.h: the buffer's (`*_KPC` rows of
    HEAD_DIM unrolled at II 1) and the streamed one (`K_LANES` / `V_LANES` rows unrolled at II
    `*_STREAM_II`, shared over those cycles). The estimate counts both, and so does the report
    (a design whose fetch lanes are no multiple of the keys a cycle, so the two differ)."""
    rows_h = (ENGINES_DIR / "rows.h").read_text()
    for function, ii, lanes in (
        ("qk_scores", "1", "Cfg::QK_KPC"),
        ("qk_streamed", "Cfg::QK_STREAM_II", "Cfg::K_LANES"),
        ("pv_rows", "1", "Cfg::PV_KPC"),
        ("pv_streamed", "Cfg::PV_STREAM_II", "Cfg::V_LANES"),
    ):
        body = cxx_function(rows_h, function)
        assert f"#pragma HLS PIPELINE II = {ii}" in body, function
        assert f"for (int l = 0; l < {lanes}; l++) {{\n#pragma HLS UNROLL" in body, function
    config = tmp_path / "lanes.toml"
    config.write_text("[hardware]\nmultipliers = 896\n")  # 7 keys a cycle, 16 lanes
    graph = compile_model("gpt2-small", config).graph
    p, plan = params_h(graph), graph.lowered_plan()
    assert (p["QK_KPC"], p["K_LANES"], p["QK_STREAM_II"]) == (7, 16, 3)
    # 16 x 64 products every 3 cycles: 342 multipliers, not the buffer array's 7 x 64
    streamed = (
        -(-p["K_LANES"] * p["HEAD_DIM"] // p["QK_STREAM_II"]),
        -(-p["V_LANES"] * p["HEAD_DIM"] // p["PV_STREAM_II"]),
    )
    assert streamed == (342, 342) and plan.qk.multipliers == 448
    assert plan.streamed_multipliers == streamed
    res = estimate_resources(plan)
    assert res.breakdown["multipliers"]["dsp"] == (p["QK_KPC"] + p["PV_KPC"]) * p["HEAD_DIM"]
    assert res.breakdown["streamed_multipliers"]["dsp"] == sum(streamed)
    scaled = p["QK_KPC"] + -(-p["K_LANES"] // p["QK_STREAM_II"])  # scale_score, shared alike
    assert res.breakdown["score_scaling"]["dsp"] == scaled * 4
    text = performance_report(simulate(graph, reference=False), plan).to_text()
    assert f"the streamed arrays' {streamed[0]} + {streamed[1]} besides" in text


def test_a_multiplier_budget_below_one_key_a_cycle_is_refused(tmp_path) -> None:
    config = tmp_path / "small.toml"
    config.write_text("[hardware]\nmultipliers = 100\n")
    with pytest.raises(CompilerError, match=r"hardware.multipliers = 100 .* at least 128"):
        compile_model("bert-base", config)


def test_per_layer_state_deepens_only_the_token_state(tmp_path) -> None:
    """A KV cache per layer and KV head multiplies the token state (TOKEN_STATE_ROWS x
    MAX_CTX entries), not the buffers that hold one sequence (`[MAX_CTX]` arrays): the row
    buffers, positions and deferred-row lists are sized as in the cascade's design."""
    layer_h = (ENGINES_DIR / "layer.h").read_text()
    assert "index_t token_dropped_at[Cfg::TOKEN_STATE_ROWS][Cfg::MAX_CTX];" in layer_h
    assert "static index_t pos[Cfg::MAX_CTX], pos_k[Cfg::MAX_CTX], pos_v[Cfg::MAX_CTX];" in layer_h
    base = "[model]\nseq_len = 1024\n[token_pruning]\nenabled = true\nkeep = 0.5\n"
    estimates = {}
    for name, policy in (
        ("cascade", ""),
        ("per-layer", 'policy = "per-layer"\ngranularity = "kv_head"\nschedule = "uniform"\n'),
    ):
        config = tmp_path / f"{name}.toml"
        config.write_text(base + policy)
        graph = compile_model("smollm2-135m", config).graph
        p, plan = params_h(graph), graph.lowered_plan()
        assert plan.importance.context == p["MAX_CTX"]
        entries = p["TOKEN_STATE_ROWS"] * p["MAX_CTX"]  # TOKEN_STATE
        assert plan.importance.tokens == entries
        res = estimate_resources(plan)
        scan = p["SCAN_LANES"]
        per_bank = p["TOKEN_STATE_ROWS"] * -(-p["MAX_CTX"] // scan)  # cyclic along the tokens
        state = scan * (bram_blocks(32, per_bank) + bram_blocks(64, per_bank))
        assert res.breakdown["token_state"]["bram_18k"] == state
        estimates[name] = (p, res)
    (p_cascade, cascade), (p_layers, layers) = estimates["cascade"], estimates["per-layer"]
    assert p_layers["TOKEN_STATE_ROWS"] == 30 * 3 and p_cascade["TOKEN_STATE_ROWS"] == 1
    for group in ("row_buffers", "positions", "importance", "deferred_rows", "token_selection"):
        assert layers.breakdown[group] == cascade.breakdown[group], group
    assert (
        layers.breakdown["token_state"]["bram_18k"]
        > 10 * cascade.breakdown["token_state"]["bram_18k"]
    )
    assert layers.fits is True


def test_the_token_top_k_memories_are_counted(tmp_path) -> None:
    """The token selection's quick-select keeps three candidate buffers of 64-bit scores in one
    array cut into TOPK_PARALLELISM cyclic banks along the scores (topk.h); the window policy
    has no quick-select."""
    topk_h = (ENGINES_DIR / "topk.h").read_text()
    assert "T buf[3][MAXN];" in topk_h and "variable=buf cyclic factor=P dim=2" in topk_h
    base = "[model]\nseq_len = 1024\n[token_pruning]\nenabled = true\nkeep = 0.5\n"
    groups = {}
    shapes = set()
    for name, extra in (("top-k", ""), ("window", 'policy = "window"\n'), ("off", None)):
        config = tmp_path / f"{name}.toml"
        config.write_text("[model]\nseq_len = 1024\n" if extra is None else base + extra)
        graph = compile_model("smollm2-135m", config).graph
        p = params_h(graph)
        shapes.add((p["MAX_CTX"], p["TOPK_PARALLELISM"]))
        groups[name] = estimate_resources(graph.lowered_plan()).breakdown
    ((ctx, banks),) = shapes
    # buf[3][MAXN] cyclic along dim 2: `banks` banks, each a third of every candidate buffer
    quick_select = banks * bram_blocks(64, 3 * -(-ctx // banks))
    assert quick_select == 16 * 2  # 192 x 64 bits a bank
    flags = bram_blocks(1, ctx)
    assert groups["top-k"]["token_selection"]["bram_18k"] == (
        2 * bram_blocks(64, ctx) + 3 * flags + quick_select
    )
    assert groups["window"]["token_selection"]["bram_18k"] == bram_blocks(64, ctx) + 2 * flags
    assert "token_selection" not in groups["off"]


def test_each_pruning_state_array_moves_in_a_bursting_loop_of_its_own() -> None:
    """The token and head state share the gmem_state m_axi bundle, and Vitis bursts a loop's
    accesses to a bundle only when no other array of it is accessed in that loop: each of the
    2 x STATE_ARRAYS ports moves in its own call of `move_array`, whose loops touch one port
    each, at II 1; the model's (and C-simulation's) state cycles are STATE_ARRAYS such loops
    over the tokens and as many over the heads."""
    state_ports = [port for port, bundle in INTERFACE_BUNDLES if bundle == "gmem_state"]
    assert len(state_ports) == 2 * STATE_ARRAYS  # token and head state, STATE_ARRAYS each
    layer_h = (ENGINES_DIR / "layer.h").read_text()
    mover = cxx_function(layer_h, "move_array")
    loops = re.findall(
        r"for \(int i = 0; i < ROWS \* N; i\+\+\) \{\n(.*?)\n        \}", mover, re.S
    )
    assert len(loops) == 2  # load, store
    for loop in loops:
        assert loop.startswith("#pragma HLS PIPELINE II = 1\n")
        assert len(re.findall(r"\bport\[i\]", loop)) == 1
    body = cxx_function(layer_h, "move_state")
    calls = re.findall(r"move_array<[^>]+>\(&?st\.(\w+), (\w+), load\);", body)
    assert sorted(calls) == sorted((port, port) for port in state_ports)
    assert "Cfg::STATE_ARRAYS * (loop_cycles(Cfg::TOKEN_STATE, 1000," in " ".join(body.split())
    graph = compile_model("bert-base", None).graph
    plan = graph.lowered_plan()
    assert params_h(graph)["STATE_ARRAYS"] == STATE_ARRAYS
    latency = plan.fetcher.latency
    tokens, heads = plan.importance.tokens, plan.importance.heads
    one_way = STATE_ARRAYS * ((tokens - 1 + latency) + (heads - 1 + latency))
    layers = all_layer_cycles(simulate(graph, reference=False), plan)
    # loaded by the first invocation, stored by the last; besides, every invocation (a layer)
    # loads the heads' two parameter arrays over their own shared bundle, a head each 2 cycles
    params = graph.info.num_layers * ((heads - 1) * 2 + latency)
    assert sum(c.engines["state"] for c in layers) == 2 * one_way + params
