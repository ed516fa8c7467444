"""Property tests: any valid model shape builds a graph that verifies, prints deterministically
and survives the JSON round trip, before and after the default pipeline."""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.frontend import ModelSpec
from spatten_hls.compiler.frontend.builder import build_attention_graph
from spatten_hls.compiler.ir import from_json, print_ir, to_json, verify
from spatten_hls.compiler.ir.ops import CausalMask, LoadK, LoadQ, MatMulQK
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline


@st.composite
def shapes(draw):
    layers = draw(st.integers(1, 4))
    kv_heads = draw(st.integers(1, 4))
    group = draw(st.integers(1, 4))
    head_dim = draw(st.sampled_from([4, 8, 16, 32, 64]))
    causal = draw(st.booleans())
    stage = draw(st.sampled_from(["summarization", "generation"])) if causal else "summarization"
    seq_len = draw(st.integers(1, 64))
    gen_tokens = draw(st.integers(1, 8))
    heads = kv_heads * group
    spec = ModelSpec(
        name="prop",
        family="llama" if causal else "bert",
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=heads * head_dim,
        max_positions=128,
        causal=causal,
        source="test:prop",
    )
    quant = draw(
        st.sampled_from(
            [
                {},
                {"q_bits": 4, "k_msb_bits": 3, "k_lsb_bits": 2, "v_bits": 5},
                {"q_bits": 16, "k_msb_bits": 8, "k_lsb_bits": 8, "v_bits": 16},
            ]
        )
    )
    cfg = config_from_dict(
        {
            "model": {"seq_len": seq_len, "stage": stage, "gen_tokens": gen_tokens},
            "quantization": quant,
        }
    )
    return spec, cfg


def check_graph(g) -> None:
    verify(g)
    text = print_ir(g)
    assert print_ir(g) == text
    js = to_json(g)
    back = from_json(js)
    verify(back)
    assert to_json(back) == js
    assert print_ir(back) == text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes())
def test_random_shapes_build_verify_print_and_round_trip(shape):
    spec, cfg = shape
    g = build_attention_graph(spec, cfg)
    check_graph(g)
    before = print_ir(g)

    info = g.info
    queries = 1 if info.stage == "generation" else cfg.model.seq_len
    keys = cfg.model.seq_len + (cfg.model.gen_tokens if info.stage == "generation" else 0)
    masked = spec.causal and info.stage == "summarization"
    per_layer = spec.num_heads * (6 if masked else 5) + 2 * spec.num_kv_heads + 1
    assert len(g) == spec.num_layers * per_layer
    assert len(g.nodes_of(CausalMask)) == (spec.num_layers * spec.num_heads if masked else 0)
    for n in g.nodes_of(MatMulQK):
        op = g.op(n)
        assert op.kv_head == op.head // spec.group_size
        assert g.output_type(n).shape == (queries, keys)
    for n in g.nodes_of(LoadK):
        assert g.output_type(n).shape == (keys, spec.head_dim)

    typed = run_pipeline(g, cfg, DEFAULT_PIPELINE)
    check_graph(typed)
    assert print_ir(g) == before  # the caller's graph is untouched
    q = cfg.quantization
    growth = math.ceil(math.log2(spec.head_dim))
    for n in typed.nodes_of(MatMulQK):
        assert typed.output_type(n).dtype.width == q.q_bits + q.k_bits - 1 + growth
    for n in typed.nodes_of(LoadQ):
        assert typed.op(n).bits == q.q_bits
    assert all(t.dtype is not None for _, _, t in typed.nx_graph.edges(data="tensor"))
