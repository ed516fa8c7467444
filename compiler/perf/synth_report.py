"""Vitis / Vivado HLS C-synthesis reports (`csynth.xml`), read into one typed summary.

The reports come from the user's Vitis run (or a colleague's), so they are untrusted: they are
parsed with defusedxml (no entities, no external references), within a size limit, and any
malformed or truncated file is one error naming it.

What is read, from the layouts of Vivado HLS 2019-2020 and Vitis HLS 2020.2 onwards:
- `UserAssignments`: part, top, target clock; `ReportVersion/Version`;
- `PerformanceEstimates`: the estimated clock, best / average / worst latency (`undef`, a
  data-dependent bound, becomes None), the interval, the pipeline type (dataflow, ...);
- `AreaEstimates`: BRAM_18K, DSP (DSP48E in older releases), FF, LUT, URAM used and available;
- loops with trip count, latency, achieved II and depth: `SummaryOfLoopLatency` of the top
  (older releases) and of every module under `ModuleInformation` (newer ones), nested loops
  included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from spatten_hls.compiler.errors import InputError
from spatten_hls.compiler.input_files import read_bytes

RESOURCES = ("BRAM_18K", "DSP", "FF", "LUT", "URAM")
_ALIASES = {"DSP48E": "DSP", "DSP48": "DSP", "BRAM": "BRAM_18K"}
MAX_LOOPS = 100_000
# where a project's synthesis report lands, per flow (the Makefile's CSYNTH_XML)
REPORT_PATHS = (
    "spatten_top_hls/hls/syn/report/csynth.xml",
    "spatten_top_prj/solution1/syn/report/csynth.xml",
)


@dataclass(frozen=True)
class LoopReport:
    module: str
    name: str
    trip_count: int | None  # the largest, for a range "min ~ max"; None when undefined
    latency: int | None  # cycles, the largest of a range
    ii: int | None  # achieved initiation interval (pipelined loops)
    depth: int | None
    pipelined: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "name": self.name,
            "trip_count": self.trip_count,
            "latency": self.latency,
            "ii": self.ii,
            "depth": self.depth,
            "pipelined": self.pipelined,
        }


@dataclass(frozen=True)
class SynthReport:
    source: str
    version: str | None
    part: str | None
    top: str | None
    target_clock_ns: float | None
    estimated_clock_ns: float | None
    latency_best: int | None
    latency_average: int | None
    latency_worst: int | None
    interval_min: int | None
    interval_max: int | None
    pipeline_type: str | None
    used: dict[str, int | None] = field(default_factory=dict)
    available: dict[str, int | None] = field(default_factory=dict)
    loops: tuple[LoopReport, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "version": self.version,
            "part": self.part,
            "top": self.top,
            "target_clock_ns": self.target_clock_ns,
            "estimated_clock_ns": self.estimated_clock_ns,
            "latency": {
                "best": self.latency_best,
                "average": self.latency_average,
                "worst": self.latency_worst,
            },
            "interval": {"min": self.interval_min, "max": self.interval_max},
            "pipeline_type": self.pipeline_type,
            "resources": {"used": self.used, "available": self.available},
            "loops": [loop.as_dict() for loop in self.loops],
        }


def parse_csynth(data: bytes, source: str) -> SynthReport:
    try:
        root = SafeET.fromstring(data)
    except ParseError as exc:
        raise InputError(f"{source}: not a readable csynth.xml report ({exc})") from None
    except DefusedXmlException as exc:
        raise InputError(f"{source}: refused: the XML declares {type(exc).__name__}") from None
    if root.tag != "profile":
        raise InputError(f"{source}: not a csynth.xml report (root <{root.tag[:40]}>)")
    user = root.find("UserAssignments")
    perf = root.find("PerformanceEstimates")
    if user is None or perf is None:
        raise InputError(
            f"{source}: not a csynth.xml report (no UserAssignments or PerformanceEstimates)"
        )
    latency = perf.find("SummaryOfOverallLatency")
    loops = list(_loops(perf, _text(user, "TopModelName") or "top"))
    for module in root.iterfind("ModuleInformation/Module"):
        loops += _loops(module.find("PerformanceEstimates"), _text(module, "Name") or "?")
    if len(loops) > MAX_LOOPS:
        raise InputError(f"{source}: more than {MAX_LOOPS} loops")
    area = root.find("AreaEstimates")
    return SynthReport(
        source=source,
        version=_text(root, "ReportVersion/Version"),
        part=_text(user, "Part"),
        top=_text(user, "TopModelName"),
        target_clock_ns=_float(_text(user, "TargetClockPeriod")),
        estimated_clock_ns=_float(_text(perf, "SummaryOfTimingAnalysis/EstimatedClockPeriod")),
        latency_best=_cycles(latency, "Best-caseLatency"),
        latency_average=_cycles(latency, "Average-caseLatency"),
        latency_worst=_cycles(latency, "Worst-caseLatency"),
        interval_min=_cycles(latency, "Interval-min"),
        interval_max=_cycles(latency, "Interval-max"),
        pipeline_type=_text(perf, "PipelineType"),
        used=_resources(area, "Resources"),
        available=_resources(area, "AvailableResources"),
        loops=tuple(loops),
    )


def load_synth_report(path: Path) -> SynthReport:
    """A csynth.xml file, or the report of a project directory (either flow's location)."""
    path = Path(path)
    if path.is_dir():
        found = [path / rel for rel in REPORT_PATHS if (path / rel).is_file()]
        if not found:
            raise InputError(
                f"{path}: no synthesis report (looked for {' and '.join(REPORT_PATHS)}; "
                f"run make csynth first)"
            )
        path = found[0]
    return parse_csynth(read_bytes(path, "synthesis report"), str(path))


def _text(node: Element | None, path: str) -> str | None:
    if node is None:
        return None
    found = node.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


_NUMBER = re.compile(r"\d+")


def _int(text: str | None) -> int | None:
    """An integer field: None for `undef`, `-` or empty; the largest of a range `a ~ b`."""
    if text is None:
        return None
    numbers = _NUMBER.findall(text)
    return int(numbers[-1]) if numbers and "undef" not in text else None


def _cycles(node: Element | None, name: str) -> int | None:
    return _int(_text(node, name))


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _resources(area: Element | None, name: str) -> dict[str, int | None]:
    node = area.find(name) if area is not None else None
    out: dict[str, int | None] = {}
    if node is None:
        return out
    for child in node:
        key = _ALIASES.get(child.tag, child.tag)
        if key in RESOURCES:
            out[key] = _int(child.text)
    return out


def _loops(perf: Element | None, module: str) -> list[LoopReport]:
    summary = perf.find("SummaryOfLoopLatency") if perf is not None else None
    if summary is None:
        return []
    return [loop for child in summary for loop in _loop(child, module)]


def _loop(node: Element, module: str) -> list[LoopReport]:
    ii = _int(_text(node, "PipelineII"))
    kind = _text(node, "PipelineType")
    loop = LoopReport(
        module=module,
        name=_text(node, "Name") or node.tag,
        trip_count=_int(_text(node, "TripCount")),
        latency=_int(_text(node, "Latency")),
        ii=ii,
        depth=_int(_text(node, "PipelineDepth")),
        pipelined=kind == "yes" if kind is not None else ii is not None,
    )
    nested = [
        inner
        for child in node
        if len(child) and child.find("TripCount") is not None
        for inner in _loop(child, module)
    ]
    return [loop, *nested]
