"""The emitted HLS project: golden files, determinism, synthesizable sources, pragmas,
traceability of engine blocks to IR nodes, and the part / clock of the Vitis flows.

Golden files live in tests/golden/small_project/: every text file of the project verbatim,
and MANIFEST.sha256 (`sha256  path`, like sha256sum) for the binary golden vectors and the
JSON IR. `pytest --update-golden` rewrites them from the current output.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import re
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import networkx as nx
import pytest

from spatten_hls.compiler.codegen.project import project_files
from spatten_hls.compiler.codegen.toolchain import CXX, CXXFLAGS, ap_types_include
from spatten_hls.compiler.ir.plan import ENGINE_PARAMS, FETCH_FIFO_DEPTH

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "small_project"
MANIFEST = "MANIFEST.sha256"
# Generated text files are golden; the hand-written engines and host code are copied verbatim
# from templates/hls (checked against their source instead of duplicated here).
TEXT_FILES = (
    "src/*.cpp",
    "src/*.h",
    "src/engines/spatten_tables.h",
    "tb/tb_spatten_top.cpp",
    "tb/host_params.h",
    "Makefile",
    "run_hls.tcl",
    "hls_config.cfg",
    "link.cfg",
    "README.md",
    "config.toml",
    "ir/final.ir.txt",
)
TEMPLATES = REPO / "templates" / "hls"
COPIED = {
    **{f"src/engines/{p.name}": p for p in (TEMPLATES / "engines").glob("*.h")},
    "tb/host.h": TEMPLATES / "tb" / "host.h",
    "tb/ctypes_api.cpp": TEMPLATES / "tb" / "ctypes_api.cpp",
}
PART, CLOCK_MHZ = "xcvu9p-flga2104-2L-e", 250.0

CASE = {
    "model": {
        "name": "golden-small",
        "family": "llama",
        "layers": 2,
        "heads": 4,
        "kv_heads": 2,
        "head_dim": 16,
    },
    "config": {
        "model": {"seq_len": 12},
        "token_pruning": {
            "enabled": True,
            "keep": 0.5,
            "skip_first": 0.0,
            "keep_first": 1,
            "keep_recent": 2,
        },
        "head_pruning": {"enabled": True, "keep": 0.5, "skip_first": 0.0},
        "value_pruning": {"enabled": True, "keep": 0.5},
        "quantization": {"progressive": True, "requant_threshold": 0.3},
        "hardware": {"part": PART, "clock_mhz": CLOCK_MHZ, "max_tokens": 8},
    },
}


@pytest.fixture(scope="module")
def compiled(design_factory):
    return design_factory.compile(CASE)


@pytest.fixture(scope="module")
def files(compiled) -> dict[str, bytes]:
    graph, cfg = compiled
    return project_files(graph, cfg.to_toml(), "<test>", seed=0)


def is_text(path: str) -> bool:
    return any(
        fnmatch(path, pattern) and "/" not in path[len(pattern.split("*")[0]) :]
        for pattern in TEXT_FILES
    )


def manifest_of(files: dict[str, bytes]) -> str:
    return "".join(
        f"{hashlib.sha256(data).hexdigest()}  {path}\n"
        for path, data in sorted(files.items())
        if not is_text(path) and path not in COPIED
    )


def test_hand_written_files_are_copied_verbatim(files: dict[str, bytes]) -> None:
    assert {p for p in files if p in COPIED} == set(COPIED)
    for path, source in COPIED.items():
        assert files[path] == source.read_bytes(), path


def source_text(files: dict[str, bytes]) -> dict[str, str]:
    return {p: d.decode() for p, d in files.items() if p.startswith("src/")}


# -- golden files ------------------------------------------------------------------------------


def test_project_equals_golden_files(files: dict[str, bytes], update_golden: bool) -> None:
    assert {p for p in files if p.startswith("tb/data/")} >= {
        "tb/data/out.bin",
        "tb/data/state.bin",
    }
    text = {p: d for p, d in files.items() if is_text(p)}
    if update_golden:
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for path, data in text.items():
            (GOLDEN / path).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / path).write_bytes(data)
        (GOLDEN / MANIFEST).write_text(manifest_of(files))
    assert GOLDEN.is_dir(), "no golden files: run pytest --update-golden"
    stored = {p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*") if p.is_file()}
    assert stored - {MANIFEST} == set(text), "golden text files differ in names"
    for path, data in sorted(text.items()):
        expected = (GOLDEN / path).read_text()
        if data.decode() != expected:
            diff = difflib.unified_diff(
                expected.splitlines(),
                data.decode().splitlines(),
                f"golden/{path}",
                f"emitted/{path}",
                lineterm="",
                n=1,
            )
            pytest.fail(
                f"{path} differs from the golden file (pytest --update-golden "
                "rewrites it):\n" + "\n".join(list(diff)[:40])
            )
    assert (GOLDEN / MANIFEST).read_text() == manifest_of(files)


def test_manifest_covers_the_binary_files(files: dict[str, bytes]) -> None:
    hashed = [line.split("  ", 1)[1] for line in manifest_of(files).splitlines()]
    data = sorted(p for p in files if p.startswith("tb/data/"))
    assert len(data) >= 9 and set(data) <= set(hashed)
    assert set(hashed) | {p for p in files if is_text(p)} | set(COPIED) == set(files)


# -- determinism -------------------------------------------------------------------------------


def test_project_files_are_deterministic(compiled, files: dict[str, bytes]) -> None:
    graph, cfg = compiled
    assert project_files(graph, cfg.to_toml(), "<test>", seed=0) == files
    other = project_files(graph, cfg.to_toml(), "<test>", seed=1)
    assert other["tb/data/q.bin"] != files["tb/data/q.bin"]  # the seed does reach the vectors
    # the seed reaches the vectors and the README's performance estimate (a run on them)
    assert {
        p: d for p, d in other.items() if not p.startswith("tb/data/") and p != "README.md"
    } == {p: d for p, d in files.items() if not p.startswith("tb/data/") and p != "README.md"}


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_cli_compile_is_deterministic_across_hash_seeds(tmp_path: Path) -> None:
    model = tmp_path / "tiny-llama" / "config.json"
    model.parent.mkdir()
    model.write_text(
        '{"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 4,'
        ' "num_key_value_heads": 2, "hidden_size": 64,'
        ' "max_position_embeddings": 256}'
    )
    config = tmp_path / "cfg.toml"
    config.write_text(
        "[model]\nseq_len = 20\n[token_pruning]\nenabled = true\nskip_first = 0.0\n"
        "[head_pruning]\nenabled = true\nkeep = 0.5\n[value_pruning]\n"
        "enabled = true\n[quantization]\nprogressive = true\n"
    )
    runs = []
    for hash_seed in ("0", "4242"):
        env = {
            **os.environ,
            "PYTHONHASHSEED": hash_seed,
            "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(tmp_path / "numba")),
        }
        out = tmp_path / f"prj-{hash_seed}"
        command = [
            sys.executable,
            "-m",
            "spatten_hls.compiler.cli.main",
            "compile",
            str(model),
            "--config",
            str(config),
            "-o",
            str(out),
        ]
        runs.append(
            (
                out,
                subprocess.Popen(
                    command,
                    env=env,
                    cwd=tmp_path,
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                ),
            )
        )
    for out, process in runs:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        assert stdout.startswith(f"wrote {out}")
    first, second = (tree(out) for out, _ in runs)
    assert len(first) > 20 and first == second


# -- synthesizable sources ---------------------------------------------------------------------

FORBIDDEN = {
    "dynamic memory": r"\bnew\b|\bdelete\b|\bmalloc\s*\(|\bcalloc\s*\(|\bfree\s*\(",
    "std containers": r"std::vector|std::map|std::list|std::string|<vector>|<map>|<string>",
    "console I/O": r"iostream|\bcout\b|\bcerr\b|printf|<cstdio>",
    "floating point": r"\bfloat\b|\bdouble\b",
    "math library": r"hls_math|<cmath>|<math\.h>",
}
KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "static_assert"}


def strip_comments(code: str) -> str:
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    return re.sub(r"//[^\n]*", "", code)


def function_bodies(code: str) -> dict[str, list[str]]:
    """Name -> bodies of every function definition `name(...) {` (not control statements)."""
    found: dict[str, list[str]] = {}
    for match in re.finditer(r"\b(\w+)\s*\(([^;{}]*)\)\s*(?:const\s*)?\{", code):
        if match.group(1) in KEYWORDS:
            continue
        depth, end = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(code[end], 0)
            end += 1
        found.setdefault(match.group(1), []).append(code[match.end() : end - 1])
    return found


def test_sources_have_no_forbidden_constructs(files: dict[str, bytes]) -> None:
    sources = source_text(files)
    assert {"src/spatten_top.cpp", "src/params.h", "src/engines/layer.h"} <= set(sources)
    for path, text in sources.items():
        code = strip_comments(text)
        for what, pattern in FORBIDDEN.items():
            found = re.search(pattern, code)
            assert not found, f"{path}: {what} ({found.group(0) if found else ''!r})"


def test_sources_have_no_recursion(files: dict[str, bytes]) -> None:
    """The call graph between the functions defined in src/ is acyclic (no self-calls)."""
    bodies: dict[str, list[str]] = {}
    for text in source_text(files).values():
        for name, found in function_bodies(strip_comments(text)).items():
            bodies.setdefault(name, []).extend(found)
    assert {"spatten_top", "attention_layer", "softmax_row"} <= set(bodies)
    calls = nx.DiGraph()
    calls.add_nodes_from(bodies)
    for caller, texts in bodies.items():
        for callee in bodies:
            if any(re.search(rf"\b{callee}\s*(<[^<>;]*>)?\s*\(", t) for t in texts):
                calls.add_edge(caller, callee)
    assert calls.number_of_edges() > 10  # the scan sees the calls
    cycles = list(nx.simple_cycles(calls))
    assert not cycles, f"recursion: {cycles}"


def test_top_declares_the_interfaces(compiled, files: dict[str, bytes]) -> None:
    top = files["src/spatten_top.cpp"].decode()
    for port in ("q", "out"):
        assert re.search(
            rf"#pragma HLS INTERFACE m_axi port = {port} .*bundle = gmem_{port}\b", top
        ), port
    # one m_axi port (an HBM pseudo-channel) per K and per V fetch lane of the plan
    fetcher = compiled[0].lowered_plan().fetcher
    for plane, lanes in (("k", fetcher.k_lanes), ("v", fetcher.v_lanes)):
        found = re.findall(rf"m_axi port = {plane}(\d+) .*bundle = gmem_{plane}(\d+)\b", top)
        assert found == [(str(i), str(i)) for i in range(lanes)], plane
    for port in ("token_dropped_at", "token_importance", "head_dropped_at", "head_importance"):
        assert re.search(
            rf"#pragma HLS INTERFACE m_axi port = {port} .*bundle = gmem_state\b", top
        ), port
    assert "#pragma HLS INTERFACE s_axilite port = return" in top
    pragmas = "\n".join(source_text(files).values())
    for pragma in ("PIPELINE", "ARRAY_PARTITION"):
        assert re.search(rf"#pragma HLS {pragma}\b", pragmas), pragma


PARALLEL_LOOPS = {
    # constant of params.h -> (engine header, what it sizes: an unrolled lane loop or a
    # partition factor)
    "QK_KPC": ("rows.h", r"for \(int l = 0; l < Cfg::QK_KPC; l\+\+\) \{\s*#pragma HLS UNROLL"),
    "PV_KPC": ("rows.h", r"for \(int l = 0; l < Cfg::PV_KPC; l\+\+\) \{\s*#pragma HLS UNROLL"),
    "SOFTMAX_LANES": (
        "rows.h",
        r"for \(int l = 0; l < Cfg::SOFTMAX_LANES; l\+\+\) \{\s*#pragma HLS UNROLL",
    ),
    "SCAN_LANES": (
        "layer.h",
        r"for \(int l = 0; l < Cfg::SCAN_LANES; l\+\+\) \{\s*#pragma HLS UNROLL",
    ),
    "K_BANKS": ("rows.h", r"variable = k cyclic factor = Cfg::K_BANKS dim = 1"),
    "V_BANKS": ("rows.h", r"variable = v cyclic factor = Cfg::V_BANKS dim = 1"),
    # the streamed Q·K / prob·V loops: K_LANES / V_LANES rows every *_STREAM_II cycles
    "QK_STREAM_II": ("rows.h", r"#pragma HLS PIPELINE II = Cfg::QK_STREAM_II\b"),
    "PV_STREAM_II": ("rows.h", r"#pragma HLS PIPELINE II = Cfg::PV_STREAM_II\b"),
    "FETCH_FIFO_DEPTH": ("layer.h", r"STREAM variable = k_msb depth = Cfg::FETCH_FIFO_DEPTH"),
}


def test_parallel_loops_and_partitions_take_the_plan_factors(
    compiled, files: dict[str, bytes]
) -> None:
    """Every lane count of the plan reaches a pragma: params.h holds the plan's value and the
    engine unrolls or partitions by that constant (a factor that reached no pragma would be
    a number in a report only)."""
    plan = compiled[0].lowered_plan()
    params = files["src/params.h"].decode()
    expected = {
        "QK_KPC": plan.qk.keys_per_cycle,
        "PV_KPC": plan.pv.keys_per_cycle,
        "SOFTMAX_LANES": plan.softmax.lanes,
        "SCAN_LANES": plan.importance.scan_lanes,
        "K_BANKS": plan.qk.banks,
        "V_BANKS": plan.pv.banks,
        "QK_STREAM_II": plan.qk_stream_ii,
        "PV_STREAM_II": plan.pv_stream_ii,
        "FETCH_FIFO_DEPTH": FETCH_FIFO_DEPTH,
    }
    for name, (header, pattern) in PARALLEL_LOOPS.items():
        assert f"static const int {name} = {expected[name]};" in params, name
        engine = files[f"src/engines/{header}"].decode()
        assert re.search(pattern, engine), (name, header)
    assert plan.qk.banks % plan.qk.keys_per_cycle == 0  # each lane reads its own bank
    assert plan.pv.banks % plan.pv.keys_per_cycle == 0
    # the threshold engines of value top-k: one instance per engine of the plan
    assert f"static const int VALUE_TOPK_ENGINES = {plan.value_topk.engines};" in params
    macro = re.search(r"#define SPATTEN_VALUE_TOPK_ENGINES\(X\)(.*)", params)
    chain = [f"X({i}, {i + 1})" for i in range(plan.value_topk.engines)]
    assert macro and re.findall(r"X\(\d+, \d+\)", macro.group(1)) == chain


def test_engine_blocks_trace_to_ir_nodes(compiled, files: dict[str, bytes]) -> None:
    graph, _ = compiled
    ir_text = files["ir/final.ir.txt"].decode()
    top = files["src/spatten_top.cpp"].decode()
    blocks = re.findall(r"^// engine (\w+) <- %(\S+) \(\+(\d+) more\)", top, flags=re.M)
    assert len(blocks) == len(re.findall(r"^// engine ", top, flags=re.M))
    by_annotation: dict[str, list[str]] = {}
    for node in graph.nx_graph.nodes:
        by_annotation.setdefault(graph.engine(node), []).append(node)
    assert len(blocks) == len(by_annotation)  # one block per engine annotation, none missing
    plan = graph.lowered_plan()
    for name, node, more in blocks:
        assert f"%{node} = " in ir_text and f" @ {name}  # " in ir_text, node
        assert graph.engine(node) == name, node
        assert len(by_annotation[name]) == int(more) + 1, name
        entry = ENGINE_PARAMS.get(name)
        if entry is not None:  # the block lists the plan's parameters of its engine
            for key, value in sorted(dataclasses.asdict(getattr(plan, entry)).items()):
                rendered = str(value).lower() if isinstance(value, bool) else str(value)
                assert f"; {key}: {rendered}" in top, (name, key)
    names = {name for name, _, _ in blocks}
    assert {
        "fetcher",
        "qk",
        "softmax",
        "requant",
        "value_topk",
        "pv",
        "token_topk",
        "head_topk",
    } <= names


# -- flows and documentation -------------------------------------------------------------------


def test_flows_use_the_configured_part_and_clock(files: dict[str, bytes]) -> None:
    tcl = files["run_hls.tcl"].decode()
    assert re.search(rf"^set_part {re.escape(PART)}$", tcl, flags=re.M)
    assert re.search(r"^create_clock -period 4\.000\b", tcl, flags=re.M)  # 250 MHz
    assert re.search(r"^set_top spatten_top$", tcl, flags=re.M)
    cfg = files["hls_config.cfg"].decode()
    assert f"part={PART}\n" in cfg and "clock=4.000ns\n" in cfg
    readme = files["README.md"].decode()
    assert PART in readme and "250.0 MHz" in readme
    assert "xcu280" not in tcl + cfg  # the default part is overridden in both flows
    assert f"resources on {PART}" in readme  # and the estimate is for the configured part


def test_default_part_and_clock(design_factory) -> None:
    case = {"model": CASE["model"], "config": {"model": {"seq_len": 8}}}
    graph, cfg = design_factory.compile(case)
    files = project_files(graph, cfg.to_toml(), "<test>")
    tcl = files["run_hls.tcl"].decode()
    assert f"set_part {cfg.hardware.part}\n" in tcl and "xcu280" in cfg.hardware.part
    assert "create_clock -period 3.333 " in tcl  # 300 MHz
    assert f"at {cfg.hardware.clock_mhz} MHz" in files["README.md"].decode()


@pytest.mark.csim
def test_sources_compile_as_cxx14_for_vitis(tmp_path: Path, files: dict[str, bytes]) -> None:
    """run_hls.tcl hands the sources to Vitis HLS with -std=c++14: they must parse there."""
    for path, data in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    flags = [f for f in CXXFLAGS if not f.startswith(("-std=", "-O"))]
    for source, extra in (
        ("src/spatten_top.cpp", []),
        ("tb/tb_spatten_top.cpp", ["-Itb", '-DDATA_DIR="tb/data"']),
    ):
        command = [
            CXX,
            "-std=c++14",
            "-fsyntax-only",
            *flags,
            "-isystem",
            str(ap_types_include()),
            "-Isrc/engines",
            "-Isrc",
            *extra,
            source,
        ]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
