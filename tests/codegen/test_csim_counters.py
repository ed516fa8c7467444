"""The names and layout of the C-simulation counters agree between engines/csim.h and
compiler/codegen/counters.py (which reads the testbench's lines and csim_export by them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spatten_hls.compiler.codegen import counters

HEADER = Path(__file__).parents[2] / "templates" / "hls" / "engines" / "csim.h"


def _enum(text: str, name: str) -> list[str]:
    body = re.search(rf"enum {name} \{{(.*?)\}};", text, re.S)
    assert body, name
    return [item.split("=")[0].strip() for item in body.group(1).split(",") if item.strip()]


def _names(text: str, array: str) -> list[str]:
    body = re.search(rf"{array}\[[A-Z_]+\] = \{{(.*?)\}};", text, re.S)
    assert body, array
    return re.findall(r'"([a-z_]+)"', body.group(1))


def test_port_and_engine_names_match_the_header() -> None:
    text = HEADER.read_text()
    assert tuple(_names(text, "PORT_NAMES")) == counters.PORTS
    assert tuple(_names(text, "ENGINE_NAMES")) == counters.ENGINES
    ports = _enum(text, "port_id")
    assert ports[-1] == "N_PORTS"
    assert [p.removeprefix("P_").lower() for p in ports[:-1]] == list(counters.PORTS)
    engines = _enum(text, "engine_id")
    engines = engines[: engines.index("N_ENGINES")]
    assert [e.removeprefix("E_").lower() for e in engines] == list(counters.ENGINES)


def test_counters_from_the_export_array() -> None:
    n_ports, n_engines = len(counters.PORTS), len(counters.ENGINES)
    values = list(range(1, n_ports + 1)) + [10 * i for i in range(n_engines)] + [777]
    assert len(values) == counters.measured_size()
    c = counters.counters_from_array(values)
    assert c.dram_bytes["q"] == 1 and c.dram_bytes["params"] == n_ports
    assert c.dram_bytes["total"] == sum(range(1, n_ports + 1))
    assert c.cycles[counters.ENGINES[-1]] == 10 * (n_engines - 1)
    assert c.cycles["total"] == 777
    with pytest.raises(ValueError):
        counters.counters_from_array(values[:-2])


def test_counters_from_testbench_lines() -> None:
    lines = [f"bytes {p} {i * 32}" for i, p in enumerate(counters.PORTS)]
    lines += [f"cycles {e} {i}" for i, e in enumerate(counters.ENGINES)]
    lines += ["layer 0: ok", "cycles total 1234", "3 passed, 0 failed"]
    c = counters.counters_from_lines(lines)
    assert c is not None
    assert c.dram_bytes["k_msb"] == 32 and c.cycles["total"] == 1234
    assert c.as_dict()["dram_bytes"]["total"] == 32 * sum(range(len(counters.PORTS)))
    # a testbench that printed no counters (or only some) gives none, not zeros
    assert counters.counters_from_lines(lines[1:]) is None
    assert counters.counters_from_lines(["3 passed, 0 failed"]) is None
