"""No input string can add a command, a key or a line of code to a generated file.

The Vitis flow sources `run_hls.tcl`, reads `hls_config.cfg` and compiles the sources; the
strings that reach them (the part, the model's name from a file or directory name) are either
validated (the part) or normalized to identifiers (names), and every substitution is checked
against what is inert in its target language (codegen/env.py). Where Tcl is installed, the
generated script is sourced with Vivado's commands stubbed, to see that it runs nothing else.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spatten_hls.compiler.cli.main import main
from spatten_hls.compiler.codegen.env import render
from spatten_hls.compiler.codegen.lower import project_context
from spatten_hls.compiler.codegen.project import FLOW_VERSIONS
from spatten_hls.compiler.config import config_from_dict, load_config
from spatten_hls.compiler.errors import CodegenError

HOSTILE = 'x]; exec touch pwned; #\nsyn.top=evil\n*/ system("id"); //\\'
TCL_STUBS = """
set ran {}
foreach command {open_project set_top add_files open_solution set_part create_clock
                 config_interface csim_design csynth_design cosim_design export_design} {
    proc $command args [list lappend ::ran $command]
}
rename exec real_exec
proc exec args { puts "EXEC $args"; exit 3 }
rename exit real_exit
proc exit args { puts "RAN $::ran"; real_exit 0 }
set argv {}
source run_hls.tcl
"""


@pytest.fixture(scope="module")
def hostile_project(tmp_path_factory) -> Path:
    """A project compiled from a config.json in a directory named like an attack."""
    root = tmp_path_factory.mktemp("inject")
    model_dir = root / HOSTILE.replace("/", "_")
    model_dir.mkdir()
    (model_dir / "config.json").write_text(
        '{"model_type": "gpt2", "n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 32}'
    )
    config = root / "c.toml"
    config.write_text("[model]\nseq_len = 4\n")
    assert main(["compile", str(model_dir), "--config", str(config), "-o", str(root / "prj")]) == 0
    return root / "prj"


def test_a_hostile_model_name_becomes_an_identifier(hostile_project: Path) -> None:
    for path in hostile_project.rglob("*"):
        if path.is_file() and path.suffix in (".tcl", ".cfg", ".cpp", ".h", ".md", ".toml"):
            text = path.read_text()
            assert "exec touch" not in text and "syn.top=evil" not in text, path
            assert 'system("id")' not in text, path
    # The IR text keeps the source path (free text) in its origins, escaped onto each line.
    ir_lines = (hostile_project / "ir" / "final.ir.txt").read_text().splitlines()
    assert all(line.startswith(("//", "%")) for line in ir_lines)
    params = (hostile_project / "src" / "params.h").read_text()
    assert params.startswith("// Configuration of the x-exec-touch-pwned-syn.top-evil-")


def test_hls_config_holds_only_its_own_keys(hostile_project: Path) -> None:
    keys = {
        line.split("=", 1)[0]
        for line in (hostile_project / "hls_config.cfg").read_text().splitlines()
        if line and not line.startswith(("#", "["))
    }
    assert keys == {
        "part",
        "flow_target",
        "package.output.format",
        "clock",
        "syn.top",
        "syn.file",
        "syn.file_cflags",
        "tb.file",
        "tb.file_cflags",
    }


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="no tclsh")
def test_sourcing_run_hls_tcl_runs_only_the_vitis_flow(hostile_project: Path) -> None:
    done = subprocess.run(
        ["tclsh"], input=TCL_STUBS, cwd=hostile_project, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "EXEC" not in done.stdout
    assert done.stdout.strip() == (
        "RAN open_project set_top add_files add_files add_files "
        "open_solution set_part create_clock config_interface "
        "csim_design csynth_design cosim_design export_design"
    )
    assert not (hostile_project / "pwned").exists()


@pytest.fixture(scope="module")
def context(design_factory):
    graph, _ = design_factory.compile(
        {
            "model": {
                "name": "inj",
                "family": "llama",
                "layers": 1,
                "heads": 2,
                "kv_heads": 1,
                "head_dim": 8,
            },
            "config": {"model": {"seq_len": 4}},
        }
    )
    return project_context(graph)


@pytest.mark.parametrize(
    ("template", "field"),
    [
        ("run_hls.tcl.j2", "part"),
        ("hls_config.cfg.j2", "part"),
        ("params.h.j2", "model"),
        ("top.cpp.j2", "top"),
        ("Makefile.j2", "sources"),
        ("link.cfg.j2", "model"),
    ],
)
def test_the_renderer_refuses_a_string_that_is_not_inert(context, template, field) -> None:
    """Even a value that slipped past validation cannot reach a generated file."""
    good = {
        "ctx": context,
        "sources": ("spatten_top.cpp",),
        "cxxflags": "-O1",
        "ports": [],
        "scalars": (),
        "versions": FLOW_VERSIONS,
    }
    if template == "link.cfg.j2":
        good |= {
            "versions": FLOW_VERSIONS["link"],
            "connections": [],
            "shared": False,
            "channels": 32,
            "bundles": 0,
            "freq_hz": 300_000_000,
            "platform": "xilinx_u280_gen3x16_xdma_1_202211_1",
        }
    render(template, **good)
    bad = (
        dict(good, sources=(HOSTILE,))
        if field == "sources"
        else dict(good, ctx=dataclasses.replace(context, **{field: HOSTILE}))
    )
    with pytest.raises(CodegenError, match="refusing to substitute"):
        render(template, **bad)


FRACTIONS = st.sampled_from([1e-6, 0.001, 0.1, 0.25, 1 / 3, 0.5, 0.7, 0.999999, 1.0])


@settings(max_examples=60, deadline=None)
@given(
    keep=FRACTIONS,
    per_layer=st.lists(FRACTIONS, min_size=1, max_size=4),
    part=st.from_regex(r"[A-Za-z0-9]{1,8}(-[A-Za-z0-9]{1,6}){0,3}", fullmatch=True),
    clock=st.floats(1.0, 1000.0),
    seq_len=st.integers(1, 32768),
    stage=st.sampled_from(["summarization", "generation"]),
)
def test_every_accepted_config_round_trips_through_its_toml(
    keep, per_layer, part, clock, seq_len, stage
) -> None:
    cfg = config_from_dict(
        {
            "model": {"seq_len": seq_len, "stage": stage},
            "token_pruning": {"keep": keep, "keep_per_layer": sorted(per_layer, reverse=True)},
            "quantization": {"requant_threshold": keep},
            "hardware": {"part": part, "clock_mhz": clock},
        }
    )
    again = config_from_dict(__import__("tomllib").loads(cfg.to_toml()))
    assert again.to_dict() == cfg.to_dict()


def test_report_reads_back_the_project_config(capsys, hostile_project: Path) -> None:
    saved = load_config(hostile_project / "config.toml")
    assert saved.model.seq_len == 4
    assert main(["report", str(hostile_project)]) == 0
    assert "latency" in capsys.readouterr().out


@pytest.mark.csim
def test_csim_works_in_a_path_with_spaces_quotes_and_unicode(
    capsys, hostile_project: Path, tmp_path: Path
) -> None:
    odd = tmp_path / 'my "proj" ü $(x) \\ `y`'
    shutil.copytree(hostile_project, odd)
    assert main(["csim", str(odd)]) == 0, capsys.readouterr()
    assert capsys.readouterr().out.strip().endswith("1 layer + pruning state: 2 passed, 0 failed")
