"""SPACE.toml: validation up front, the order and sampling of points, stable point ids."""

from __future__ import annotations

import pytest

from spatten_hls.compiler.dse.space import load_space
from spatten_hls.compiler.dse.sweep import plan_jobs
from spatten_hls.compiler.errors import ConfigError

GRID = """
[space]
"token_pruning.keep" = [0.25, 0.5]
"quantization.k_msb_bits" = [4, 6, 8]
"""


def test_grid_points_in_row_major_order(write_space, tmp_path):
    space = load_space(write_space(tmp_path, GRID))
    assert space.grid_size == 6
    assert space.points() == [
        {"token_pruning.keep": keep, "quantization.k_msb_bits": bits}
        for keep in (0.25, 0.5)
        for bits in (4, 6, 8)
    ]
    assert space.objectives == ("latency_cycles", "dram_bytes")


def test_point_config_is_the_base_with_the_point_set(write_space, tmp_path):
    (tmp_path / "base.toml").write_text("[token_pruning]\nenabled = true\nkeep_recent = 8\n")
    space = load_space(write_space(tmp_path, 'base = "base.toml"\n' + GRID))
    doc = space.config_document({"token_pruning.keep": 0.5, "quantization.k_msb_bits": 6})
    assert doc["token_pruning"]["enabled"] is True
    assert doc["token_pruning"]["keep_recent"] == 8
    assert doc["token_pruning"]["keep"] == 0.5
    assert doc["quantization"]["k_msb_bits"] == 6
    assert doc["quantization"]["k_lsb_bits"] == 4  # the default, written out
    assert "keep_per_layer" not in doc["token_pruning"]  # unset: left out, not None


