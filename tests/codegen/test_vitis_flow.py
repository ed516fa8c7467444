"""The generated project's Vitis flows, run against stub `v++`, `vitis-run` and `vitis_hls`
executables that record their arguments, fail on a file the command names that is missing,
and write the outputs the real tools would (csynth.xml, the .xo), so the targets that follow
find them. Also: link.cfg's syntax, and every m_axi depth against the arrays in params.h."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from spatten_hls.compiler.codegen.project import project_files
from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.driver import compile_spec
from spatten_hls.compiler.frontend.model import ModelSpec

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")

STUB = textwrap.dedent(
    r'''
    #!PYTHON
    """A stand-in for a Vitis tool: records the call, checks the files it is given."""
    import json, os, re, sys
    from pathlib import Path

    tool, args = Path(sys.argv[0]).name, sys.argv[1:]
    with open(os.environ["STUB_LOG"], "a") as log:
        log.write(json.dumps({"tool": tool, "args": args}) + "\n")

    def need(path):
        if not Path(path).exists():
            sys.exit(f"{tool}: no such file: {path}")

    def value(flag):
        return args[args.index(flag) + 1]

    def cfg_files(cfg):
        for line in Path(cfg).read_text().splitlines():
            m = re.match(r"(syn|tb)\.file(?:_cflags)?=([^,]+)", line)
            if m:
                need(m.group(2))

    if tool == "v++" and "-c" in args:
        cfg, work = value("--config"), value("--work_dir")
        need(cfg); cfg_files(cfg)
        report = Path(work, "hls", "syn", "report")
        report.mkdir(parents=True, exist_ok=True)
        (report / "csynth.xml").write_text("<profile/>")
    elif tool == "vitis-run":
        cfg, work = value("--config"), value("--work_dir")
        need(cfg); cfg_files(cfg)
        need(Path(work, "hls", "syn", "report", "csynth.xml"))  # a compiled component
        if "--package" in args:
            Path(work, "spatten_top.xo").write_text("xo")
    elif tool == "vitis_hls":
        tcl = value("-f"); need(tcl)
        for m in re.finditer(r"add_files (?:-tb )?(\S+)", Path(tcl).read_text()):
            need(m.group(1))
        steps = args[args.index("-tclargs") + 1:] if "-tclargs" in args else []
        solution = Path("spatten_top_prj", "solution1")
        if "csynth" in steps:
            (solution / "syn" / "report").mkdir(parents=True, exist_ok=True)
            (solution / "syn" / "report" / "csynth.xml").write_text("<profile/>")
        if "cosim" in steps or "export" in steps:
            need(solution / "syn" / "report" / "csynth.xml")
        if "export" in steps:
            (solution / "impl").mkdir(parents=True, exist_ok=True)
            (solution / "impl" / "export.xo").write_text("xo")
    elif tool == "v++" and "-l" in args:
        need(value("--config"))
        xo = [a for a in args if a.endswith(".xo")]
        if len(xo) != 1:
            sys.exit(f"v++ -l: expected one .xo, got {xo}")
        need(xo[0])
        Path(value("-o")).write_text("xclbin")
    else:
        sys.exit(f"{tool}: unexpected call {args}")
    '''
).lstrip()

TINY = ModelSpec("tiny", "llama", 2, 4, 2, 16, 64, 1024, True, "test")


def write_project(directory: Path, doc: dict) -> dict[str, bytes]:
    cfg = config_from_dict(doc)
    files = project_files(compile_spec(TINY, cfg).graph, cfg.to_toml(), "test.toml")
    for name, data in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("project")
    write_project(directory, {"model": {"seq_len": 8}})
    return directory


@pytest.fixture
def stubs(tmp_path) -> tuple[dict, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("v++", "vitis-run", "vitis_hls"):
        path = bin_dir / tool
        path.write_text(STUB.replace("PYTHON", sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.jsonl"
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", STUB_LOG=str(log))
    return env, log


def run_make(project: Path, tmp_path: Path, env: dict, *targets: str) -> Path:
    work = tmp_path / "run"
    shutil.copytree(project, work)
    done = subprocess.run(
        ["make", "--no-print-directory", *targets],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return work


def calls(log: Path) -> list[tuple[str, list[str]]]:
    return [(c["tool"], c["args"]) for c in map(json.loads, log.read_text().splitlines())]


CFG = ["--config", "hls_config.cfg", "--work_dir", "spatten_top_hls"]
LINK = [
    "-l",
    "-t",
    "hw",
    "--platform",
    "xilinx_u280_gen3x16_xdma_1_202211_1",
    "--config",
    "link.cfg",
]


def test_unified_flow_runs_the_documented_commands(project, tmp_path, stubs):
    env, log = stubs
    run_make(
        project,
        tmp_path,
        env,
        "cosim",
        "export",
        "xclbin",
        "PLATFORM=xilinx_u280_gen3x16_xdma_1_202211_1",
    )
    assert calls(log) == [
        ("v++", ["-c", "--mode", "hls", *CFG]),  # cosim needs a synthesized component first
        ("vitis-run", ["--mode", "hls", "--cosim", *CFG]),
        ("vitis-run", ["--mode", "hls", "--package", *CFG]),
        ("v++", [*LINK, "spatten_top_hls/spatten_top.xo", "-o", "spatten_top.xclbin"]),
    ]


def test_classic_flow_runs_the_documented_commands(project, tmp_path, stubs):
    env, log = stubs
    run_make(
        project,
        tmp_path,
        env,
        "VITIS_FLOW=classic",
        "csynth",
        "cosim",
        "xclbin",
        "PLATFORM=xilinx_u280_gen3x16_xdma_1_202211_1",
    )
    tcl = ["-f", "run_hls.tcl", "-tclargs"]
    assert calls(log) == [
        ("vitis_hls", [*tcl, "csynth"]),
        ("vitis_hls", [*tcl, "csynth", "cosim"]),
        ("vitis_hls", [*tcl, "csynth", "export"]),  # xclbin packages the kernel first
        ("v++", [*LINK, "spatten_top_prj/solution1/impl/export.xo", "-o", "spatten_top.xclbin"]),
    ]


def test_a_missing_source_fails_the_synthesis(project, tmp_path, stubs):
    env, log = stubs
    work = tmp_path / "broken"
    shutil.copytree(project, work)
    (work / "src" / "spatten_top.cpp").unlink()
    done = subprocess.run(["make", "csynth"], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "no such file: src/spatten_top.cpp" in done.stderr
    assert calls(log) == [("v++", ["-c", "--mode", "hls", *CFG])]  # and nothing after it


def test_xclbin_without_a_platform_is_one_error(project, tmp_path, stubs):
    env, log = stubs
    work = tmp_path / "p"
    shutil.copytree(project, work)
    done = subprocess.run(["make", "xclbin"], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "error: set PLATFORM" in done.stdout + done.stderr
    assert not log.exists()


def top_ports(project: Path) -> dict[str, tuple[str, int]]:
    """port -> (bundle, depth) from the top function's INTERFACE m_axi pragmas."""
    pragma = re.compile(
        r"#pragma HLS INTERFACE m_axi port = (\w+) offset = slave bundle = (\w+) depth = (\d+)"
    )
    text = (project / "src" / "spatten_top.cpp").read_text()
    return {m[1]: (m[2], int(m[3])) for m in pragma.finditer(text)}


