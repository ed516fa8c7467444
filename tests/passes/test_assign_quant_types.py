"""`assign-quant-types`: every edge gets the fixed-point format of the numerics contract."""

import math

import pytest

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.frontend import PRESETS, ModelSpec
from spatten_hls.compiler.frontend.builder import build_attention_graph
from spatten_hls.compiler.ir import print_ir, verify
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
from spatten_hls.compiler.ir.types import Fixed
from spatten_hls.compiler.passes import PASSES, assign_quant_types, run_pipeline

TINY = ModelSpec(
    name="tiny",
    family="llama",
    num_layers=1,
    num_heads=2,
    num_kv_heads=1,
    head_dim=4,
    hidden_size=8,
    max_positions=16,
    causal=True,
    source="test:tiny",
)

TINY_TYPED = """\
// spatten-ir model=tiny family=llama stage=summarization layers=1 heads=2 kv_heads=1 head_dim=4 seq_len=3 gen_tokens=32 causal=true
// properties: dense, typed
%l0.kv0.load_k = load_k() {bits=12, gates=[], head_dim=4, kv_head=0, layer=0, msb_bits=8, tokens=3} : fixed<12,0>[3,4]  # test:tiny/layer0/kv_head0 | assign-quant-types
%l0.kv0.load_v = load_v() {bits=12, gates=[], head_dim=4, kv_head=0, layer=0, tokens=3} : fixed<12,0>[3,4]  # test:tiny/layer0/kv_head0 | assign-quant-types
%l0.h0.load_q = load_q() {bits=12, gates=[], head=0, head_dim=4, layer=0, tokens=3} : fixed<12,0>[3,4]  # test:tiny/layer0/head0 | assign-quant-types
%l0.h0.qk = matmul_qk(%l0.h0.load_q, %l0.kv0.load_k) {head=0, kv_head=0, layer=0} : fixed<25,0>[3,3]  # test:tiny/layer0/head0
%l0.h0.scale = scale(%l0.h0.qk) {factor=0.5, head=0, layer=0} : fixed<24,10>[3,3]  # test:tiny/layer0/head0
%l0.h0.mask = causal_mask(%l0.h0.scale) {head=0, layer=0, q_offset=0} : fixed<24,10>[3,3]  # test:tiny/layer0/head0
%l0.h0.softmax = softmax(%l0.h0.mask) {head=0, layer=0} : ufixed<17,16>[3,3]  # test:tiny/layer0/head0
%l0.h0.pv = matmul_pv(%l0.h0.softmax, %l0.kv0.load_v) {head=0, kv_head=0, layer=0} : fixed<12,0>[3,4]  # test:tiny/layer0/head0
%l0.h1.load_q = load_q() {bits=12, gates=[], head=1, head_dim=4, layer=0, tokens=3} : fixed<12,0>[3,4]  # test:tiny/layer0/head1 | assign-quant-types
%l0.h1.qk = matmul_qk(%l0.h1.load_q, %l0.kv0.load_k) {head=1, kv_head=0, layer=0} : fixed<25,0>[3,3]  # test:tiny/layer0/head1
%l0.h1.scale = scale(%l0.h1.qk) {factor=0.5, head=1, layer=0} : fixed<24,10>[3,3]  # test:tiny/layer0/head1
%l0.h1.mask = causal_mask(%l0.h1.scale) {head=1, layer=0, q_offset=0} : fixed<24,10>[3,3]  # test:tiny/layer0/head1
%l0.h1.softmax = softmax(%l0.h1.mask) {head=1, layer=0} : ufixed<17,16>[3,3]  # test:tiny/layer0/head1
%l0.h1.pv = matmul_pv(%l0.h1.softmax, %l0.kv0.load_v) {head=1, kv_head=0, layer=0} : fixed<12,0>[3,4]  # test:tiny/layer0/head1
%l0.concat = head_concat(%l0.h0.pv, %l0.h1.pv) {heads=[0, 1], layer=0} : fixed<12,0>[3,8]  # test:tiny/layer0
"""  # noqa: E501


def run(spec, **sections):
    cfg = config_from_dict(sections)
    g = build_attention_graph(spec, cfg)
    return g, run_pipeline(g, cfg, ["assign-quant-types"])


