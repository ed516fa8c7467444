"""The model description every front-end produces: the attention shape of a transformer."""

from __future__ import annotations

import re
from dataclasses import dataclass

from spatten_hls.compiler import limits
from spatten_hls.compiler.errors import FrontendError
from spatten_hls.compiler.ir.graph import FAMILIES, MODEL_NAME

# Upper limit of each shape field (compiler/limits.py): a declared size is checked before the
# IR or any buffer is built from it.
FIELD_LIMITS = {
    "num_layers": limits.MAX_LAYERS,
    "num_heads": limits.MAX_HEADS,
    "num_kv_heads": limits.MAX_HEADS,
    "head_dim": limits.MAX_HEAD_DIM,
    "hidden_size": limits.MAX_HIDDEN,
    "max_positions": limits.MAX_POSITIONS,
}


@dataclass(frozen=True)
class ModelSpec:
    """Attention-relevant shape of one transformer.

    `num_kv_heads < num_heads` is grouped-query attention: query head `h` reads KV head
    `h // (num_heads // num_kv_heads)`. Decoders (`causal=True`) mask future keys.
    """

    name: str
    family: str
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    max_positions: int
    causal: bool
    source: str  # where the description came from: "preset:bert-base", a file path, ...

    def __post_init__(self) -> None:
        where = self.source
        if not isinstance(self.name, str) or not MODEL_NAME.fullmatch(self.name):
            raise FrontendError(f"{where}: model name {self.name!r} is not a plain identifier")
        if self.family not in FAMILIES:
            raise FrontendError(f"{where}: unsupported model family '{self.family}'")
        for field, limit in FIELD_LIMITS.items():
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise FrontendError(f"{where}: {field} must be a positive integer, got {value!r}")
            if value > limit:
                raise FrontendError(f"{where}: {field} = {value} exceeds the limit of {limit}")
        if self.num_layers * self.num_heads > limits.MAX_MODEL_HEADS:
            raise FrontendError(
                f"{where}: {self.num_layers} layers x {self.num_heads} heads = "
                f"{self.num_layers * self.num_heads} attention heads exceed the limit of "
                f"{limits.MAX_MODEL_HEADS}"
            )
        if self.num_heads % self.num_kv_heads:
            raise FrontendError(
                f"{where}: num_heads={self.num_heads} is not a multiple of "
                f"num_kv_heads={self.num_kv_heads}"
            )

    @property
    def group_size(self) -> int:
        """Query heads sharing one KV head."""
        return self.num_heads // self.num_kv_heads

    def kv_head_of(self, head: int) -> int:
        return head // self.group_size


def display_name(raw: str) -> str:
    """A declared name as a plain identifier: "SmolLM2 135M" -> "SmolLM2-135M"; any run of
    characters outside letters, digits and `._+-` becomes one "-" (at most 64 characters)."""
    name = re.sub(r"[^A-Za-z0-9._+-]+", "-", raw).lstrip("._+-")[:64].rstrip("-")
    return name or "model"
