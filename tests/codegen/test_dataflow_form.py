"""The row pipeline's DATAFLOW loop obeys the rules Vitis HLS checks before it overlaps the
processes (canonical form, single producer and consumer): read off the engine headers.

Every channel declared in the loop body has exactly one writer and one reader, written by an
earlier process than the one that reads it (no feedback); every array, port or scalar the
region gets from outside is accessed by one process only. A parameter's direction is its
declaration's (const or by value: read; a non-const reference, array or pointer: written or
updated); a stream's is what the function (or a function it hands the stream to) does with
it. C-simulation cannot see these rules (it runs the processes one after another).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ENGINES_DIR = Path(__file__).parents[2] / "templates" / "hls" / "engines"
PORT_MACROS = {"SPATTEN_K_ARGS": "k_ports", "SPATTEN_V_ARGS": "v_ports"}
ENGINES = 3  # threshold engines the chain macro is expanded for


def strip_comments(code: str) -> str:
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    return re.sub(r"//[^\n]*", "", code)


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
        params = re.sub(r"\bSPATTEN_\w+_PARAMS\b", "", params)
        self.params: list[tuple[str, str]] = []  # (declaration, name)
        for decl in split_top(params):
            found = re.search(r"(\w+)\s*(\[[^\]]*\]\s*)*$", decl)
            assert found, decl
            self.params.append((decl, found.group(1)))


def functions() -> dict[str, Function]:
    code = strip_comments(
        "\n".join(p.read_text() for p in sorted(ENGINES_DIR.glob("*.h")))
    ).replace("\\\n", " ")
    found = {}
    for m in re.finditer(r"\bvoid\s+(\w+)\s*\(([^;{}]*)\)\s*\{", code):
        found[m.group(1)] = Function(m.group(1), m.group(2), block(code, m.end() - 1))
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
    if re.search(rf"\b{name}\.write\(", fn.body):
        return True
    for callee, args in calls_in(fn.body):
        if callee in fns and callee not in seen:
            for i, arg in enumerate(args):
                bare = re.sub(r"\bSPATTEN_\w+_ARGS\b", "", arg).strip()
                if bare == name and writes(fns, fns[callee], i, (*seen, fn.name)):
                    return True
    return False


def expand_threshold_chain(body: str) -> str:
    """SPATTEN_VALUE_TOPK_ENGINES(SPATTEN_THRESHOLD) for ENGINES engines, as params.h lists
    them (X(0, 1) X(1, 2) ...; tests/codegen/test_project.py checks that list)."""
    m = re.search(r"#define SPATTEN_THRESHOLD\((\w+), (\w+)\)(.*?;)", body, flags=re.S)
    assert m, "the threshold chain macro"
    engine, nxt, text = m.group(1), m.group(2), m.group(3)
    calls = "".join(
        re.sub(rf"\b{nxt}\b", str(e + 1), re.sub(rf"\b{engine}\b", str(e), text))
        for e in range(ENGINES)
    )
    body = body.replace(m.group(0), "")
    body = body.replace("SPATTEN_VALUE_TOPK_ENGINES(SPATTEN_THRESHOLD)", calls)
    return re.sub(r"Cfg::VALUE_TOPK_ENGINES\b", str(ENGINES), body)


@dataclass(frozen=True)
class Region:
    processes: list[tuple[str, list[str]]]  # the loop body's calls, in order
    accesses: list[tuple[int, str, bool]]  # (process index, channel or argument, written)
    declared: set[str]  # the loop body's own variables (the channels)
    params: set[str]  # run_pass's parameters (and the lane ports)


@pytest.fixture(scope="module")
def region() -> Region:
    fns = functions()
    run_pass = fns["run_pass"]
    loop = re.search(r"#pragma HLS DATAFLOW", run_pass.body)
    assert loop, "run_pass has a DATAFLOW loop"
    open_at = run_pass.body.rfind("{", 0, loop.start())
    body = expand_threshold_chain(block(run_pass.body, open_at))
    accesses = []  # (process index, channel, written)
    processes = calls_in(body)
    for i, (callee, args) in enumerate(processes):
        fn = fns[callee]
        for macro, ports in PORT_MACROS.items():
            if any(macro in a for a in args):
                accesses.append((i, ports, True))
        args = [re.sub(r"\bSPATTEN_\w+_ARGS\b", "", a).strip() for a in args]
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
    params = {name for _, name in run_pass.params} | set(PORT_MACROS.values())
    return Region(processes, accesses, declared, params)


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
    assert {"pos", "pos_k", "pos_v", "jobs", "deferred", "k_ports", "v_ports", "q"} <= set(users)
    for name, who in users.items():
        assert len(who) == 1, f"{name}: accessed by {[processes[i][0] for i in sorted(who)]}"
