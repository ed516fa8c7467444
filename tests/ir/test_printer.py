"""Canonical text form and Graphviz DOT output of the IR."""

import re

import networkx as nx

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.frontend import PRESETS, ModelSpec
from spatten_hls.compiler.frontend.builder import build_attention_graph
from spatten_hls.compiler.ir import AttnGraph, print_ir
from spatten_hls.compiler.ir.dot import to_dot
from spatten_hls.compiler.ir.printer import format_value
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline

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


def tiny(**model):
    return build_attention_graph(TINY, config_from_dict({"model": {"seq_len": 3, **model}}))


TINY_SUMMARIZATION = """\
// spatten-ir model=tiny family=llama stage=summarization layers=1 heads=2 kv_heads=1 head_dim=4 seq_len=3 gen_tokens=32 causal=true
// properties: dense
%l0.kv0.load_k = load_k() {bits=none, gates=[], head_dim=4, kv_head=0, layer=0, msb_bits=none, tokens=3} : ?[3,4]  # test:tiny/layer0/kv_head0
%l0.kv0.load_v = load_v() {bits=none, gates=[], head_dim=4, kv_head=0, layer=0, tokens=3} : ?[3,4]  # test:tiny/layer0/kv_head0
%l0.h0.load_q = load_q() {bits=none, gates=[], head=0, head_dim=4, layer=0, tokens=3} : ?[3,4]  # test:tiny/layer0/head0
%l0.h0.qk = matmul_qk(%l0.h0.load_q, %l0.kv0.load_k) {head=0, kv_head=0, layer=0} : ?[3,3]  # test:tiny/layer0/head0
%l0.h0.scale = scale(%l0.h0.qk) {factor=0.5, head=0, layer=0} : ?[3,3]  # test:tiny/layer0/head0
%l0.h0.mask = causal_mask(%l0.h0.scale) {head=0, layer=0, q_offset=0} : ?[3,3]  # test:tiny/layer0/head0
%l0.h0.softmax = softmax(%l0.h0.mask) {head=0, layer=0} : ?[3,3]  # test:tiny/layer0/head0
%l0.h0.pv = matmul_pv(%l0.h0.softmax, %l0.kv0.load_v) {head=0, kv_head=0, layer=0} : ?[3,4]  # test:tiny/layer0/head0
%l0.h1.load_q = load_q() {bits=none, gates=[], head=1, head_dim=4, layer=0, tokens=3} : ?[3,4]  # test:tiny/layer0/head1
%l0.h1.qk = matmul_qk(%l0.h1.load_q, %l0.kv0.load_k) {head=1, kv_head=0, layer=0} : ?[3,3]  # test:tiny/layer0/head1
%l0.h1.scale = scale(%l0.h1.qk) {factor=0.5, head=1, layer=0} : ?[3,3]  # test:tiny/layer0/head1
%l0.h1.mask = causal_mask(%l0.h1.scale) {head=1, layer=0, q_offset=0} : ?[3,3]  # test:tiny/layer0/head1
%l0.h1.softmax = softmax(%l0.h1.mask) {head=1, layer=0} : ?[3,3]  # test:tiny/layer0/head1
%l0.h1.pv = matmul_pv(%l0.h1.softmax, %l0.kv0.load_v) {head=1, kv_head=0, layer=0} : ?[3,4]  # test:tiny/layer0/head1
%l0.concat = head_concat(%l0.h0.pv, %l0.h1.pv) {heads=[0, 1], layer=0} : ?[3,8]  # test:tiny/layer0
"""  # noqa: E501

TINY_GENERATION = """\
// spatten-ir model=tiny family=llama stage=generation layers=1 heads=2 kv_heads=1 head_dim=4 seq_len=3 gen_tokens=2 causal=true
// properties: dense
%l0.kv0.load_k = load_k() {bits=none, gates=[], head_dim=4, kv_head=0, layer=0, msb_bits=none, tokens=5} : ?[5,4]  # test:tiny/layer0/kv_head0
%l0.kv0.load_v = load_v() {bits=none, gates=[], head_dim=4, kv_head=0, layer=0, tokens=5} : ?[5,4]  # test:tiny/layer0/kv_head0
%l0.h0.load_q = load_q() {bits=none, gates=[], head=0, head_dim=4, layer=0, tokens=1} : ?[1,4]  # test:tiny/layer0/head0
%l0.h0.qk = matmul_qk(%l0.h0.load_q, %l0.kv0.load_k) {head=0, kv_head=0, layer=0} : ?[1,5]  # test:tiny/layer0/head0
%l0.h0.scale = scale(%l0.h0.qk) {factor=0.5, head=0, layer=0} : ?[1,5]  # test:tiny/layer0/head0
%l0.h0.softmax = softmax(%l0.h0.scale) {head=0, layer=0} : ?[1,5]  # test:tiny/layer0/head0
%l0.h0.pv = matmul_pv(%l0.h0.softmax, %l0.kv0.load_v) {head=0, kv_head=0, layer=0} : ?[1,4]  # test:tiny/layer0/head0
%l0.h1.load_q = load_q() {bits=none, gates=[], head=1, head_dim=4, layer=0, tokens=1} : ?[1,4]  # test:tiny/layer0/head1
%l0.h1.qk = matmul_qk(%l0.h1.load_q, %l0.kv0.load_k) {head=1, kv_head=0, layer=0} : ?[1,5]  # test:tiny/layer0/head1
%l0.h1.scale = scale(%l0.h1.qk) {factor=0.5, head=1, layer=0} : ?[1,5]  # test:tiny/layer0/head1
%l0.h1.softmax = softmax(%l0.h1.scale) {head=1, layer=0} : ?[1,5]  # test:tiny/layer0/head1
%l0.h1.pv = matmul_pv(%l0.h1.softmax, %l0.kv0.load_v) {head=1, kv_head=0, layer=0} : ?[1,4]  # test:tiny/layer0/head1
%l0.concat = head_concat(%l0.h0.pv, %l0.h1.pv) {heads=[0, 1], layer=0} : ?[1,8]  # test:tiny/layer0
"""  # noqa: E501


