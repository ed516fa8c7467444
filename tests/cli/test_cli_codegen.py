"""`spatten compile` and `spatten csim`: what is written, the error contract (one `error:` line,
exit 1, nothing half-written left behind), `--force`, and C-simulation verdicts. Runs
`main()` in-process on a tiny decoder given as a Hugging Face config.json."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from spatten_hls.compiler.cli.main import main
from spatten_hls.compiler.codegen.counters import ENGINES

MODEL_JSON = '{"model_type": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 128}'
CONFIG = """[model]
seq_len = 12
[token_pruning]
enabled = true
skip_first = 0.0
keep_recent = 1
[value_pruning]
enabled = true
[quantization]
progressive = true
requant_threshold = 0.3
"""
LAYERS = 2


def run_cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "tiny-gpt2.json"
    model.write_text(MODEL_JSON)
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG)
    return model, config


def entries(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def is_project(directory: Path) -> bool:
    return all(
        (directory / p).is_file()
        for p in (
            "src/spatten_top.cpp",
            "src/params.h",
            "tb/tb_spatten_top.cpp",
            "tb/data/out.bin",
            "run_hls.tcl",
            "hls_config.cfg",
            "Makefile",
            "README.md",
            "config.toml",
            "ir/final.ir.txt",
        )
    )


# -- compile ---------------------------------------------------------------------------------


def test_compile_into_a_new_directory(capsys, tmp_path: Path, inputs) -> None:
    model, config = inputs
    before = entries(tmp_path)
    out_dir = tmp_path / "prj"
    code, out, err = run_cli(capsys, "compile", model, "--config", config, "-o", out_dir)
    assert code == 0 and err == ""
    assert out.startswith(f"wrote {out_dir} (") and "files)" in out
    assert is_project(out_dir)
    assert b"NUM_LAYERS = 2;" in (out_dir / "src" / "params.h").read_bytes()
    assert entries(tmp_path) == before | {"prj"}  # no staging directories left over


def test_compile_into_an_existing_empty_directory(capsys, tmp_path: Path, inputs) -> None:
    model, config = inputs
    (tmp_path / "empty").mkdir()
    code, out, _ = run_cli(capsys, "compile", model, "--config", config, "-o", tmp_path / "empty")
    assert code == 0 and "wrote" in out and is_project(tmp_path / "empty")


def test_compile_into_the_current_directory(
    capsys, tmp_path: Path, inputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-o .` names the directory by its real path (it has no name of its own)."""
    model, config = inputs
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    before = entries(tmp_path)
    code, out, err = run_cli(capsys, "compile", model, "--config", config, "-o", ".")
    assert (code, err) == (0, "") and out.startswith("wrote . (")
    assert is_project(here) and entries(tmp_path) == before
    code, _, err = run_cli(capsys, "compile", model, "--config", config, "-o", ".")
    assert code == 1
    assert_one_error(err, "not empty")
    # The working directory cannot be swapped for a new one in one step: --force is refused
    # (from the parent it works) and the project stays as it was.
    (here / "stale.txt").write_text("old")
    old = {p: p.read_bytes() for p in here.rglob("*") if p.is_file()}
    code, out, err = run_cli(capsys, "compile", model, "--config", config, "-o", ".", "--force")
    assert code == 1 and out == ""
    assert_one_error(err, "current directory", "-o here --force")
    assert {p: p.read_bytes() for p in here.rglob("*") if p.is_file()} == old
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "compile", model, "--config", config, "-o", "here", "--force")
    assert (code, err) == (0, "") and "wrote" in out
    assert is_project(here) and not (here / "stale.txt").exists()
    assert entries(tmp_path) == before


def test_compile_refuses_a_non_empty_directory(capsys, tmp_path: Path, inputs) -> None:
    model, config = inputs
    out_dir = tmp_path / "prj"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("mine")
    before = entries(tmp_path)
    code, out, err = run_cli(capsys, "compile", model, "--config", config, "-o", out_dir)
    assert code == 1 and out == ""
    assert_one_error(err, str(out_dir), "not empty", "--force")
    assert entries(out_dir) == {"keep.txt"} and (out_dir / "keep.txt").read_text() == "mine"
    assert entries(tmp_path) == before


def test_force_replaces_the_directory_completely(capsys, tmp_path: Path, inputs) -> None:
    model, config = inputs
    out_dir = tmp_path / "prj"
    (out_dir / "src").mkdir(parents=True)
    (out_dir / "stale.txt").write_text("old")
    (out_dir / "src" / "old_engine.h").write_text("old")
    before = entries(tmp_path)
    code, out, err = run_cli(capsys, "compile", model, "--config", config, "-o", out_dir, "--force")
    assert code == 0 and err == "" and "wrote" in out
    assert is_project(out_dir)
    assert not (out_dir / "stale.txt").exists()
    assert not (out_dir / "src" / "old_engine.h").exists()
    assert entries(tmp_path) == before  # neither the staging nor the old tree is left


