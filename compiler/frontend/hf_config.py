"""Read the attention shape of a model from a Hugging Face `config.json`.

Only the keys that fix the attention shape are read (layers, heads, KV heads, head size, hidden
size, positions); everything else in the file is ignored. Each family spells these keys its own
way (GPT-2's `n_layer`, DistilBERT's `n_heads`, ...), and `transformers` also accepts the generic
names through its attribute maps, so each field lists its accepted spellings in order.
Every error is one line that names the file and the offending key or value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spatten_hls.compiler import limits
from spatten_hls.compiler.errors import FrontendError, brief
from spatten_hls.compiler.frontend.model import ModelSpec, display_name
from spatten_hls.compiler.input_files import parse_json, read_text


@dataclass(frozen=True)
class _Keys:
    """Accepted spellings of each shape field for one `model_type`, first match wins."""

    family: str
    layers: tuple[str, ...]
    heads: tuple[str, ...]
    hidden: tuple[str, ...]
    positions: tuple[str, ...]
    kv_heads: tuple[str, ...] = ()  # absent: one KV head per query head
    head_dim: tuple[str, ...] = ()  # absent: hidden / heads


_BERT = _Keys(
    "bert",
    ("num_hidden_layers",),
    ("num_attention_heads",),
    ("hidden_size",),
    ("max_position_embeddings",),
)
_DISTILBERT = _Keys(
    "bert",
    ("n_layers", "num_hidden_layers"),
    ("n_heads", "num_attention_heads"),
    ("dim", "hidden_size"),
    ("max_position_embeddings",),
)
_GPT2 = _Keys(
    "gpt2",
    ("n_layer", "num_hidden_layers"),
    ("n_head", "num_attention_heads"),
    ("n_embd", "hidden_size"),
    ("n_positions", "max_position_embeddings", "n_ctx"),
)
_LLAMA = _Keys(
    "llama",
    ("num_hidden_layers",),
    ("num_attention_heads",),
    ("hidden_size",),
    ("max_position_embeddings",),
    kv_heads=("num_key_value_heads",),
    head_dim=("head_dim",),
)

MODEL_TYPES: dict[str, _Keys] = {
    "bert": _BERT,
    "roberta": _BERT,
    "distilbert": _DISTILBERT,
    "gpt2": _GPT2,
    "llama": _LLAMA,  # SmolLM/SmolLM2 checkpoints declare model_type "llama"
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
}


def _json_brief(value: Any) -> str:
    """A JSON value as the file spells it (true, "12"), cut short for an error line."""
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):
        return brief(value)
    return text if len(text) <= 80 else text[:75] + " ..."


def _where(source: str, key: str) -> str:
    return f"{source}: key '{key}'"


def _model_type(cfg: dict[str, Any], source: str) -> str:
    """`model_type`, or else the first entry of `architectures` (`LlamaForCausalLM` -> llama)."""
    supported = ", ".join(MODEL_TYPES)
    if "model_type" in cfg:
        model_type = cfg["model_type"]
        if not isinstance(model_type, str):
            raise FrontendError(
                f"{_where(source, 'model_type')} must be a string, got {brief(model_type)}"
            )
        if model_type not in MODEL_TYPES:
            raise FrontendError(
                f"{source}: unsupported model_type '{model_type}' (supported: {supported})"
            )
        return model_type
    archs = cfg.get("architectures")
    if not archs:
        raise FrontendError(f"{source}: missing required key 'model_type' (or 'architectures')")
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise FrontendError(
            f"{_where(source, 'architectures')} must be a list of strings, got {brief(archs)}"
        )
    arch = archs[0]
    # Class names are <Type>For<Task>, <Type>Model or <Type>LMHeadModel.
    base = arch.split("For", 1)[0].removesuffix("LMHeadModel").removesuffix("Model").lower()
    if base not in MODEL_TYPES:
        raise FrontendError(
            f"{source}: unsupported architecture '{arch}' in 'architectures' "
            f"(supported model types: {supported})"
        )
    return base


def _int_field(
    cfg: dict[str, Any], keys: tuple[str, ...], source: str, limit: int, default: int | None = None
) -> int:
    """The first of `keys` present (JSON null counts as absent), as a positive int.

    Booleans are rejected although Python treats them as ints: `"n_head": true` is a typo,
    not a head count.
    """
    for key in keys:
        value = cfg.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise FrontendError(
                f"{_where(source, key)} must be an integer, got "
                f"{_json_brief(value)} ({type(value).__name__})"
            )
        if value < 1:
            raise FrontendError(f"{_where(source, key)} must be positive, got {value}")
        if value > limit:
            raise FrontendError(f"{_where(source, key)} = {value} exceeds the limit of {limit}")
        return value
    if default is not None:
        return default
    alternatives = " (or " + ", ".join(f"'{k}'" for k in keys[1:]) + ")" if keys[1:] else ""
    raise FrontendError(f"{source}: missing required key '{keys[0]}'{alternatives}")


def _max_positions(cfg: dict[str, Any], keys: _Keys, model_type: str, source: str) -> int:
    """Longest usable sequence.

    RoBERTa numbers positions from `pad_token_id + 1`, so its table holds that many unusable
    rows (514 entries, 512 usable).
    """
    positions = _int_field(cfg, keys.positions, source, limits.MAX_POSITIONS)
    if model_type != "roberta":
        return positions
    pad = cfg.get("pad_token_id", 1)
    offset = pad + 1 if isinstance(pad, int) and not isinstance(pad, bool) and pad >= 0 else 2
    if positions <= offset:
        raise FrontendError(
            f"{_where(source, keys.positions[0])} = {positions} leaves no "
            f"usable positions after RoBERTa's offset of {offset}"
        )
    return positions - offset


def spec_from_hf_config(cfg: dict[str, Any], source: str, name: str | None = None) -> ModelSpec:
    """Build a `ModelSpec` from a parsed `config.json`; `source` names the file in errors.

    `name` defaults to the model directory's name (the parent of `config.json`), else the
    file stem of `source`.
    """
    if not isinstance(cfg, dict):
        raise FrontendError(
            f"{source}: expected a JSON object at top level, got {type(cfg).__name__}"
        )
    model_type = _model_type(cfg, source)
    keys = MODEL_TYPES[model_type]
    layers = _int_field(cfg, keys.layers, source, limits.MAX_LAYERS)
    heads = _int_field(cfg, keys.heads, source, limits.MAX_HEADS)
    hidden = _int_field(cfg, keys.hidden, source, limits.MAX_HIDDEN)
    kv_heads = _int_field(cfg, keys.kv_heads, source, limits.MAX_HEADS, default=heads)
    head_dim = (
        _int_field(cfg, keys.head_dim, source, limits.MAX_HEAD_DIM, default=0)
        if keys.head_dim
        else 0
    )
    if not head_dim:
        if hidden % heads:
            raise FrontendError(
                f"{source}: '{keys.hidden[0]}' = {hidden} is not divisible by "
                f"'{keys.heads[0]}' = {heads} (and no 'head_dim' is given)"
            )
        head_dim = hidden // heads
    if heads % kv_heads:
        raise FrontendError(
            f"{source}: '{keys.heads[0]}' = {heads} is not a multiple of "
            f"'{keys.kv_heads[0]}' = {kv_heads}"
        )
    return ModelSpec(
        name=display_name(name or _default_name(Path(source))),
        family=keys.family,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        max_positions=_max_positions(cfg, keys, model_type, source),
        causal=keys.family != "bert",
        source=source,
    )


def _default_name(path: Path) -> str:
    """`models/SmolLM2-135M/config.json` -> `SmolLM2-135M`; `tiny-gpt2.json` -> `tiny-gpt2`."""
    if path.name == "config.json":
        parent = path.resolve().parent.name
        if parent:
            return parent
    return path.stem


def read_hf_config(path: Path) -> ModelSpec:
    """Read and validate a Hugging Face `config.json` (or any JSON file in that format)."""
    path = Path(path)
    text = read_text(path, "model config", FrontendError)
    return spec_from_hf_config(parse_json(text, str(path), FrontendError), str(path))
