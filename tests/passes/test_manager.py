"""The pass manager: requires/provides checks, purity, error wrapping, IR dumps, the pipeline."""

import dataclasses
import importlib
import inspect
from contextlib import contextmanager

import pytest

from spatten_hls.compiler.config import Config, config_from_dict
from spatten_hls.compiler.errors import CompilerError, IRVerificationError, PassError
from spatten_hls.compiler.frontend import PRESETS, ModelSpec
from spatten_hls.compiler.frontend.builder import build_attention_graph
from spatten_hls.compiler.ir import print_ir
from spatten_hls.compiler.passes import (
    DEFAULT_PIPELINE,
    PASSES,
    register_pass,
    resolve_pipeline,
    run_pipeline,
)

SPEC = ModelSpec(
    name="toy",
    family="gpt2",
    num_layers=2,
    num_heads=2,
    num_kv_heads=2,
    head_dim=4,
    hidden_size=8,
    max_positions=32,
    causal=True,
    source="test:toy",
)
CFG = config_from_dict({"model": {"seq_len": 4}})


def dense():
    return build_attention_graph(SPEC, CFG)


@contextmanager
def throwaway_pass(name, fn, requires=(), provides=()):
    """Register a pass for one test and always remove it again."""
    assert name not in PASSES
    register_pass(name, requires=set(requires), provides=set(provides))(fn)
    try:
        yield PASSES[name]
    finally:
        PASSES.pop(name, None)


# -- the registry and the default pipeline ----------------------------------------------------


def test_every_default_pipeline_name_resolves():
    assert DEFAULT_PIPELINE, "the default pipeline is empty"
    assert len(set(DEFAULT_PIPELINE)) == len(DEFAULT_PIPELINE)
    for name in DEFAULT_PIPELINE:
        assert name in PASSES, name
    infos = resolve_pipeline(DEFAULT_PIPELINE, dense().properties)
    assert [i.name for i in infos] == list(DEFAULT_PIPELINE)


def test_pass_naming_convention_and_docstrings():
    """`verb-noun` is `verb_noun` in `compiler/passes/verb_noun.py`, with a contract docstring."""
    for name in DEFAULT_PIPELINE:
        fn = PASSES[name].fn
        py_name = name.replace("-", "_")
        assert fn.__name__ == py_name
        assert fn.__module__ == f"spatten_hls.compiler.passes.{py_name}"
        assert importlib.import_module(fn.__module__).__dict__[py_name] is fn
        doc = inspect.getdoc(fn) or ""
        for part in ("Precondition", "Effect", "Postcondition"):
            assert part in doc, (name, part)
        assert list(inspect.signature(fn).parameters) == ["g", "cfg"]


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        register_pass(DEFAULT_PIPELINE[0])(lambda g, cfg: g)
    assert PASSES[DEFAULT_PIPELINE[0]].fn.__name__ == DEFAULT_PIPELINE[0].replace("-", "_")


def test_default_pipeline_runs_on_every_preset_front_end():
    for name, spec in PRESETS.items():
        cfg = config_from_dict({"model": {"seq_len": 2}})
        g = run_pipeline(build_attention_graph(spec, cfg), cfg, DEFAULT_PIPELINE)
        assert "typed" in g.properties, name


# -- requires / provides ----------------------------------------------------------------------


def test_unmet_requirement_is_rejected_before_anything_runs():
    calls = []

    def needs_tiles(g, cfg):
        calls.append("needs")
        return g

    with throwaway_pass("test-needs-tiles-3f9a", needs_tiles, requires={"tiled"}):
        with pytest.raises(CompilerError) as info:
            run_pipeline(dense(), CFG, ["assign-quant-types", "test-needs-tiles-3f9a"])
        message = str(info.value)
        assert "'test-needs-tiles-3f9a' requires tiled" in message
        assert "assign-quant-types, test-needs-tiles-3f9a" in message
        assert not isinstance(info.value, PassError)
        assert calls == []
    assert "test-needs-tiles-3f9a" not in PASSES


def test_requirement_met_by_an_earlier_pass():
    def marks(g, cfg):
        return g

    def needs_mark(g, cfg):
        return g

    with (
        throwaway_pass("test-provide-marked-3f9a", marks, provides={"marked"}),
        throwaway_pass("test-needs-marked-3f9a", needs_mark, requires={"marked", "typed"}),
    ):
        order = ["assign-quant-types", "test-provide-marked-3f9a", "test-needs-marked-3f9a"]
        g = run_pipeline(dense(), CFG, order)
        assert {"dense", "typed", "marked"} <= g.properties
        # the same passes in the wrong order fail the check
        with pytest.raises(CompilerError, match="requires marked"):
            resolve_pipeline([order[0], order[2], order[1]], dense().properties)
        with pytest.raises(CompilerError, match="requires typed"):
            resolve_pipeline(order[1:], dense().properties)


def test_assign_quant_types_requires_a_dense_graph():
    g = dense()
    g.properties = frozenset()
    with pytest.raises(CompilerError, match="'assign-quant-types' requires dense"):
        run_pipeline(g, CFG, DEFAULT_PIPELINE)


def test_unknown_and_repeated_passes():
    with pytest.raises(CompilerError, match="unknown pass 'no-such-pass'"):
        resolve_pipeline(["no-such-pass"], frozenset({"dense"}))
    with pytest.raises(CompilerError, match="'assign-quant-types' appears twice"):
        resolve_pipeline(["assign-quant-types", "assign-quant-types"], frozenset({"dense"}))


