"""A Vitis synthesis report next to the model's estimate of the same project, and the loops
whose achieved II is above the II the generated source requests.

The requested IIs come from the project's own sources: a loop is `label:` then `for`, with
`#pragma HLS PIPELINE II = X` in its first lines; X is a number or a `Cfg::NAME` of params.h
(other expressions, such as a template argument, are reported as written and not compared).
Vitis names a labelled loop by its label, so a report loop is matched by name; where several
loops share a label, the largest requested II among them is the bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spatten_hls.compiler.input_files import read_text
from spatten_hls.compiler.perf.report import Report
from spatten_hls.compiler.perf.synth_report import SynthReport

_LABELLED_LOOP = re.compile(
    r"^\s*(\w+):\s*\n\s*for\b[^\n]*\n(?:[^\n]*\n){0,2}?\s*#pragma HLS PIPELINE II\s*=\s*([^\n]+)",
    re.MULTILINE,
)
_CONSTANT = re.compile(r"static const int (\w+) = (-?\d+);")


def requested_iis(project: Path) -> dict[str, list[int | str]]:
    """label -> the II each loop of that label requests (an int, or the expression)."""
    constants = {m[1]: int(m[2]) for m in _CONSTANT.finditer(_source(project / "src" / "params.h"))}
    out: dict[str, list[int | str]] = {}
    sources = sorted((project / "src").rglob("*.h")) + sorted((project / "src").rglob("*.cpp"))
    for source in sources:
        for m in _LABELLED_LOOP.finditer(_source(source)):
            expr = m[2].strip()
            value = int(expr) if expr.isdigit() else constants.get(expr.removeprefix("Cfg::"), expr)
            out.setdefault(m[1], []).append(value)
    return out


def _source(path: Path) -> str:
    """A generated source of the project (an edited or missing one is one error)."""
    return read_text(path, "project source")


@dataclass(frozen=True)
class Row:
    quantity: str
    model: float | None
    vitis: float | None

    @property
    def ratio(self) -> float | None:
        if self.model in (None, 0) or self.vitis is None:
            return None
        return self.vitis / self.model

    def as_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "quantity": self.quantity,
            "model": self.model,
            "vitis": self.vitis,
            "ratio": None if ratio is None else round(ratio, 6),
        }


@dataclass(frozen=True)
class IIFlag:
    module: str
    loop: str
    achieved: int
    requested: int


def side_by_side(synth: SynthReport, model: Report, calls: int) -> list[Row]:
    """Model against Vitis per quantity: the run's latency, the clock, the resources.

    Vitis reports one call of the top function (one layer, or one layer of one decode step),
    worst case over the trip-count bounds; the run is `calls` of them, so Vitis's side of the
    latency row is that worst case times `calls`: an upper bound of the run, where the model
    counts every call at its own size (pruned layers, shorter contexts)."""
    res = model.resources
    clock_ns = 1000.0 / model.hardware["clock_mhz"]
    worst_run = None if synth.latency_worst is None else synth.latency_worst * calls
    return [
        Row(
            f"run latency (cycles; Vitis: worst call x {calls} calls)",
            model.latency_cycles,
            worst_run,
        ),
        Row("clock period (ns)", clock_ns, synth.estimated_clock_ns),
        Row("DSP", res.dsp, synth.used.get("DSP")),
        Row("BRAM_18K", res.bram_18k, synth.used.get("BRAM_18K")),
        Row("URAM", res.uram, synth.used.get("URAM")),
    ]


def ii_flags(synth: SynthReport, requested: dict[str, list[int | str]]) -> list[IIFlag]:
    flags = []
    for loop in synth.loops:
        bounds = [ii for ii in requested.get(loop.name, []) if isinstance(ii, int)]
        if loop.ii is not None and bounds and loop.ii > max(bounds):
            flags.append(IIFlag(loop.module, loop.name, loop.ii, max(bounds)))
    return flags
