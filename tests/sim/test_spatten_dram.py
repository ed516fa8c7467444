"""DRAM accounting of the SpAtten techniques, alone and together, on small models.

Every expected byte count is rebuilt here from what a run reports (tokens_in, heads_in and
heads_kept per layer) and the documented fetch rules of the design (docs/cli.md "DRAM
accounting"): a row of one head moves in whole 256-bit beats of its plane; summarization reads
each alive query row once per alive head and each alive K row once per KV head whose group
still has an alive head; V rows are fetched on demand, per pass and KV head the union of the
rows its query rows keep; a row that progressive quantization defers is computed again in a
second pass, which fetches its Q row, both K planes of its KV head and the V rows it keeps.
Where a count depends on per-row decisions (which V rows local value pruning keeps, which rows
progressive quantization recomputes), the test captures the probabilities the simulator's
`value_topk` / `requant` op received (a spy on the handler table; the real handler still runs)
and makes the decisions itself with a sorted top-k and the threshold.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.frontend import ModelSpec
from spatten_hls.compiler.frontend.builder import build_attention_graph, check_against_model
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops_spatten import Requant, TokenImportance, ValueTopK
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline
from spatten_hls.compiler.sim import interpreter, simulate
from spatten_hls.compiler.sim.inputs import random_inputs
from spatten_hls.kernels.attention import attention_head_fixed
from spatten_hls.kernels.formats import SCORE_FRAC
from spatten_hls.kernels.quantize import quantize_symmetric
from spatten_hls.kernels.scale import scale_multiplier

D, SEQ, LAYERS = 16, 24, 4
BITS = {"q_bits": 10, "k_msb_bits": 7, "k_lsb_bits": 4, "v_bits": 9}


def row(bits: int) -> int:
    """Bytes of one row of D codes at the ports: whole 256-bit (32-byte) beats."""
    return -(-bits * D // 256) * 32


ROW = {"q": row(10), "k_msb": row(7), "k_lsb": row(4), "v": row(9)}


def build(
    *,
    causal: bool = False,
    heads: int = 4,
    kv_heads: int | None = None,
    stage: str = "summarization",
    gen: int = 4,
    tokens=None,
    heads_keep=None,
    values: float | None = None,
    threshold: float | None = None,
) -> AttnGraph:
    spec = ModelSpec(
        name="dram",
        family="gpt2" if causal else "bert",
        num_layers=LAYERS,
        num_heads=heads,
        num_kv_heads=kv_heads or heads,
        head_dim=D,
        hidden_size=heads * D,
        max_positions=512,
        causal=causal,
        source="test",
    )
    model: dict = {"seq_len": SEQ, "stage": stage}
    if stage == "generation":
        model["gen_tokens"] = gen
    raw: dict = {"model": model, "quantization": dict(BITS)}
    if tokens is not None:
        raw["token_pruning"] = {"enabled": True, "keep_per_layer": tokens}
    if heads_keep is not None:
        raw["head_pruning"] = {"enabled": True, "keep_per_layer": heads_keep}
    if values is not None:
        raw["value_pruning"] = {"enabled": True, "keep": values}
    if threshold is not None:
        raw["quantization"].update(progressive=True, requant_threshold=threshold)
    cfg = config_from_dict(raw)
    check_against_model(cfg, spec)
    return run_pipeline(build_attention_graph(spec, cfg), cfg, DEFAULT_PIPELINE)


def alive_heads(result) -> list[list[int]]:
    """Heads computed in each layer: all in layer 0, then those kept after the layer before."""
    info = result.info
    alive = [list(range(info.num_heads))] + [r.heads_kept for r in result.layers[:-1]]
    assert [r.heads_in for r in result.layers] == [len(a) for a in alive]
    return alive


def tokens_in(result) -> list[int]:
    """Tokens entering each layer: all in layer 0, then those kept after the layer before."""
    expected = [result.info.seq_len] + [len(r.kept_tokens) for r in result.layers[:-1]]
    assert [r.tokens_in for r in result.layers] == expected
    return expected


Rows = dict[tuple[int, int], np.ndarray]  # (layer, head) -> per query row


def expected_bytes(
    result, deferred: Rows | None = None, kept: Rows | None = None, progressive: bool = False
) -> dict[str, int]:
    """Summarization bytes from the records and the per-row decisions. deferred[layer, head]:
    the rows progressive quantization recomputed (default none); kept[layer, head]: per row,
    the keys whose V rows prob·V multiplies (default every key the row sees)."""
    info = result.info
    group = info.group_size
    q = k_msb = k_lsb = v = 0
    for layer, (n, heads) in enumerate(zip(tokens_in(result), alive_heads(result), strict=True)):
        groups = {h // group for h in heads}
        redone: set[int] = set()  # KV heads with a deferred row: the second pass fetches K
        unions: dict[tuple[int, bool], np.ndarray] = {}  # (KV head, second pass) -> V rows
        for h in heads:
            late = deferred.get((layer, h), np.zeros(n, bool)) if deferred else np.zeros(n, bool)
            if kept is not None:
                keeps = kept[(layer, h)]
            else:
                sees = np.arange(1, n + 1) if info.causal else np.full(n, n)
                keeps = np.arange(n)[None, :] < sees[:, None]
            q += (n + int(late.sum())) * ROW["q"]
            if late.any():
                redone.add(h // group)
            for i in range(n):
                key = (h // group, bool(late[i]))
                unions[key] = unions.get(key, np.zeros(n, bool)) | keeps[i]
        k_msb += (len(groups) + len(redone)) * n * ROW["k_msb"]
        k_lsb += ((0 if progressive else len(groups)) + len(redone)) * n * ROW["k_lsb"]
        v += sum(int(u.sum()) for u in unions.values()) * ROW["v"]
    return {"q": q, "k_msb": k_msb, "k_lsb": k_lsb, "v": v, "total": q + k_msb + k_lsb + v}


def spy(monkeypatch, op_type) -> list:
    """Record (layer, head, kv_head, probs given to the op, rows each query sees)."""
    seen: list = []
    handler = interpreter.HANDLERS[op_type]

    def wrapper(f, op, args, ins, out):
        seen.append(
            (
                op.layer,
                op.head,
                op.head // (f.codes.q.shape[0] // f.codes.v.shape[0]),
                np.array(args[0], dtype=np.int64),
                f.visible.copy(),
            )
        )
        return handler(f, op, args, ins, out)

    monkeypatch.setitem(interpreter.HANDLERS, op_type, wrapper)
    return seen


def value_decisions(seen: list, keep: float) -> tuple[Rows, dict]:
    """Per (layer, head): the keys each row keeps; per layer: V rows multiplied."""
    ratio = Fraction(repr(keep))
    kept: Rows = {}
    multiplied: dict = {}
    for layer, head, _, probs, visible in seen:
        rows = np.zeros(probs.shape, dtype=bool)
        for i, n in enumerate(visible):
            k = max(1, math.floor(n * ratio))
            order = sorted(range(n), key=lambda j, r=probs[i]: (-r[j], j))
            rows[i, order[:k]] = True
            multiplied[layer] = multiplied.get(layer, 0) + k
        kept[(layer, head)] = rows
    return kept, multiplied


def requant_decisions(seen: list, threshold: float) -> tuple[Rows, dict]:
    """Per (layer, head): the rows recomputed with the full K; per layer: (recomputed, rows)."""
    code = math.floor(threshold * 65536 + 0.5)
    deferred: Rows = {}
    rows: dict = {}
    for layer, head, _, probs, _ in seen:
        low = probs.max(axis=1) < code
        deferred[(layer, head)] = low
        redone, total = rows.get(layer, (0, 0))
        rows[layer] = (redone + int(low.sum()), total + probs.shape[0])
    return deferred, rows


def assert_bytes(result, expected: dict[str, int]) -> None:
    assert result.dram_bytes == expected


# -- no technique: the baseline the others are compared with ---------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_dense_bytes(causal: bool) -> None:
    result = simulate(build(causal=causal), seed=0, reference=False)
    assert_bytes(result, expected_bytes(result))
    assert result.dram_bytes["q"] == LAYERS * 4 * SEQ * ROW["q"]


# -- token pruning ---------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_token_pruning_removes_exactly_the_pruned_rows(causal: bool) -> None:
    keep = [1.0, 0.75, 0.5, 0.25]
    dense = simulate(build(causal=causal), seed=1, reference=False)
    pruned = simulate(build(causal=causal, tokens=keep), seed=1, reference=False)
    assert tokens_in(pruned) == [24, 24, 18, 12]
    assert_bytes(pruned, expected_bytes(pruned))
    gone = sum(SEQ - n for n in tokens_in(pruned))  # token rows not fetched, per head
    for key, per_row in (
        ("q", 4 * ROW["q"]),
        ("k_msb", 4 * ROW["k_msb"]),
        ("k_lsb", 4 * ROW["k_lsb"]),
        ("v", 4 * ROW["v"]),
    ):
        assert dense.dram_bytes[key] - pruned.dram_bytes[key] == gone * per_row, key
    assert pruned.dense_dram_bytes == dense.dense_dram_bytes
    assert pruned.dram_reduction > dense.dram_reduction


def test_generation_token_pruning_counts_each_steps_cache(monkeypatch) -> None:
    """Per step: one query row per head, the layer's visible cache per KV head."""
    keys: list = []
    handler = interpreter.HANDLERS[TokenImportance]

    def wrapper(f, op, args, ins, out):
        keys.append(len(f.k_rows))
        return handler(f, op, args, ins, out)

    monkeypatch.setitem(interpreter.HANDLERS, TokenImportance, wrapper)
    gen = 5
    result = simulate(
        build(
            causal=True,
            heads=4,
            kv_heads=2,
            stage="generation",
            gen=gen,
            tokens=[0.9, 0.6, 0.4, 0.2],
        ),
        seed=2,
        reference=False,
    )
    assert len(keys) == gen * LAYERS
    cache = sum(keys)
    assert result.dram_bytes == {
        "q": gen * LAYERS * 4 * ROW["q"],
        "k_msb": 2 * cache * ROW["k_msb"],
        "k_lsb": 2 * cache * ROW["k_lsb"],
        "v": 2 * cache * ROW["v"],
        "total": gen * LAYERS * 4 * ROW["q"]
        + 2 * cache * sum(ROW[k] for k in ("k_msb", "k_lsb", "v")),
    }
    assert cache < gen * LAYERS * (SEQ + gen)
    assert keys[-LAYERS:] == [r.tokens_in for r in result.layers]


