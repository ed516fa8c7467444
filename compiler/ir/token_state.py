"""How a graph's token selection keeps its state, read off its token ops (the one place).

The cascade (and every summarization) keeps one row of token state: the layer that dropped
each token, and one importance score per token. A per-layer policy in generation keeps a row
per layer (each layer's own KV cache and scores), and with per-KV-head selection a row per
(layer, KV head), layer-major: row `layer * groups + kv_head`.
"""

from __future__ import annotations

from dataclasses import dataclass

from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops_spatten import TokenImportance, TokenSelect


@dataclass(frozen=True)
class TokenState:
    rows: int  # rows of token state, each of `context` entries
    groups: int  # rows per layer: 1, or the KV heads with per-KV-head selection
    fresh: bool  # scores restart at every invocation (the "current" policy)
    by_recency: bool  # selections keep the most recent tokens (the "window" policy)
    decay_shift: int = 0  # accumulated scores lose score >> decay_shift at each invocation
    observation_window: int = 0  # only the last N query rows of an invocation score (0: all)

    def row(self, layer: int, kv_head: int = 0) -> int:
        """The state row that `layer` (its KV head `kv_head`) reads and its selection writes."""
        return layer * self.groups + kv_head if self.rows > 1 else 0


def token_state(g: AttnGraph) -> TokenState:
    ops = [g.op(n) for n in g.nx_graph.nodes]
    selects = [op for op in ops if isinstance(op, TokenSelect)]
    groups = g.info.num_kv_heads if any(op.per_kv_head for op in selects) else 1
    return TokenState(
        rows=g.info.num_layers * groups if any(op.own_layer for op in selects) else 1,
        groups=groups,
        fresh=any(op.fresh for op in ops if isinstance(op, TokenImportance)),
        by_recency=any(op.by_recency for op in selects),
        decay_shift=max(
            (op.decay_shift for op in ops if isinstance(op, TokenImportance)), default=0
        ),
        observation_window=max(
            (op.observation_window for op in ops if isinstance(op, TokenImportance)), default=0
        ),
    )
