"""The attention IR: ops, graph, verifier, printers, front-end builder."""

from spatten_hls.compiler.ir import ops_spatten  # noqa: F401  (registers the SpAtten op kinds)
from spatten_hls.compiler.ir.graph import AttnGraph, GraphInfo
from spatten_hls.compiler.ir.printer import print_ir
from spatten_hls.compiler.ir.serialize import from_json, to_json
from spatten_hls.compiler.ir.verify import verify

__all__ = ["AttnGraph", "GraphInfo", "from_json", "print_ir", "to_json", "verify"]