# -- head pruning ----------------------------------------------------------------------------


def test_head_pruning_without_gqa_drops_the_pruned_heads_qkv() -> None:
    keep = [1.0, 0.75, 0.5, 0.5]
    dense = simulate(build(), seed=3, reference=False)
    pruned = simulate(build(heads_keep=keep), seed=3, reference=False)
    heads = [len(a) for a in alive_heads(pruned)]
    assert heads == [4, 4, 3, 2]
    assert_bytes(pruned, expected_bytes(pruned))
    gone = sum(4 - h for h in heads) * SEQ  # one row per pruned head (its own K/V head)
    for key in ("q", "k_msb", "k_lsb", "v"):
        assert dense.dram_bytes[key] - pruned.dram_bytes[key] == gone * ROW[key], key


def gqa_inputs(g: AttnGraph, seed: int, kill: str) -> dict[str, np.ndarray]:
    """4 query heads on 2 KV heads. kill="group": KV head 1's V is tiny, so both of its
    query heads lose; kill="half": heads 1 and 3 attend uniformly (Q near zero: E is a
    mean of V rows, small), so one head of each group survives."""
    inputs = random_inputs(g.info, seed)
    for layer in range(g.info.num_layers):
        if kill == "group":
            inputs[f"v{layer}"][1] *= np.float32(0.05)
        else:
            inputs[f"q{layer}"][[1, 3]] *= np.float32(0.01)
    return inputs


