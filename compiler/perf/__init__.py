"""Analytical performance model (FINN-style estimators) driven by a simulation's records.

One module per concern: `cycles` (per-layer engine cycles and DRAM time), `resources`
(DSP / BRAM / URAM and the part table), `roofline` (FLOPs, bytes, intensity) and `report`
(`performance_report(result, plan)` -> `Report`, JSON and a text table). Everything is
read from the hardware plan and the simulator's records, never from the config.
"""

from spatten_hls.compiler.perf.report import Report, performance_report

__all__ = ["Report", "performance_report"]
