"""How a graph's token selection keeps its state, read off its token ops (the one place).

The cascade (and every summarization) keeps one row of token state: the layer that dropped
each token, and one importance score per token. A per-layer policy in generation keeps a row
per layer (each layer's own KV cache and scores).
"""

from __future__ import annotations

from dataclasses import dataclass

from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops_spatten import TokenImportance, TokenSelect


@dataclass(frozen=True)
class TokenState:
    rows: int  # rows of token state, each of `context` entries
    fresh: bool  # scores restart at every invocation (the "current" policy)
    by_recency: bool  # selections keep the most recent tokens (the "window" policy)

    def row(self, layer: int) -> int:
        """The state row `layer` reads and its selection writes."""
        return layer if self.rows > 1 else 0


def token_state(g: AttnGraph) -> TokenState:
    ops = [g.op(n) for n in g.nx_graph.nodes]
    selects = [op for op in ops if isinstance(op, TokenSelect)]
    return TokenState(
        rows=g.info.num_layers if any(op.own_layer for op in selects) else 1,
        fresh=any(op.fresh for op in ops if isinstance(op, TokenImportance)),
        by_recency=any(op.by_recency for op in selects),
    )
