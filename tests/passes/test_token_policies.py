"""insert-token-pruning under each policy: the structure each one builds (docs/ir.md,
"Pruning semantics"), and the checks that refuse the combinations that do not apply."""

from __future__ import annotations

import dataclasses

import pytest

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.errors import ConfigError
from spatten_hls.compiler.frontend import ModelSpec
from spatten_hls.compiler.frontend.builder import build_attention_graph, check_against_model
from spatten_hls.compiler.ir.ops import LoadOp
from spatten_hls.compiler.ir.ops_spatten import TokenImportance, TokenSelect
from spatten_hls.compiler.ir.token_state import token_state
from spatten_hls.compiler.ir.verify import verify
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline


def spec(causal: bool, layers: int = 3) -> ModelSpec:
    return ModelSpec(
        name="policy",
        family="gpt2" if causal else "bert",
        num_layers=layers,
        num_heads=2,
        num_kv_heads=2,
        head_dim=4,
        hidden_size=8,
        max_positions=64,
        causal=causal,
        source="test:policy",
    )


def compiled(causal: bool, stage: str = "summarization", **tokens):
    model = {"seq_len": 8, "stage": stage} | ({"gen_tokens": 4} if stage == "generation" else {})
    cfg = config_from_dict(
        {"model": model, "token_pruning": {"enabled": True, "skip_first": 0.0, **tokens}}
    )
    check_against_model(cfg, spec(causal))
    g = run_pipeline(build_attention_graph(spec(causal), cfg), cfg, DEFAULT_PIPELINE)
    verify(g)
    return g


def ops(g, kind):
    return [g.op(n) for n in g.nodes() if isinstance(g.op(n), kind)]


def gated_loads(g) -> list[str]:
    return [n for n in g.nodes() if isinstance(g.op(n), LoadOp) and g.op(n).gates]


@pytest.mark.parametrize("stage", ["summarization", "generation"])
def test_cascade_chains_scores_and_gates_later_layers(stage: str) -> None:
    g = compiled(True, stage)
    assert [op.chained for op in ops(g, TokenImportance)] == [False, True, True]
    assert not any(op.own_layer or op.by_recency for op in ops(g, TokenSelect))
    assert gated_loads(g) and token_state(g).rows == 1
    assert g.plan.importance.token_state_rows == 1


@pytest.mark.parametrize("stage", ["summarization", "generation"])
@pytest.mark.parametrize("policy", ["per-layer", "current", "window"])
def test_a_decoders_policies_keep_a_cache_per_layer(stage: str, policy: str) -> None:
    g = compiled(True, stage, policy=policy)
    assert not any(op.chained for op in ops(g, TokenImportance))
    assert all(op.fresh == (policy == "current") for op in ops(g, TokenImportance))
    selects = ops(g, TokenSelect)
    assert selects and all(op.own_layer for op in selects)
    assert all(op.by_recency == (policy == "window") for op in selects)
    assert gated_loads(g) == []  # no layer's loads depend on another layer's selection
    imp = g.plan.importance
    assert (imp.token_state_rows, imp.tokens) == (3, 3 * g.info.context)
    assert (imp.token_scores_fresh, imp.token_by_recency) == (
        policy == "current",
        policy == "window",
    )


@pytest.mark.parametrize("stage", ["summarization", "generation"])
@pytest.mark.parametrize("policy", ["per-layer", "current", "window"])
def test_per_kv_head_selection_keeps_a_cache_per_layer_and_kv_head(stage: str, policy: str) -> None:
    g = compiled(True, stage, policy=policy, granularity="kv_head")
    assert all(op.per_kv_head for op in ops(g, TokenImportance) + ops(g, TokenSelect))
    assert all(op.own_layer for op in ops(g, TokenSelect)) and gated_loads(g) == []
    state = token_state(g)
    assert (state.rows, state.groups) == (3 * 2, 2)
    assert [state.row(layer, kv) for layer in range(3) for kv in range(2)] == list(range(6))
    imp = g.plan.importance
    assert (imp.token_state_rows, imp.token_state_groups, imp.tokens) == (6, 2, 6 * g.info.context)


def test_verify_refuses_per_kv_head_selection_without_per_kv_head_scores() -> None:
    g = compiled(True, "generation", policy="current", granularity="kv_head")
    node = next(n for n in g.nodes() if isinstance(g.op(n), TokenImportance))
    g.set_op(node, dataclasses.replace(g.op(node), per_kv_head=False), "test")
    with pytest.raises(Exception, match="per-KV-head selection needs per-KV-head scores"):
        verify(g)


@pytest.mark.parametrize("policy", ["current", "window"])
def test_an_encoders_policies_drop_tokens_from_later_layers(policy: str) -> None:
    g = compiled(False, policy=policy)
    assert not any(op.chained for op in ops(g, TokenImportance))
    assert not any(op.own_layer for op in ops(g, TokenSelect))
    assert gated_loads(g) and g.plan.importance.token_state_rows == 1


def test_uniform_schedule_prunes_every_layer_by_keep() -> None:
    ramp = compiled(True, keep=0.5)
    uniform = compiled(True, keep=0.5, schedule="uniform")
    assert [op.keep for op in ops(uniform, TokenSelect)] == [0.5, 0.5, 0.5]
    assert [op.keep for op in ops(ramp, TokenSelect)] == [0.75, 0.5, 0.25]


def test_verify_refuses_an_own_layer_selection_in_an_encoder() -> None:
    g = compiled(False, policy="current")
    node = next(n for n in g.nodes() if isinstance(g.op(n), TokenSelect))
    g.set_op(node, dataclasses.replace(g.op(node), own_layer=True), "test")
    with pytest.raises(Exception, match="needs a decoder"):
        verify(g)


@pytest.mark.parametrize(
    ("causal", "tokens", "fragment"),
    [
        (False, {"policy": "per-layer"}, "'token_pruning.policy' = \"per-layer\""),
        (True, {"policy": "h2o"}, "'token_pruning.policy' = 'h2o' is not one of"),
        (True, {"schedule": "cosine"}, "'token_pruning.schedule' = 'cosine' is not one of"),
        (True, {"granularity": "kv_head"}, '= "kv_head" needs a per-layer policy'),
        (False, {"granularity": "kv_head", "policy": "current"}, "KV head and needs a decoder"),
        (True, {"granularity": "head"}, "'token_pruning.granularity' = 'head' is not one of"),
    ],
)
def test_bad_policy_settings_name_the_key(causal: bool, tokens: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        compiled(causal, **tokens)
    assert fragment in str(info.value)


def test_pooling_pruned_takes_drop_or_carry() -> None:
    assert config_from_dict({"model": {"pooling_pruned": "carry"}}).model.pooling_pruned == "carry"
    with pytest.raises(ConfigError, match=r"'model\.pooling_pruned' = 'mean' is not one of"):
        config_from_dict({"model": {"pooling_pruned": "mean"}})
