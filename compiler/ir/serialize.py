"""JSON form of an `AttnGraph` (networkx node-link layout) with an exact round trip."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import networkx as nx

from spatten_hls.compiler import limits
from spatten_hls.compiler.errors import IRVerificationError, brief, printable
from spatten_hls.compiler.input_files import parse_json
from spatten_hls.compiler.ir.graph import (
    FAMILIES,
    MODEL_NAME,
    STAGES,
    AttnGraph,
    GraphInfo,
    node_sort_key,
)
from spatten_hls.compiler.ir.ops import OP_KINDS, op_from_attrs
from spatten_hls.compiler.ir.plan import plan_from_dict, plan_to_dict
from spatten_hls.compiler.ir.types import TensorType

FORMAT_VERSION = 3  # 2: the hardware plan; 3: its engine rates, depths, lanes and banks
NODE_ID = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
INFO_LIMITS = {
    "num_layers": limits.MAX_LAYERS,
    "num_heads": limits.MAX_HEADS,
    "num_kv_heads": limits.MAX_HEADS,
    "head_dim": limits.MAX_HEAD_DIM,
    "seq_len": limits.MAX_SEQ_LEN,
    "gen_tokens": limits.MAX_GEN_TOKENS,
}


def to_json(g: AttnGraph) -> str:
    nodes = sorted(g.nx_graph.nodes, key=node_sort_key)
    h = nx.DiGraph()
    for node in nodes:
        op = g.op(node)
        engine = {"engine": g.engine(node)} if g.engine(node) else {}
        h.add_node(node, kind=op.KIND, attrs=op.attrs(), origin=g.origin(node), **engine)
    for src, dst in sorted(
        g.nx_graph.edges, key=lambda e: (node_sort_key(e[0]), node_sort_key(e[1]))
    ):
        data = g.nx_graph.edges[src, dst]
        tensor = data["tensor"]
        h.add_edge(src, dst, port=data["port"], tensor=None if tensor is None else str(tensor))
    doc = {
        "format": "spatten-ir",
        "version": FORMAT_VERSION,
        "info": dataclasses.asdict(g.info),
        "properties": sorted(g.properties),
        "plan": plan_to_dict(g.plan) if g.plan is not None else None,
        "graph": nx.node_link_data(h, edges="edges"),
    }
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def from_json(text: str, source: str = "IR JSON") -> AttnGraph:
    """Rebuild a graph from `to_json` text; any damage is an `IRVerificationError`.

    The text may come from an edited project file: every field is checked for its type and
    range here, and the caller verifies the graph (`verify`) before using it.
    """
    doc = parse_json(text, source, IRVerificationError)
    if not isinstance(doc, dict):
        raise IRVerificationError(f"IR JSON must be an object, got {type(doc).__name__}")
    if doc.get("format") != "spatten-ir" or doc.get("version") != FORMAT_VERSION:
        raise IRVerificationError(
            f"not a spatten-ir v{FORMAT_VERSION} document "
            f"(format={doc.get('format')!r}, version={doc.get('version')!r})"
        )
    try:
        return _graph_from_doc(doc)
    except (KeyError, TypeError, ValueError, AttributeError, nx.NetworkXError) as exc:
        # a damaged document must fail like any other bad IR, not with a bare KeyError
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise IRVerificationError(
            f"{source}: malformed spatten-ir document: {printable(what)[:200]}"
        ) from None


def _graph_from_doc(doc: dict[str, Any]) -> AttnGraph:
    info = graph_info_from_dict(doc["info"])
    properties = doc["properties"]
    if not isinstance(properties, list) or not all(isinstance(p, str) for p in properties):
        raise ValueError("'properties' must be a list of strings")
    graph = doc["graph"]
    nodes, edges = graph["nodes"], graph["edges"]
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise ValueError("'graph.nodes' and 'graph.edges' must be lists")
    most = max_nodes(info)
    if len(nodes) > most or len(edges) > 4 * most:
        raise ValueError(
            f"{len(nodes)} nodes and {len(edges)} edges: more than a model of "
            f"this shape has (at most {most} nodes)"
        )
    h = nx.node_link_graph(graph, directed=True, edges="edges")
    plan = None if doc["plan"] is None else plan_from_dict(doc["plan"])
    g = AttnGraph(info, frozenset(properties), plan=plan)
    for node, data in h.nodes(data=True):
        if not isinstance(node, str) or not NODE_ID.fullmatch(node):
            raise ValueError(f"node id {brief(node)} is not a dotted name")
        if data["kind"] not in OP_KINDS:
            raise ValueError(f"node '{node}' has unknown op kind {brief(data['kind'])}")
        origin, engine = data["origin"], data.get("engine")
        if not isinstance(origin, str) or (engine is not None and not isinstance(engine, str)):
            raise ValueError(f"node '{node}': origin and engine must be strings")
        if not isinstance(data["attrs"], dict):
            raise ValueError(f"node '{node}': attrs must be an object")
        g.add_node(node, op_from_attrs(data["kind"], data["attrs"]), origin)
        if engine:
            g.set_engine(node, engine)
    for src, dst, data in h.edges(data=True):
        port, tensor = data["port"], data["tensor"]
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port < most:
            raise ValueError(f"edge {src} -> {dst}: port {brief(port)} is not an operand index")
        if tensor is not None and not isinstance(tensor, str):
            raise ValueError(f"edge {src} -> {dst}: tensor must be a type string")
        g.add_edge(src, dst, port, None if tensor is None else TensorType.parse(tensor))
    return g


def max_nodes(info: GraphInfo) -> int:
    """More nodes than any pipeline stage gives a model of this shape (a loose bound)."""
    return 32 * info.num_layers * (info.num_heads + info.num_kv_heads + 2)


def graph_info_from_dict(raw: Any) -> GraphInfo:
    """A `GraphInfo` whose every field has its declared type and lies within the limits."""
    if not isinstance(raw, dict):
        raise ValueError("'info' must be an object")
    fields = {f.name: f for f in dataclasses.fields(GraphInfo)}
    if set(raw) != set(fields):
        odd = sorted(set(raw) ^ set(fields))
        raise ValueError(
            f"'info' has unknown or missing keys {[printable(str(k)) for k in odd]}"
            f" (expected {sorted(fields)})"
        )
    for name, field in fields.items():
        value, kind = raw[name], field.type
        if kind == "int" and (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 0 <= value <= INFO_LIMITS.get(name, 0)
        ):
            raise ValueError(
                f"info.{name} = {brief(value)} must be an integer in "
                f"[0, {INFO_LIMITS.get(name, 0)}]"
            )
        if kind in ("str", "bool") and type(value).__name__ != kind:
            raise ValueError(f"info.{name} must be a {kind}, got {brief(value)}")
    info = GraphInfo(**raw)
    if (
        not MODEL_NAME.fullmatch(info.model)
        or info.family not in FAMILIES
        or info.stage not in STAGES
    ):
        raise ValueError(
            f"info: model {brief(info.model)}, family {brief(info.family)} or "
            f"stage {brief(info.stage)} is not one the compiler knows"
        )
    if (
        min(info.num_layers, info.num_heads, info.num_kv_heads, info.head_dim, info.seq_len) < 1
        or info.num_heads % info.num_kv_heads
    ):
        raise ValueError(
            "info: layers, heads, KV heads (dividing heads), head_dim and seq_len must be positive"
        )
    return info
