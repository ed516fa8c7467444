"""The functional simulator driver (kernels live in the top-level `kernels` package)."""

from spatten_hls.compiler.sim.interpreter import simulate
from spatten_hls.compiler.sim.result import LayerRecord, SimResult

__all__ = ["LayerRecord", "SimResult", "simulate"]
