"""Cascade token pruning in the generation stage (decode steps sharing one KV cache).

How the tests observe it. A SimResult only reports the state at the end of a run (the kept
tokens per layer after the last step), so the per-step history is taken in two ways:

* Instrumentation (most tests): `simulate` resolves every op's handler through
  `compiler.sim.interpreter.HANDLERS` when it compiles its programs, so wrapping the
  `token_importance` and `token_select` entries (pytest's monkeypatch, undone after the
  test) records, for every frame (step t, layer l), the key positions the frame saw and the
  importance accumulator before and after it, and for every selection which tokens it
  dropped. The wrappers call the real handlers unchanged, so the run is the same run.
* Runs of increasing length (the last test): `simulate` with gen_tokens = 1, 2, ..., G on
  prefixes of the same inputs. That is a sound picture of "the first g steps" only if nothing
  else changes with G: keep counts are floor(end * keep_l) of the context so far (they do not
  depend on G), but quantization scales are taken over every position given. The test
  therefore pins every (layer, head) scale with one planted element at position 0; it then
  checks the public results against the instrumented history.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.frontend import ModelSpec
from spatten_hls.compiler.frontend.builder import build_attention_graph, check_against_model
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops_spatten import TokenImportance, TokenSelect
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline
from spatten_hls.compiler.sim import interpreter, simulate
from spatten_hls.compiler.sim.inputs import random_inputs

# GPT-2-Small's trace schedule (SPATTEN.md 1.2: 921/716/204/102 of 1024) on 128 positions
GPT2_KEEP = [0.9, 0.7] + [0.2] * 4 + [0.1] * 6
GPT2_SEQ, GPT2_GEN = 100, 28


def build(
    *,
    layers: int,
    heads: int,
    seq: int,
    gen: int,
    keep: list[float],
    kv_heads: int | None = None,
    keep_first: int = 0,
    keep_recent: int = 0,
    d: int = 16,
) -> AttnGraph:
    spec = ModelSpec(
        name="gen-gpt",
        family="gpt2",
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads or heads,
        head_dim=d,
        hidden_size=heads * d,
        max_positions=1024,
        causal=True,
        source="test",
    )
    cfg = config_from_dict(
        {
            "model": {"seq_len": seq, "stage": "generation", "gen_tokens": gen},
            "token_pruning": {
                "enabled": True,
                "keep_per_layer": keep,
                "keep_first": keep_first,
                "keep_recent": keep_recent,
            },
        }
    )
    check_against_model(cfg, spec)
    return run_pipeline(build_attention_graph(spec, cfg), cfg, DEFAULT_PIPELINE)


def floor_counts(total: int, fractions: list[float]) -> list[int]:
    return [max(1, math.floor(total * Fraction(f).limit_denominator(10**6))) for f in fractions]


@dataclass
class Frame:
    step: int  # the step's own token position
    layer: int
    keys: np.ndarray  # key positions the frame saw
    before: np.ndarray  # token importance entering the frame
    after: np.ndarray  # ... after the frame's token_importance
    dropped: np.ndarray | None = None  # tokens its token_select dropped (None: no select)
    at_select: np.ndarray | None = None  # importance the select ranked


def record_frames(monkeypatch) -> list[Frame]:
    frames: list[Frame] = []
    importance = interpreter.HANDLERS[TokenImportance]
    select = interpreter.HANDLERS[TokenSelect]

    def spy_importance(f, op, args, ins, out):
        before = f.state.token_importance.copy()
        result = importance(f, op, args, ins, out)
        frames.append(
            Frame(f.step_query, f.layer, f.k_rows.copy(), before, f.state.token_importance.copy())
        )
        return result

    def spy_select(f, op, args, ins, out):
        frame = frames[-1]
        assert (frame.step, frame.layer) == (f.step_query, f.layer)
        was = f.state.token_dropped_at.copy()
        frame.at_select = f.state.token_importance.copy()
        result = select(f, op, args, ins, out)
        changed = np.flatnonzero(f.state.token_dropped_at != was)
        assert np.all(f.state.token_dropped_at[changed] == f.layer)
        frame.dropped = changed
        return result

    monkeypatch.setitem(interpreter.HANDLERS, TokenImportance, spy_importance)
    monkeypatch.setitem(interpreter.HANDLERS, TokenSelect, spy_select)
    return frames


@pytest.fixture(scope="module")
def gpt2_like() -> AttnGraph:
    return build(layers=12, heads=2, seq=GPT2_SEQ, gen=GPT2_GEN, keep=GPT2_KEEP)


@pytest.fixture
def gpt2_run(gpt2_like, monkeypatch):
    frames = record_frames(monkeypatch)
    result = simulate(gpt2_like, seed=0, reference=False)
    return result, frames


def top_k(candidates: list[int], score: np.ndarray, k: int) -> set[int]:
    """The k candidates of highest score, ties to the lower position (a sorted reference)."""
    return set(sorted(candidates, key=lambda t: (-score[t], t))[:k])


def drop_events(frames: list[Frame]) -> list[tuple[int, int, int]]:
    return [(f.step, f.layer, int(t)) for f in frames if f.dropped is not None for t in f.dropped]


def test_frames_cover_every_step_and_layer(gpt2_run) -> None:
    _, frames = gpt2_run
    expected = [(GPT2_SEQ + t, layer) for t in range(GPT2_GEN) for layer in range(12)]
    assert [(f.step, f.layer) for f in frames] == expected
    assert drop_events(frames), "the schedule pruned nothing"


def test_pruned_token_visibility_across_layers_and_steps(gpt2_run) -> None:
    """A token dropped at (step t, layer l) is gone from layers > l of step t and from
    layers >= l of every later step; layers < l of later steps still see it."""
    result, frames = gpt2_run
    events = drop_events(frames)
    for f in frames:
        hidden = {
            tok
            for step, layer, tok in events
            if (step < f.step and layer <= f.layer) or (step == f.step and layer < f.layer)
        }
        expected = [j for j in range(f.step + 1) if j not in hidden]
        assert list(f.keys) == expected, (f.step, f.layer)
    # the rule is exercised in all three directions
    later_lower = [
        (s, lay, tok)
        for s, lay, tok in events
        if any(g.step > s and g.layer < lay and tok in g.keys for g in frames)
    ]
    assert later_lower, "no token dropped at layer l was seen again by a lower layer"
    for step, layer, tok in events:
        assert all(
            tok not in g.keys
            for g in frames
            if (g.step == step and g.layer > layer) or (g.step > step and g.layer >= layer)
        )
    # the final records say the same: kept after layer l = never dropped at a layer <= l
    for layer, record in enumerate(result.layers):
        gone = {tok for _, lay, tok in events if lay <= layer}
        assert record.kept_tokens == [j for j in range(GPT2_SEQ + GPT2_GEN) if j not in gone]


def test_step_token_is_never_pruned_in_its_own_step(gpt2_run) -> None:
    _, frames = gpt2_run
    for f in frames:
        assert f.keys[-1] == f.step  # every layer of the step sees its own token
        if f.dropped is not None:
            assert f.step not in f.dropped
    # ... but it is an ordinary token from the next step on: some were pruned later
    later = [(step, tok) for step, _, tok in drop_events(frames) if tok >= GPT2_SEQ]
    assert later and all(tok < step for step, tok in later)


def test_per_layer_key_counts_follow_the_current_context(gpt2_run) -> None:
    """Budgets are fractions of the current context: at the step whose sequence holds `end`
    tokens, layer l keeps floor(end * keep_l) of the keys it sees (all of them when it sees
    fewer), so the first steps prune too and the kept counts grow with the context. After the
    last step the counts are SpAtten's GPT-2 trace shape (921/716/204/102 of 1024)."""
    result, frames = gpt2_run
    for f in frames:
        k = floor_counts(f.step + 1, GPT2_KEEP)[f.layer]
        kept = len(f.keys) - (0 if f.dropped is None else len(f.dropped))
        assert kept == min(len(f.keys), k), (f.step, f.layer)
    first = [f for f in frames if f.step == GPT2_SEQ]  # the first step prunes already
    assert [len(f.dropped) for f in first[:3]] == [101 - 90, 90 - 70, 70 - 20]
    context = GPT2_SEQ + GPT2_GEN
    counts = floor_counts(context, GPT2_KEEP)
    assert counts == [115, 89, 25, 25, 25, 25, 12, 12, 12, 12, 12, 12]
    assert [len(r.kept_tokens) for r in result.layers] == counts
    assert [round(counts[i] / context, 1) for i in (0, 1, 2, 6)] == [0.9, 0.7, 0.2, 0.1]


