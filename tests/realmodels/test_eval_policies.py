"""Token-selection policies on the real models: reads, protocols, side-by-side comparison.

Small sizes (SmolLM2: 40 tokens, MiniLM: 4 sentences); the fidelity goals are measured by
examples/policy_comparison.py on longer text.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from spatten_hls.compiler.cli.main import main
from spatten_hls.compiler.config import config_from_dict

ROOT = Path(__file__).resolve().parents[2]
PROMPT, TOKENS = 20, 40
SENTENCES = [
    "The interpreter reads a program one statement at a time.",
    "A function call evaluates its arguments before the body runs.",
    "Exceptions propagate up the call stack until a handler catches them.",
    "Modules are loaded once and cached for later imports.",
]


def load_example(name: str):
    """A script of examples/ as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def window(**extra) -> dict:
    return {
        "token_pruning": {
            "enabled": True,
            "policy": "window",
            "schedule": "uniform",
            "keep": 0.5,
            "keep_first": 4,
            **extra,
        }
    }


@pytest.fixture(scope="module")
def ids(smollm2):
    from spatten_hls.compiler.realmodels import text

    return smollm2.encode(text.default_text())[:TOKENS]


def decode_run(smollm2, ids, cfg: dict, protocol: str = "decode"):
    from spatten_hls.compiler.realmodels.decode import decode_spatten

    return decode_spatten(smollm2, ids, PROMPT, config_from_dict(cfg), protocol)


@pytest.fixture(scope="module")
def window_run(smollm2, ids):
    return decode_run(smollm2, ids, window())


def test_kv_read_fraction_counts_visible_keys_of_every_layer_and_step(smollm2, window_run):
    run = window_run
    layers = smollm2.spec.num_layers
    steps = TOKENS - PROMPT - 1
    # the window keeps floor(end / 2) of the end tokens so far at every step; a step reads
    # what the previous step kept plus its own token
    reads = sum((end - 1) // 2 + 1 for end in range(PROMPT + 1, PROMPT + 1 + steps)) + (
        PROMPT - PROMPT // 2  # the first step reads the whole prompt
    )
    dense_reads = sum(range(PROMPT + 1, PROMPT + 1 + steps))
    read, total = run.result.kv_entries
    kv = smollm2.spec.num_kv_heads
    assert total == dense_reads * kv * layers
    assert read == reads * kv * layers
    assert run.result.kv_read_fraction == pytest.approx(reads / dense_reads)


def test_window_caches_hold_the_sinks_and_the_most_recent(window_run):
    run = window_run
    end = TOKENS - 1
    kept = end // 2
    expected = [0, 1, 2, 3, *range(end - (kept - 4), end)]
    for record in run.result.layers:
        assert record.kept_tokens == expected


