"""Built-in model shapes, so the common models compile without any file on disk.

The numbers are the attention shapes of the published checkpoints (their Hugging Face
`config.json`); a preset's `source` is `preset:<name>`.
"""

from __future__ import annotations

from spatten_hls.compiler.frontend.model import ModelSpec


def _preset(
    name: str,
    family: str,
    *,
    layers: int,
    heads: int,
    head_dim: int,
    hidden: int,
    max_positions: int,
    kv_heads: int | None = None,
) -> ModelSpec:
    """One preset; decoders (gpt2, llama) are causal, BERT-style encoders are not."""
    return ModelSpec(
        name=name,
        family=family,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=heads if kv_heads is None else kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        max_positions=max_positions,
        causal=family != "bert",
        source=f"preset:{name}",
    )


_ALL = (
    _preset("bert-base", "bert", layers=12, heads=12, head_dim=64, hidden=768, max_positions=512),
    _preset("bert-large", "bert", layers=24, heads=16, head_dim=64, hidden=1024, max_positions=512),
    _preset("gpt2-small", "gpt2", layers=12, heads=12, head_dim=64, hidden=768, max_positions=1024),
    _preset(
        "gpt2-medium", "gpt2", layers=24, heads=16, head_dim=64, hidden=1024, max_positions=1024
    ),
    # all-MiniLM-L6-v2: 12 heads of 32 over a 384-wide hidden state.
    _preset("minilm-l6", "bert", layers=6, heads=12, head_dim=32, hidden=384, max_positions=512),
    # SmolLM2-135M: grouped-query attention, 3 query heads per KV head.
    _preset(
        "smollm2-135m",
        "llama",
        layers=30,
        heads=9,
        kv_heads=3,
        head_dim=64,
        hidden=576,
        max_positions=8192,
    ),
)

PRESETS: dict[str, ModelSpec] = {spec.name: spec for spec in _ALL}


def preset_names() -> list[str]:
    """Preset names in their documented order (used in error messages and `--help`)."""
    return list(PRESETS)