@pytest.mark.parametrize("kill", ["group", "half"])
def test_gqa_head_pruning_drops_kv_only_with_the_whole_group(kill: str) -> None:
    keep = [0.5, 0.5, 0.5, 0.5]
    g = build(heads=4, kv_heads=2, heads_keep=keep)
    inputs = gqa_inputs(g, 4, kill)
    dense = simulate(build(heads=4, kv_heads=2), inputs, reference=False)
    pruned = simulate(g, inputs, reference=False)
    survivors = pruned.layers[0].heads_kept
    assert survivors == ([0, 1] if kill == "group" else [0, 2])
    assert_bytes(pruned, expected_bytes(pruned))
    # Q: two heads fewer in layers 1..3 either way
    assert dense.dram_bytes["q"] - pruned.dram_bytes["q"] == 3 * 2 * SEQ * ROW["q"]
    for key in ("k_msb", "k_lsb", "v"):
        saved = dense.dram_bytes[key] - pruned.dram_bytes[key]
        # K/V of KV head 1 vanish in layers 1..3 only when both its query heads died
        assert saved == (3 * SEQ * ROW[key] if kill == "group" else 0), key


# -- local value pruning ---------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_value_pruning_reduces_v_only(monkeypatch, causal: bool) -> None:
    keep = 0.25
    seen = spy(monkeypatch, ValueTopK)
    dense = simulate(build(causal=causal), seed=5, reference=False)
    pruned = simulate(build(causal=causal, values=keep), seed=5, reference=False)
    kept, multiplied = value_decisions(seen, keep)
    assert_bytes(pruned, expected_bytes(pruned, kept=kept))
    for key in ("q", "k_msb", "k_lsb"):
        assert pruned.dram_bytes[key] == dense.dram_bytes[key], key
    assert pruned.dram_bytes["v"] < dense.dram_bytes["v"]
    assert [r.values_fetched for r in pruned.layers] == [multiplied[i] for i in range(LAYERS)]
    assert all(
        r.values_fetched < d.values_fetched
        for r, d in zip(pruned.layers, dense.layers, strict=True)
    )


