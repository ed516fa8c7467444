"""The model description every front-end produces: the attention shape of a transformer."""

from __future__ import annotations

from dataclasses import dataclass

from spatten_hls.compiler.errors import FrontendError

FAMILIES = ("bert", "gpt2", "llama")


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
        if self.family not in FAMILIES:
            raise FrontendError(f"{where}: unsupported model family '{self.family}'")
        for field in ("num_layers", "num_heads", "num_kv_heads", "head_dim", "hidden_size",
                      "max_positions"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise FrontendError(f"{where}: {field} must be a positive integer, got {value!r}")
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
