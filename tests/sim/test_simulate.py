"""The functional simulator (`compiler.sim.simulate`) on typed attention graphs.

Wiring is checked bit for bit against the per-head reference chain
(`kernels.attention.attention_head_fixed` on codes from `quantize_symmetric`); the stages,
GQA sharing, causality and DRAM accounting against what docs/cli.md documents.
"""

from __future__ import annotations

import functools
import json
import math
import re

import numpy as np
import pytest

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.driver import compile_model
from spatten_hls.compiler.errors import SimulationError
from spatten_hls.compiler.frontend import ModelSpec
from spatten_hls.compiler.frontend.builder import build_attention_graph, check_against_model
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline
from spatten_hls.compiler.sim import simulate
from spatten_hls.compiler.sim.inputs import load_inputs_npz, random_inputs
from spatten_hls.kernels.attention import attention_head_fixed
from spatten_hls.kernels.error_bound import output_error_bound
from spatten_hls.kernels.formats import SCORE_FRAC
from spatten_hls.kernels.quantize import quantize_symmetric
from spatten_hls.kernels.reference import attention_float
from spatten_hls.kernels.scale import scale_multiplier

DEFAULT_BITS = (("q_bits", 12), ("k_msb_bits", 8), ("k_lsb_bits", 4), ("v_bits", 12))
ODD_BITS = (("q_bits", 10), ("k_msb_bits", 7), ("k_lsb_bits", 4), ("v_bits", 9))


@functools.cache
def tiny_graph(
    *,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    d: int = 16,
    seq: int = 20,
    causal: bool = True,
    stage: str = "summarization",
    gen: int = 4,
    bits: tuple = DEFAULT_BITS,
) -> AttnGraph:
    spec = ModelSpec(
        name="tiny-llama" if causal else "tiny-bert",
        family="llama" if causal else "bert",
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=d,
        hidden_size=heads * d,
        max_positions=512,
        causal=causal,
        source="test",
    )
    model: dict = {"seq_len": seq, "stage": stage}
    if stage == "generation":
        model["gen_tokens"] = gen
    cfg = config_from_dict({"model": model, "quantization": dict(bits)})
    check_against_model(cfg, spec)
    return run_pipeline(build_attention_graph(spec, cfg), cfg, DEFAULT_PIPELINE)


def widths(bits: tuple) -> tuple[int, int, int]:
    b = dict(bits)
    return b["q_bits"], b["k_msb_bits"] + b["k_lsb_bits"], b["v_bits"]


def head_reference(
    inputs: dict, layer: int, head: int, g: AttnGraph, bits: tuple
) -> tuple[np.ndarray, float]:
    """One head through the unfused reference chain: (output codes, V scale)."""
    info = g.info
    q_bits, k_bits, v_bits = widths(bits)
    kv = head // info.group_size
    q, s_q = quantize_symmetric(inputs[f"q{layer}"][head], q_bits)
    k, s_k = quantize_symmetric(inputs[f"k{layer}"][kv], k_bits)
    v, s_v = quantize_symmetric(inputs[f"v{layer}"][kv], v_bits)
    m, sh = scale_multiplier(s_q * s_k / math.sqrt(info.head_dim) * 2.0**SCORE_FRAC)
    out, _ = attention_head_fixed(q, k, v, m, sh, v_bits, info.causal, 0)
    return out, s_v


def assert_same_outputs(a, b, rows: slice = slice(None)) -> None:
    assert a.out_codes.keys() == b.out_codes.keys()
    for key in a.out_codes:
        assert np.array_equal(a.out_codes[key][:, rows], b.out_codes[key][:, rows]), key
        assert np.array_equal(a.outputs[key][:, rows], b.outputs[key][:, rows]), key


# -- wiring: every head equals the reference chain bit for bit ------------------------------


