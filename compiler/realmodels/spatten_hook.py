"""The bit-accurate SpAtten simulator as a real model's attention (summarization stage).

`SpattenAttention` is an `AttentionFn` (compiler/realmodels/attention.py): for each sequence
it builds the attention IR of the model with `seq_len` = the sequence's length, runs the
configured pipeline, and advances one `SummarizationSession` a layer per call. The forward
then drops the tokens cascade pruning removed, so later layers compute Q, K and V for the
survivors only (the paper's cascade). DRAM bytes and per-layer records are collected.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.frontend.builder import build_attention_graph, check_against_model
from spatten_hls.compiler.frontend.model import ModelSpec
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline
from spatten_hls.compiler.realmodels.attention import AttentionCall, AttentionOutput
from spatten_hls.compiler.sim.result import SimResult
from spatten_hls.compiler.sim.session import SummarizationSession


@dataclass
class SpattenAttention:
    spec: ModelSpec
    config: Config
    results: list[SimResult] = field(default_factory=list)  # one per finished sequence
    _graphs: dict[int, AttnGraph] = field(default_factory=dict)
    _sessions: dict[int, SummarizationSession] = field(default_factory=dict)

    def graph(self, tokens: int) -> AttnGraph:
        """The compiled IR for a sequence of `tokens` tokens (cached by length)."""
        if tokens not in self._graphs:
            cfg = dataclasses.replace(
                self.config,
                model=dataclasses.replace(self.config.model, seq_len=tokens, stage="summarization"),
            )
            check_against_model(cfg, self.spec)
            self._graphs[tokens] = run_pipeline(
                build_attention_graph(self.spec, cfg), cfg, DEFAULT_PIPELINE
            )
        return self._graphs[tokens]

    def __call__(self, call: AttentionCall) -> AttentionOutput:
        if call.layer == 0:
            self._sessions[call.sequence] = SummarizationSession(self.graph(len(call.k_positions)))
        session = self._sessions[call.sequence]
        if not np.array_equal(session.visible_tokens(call.layer), call.k_positions):
            raise AssertionError("the forward's tokens disagree with the pruning state")
        # A decoder's forward computes every position's query; the summarization computes the
        # queries of the tokens it still sees (a token the cascade dropped is no longer a
        # query) and the others get a zero context: only the kept tokens' K/V reach later
        # layers and the decode steps.
        rows = np.searchsorted(call.q_positions, call.k_positions)
        out_rows, keep = session.layer(call.layer, call.q[:, rows], call.k, call.v)
        if len(rows) == len(call.q_positions):
            out = out_rows
        else:
            out = np.zeros(call.q.shape, dtype=out_rows.dtype)
            out[:, rows] = out_rows
        if call.layer == session.info.num_layers - 1:
            self.results.append(session.finish())
            del self._sessions[call.sequence]
        return AttentionOutput(out, keep)

    @property
    def dram_bytes(self) -> int:
        return sum(r.dram_bytes["total"] for r in self.results)

    @property
    def dense_dram_bytes(self) -> int:
        return sum(r.dense_dram_bytes for r in self.results)
