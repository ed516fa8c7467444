"""JSON (node-link) form of the IR: exact round trip, and rejection of damaged documents."""

import copy
import json

import pytest

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.errors import IRVerificationError
from spatten_hls.compiler.frontend import PRESETS, ModelSpec
from spatten_hls.compiler.frontend.builder import build_attention_graph
from spatten_hls.compiler.ir import from_json, print_ir, to_json, verify
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline

SPEC = ModelSpec(
    name="toy",
    family="llama",
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    head_dim=8,
    hidden_size=32,
    max_positions=64,
    causal=True,
    source="test:toy",
)


def graphs():
    """Dense and typed graphs, summarization and generation, with GQA."""
    out = {}
    for stage in ("summarization", "generation"):
        cfg = config_from_dict(
            {
                "model": {"seq_len": 5, "stage": stage, "gen_tokens": 3},
                "quantization": {"q_bits": 7, "k_msb_bits": 5, "k_lsb_bits": 2, "v_bits": 9},
            }
        )
        dense = build_attention_graph(SPEC, cfg)
        out[f"dense-{stage}"] = dense
        out[f"typed-{stage}"] = run_pipeline(dense, cfg, DEFAULT_PIPELINE)
    return out


GRAPHS = graphs()


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_round_trip_is_exact(name):
    g = GRAPHS[name]
    text = to_json(g)
    back = from_json(text)
    verify(back)
    assert to_json(back) == text
    assert print_ir(back) == print_ir(g)
    assert back.info == g.info
    assert back.properties == g.properties
    assert set(back.nx_graph.nodes) == set(g.nx_graph.nodes)
    for node in g.nx_graph:
        assert back.op(node) == g.op(node)  # frozen dataclasses, tuples restored
        assert type(back.op(node)) is type(g.op(node))
        assert back.origin(node) == g.origin(node)
    for src, dst, data in g.nx_graph.edges(data=True):
        assert back.nx_graph.edges[src, dst] == data


def test_round_trip_of_a_preset_after_the_pipeline():
    cfg = config_from_dict({"model": {"seq_len": 16}})
    g = run_pipeline(build_attention_graph(PRESETS["smollm2-135m"], cfg), cfg, DEFAULT_PIPELINE)
    text = to_json(g)
    assert to_json(from_json(text)) == text
    assert print_ir(from_json(text)) == print_ir(g)


def test_document_layout():
    g = GRAPHS["typed-summarization"]
    doc = json.loads(to_json(g))
    assert doc["format"] == "spatten-ir" and doc["version"] == 3
    assert doc["plan"]["qk"] == {"keys_per_cycle": 64, "multipliers": 512, "depth": 7, "banks": 64}
    assert doc["plan"]["bits"] == {"q": 7, "k_msb": 5, "k_lsb": 2, "v": 9, "progressive": False}
    assert json.loads(to_json(GRAPHS["dense-summarization"]))["plan"] is None
    assert doc["properties"] == sorted(g.properties)
    assert doc["info"]["model"] == "toy" and doc["info"]["num_kv_heads"] == 2
    nodes = {n["id"]: n for n in doc["graph"]["nodes"]}
    assert set(nodes) == set(g.nx_graph.nodes)
    assert nodes["l1.h3.qk"]["kind"] == "matmul_qk"
    assert nodes["l1.h3.qk"]["attrs"] == {"head": 3, "kv_head": 1, "layer": 1}
    assert nodes["l0.concat"]["attrs"]["heads"] == [0, 1, 2, 3]
    edges = {(e["source"], e["target"]): e for e in doc["graph"]["edges"]}
    assert len(edges) == g.nx_graph.number_of_edges()
    # 7 + 7 - 1 + ceil(log2 8) = 16
    assert edges["l0.h0.qk", "l0.h0.scale"] == {
        "source": "l0.h0.qk",
        "target": "l0.h0.scale",
        "port": 0,
        "tensor": "fixed<16,0>[5,5]",
    }


def test_json_is_deterministic_text():
    g = GRAPHS["dense-generation"]
    text = to_json(g)
    assert text.endswith("\n")
    assert to_json(g) == text
    assert to_json(copy.deepcopy(g)) == text


# -- damaged documents ------------------------------------------------------------------------


def damaged(edit) -> str:
    doc = json.loads(to_json(GRAPHS["typed-summarization"]))
    edit(doc)
    return json.dumps(doc)


def _set(path, value):
    def edit(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _delete(path):
    def edit(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


BAD_DOCUMENTS = {
    "not-json": ('{"format": ', "invalid JSON"),
    "top-level-list": ("[1, 2]", "must be an object"),
    "wrong-format": (damaged(_set(["format"], "onnx")), "format='onnx'"),
    "wrong-version": (damaged(_set(["version"], 99)), "version=99"),
    "no-graph": (damaged(_delete(["graph"])), "'graph'"),
    "no-info-key": (damaged(_delete(["info", "seq_len"])), "seq_len"),
    "unknown-info-key": (damaged(_set(["info", "bogus"], 1)), "bogus"),
    "unknown-op-kind": (
        damaged(_set(["graph", "nodes", 0, "kind"], "conv2d")),
        "unknown op kind 'conv2d'",
    ),
    "unknown-attr": (damaged(_set(["graph", "nodes", 0, "attrs", "bogus"], 1)), "bogus"),
    "missing-attr": (damaged(_delete(["graph", "nodes", 0, "attrs", "layer"])), "layer"),
    "no-origin": (damaged(_delete(["graph", "nodes", 0, "origin"])), "origin"),
    "bad-tensor": (damaged(_set(["graph", "edges", 0, "tensor"], "float32[3]")), "float32[3]"),
    "bad-fixed": (
        damaged(_set(["graph", "edges", 0, "tensor"], "fixed<4,9>[3]")),
        "width=4 frac=9",
    ),
    "dangling-edge": (damaged(_set(["graph", "edges", 0, "target"], "l9.nowhere")), "kind"),
}


@pytest.mark.parametrize("text, fragment", list(BAD_DOCUMENTS.values()), ids=list(BAD_DOCUMENTS))
def test_from_json_rejects_damaged_documents(text, fragment):
    with pytest.raises(IRVerificationError) as info:
        from_json(text)
    assert fragment in str(info.value)


def test_loaded_graph_with_a_bad_edge_fails_verification():
    # well-formed JSON whose IR is wrong: a qk reading the other group's keys
    def edit(doc):
        for e in doc["graph"]["edges"]:
            if (e["source"], e["target"]) == ("l0.kv0.load_k", "l0.h1.qk"):
                e["source"] = "l0.kv1.load_k"

    g = from_json(damaged(edit))
    with pytest.raises(IRVerificationError, match=r"at %l0\.h1\.qk: operand 1 must be load_k"):
        verify(g)
