"""`verify(g)`: structural and per-op checks of an `AttnGraph`.

Failures raise `IRVerificationError` whose message names the node, prints it with its
neighbourhood (operands and users, the faulty line marked `^^^`) and gives its origin.
"""

from __future__ import annotations

import networkx as nx

from spatten_hls.compiler.errors import IRVerificationError
from spatten_hls.compiler.ir.graph import AttnGraph, node_sort_key, query_rows
from spatten_hls.compiler.ir.ops import LoadK, LoadOp, LoadQ, LoadV
from spatten_hls.compiler.ir.ops_spatten import (
    HeadSelect,
    LoadKLsb,
    LoadKMsb,
    Requant,
    TokenSelect,
    ValueTopK,
)
from spatten_hls.compiler.ir.plan import ENGINES
from spatten_hls.compiler.ir.token_state import token_state
from spatten_hls.compiler.ir.widths import bit_widths


def verify(g: AttnGraph) -> None:
    if not nx.is_directed_acyclic_graph(g.nx_graph):
        # name the cycle from its smallest node so the message is deterministic
        cycle = [u for u, _ in nx.find_cycle(g.nx_graph)]
        start = cycle.index(min(cycle, key=node_sort_key))
        cycle = cycle[start:] + cycle[:start]
        path = " -> ".join([*cycle, cycle[0]])
        raise IRVerificationError(_describe(g, cycle[0], [f"graph has a cycle: {path}"]))
    order = list(g.nodes())  # canonical order: the first error reported is deterministic
    for node in order:
        problems = _node_problems(g, node)
        if problems:
            raise IRVerificationError(_describe(g, node, problems))
    _check_stage(g, order)
    _check_plan(g, order)


def _node_problems(g: AttnGraph, node: str) -> list[str]:
    data = g.nx_graph.nodes[node]
    op = data.get("op")
    if op is None or not data.get("origin"):
        return ["node has no op or no origin"]
    edges = sorted(g.nx_graph.in_edges(node, data=True), key=lambda e: e[2].get("port", -1))
    ports = [e[2].get("port") for e in edges]
    arity = op.arity(len(ports))
    if ports != list(range(arity)):
        return [f"{op.KIND} needs operand ports 0..{arity - 1}, has {ports}"]
    if any(e[2].get("tensor") is None for e in edges):
        return ["an operand edge carries no tensor type"]
    inputs = [e[2]["tensor"] for e in edges]
    operands = [g.op(e[0]) for e in edges]
    problems = list(op.check(inputs, operands))
    if any(o.layer != op.layer for o in operands) and not op.CROSS_LAYER:
        problems.append("operand from another layer without an explicit cross-layer op")
    if problems:
        return problems
    expected = op.infer(inputs)
    for user in g.nx_graph.successors(node):
        actual = g.nx_graph.edges[node, user]["tensor"]
        if actual != expected:
            problems.append(f"edge to {user} carries {actual}, but {op.KIND} produces {expected}")
    return problems


def _check_stage(g: AttnGraph, order: list[str]) -> None:
    """Graph-level invariants tied to the model: head counts and GQA sharing."""
    info = g.info
    for node in order:
        op = g.op(node)
        problems = []
        if not 0 <= op.layer < info.num_layers:
            problems.append(f"layer {op.layer} outside 0..{info.num_layers - 1}")
        if isinstance(op, LoadQ) and not 0 <= op.head < info.num_heads:
            problems.append(f"head {op.head} outside 0..{info.num_heads - 1}")
        if (
            isinstance(op, LoadK | LoadV | LoadKMsb | LoadKLsb)
            and not 0 <= op.kv_head < info.num_kv_heads
        ):
            problems.append(f"kv_head {op.kv_head} outside 0..{info.num_kv_heads - 1}")
        if isinstance(op, LoadOp):
            rows = query_rows(info) if isinstance(op, LoadQ) else info.context
            if (op.tokens, op.head_dim) != (rows, info.head_dim):
                problems.append(
                    f"fetches [{op.tokens},{op.head_dim}], but the model's rows "
                    f"are [{rows},{info.head_dim}]"
                )
        if isinstance(op, TokenSelect) and not (0 <= op.keep_first and 0 <= op.keep_recent):
            problems.append(
                f"protects a negative number of tokens (first {op.keep_first}, "
                f"recent {op.keep_recent})"
            )
        if isinstance(op, TokenSelect) and op.own_layer and not info.causal:
            problems.append("selects for its own layer's KV cache, which needs a decoder")
        if isinstance(op, HeadSelect) and op.keep > info.num_heads:
            problems.append(f"keeps {op.keep} of {info.num_heads} heads")
        head = getattr(op, "head", None)
        kv_head = getattr(op, "kv_head", None)
        if head is not None and kv_head is not None and kv_head != head // info.group_size:
            problems.append(
                f"head {head} must read kv_head {head // info.group_size} "
                f"(group size {info.group_size}), reads {kv_head}"
            )
        if "typed" in g.properties and any(
            g.nx_graph.edges[e]["tensor"].dtype is None for e in g.nx_graph.out_edges(node)
        ):
            problems.append("graph is 'typed' but an output edge has no fixed-point type")
        if problems:
            raise IRVerificationError(_describe(g, node, problems))


