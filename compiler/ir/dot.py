"""Graphviz DOT text of an `AttnGraph` (for `dot -Tsvg`); one cluster per layer."""

from __future__ import annotations

from spatten_hls.compiler.errors import printable
from spatten_hls.compiler.ir.graph import AttnGraph, node_sort_key


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + printable(escaped) + '"'


def to_dot(g: AttnGraph) -> str:
    i = g.info
    lines = [
        "digraph spatten_ir {",
        f"  label={_quote(f'{i.model} ({i.stage}, {i.num_layers}x{i.num_heads} heads)')};",
        "  node [shape=box, fontname=monospace, fontsize=10];",
    ]
    by_layer: dict[int, list[str]] = {}
    for node in g.nodes():
        by_layer.setdefault(g.op(node).layer, []).append(node)
    for layer in sorted(by_layer):
        lines.append(f"  subgraph cluster_l{layer} {{")
        lines.append(f"    label={_quote(f'layer {layer}')};")
        for node in by_layer[layer]:
            op = g.op(node)
            label = f"{node}\n{op.KIND} : {g.output_type(node)}"
            lines.append(f"    {_quote(node)} [label={_quote(label)}];")
        lines.append("  }")
    for src, dst in sorted(
        g.nx_graph.edges, key=lambda e: (node_sort_key(e[0]), node_sort_key(e[1]))
    ):
        data = g.nx_graph.edges[src, dst]
        label = f"{data['port']}: {data['tensor']}"
        lines.append(f"  {_quote(src)} -> {_quote(dst)} [label={_quote(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
