"""What SpAtten costs a real encoder: sentence embeddings through the bit-accurate simulator
(with the configured pruning and quantization) against the dense float32 model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.realmodels import bert
from spatten_hls.compiler.realmodels.spatten_hook import SpattenAttention


@dataclass(frozen=True)
class EncoderFidelity:
    model: str
    sentences: int
    tokens: int
    mean_cosine: float
    min_cosine: float
    nn_agreement: float
    dram_bytes: int
    dense_dram_bytes: int
    tokens_per_layer: list[float]  # mean surviving tokens entering each layer
    kv_read_fraction: float  # key entries read over what dense attention reads
    pooling_pruned: str = "drop"  # pruned tokens leave the mean pool, or carry into it
    mean_cosine_by_pooling: dict[str, float] = field(default_factory=dict)  # drop and carry

    @property
    def dram_reduction(self) -> float:
        return self.dense_dram_bytes / max(self.dram_bytes, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "sentences": self.sentences,
            "tokens": self.tokens,
            "pooling_pruned": self.pooling_pruned,
            "mean_cosine_by_pooling": self.mean_cosine_by_pooling,
            "mean_cosine": self.mean_cosine,
            "min_cosine": self.min_cosine,
            "nn_agreement": self.nn_agreement,
            "dram_bytes": self.dram_bytes,
            "dense_dram_bytes": self.dense_dram_bytes,
            "dram_reduction": round(self.dram_reduction, 6),
            "kv_read_fraction": round(self.kv_read_fraction, 6),
            "tokens_per_layer": self.tokens_per_layer,
        }


def nearest_neighbours(embeddings: np.ndarray) -> np.ndarray:
    """Index of each row's most similar other row (cosine; ties to the lower index)."""
    similarity = embeddings @ embeddings.T
    np.fill_diagonal(similarity, -np.inf)
    return similarity.argmax(axis=1)


def evaluate_encoder(
    model: bert.BertModel, cfg: Config, sentences: Sequence[str]
) -> EncoderFidelity:
    if len(sentences) < 2:
        raise CompilerError("the evaluation needs at least two sentences (nearest neighbours)")
    if cfg.model.stage != "summarization":
        raise CompilerError("an encoder is evaluated in the summarization stage")
    batch = model.tokenize(list(sentences))
    dense = bert.embed(model, batch)
    hook = SpattenAttention(model.spec, cfg)
    out = bert.forward(model, batch, hook)
    # both poolings of the same forward: the configured one is the result
    pooled = {way: out.pooled(carry=way == "carry") for way in ("drop", "carry")}
    spatten = pooled[cfg.model.pooling_pruned]
    cosine = np.sum(dense * spatten, axis=1)
    agreement = np.mean(nearest_neighbours(dense) == nearest_neighbours(spatten))
    per_layer = np.mean([[r.tokens_in for r in result.layers] for result in hook.results], axis=0)
    read, dense_read = (sum(n) for n in zip(*(r.kv_entries for r in hook.results), strict=True))
    return EncoderFidelity(
        model=model.name,
        sentences=len(sentences),
        tokens=int(batch.mask.sum()),
        mean_cosine=float(cosine.mean()),
        min_cosine=float(cosine.min()),
        nn_agreement=float(agreement),
        dram_bytes=hook.dram_bytes,
        dense_dram_bytes=hook.dense_dram_bytes,
        tokens_per_layer=[round(float(t), 3) for t in per_layer],
        kv_read_fraction=read / dense_read,
        pooling_pruned=cfg.model.pooling_pruned,
        mean_cosine_by_pooling={
            way: float(np.sum(dense * emb, axis=1).mean()) for way, emb in pooled.items()
        },
    )


