"""The front half shared by every command: model + config -> verified IR after a pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from spatten_hls.compiler.config import Config, load_config
from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.frontend import ModelSpec, load_model
from spatten_hls.compiler.frontend.builder import build_attention_graph, check_against_model
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.verify import verify
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline


@dataclass(frozen=True)
class Compiled:
    model: ModelSpec
    config: Config
    graph: AttnGraph


def load_inputs(model_arg: str, config_path: str | Path | None) -> tuple[ModelSpec, Config]:
    model = load_model(model_arg)
    cfg = load_config(config_path)
    check_against_model(cfg, model)
    return model, cfg


def pipeline_until(after: str | None) -> tuple[str, ...]:
    """The default pipeline up to and including `after` ("all": everything; None: nothing)."""
    if after is None:
        return ()
    if after == "all":
        return DEFAULT_PIPELINE
    if after not in DEFAULT_PIPELINE:
        raise CompilerError(
            f"--after: unknown pass '{after}' (pipeline: {', '.join(DEFAULT_PIPELINE)}, or all)"
        )
    return DEFAULT_PIPELINE[: DEFAULT_PIPELINE.index(after) + 1]


def compile_model(
    model_arg: str,
    config_path: str | Path | None,
    passes: Sequence[str] = DEFAULT_PIPELINE,
    dump_dir: Path | None = None,
) -> Compiled:
    model, cfg = load_inputs(model_arg, config_path)
    return compile_spec(model, cfg, passes, dump_dir)


def compile_spec(
    model: ModelSpec,
    cfg: Config,
    passes: Sequence[str] = DEFAULT_PIPELINE,
    dump_dir: Path | None = None,
) -> Compiled:
    """The IR of `model` under `cfg` (already checked against each other) after `passes`."""
    graph = build_attention_graph(model, cfg)
    if passes:
        graph = run_pipeline(graph, cfg, passes, dump_dir=dump_dir)
    else:
        verify(graph)
    return Compiled(model, cfg, graph)
