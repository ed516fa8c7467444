"""`verify(g)` catches each kind of broken IR and says where, with context and origin."""

import dataclasses

import pytest

from spatten_hls.compiler.config import Config, config_from_dict
from spatten_hls.compiler.errors import CompilerError, IRVerificationError
from spatten_hls.compiler.frontend import ModelSpec
from spatten_hls.compiler.frontend.builder import build_attention_graph
from spatten_hls.compiler.ir import verify
from spatten_hls.compiler.ir.types import Fixed, TensorType
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline

SPEC = ModelSpec(
    name="toy",
    family="llama",
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    head_dim=4,
    hidden_size=16,
    max_positions=64,
    causal=True,
    source="test:toy",
)
CFG = config_from_dict({"model": {"seq_len": 3}})


def dense():
    return build_attention_graph(SPEC, CFG)


def typed():
    return run_pipeline(dense(), CFG, DEFAULT_PIPELINE)


def rewire(g, src, dst, port, new_src):
    """Replace the operand `src` of `dst` by `new_src` on the same port and type."""
    tensor = g.nx_graph.edges[src, dst]["tensor"]
    g.nx_graph.remove_edge(src, dst)
    g.add_edge(new_src, dst, port, tensor)


def failure(g) -> str:
    with pytest.raises(IRVerificationError) as info:
        verify(g)
    return str(info.value)


def assert_located(message: str, node: str, origin: str, *problem: str) -> None:
    """The message names the node, marks it with ^^^ and gives its origin."""
    first, *rest = message.splitlines()
    assert first.startswith(f"IR verification failed at %{node}: "), first
    node_lines = [line for line in rest if line.strip().startswith(f"%{node} = ")]
    assert len(node_lines) == 1, message
    marker = [i for i, line in enumerate(rest) if line.strip().startswith("^^^")]
    assert len(marker) == 1 and rest[marker[0] - 1] == node_lines[0], message
    assert rest[-1] == f"  origin: {origin}", message
    for text in problem:
        assert text in first and text in rest[marker[0]], (text, message)


def test_valid_graphs_verify():
    verify(dense())
    verify(typed())


def test_verification_error_is_a_compiler_error():
    assert issubclass(IRVerificationError, CompilerError)


def test_cycle():
    g = dense()
    # feed the layer output back into a head's scale: scale -> ... -> pv -> concat -> scale
    g.add_edge("l0.concat", "l0.h1.scale", 1, g.output_type("l0.concat"))
    message = failure(g)
    # named from its smallest node in natural order, so the message is deterministic
    cycle = message.splitlines()[0].split("graph has a cycle: ")[1].split(" -> ")
    assert cycle == [
        "l0.concat",
        "l0.h1.scale",
        "l0.h1.mask",
        "l0.h1.softmax",
        "l0.h1.pv",
        "l0.concat",
    ]
    assert_located(message, "l0.concat", "test:toy/layer0", "graph has a cycle")


def test_self_loop():
    g = dense()
    g.add_edge("l1.h0.softmax", "l1.h0.softmax", 1, g.output_type("l1.h0.softmax"))
    lines = failure(g).splitlines()
    assert lines[0] == (
        "IR verification failed at %l1.h0.softmax: "
        "graph has a cycle: l1.h0.softmax -> l1.h0.softmax"
    )
    marker = next(i for i, line in enumerate(lines) if line.strip().startswith("^^^"))
    assert lines[marker - 1].strip().startswith("%l1.h0.softmax = softmax(")
    assert lines[-1] == "  origin: test:toy/layer1/head0"


def test_missing_operand_port():
    g = dense()
    g.nx_graph.remove_edge("l0.h2.load_q", "l0.h2.qk")
    message = failure(g)
    assert_located(
        message, "l0.h2.qk", "test:toy/layer0/head2", "matmul_qk needs operand ports 0..1, has [1]"
    )


def test_duplicate_operand_port():
    g = dense()
    g.nx_graph.edges["l1.h3.pv", "l1.concat"]["port"] = 0
    message = failure(g)
    assert_located(message, "l1.concat", "test:toy/layer1", "has [0, 0, 1, 2]")


def test_edge_without_tensor_type():
    g = dense()
    g.nx_graph.edges["l0.h0.qk", "l0.h0.scale"]["tensor"] = None
    # the producer's outgoing edges are checked first (topological order)
    assert_located(
        failure(g),
        "l0.h0.qk",
        "test:toy/layer0/head0",
        "edge to l0.h0.scale carries None, but matmul_qk produces ?[3,3]",
    )


def test_wrong_edge_type():
    g = typed()
    g.nx_graph.edges["l1.h1.qk", "l1.h1.scale"]["tensor"] = TensorType((3, 3), Fixed(30, 0))
    message = failure(g)
    assert_located(
        message,
        "l1.h1.qk",
        "test:toy/layer1/head1",
        "edge to l1.h1.scale carries fixed<30,0>[3,3], but matmul_qk produces fixed<25,0>[3,3]",
    )


def test_wrong_edge_shape_in_dense_graph():
    g = dense()
    g.nx_graph.edges["l0.h3.softmax", "l0.h3.pv"]["tensor"] = TensorType((3, 4))
    assert_located(
        failure(g),
        "l0.h3.softmax",
        "test:toy/layer0/head3",
        "carries ?[3,4], but softmax produces ?[3,3]",
    )


def test_qk_wired_to_the_wrong_kv_head():
    g = dense()
    rewire(g, "l0.kv0.load_k", "l0.h1.qk", 1, "l0.kv1.load_k")
    assert_located(
        failure(g),
        "l0.h1.qk",
        "test:toy/layer0/head1",
        "operand 1 must be load_k or load_k_msb of kv_head 0",
    )


