"""Front-end lowering: the dense attention IR of each preset has the documented structure."""

import math
from collections import Counter

import pytest

from spatten_hls.compiler.config import Config, config_from_dict
from spatten_hls.compiler.frontend import PRESETS
from spatten_hls.compiler.frontend.builder import build_attention_graph
from spatten_hls.compiler.ir import verify
from spatten_hls.compiler.ir.ops import (
    CausalMask,
    HeadConcat,
    LoadK,
    LoadQ,
    LoadV,
    MatMulPV,
    MatMulQK,
    Scale,
    Softmax,
)


def build(preset: str, **model):
    cfg = config_from_dict({"model": model}) if model else Config()
    return build_attention_graph(PRESETS[preset], cfg)


def kinds_in_layer(g, layer: int) -> Counter:
    return Counter(g.op(n).KIND for n in g.nx_graph if g.op(n).layer == layer)


def expected_per_layer(heads: int, kv_heads: int, masked: bool) -> Counter:
    counts = Counter(
        load_q=heads,
        matmul_qk=heads,
        scale=heads,
        softmax=heads,
        matmul_pv=heads,
        load_k=kv_heads,
        load_v=kv_heads,
        head_concat=1,
    )
    if masked:
        counts["causal_mask"] = heads
    return counts


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_a_verified_dense_graph(preset):
    spec = PRESETS[preset]
    g = build(preset)
    verify(g)
    assert g.properties == frozenset({"dense"})
    info = g.info
    assert (
        info.model,
        info.family,
        info.num_layers,
        info.num_heads,
        info.num_kv_heads,
        info.head_dim,
        info.causal,
        info.source,
    ) == (
        spec.name,
        spec.family,
        spec.num_layers,
        spec.num_heads,
        spec.num_kv_heads,
        spec.head_dim,
        spec.causal,
        spec.source,
    )
    per_layer = expected_per_layer(spec.num_heads, spec.num_kv_heads, spec.causal)
    for layer in range(spec.num_layers):
        assert kinds_in_layer(g, layer) == per_layer, layer
    assert len(g) == spec.num_layers * sum(per_layer.values())
    # edges per head: q->qk, k->qk, qk->scale, [scale->mask,] ->softmax, softmax->pv,
    # v->pv, pv->concat
    per_head_edges = 8 if spec.causal else 7
    assert g.nx_graph.number_of_edges() == spec.num_layers * spec.num_heads * per_head_edges
    # untyped front end: every edge has a shape but no format yet
    assert all(t.dtype is None for _, _, t in g.nx_graph.edges(data="tensor"))


def test_bert_base_node_ids_and_counts():
    g = build("bert-base")
    assert len(g) == 12 * (12 * 5 + 2 * 12 + 1)
    for node in (
        "l0.kv0.load_k",
        "l0.kv11.load_v",
        "l3.h7.qk",
        "l3.h7.scale",
        "l3.h7.softmax",
        "l3.h7.pv",
        "l11.h11.load_q",
        "l11.concat",
    ):
        assert node in g, node
    assert "l3.h7.mask" not in g  # encoders attend both ways
    assert "l12.h0.qk" not in g and "l0.h12.qk" not in g
    assert g.op("l3.h7.qk") == MatMulQK(layer=3, head=7, kv_head=7)
    assert g.origin("l3.h7.qk") == "preset:bert-base/layer3/head7"
    assert g.origin("l3.kv2.load_k") == "preset:bert-base/layer3/kv_head2"
    assert g.origin("l3.concat") == "preset:bert-base/layer3"


def test_bert_base_shapes_and_scale():
    g = build("bert-base", seq_len=100)
    assert g.output_type("l0.h0.load_q").shape == (100, 64)
    assert g.output_type("l0.kv0.load_k").shape == (100, 64)
    assert g.output_type("l0.h0.qk").shape == (100, 100)
    assert g.output_type("l0.h0.softmax").shape == (100, 100)
    assert g.output_type("l0.h0.pv").shape == (100, 64)
    assert g.output_type("l0.concat").shape == (100, 12 * 64)
    assert g.op("l5.h3.scale").factor == 1.0 / math.sqrt(64)
    assert g.op("l0.concat").heads == tuple(range(12))
    assert g.operands("l0.concat") == [f"l0.h{h}.pv" for h in range(12)]


