"""Token pruning (every policy) and cascade head pruning against an independent float64
reference.

The reference below shares no code with the simulator: it runs plain float attention
(softmax(q k^T / sqrt(d), causal) v on the float inputs), accumulates token importance as the
column sums of the float probabilities (per policy: one cascade score, a score per layer, or
this invocation's only) and head importance as sum |E| in real units, and applies the same
keep schedule (floor(end * keep_l) of the `end` tokens so far) with a sorted top-k (ties to
the lower index), or the most recent tokens for the window policy, and the documented
visibility rules (docs/ir.md, "Pruning semantics"). The simulator
works on integer codes, so its importances are quantized versions of these; whenever the float
importances of the last kept and the first dropped candidate differ by more than 1 %
(checked here before comparing) both must choose the same tokens and heads.

Inputs are random but structured so that cuts are far from ties: every key carries a
token-specific bias along a shared direction (token importance is then ordered by the bias)
and every head's V has its own magnitude (head importance is ordered by it). The V scale of
every (layer, head) is pinned by one planted element; the simulator weighs |output codes| by
the head's V scale relative to the model's largest (compiler/sim/quantized.py), i.e. it
accumulates |E| in real units, as the last test checks with layers of different V scales.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pytest

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.frontend import ModelSpec
from spatten_hls.compiler.frontend.builder import build_attention_graph, check_against_model
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops_spatten import ValueTopK
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline
from spatten_hls.compiler.sim import interpreter, simulate
from spatten_hls.compiler.sim.inputs import random_inputs

LAYERS, HEADS, D, SEQ = 4, 4, 16, 32
TOKEN_KEEP = [1.0, 0.75, 0.5, 0.3]
HEAD_KEEP = [1.0, 0.75, 0.75, 0.5]
MIN_GAP = 0.01  # relative float-importance gap required at every cut


def build(
    *,
    causal: bool,
    stage: str = "summarization",
    seq: int = SEQ,
    gen: int = 4,
    kv_heads: int = HEADS,
    token_keep=TOKEN_KEEP,
    head_keep=HEAD_KEEP,
    value_keep: float | None = None,
    keep_first: int = 0,
    keep_recent: int = 0,
    policy: str = "cascade",
    granularity: str = "layer",
    decay_shift: int = 0,
    observation_window: int = 0,
) -> tuple[AttnGraph, object]:
    spec = ModelSpec(
        name="ref-gpt" if causal else "ref-bert",
        family="gpt2" if causal else "bert",
        num_layers=LAYERS,
        num_heads=HEADS,
        num_kv_heads=kv_heads,
        head_dim=D,
        hidden_size=HEADS * D,
        max_positions=512,
        causal=causal,
        source="test",
    )
    model: dict = {"seq_len": seq, "stage": stage}
    if stage == "generation":
        model["gen_tokens"] = gen
    raw: dict = {"model": model}
    if token_keep is not None:
        raw["token_pruning"] = {
            "enabled": True,
            "keep_per_layer": list(token_keep),
            "keep_first": keep_first,
            "keep_recent": keep_recent,
            "policy": policy,
            "granularity": granularity,
            "decay_shift": decay_shift,
            "observation_window": observation_window,
        }
    if head_keep is not None:
        raw["head_pruning"] = {"enabled": True, "keep_per_layer": list(head_keep)}
    if value_keep is not None:
        raw["value_pruning"] = {"enabled": True, "keep": value_keep}
    cfg = config_from_dict(raw)
    check_against_model(cfg, spec)
    return run_pipeline(build_attention_graph(spec, cfg), cfg, DEFAULT_PIPELINE), cfg


def structured_inputs(
    g: AttnGraph,
    seed: int,
    bias_step: float = 0.12,
    q_noise: float = 0.5,
    k_noise: float = 0.05,
    rank_per_kv_head: bool = False,
) -> dict[str, np.ndarray]:
    """random_inputs reshaped so that importance has large gaps (see the module docstring);
    `rank_per_kv_head`: each KV head ranks the tokens its own way."""
    info = g.info
    base = random_inputs(info, seed)
    rng = np.random.default_rng(seed + 1000)
    # token j's bias rank: a fixed permutation, so importance is not just position order
    ranks = 1 + (info.num_kv_heads - 1) * int(rank_per_kv_head)
    rank = np.stack([rng.permutation(info.context) for _ in range(ranks)]).astype(np.float64)
    magnitudes = np.array([1.0, 1.45, 2.1, 3.0, 4.4, 6.4, 9.3, 13.5])[: info.num_kv_heads]
    qb = 4.0  # every query's component along the shared direction u
    out = {}
    for layer in range(info.num_layers):
        u = rng.standard_normal(info.head_dim)
        u /= np.linalg.norm(u)
        q = base[f"q{layer}"].astype(np.float64) * q_noise + qb * u
        # score bias of key j: qb * kb_j / sqrt(d) = bias_step * rank_j
        kb = bias_step * rank * math.sqrt(info.head_dim) / qb
        k = base[f"k{layer}"].astype(np.float64) * k_noise + kb[:, :, None] * u
        v = np.clip(base[f"v{layer}"].astype(np.float64), -3.0, 3.0)
        scale = rng.permutation(magnitudes)  # the largest magnitude in every layer
        v *= scale[:, None, None]
        v[:, 0, 0] = 4.0 * scale  # pins each head's max |v| (and so its V scale)
        out[f"q{layer}"] = q.astype(np.float32)
        out[f"k{layer}"] = k.astype(np.float32)
        out[f"v{layer}"] = v.astype(np.float32)
    return out


# -- the independent float reference --------------------------------------------------------


def topk_lower_index(values: np.ndarray, k: int) -> np.ndarray:
    """Indices (into `values`) of the k largest, ties to the lower index."""
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    return np.array(sorted(order[:k]), dtype=np.int64)


def relative_gap(values: np.ndarray, k: int) -> float:
    """(k-th largest - (k+1)-th largest) / k-th largest: how far the cut is from a tie."""
    ordered = np.sort(values)[::-1]
    if k <= 0 or k >= len(ordered):
        return math.inf
    return float((ordered[k - 1] - ordered[k]) / ordered[k - 1])


@dataclass
class FloatCascade:
    """Cascade pruning on float64 attention, stepping exactly as documented."""

    inputs: dict
    layers: int
    heads: int
    kv_heads: int
    d: int
    causal: bool
    stage: str
    seq: int
    gen: int
    token_fractions: list[float] | None
    head_counts: list[int] | None
    value_keep: float | None = None
    keep_first: int = 0
    keep_recent: int = 0
    policy: str = "cascade"
    per_kv_head: bool = False  # each KV head of a layer scores and selects on its own
    decay_shift: int = 0  # per-layer scores: each invocation first keeps 1 - 2^-s of them
    observation_window: int = 0  # only queries at positions >= end - N score (0: all)
    gaps: list[float] = field(default_factory=list)
    value_rows: list = field(default_factory=list)  # (layer, head, query, keys, kept, gap)
    tokens_in: list[int] = field(default_factory=list)

    def run(self) -> FloatCascade:
        context = self.seq + (self.gen if self.stage == "generation" else 0)
        never = self.layers
        # one row of token state, or (a per-layer policy of a decoder) one per layer, or
        # per (layer, KV head)
        own_cache = self.policy != "cascade" and self.causal
        groups = self.kv_heads if self.per_kv_head else 1
        rows = self.layers * groups if own_cache else 1
        self.row = (lambda layer, g=0: layer * groups + g) if own_cache else (lambda *_: 0)
        self.groups = groups
        self.token_dropped = np.full((rows, context), never)
        self.head_dropped = np.full(self.heads, never)
        self.token_imp = np.zeros((rows, context))
        self.head_imp = np.zeros(self.heads)
        self.tokens_in = [0] * self.layers
        group = self.heads // self.kv_heads
        if self.stage == "summarization":
            steps = [((0, self.seq), self.seq, None)]
        else:
            steps = [((p, p + 1), p + 1, p) for p in range(self.seq, context)]
        for (q0, q1), end, own in steps:
            for layer in range(self.layers):
                alive = [h for h in range(self.heads) if self.head_dropped[h] > layer]
                self.tokens_in[layer] = 0
                for g in range(groups):
                    members = [h for h in alive if groups == 1 or h // group == g]
                    self._run_group(layer, g, members, q0, q1, end, own)
                self._select_heads(layer, alive)
        return self

    def _run_group(self, layer, g, heads, q0, q1, end, own) -> None:
        """The layer's heads `heads` over the tokens its state row (layer, KV head g) keeps."""
        group = self.heads // self.kv_heads
        row = self.row(layer, g)
        keys = np.array([j for j in range(end) if self.token_dropped[row, j] > layer])
        if self.policy == "current":
            self.token_imp[row] = 0.0
        elif self.decay_shift:
            self.token_imp[row] *= 1.0 - 2.0**-self.decay_shift
        queries = keys[(keys >= q0) & (keys < q1)]
        self.tokens_in[layer] = max(self.tokens_in[layer], len(keys))
        for h in heads:
            kv = h // group
            q = self.inputs[f"q{layer}"][h, queries].astype(np.float64)
            k = self.inputs[f"k{layer}"][kv, keys].astype(np.float64)
            v = self.inputs[f"v{layer}"][kv, keys].astype(np.float64)
            z = q @ k.T / math.sqrt(self.d)
            if self.causal and self.stage == "summarization":
                z = np.where(keys[None, :] <= queries[:, None], z, -np.inf)
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            observed = np.ones(len(queries), dtype=bool)  # the query rows that score
            if self.observation_window:
                observed = queries >= end - self.observation_window
            self.token_imp[row, keys] += p[observed].sum(axis=0)
            if self.value_keep is not None:
                p = self._value_prune(p, layer, h, queries, keys)
            self.head_imp[h] += np.abs(p @ v).sum()
        self._select_tokens(layer, keys, end, own, g)

    def _value_prune(self, p, layer, head, queries, keys):
        pruned = np.zeros_like(p)
        for i, row in enumerate(p):
            visible = (
                int(np.count_nonzero(keys <= queries[i]))
                if self.causal and self.stage == "summarization"
                else len(keys)
            )
            keep = max(1, math.floor(visible * self.value_keep))
            kept = topk_lower_index(row[:visible], keep)
            pruned[i, kept] = row[kept]
            self.value_rows.append(
                (
                    layer,
                    head,
                    int(queries[i]),
                    keys,
                    kept,
                    relative_gap(row[:visible], keep),
                    row[kept].min(),
                )
            )
        return pruned

    def _select_tokens(self, layer, keys, end, own, g=0) -> None:
        if self.token_fractions is None or self.token_fractions[layer] >= 1.0:
            return
        keep = floor_counts(end, [self.token_fractions[layer]])[0]
        if len(keys) <= keep:
            return
        row = self.row(layer, g)
        protected = (keys < self.keep_first) | (keys >= end - self.keep_recent)
        if own is not None:
            protected |= keys == own
        free = keys[~protected]
        n_free = max(keep - int(protected.sum()), 0)
        if self.policy == "window":  # the most recent, no scores
            chosen = free[len(free) - n_free :] if n_free else free[:0]
        else:
            values = self.token_imp[row, free]
            self.gaps.append(relative_gap(values, n_free))
            chosen = free[topk_lower_index(values, n_free)]
        survivors = set(chosen) | set(keys[protected])
        for j in keys:
            if j not in survivors:
                self.token_dropped[row, j] = layer

    def _select_heads(self, layer, alive) -> None:
        if self.head_counts is None or self.head_counts[layer] >= self.heads:
            return
        keep = self.head_counts[layer]
        if len(alive) <= keep:
            return
        alive = np.array(alive)
        values = self.head_imp[alive]
        self.gaps.append(relative_gap(values, keep))
        survivors = set(alive[topk_lower_index(values, keep)])
        for h in alive:
            if h not in survivors:
                self.head_dropped[h] = layer

    def kept_tokens(self, layer: int, g: int = 0) -> list[int]:
        return [int(j) for j in np.flatnonzero(self.token_dropped[self.row(layer, g)] > layer)]

    def kept_heads(self, layer: int) -> list[int]:
        return [int(h) for h in np.flatnonzero(self.head_dropped > layer)]