@pytest.mark.parametrize("bits", [DEFAULT_BITS, ODD_BITS], ids=["12-12-12", "10-11-9"])
@pytest.mark.parametrize("causal,kv_heads", [(True, 2), (False, 4)], ids=["gqa-causal", "bert"])
def test_each_head_equals_attention_head_fixed(bits: tuple, causal: bool, kv_heads: int) -> None:
    g = tiny_graph(kv_heads=kv_heads, causal=causal, bits=bits)
    result = simulate(g, seed=3)
    assert sorted(result.out_codes) == ["out0", "out1"]
    for layer in range(2):
        codes = result.out_codes[f"out{layer}"]
        assert codes.shape == (4, 20, 16) and codes.dtype == np.int64
        for head in range(4):
            expected, s_v = head_reference(result.inputs, layer, head, g, bits)
            assert np.array_equal(codes[head], expected), (layer, head)
            out = result.outputs[f"out{layer}"][head]
            assert out.dtype == np.float32
            assert np.array_equal(out, (expected * s_v).astype(np.float32))
        assert np.abs(codes).max() > 0


def test_reference_flag_only_skips_the_float_reference() -> None:
    g = tiny_graph()
    with_ref, without = simulate(g, seed=1), simulate(g, seed=1, reference=False)
    assert_same_outputs(with_ref, without)
    assert without.references == {} and without.rel_err_vs_float is None
    assert all(r.rel_err_vs_float is None for r in without.layers)
    assert sorted(with_ref.references) == ["ref0", "ref1"]
    assert 0 < with_ref.rel_err_vs_float < 1e-2


# -- determinism ----------------------------------------------------------------------------


def test_same_seed_is_deterministic_and_seeds_differ() -> None:
    g = tiny_graph()
    a, b, c = simulate(g, seed=0), simulate(g, seed=0), simulate(g, seed=1)
    assert_same_outputs(a, b)
    assert json.dumps(a.to_json_dict()) == json.dumps(b.to_json_dict())
    for key, array in a.arrays_to_save().items():
        assert np.array_equal(array, b.arrays_to_save()[key]), key
    assert not np.array_equal(a.inputs["q0"], c.inputs["q0"])
    assert not np.array_equal(a.out_codes["out0"], c.out_codes["out0"])
    assert not np.array_equal(a.out_codes["out1"], c.out_codes["out1"])
    assert a.to_json_dict()["seed"] == 0 and c.to_json_dict()["seed"] == 1
    assert a.to_json_dict()["rel_err_vs_float"] != c.to_json_dict()["rel_err_vs_float"]


# -- accuracy on the bert-base preset -------------------------------------------------------


def test_bert_base_accuracy_and_error_bound() -> None:
    g = compile_model("bert-base", None).graph
    assert (g.info.seq_len, g.info.num_layers, g.info.num_heads) == (128, 12, 12)
    result = simulate(g)
    assert 0 < result.rel_err_vs_float <= 1e-2
    assert all(0 < r.rel_err_vs_float <= 1e-2 for r in result.layers)
    for layer, head in [(0, 0), (5, 7), (11, 11)]:
        q, k, v = (result.inputs[f"{t}{layer}"][head] for t in "qkv")
        y = attention_float(q, k, v, causal=False)
        assert np.allclose(result.references[f"ref{layer}"][head], y, rtol=1e-12, atol=1e-13)
        _, s_v = quantize_symmetric(v, 12)
        y_sim = result.out_codes[f"out{layer}"][head] * s_v
        bound = output_error_bound(q, k, v, 12, 12, 12, causal=False)
        err = float(np.max(np.abs(y_sim - y)))
        assert math.isfinite(bound) and 0 < err <= bound, (layer, head, err, bound)


# -- causality ------------------------------------------------------------------------------


def test_future_positions_do_not_change_earlier_rows() -> None:
    g = tiny_graph()
    rng = np.random.default_rng(5)
    base = {k: np.clip(a, -20, 20) for k, a in random_inputs(g.info, 5).items()}
    for a in base.values():
        a[:, 0, 0] = 25.0  # every head's max |x| sits in row 0: scales cannot change
    cut = 8
    perturbed = {k: a.copy() for k, a in base.items()}
    for a in perturbed.values():
        a[:, cut + 1 :] = rng.uniform(-20, 20, a[:, cut + 1 :].shape).astype(np.float32)
    before, after = simulate(g, base), simulate(g, perturbed)
    assert_same_outputs(before, after, slice(0, cut + 1))
    for key in before.out_codes:
        assert not np.array_equal(
            before.out_codes[key][:, cut + 1 :], after.out_codes[key][:, cut + 1 :]
        )