def _check_plan(g: AttnGraph, order: list[str]) -> None:
    """A tiled graph carries the plan's fetcher, a lowered one the whole plan, and the plan
    agrees with the IR (widths, the requant threshold, the value keep ratio, engines)."""
    plan, info = g.plan, g.info
    if "tiled" not in g.properties:
        return
    problems = []
    if plan is None or ("lowered" in g.properties and not plan.complete):
        raise IRVerificationError(
            "the graph is tiled/lowered but its hardware plan is missing or incomplete"
        )
    if plan.bits != bit_widths(g):
        problems.append(f"plan.bits {plan.bits} disagree with the loads {bit_widths(g)}")
    if plan.stage != info.stage:
        problems.append(f"plan.stage {plan.stage} is not the graph's stage {info.stage}")
    fetcher = plan.fetcher
    if fetcher.tile_tokens * fetcher.tiles < info.context or fetcher.tile_tokens < 1:
        problems.append(
            f"{fetcher.tiles} tiles of {fetcher.tile_tokens} keys do not cover {info.context} keys"
        )
    if "lowered" in g.properties:
        problems += _lowered_plan_problems(g, order)
    if problems:
        raise IRVerificationError("hardware plan: " + "; ".join(problems))


def _lowered_plan_problems(g: AttnGraph, order: list[str]) -> list[str]:
    plan, info = g.plan, g.info
    problems = [f"%{n} has engine {g.engine(n)!r}" for n in order if g.engine(n) not in ENGINES]
    for dot in (plan.qk, plan.pv):
        if dot.multipliers != dot.keys_per_cycle * info.head_dim or dot.keys_per_cycle < 1:
            problems.append(f"{dot} does not do keys_per_cycle keys of head_dim MACs")
    requants = [g.op(n) for n in order if isinstance(g.op(n), Requant)]
    if plan.requant.enabled != bool(requants) or any(
        op.threshold_code != plan.requant.threshold_code for op in requants
    ):
        problems.append(f"plan.requant {plan.requant} disagrees with the requant nodes")
    topks = [g.op(n) for n in order if isinstance(g.op(n), ValueTopK)]
    if plan.value_topk.enabled != bool(topks) or any(
        (op.keep_ratio.numerator, op.keep_ratio.denominator)
        != (plan.value_topk.keep_num, plan.value_topk.keep_den)
        for op in topks
    ):
        problems.append(f"plan.value_topk {plan.value_topk} disagrees with the value_topk nodes")
    tokens = token_state(g)
    imp = plan.importance
    if (imp.tokens, imp.heads) != (tokens.rows * info.context, info.num_heads):
        problems.append(f"plan.importance {imp} does not hold every token and head")
    if (
        imp.token_state_rows,
        imp.token_state_groups,
        imp.token_scores_fresh,
        imp.token_by_recency,
    ) != (
        tokens.rows,
        tokens.groups,
        tokens.fresh,
        tokens.by_recency,
    ):
        problems.append(f"plan.importance {imp} disagrees with the token nodes")
    return problems


def _describe(g: AttnGraph, node: str, problems: list[str]) -> str:
    from spatten_hls.compiler.ir.printer import (
        format_node,  # printer imports graph; avoid a cycle here
    )

    lines = [f"IR verification failed at %{node}: {'; '.join(problems)}"]
    for pred in g.operands(node):
        lines.append("    " + format_node(g, pred))
    lines.append("    " + format_node(g, node))
    lines.append("    ^^^ " + "; ".join(problems))
    for user in g.users(node)[:3]:
        lines.append("    " + format_node(g, user))
    lines.append(f"  origin: {g.origin(node)}")
    return "\n".join(lines)