def test_importance_accumulates_across_layers_and_steps(gpt2_run) -> None:
    _, frames = gpt2_run
    assert not frames[0].before.any()
    for prev, cur in itertools.pairwise(frames):
        # no reset or rescale between layers or between steps: one running sum
        assert np.array_equal(cur.before, prev.after), (cur.step, cur.layer)
    for f in frames:
        added = f.after - f.before
        assert added.min() >= 0
        outside = np.ones(len(added), dtype=bool)
        outside[f.keys] = False
        assert not added[outside].any()
        # one query per head and step: each head adds its probability row (~1.0 = 65536)
        assert abs(int(added.sum()) - 2 * 65536) < 2 * 65536 * 0.01
    # every selection is the top-k of the *accumulated* importance (ties to lower index),
    # which in this run differs from what the current step's importance alone would pick
    differs = 0
    for f in frames:
        if f.dropped is None or not len(f.dropped):
            continue
        free = [int(t) for t in f.keys if t != f.step]  # the step's own token is protected
        n = floor_counts(f.step + 1, GPT2_KEEP)[f.layer] - 1
        survivors = set(f.keys) - set(f.dropped) - {f.step}
        assert survivors == top_k(free, f.at_select, n), (f.step, f.layer)
        this_step = f.after - next(g.before for g in frames if g.step == f.step and g.layer == 0)
        differs += survivors != top_k(free, this_step, n)
    assert differs > 0


