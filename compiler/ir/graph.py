"""`AttnGraph`: the attention IR, a wrapper around a networkx DiGraph.

Nodes are stable dotted ids (`l3.h7.qk`) holding one frozen op and an `origin` string (where
the node came from; passes append their name). Edges hold the operand `port` and the `tensor`
type flowing along them. The graph-level `GraphInfo` says which model and stage it describes;
`properties` records what the passes so far have established (`typed`, ...).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import networkx as nx

from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.ir.ops import Op
from spatten_hls.compiler.ir.plan import HardwarePlan
from spatten_hls.compiler.ir.types import TensorType

FAMILIES = ("bert", "gpt2", "llama")
STAGES = ("summarization", "generation")
# Token-selection policies (docs/cli.md): "cascade" is the paper's; the others select per layer.
TOKEN_POLICIES = ("cascade", "per-layer", "current", "window")
# A model's name reaches every generated file (IR header, C++ and Tcl comments, README): it is
# a plain identifier (front-ends derive it with `frontend.model.display_name`).
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


@dataclass(frozen=True)
class GraphInfo:
    """What the graph describes. Token shapes are upper bounds (the KV cache grows)."""

    model: str
    family: str
    stage: str  # "summarization" | "generation"
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    seq_len: int
    gen_tokens: int
    causal: bool
    source: str

    @property
    def group_size(self) -> int:
        return self.num_heads // self.num_kv_heads

    @property
    def context(self) -> int:
        """Largest number of keys any query sees."""
        return self.seq_len + (self.gen_tokens if self.stage == "generation" else 0)


def query_rows(info: GraphInfo) -> int:
    """Query rows of one invocation: every token when summarizing, one per decode step."""
    return 1 if info.stage == "generation" else info.seq_len


_NUMBER = re.compile(r"(\d+)")


def node_sort_key(node_id: str) -> tuple:
    """Natural order: `l2.h10` sorts after `l2.h9`, `l10` after `l9`."""
    return tuple(int(p) if p.isdigit() else p for p in _NUMBER.split(node_id))


@dataclass
class AttnGraph:
    info: GraphInfo
    properties: frozenset[str] = frozenset()
    nx_graph: nx.DiGraph = field(default_factory=nx.DiGraph)
    plan: HardwarePlan | None = None  # set by `tile` and `lower-to-engines`

    # -- construction -----------------------------------------------------------------------
    def add_node(self, node_id: str, op: Op, origin: str) -> str:
        if node_id in self.nx_graph:
            raise ValueError(f"duplicate node id '{node_id}'")
        self.nx_graph.add_node(node_id, op=op, origin=origin)
        return node_id

    def add_edge(self, src: str, dst: str, port: int, tensor: TensorType | None = None) -> None:
        if self.nx_graph.has_edge(src, dst):
            raise ValueError(f"edge {src} -> {dst} exists; a value read twice needs a fork node")
        self.nx_graph.add_edge(src, dst, port=port, tensor=tensor)

    def copy(self) -> AttnGraph:
        """Independent structure; ops and types are frozen, so sharing them is safe."""
        return AttnGraph(self.info, self.properties, self.nx_graph.copy(), self.plan)

    # -- queries ----------------------------------------------------------------------------
    def op(self, node_id: str) -> Op:
        return self.nx_graph.nodes[node_id]["op"]

    def origin(self, node_id: str) -> str:
        return self.nx_graph.nodes[node_id]["origin"]

    def engine(self, node_id: str) -> str | None:
        """The hardware engine the node is lowered onto (its parameters are in `plan`)."""
        return self.nx_graph.nodes[node_id].get("engine")

    def set_engine(self, node_id: str, engine: str) -> None:
        self.nx_graph.nodes[node_id]["engine"] = engine

    def set_op(self, node_id: str, op: Op, origin_suffix: str | None = None) -> None:
        data = self.nx_graph.nodes[node_id]
        data["op"] = op
        if origin_suffix:
            data["origin"] = f"{data['origin']} | {origin_suffix}"

    def operands(self, node_id: str) -> list[str]:
        """Predecessors ordered by operand port."""
        preds = self.nx_graph.in_edges(node_id, data="port")
        return [src for src, _, _ in sorted(preds, key=lambda e: e[2])]

    def operand_types(self, node_id: str) -> list[TensorType]:
        return [self.nx_graph.edges[src, node_id]["tensor"] for src in self.operands(node_id)]

    def users(self, node_id: str) -> list[str]:
        return sorted(self.nx_graph.successors(node_id), key=node_sort_key)

    def output_type(self, node_id: str) -> TensorType:
        return self.op(node_id).infer(self.operand_types(node_id))

    def nodes(self) -> Iterator[str]:
        """Nodes in canonical order: topological, grouped by layer then head (deterministic).

        Kahn's algorithm taking the smallest ready node by `_order_key` (what
        networkx.lexicographical_topological_sort does, with each key computed once).
        """
        succ = self.nx_graph._succ
        indegree = dict(self.nx_graph.in_degree())
        keys = {n: self._order_key(n) for n in indegree}
        ready = [(keys[n], n) for n, d in indegree.items() if d == 0]
        heapq.heapify(ready)
        emitted = 0
        while ready:
            _, node = heapq.heappop(ready)
            emitted += 1
            yield node
            for user in succ[node]:
                indegree[user] -= 1
                if indegree[user] == 0:
                    heapq.heappush(ready, (keys[user], user))
        if emitted != len(indegree):
            raise nx.NetworkXUnfeasible("graph contains a cycle")

    def _order_key(self, node_id: str) -> tuple:
        """Layer first; a KV head's loads just before the first query head that reads them."""
        op = self.op(node_id)
        head = getattr(op, "head", None)
        if head is None:
            kv_head = getattr(op, "kv_head", None)
            anchor = (kv_head * self.info.group_size, 0) if kv_head is not None else (1 << 30, 0)
        else:
            anchor = (head, 1)
        return (op.layer, *anchor, node_sort_key(node_id))

    def nodes_of(self, kind: type[Op]) -> list[str]:
        return [n for n in self.nodes() if isinstance(self.op(n), kind)]

    def lowered_plan(self) -> HardwarePlan:
        """The complete hardware plan of a lowered graph (what back-ends read)."""
        if self.plan is None or not self.plan.complete:
            raise CompilerError(
                "the graph has no hardware plan: compile it with the default "
                "pipeline (its last passes, tile and lower-to-engines, plan it)"
            )
        return self.plan

    def __len__(self) -> int:
        return self.nx_graph.number_of_nodes()

    def __contains__(self, node_id: str) -> bool:
        return node_id in self.nx_graph

    # -- type propagation -------------------------------------------------------------------
    def retype(self) -> None:
        """Recompute every edge's tensor type from the ops, in topological order."""
        for node in self.nodes():
            result = self.output_type(node)
            for user in self.nx_graph.successors(node):
                self.nx_graph.edges[node, user]["tensor"] = result
