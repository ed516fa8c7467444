"""Token pruning: accumulate token importance, select the tokens kept after pruned layers.

The policy decides the structure (docs/cli.md, `[token_pruning]`):

* `cascade` (SpAtten): one score chained over layers and steps; a token a layer drops is gone
  from every later layer (the later layers' loads are gated by the latest selection);
* `current`: each layer scores by its own attention of this invocation only (`fresh`);
* `per-layer`: each layer accumulates its own scores over the decode steps;
* `window`: the attention sinks and the most recent tokens, no scores consulted.

For a decoder the non-cascade policies act on each layer's own KV cache: a layer's selection
evicts tokens from that layer only (from its cache for the later decode steps; in
summarization, the prefill of the KV-eviction literature, every layer still computes every
prompt row and then keeps its selection for the generation that follows). An encoder has no
KV cache: under every policy a dropped token leaves all later layers (token dropping), so only
the scores differ.
"""

from __future__ import annotations

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops_spatten import TokenImportance, TokenSelect
from spatten_hls.compiler.passes.registry import register_pass
from spatten_hls.compiler.passes.rewrite import Cascade, final_probs, insert_cascade
from spatten_hls.compiler.passes.schedule import keep_fractions

NAME = "insert-token-pruning"


def token_keep_fractions(g: AttnGraph, cfg: Config) -> list[float]:
    """The fraction of the sequence so far that each layer keeps (1.0: no selection): of L
    tokens in summarization, of the current context at every decode step in generation."""
    t = cfg.token_pruning
    return keep_fractions(
        g.info.num_layers, t.keep, t.skip_first, t.keep_per_layer, t.schedule == "uniform"
    )


@register_pass(NAME, requires={"typed"}, provides={"token-pruned"})
def insert_token_pruning(g: AttnGraph, cfg: Config) -> AttnGraph:
    """SpAtten token pruning (paper section III-A, Algorithm 2) and the per-layer policies.

    Precondition: a typed graph; every head's probabilities reach its matmul_pv.
    Effect (only with `token_pruning.enabled`): every layer gets a token_importance node that
    adds the column sums of all its heads' probabilities to its scores (`cascade`: to the
    importance carried from the previous layer and earlier steps). Each layer keeping less than
    all gets a token_select keeping max(1, floor(end * keep)) tokens of the `end` so far, the
    `keep_first` / `keep_recent` protected ones (in generation also the step's own token)
    among them, or every protected token when they outnumber that.
    Cascade (and every encoder): the K, V and Q loads of every later layer are gated by the
    latest token_select. Per-layer policies of a decoder gate nothing: a selection evicts from
    its own layer's KV cache (`own_layer`); with `granularity = "kv_head"` each KV head of the
    layer scores and selects for its own cache (`per_kv_head`).
    Postcondition: selections keep non-increasing fractions across layers.
    """
    t = cfg.token_pruning
    if not t.enabled:
        return g
    fractions = token_keep_fractions(g, cfg)
    cascade = t.policy == "cascade"
    own_layer = not cascade and g.info.causal
    per_kv_head = own_layer and t.granularity == "kv_head"
    insert_cascade(
        g,
        Cascade(
            pass_name=NAME,
            kind="token",
            gate="tokens",
            prunes=[f < 1.0 for f in fractions],
            importance=lambda layer, heads, chained: TokenImportance(
                layer=layer,
                heads=heads,
                chained=chained,
                fresh=t.policy == "current",
                per_kv_head=per_kv_head,
                decay_shift=t.decay_shift if own_layer else 0,
                observation_window=t.observation_window,
            ),
            select=lambda layer: TokenSelect(
                layer=layer,
                keep=fractions[layer],
                keep_first=t.keep_first,
                keep_recent=t.keep_recent,
                by_recency=t.policy == "window",
                own_layer=own_layer,
                per_kv_head=per_kv_head,
            ),
            source=lambda layer, head: final_probs(g, layer, head),
            chains_scores=cascade,
            gates_later=not own_layer,
        ),
    )
    g.retype()
    return g