@pytest.mark.parametrize("keep_first,keep_recent", [(2, 0), (0, 3), (1, 2)])
def test_protected_positions_are_never_pruned(
    monkeypatch, keep_first: int, keep_recent: int
) -> None:
    g = build(
        layers=4,
        heads=2,
        seq=20,
        gen=6,
        keep=[0.8, 0.5, 0.3, 0.2],
        keep_first=keep_first,
        keep_recent=keep_recent,
    )
    frames = record_frames(monkeypatch)
    result = simulate(g, seed=1, reference=False)
    for f in frames:
        if f.dropped is not None:
            dropped = set(f.dropped.tolist())
            assert not dropped & set(range(keep_first))
            assert not dropped & set(range(f.step + 1 - keep_recent, f.step + 1))
    assert set(range(keep_first)) <= set(result.layers[-1].kept_tokens)
    # the last layer keeps at most floor(26 * 0.2) = 5 (fewer when the cascade starved it)
    assert 0 < len(result.layers[-1].kept_tokens) <= 5


def test_gqa_generation_prunes_the_shared_cache(monkeypatch) -> None:
    g = build(layers=3, heads=4, kv_heads=2, seq=16, gen=5, keep=[0.75, 0.5, 0.25])
    frames = record_frames(monkeypatch)
    result = simulate(g, seed=2)
    assert [len(r.kept_tokens) for r in result.layers] == [15, 10, 5]
    for f in frames:
        added = f.after - f.before
        assert abs(int(added.sum()) - 4 * 65536) < 4 * 65536 * 0.01  # all 4 query heads
    assert result.rel_err_vs_float < 1e-2


# -- runs of increasing length (public results only) ----------------------------------------


def pinned_prefix(inputs: dict[str, np.ndarray], length: int) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(a[:, :length]) for k, a in inputs.items()}


def test_longer_runs_against_the_step_history(monkeypatch) -> None:
    seq, steps, layers = 40, 5, 4
    fractions = [1.0, 10 / (seq + 1), 7 / (seq + 1), 4 / (seq + 1)]
    for gen in range(1, steps + 1):  # the same counts for every run length used here
        assert floor_counts(seq + gen, fractions)[1:] == [10, 7, 4]
    full = build(layers=layers, heads=2, seq=seq, gen=steps, keep=fractions)
    inputs = random_inputs(full.info, 5)
    for a in inputs.values():  # position 0 holds every head's largest |x|: fixed scales
        a[:, 0, 0] = 1.01 * np.abs(a).max(axis=(1, 2))
    frames = record_frames(monkeypatch)
    simulate(full, inputs, reference=False)
    history = drop_events(frames)
    kept_by_run = []
    for gen in range(1, steps + 1):
        g = build(layers=layers, heads=2, seq=seq, gen=gen, keep=fractions)
        result = simulate(g, pinned_prefix(inputs, seq + gen), reference=False)
        kept = [r.kept_tokens for r in result.layers]
        # the run of `gen` steps ends where the long run stood after its step seq + gen - 1
        for layer in range(layers):
            gone = {tok for step, lay, tok in history if step < seq + gen and lay <= layer}
            assert kept[layer] == [j for j in range(seq + gen) if j not in gone], (gen, layer)
        kept_by_run.append(kept)
    for gen in range(1, steps):
        short, longer = kept_by_run[gen - 1], kept_by_run[gen]
        for layer in range(1, layers):
            new_token = seq + gen
            # nothing pruned earlier comes back; the new token enters; so (counts being
            # equal) the longer run prunes a token the shorter run had kept
            assert set(longer[layer]) <= set(short[layer]) | {new_token}
            assert new_token in longer[layer]
            assert set(short[layer]) - set(longer[layer])