def test_qk_claiming_the_wrong_kv_head():
    g = dense()
    # op and wiring agree with each other, but head 1 belongs to kv group 0
    rewire(g, "l0.kv0.load_k", "l0.h1.qk", 1, "l0.kv1.load_k")
    g.set_op("l0.h1.qk", dataclasses.replace(g.op("l0.h1.qk"), kv_head=1))
    assert_located(
        failure(g),
        "l0.h1.qk",
        "test:toy/layer0/head1",
        "head 1 must read kv_head 0 (group size 2), reads 1",
    )


def test_pv_reading_keys_instead_of_values():
    g = dense()
    rewire(g, "l1.kv1.load_v", "l1.h2.pv", 1, "l1.kv1.load_k")
    assert_located(
        failure(g), "l1.h2.pv", "test:toy/layer1/head2", "operand 1 must be load_v of kv_head 1"
    )


def test_layer_out_of_range():
    g = dense()
    g.info = dataclasses.replace(g.info, num_layers=1)
    message = failure(g)
    assert_located(message, "l1.kv0.load_k", "test:toy/layer1/kv_head0", "layer 1 outside 0..0")


def test_operand_from_another_layer():
    g = dense()
    rewire(g, "l1.h0.load_q", "l1.h0.qk", 0, "l0.h0.load_q")
    assert_located(failure(g), "l1.h0.qk", "test:toy/layer1/head0", "operand from another layer")


def test_head_concat_operands_swapped():
    g = dense()
    g.nx_graph.edges["l0.h0.pv", "l0.concat"]["port"] = 1
    g.nx_graph.edges["l0.h1.pv", "l0.concat"]["port"] = 0
    assert_located(
        failure(g),
        "l0.concat",
        "test:toy/layer0",
        "operands come from heads [1, 0, 2, 3], expected [0, 1, 2, 3]",
    )


def test_head_concat_missing_a_head():
    g = dense()
    g.nx_graph.remove_edge("l1.h3.pv", "l1.concat")
    assert_located(
        failure(g),
        "l1.concat",
        "test:toy/layer1",
        "head_concat needs operand ports 0..3, has [0, 1, 2]",
    )


def test_head_concat_operands_of_different_types():
    g = typed()
    g.nx_graph.edges["l0.h2.pv", "l0.concat"]["tensor"] = TensorType((3, 4), Fixed(11, 0))
    message = failure(g)
    # the producer's outgoing type mismatch is found first, in topological order
    assert_located(
        message,
        "l0.h2.pv",
        "test:toy/layer0/head2",
        "carries fixed<11,0>[3,4], but matmul_pv produces fixed<12,0>[3,4]",
    )


def test_untyped_graph_claiming_typed():
    g = dense()
    g.properties = g.properties | {"typed"}
    assert_located(
        failure(g),
        "l0.kv0.load_k",
        "test:toy/layer0/kv_head0",
        "graph is 'typed' but an output edge has no fixed-point type",
    )


def test_untyped_layer_in_a_typed_graph():
    g = typed()
    for node in list(g.nx_graph):
        op = g.op(node)
        if op.layer == 1 and hasattr(op, "bits"):
            extra = {"msb_bits": None} if hasattr(op, "msb_bits") else {}
            g.set_op(node, dataclasses.replace(op, bits=None, **extra))
    g.retype()  # layer 1 is now consistently untyped; only the 'typed' property is violated
    assert_located(
        failure(g),
        "l1.kv0.load_k",
        "test:toy/layer1/kv_head0 | assign-quant-types",
        "graph is 'typed' but an output edge has no fixed-point type",
    )


def test_one_untyped_load_in_a_typed_graph():
    g = typed()
    g.set_op("l1.h2.load_q", dataclasses.replace(g.op("l1.h2.load_q"), bits=None))
    g.retype()  # head 2's output is now untyped, unlike its neighbours'
    assert_located(
        failure(g),
        "l1.concat",
        "test:toy/layer1",
        "operands differ in type: fixed<12,0>[3,4], fixed<12,0>[3,4], ?[3,4], fixed<12,0>[3,4]",
    )


def test_invalid_op_attribute():
    g = dense()
    g.set_op("l0.h0.scale", dataclasses.replace(g.op("l0.h0.scale"), factor=-0.5))
    assert_located(
        failure(g), "l0.h0.scale", "test:toy/layer0/head0", "factor=-0.5 must be positive"
    )


def test_message_shows_operands_and_users():
    g = dense()
    g.nx_graph.remove_edge("l0.h2.load_q", "l0.h2.qk")
    lines = failure(g).splitlines()
    stripped = [line.strip() for line in lines]
    # the remaining operand above the node, its user below the marker
    assert any(s.startswith("%l0.kv1.load_k = load_k()") for s in stripped[1:3])
    marker = next(i for i, s in enumerate(stripped) if s.startswith("^^^"))
    assert stripped[marker + 1].startswith("%l0.h2.scale = scale(%l0.h2.qk)")


def test_verify_does_not_modify_the_graph():
    from spatten_hls.compiler.ir import print_ir

    g = typed()
    before = print_ir(g)
    verify(g)
    assert print_ir(g) == before


def test_a_default_config_graph_verifies_for_an_encoder():
    spec = dataclasses.replace(SPEC, family="bert", causal=False, num_kv_heads=4)
    verify(build_attention_graph(spec, Config()))