def floor_counts(total: int, fractions) -> list[int]:
    """floor(total * keep_l) on the decimal as written (0.7 * 30 is 21, not 20)."""
    return [max(1, math.floor(total * Fraction(repr(f)))) for f in fractions]


def reference_for(
    g: AttnGraph,
    inputs: dict,
    token_keep,
    head_keep,
    value_keep=None,
    keep_first: int = 0,
    keep_recent: int = 0,
    policy: str = "cascade",
    per_kv_head: bool = False,
    decay_shift: int = 0,
    observation_window: int = 0,
) -> FloatCascade:
    info = g.info
    heads = None if head_keep is None else floor_counts(info.num_heads, head_keep)
    return FloatCascade(
        inputs,
        info.num_layers,
        info.num_heads,
        info.num_kv_heads,
        info.head_dim,
        info.causal,
        info.stage,
        info.seq_len,
        info.gen_tokens,
        None if token_keep is None else list(token_keep),
        heads,
        value_keep,
        keep_first,
        keep_recent,
        policy,
        per_kv_head,
        decay_shift,
        observation_window,
    ).run()


def assert_same_selections(result, ref: FloatCascade) -> None:
    assert ref.gaps or ref.policy == "window", "the schedule made no cut"
    assert min(ref.gaps, default=math.inf) > MIN_GAP, (
        f"near-tie in the float reference: {sorted(ref.gaps)[:3]}"
    )
    for layer, record in enumerate(result.layers):
        assert record.kept_tokens == ref.kept_tokens(layer), layer
        assert record.heads_kept == ref.kept_heads(layer), layer
        assert record.tokens_in == ref.tokens_in[layer], layer