def test_compile_into_a_missing_parent_fails(capsys, tmp_path: Path, inputs) -> None:
    model, config = inputs
    before = entries(tmp_path)
    code, out, err = run_cli(
        capsys, "compile", model, "--config", config, "-o", tmp_path / "missing" / "prj"
    )
    assert code == 1 and out == ""
    assert_one_error(err, "does not exist")
    assert entries(tmp_path) == before


@pytest.mark.parametrize(
    ("config_text", "fragments"),
    [
        ("[model]\nseq_len = 12\n[hardware]\nhead_dim = 8\n", ("head_dim",)),
        (
            "[model]\nseq_len = 12\n[quantisation]\nq_bits = 8\n",
            ("unknown section", "quantisation"),
        ),
        ("[model]\nseq_len = 500\n", ("model.seq_len", "500")),
        ("[model]\nseq_len = 12\n[quantization]\nq_bits = 40\n", ("quantization.q_bits", "40")),
    ],
    ids=["head-dim-over-hardware", "unknown-section", "seq-over-positions", "bits-out-of-range"],
)
def test_a_failed_compile_leaves_nothing_behind(
    capsys, tmp_path: Path, inputs, config_text: str, fragments: tuple[str, ...]
) -> None:
    model, _ = inputs
    config = tmp_path / "bad.toml"
    config.write_text(config_text)
    before = entries(tmp_path)
    out_dir = tmp_path / "prj"
    code, out, err = run_cli(capsys, "compile", model, "--config", config, "-o", out_dir)
    assert code == 1 and out == ""
    assert_one_error(err, *fragments)
    assert not out_dir.exists()
    assert entries(tmp_path) == before  # no temp directories in the parent


def test_a_failed_force_compile_keeps_the_old_project(capsys, tmp_path: Path, inputs) -> None:
    model, config = inputs
    out_dir = tmp_path / "prj"
    assert run_cli(capsys, "compile", model, "--config", config, "-o", out_dir)[0] == 0
    old = {p: p.read_bytes() for p in out_dir.rglob("*") if p.is_file()}
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nseq_len = 12\n[hardware]\nhead_dim = 8\n")
    before = entries(tmp_path)
    code, _, err = run_cli(capsys, "compile", model, "--config", bad, "-o", out_dir, "--force")
    assert code == 1
    assert_one_error(err)
    assert {p: p.read_bytes() for p in out_dir.rglob("*") if p.is_file()} == old
    assert entries(tmp_path) == before


# -- csim ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-csim")
    model, config = root / "tiny-gpt2.json", root / "tiny.toml"
    model.write_text(MODEL_JSON)
    config.write_text(CONFIG)
    out_dir = root / "prj"
    assert main(["compile", str(model), "--config", str(config), "-o", str(out_dir)]) == 0
    return out_dir