def test_non_causal_rows_see_the_future() -> None:
    g = tiny_graph(causal=False, kv_heads=4)
    base = random_inputs(g.info, 2)
    changed = {k: a.copy() for k, a in base.items()}
    changed["v0"][:, -1] = -changed["v0"][:, -1]  # flip the last token's values (same scale)
    a, b = simulate(g, base), simulate(g, changed)
    assert not np.array_equal(a.out_codes["out0"][:, 0], b.out_codes["out0"][:, 0])
    assert np.array_equal(a.out_codes["out1"], b.out_codes["out1"])


# -- grouped-query attention ----------------------------------------------------------------


def test_gqa_equals_repeated_kv_heads_with_a_third_of_the_kv_traffic() -> None:
    grouped = tiny_graph(heads=9, kv_heads=3)
    full = tiny_graph(heads=9, kv_heads=9)
    inputs = random_inputs(grouped.info, 9)
    repeated = {k: (np.repeat(a, 3, axis=0) if k[0] in "kv" else a) for k, a in inputs.items()}
    a, b = simulate(grouped, inputs), simulate(full, repeated)
    assert_same_outputs(a, b)
    assert a.dram_bytes["q"] == b.dram_bytes["q"] > 0
    for key in ("k_msb", "k_lsb", "v"):
        assert 3 * a.dram_bytes[key] == b.dram_bytes[key] > 0, key
    assert [r.values_fetched for r in a.layers] == [r.values_fetched for r in b.layers]


# -- generation stage -----------------------------------------------------------------------


def test_generation_rows_equal_causal_summarization_rows() -> None:
    s, n_gen = 12, 5
    gen = tiny_graph(stage="generation", seq=s, gen=n_gen)
    summ = tiny_graph(seq=s + n_gen)
    inputs = random_inputs(gen.info, 4)
    assert inputs["q0"].shape == (4, s + n_gen, 16)
    a, b = simulate(gen, inputs), simulate(summ, inputs)
    assert_same_outputs(a, b, slice(s, s + n_gen))
    for key in a.out_codes:
        assert not a.out_codes[key][:, :s].any() and not a.outputs[key][:, :s].any()
        assert b.out_codes[key][:, :s].any()
        ref = a.references["ref" + key[3:]]
        assert not ref[:, :s].any()
        assert np.allclose(ref[:, s:], b.references["ref" + key[3:]][:, s:], rtol=1e-12, atol=1e-13)
    assert 0 < a.rel_err_vs_float < 1e-2


def test_generation_dram_and_layer_records() -> None:
    s, n_gen, layers, heads, kv, d = 12, 5, 2, 4, 2, 16
    result = simulate(tiny_graph(stage="generation", seq=s, gen=n_gen, bits=ODD_BITS), seed=0)
    q_bits, _, v_bits = widths(ODD_BITS)
    cache = sum(s + t + 1 for t in range(n_gen))  # K/V rows fetched per KV head, all steps
    row = lambda bits: math.ceil(bits * d / 256) * 32  # noqa: E731  whole 256-bit beats
    dram = result.dram_bytes
    assert dram["q"] == layers * heads * n_gen * row(q_bits)
    assert dram["k_msb"] == layers * kv * cache * row(7)
    assert dram["k_lsb"] == layers * kv * cache * row(4)
    assert dram["v"] == layers * kv * cache * row(v_bits)
    assert dram["total"] == dram["q"] + dram["k_msb"] + dram["k_lsb"] + dram["v"]
    assert result.dense_dram_bytes == layers * row(12) * sum(
        heads + 2 * kv * (s + t + 1) for t in range(n_gen)
    )
    for i, record in enumerate(result.layers):
        assert record.layer == i
        assert record.tokens_in == s + n_gen
        assert record.values_fetched == heads * cache
    doc = result.to_json_dict()
    assert (doc["stage"], doc["seq_len"], doc["gen_tokens"]) == ("generation", s, n_gen)