# -- summarization --------------------------------------------------------------------------


# seeds whose float importances have no near-tie at any cut (asserted, not assumed)
@pytest.mark.parametrize(
    "causal,seed",
    [(False, 0), (False, 1), (True, 1), (True, 2)],
    ids=["bert-like-0", "bert-like-1", "gpt-like-1", "gpt-like-2"],
)
def test_summarization_matches_float_reference(causal: bool, seed: int) -> None:
    g, _ = build(causal=causal)
    inputs = structured_inputs(g, seed)
    result = simulate(g, inputs)
    ref = reference_for(g, inputs, TOKEN_KEEP, HEAD_KEEP)
    assert_same_selections(result, ref)
    # the schedule really pruned: 32 -> 24 -> 16 -> 9 tokens, 4 -> 3 -> 3 -> 2 heads
    assert [len(r.kept_tokens) for r in result.layers] == [32, 24, 16, 9]
    assert [len(r.heads_kept) for r in result.layers] == [4, 3, 3, 2]
    assert [r.tokens_in for r in result.layers] == [32, 32, 24, 16]
    assert [r.heads_in for r in result.layers] == [4, 4, 3, 3]
    # the structure made importance differ from position order (not a trivial cut)
    assert result.layers[-1].kept_tokens != list(range(9))


