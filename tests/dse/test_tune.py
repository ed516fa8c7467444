"""`spatten tune`'s target, its choice and the config it writes."""

from __future__ import annotations

import pytest

from spatten_hls.compiler.config import config_from_dict, load_config
from spatten_hls.compiler.dse.tune import best_toml, choose, parse_target, why
from spatten_hls.compiler.errors import CompilerError, ConfigError


def rec(ident, fits=True, status="ok", **metrics):
    return {
        "id": ident,
        "point": {"token_pruning.keep": ident},
        "status": status,
        "metrics": {"fits": fits, **metrics},
    }


def test_target_parses_comparisons():
    target = parse_target("ppl_change<=0.05 and latency_cycles < 2e6, top1_agreement>=0.9")
    assert [(c.metric, c.op, c.bound) for c in target] == [
        ("ppl_change", "<=", 0.05),
        ("latency_cycles", "<", 2e6),
        ("top1_agreement", ">=", 0.9),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("ppl_change=0.05", "is not METRIC OP NUMBER"),
        ("speed<=1", "unknown metric 'speed'"),
        ("ppl_change<=1e", "is not a number"),
        ("x" * 600, "longer than"),
    ],
)
def test_bad_target_is_one_error(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_target(text)


def test_choose_the_cheapest_that_meets_the_target():
    records = [
        rec(0.25, ppl_change=0.30, latency_cycles=100),  # cheapest, misses the target
        rec(0.5, ppl_change=0.04, latency_cycles=300),
        rec(0.6, ppl_change=0.05, latency_cycles=200),  # meets it exactly (<=): the winner
        rec(0.7, ppl_change=0.01, latency_cycles=200, fits=False),  # does not fit
        rec(0.8, status="error"),
        rec(0.9, ppl_change=0.01, latency_cycles=200),  # ties the winner, later in the space
    ]
    target = parse_target("ppl_change<=0.05")
    choice = choose(records, target, "latency_cycles")
    assert choice.winner["point"] == {"token_pruning.keep": 0.6}
    assert [r["point"]["token_pruning.keep"] for r in choice.meeting] == [0.6, 0.9, 0.5]
    lines = why(choice, target, "latency_cycles", ["token_pruning.keep"])
    assert lines[0] == (
        "latency_cycles = 200, the least of the 3 of 4 evaluated points that meet ppl_change<=0.05"
    )
    assert "runner-up token_pruning.keep = 0.9: latency_cycles = 200 (+0.0%)" in lines[2]


def test_no_point_meeting_the_target_is_an_error_saying_how_close():
    records = [
        rec(0.5, ppl_change=0.09, latency_cycles=1),
        rec(0.6, ppl_change=0.07, latency_cycles=2),
    ]
    with pytest.raises(
        CompilerError, match=r"no point meets ppl_change<=0\.05.*best ppl_change reached is 0\.07"
    ):
        choose(records, parse_target("ppl_change<=0.05"), "latency_cycles")


def test_best_toml_is_a_complete_commented_config(tmp_path):
    doc = {"token_pruning": {"enabled": True, "keep": 0.6}, "quantization": {"k_msb_bits": 6}}
    text = best_toml(doc, ["chosen because"], {"token_pruning.keep": 0.6}, ["token_pruning.keep"])
    assert text.startswith(
        "# chosen because\n# swept keys at this point: token_pruning.keep = 0.6\n"
    )
    path = tmp_path / "best.toml"
    path.write_text(text)
    loaded = load_config(path)
    assert loaded.to_dict() == config_from_dict(doc).to_dict()
    assert "[hardware]" in text and "multipliers = 1024" in text  # every key written out
