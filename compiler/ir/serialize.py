"""JSON form of an `AttnGraph` (networkx node-link layout) with an exact round trip."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import networkx as nx

from spatten_hls.compiler.errors import IRVerificationError
from spatten_hls.compiler.ir.graph import AttnGraph, GraphInfo, node_sort_key
from spatten_hls.compiler.ir.ops import OP_KINDS, op_from_attrs
from spatten_hls.compiler.ir.types import TensorType

FORMAT_VERSION = 1


def to_json(g: AttnGraph) -> str:
    nodes = sorted(g.nx_graph.nodes, key=node_sort_key)
    h = nx.DiGraph()
    for node in nodes:
        op = g.op(node)
        engine = {"engine": g.engine(node)} if g.engine(node) else {}
        h.add_node(node, kind=op.KIND, attrs=op.attrs(), origin=g.origin(node), **engine)
    for src, dst in sorted(g.nx_graph.edges, key=lambda e: (node_sort_key(e[0]),
                                                           node_sort_key(e[1]))):
        data = g.nx_graph.edges[src, dst]
        tensor = data["tensor"]
        h.add_edge(src, dst, port=data["port"], tensor=None if tensor is None else str(tensor))
    doc = {
        "format": "spatten-ir",
        "version": FORMAT_VERSION,
        "info": dataclasses.asdict(g.info),
        "properties": sorted(g.properties),
        "graph": nx.node_link_data(h, edges="edges"),
    }
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def from_json(text: str) -> AttnGraph:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IRVerificationError(f"IR JSON is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise IRVerificationError(f"IR JSON must be an object, got {type(doc).__name__}")
    if doc.get("format") != "spatten-ir" or doc.get("version") != FORMAT_VERSION:
        raise IRVerificationError(
            f"not a spatten-ir v{FORMAT_VERSION} document "
            f"(format={doc.get('format')!r}, version={doc.get('version')!r})"
        )
    try:
        return _graph_from_doc(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # a damaged document must fail like any other bad IR, not with a bare KeyError
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise IRVerificationError(f"malformed spatten-ir document: {what}") from None


def _graph_from_doc(doc: dict[str, Any]) -> AttnGraph:
    h = nx.node_link_graph(doc["graph"], directed=True, edges="edges")
    g = AttnGraph(GraphInfo(**doc["info"]), frozenset(doc["properties"]))
    for node, data in h.nodes(data=True):
        if data["kind"] not in OP_KINDS:
            raise IRVerificationError(f"node '{node}' has unknown op kind '{data['kind']}'")
        g.add_node(node, op_from_attrs(data["kind"], _attrs(data["attrs"])), data["origin"])
        if data.get("engine"):
            g.set_engine(node, data["engine"])
    for src, dst, data in h.edges(data=True):
        tensor = None if data["tensor"] is None else TensorType.parse(data["tensor"])
        g.add_edge(src, dst, data["port"], tensor)
    return g


def _attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return dict(attrs)