# -- progressive quantization ----------------------------------------------------------------


def calm_inputs(g: AttnGraph, seed: int) -> dict[str, np.ndarray]:
    """Scores flat enough that no row's max probability reaches 1.0 (code 65536)."""
    inputs = random_inputs(g.info, seed)
    return {k: a * np.float32(0.5) if k[0] == "q" else a for k, a in inputs.items()}


@pytest.mark.parametrize("causal", [False, True])
def test_threshold_one_refetches_every_lsb_plane(monkeypatch, causal: bool) -> None:
    seen = spy(monkeypatch, Requant)
    g = build(causal=causal, threshold=1.0)
    inputs = calm_inputs(g, 6)
    result = simulate(g, inputs, reference=False)
    plain = simulate(build(causal=causal), inputs, reference=False)
    deferred, rows = requant_decisions(seen, 1.0)
    # every row whose max probability is below 1.0 is recomputed; with causal masking the
    # first query sees one key, its probability is exactly 1.0 (code 65536) and K's
    # precision cannot change it: that row alone (per head) keeps the MSB result
    for *_, probs, _ in seen:
        assert all(p.max() == 65536 for p in probs if p.max() >= 65536)
    expected = 23 / 24 if causal else 1.0
    assert [r.requant_fraction for r in result.layers] == [expected] * LAYERS
    assert [rows[i][0] / rows[i][1] for i in range(LAYERS)] == [expected] * LAYERS
    assert_bytes(result, expected_bytes(result, deferred, progressive=True))
    # the full LSB plane once per KV head, as without progressive quantization, but the
    # deferred rows' Q and the MSB plane a second time
    assert result.dram_bytes["k_lsb"] == plain.dram_bytes["k_lsb"]
    assert result.dram_bytes["k_msb"] == 2 * plain.dram_bytes["k_msb"]
    late = sum(rows[i][0] for i in range(LAYERS))
    assert result.dram_bytes["q"] == plain.dram_bytes["q"] + late * ROW["q"]
    for key in plain.out_codes:  # recomputing every row with the full K is plain attention
        assert np.array_equal(result.out_codes[key], plain.out_codes[key]), key