def test_protected_tokens_match_float_reference() -> None:
    g, _ = build(causal=True, token_keep=TOKEN_KEEP, head_keep=None)
    g2, _ = build(causal=True, token_keep=TOKEN_KEEP, head_keep=None, keep_first=2, keep_recent=3)
    inputs = structured_inputs(g, 0)
    result = simulate(g2, inputs)
    ref = reference_for(g2, inputs, TOKEN_KEEP, None, keep_first=2, keep_recent=3)
    assert_same_selections(result, ref)
    last = result.layers[-1].kept_tokens
    assert {0, 1, 29, 30, 31} <= set(last) and len(last) == 9
    assert last != reference_for(g, inputs, TOKEN_KEEP, None).kept_tokens(LAYERS - 1)


# -- generation -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [3, 4])
def test_generation_matches_float_reference(seed: int) -> None:
    token_keep = [0.9, 0.7, 0.5, 0.3]
    g, _ = build(causal=True, stage="generation", seq=24, gen=6, token_keep=token_keep)
    inputs = structured_inputs(g, seed)
    result = simulate(g, inputs)
    ref = reference_for(g, inputs, token_keep, HEAD_KEEP)
    assert_same_selections(result, ref)
    assert [len(r.kept_tokens) for r in result.layers] == [27, 21, 15, 9]
    assert [len(r.heads_kept) for r in result.layers] == [4, 3, 3, 2]


