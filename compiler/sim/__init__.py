"""The functional simulator (kernels live in the top-level `kernels` package)."""

from spatten_hls.compiler.sim.result import LayerRecord, SimResult, StepRecord
from spatten_hls.compiler.sim.simulation import Simulation, simulate

__all__ = ["LayerRecord", "SimResult", "Simulation", "StepRecord", "simulate"]
