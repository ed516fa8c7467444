"""A LLaMA decoder generating token by token with SpAtten attention (the generation stage).

Two protocols (docs/cli.md, `spatten eval --protocol`):

* `decode` (KV eviction while decoding): the prompt runs dense in float32 (its K/V become the
  initial KV cache and calibrate the quantization scales); every later token is one decode
  step whose attention, layer by layer, runs through the bit-accurate simulator
  (`GenerationSession`) with the configured token selection at every step, local value
  pruning and progressive quantization.
* `prefill` (SpAtten's GPT-2 flow, and the protocol of the KV-compression libraries): the
  prompt runs through the simulator as a summarization, which makes the token selection once
  (a decoder's per-layer policies evict from each layer's cache after computing every prompt
  row; the cascade drops keys from later layers as it goes); the decode steps then read what
  it kept, plus every new token, with no further token selection.

Teacher forcing: the step at position p reads the text's token p and predicts token p + 1, so
the perplexity compares with the dense model on the same text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.frontend.builder import build_attention_graph, check_against_model
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline
from spatten_hls.compiler.realmodels.attention import AttentionCall, dense_attention
from spatten_hls.compiler.realmodels.llama import LlamaModel, forward, rms_norm, rope, token_nll
from spatten_hls.compiler.realmodels.spatten_hook import SpattenAttention
from spatten_hls.compiler.sim.result import SimResult
from spatten_hls.compiler.sim.session import GenerationSession


@dataclass(frozen=True)
class DecodeRun:
    nll: np.ndarray  # -log p(token p+1) for the decode positions p
    top1: np.ndarray  # argmax prediction per decode position
    result: SimResult  # the simulator's records and DRAM traffic


PROTOCOLS = ("decode", "prefill")


class _PromptCapture:
    """The prompt's attention (dense, or the summarization hook of the prefill protocol) that
    also hands each layer's prompt Q/K/V to the generation session (keys the summarization
    dropped before this layer are zero rows: the decode steps never see them)."""

    def __init__(self, session: GenerationSession, prompt: int, summarize=None) -> None:
        self.session, self.prompt, self.summarize = session, prompt, summarize

    def __call__(self, call: AttentionCall):
        k, v = (np.zeros((x.shape[0], self.prompt, x.shape[2]), x.dtype) for x in (call.k, call.v))
        k[:, call.k_positions], v[:, call.k_positions] = call.k, call.v
        self.session.prompt(call.layer, call.q, k, v)
        return dense_attention(call) if self.summarize is None else self.summarize(call)


def generation_graph(model: LlamaModel, cfg: Config, prompt: int, steps: int):
    cfg = dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, stage="generation", seq_len=prompt, gen_tokens=steps),
    )
    check_against_model(cfg, model.spec)
    return run_pipeline(build_attention_graph(model.spec, cfg), cfg, DEFAULT_PIPELINE), cfg


def decode_spatten(
    model: LlamaModel,
    ids: np.ndarray,
    prompt: int,
    cfg: Config,
    protocol: str = "decode",
    progress: bool | None = False,
) -> DecodeRun:
    """Decode ids[prompt:] one token at a time through the simulator (teacher forcing), under
    `protocol` (module docstring); `progress` shows a bar over the decode steps (None: when
    stderr is a terminal)."""
    ids = np.asarray(ids, dtype=np.int64)
    steps = len(ids) - prompt - 1  # positions prompt .. len-2 each predict the next token
    if prompt < 1 or steps < 1:
        raise CompilerError(
            f"need a prompt of >= 1 token and >= 1 decode step; got a prompt "
            f"of {prompt} of {len(ids)} tokens"
        )
    summarize = None
    if protocol == "prefill":
        summarize = SpattenAttention(model.spec, cfg)
        cfg = dataclasses.replace(
            cfg, token_pruning=dataclasses.replace(cfg.token_pruning, enabled=False)
        )
    graph, cfg = generation_graph(model, cfg, prompt, steps)
    session = GenerationSession(graph)
    forward(model, ids[:prompt], _PromptCapture(session, prompt, summarize))
    if summarize is not None:
        session.adopt_prompt_selection(summarize.results[0].pruning_state)
    c, w = model.config, model.weights
    nll, top1 = [], []
    positions = range(prompt, len(ids) - 1)
    for p in tqdm(
        positions,
        desc="decode",
        unit="token",
        disable=None if progress is None else not progress,
        leave=False,
    ):
        x = w["token_embd.weight"][ids[p : p + 1]].astype(np.float32)
        where = np.array([p], dtype=np.int64)
        for layer in range(c.num_layers):
            b = f"blk.{layer}."
            h = rms_norm(x, w[b + "attn_norm.weight"], c.rms_eps)
            q = rope(
                (h @ w[b + "attn_q.weight"].T).reshape(1, c.num_heads, c.head_dim),
                where,
                model.rope_inv_freq,
            )
            k = rope(
                (h @ w[b + "attn_k.weight"].T).reshape(1, c.num_kv_heads, c.head_dim),
                where,
                model.rope_inv_freq,
            )
            v = (h @ w[b + "attn_v.weight"].T).reshape(1, c.num_kv_heads, c.head_dim)
            ctx = session.step(layer, p, *(t.transpose(1, 0, 2) for t in (q, k, v)))
            x = x + ctx.transpose(1, 0, 2).reshape(1, -1) @ w[b + "attn_output.weight"].T
            h = rms_norm(x, w[b + "ffn_norm.weight"], c.rms_eps)
            gate = h @ w[b + "ffn_gate.weight"].T
            gate *= 1 / (1 + np.exp(-gate))
            gate *= h @ w[b + "ffn_up.weight"].T
            x += gate @ w[b + "ffn_down.weight"].T
        logits = rms_norm(x, w["output_norm.weight"], c.rms_eps) @ w["output.weight"].T
        nll.append(float(token_nll(logits, ids[p + 1 : p + 2])[0]))
        top1.append(int(logits[0].argmax()))
    return DecodeRun(np.array(nll), np.array(top1), session.finish())
