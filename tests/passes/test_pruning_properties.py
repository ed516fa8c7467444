"""Property tests of the SpAtten pipeline on random small models and random pruning configs.

For every drawn model/config the default pipeline's graph must verify and survive the JSON
round trip, and its simulation must prune in a cascade: per-layer token and head sets nested
and shrinking, tokens in original order, protected tokens kept, and the counts the schedule
asks for. With every keep at 1.0 the pruned pipeline must reproduce the dense outputs bit
for bit.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.frontend import ModelSpec
from spatten_hls.compiler.frontend.builder import build_attention_graph, check_against_model
from spatten_hls.compiler.ir import print_ir, verify
from spatten_hls.compiler.ir.serialize import from_json, to_json
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline
from spatten_hls.compiler.passes.schedule import keep_counts, keep_fractions
from spatten_hls.compiler.sim import simulate

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

fractions = st.floats(min_value=0.05, max_value=1.0)


@st.composite
def models(draw):
    heads = draw(st.integers(1, 4))
    kv_heads = draw(st.sampled_from([k for k in range(1, heads + 1) if heads % k == 0]))
    causal = draw(st.booleans())
    d = draw(st.sampled_from([4, 8]))
    spec = ModelSpec(
        name="prop",
        family="gpt2" if causal else "bert",
        num_layers=draw(st.integers(1, 4)),
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=d,
        hidden_size=heads * d,
        max_positions=64,
        causal=causal,
        source="test:prop",
    )
    model = {"seq_len": draw(st.integers(2, 24))}
    if causal and draw(st.booleans()):
        model.update(stage="generation", gen_tokens=draw(st.integers(1, 4)))
    return spec, model


def per_layer(draw, layers):
    return sorted(draw(st.lists(fractions, min_size=layers, max_size=layers)), reverse=True)


@st.composite
def pruning_cases(draw):
    spec, model = draw(models())
    n = spec.num_layers
    token = {
        "enabled": draw(st.booleans()),
        "keep": draw(fractions),
        "skip_first": draw(st.floats(0.0, 0.9)),
        "keep_first": draw(st.integers(0, 3)),
        "keep_recent": draw(st.integers(0, 3)),
    }
    if draw(st.booleans()):
        token["keep_per_layer"] = per_layer(draw, n)
    head = {
        "enabled": draw(st.booleans()),
        "keep": draw(fractions),
        "skip_first": draw(st.floats(0.0, 0.9)),
    }
    if draw(st.booleans()):
        head["keep_per_layer"] = per_layer(draw, n)
    sections = {
        "model": model,
        "token_pruning": token,
        "head_pruning": head,
        "value_pruning": {"enabled": draw(st.booleans()), "keep": draw(fractions)},
        "quantization": {
            "progressive": draw(st.booleans()),
            "requant_threshold": draw(st.sampled_from([0.05, 0.1, 0.5, 1.0])),
        },
    }
    cfg = config_from_dict(sections)
    check_against_model(cfg, spec)
    return spec, cfg, draw(st.integers(0, 2**16))


def compile_graph(spec, cfg):
    g = run_pipeline(build_attention_graph(spec, cfg), cfg, DEFAULT_PIPELINE)
    verify(g)
    return g


def protected_tokens(info, keep_first, keep_recent):
    """Tokens no selection may drop: the first/last ones (and in generation the newest)."""
    end = info.context
    out = set(range(min(keep_first, end))) | set(range(max(0, end - keep_recent), end))
    return out


def check_round_trip(g):
    text = to_json(g)
    h = from_json(text)
    verify(h)
    assert to_json(h) == text
    assert print_ir(h) == print_ir(g)


def check_tokens(result, info, cfg):
    t = cfg.token_pruning
    kept = [r.kept_tokens for r in result.layers]
    everything = list(range(info.context))
    protected = protected_tokens(info, t.keep_first, t.keep_recent)
    previous = everything
    for layer_kept in kept:
        assert layer_kept == sorted(set(layer_kept)), "kept tokens not in original order"
        assert set(layer_kept) <= set(previous), "a pruned token came back"
        assert len(layer_kept) <= len(previous)
        assert protected <= set(layer_kept), "a protected token was pruned"
        previous = layer_kept
    if not t.enabled:
        assert all(k == everything for k in kept)
        return
    counts = keep_counts(
        info.context, keep_fractions(info.num_layers, t.keep, t.skip_first, t.keep_per_layer)
    )
    if info.stage == "summarization":  # one step: the schedule gives the counts exactly
        n = info.context
        for layer, count in enumerate(counts):
            if count < info.context and n > count:
                n = max(count, len(protected))
            assert len(kept[layer]) == n, (layer, counts, kept)
    else:  # the newest token of the last step is protected as well
        bound = info.context
        limit = len(protected | {info.context - 1})
        for layer, count in enumerate(counts):
            if count < info.context:
                bound = min(bound, count)
            assert len(kept[layer]) <= max(bound, limit), (layer, counts, kept)


def check_heads(result, info, cfg):
    h = cfg.head_pruning
    kept = [r.heads_kept for r in result.layers]
    previous = list(range(info.num_heads))
    for layer_kept in kept:
        assert layer_kept == sorted(set(layer_kept))
        assert set(layer_kept) <= set(previous)
        previous = layer_kept
    if not h.enabled:
        assert all(k == list(range(info.num_heads)) for k in kept)
        return
    counts = keep_counts(
        info.num_heads, keep_fractions(info.num_layers, h.keep, h.skip_first, h.keep_per_layer)
    )
    assert [len(k) for k in kept] == counts


@SETTINGS
@given(case=pruning_cases())
def test_pipeline_verifies_round_trips_and_prunes_in_cascade(case):
    spec, cfg, seed = case
    g = compile_graph(spec, cfg)
    check_round_trip(g)
    result = simulate(g, seed=seed, reference=False)
    info = g.info
    assert len(result.layers) == info.num_layers
    check_tokens(result, info, cfg)
    check_heads(result, info, cfg)
    for layer in range(info.num_layers):
        out = result.out_codes[f"out{layer}"]
        dead = [h for h in range(info.num_heads) if h not in result.layers[layer].heads_kept]
        # heads pruned before this layer produce nothing in it
        earlier = result.layers[layer - 1].heads_kept if layer else list(range(info.num_heads))
        for head in dead:
            if head not in earlier:
                assert not out[head].any()


@st.composite
def keep_all_cases(draw):
    spec, model = draw(models())
    progressive = draw(st.booleans())
    dense = {"model": model, "quantization": {"progressive": progressive, "requant_threshold": 0.5}}
    full = {
        **dense,
        "token_pruning": {
            "enabled": True,
            "keep": 1.0,
            "skip_first": draw(st.floats(0, 0.9)),
            "keep_first": draw(st.integers(0, 3)),
            "keep_recent": draw(st.integers(0, 3)),
        },
        "head_pruning": {"enabled": True, "keep": 1.0, "skip_first": draw(st.floats(0, 0.9))},
        "value_pruning": {"enabled": True, "keep": 1.0},
    }
    return spec, config_from_dict(dense), config_from_dict(full), draw(st.integers(0, 2**16))


@SETTINGS
@given(case=keep_all_cases())
def test_keep_everything_is_bit_exact_with_dense(case):
    spec, dense_cfg, full_cfg, seed = case
    dense_g, full_g = compile_graph(spec, dense_cfg), compile_graph(spec, full_cfg)
    kinds = {full_g.op(n).KIND for n in full_g.nodes()}
    assert {"token_importance", "head_importance", "value_topk"} <= kinds
    assert not {"token_select", "head_select"} & kinds  # nothing to select at keep 1.0
    dense = simulate(dense_g, seed=seed, reference=False)
    full = simulate(full_g, seed=seed, reference=False)
    assert dense.out_codes.keys() == full.out_codes.keys()
    for key, codes in dense.out_codes.items():
        assert np.array_equal(codes, full.out_codes[key]), key
    for d, f in zip(dense.layers, full.layers, strict=True):
        assert d.kept_tokens == f.kept_tokens == list(range(dense_g.info.context))
        assert d.heads_kept == f.heads_kept == list(range(spec.num_heads))
    assert dense.dram_bytes == full.dram_bytes
