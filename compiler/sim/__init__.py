"""The functional simulator (kernels live in the top-level `kernels` package)."""

from spatten_hls.compiler.sim.result import LayerRecord, SimResult, StepRecord
from spatten_hls.compiler.sim.simulation import RunExtent, Simulation, simulate

__all__ = ["LayerRecord", "RunExtent", "SimResult", "Simulation", "StepRecord", "simulate"]