# the per-layer policies: each layer's own KV cache in generation, its own scores (the last
# column: per-layer scores that decay, score -= score >> s before each step adds; the float
# reference multiplies by 1 - 2^-s)
POLICY_CASES = [
    ("per-layer", 3, 0, 0, 0),
    ("current", 5, 0, 0, 0),
    ("window", 3, 2, 0, 0),
    ("per-layer", 4, 1, 2, 0),
    ("current", 4, 2, 1, 0),
    ("per-layer", 10, 1, 0, 1),
    ("per-layer", 4, 1, 0, 2),
]


@pytest.mark.parametrize("policy,seed,keep_first,keep_recent,decay_shift", POLICY_CASES)
def test_generation_policies_match_float_reference(
    policy: str, seed: int, keep_first: int, keep_recent: int, decay_shift: int
) -> None:
    token_keep = [0.8, 0.6, 0.5, 0.4]
    g, _ = build(
        causal=True,
        stage="generation",
        seq=24,
        gen=6,
        token_keep=token_keep,
        head_keep=None,
        keep_first=keep_first,
        keep_recent=keep_recent,
        policy=policy,
        decay_shift=decay_shift,
    )
    inputs = structured_inputs(g, seed)
    result = simulate(g, inputs)
    ref = reference_for(
        g, inputs, token_keep, None, None, keep_first, keep_recent, policy, decay_shift=decay_shift
    )
    assert_same_selections(result, ref)
    # each layer's cache holds floor(30 * keep_l) after the last step
    assert [len(r.kept_tokens) for r in result.layers] == [24, 18, 15, 12]
    if policy == "window":
        assert result.layers[-1].kept_tokens == [0, 1, *range(20, 30)]


@pytest.mark.parametrize("policy", ["current", "window"])
def test_summarization_policies_match_float_reference(policy: str) -> None:
    g, _ = build(causal=False, head_keep=None, keep_first=1, policy=policy)
    inputs = structured_inputs(g, 0)
    result = simulate(g, inputs)
    ref = reference_for(g, inputs, TOKEN_KEEP, None, keep_first=1, policy=policy)
    assert_same_selections(result, ref)
    assert [len(r.kept_tokens) for r in result.layers] == [32, 24, 16, 9]


