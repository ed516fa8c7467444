"""The row pipeline's DATAFLOW loop obeys the rules Vitis HLS checks before it overlaps the
processes (canonical form, single producer and consumer): read off the engine headers after
the preprocessor (g++ -E, with the X-macros of params.h for LANES fetch lanes and ENGINES
threshold engines).

Every channel declared in the loop body has exactly one writer and one reader, written by an
earlier process than the one that reads it (no feedback); every array, port or scalar the
region gets from outside is accessed by one process only. A parameter's direction is its
declaration's (const or by value: read; a non-const reference, array or pointer: written or
updated); a stream's is what the function (or a function it hands the stream to) does with
it. C-simulation cannot see these rules (it runs the processes one after another).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from spatten_hls.compiler.codegen.toolchain import CXX, ap_types_include

ENGINES_DIR = Path(__file__).parents[2] / "templates" / "hls" / "engines"
LANES = 2  # fetch lanes (K and V) the X-macros are expanded for
ENGINES = 3  # threshold engines
# params.h's X-macros (tests/codegen/test_project.py checks their form)
MACROS = f"""
#define SPATTEN_K_LANES(X) {" ".join(f"X({i})" for i in range(LANES))}
#define SPATTEN_V_LANES(X) {" ".join(f"X({i})" for i in range(LANES))}
#define SPATTEN_VALUE_TOPK_ENGINES(X) {" ".join(f"X({i}, {i + 1})" for i in range(ENGINES))}
#define SPATTEN_VALUE_TOPK_LAST {ENGINES}
#include "layer.h"
"""
PORTS = {f"{plane}{i}" for plane in "kv" for i in range(LANES)}


def split_top(text: str) -> list[str]:
    """Split at the commas outside <>, () and []."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "<([":
            depth += 1
        elif ch in ">)]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:].strip())
    return parts


def block(code: str, open_at: int) -> str:
    """The text between the brace at `open_at` and its match."""
    depth, end = 1, open_at + 1
    while depth:
        depth += {"{": 1, "}": -1}.get(code[end], 0)
        end += 1
    return code[open_at + 1 : end - 1]


class Function:
    def __init__(self, name: str, params: str, body: str) -> None:
        self.name, self.body = name, body
        self.params: list[tuple[str, str]] = []  # (declaration, name)
        for decl in split_top(params):
            found = re.search(r"(\w+)\s*(\[[^\]]*\]\s*)*$", decl)
            assert found, decl
            self.params.append((decl, found.group(1)))


def preprocessed(engines: Path, generated: Path) -> str:
    """The engines after the preprocessor; `generated` holds stand-ins for the generated
    headers they include (the tables: no macros of the region)."""
    (generated / "spatten_tables.h").write_text("")
    include = ["-isystem", str(ap_types_include()), "-I", str(engines), "-I", str(generated)]
    done = subprocess.run(
        [CXX, "-std=c++14", "-E", "-P", "-x", "c++", *include, "-"],
        input=MACROS,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def functions(code: str) -> dict[str, Function]:
    """The engines' functions by name (in namespace spatten, where the engines live)."""
    found = {}
    for start in re.finditer(r"namespace spatten \{", code):
        part = block(code, start.end() - 1)
        for m in re.finditer(r"\bvoid\s+(\w+)\s*\(([^;{}]*)\)\s*\{", part):
            found[m.group(1)] = Function(m.group(1), m.group(2), block(part, m.end() - 1))
    return found


def calls_in(body: str) -> list[tuple[str, list[str]]]:
    """The `name<...>(args);` calls of a body, in order."""
    out = []
    for m in re.finditer(r"\b(\w+)\s*<[^;(]*>\s*\(", body):
        depth, end = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(body[end], 0)
            end += 1
        out.append((m.group(1), split_top(body[m.end() : end - 1])))
    return out


def writes(fns: dict[str, Function], fn: Function, index: int, seen=()) -> bool:
    """Whether `fn` writes (or updates) its parameter `index`."""
    decl, name = fn.params[index]
    if "hls::stream" not in decl:
        return not decl.startswith("const ") and bool(re.search(r"[&*]|\[", decl))
    if re.search(rf"\b{name}(\[[^\]]*\])?\.write\(", fn.body):
        return True
    for callee, args in calls_in(fn.body):
        if callee in fns and callee not in seen:
            for i, arg in enumerate(args):
                if arg == name and writes(fns, fns[callee], i, (*seen, fn.name)):
                    return True
    return False


@dataclass(frozen=True)
class Region:
    processes: list[tuple[str, list[str]]]  # the loop body's calls, in order
    accesses: list[tuple[int, str, bool]]  # (process index, channel or argument, written)
    declared: set[str]  # the loop body's own variables (the channels)
    params: set[str]  # run_pass's parameters (the lane ports among them)


def read_region(engines: Path, generated: Path) -> Region:
    fns = functions(preprocessed(engines, generated))
    run_pass = fns["run_pass"]
    loop = re.search(r"#pragma HLS DATAFLOW", run_pass.body)
    assert loop, "run_pass has a DATAFLOW loop"
    body = block(run_pass.body, run_pass.body.rfind("{", 0, loop.start()))
    accesses = []  # (process index, channel, written)
    processes = calls_in(body)
    for i, (callee, args) in enumerate(processes):
        fn = fns[callee]
        assert len(args) == len(fn.params), (callee, args)
        for j, arg in enumerate(args):
            if re.fullmatch(r"[\w.]+(\[\d+\])?", arg) and not arg.isdigit():
                accesses.append((i, arg, writes(fns, fn, j)))
    # a whole partitioned array handed to one process is each of its partitions
    indexed: dict[str, set[str]] = {}
    for _, name, _ in accesses:
        if "[" in name:
            indexed.setdefault(name.split("[")[0], set()).add(name)
    accesses = [
        (i, part, written)
        for i, name, written in accesses
        for part in (sorted(indexed[name]) if name in indexed else [name])
    ]
    declared = set()
    for line in body.split(";"):
        line = re.sub(r"#pragma[^\n]*", "", line).strip()
        while re.search(r"<[^<>]*>", line):  # template arguments
            line = re.sub(r"<[^<>]*>", "", line)
        if line and "(" not in line:
            decl = re.sub(r"\[[^\]]*\]", "", line)
            declared.update(n.strip() for n in decl.split(None, 1)[1].split(","))
    params = {name for _, name in run_pass.params}
    return Region(processes, accesses, declared, params)


@pytest.fixture(scope="module")
def region(tmp_path_factory) -> Region:
    return read_region(ENGINES_DIR, tmp_path_factory.mktemp("generated"))


def test_the_loop_body_is_process_calls(region: Region) -> None:
    names = [name for name, _ in region.processes]
    assert names[0] == "issue_row" and names[-1] == "stage_write"
    assert names.count("stage_threshold") == ENGINES
    assert {"k_msb", "k_lsb", "v_rows", "p", "at_qk", "sel"} <= region.declared


def test_every_channel_has_one_writer_then_one_reader(region: Region) -> None:
    processes = region.processes
    channels: dict[str, dict[str, list[int]]] = {}
    for i, name, written in region.accesses:
        base = name.split("[")[0]
        if base in region.declared:
            entry = channels.setdefault(name, {"w": [], "r": []})
            entry["w" if written else "r"].append(i)
    assert len(channels) > 20
    for name, entry in channels.items():
        assert len(entry["w"]) == 1, f"{name}: written by {[processes[i][0] for i in entry['w']]}"
        assert len(entry["r"]) == 1, f"{name}: read by {[processes[i][0] for i in entry['r']]}"
        assert entry["w"][0] < entry["r"][0], f"{name}: read before it is written (feedback)"


def test_every_region_argument_has_one_process(region: Region) -> None:
    processes = region.processes
    users: dict[str, set[int]] = {}
    for i, name, _ in region.accesses:
        base = name.split("[")[0].split(".")[0]
        if base in region.params:
            users.setdefault(base, set()).add(i)
    assert {"pos", "pos_k", "pos_v", "jobs", "deferred", "q", "out"} | PORTS <= set(users)
    for name, who in users.items():
        assert len(who) == 1, f"{name}: accessed by {[processes[i][0] for i in sorted(who)]}"


def test_one_pipeline_instance_serves_both_passes(tmp_path) -> None:
    """run_pass is not inlined and the layer calls it once, in its loop over the two passes
    (two calls would be two copies of the pipeline in hardware)."""
    fns = functions(preprocessed(ENGINES_DIR, tmp_path))
    assert "#pragma HLS INLINE off" in fns["run_pass"].body
    layer = fns["attention_layer"].body
    calls = [name for name, _ in calls_in(layer)]
    assert calls.count("run_pass") == 1
    loop = re.search(r"for \(int pass = 0; pass < 2\b[^)]*\)\s*\{", layer)
    assert loop and "run_pass" in block(layer, loop.end() - 1)
