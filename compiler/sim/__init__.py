"""The functional simulator driver (kernels live in the top-level `kernels` package)."""

from compiler.sim.interpreter import simulate
from compiler.sim.result import LayerRecord, SimResult

__all__ = ["LayerRecord", "SimResult", "simulate"]