def test_empty_pipeline_returns_the_input_verified():
    g = dense()
    assert run_pipeline(g, CFG, []) is g
    broken = dense()
    broken.nx_graph.remove_edge("l0.h0.load_q", "l0.h0.qk")
    with pytest.raises(IRVerificationError, match=r"%l0\.h0\.qk"):
        run_pipeline(broken, CFG, [])


# -- failures inside passes -------------------------------------------------------------------


def test_exception_in_a_pass_becomes_pass_error():
    def explode(g, cfg):
        raise ZeroDivisionError("boom at l0.h1")

    with throwaway_pass("test-explode-3f9a", explode):
        with pytest.raises(PassError) as info:
            run_pipeline(dense(), CFG, ["assign-quant-types", "test-explode-3f9a"])
    err = info.value
    assert isinstance(err, CompilerError)
    assert err.pass_name == "test-explode-3f9a"
    assert err.ran_before == ["assign-quant-types"]
    assert isinstance(err.cause, ZeroDivisionError)
    assert isinstance(err.__cause__, ZeroDivisionError)
    assert str(err) == ("pass 'test-explode-3f9a' failed (after assign-quant-types): boom at l0.h1")


def test_first_pass_failure_says_nothing_ran_before():
    def explode(g, cfg):
        raise ValueError("bad")

    with throwaway_pass("test-explode-first-3f9a", explode):
        with pytest.raises(
            PassError,
            match=r"^pass 'test-explode-first-3f9a' failed "
            r"\(after nothing\): bad$",
        ):
            run_pipeline(dense(), CFG, ["test-explode-first-3f9a"])


def test_pass_producing_invalid_ir_is_caught_and_named():
    def break_graph(g, cfg):
        g.nx_graph.remove_edge("l1.h1.load_q", "l1.h1.qk")
        return g

    with throwaway_pass("test-break-3f9a", break_graph):
        with pytest.raises(PassError) as info:
            run_pipeline(dense(), CFG, ["test-break-3f9a"])
    assert info.value.pass_name == "test-break-3f9a"
    assert isinstance(info.value.cause, IRVerificationError)
    message = str(info.value)
    assert "pass 'test-break-3f9a' failed" in message
    assert "%l1.h1.qk" in message and "^^^" in message and "origin: test:toy" in message


def test_failing_pass_leaves_the_callers_graph_alone():
    def mutate_then_fail(g, cfg):
        g.nx_graph.remove_node("l0.concat")
        g.set_op("l0.h0.scale", dataclasses.replace(g.op("l0.h0.scale"), factor=9.0), "x")
        raise RuntimeError("late failure")

    g = dense()
    before = print_ir(g)
    with throwaway_pass("test-mutate-3f9a", mutate_then_fail):
        with pytest.raises(PassError, match="late failure"):
            run_pipeline(g, CFG, ["test-mutate-3f9a"])
    assert print_ir(g) == before


def test_verification_can_be_switched_off():
    def break_graph(g, cfg):
        g.nx_graph.remove_edge("l1.h1.load_q", "l1.h1.qk")
        return g

    with throwaway_pass("test-break-nocheck-3f9a", break_graph):
        g = run_pipeline(dense(), CFG, ["test-break-nocheck-3f9a"], check=False)
    assert "l1.h1.load_q" not in g.operands("l1.h1.qk")


# -- purity and dumps -------------------------------------------------------------------------


def test_callers_graph_unchanged_after_the_default_pipeline():
    for spec in (SPEC, PRESETS["smollm2-135m"]):
        cfg = config_from_dict({"model": {"seq_len": 6}, "quantization": {"v_bits": 7}})
        g = build_attention_graph(spec, cfg)
        before = print_ir(g)
        origins = {n: g.origin(n) for n in g.nx_graph}
        edges = {(u, v): dict(d) for u, v, d in g.nx_graph.edges(data=True)}
        out = run_pipeline(g, cfg, DEFAULT_PIPELINE)
        assert print_ir(g) == before
        assert {n: g.origin(n) for n in g.nx_graph} == origins
        assert {(u, v): d for u, v, d in g.nx_graph.edges(data=True)} == edges
        assert print_ir(out) != before


def test_dump_ir_after_all(tmp_path):
    g = dense()
    dump = tmp_path / "dumps" / "nested"
    out = run_pipeline(g, CFG, DEFAULT_PIPELINE, dump_dir=dump)
    names = sorted(p.name for p in dump.iterdir())
    expected = ["00-input.ir.txt"] + [
        f"{i:02d}-{name}.ir.txt" for i, name in enumerate(DEFAULT_PIPELINE, start=1)
    ]
    assert names == expected
    assert "01-assign-quant-types.ir.txt" in names
    assert (dump / "00-input.ir.txt").read_text(encoding="utf-8") == print_ir(g)
    last = dump / expected[-1]
    assert last.read_text(encoding="utf-8") == print_ir(out)
    assert "bits=12" in (dump / "01-assign-quant-types.ir.txt").read_text(encoding="utf-8")


def test_dump_numbers_follow_the_pipeline(tmp_path):
    def noop(g, cfg):
        return g

    with throwaway_pass("test-noop-3f9a", noop):
        run_pipeline(dense(), Config(), ["assign-quant-types", "test-noop-3f9a"], dump_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "00-input.ir.txt",
        "01-assign-quant-types.ir.txt",
        "02-test-noop-3f9a.ir.txt",
    ]
    assert (tmp_path / "01-assign-quant-types.ir.txt").read_bytes() == (
        tmp_path / "02-test-noop-3f9a.ir.txt"
    ).read_bytes()