def test_tiny_summarization_text():
    assert print_ir(tiny()) == TINY_SUMMARIZATION


def test_tiny_generation_text():
    assert print_ir(tiny(stage="generation", gen_tokens=2)) == TINY_GENERATION


def test_print_is_byte_stable_across_builds():
    for preset in ("bert-base", "smollm2-135m"):
        cfg = config_from_dict({"model": {"seq_len": 32}})
        a = build_attention_graph(PRESETS[preset], cfg)
        b = build_attention_graph(PRESETS[preset], cfg)
        assert print_ir(a).encode() == print_ir(b).encode()
        assert print_ir(a) == print_ir(a)


def reinserted(g: AttnGraph) -> AttnGraph:
    """The same graph with nodes and edges inserted in reverse order."""
    h = nx.DiGraph()
    for node in reversed(list(g.nx_graph.nodes)):
        h.add_node(node, **g.nx_graph.nodes[node])
    for src, dst in reversed(list(g.nx_graph.edges)):
        h.add_edge(src, dst, **g.nx_graph.edges[src, dst])
    return AttnGraph(g.info, g.properties, h, g.plan)


def test_print_does_not_depend_on_insertion_order():
    cfg = config_from_dict({"model": {"seq_len": 8}})
    g = build_attention_graph(PRESETS["smollm2-135m"], cfg)
    shuffled = reinserted(g)
    assert list(shuffled.nx_graph.nodes) == list(reversed(list(g.nx_graph.nodes)))
    assert print_ir(shuffled) == print_ir(g)
    typed = run_pipeline(g, cfg, DEFAULT_PIPELINE)
    assert print_ir(reinserted(typed)) == print_ir(typed)


def test_one_line_per_node_with_header():
    g = build_attention_graph(PRESETS["minilm-l6"], config_from_dict({"model": {"seq_len": 5}}))
    lines = print_ir(g).splitlines()
    assert lines[0].startswith("// spatten-ir model=minilm-l6 family=bert stage=summarization ")
    assert lines[1] == "// properties: dense"
    body = lines[2:]
    assert len(body) == len(g)
    assert sorted(line.split(" = ")[0][1:] for line in body) == sorted(g.nx_graph.nodes)
    assert all(line.startswith("%") for line in body)


def test_layers_and_heads_in_natural_order():
    g = build_attention_graph(PRESETS["bert-base"], config_from_dict({"model": {"seq_len": 4}}))
    ids = [line.split(" = ")[0][1:] for line in print_ir(g).splitlines()[2:]]
    layers = [int(re.match(r"l(\d+)\.", i)[1]) for i in ids]
    assert layers == sorted(layers)  # l10 after l9, not after l1
    layer0 = [i for i in ids if i.startswith("l0.")]
    heads = [int(m[1]) for i in layer0 if (m := re.match(r"l0\.h(\d+)\.", i))]
    assert heads == sorted(heads)
    assert layer0[-1] == "l0.concat"
    # each node comes after its operands
    position = {node: i for i, node in enumerate(ids)}
    for src, dst in g.nx_graph.edges:
        assert position[src] < position[dst]


def test_attributes_are_sorted():
    text = print_ir(tiny())
    for attrs in re.findall(r"\{([^}]*)\}", text):
        names = [a.split("=")[0] for a in re.split(r", (?=[a-z_]+=)", attrs)]
        assert names == sorted(names), attrs


def test_format_value():
    assert format_value(True) == "true"
    assert format_value(False) == "false"
    assert format_value(None) == "none"
    assert format_value(0.125) == "0.125"
    assert format_value(1 / 3) == "0.3333333333333333"
    assert format_value((1, 2)) == "[1, 2]"
    assert format_value([True, None]) == "[true, none]"
    assert format_value(7) == "7"


# -- DOT --------------------------------------------------------------------------------------


def test_dot_has_one_node_line_per_node_and_every_edge():
    g = run_pipeline(tiny(), config_from_dict({"model": {"seq_len": 3}}), DEFAULT_PIPELINE)
    dot = to_dot(g)
    assert dot.startswith("digraph ")
    assert dot.endswith("}\n")
    assert dot.count("{") == dot.count("}")
    node_lines = re.findall(r'^\s+"([^"]+)" \[label=', dot, flags=re.M)
    assert sorted(node_lines) == sorted(g.nx_graph.nodes)
    edge_lines = re.findall(
        r'^\s+"([^"]+)" -> "([^"]+)" \[label="(\d+): ([^"]+)"\];$', dot, flags=re.M
    )
    assert len(edge_lines) == g.nx_graph.number_of_edges()
    for src, dst, port, tensor in edge_lines:
        data = g.nx_graph.edges[src, dst]
        assert (int(port), tensor) == (data["port"], str(data["tensor"]))
    assert '"l0.h0.qk" [label="l0.h0.qk\\nmatmul_qk : fixed<25,0>[3,3]"];' in dot


def test_dot_clusters_per_layer():
    g = build_attention_graph(PRESETS["minilm-l6"], config_from_dict({"model": {"seq_len": 2}}))
    dot = to_dot(g)
    assert re.findall(r"subgraph (cluster_l\d+) \{", dot) == [f"cluster_l{i}" for i in range(6)]
    assert len(re.findall(r'^\s+"[^"]+" \[label=', dot, flags=re.M)) == len(g)
    assert to_dot(g) == dot
