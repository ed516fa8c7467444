"""Compiler passes and the default pipeline (explicit imports: no auto-discovery)."""

from compiler.passes.assign_quant_types import assign_quant_types
from compiler.passes.manager import resolve_pipeline, run_pipeline
from compiler.passes.registry import PASSES, register_pass

DEFAULT_PIPELINE: tuple[str, ...] = ("assign-quant-types",)

__all__ = [
    "DEFAULT_PIPELINE",
    "PASSES",
    "assign_quant_types",
    "register_pass",
    "resolve_pipeline",
    "run_pipeline",
]
