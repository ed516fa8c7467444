"""The reduced golden run of `spatten compile --cosim-size` (compiler/codegen/cosim_run.py):
which layer, how many tokens, and the run extent's bounds. Bit-exactness of reduced runs
through the emitted design is in test_csim_bitexact.py; the testbench binary on a cosim-size
project in tests/cli/test_cli_codegen.py."""

from __future__ import annotations

import numpy as np
import pytest

from spatten_hls.compiler.codegen.cosim_run import COSIM_TOKENS, cosim_extent, describe
from spatten_hls.compiler.codegen.lower import project_context
from spatten_hls.compiler.codegen.project import project_files
from spatten_hls.compiler.codegen.vectors import golden_vectors
from spatten_hls.compiler.errors import SimulationError
from spatten_hls.compiler.sim import RunExtent
from tests.codegen.conftest import compile_case


def case(stage: str = "summarization", **token_pruning) -> dict:
    model = {"seq_len": 96}
    if stage == "generation":
        model.update(stage="generation", seq_len=80, gen_tokens=16)
    config = {"model": model}
    if token_pruning:
        config["token_pruning"] = {"enabled": True, **token_pruning}
    return {
        "model": {"family": "gpt2", "layers": 6, "heads": 2, "head_dim": 16},
        "config": config,
    }


def test_the_run_is_the_first_layer_that_selects_tokens() -> None:
    """The paper's ramp keeps the first skip_first of the layers dense: the run skips them."""
    graph, _ = compile_case(case(keep=0.5, skip_first=0.34))
    ctx = project_context(graph)
    first = next(
        i
        for i, (n, d) in enumerate(zip(ctx.token_keep_num, ctx.token_keep_den, strict=True))
        if n < d
    )
    assert first == 3  # ceil(0.34 * 6) dense layers
    assert cosim_extent(ctx) == RunExtent(first_layer=3, layers=1, seq_len=COSIM_TOKENS, steps=1)


def test_protected_tokens_lengthen_the_sequence_and_generation_takes_one_step() -> None:
    graph, _ = compile_case(
        case("generation", keep=0.5, skip_first=0.0, keep_first=4, keep_recent=8)
    )
    extent = cosim_extent(project_context(graph))
    assert extent == RunExtent(0, 1, COSIM_TOKENS + 12, 1)
    assert describe(extent, "generation") == "layer 0, a 44-token prompt, 1 decode step"
    vectors = golden_vectors(graph, seed=0, extent=extent)
    steps = vectors.result.steps
    assert [(s.layer, s.query_rows, s.keys) for s in steps] == [(0, 1, 45)]
    assert vectors.arrays["run"].tolist() == [0, 1, 44, 1]


def test_without_pruning_the_run_is_layer_0_of_a_short_sequence() -> None:
    graph, _ = compile_case(case())
    assert cosim_extent(project_context(graph)) == RunExtent(0, 1, COSIM_TOKENS, 1)


def test_a_cosim_size_project_differs_only_in_its_golden_data_and_readme() -> None:
    graph, cfg = compile_case(case(keep=0.5, skip_first=0.34))
    whole = project_files(graph, cfg.to_toml(), "<test>")
    reduced = project_files(graph, cfg.to_toml(), "<test>", cosim_size=True)
    assert whole.keys() == reduced.keys()
    differ = sorted(p for p in whole if whole[p] != reduced[p])
    data = {"tb/data/out.bin", "tb/data/run.bin", "tb/data/state.bin"}
    assert set(differ) == data | {"README.md"}
    for path in ("q.bin", "k_msb.bin", "v.bin", "mult.bin"):  # the same inputs, all layers
        assert whole[f"tb/data/{path}"] == reduced[f"tb/data/{path}"]
    assert np.frombuffer(reduced["tb/data/run.bin"], "<i8").tolist() == [3, 1, 32, 1]
    assert np.frombuffer(whole["tb/data/run.bin"], "<i8").tolist() == [0, 6, 96, 1]
    # the performance estimate in both READMEs is the whole stage's
    estimate = whole["README.md"].split(b"## Performance estimate")[1].split(b"## Checking")[0]
    assert estimate in reduced["README.md"]


@pytest.mark.parametrize(
    ("extent", "message"),
    [
        (RunExtent(6, 1, 8, 1), "first_layer = 6 is outside [0, 5]"),
        (RunExtent(4, 3, 8, 1), "layers = 3 is outside [1, 2]"),
        (RunExtent(0, 1, 97, 1), "seq_len = 97 is outside [1, 96]"),
        (RunExtent(0, 1, 8, 2), "steps = 2 is outside [1, 1]"),
    ],
)
def test_an_extent_outside_the_stage_is_refused(extent: RunExtent, message: str) -> None:
    graph, _ = compile_case(case())
    with pytest.raises(SimulationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        golden_vectors(graph, extent=extent)


def test_a_generation_extent_stops_at_the_cache_end() -> None:
    graph, _ = compile_case(case("generation"))
    golden_vectors(graph, extent=RunExtent(0, 6, 70, 26))  # positions 70..95: the last one
    with pytest.raises(SimulationError, match=r"steps = 27 is outside \[1, 26\]"):
        golden_vectors(graph, extent=RunExtent(0, 6, 70, 27))
