"""Canonical text form of an `AttnGraph`: one node per line, byte-stable.

    %l0.h0.qk = matmul_qk(%l0.h0.load_q, %l0.kv0.load_k) {head=0, kv_head=0, layer=0}
        : fixed<29,0>[128,128]  # preset:bert-base/layer0/head0

(on one line). Nodes come in natural-order topological order, attributes sorted by name.
"""

from __future__ import annotations

from typing import Any

from spatten_hls.compiler.errors import printable
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.plan import plan_lines


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def format_node(g: AttnGraph, node: str) -> str:
    op = g.op(node)
    operands = ", ".join(f"%{src}" for src in g.operands(node))
    attrs = ", ".join(f"{k}={format_value(v)}" for k, v in op.attrs().items())
    try:
        result = str(g.output_type(node))
    except Exception:  # a malformed node (shown by verify's diagnostics) has no inferable type
        result = "<invalid>"
    engine = g.engine(node)
    placed = f" @ {engine}" if engine else ""
    origin = printable(g.origin(node))  # holds file paths: kept on the node's one line
    return f"%{node} = {op.KIND}({operands}) {{{attrs}}} : {result}{placed}  # {origin}"


def header_lines(g: AttnGraph) -> list[str]:
    i = g.info
    return [
        f"// spatten-ir model={i.model} family={i.family} stage={i.stage} layers={i.num_layers} "
        f"heads={i.num_heads} kv_heads={i.num_kv_heads} head_dim={i.head_dim} "
        f"seq_len={i.seq_len} gen_tokens={i.gen_tokens} causal={format_value(i.causal)}",
        f"// properties: {', '.join(sorted(g.properties)) or '-'}",
        *(plan_lines(g.plan) if g.plan is not None else []),
    ]


def print_ir(g: AttnGraph) -> str:
    lines = header_lines(g)
    lines.extend(format_node(g, node) for node in g.nodes())
    return "\n".join(lines) + "\n"