def test_smollm2_gqa_each_query_head_reads_kv_head_h_div_3():
    g = build("smollm2-135m", seq_len=16)
    assert (g.info.num_heads, g.info.num_kv_heads, g.info.group_size) == (9, 3, 3)
    for layer in (0, 17, 29):
        assert kinds_in_layer(g, layer)["load_k"] == 3
        assert f"l{layer}.kv3.load_k" not in g
        for h in range(9):
            kv = h // 3
            qk, pv = f"l{layer}.h{h}.qk", f"l{layer}.h{h}.pv"
            assert g.operands(qk) == [f"l{layer}.h{h}.load_q", f"l{layer}.kv{kv}.load_k"]
            assert g.operands(pv) == [f"l{layer}.h{h}.softmax", f"l{layer}.kv{kv}.load_v"]
            assert g.op(qk).kv_head == kv and g.op(pv).kv_head == kv
        for kv in range(3):
            readers = {f"l{layer}.h{h}.qk" for h in range(3 * kv, 3 * kv + 3)}
            assert set(g.users(f"l{layer}.kv{kv}.load_k")) == readers
            assert g.op(f"l{layer}.kv{kv}.load_k") == LoadK(
                layer=layer, kv_head=kv, tokens=16, head_dim=64
            )


@pytest.mark.parametrize("preset", ["gpt2-small", "smollm2-135m"])
def test_causal_summarization_masks_every_head(preset):
    g = build(preset, seq_len=8)
    spec = PRESETS[preset]
    masks = g.nodes_of(CausalMask)
    assert len(masks) == spec.num_layers * spec.num_heads
    for layer in range(spec.num_layers):
        for h in range(spec.num_heads):
            p = f"l{layer}.h{h}"
            assert g.operands(f"{p}.mask") == [f"{p}.scale"]
            assert g.operands(f"{p}.softmax") == [f"{p}.mask"]
            assert g.op(f"{p}.mask").q_offset == 0


@pytest.mark.parametrize("preset", ["gpt2-medium", "smollm2-135m"])
def test_generation_has_one_query_row_and_no_mask(preset):
    spec = PRESETS[preset]
    g = build(preset, stage="generation", seq_len=40, gen_tokens=9)
    verify(g)
    assert g.info.stage == "generation" and g.info.context == 49
    assert g.nodes_of(CausalMask) == []
    assert kinds_in_layer(g, 0) == expected_per_layer(spec.num_heads, spec.num_kv_heads, False)
    for n in g.nodes_of(LoadQ):
        assert g.output_type(n).shape == (1, spec.head_dim)
    for kind in (LoadK, LoadV):
        for n in g.nodes_of(kind):
            assert g.output_type(n).shape == (49, spec.head_dim)
    for kind in (MatMulQK, Scale, Softmax):
        for n in g.nodes_of(kind):
            assert g.output_type(n).shape == (1, 49), n
    for n in g.nodes_of(MatMulPV):
        assert g.output_type(n).shape == (1, spec.head_dim)
    for n in g.nodes_of(HeadConcat):
        assert g.output_type(n).shape == (1, spec.num_heads * spec.head_dim)
    # the softmax reads the scale directly
    assert g.operands("l0.h0.softmax") == ["l0.h0.scale"]


def test_gen_tokens_do_not_change_summarization_shapes():
    g = build("gpt2-small", seq_len=20, gen_tokens=7)
    assert g.info.context == 20
    assert g.output_type("l0.h0.qk").shape == (20, 20)


def test_build_does_not_depend_on_config_beyond_model_section():
    a = build_attention_graph(PRESETS["minilm-l6"], Config())
    b = build_attention_graph(
        PRESETS["minilm-l6"],
        config_from_dict({"quantization": {"q_bits": 4}, "token_pruning": {"enabled": True}}),
    )
    assert sorted(a.nx_graph.nodes) == sorted(b.nx_graph.nodes)
    assert all(a.op(n) == b.op(n) for n in a.nx_graph)
