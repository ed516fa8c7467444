"""Compiler passes and the default pipeline (explicit imports: no auto-discovery)."""

from spatten_hls.compiler.passes.assign_quant_types import assign_quant_types
from spatten_hls.compiler.passes.insert_head_pruning import insert_head_pruning
from spatten_hls.compiler.passes.insert_token_pruning import insert_token_pruning
from spatten_hls.compiler.passes.insert_value_pruning import insert_value_pruning
from spatten_hls.compiler.passes.lower_to_engines import lower_to_engines
from spatten_hls.compiler.passes.manager import resolve_pipeline, run_pipeline
from spatten_hls.compiler.passes.registry import PASSES, register_pass
from spatten_hls.compiler.passes.split_progressive_quant import split_progressive_quant
from spatten_hls.compiler.passes.tile import tile

# Order matters: the requant node must exist before token importance reads the final
# probabilities; value top-k goes after (importance sees unpruned probabilities); head
# importance reads the prob·V outputs; tiling and lowering come last (they annotate).
DEFAULT_PIPELINE: tuple[str, ...] = (
    "assign-quant-types",
    "split-progressive-quant",
    "insert-token-pruning",
    "insert-value-pruning",
    "insert-head-pruning",
    "tile",
    "lower-to-engines",
)

__all__ = [
    "DEFAULT_PIPELINE",
    "PASSES",
    "assign_quant_types",
    "insert_head_pruning",
    "insert_token_pruning",
    "insert_value_pruning",
    "lower_to_engines",
    "register_pass",
    "resolve_pipeline",
    "run_pipeline",
    "split_progressive_quant",
    "tile",
]