def test_random_sample_is_seeded_distinct_and_ordered(write_space, tmp_path):
    text = GRID.replace("[4, 6, 8]", "[2, 3, 4, 5, 6, 7, 8]") + (
        '"hardware.multipliers" = [256, 512, 1024]\n'
        '[sweep]\nmode = "random"\nsamples = 10\nseed = 7\n'
    )
    space = load_space(write_space(tmp_path, text))
    points = space.points()
    assert len(points) == 10
    keys = [tuple(p.values()) for p in points]
    assert len(set(keys)) == 10
    grid = [
        tuple(p.values())
        for p in load_space(
            write_space(
                tmp_path,
                GRID.replace("[4, 6, 8]", "[2, 3, 4, 5, 6, 7, 8]")
                + '"hardware.multipliers" = [256, 512, 1024]\n',
                "grid.toml",
            )
        ).points()
    ]
    assert set(keys) <= set(grid)
    assert [grid.index(k) for k in keys] == sorted(grid.index(k) for k in keys)
    assert load_space(write_space(tmp_path, text, "again.toml")).points() == points
    other = load_space(write_space(tmp_path, text.replace("seed = 7", "seed = 8"), "s8.toml"))
    assert other.points() != points


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[space]\n"token_pruning.kep" = [0.5]\n', "unknown key 'token_pruning.kep'"),
        ('[space]\n"tokens.keep" = [0.5]\n', "'tokens.keep' is not a dotted config key"),
        ('[space]\n"token_pruning.keep" = 0.5\n', "must be a non-empty list"),
        ('[space]\n"token_pruning.keep" = []\n', "must be a non-empty list"),
        ('[space]\n"token_pruning.keep" = [0.5, 2.0]\n', "'token_pruning.keep' = 2.0"),
        ('[space]\n"token_pruning.policy" = ["h2o"]\n', "'token_pruning.policy' = 'h2o'"),
        ('[space]\n"token_pruning.keep" = [0.5, 0.5]\n', "repeats 0.5"),
        ('[space]\n"quantization.k_msb_bits" = [4.5]\n', "must be an integer"),
        ('[sweep]\nobjectives = ["speed"]\n', "unknown metric 'speed'"),
        ('[sweep]\nobjectives = ["ppl_change"]\n', "needs an [eval] table"),
        ('[sweep]\nmode = "random"\n', "needs 'sweep.samples'"),
        ('[sweep]\nmode = "bayes"\n', "'sweep.mode' = 'bayes'"),
        ("[sweep]\nsamples = 3\n", 'applies to mode = "random"'),
        (
            '[space]\n"hardware.multipliers" = [1, 2]\n[sweep]\nmode = "random"\nsamples = 3\n',
            "exceeds the 2 points",
        ),
        ("[eval]\ntokens = 10\nprompt = 9\n", "'eval.tokens' = 10 must exceed"),
        ("[eval]\nwords = 10\n", "unknown key 'eval.words'"),
        ('[eval]\nprotocol = "chunked"\n', "'eval.protocol'"),
        ('base = "missing.toml"\n', "missing.toml: no such config file"),
        ("colour = 1\n", "unknown key 'colour'"),
        ("[space\n", "invalid TOML"),
    ],
)
def test_bad_space_is_one_error_naming_the_key(write_space, tmp_path, text, message):
    path = write_space(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_space(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_oversized_grid_is_refused_up_front(write_space, tmp_path):
    values = ", ".join(str(n) for n in range(1, 401))
    text = (
        f'[space]\n"hardware.multipliers" = [{values}]\n"hardware.topk_parallelism" = [{values}]\n'
    )
    with pytest.raises(ConfigError, match="160000 points, more than the 100000"):
        load_space(write_space(tmp_path, text))
    sampled = text + '[sweep]\nmode = "random"\nsamples = 50\n'
    assert len(load_space(write_space(tmp_path, sampled, "sampled.toml")).points()) == 50


def test_a_combination_the_config_refuses_is_a_failing_point(write_space, tmp_path, tiny_model):
    text = (
        '[space]\n"token_pruning.policy" = ["cascade", "current"]\n'
        '"token_pruning.granularity" = ["layer", "kv_head"]\n'
    )
    jobs = plan_jobs(str(tiny_model), load_space(write_space(tmp_path, text)), None)
    invalid = [(j.point, j.invalid) for j in jobs if j.invalid is not None]
    assert len(jobs) == 4
    # a cascade per KV head is refused by the config; kv_head on an encoder by the model check
    assert [p for p, _ in invalid] == [
        {"token_pruning.policy": "cascade", "token_pruning.granularity": "kv_head"},
        {"token_pruning.policy": "current", "token_pruning.granularity": "kv_head"},
    ]
    assert "needs a per-layer policy" in invalid[0][1]


def test_point_ids_are_stable_and_follow_what_the_metrics_depend_on(
    write_space, tmp_path, tiny_model
):
    space = load_space(write_space(tmp_path, GRID))
    ids = [j.id for j in plan_jobs(str(tiny_model), space, None)]
    assert len(set(ids)) == 6
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    # the same model named by another path, the same space file elsewhere: the same ids
    (tmp_path / "elsewhere").mkdir()
    copy = tmp_path / "elsewhere" / "model.json"
    copy.write_text(tiny_model.read_text())
    moved = load_space(write_space(tmp_path / "elsewhere", GRID))
    assert [j.id for j in plan_jobs(str(copy), moved, None)] == ids
    # a changed base config or a changed model: new ids
    (tmp_path / "b.toml").write_text("[hardware]\nmultipliers = 512\n")
    rebased = load_space(write_space(tmp_path, 'base = "b.toml"\n' + GRID, "rebased.toml"))
    assert not set(j.id for j in plan_jobs(str(tiny_model), rebased, None)) & set(ids)
    wider = tmp_path / "wider.json"
    wider.write_text(
        tiny_model.read_text()
        .replace('"num_attention_heads": 2', '"num_attention_heads": 4')
        .replace('"hidden_size": 64', '"hidden_size": 128')
    )
    assert not set(j.id for j in plan_jobs(str(wider), space, None)) & set(ids)
