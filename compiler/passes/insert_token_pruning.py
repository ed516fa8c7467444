"""Cascade token pruning: accumulate token importance, select the top-k after pruned layers."""

from __future__ import annotations

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops_spatten import TokenImportance, TokenSelect
from spatten_hls.compiler.passes.registry import register_pass
from spatten_hls.compiler.passes.rewrite import Cascade, final_probs, insert_cascade
from spatten_hls.compiler.passes.schedule import keep_counts, keep_fractions

NAME = "insert-token-pruning"


def token_keep_counts(g: AttnGraph, cfg: Config) -> list[int]:
    """Tokens kept after each layer: floor(L * keep_l), L the original sequence length
    (generation: the full context `seq_len + gen_tokens`, so counts stay constant across
    steps as in SpAtten's GPT-2 traces)."""
    t = cfg.token_pruning
    fractions = keep_fractions(g.info.num_layers, t.keep, t.skip_first, t.keep_per_layer)
    return keep_counts(g.info.context, fractions)


@register_pass(NAME, requires={"typed"}, provides={"token-pruned"})
def insert_token_pruning(g: AttnGraph, cfg: Config) -> AttnGraph:
    """SpAtten cascade token pruning (paper section III-A, Algorithm 2).

    Precondition: a typed graph; every head's probabilities reach its matmul_pv.
    Effect (only with `token_pruning.enabled`): every layer gets a token_importance node that
    adds the column sums of all its heads' probabilities to the importance carried from the
    previous layer (and, when generating, from earlier steps). Each layer whose keep count is
    below the full length gets a token_select keeping the `keep` most important tokens (plus
    `keep_first` / `keep_recent` protected ones; in generation also the step's own token);
    the K, V and Q loads of every later layer are gated by the latest token_select.
    Postcondition: selections keep non-increasing counts across layers.
    """
    t = cfg.token_pruning
    if not t.enabled:
        return g
    insert_cascade(
        g,
        Cascade(
            pass_name=NAME,
            kind="token",
            gate="tokens",
            counts=token_keep_counts(g, cfg),
            full=g.info.context,
            importance=lambda layer, heads, chained: TokenImportance(
                layer=layer, heads=heads, chained=chained
            ),
            select=lambda layer, keep: TokenSelect(
                layer=layer, keep=keep, keep_first=t.keep_first, keep_recent=t.keep_recent
            ),
            source=lambda layer, head: final_probs(g, layer, head),
        ),
    )
    g.retype()
    return g