# -- DRAM accounting and values fetched (summarization) -------------------------------------


@pytest.mark.parametrize(
    "d,bits",
    [
        (64, DEFAULT_BITS),
        (6, (("q_bits", 7), ("k_msb_bits", 5), ("k_lsb_bits", 3), ("v_bits", 9))),
        (64, (("q_bits", 8), ("k_msb_bits", 8), ("k_lsb_bits", 0), ("v_bits", 8))),
    ],
)
def test_summarization_dram_bytes(d: int, bits: tuple) -> None:
    layers, heads, kv, seq = 2, 4, 2, 20
    result = simulate(tiny_graph(d=d, bits=bits), seed=0, reference=False)
    b = dict(bits)
    row = lambda n: -(-n * d // 256) * 32  # noqa: E731  whole 256-bit beats
    dram = result.dram_bytes
    assert dram["q"] == layers * heads * seq * row(b["q_bits"])
    assert dram["k_msb"] == layers * kv * seq * row(b["k_msb_bits"])
    assert dram["k_lsb"] == layers * kv * seq * row(b["k_lsb_bits"])
    assert dram["v"] == layers * kv * seq * row(b["v_bits"])
    assert dram["total"] == sum(dram[k] for k in ("q", "k_msb", "k_lsb", "v"))
    dense = layers * (heads + 2 * kv) * seq * row(12)
    assert result.dense_dram_bytes == dense
    if bits == DEFAULT_BITS:
        assert dram["total"] == dense and result.dram_reduction == 1.0
    if b["q_bits"] == b["v_bits"] == 8:
        assert result.dram_reduction == 1.5 > 1
        assert result.to_json_dict()["dram_reduction"] == 1.5


def test_rows_move_in_whole_beats_per_plane() -> None:
    # d=6: 42 bits of Q (7-bit) and K's 5-bit and 3-bit planes each take one 256-bit beat;
    # d=48: 12-bit V is 576 bits, three beats (the last one partly used)
    bits = (("q_bits", 7), ("k_msb_bits", 5), ("k_lsb_bits", 3), ("v_bits", 12))
    narrow = simulate(tiny_graph(d=6, bits=bits), seed=0, reference=False)
    assert narrow.dram_bytes["k_msb"] + narrow.dram_bytes["k_lsb"] == 2 * 2 * 20 * (32 + 32)
    assert narrow.dram_bytes["q"] == 2 * 4 * 20 * 32
    wide = simulate(tiny_graph(d=48, bits=bits), seed=0, reference=False)
    assert wide.dram_bytes["v"] == 2 * 2 * 20 * 3 * 32


@pytest.mark.parametrize("causal,kv_heads", [(False, 4), (True, 2)])
def test_values_fetched(causal: bool, kv_heads: int) -> None:
    heads, seq = 4, 20
    result = simulate(tiny_graph(causal=causal, kv_heads=kv_heads), seed=0, reference=False)
    expected = heads * seq * (seq + 1) // 2 if causal else heads * seq * seq
    assert [r.values_fetched for r in result.layers] == [expected, expected]
    for i, record in enumerate(result.layers):
        assert record.layer == i and record.tokens_in == seq
        assert record.kept_tokens == list(range(seq))
        assert record.heads_kept == list(range(heads))
        assert record.requant_fraction == 0.0


# -- inputs ---------------------------------------------------------------------------------


def qkv_only(arrays: dict) -> dict:
    return {k: v for k, v in arrays.items() if k[0] in "qkv" and k[1:].isdigit()}


def test_npz_round_trip(tmp_path) -> None:
    g = tiny_graph()
    first = simulate(g, seed=7)
    saved = first.arrays_to_save()
    assert sorted(saved) == ["k0", "k1", "out0", "out1", "q0", "q1", "ref0", "ref1", "v0", "v1"]
    for key, array in saved.items():
        assert array.dtype == np.float32, key
        assert array.shape == ((2, 20, 16) if key[0] in "kv" else (4, 20, 16)), key
    path = tmp_path / "qkv.npz"
    np.savez(path, **qkv_only(saved))
    loaded = load_inputs_npz(path, g.info)
    assert sorted(loaded) == ["k0", "k1", "q0", "q1", "v0", "v1"]
    again = simulate(g, loaded, seed=123)  # the seed is irrelevant with inputs
    assert_same_outputs(first, again)
    # a whole saved run (outputs and references included) is accepted as inputs too
    whole = tmp_path / "run.npz"
    np.savez(whole, **saved)
    assert_same_outputs(first, simulate(g, load_inputs_npz(whole, g.info)))


def bad_inputs() -> list:
    def drop(a):
        del a["k1"]

    def extra(a):
        a["x0"] = a["q0"]

    def stale_layer(a):
        a["out7"] = a["q0"]

    def shape(a):
        a["v0"] = a["v0"][:, :-1]

    def nan(a):
        a["q1"][2, 3, 4] = np.nan

    def inf(a):
        a["k0"][0, 0, 1] = np.inf

    def beyond_float32(a):
        a["v1"] = a["v1"].astype(np.float64)
        a["v1"][1, 1, 1] = 1e39

    return [
        (drop, "k1", "missing"),
        (extra, "x0", "unexpected"),
        (stale_layer, "out7", "unexpected"),
        (shape, "v0", "shape"),
        (nan, "q1", "non-finite"),
        (inf, "k0", "non-finite"),
        (beyond_float32, "v1", "float32"),
    ]


@pytest.mark.parametrize("spoil,key,what", bad_inputs(), ids=lambda x: getattr(x, "__name__", x))
def test_bad_inputs_name_the_key(tmp_path, spoil, key: str, what: str) -> None:
    g = tiny_graph()
    arrays = random_inputs(g.info, 0)
    spoil(arrays)
    with pytest.raises(SimulationError, match=f"{what}.*{key}|{key}.*{what}"):
        simulate(g, arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(SimulationError, match=re.escape(str(path))) as info:
        load_inputs_npz(path, g.info)
    assert key in str(info.value)


def test_unreadable_input_files(tmp_path) -> None:
    info = tiny_graph().info
    text = tmp_path / "notes.npz"
    text.write_text("not an archive\n")
    npy = tmp_path / "one.npy"
    np.save(npy, np.zeros((4, 20, 16), dtype=np.float32))
    truncated = tmp_path / "cut.npz"
    np.savez(tmp_path / "full.npz", **random_inputs(info, 0))
    truncated.write_bytes((tmp_path / "full.npz").read_bytes()[:5000])
    for path in (text, npy, truncated):
        with pytest.raises(SimulationError, match=re.escape(str(path))):
            load_inputs_npz(path, info)
    with pytest.raises(SimulationError, match="no such inputs file"):
        load_inputs_npz(tmp_path / "absent.npz", info)


def test_inputs_beyond_the_score_datapath_range() -> None:
    g = tiny_graph()
    inputs = random_inputs(g.info, 0)
    for scale in (1e-30, 1e30):
        scaled = {k: (a * np.float32(scale) if k[0] in "qk" else a) for k, a in inputs.items()}
        with pytest.raises(SimulationError, match=r"layer 0 head 0.*rescale"):
            simulate(g, scaled)


def test_untyped_graph_is_rejected() -> None:
    spec = ModelSpec(
        name="tiny",
        family="llama",
        num_layers=1,
        num_heads=2,
        num_kv_heads=1,
        head_dim=8,
        hidden_size=16,
        max_positions=64,
        causal=True,
        source="test",
    )
    cfg = config_from_dict({"model": {"seq_len": 8}})
    with pytest.raises(SimulationError, match="fixed-point types"):
        simulate(build_attention_graph(spec, cfg))