@pytest.mark.csim
def test_csim_passes_and_reports_in_text_and_json(capsys, project: Path) -> None:
    """The text output and one JSON object on stdout (the two C-simulations run side by side,
    each its own `spatten csim` process); the JSON's bytes are the simulator's per plane (the
    model of the design's traffic) and the text states the same numbers."""
    command = [sys.executable, "-m", "spatten_hls.compiler.cli.main", "csim", str(project)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        text, as_json = pool.map(
            lambda extra: subprocess.run(
                command + extra, capture_output=True, text=True, timeout=600
            ),
            ([], ["--json"]),
        )
    assert text.returncode == 0, text.stdout + text.stderr
    lines = text.stdout.strip().splitlines()
    assert lines[0] == f"golden run: layers 0-{LAYERS - 1}, seq_len 12, steps 1"
    lines = lines[1:]
    assert lines[0].startswith("DRAM bytes at the ports: ") and "k_msb " in lines[0]
    assert lines[1].startswith("cycles (estimate from the loop nest") and "qk " in lines[1]
    assert lines[2] == f"{LAYERS} layers + pruning state: {LAYERS + 1} passed, 0 failed"
    assert len(lines) == 3

    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert set(doc) == {"passed", "failed", "run", "dram_bytes", "cycles"}
    assert (doc["passed"], doc["failed"]) == (LAYERS + 1, 0)
    assert doc["run"] == {"first_layer": 0, "layers": LAYERS, "seq_len": 12, "steps": 1}
    ports = ("q", "k_msb", "k_lsb", "v", "out", "state", "params")
    assert list(doc["dram_bytes"]) == [*ports, "total"]
    assert doc["dram_bytes"]["total"] == sum(doc["dram_bytes"][p] for p in ports)
    assert all(doc["dram_bytes"][p] % 32 == 0 for p in ports[:5])  # codes: 256-bit beats
    assert list(doc["cycles"]) == [*ENGINES, "total"]
    assert doc["cycles"]["total"] >= max(doc["cycles"][e] for e in ENGINES) > 0
    assert f"DRAM bytes at the ports: {doc['dram_bytes']['total']:,} " in lines[0]
    assert f"k_msb {doc['dram_bytes']['k_msb']:,}" in lines[0]
    assert f": {doc['cycles']['total']:,}; " in lines[1]

    root = project.parent  # the model and config the project was compiled from, seed 0
    code, out, _ = run_cli(
        capsys, "simulate", root / "tiny-gpt2.json", "--config", root / "tiny.toml", "--json"
    )
    assert code == 0
    simulated = json.loads(out)["dram_bytes"]
    for plane in ("q", "k_msb", "k_lsb", "v"):
        assert doc["dram_bytes"][plane] == simulated[plane], plane
    assert doc["dram_bytes"]["k_lsb"] < doc["dram_bytes"]["k_msb"]  # progressive: on demand


@pytest.mark.csim
def test_csim_fails_on_a_corrupted_golden_file(capsys, tmp_path: Path, project: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(project, broken)
    state = broken / "tb" / "data" / "state.bin"
    data = bytearray(state.read_bytes())
    data[0] ^= 0x01  # token 0's dropped_at
    state.write_bytes(bytes(data))
    code, out, _ = run_cli(capsys, "csim", broken)
    assert code == 1
    assert "pruning state: 1 of" in out
    assert (
        out.strip().splitlines()[-1] == f"{LAYERS} layers + pruning state: {LAYERS} passed, "
        "1 failed"
    )


@pytest.mark.csim
def test_a_cosim_size_project_runs_one_layer_of_the_same_design(
    capsys, tmp_path: Path, project: Path
) -> None:
    """`--cosim-size`: the same design (sources byte for byte, so the testbench build is the
    cached one) with the golden run of one layer; it passes csim bit-exact and moves fewer
    bytes than the whole stage. A 12-token sequence is shorter than the reduced run's
    ceiling, so all 12 tokens stay; the generation case in test_cosim_run.py shortens one."""
    root = project.parent
    reduced = tmp_path / "cosim"
    args = ["compile", root / "tiny-gpt2.json", "--config", root / "tiny.toml", "-o", reduced]
    code, _, _ = run_cli(capsys, *args, "--cosim-size")
    assert code == 0
    for source in ("src/spatten_top.cpp", "src/params.h", "tb/tb_spatten_top.cpp", "tb/host.h"):
        assert (reduced / source).read_bytes() == (project / source).read_bytes(), source
    assert (reduced / "tb/data/q.bin").stat().st_size == (project / "tb/data/q.bin").stat().st_size
    readme = (reduced / "README.md").read_text()
    assert "the reduced run of `spatten compile --cosim-size`" in readme
    assert "(layer 0, 12 tokens: 1 invocation of `spatten_top`," in readme

    code, out, _ = run_cli(capsys, "csim", reduced, "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert (doc["passed"], doc["failed"]) == (2, 0)  # layer 0 + the pruning state
    assert doc["run"] == {"first_layer": 0, "layers": 1, "seq_len": 12, "steps": 1}
    code, out, _ = run_cli(capsys, "csim", project, "--json")
    whole = json.loads(out)["dram_bytes"]
    assert 0 < doc["dram_bytes"]["k_msb"] < whole["k_msb"]

    run_bin = reduced / "tb" / "data" / "run.bin"
    run_bin.write_bytes(np.array([0, LAYERS + 1, 12, 1], dtype="<i8").tobytes())
    code, out, err = run_cli(capsys, "csim", reduced)
    assert code == 1
    assert_one_error(err, "run.bin names a run outside this design's stage")


def test_csim_on_a_directory_that_is_no_project(capsys, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a project")
    code, out, err = run_cli(capsys, "csim", tmp_path)
    assert code == 1 and out == ""
    assert_one_error(err, str(tmp_path), "not a spatten-hls project")


def test_csim_on_a_missing_directory(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "csim", tmp_path / "nowhere")
    assert code == 1
    assert_one_error(err, "nowhere")