def test_link_config_maps_every_m_axi_argument_once(project):
    text = (project / "link.cfg").read_text()
    section, entries = None, []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if re.fullmatch(r"\[(\w+)\]", line):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z]+", key), line  # key=value, as v++ reads it
        entries.append((section, key, value))
    assert ("connectivity", "nk", "spatten_top:1:spatten_top_1") in entries
    assert ("clock", "freqHz", "300000000:spatten_top_1") in entries
    sp = [v for s, k, v in entries if (s, k) == ("connectivity", "sp")]
    parsed = [re.fullmatch(r"spatten_top_1\.(\w+):HBM\[(\d+)\]", v) for v in sp]
    assert all(parsed), sp
    channel = {m[1]: int(m[2]) for m in parsed}
    ports = top_ports(project)
    assert sorted(channel) == sorted(ports) and len(sp) == len(ports)
    assert all(0 <= c < 32 for c in channel.values())
    by_bundle = {}
    for port, (bundle, _) in ports.items():
        by_bundle.setdefault(bundle, set()).add(channel[port])
    assert all(len(c) == 1 for c in by_bundle.values())  # a bundle is one AXI master
    lanes = [b for b in by_bundle if re.fullmatch(r"gmem_[kv]\d+", b)]
    assert len({next(iter(by_bundle[b])) for b in lanes}) == len(lanes)  # a channel each


