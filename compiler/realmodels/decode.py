"""A LLaMA decoder generating token by token with SpAtten attention (the generation stage).

The prompt runs dense in float32 (its K/V become the initial KV cache and calibrate the
quantization scales); every later token is one decode step whose attention, layer by layer,
runs through the bit-accurate simulator (`GenerationSession`): cascade token pruning of the KV
cache with importance accumulated across layers and steps, local value pruning, progressive
quantization, as configured. Teacher forcing: the step at position p reads the text's token p
and predicts token p + 1, so the perplexity compares with the dense model on the same text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.frontend.builder import build_attention_graph, check_against_model
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline
from spatten_hls.compiler.realmodels.attention import AttentionCall, dense_attention
from spatten_hls.compiler.realmodels.llama import LlamaModel, forward, rms_norm, rope, token_nll
from spatten_hls.compiler.sim.result import SimResult
from spatten_hls.compiler.sim.session import GenerationSession


@dataclass(frozen=True)
class DecodeRun:
    nll: np.ndarray  # -log p(token p+1) for the decode positions p
    top1: np.ndarray  # argmax prediction per decode position
    result: SimResult  # the simulator's records and DRAM traffic


class _PromptCapture:
    """Dense attention that also hands each layer's prompt Q/K/V to the session."""

    def __init__(self, session: GenerationSession) -> None:
        self.session = session

    def __call__(self, call: AttentionCall) -> np.ndarray:
        self.session.prompt(call.layer, call.q, call.k, call.v)
        return dense_attention(call)


def generation_graph(model: LlamaModel, cfg: Config, prompt: int, steps: int):
    cfg = dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, stage="generation", seq_len=prompt, gen_tokens=steps),
    )
    check_against_model(cfg, model.spec)
    return run_pipeline(build_attention_graph(model.spec, cfg), cfg, DEFAULT_PIPELINE), cfg


def decode_spatten(model: LlamaModel, ids: np.ndarray, prompt: int, cfg: Config) -> DecodeRun:
    """Decode ids[prompt:] one token at a time through the simulator (teacher forcing)."""
    ids = np.asarray(ids, dtype=np.int64)
    steps = len(ids) - prompt - 1  # positions prompt .. len-2 each predict the next token
    if prompt < 1 or steps < 1:
        raise CompilerError(
            f"need a prompt of >= 1 token and >= 1 decode step; got a prompt "
            f"of {prompt} of {len(ids)} tokens"
        )
    graph, cfg = generation_graph(model, cfg, prompt, steps)
    session = GenerationSession(graph)
    forward(model, ids[:prompt], _PromptCapture(session))
    c, w = model.config, model.weights
    nll, top1 = [], []
    for p in range(prompt, len(ids) - 1):
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
