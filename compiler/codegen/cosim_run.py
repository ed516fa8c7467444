"""The reduced golden run of `spatten compile --cosim-size`.

C/RTL co-simulation simulates every cycle of every invocation the testbench makes: the whole
stage (every layer, and every decode step when generating) takes millions of cycles. The
reduced run keeps the design as it is (the same sources, the same full-size DRAM images and
m_axi depths) and gives the testbench less to do: one layer, a short sequence, one decode step.
The layer is the first that selects tokens (else the first that selects heads, else layer 0),
so the run goes through the top-k engine; the sequence holds COSIM_TOKENS candidates besides
the tokens the policy protects (sinks, recent window), so the selection has a choice to make.
"""

from __future__ import annotations

from spatten_hls.compiler.codegen.lower import ProjectContext
from spatten_hls.compiler.sim import RunExtent

COSIM_TOKENS = 32


def cosim_extent(ctx: ProjectContext) -> RunExtent:
    """One layer, a short sequence (the prompt when generating) and one step of `ctx`'s stage."""
    layers = range(ctx.num_layers)
    selects_tokens = [i for i in layers if ctx.token_keep_num[i] < ctx.token_keep_den[i]]
    selects_heads = [i for i in layers if ctx.head_keep[i] < ctx.num_heads]
    layer = (selects_tokens or selects_heads or [0])[0]
    tokens = min(ctx.seq_len, COSIM_TOKENS + ctx.keep_first + ctx.keep_recent)
    return RunExtent(first_layer=layer, layers=1, seq_len=tokens, steps=1)


def layer_span(extent: RunExtent) -> str:
    """'layer 2' or 'layers 0-11'."""
    first, last = extent.first_layer, extent.first_layer + extent.layers - 1
    return f"layer {first}" if first == last else f"layers {first}-{last}"


def describe(extent: RunExtent, stage: str) -> str:
    """The extent in words, e.g. 'layer 2, a 32-token prompt, 1 decode step'."""
    layers = layer_span(extent)
    if stage == "generation":
        steps = f"{extent.steps} decode step{'s' if extent.steps != 1 else ''}"
        return f"{layers}, a {extent.seq_len}-token prompt, {steps}"
    return f"{layers}, {extent.seq_len} tokens"