def test_a_part_without_hbm_leaves_the_memory_mapping_to_the_user(tmp_path):
    write_project(tmp_path, {"model": {"seq_len": 8}, "hardware": {"part": "xcvu9p-flga2104-2L-e"}})
    lines = (tmp_path / "link.cfg").read_text().splitlines()
    assert "nk=spatten_top:1:spatten_top_1" in lines
    assert not [line for line in lines if line.startswith("sp=")]
    assert len([line for line in lines if line.startswith("# sp=spatten_top_1.")]) == len(
        top_ports(tmp_path)
    )


def params(project: Path) -> dict[str, int]:
    text = (project / "src" / "params.h").read_text()
    return {m[1]: int(m[2]) for m in re.finditer(r"static const int (\w+) = (\d+);", text)}


@pytest.mark.parametrize(
    "doc",
    [
        {"model": {"seq_len": 8}},
        {"model": {"seq_len": 6, "stage": "generation", "gen_tokens": 5}},
        {"model": {"seq_len": 12}, "hardware": {"max_tokens": 4}},  # tiled
        {
            "model": {"seq_len": 6, "stage": "generation", "gen_tokens": 4},
            "token_pruning": {"enabled": True, "policy": "current", "granularity": "kv_head"},
            "quantization": {"progressive": True},
        },
    ],
    ids=["summarization", "generation", "tiled", "generation-kv-head"],
)
def test_every_m_axi_depth_covers_the_array_the_design_touches(tmp_path, doc):
    """Co-simulation sizes each port's memory by its depth (csim ignores it): the arrays are
    [heads][MAX_CTX] rows of packed beats for Q and out, [kv_heads][MAX_CTX] rows (MSB, then
    LSB beats) for K and V, the token state, and one entry per head."""
    write_project(tmp_path, doc)
    p, ports = params(tmp_path), top_ports(tmp_path)
    q_rows, kv_rows = p["NUM_HEADS"] * p["MAX_CTX"], p["NUM_KV_HEADS"] * p["MAX_CTX"]
    expected = {
        "q": q_rows * p["Q_BEATS"],
        "out": q_rows * p["OUT_BEATS"],
        "token_dropped_at": p["TOKEN_STATE_ROWS"] * p["MAX_CTX"],
        "token_importance": p["TOKEN_STATE_ROWS"] * p["MAX_CTX"],
        "head_dropped_at": p["NUM_HEADS"],
        "head_importance": p["NUM_HEADS"],
        "mult": p["NUM_HEADS"],
        "shift": p["NUM_HEADS"],
        "v_weight": p["NUM_HEADS"],
        "requants": 1,
    }
    expected |= {
        f"k{i}": kv_rows * (p["K_MSB_BEATS"] + p["K_LSB_BEATS"]) for i in range(p["K_LANES"])
    }
    expected |= {f"v{i}": kv_rows * p["V_BEATS"] for i in range(p["V_LANES"])}
    assert {port: depth for port, (_, depth) in ports.items()} == expected
    if doc["model"].get("stage") == "generation":  # the context, not the prompt
        assert p["MAX_CTX"] == doc["model"]["seq_len"] + doc["model"]["gen_tokens"]