@pytest.mark.parametrize("policy,seed", [("current", 13), ("per-layer", 10)])
def test_per_kv_head_selection_matches_float_reference(policy: str, seed: int) -> None:
    """Each KV head of a layer keeps its own tokens (its query heads' scores only), while the
    head top-k still chooses among every head of the layer."""
    token_keep = [0.8, 0.6, 0.5, 0.4]
    head_keep = [1.0, 1.0, 0.75, 0.75]
    g, _ = build(
        causal=True,
        stage="generation",
        seq=24,
        gen=6,
        kv_heads=2,
        token_keep=token_keep,
        head_keep=head_keep,
        keep_first=1,
        policy=policy,
        granularity="kv_head",
    )
    inputs = structured_inputs(g, seed, rank_per_kv_head=True)
    result = simulate(g, inputs)
    ref = reference_for(g, inputs, token_keep, head_keep, None, 1, 0, policy, per_kv_head=True)
    assert min(ref.gaps) > MIN_GAP, f"near-tie in the float reference: {sorted(ref.gaps)[:3]}"
    state = result.pruning_state
    assert state.token_rows == LAYERS * 2
    for layer, record in enumerate(result.layers):
        sets = [state.visible_tokens(layer, g.info.context, kv).tolist() for kv in range(2)]
        assert sets == [ref.kept_tokens(layer, kv) for kv in range(2)], layer
        assert [len(s) for s in sets] == [[24, 18, 15, 12][layer]] * 2
        assert record.kept_tokens == sorted(set(sets[0]) | set(sets[1]))
        assert record.heads_kept == ref.kept_heads(layer), layer
    # the KV heads really chose apart, and a head was pruned
    assert any(
        state.visible_tokens(layer, g.info.context, 0).tolist()
        != state.visible_tokens(layer, g.info.context, 1).tolist()
        for layer in range(1, LAYERS)
    )
    assert len(result.layers[-1].heads_kept) == 3
    # every decode step reads each KV head's own keys: the first step the whole prompt and
    # its token, every later one what the previous step kept plus its own token (no KV head
    # loses all its query heads: 3 of 4 heads stay)
    read, dense = result.kv_entries
    assert dense == sum(2 * (end + 1) for end in range(24, 30)) * LAYERS
    kept = [floor_counts(end, token_keep) for end in range(25, 30)]
    per_layer = [25 + sum(k[layer] + 1 for k in kept) for layer in range(LAYERS)]
    assert read == 2 * sum(per_layer)


# a decoder's prompt (the prefill): each layer keeps its own cache, scored by every query or
# by the queries of the last positions only (SnapKV's observation window, TOVA's last query)
PREFILL_CASES = [
    ("current", "layer", 0, 1),
    ("current", "layer", 8, 1),
    ("per-layer", "layer", 1, 2),
    ("cascade", "layer", 8, 1),
    ("current", "kv_head", 8, 2),
]


@pytest.mark.parametrize("policy,granularity,window,seed", PREFILL_CASES)
def test_prefill_observation_window_matches_float_reference(
    policy: str, granularity: str, window: int, seed: int
) -> None:
    kv_heads = 2 if granularity == "kv_head" else HEADS
    g, _ = build(
        causal=True,
        kv_heads=kv_heads,
        head_keep=None,
        keep_first=1,
        policy=policy,
        granularity=granularity,
        observation_window=window,
    )
    inputs = structured_inputs(g, seed, rank_per_kv_head=granularity == "kv_head")
    result = simulate(g, inputs)
    ref = reference_for(
        g,
        inputs,
        TOKEN_KEEP,
        None,
        keep_first=1,
        policy=policy,
        per_kv_head=granularity == "kv_head",
        observation_window=window,
    )
    if granularity == "layer":
        assert_same_selections(result, ref)
    else:  # each KV head's own cache, read off the state rows
        assert min(ref.gaps) > MIN_GAP, f"near-tie in the float reference: {sorted(ref.gaps)}"
        state = result.pruning_state
        for layer in range(LAYERS):
            sets = [state.visible_tokens(layer, SEQ, kv).tolist() for kv in range(kv_heads)]
            assert sets == [ref.kept_tokens(layer, kv) for kv in range(kv_heads)], layer
    assert [len(r.kept_tokens) for r in result.layers][1:] != [SEQ] * (LAYERS - 1)


def test_the_observation_window_changes_the_prefill_selection() -> None:
    """Scored by the last 4 queries the layers keep other tokens than scored by all 32; a
    decode step's one query is its own window (the selection is unchanged)."""
    kept = {}
    for stage in ("summarization", "generation"):
        for window in (0, 4):
            g, _ = build(
                causal=True,
                stage=stage,
                head_keep=None,
                policy="current",
                observation_window=window,
                seq=24,
                gen=4,
                token_keep=[0.5] * LAYERS,
            )
            result = simulate(g, structured_inputs(g, 3), reference=False)
            kept[stage, window] = [tuple(r.kept_tokens) for r in result.layers]
    assert kept["summarization", 0] != kept["summarization", 4]
    assert kept["generation", 0] == kept["generation", 4]
    assert all(len(k) == 12 for k in kept["summarization", 4])  # half of the 24