@pytest.mark.parametrize("causal", [False, True])
def test_tiny_threshold_fetches_no_lsb_and_equals_msb_only(causal: bool) -> None:
    g = build(causal=causal, threshold=1e-6)
    inputs = calm_inputs(g, 7)
    result = simulate(g, inputs, reference=False)
    plain = simulate(build(causal=causal), inputs, reference=False)
    assert [r.requant_fraction for r in result.layers] == [0.0] * LAYERS
    assert result.dram_bytes["k_lsb"] == 0
    assert_bytes(result, expected_bytes(result, progressive=True))
    assert result.dram_bytes["total"] == plain.dram_bytes["total"] - plain.dram_bytes["k_lsb"]
    lsb = BITS["k_lsb_bits"]
    differs = False
    for layer in range(LAYERS):
        for head in range(4):
            q, s_q = quantize_symmetric(inputs[f"q{layer}"][head], BITS["q_bits"])
            k, s_k = quantize_symmetric(inputs[f"k{layer}"][head], BITS["k_msb_bits"] + lsb)
            v, _ = quantize_symmetric(inputs[f"v{layer}"][head], BITS["v_bits"])
            k_msb = np.floor(k / 2**lsb) * 2**lsb  # the MSB plane, widened: msb << lsb
            m, sh = scale_multiplier(s_q * s_k / math.sqrt(D) * 2.0**SCORE_FRAC)
            out, _ = attention_head_fixed(
                q, k_msb.astype(np.int64), v, m, sh, BITS["v_bits"], causal, 0
            )
            assert np.array_equal(result.out_codes[f"out{layer}"][head], out), (layer, head)
            differs |= not np.array_equal(out, plain.out_codes[f"out{layer}"][head])
    assert differs  # the MSB-only result is a different (coarser) computation


def test_intermediate_threshold_counts_lsb_planes_per_kv_head(monkeypatch) -> None:
    threshold = 0.45
    seen = spy(monkeypatch, Requant)
    g = build(causal=True, heads=4, kv_heads=2, threshold=threshold)
    result = simulate(g, calm_inputs(g, 8), reference=False)
    deferred, rows = requant_decisions(seen, threshold)
    fractions = [r.requant_fraction for r in result.layers]
    assert fractions == [rows[i][0] / rows[i][1] for i in range(LAYERS)]
    assert all(0.0 < f < 1.0 for f in fractions)
    assert_bytes(result, expected_bytes(result, deferred, progressive=True))
    # the Q rows of the deferred rows only: not every row is fetched twice
    assert 0 < result.dram_bytes["q"] - LAYERS * 4 * SEQ * ROW["q"] < LAYERS * 4 * SEQ * ROW["q"]


# -- everything together ---------------------------------------------------------------------


@pytest.mark.parametrize("causal,kv_heads", [(False, 4), (True, 2)], ids=["bert", "gqa"])
def test_all_techniques_together(monkeypatch, causal: bool, kv_heads: int) -> None:
    values, threshold = 0.3, 0.45
    value_seen = spy(monkeypatch, ValueTopK)
    requant_seen = spy(monkeypatch, Requant)
    g = build(
        causal=causal,
        kv_heads=kv_heads,
        tokens=[1.0, 0.75, 0.5, 0.25],
        heads_keep=[1.0, 0.75, 0.5, 0.5],
        values=values,
        threshold=threshold,
    )
    result = simulate(g, calm_inputs(g, 9), reference=False)
    kept, multiplied = value_decisions(value_seen, values)
    deferred, rows = requant_decisions(requant_seen, threshold)
    assert_bytes(
        result,
        expected_bytes(result, deferred, kept, progressive=True),
    )
    assert [r.values_fetched for r in result.layers] == [multiplied[i] for i in range(LAYERS)]
    assert [r.requant_fraction for r in result.layers] == [
        rows[i][0] / rows[i][1] for i in range(LAYERS)
    ]
    assert all(0.0 <= r.requant_fraction <= 1.0 for r in result.layers)
    assert tokens_in(result) == [24, 24, 18, 12]
    assert [len(a) for a in alive_heads(result)] == [4, 4, 3, 2]
    # head_dim 16: every plane's row is one whole beat, so splitting K and refetching the
    # deferred rows cost more than pruning saves here; the reductions at real head widths are
    # checked on BERT-base and GPT-2 (tests/perf)
    assert result.dense_dram_bytes == LAYERS * (4 + 2 * kv_heads) * SEQ * 32