@dataclass(frozen=True)
class DecoderFidelity:
    model: str
    prompt_tokens: int
    decode_steps: int
    ppl_dense: float
    ppl_spatten: float
    top1_agreement: float
    dram_bytes: int
    dense_dram_bytes: int
    requant_fraction: float  # mean over layers of rows recomputed with the K LSBs
    kv_read_fraction: float  # KV entries the decode steps read over what dense decoding reads
    protocol: str = "decode"

    @property
    def dram_reduction(self) -> float:
        return self.dense_dram_bytes / max(self.dram_bytes, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "protocol": self.protocol,
            "prompt_tokens": self.prompt_tokens,
            "decode_steps": self.decode_steps,
            "ppl_dense": self.ppl_dense,
            "ppl_spatten": self.ppl_spatten,
            "ppl_change": self.ppl_spatten / self.ppl_dense - 1.0,
            "top1_agreement": self.top1_agreement,
            "dram_bytes": self.dram_bytes,
            "dense_dram_bytes": self.dense_dram_bytes,
            "dram_reduction": round(self.dram_reduction, 6),
            "requant_fraction": self.requant_fraction,
            "kv_read_fraction": round(self.kv_read_fraction, 6),
        }


@dataclass(frozen=True)
class DenseDecoding:
    """The dense float32 model on the scored positions (shared by every config compared)."""

    nll: np.ndarray
    top1: np.ndarray


def decoder_ids(
    model,
    source: str | None,
    tokens: int,
    prompt: int,
    name: str | None = None,
    tokens_name: str = "--tokens",
) -> np.ndarray:
    """The first `tokens` token ids of `source` (default: the default text; `name` in
    messages) that a decoder is evaluated on, `prompt` of them run dense before the scored
    ones; `tokens` (from the flag or key `tokens_name`) is at most the model's context."""
    from spatten_hls.compiler.realmodels import text

    if tokens > model.spec.max_positions:
        raise CompilerError(
            f"{tokens_name} {tokens} exceeds {model.spec.name}'s context of "
            f"{model.spec.max_positions} tokens"
        )

    ids = text.leading_ids(model.encode, text.default_text() if source is None else source, tokens)
    if len(ids) < prompt + 2:
        raise CompilerError(
            f"{name or 'the default text'}: the text holds only {len(ids)} tokens; "
            f"need > {prompt + 1}"
        )
    return ids


def dense_decoding(model, ids: np.ndarray, prompt: int) -> DenseDecoding:
    from spatten_hls.compiler.realmodels import llama

    ids = np.asarray(ids, dtype=np.int64)
    logits = llama.forward(model, ids)[prompt:-1]
    return DenseDecoding(llama.token_nll(logits, ids[prompt + 1 :]), logits.argmax(axis=1))


def evaluate_decoder(
    model,
    cfg: Config,
    ids: np.ndarray,
    prompt: int,
    protocol: str = "decode",
    dense: DenseDecoding | None = None,
    progress: bool | None = False,
) -> DecoderFidelity:
    """Perplexity and top-1 agreement of token-by-token SpAtten decoding against the dense
    model, on the same text (teacher forcing) and the same predicted positions."""
    from spatten_hls.compiler.realmodels.decode import decode_spatten

    ids = np.asarray(ids, dtype=np.int64)
    run = decode_spatten(model, ids, prompt, cfg, protocol, progress)
    dense = dense or dense_decoding(model, ids, prompt)
    return DecoderFidelity(
        model=model.spec.name,
        prompt_tokens=prompt,
        decode_steps=len(ids) - prompt - 1,
        ppl_dense=float(np.exp(dense.nll.mean())),
        ppl_spatten=float(np.exp(run.nll.mean())),
        top1_agreement=float(np.mean(run.top1 == dense.top1)),
        dram_bytes=run.result.dram_bytes["total"],
        dense_dram_bytes=run.result.dense_dram_bytes,
        requant_fraction=float(np.mean([r.requant_fraction for r in run.result.layers])),
        kv_read_fraction=run.result.kv_read_fraction,
        protocol=protocol,
    )