def test_decay_changes_which_tokens_a_layer_keeps() -> None:
    """Scores of old steps fade: with a strong decay the caches differ from plain
    accumulation on the same inputs (the newest attention weighs more)."""
    kept = {}
    for shift in (0, 1):
        g, _ = build(
            causal=True,
            stage="generation",
            seq=24,
            gen=8,
            token_keep=[0.5] * LAYERS,
            head_keep=None,
            policy="per-layer",
            decay_shift=shift,
        )
        result = simulate(g, random_inputs(g.info, 7), reference=False)
        kept[shift] = [tuple(r.kept_tokens) for r in result.layers]
    assert kept[0] != kept[1]


def test_policies_choose_differently() -> None:
    """The same inputs and budget give different caches under different policies."""
    kept = {}
    for policy in ("cascade", "per-layer", "current", "window"):
        g, _ = build(
            causal=True,
            stage="generation",
            seq=24,
            gen=6,
            token_keep=[0.5] * LAYERS,
            head_keep=None,
            policy=policy,
        )
        result = simulate(g, structured_inputs(g, 3), reference=False)
        kept[policy] = [tuple(r.kept_tokens) for r in result.layers]
    assert len(set(map(tuple, kept.values()))) == 4, kept


# -- local value pruning --------------------------------------------------------------------


def capture_value_topk(monkeypatch) -> list:
    """Record every value_topk frame: (layer, head, query rows, key rows, pruned probs)."""
    seen: list = []
    handler = interpreter.HANDLERS[ValueTopK]

    def spy(f, op, args, ins, out):
        pruned = handler(f, op, args, ins, out)
        seen.append((op.layer, op.head, f.q_rows.copy(), f.k_rows.copy(), pruned.probs.copy()))
        return pruned

    monkeypatch.setitem(interpreter.HANDLERS, ValueTopK, spy)
    return seen


@pytest.mark.parametrize("causal,seed", [(False, 0), (True, 7)], ids=["bert-like", "gpt-like"])
def test_value_pruned_rows_match_float_reference(monkeypatch, causal: bool, seed: int) -> None:
    g, _ = build(causal=causal, value_keep=0.25)
    inputs = structured_inputs(g, seed)
    seen = capture_value_topk(monkeypatch)
    result = simulate(g, inputs)
    ref = reference_for(g, inputs, TOKEN_KEEP, HEAD_KEEP, value_keep=0.25)
    # value pruning changes E and so head importance: the cascade must still agree
    assert_same_selections(result, ref)
    frames = {(layer, head): (q_rows, k_rows, probs) for layer, head, q_rows, k_rows, probs in seen}
    compared = 0
    for layer, head, query, keys, kept, gap, smallest in ref.value_rows:
        if gap <= MIN_GAP or smallest < 1e-3:  # a near-tie or a code too small to be exact
            continue
        q_rows, k_rows, probs = frames[(layer, head)]
        assert np.array_equal(k_rows, keys)
        row = probs[int(np.flatnonzero(q_rows == query)[0])]
        assert list(np.flatnonzero(row)) == list(kept), (layer, head, query)
        compared += 1
    assert compared >= 50


# -- head importance across layers with different V scales ----------------------------------


def test_head_importance_is_in_real_units_across_layers() -> None:
    g, _ = build(causal=False, token_keep=None)
    inputs = structured_inputs(g, 0)
    inputs["v0"] = inputs["v0"] * np.float32(10)  # layer 0's outputs are 10x larger
    ref = reference_for(g, inputs, None, HEAD_KEEP)
    result = simulate(g, inputs, reference=False)
    assert_same_selections(result, ref)