def test_tiny_text_after_the_pass():
    _, after = run(TINY, model={"seq_len": 3})
    assert print_ir(after) == TINY_TYPED
    verify(after)


def test_registration():
    info = PASSES["assign-quant-types"]
    assert info.fn is assign_quant_types
    assert info.requires == frozenset({"dense"})
    assert info.provides == frozenset({"typed"})


QUANTS = [
    # q, k_msb, k_lsb, v
    (12, 8, 4, 12),
    (8, 6, 3, 10),
    (4, 2, 2, 6),
    (16, 8, 8, 16),
    (2, 1, 1, 2),
    (16, 15, 0, 3),
]


@pytest.mark.parametrize("q_bits, k_msb, k_lsb, v_bits", QUANTS)
@pytest.mark.parametrize("head_dim", [1, 4, 48, 64])
def test_every_edge_typed_for_custom_widths(q_bits, k_msb, k_lsb, v_bits, head_dim):
    spec = ModelSpec(
        name="m",
        family="gpt2",
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=head_dim,
        hidden_size=4 * head_dim,
        max_positions=64,
        causal=True,
        source="test:m",
    )
    _, g = run(
        spec,
        model={"seq_len": 6},
        quantization={"q_bits": q_bits, "k_msb_bits": k_msb, "k_lsb_bits": k_lsb, "v_bits": v_bits},
    )
    verify(g)
    assert "typed" in g.properties
    k_bits = k_msb + k_lsb
    growth = math.ceil(math.log2(head_dim))
    expected = {
        LoadQ: Fixed(q_bits, 0),
        LoadK: Fixed(k_bits, 0),
        LoadV: Fixed(v_bits, 0),
        MatMulQK: Fixed(q_bits + k_bits - 1 + growth, 0),
        Scale: Fixed(24, 10),
        CausalMask: Fixed(24, 10),
        Softmax: Fixed(17, 16, signed=False),
        MatMulPV: Fixed(v_bits, 0),
        HeadConcat: Fixed(v_bits, 0),
    }
    seen = set()
    for src, dst, tensor in g.nx_graph.edges(data="tensor"):
        kind = type(g.op(src))
        assert tensor.dtype == expected[kind], (src, dst, tensor)
        seen.add(kind)
    assert seen == set(expected) - {HeadConcat}  # concat is the layer output: no users
    for node in g.nodes_of(HeadConcat):
        assert g.output_type(node).dtype == Fixed(v_bits, 0)
        assert g.output_type(node).shape == (6, 4 * head_dim)
    for node in g.nodes_of(LoadK):
        assert (g.op(node).bits, g.op(node).msb_bits) == (k_bits, k_msb)
    for node in g.nodes_of(LoadQ):
        assert g.op(node).bits == q_bits
    for node in g.nodes_of(LoadV):
        assert g.op(node).bits == v_bits


def test_qk_width_for_bert_base_defaults():
    _, g = run(PRESETS["bert-base"], model={"seq_len": 8})
    # 12 + 12 - 1 + log2(64)
    assert str(g.output_type("l7.h3.qk")) == "fixed<29,0>[8,8]"


def test_shapes_unchanged_by_typing():
    before, after = run(PRESETS["smollm2-135m"], model={"seq_len": 10})
    for src, dst, tensor in after.nx_graph.edges(data="tensor"):
        assert tensor.shape == before.nx_graph.edges[src, dst]["tensor"].shape


def test_only_loads_get_the_pass_in_their_origin():
    _, g = run(TINY, model={"seq_len": 3})
    for node in g.nx_graph:
        tagged = g.origin(node).endswith(" | assign-quant-types")
        assert tagged == isinstance(g.op(node), LoadQ | LoadK | LoadV), node


def test_callers_graph_is_unchanged():
    cfg = config_from_dict({"model": {"seq_len": 5}, "quantization": {"q_bits": 6}})
    g = build_attention_graph(PRESETS["gpt2-small"], cfg)
    before = print_ir(g)
    ops_before = {n: g.op(n) for n in g.nx_graph}
    typed = run_pipeline(g, cfg, ["assign-quant-types"])
    assert print_ir(g) == before
    assert {n: g.op(n) for n in g.nx_graph} == ops_before
    assert g.properties == frozenset({"dense"})
    assert typed is not g and typed.nx_graph is not g.nx_graph
    assert print_ir(typed) != before