def test_prefill_protocol_selects_once_and_decodes_with_every_new_token(smollm2, ids):
    run = decode_run(smollm2, ids, window(), protocol="prefill")
    end = TOKENS - 1
    kept_prompt = [0, 1, 2, 3, *range(PROMPT - (PROMPT // 2 - 4), PROMPT)]  # StreamingLLM's set
    for record in run.result.layers:
        assert record.kept_tokens == kept_prompt + list(range(PROMPT, end))
    # every decode step reads the kept prompt plus the tokens decoded so far
    steps = [s for s in run.result.steps if s.layer == 0]
    assert [s.keys for s in steps] == [PROMPT // 2 + t + 1 for t in range(len(steps))]


def test_prefill_protocol_under_the_cascade_computes_the_kept_queries(smollm2, ids):
    cfg = {"token_pruning": {"enabled": True, "keep": 0.5, "skip_first": 0.0, "keep_first": 2}}
    run = decode_run(smollm2, ids, cfg, protocol="prefill")
    prompt_kept = [{t for t in r.kept_tokens if t < PROMPT} for r in run.result.layers]
    assert all(b <= a for a, b in itertools.pairwise(prompt_kept))  # nested
    assert len(prompt_kept[-1]) < PROMPT // 2 and {0, 1} <= prompt_kept[-1]
    assert np.isfinite(run.nll).all()


def test_per_layer_policies_keep_their_own_caches(smollm2, ids):
    cfg = {"token_pruning": {"enabled": True, "policy": "per-layer", "keep": 0.5}}
    kept = [set(r.kept_tokens) for r in decode_run(smollm2, ids, cfg).result.layers]
    assert len({frozenset(k) for k in kept}) > 1  # the layers chose differently
    # ... and not as a cascade would, where each layer's survivors are a later layer's keys
    assert any(not later <= earlier for earlier, later in itertools.pairwise(kept))


def test_per_kv_head_caches_read_their_own_keys(smollm2, ids):
    """Each KV head of a layer keeps floor(end / 2) tokens of its own; every decode step reads,
    per KV head, what that head kept at the previous step plus its own token."""
    cfg = {
        "token_pruning": {
            "enabled": True,
            "policy": "current",
            "schedule": "uniform",
            "granularity": "kv_head",
            "keep": 0.5,
        }
    }
    result = decode_run(smollm2, ids, cfg).result
    state, kv_heads = result.pruning_state, smollm2.spec.num_kv_heads
    end = TOKENS - 1
    caches = [
        [tuple(state.visible_tokens(layer, end, kv)) for kv in range(kv_heads)]
        for layer in range(smollm2.spec.num_layers)
    ]
    assert all(len(cache) == end // 2 for layer in caches for cache in layer)
    assert any(len(set(layer)) > 1 for layer in caches)  # the KV heads chose apart
    steps = TOKENS - PROMPT - 1
    reads = sum((e - 1) // 2 + 1 for e in range(PROMPT + 1, PROMPT + 1 + steps)) + (
        PROMPT - PROMPT // 2
    )
    read, total = result.kv_entries
    assert (read, total) == (
        reads * kv_heads * smollm2.spec.num_layers,
        sum(range(PROMPT + 1, PROMPT + 1 + steps)) * kv_heads * smollm2.spec.num_layers,
    )
    assert {s.kv_group for s in result.steps} == set(range(kv_heads))


def test_compare_reports_every_config_on_the_same_text_and_plots(capsys, smollm2, tmp_path):
    a, b = tmp_path / "dense.toml", tmp_path / "window.toml"
    a.write_text("")
    b.write_text('[token_pruning]\nenabled = true\npolicy = "window"\nkeep = 0.5\nkeep_first = 4\n')
    png = tmp_path / "fidelity.png"
    args = ["eval", "smollm2-135m", "--tokens", "36", "--prompt", "16", "--json"]
    assert main([*args, "--compare", str(a), str(b), "--plot", str(png)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["config"] for r in doc["results"]] == [str(a), str(b)]
    dense, pruned = doc["results"]
    assert dense["ppl_dense"] == pruned["ppl_dense"]  # one dense reference for all
    assert dense["kv_read_fraction"] == 1.0 and pruned["kv_read_fraction"] < 0.7
    assert png.read_bytes().startswith(b"\x89PNG")


def test_compare_table_has_a_row_per_config():
    from spatten_hls.compiler.realmodels.compare import table
    from spatten_hls.compiler.realmodels.evaluate import DecoderFidelity

    def result(ppl: float, reads: float) -> DecoderFidelity:
        return DecoderFidelity("m", 16, 20, 10.0, ppl, 0.9, 500, 1000, 0.0, reads)

    text = table(["a/dense.toml", "b/kv50.toml"], [result(10.0, 1.0), result(11.5, 0.5)])
    assert text.splitlines() == [
        "| config | ppl | change | top-1 agreement | kv_read_fraction | DRAM reduction |",
        "|---|---|---|---|---|---|",
        "| dense | 10.000 | +0.00% | 90.0% | 1.000 | 2.00x |",
        "| kv50 | 11.500 | +15.00% | 90.0% | 0.500 | 2.00x |",
    ]


def test_config_and_compare_exclude_each_other(capsys, smollm2, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "smollm2-135m", "--config", "a.toml", "--compare", "b.toml"])
    assert exc.value.code == 2
    assert main(["eval", "minilm-l6", "--protocol", "prefill"]) == 1
    assert "decoders" in capsys.readouterr().err


def test_encoder_reports_both_poolings_and_key_reads(minilm):
    from spatten_hls.compiler.realmodels.evaluate import evaluate_encoder

    cfg = {"token_pruning": {"enabled": True, "keep": 0.5, "keep_first": 1, "skip_first": 0.34}}
    drop = evaluate_encoder(minilm, config_from_dict(cfg), SENTENCES)
    carry = evaluate_encoder(
        minilm, config_from_dict({**cfg, "model": {"pooling_pruned": "carry"}}), SENTENCES
    )
    assert drop.mean_cosine_by_pooling == carry.mean_cosine_by_pooling
    assert drop.mean_cosine == drop.mean_cosine_by_pooling["drop"]
    assert carry.mean_cosine == carry.mean_cosine_by_pooling["carry"] != drop.mean_cosine
    # keys per layer: the two dense layers read all, the later ones what survived
    per_layer = np.array(drop.tokens_per_layer)
    assert drop.kv_read_fraction == pytest.approx(per_layer.sum() / (6 * per_layer[0]), rel=1e-3)
    assert drop.kv_read_fraction < 1.0


def test_the_selection_bound_study_reproduces_the_simulated_cut(minilm):
    """examples/minilm_selection_bound.py: its float token dropping at the shipped budget
    reads what the simulator reads under examples/configs/minilm-tokens.toml and lands on its
    cosine (12-bit against float32), and at every budget the layer's own attention keeps the
    embedding at least as close as the scores known before the keys are fetched."""
    from spatten_hls.compiler.config import load_config
    from spatten_hls.compiler.realmodels import text
    from spatten_hls.compiler.realmodels.evaluate import evaluate_encoder

    study = load_example("minilm_selection_bound")
    calibration = text.default_sentences(8)
    rows = {
        (b, r): (mean, low, f) for b, r, mean, low, f in study.study(minilm, SENTENCES, calibration)
    }
    shipped = evaluate_encoder(
        minilm, load_config(ROOT / "examples" / "configs" / "minilm-tokens.toml"), SENTENCES
    )
    mean, _, fraction = rows[("90% in the last layer (minilm-tokens)", "token dropping (cascade)")]
    assert fraction == pytest.approx(shipped.kv_read_fraction, abs=1e-12)
    assert fraction < 1
    assert abs(mean - shipped.mean_cosine) < 2e-3
    for budget in study.BUDGETS:
        own = rows[(budget, "keys by own attention (bound)")]
        for rule in (
            "keys by earlier layers",
            "keys by the previous layer",
            "keys by a fitted mix of earlier heads",
            "keys by a fitted mix of earlier heads, per head",
        ):
            assert own[2] == rows[(budget, rule)][2]  # the same reads
            assert own[0] >= rows[(budget, rule)][0]


def test_top_mass_keeps_the_fewest_positions_that_reach_the_share():
    """examples/minilm_selection_bound.py's per-head kept count: the smallest set of the
    highest scores whose sum reaches the share of the total, the ends kept outside the sum."""
    study = load_example("minilm_selection_bound")
    score = np.array([9.0, 1.0, 5.0, -2.0, 3.0, 1.0, 9.0])  # inner total 10 (-2 counts as 0)
    assert study.top_mass(score, 0.5).tolist() == [0, 2, 6]  # 5 reaches 5 of 10
    assert study.top_mass(score, 0.51).tolist() == [0, 2, 4, 6]  # 5 + 3
    assert study.top_mass(score, 0.8).tolist() == [0, 2, 4, 6]  # 8 reaches 8
    assert study.top_mass(score, 0.85).tolist() == [0, 1, 2, 4, 6]  # ties: the earlier one
    assert study.top_mass(score, 1.0).tolist() == [0, 1, 2, 4, 5, 6]
    assert study.top_mass(np.array([1.0, 0.0, -1.0, 2.0]), 0.9).tolist() == [0, 1, 2, 3]


def test_a_lower_share_of_the_attention_reads_fewer_keys(minilm):
    """examples/minilm_selection_bound.py's second table: each head keeps the keys that carry
    the share of its predicted attention; a lower share, or selecting from an earlier layer,
    reads fewer keys, and every row reads fewer than the dense design."""
    from spatten_hls.compiler.realmodels import text

    study = load_example("minilm_selection_bound")
    rows = {
        (b, r): (mean, f)
        for b, r, mean, _, f in study.mass_study(minilm, SENTENCES, text.default_sentences(8))
    }
    assert set(rows) == set(itertools.product(study.MASS_BUDGETS, study.MASS_RULES.keys()))
    for rule in study.MASS_RULES:
        high, low, early = (rows[(budget, rule)] for budget in study.MASS_BUDGETS)
        assert 1 > high[1] > low[1] > early[1]
        assert 0 < early[0] <= 1 and 0 < low[0] <= 1 and 0 < high[0] <= 1


def test_a_budget_of_the_padded_length_prunes_only_the_longest_sentences(minilm):
    """examples/minilm_selection_bound.py's third table: the kept count is a fraction of
    each sentence's length, or of the padded batch length, and the reads follow from it."""
    study = load_example("minilm_selection_bound")
    lengths = minilm.tokenize(SENTENCES).lengths
    columns = int(lengths.max())
    layers = minilm.config.num_layers

    def reads(after: int, keep: float, length: np.ndarray) -> float:
        kept = np.minimum(lengths, (length * keep).astype(int))
        kept_reads = lengths * (after + 1) + kept * (layers - after - 1)
        return float(kept_reads.sum() / (lengths.sum() * layers))

    rows = {(b, n): (mean, f) for b, n, mean, _, f in study.padded_study(minilm, SENTENCES)}
    for budget, (after, keep) in study.PADDED_BUDGETS.items():
        own, padded = rows[(budget, "own")], rows[(budget, f"padded ({columns})")]
        assert own[1] == pytest.approx(reads(after, keep, lengths), abs=1e-12)
        assert padded[1] == pytest.approx(reads(after, keep, np.full_like(lengths, columns)))
        assert padded[1] > own[1] and padded[0] > own[0]


def test_prefill_scored_by_the_last_query_is_tovas_selection(smollm2, ids):
    """`observation_window = 1` under the prefill: each layer keeps the prompt tokens the
    prompt's last query attends to most, summed over the query heads (TOVA's score), which a
    float32 run of the same prompt picks too (up to near-ties of the 12-bit scores); scored
    by every prompt query the layers keep other tokens."""
    from spatten_hls.compiler.realmodels.attention import dense_attention
    from spatten_hls.compiler.realmodels.llama import forward

    tova = {"enabled": True, "policy": "current", "schedule": "uniform", "keep": 0.5}
    last = decode_run(smollm2, ids, {"token_pruning": {**tova, "observation_window": 1}}, "prefill")
    every = decode_run(smollm2, ids, {"token_pruning": tova}, "prefill")
    kept = PROMPT // 2
    float_sets = []

    def last_query_scores(call):
        q, k = call.q[:, -1], call.k  # [heads, d], [kv_heads, n, d]
        k = np.repeat(k, call.group_size, axis=0)
        s = np.einsum("hd,hnd->hn", q.astype(np.float64), k) / np.sqrt(q.shape[-1])
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        float_sets.append(set(np.argsort(-p.sum(axis=0), kind="stable")[:kept].tolist()))
        return dense_attention(call)

    forward(smollm2, ids[:PROMPT], last_query_scores)
    ours = [{t for t in r.kept_tokens if t < PROMPT} for r in last.result.layers]
    assert all(len(s) == kept for s in ours)
    shared = sum(len(a & b) for a, b in zip(ours, float_sets, strict=True))
    assert shared >= 0.97 * kept * len(ours)  # all 300 entries when written
    assert sum(a == b for a, b in zip(ours, float_sets, strict=True)) >= 3 * len(ours) // 4
    assert ours != [{t for t in r.kept_tokens if t < PROMPT} for r in every.result.layers]


@pytest.mark.parametrize(
    "policy",
    [{"policy": "per-layer"}, {"policy": "per-layer", "decay_shift": 2}, {"policy": "current"}],
)
def test_the_float_eviction_example_keeps_what_the_simulator_keeps(smollm2, ids, policy):
    """examples/float_kv_eviction.py, a float32 implementation of the decode-time policies
    independent of the simulator: the same budget reads exactly the simulator's KV entries,
    and its caches hold nearly the same tokens (12-bit scores break near-ties differently)."""
    example = load_example("float_kv_eviction")
    section = {"enabled": True, "schedule": "uniform", "keep": 0.5, "keep_first": 2}
    cfg = {"token_pruning": {**section, "keep_recent": 4, **policy}}
    ppl, reads, hook = example.float_run(smollm2, ids, PROMPT, config_from_dict(cfg).token_pruning)
    run = decode_run(smollm2, ids, cfg)
    assert reads == pytest.approx(run.result.kv_read_fraction, abs=1e-12)
    assert reads < 0.8
    same = total = 0
    for layer, record in enumerate(run.result.layers):
        simulated, modelled = set(record.kept_tokens), set(hook.kept[layer])
        assert len(simulated) == len(modelled)
        same += len(simulated & modelled)
        total += len(simulated)
    assert same / total >= 0.97
    assert abs(np.log(ppl) - run.nll.mean()) < 0.01  # float32 against 12-bit
