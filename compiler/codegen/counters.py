"""What C-simulation measures (engines/csim.h): bytes through each m_axi port during the run,
and the cycle estimate of the emitted loop nest, per engine and in total.

The bytes are counted where the design's loops read and write its ports, so they are the
design's real traffic. The cycles are an estimate from the loop nest's trip counts and the II
and depth each loop requests (assumed met), with a DATAFLOW region counted as its slowest
process plus the first item of the others: not a Vitis number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spatten_hls.compiler.perf.cycles import ENGINES as MODEL_ENGINES
from spatten_hls.compiler.sim.result import PLANES

# In the order of engines/csim.h (port_id, engine_id); tests/codegen/test_csim_counters.py
# checks them against the header. The engines are those the performance model breaks its
# cycles down by, so `spatten csim` and `spatten report` name the same things.
PORTS = (*PLANES, "out", "state", "params")
ENGINES = MODEL_ENGINES


@dataclass(frozen=True)
class CsimCounters:
    dram_bytes: dict[str, int]  # per port, and "total"
    cycles: dict[str, int]  # busy cycles per engine, and "total" (the estimate)

    def as_dict(self) -> dict[str, Any]:
        return {"dram_bytes": dict(self.dram_bytes), "cycles": dict(self.cycles)}


def measured_size() -> int:
    return len(PORTS) + len(ENGINES) + 1


def counters_from_array(values: Any) -> CsimCounters:
    """From the N_MEASURED integers of csim_export (ports, engines, total)."""
    values = [int(v) for v in values]
    ports = dict(zip(PORTS, values[: len(PORTS)], strict=True))
    engines = dict(zip(ENGINES, values[len(PORTS) : len(PORTS) + len(ENGINES)], strict=True))
    return _counters(ports, engines, values[-1])


def counters_from_lines(lines: list[str]) -> CsimCounters | None:
    """From the testbench's `bytes <port> N` and `cycles <engine> N` lines (None: absent)."""
    ports: dict[str, int] = {}
    engines: dict[str, int] = {}
    total = None
    for line in lines:
        parts = line.split()
        if len(parts) != 3 or not parts[2].isdigit():
            continue
        kind, name, value = parts[0], parts[1], int(parts[2])
        if kind == "bytes" and name in PORTS:
            ports[name] = value
        elif kind == "cycles" and name in ENGINES:
            engines[name] = value
        elif kind == "cycles" and name == "total":
            total = value
    if set(ports) != set(PORTS) or set(engines) != set(ENGINES) or total is None:
        return None
    return _counters(ports, engines, total)


def _counters(ports: dict[str, int], engines: dict[str, int], total: int) -> CsimCounters:
    dram = {name: ports[name] for name in PORTS}
    dram["total"] = sum(ports.values())
    cycles = {name: engines[name] for name in ENGINES}
    cycles["total"] = total
    return CsimCounters(dram, cycles)
