"""Every preset carries the published attention shape of its checkpoint."""

import pytest

from spatten_hls.compiler.frontend import PRESETS, ModelSpec, load_model, preset_names

# name: (family, layers, heads, kv_heads, head_dim, hidden, max_positions, causal)
EXPECTED = {
    "bert-base": ("bert", 12, 12, 12, 64, 768, 512, False),
    "bert-large": ("bert", 24, 16, 16, 64, 1024, 512, False),
    "gpt2-small": ("gpt2", 12, 12, 12, 64, 768, 1024, True),
    "gpt2-medium": ("gpt2", 24, 16, 16, 64, 1024, 1024, True),
    "minilm-l6": ("bert", 6, 12, 12, 32, 384, 512, False),
    "smollm2-135m": ("llama", 30, 9, 3, 64, 576, 8192, True),
}


def test_preset_names_are_the_documented_six_in_order():
    assert preset_names() == list(EXPECTED)
    assert set(PRESETS) == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_preset_shape(name):
    spec = PRESETS[name]
    family, layers, heads, kv_heads, head_dim, hidden, positions, causal = EXPECTED[name]
    assert spec == ModelSpec(
        name=name,
        family=family,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        max_positions=positions,
        causal=causal,
        source=f"preset:{name}",
    )


@pytest.mark.parametrize("name", list(EXPECTED))
def test_preset_heads_tile_the_hidden_state(name):
    spec = PRESETS[name]
    assert spec.num_heads * spec.head_dim == spec.hidden_size


def test_smollm2_groups_three_query_heads_per_kv_head():
    spec = PRESETS["smollm2-135m"]
    assert spec.group_size == 3
    assert [spec.kv_head_of(h) for h in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_load_model_returns_the_preset(name):
    assert load_model(name) is PRESETS[name]
