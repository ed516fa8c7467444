"""Shared fixtures of the C-simulation tests: small designs compiled, emitted and built once.

A *case* is a plain dict `{"model": {...}, "config": {...}}`: `model` holds ModelSpec fields
(`family`, `layers`, `heads`, `kv_heads`, `head_dim`; decoders are every family but bert) and
`config` is a TOML-shaped dict for `config_from_dict`. The session-scoped `design_factory`
compiles a case with the default pipeline, emits its project with `project_files` /
`write_tree` and builds the ctypes harness library into one session cache directory (the
library is keyed by a hash of its sources, so identical designs build once). Builds run on a
thread pool (g++ runs outside the GIL); `prefetch` starts the builds of many cases at once.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from spatten_hls.compiler.codegen.harness import DesignLibrary, DesignRun
from spatten_hls.compiler.codegen.project import project_files
from spatten_hls.compiler.codegen.vectors import GoldenVectors, golden_vectors
from spatten_hls.compiler.config import Config, config_from_dict
from spatten_hls.compiler.frontend.builder import build_attention_graph, check_against_model
from spatten_hls.compiler.frontend.model import ModelSpec
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.output_dir import write_tree
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline

Case = dict[str, Any]


def case_key(case: Case) -> str:
    return json.dumps(case, sort_keys=True)


def model_spec(case: Case) -> ModelSpec:
    m = case["model"]
    heads, head_dim = m["heads"], m["head_dim"]
    return ModelSpec(
        name=m.get("name", "tiny"),
        family=m["family"],
        num_layers=m["layers"],
        num_heads=heads,
        num_kv_heads=m.get("kv_heads", heads),
        head_dim=head_dim,
        hidden_size=heads * head_dim,
        max_positions=4096,
        causal=m["family"] != "bert",
        source=f"test:{m.get('name', 'tiny')}",
    )


def compile_case(case: Case) -> tuple[AttnGraph, Config]:
    """The graph after the default pipeline and its config, as `spatten compile` makes them."""
    spec = model_spec(case)
    cfg = config_from_dict(case["config"], source="<test>")
    check_against_model(cfg, spec)
    return run_pipeline(build_attention_graph(spec, cfg), cfg, DEFAULT_PIPELINE), cfg


def vectors_for(graph: AttnGraph, cfg: Config, seed: int) -> GoldenVectors:
    """Golden vectors for `seed`, as `project_files` makes them (the seed-0 vectors are
    checked against the project's tb/data, which keeps this helper honest)."""
    return golden_vectors(graph, seed=seed)


@dataclass
class Design:
    graph: AttnGraph
    cfg: Config
    project: Path
    files: dict[str, bytes]
    library: DesignLibrary

    def run(self, seed: int) -> tuple[GoldenVectors, DesignRun]:
        vectors = vectors_for(self.graph, self.cfg, seed)
        return vectors, self.library.run(vectors)


class DesignFactory:
    def __init__(self, root: Path, workers: int) -> None:
        self.root = root
        self.cache = root / "libs"
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._designs: dict[str, Future[Design]] = {}

    compile = staticmethod(compile_case)
    vectors = staticmethod(vectors_for)

    def prefetch(self, cases: Iterable[Case]) -> None:
        for case in cases:
            self._submit(case)

    def get(self, case: Case) -> Design:
        return self._submit(case).result()

    def _submit(self, case: Case) -> Future[Design]:
        key = case_key(case)
        if key not in self._designs:
            future: Future[Design]
            try:  # compiling runs the Numba simulator: keep it on this thread
                graph, cfg = compile_case(case)
                files = project_files(graph, cfg.to_toml(), "<test>", seed=0)
                name = re.sub(r"[^a-z0-9]+", "-", case["model"].get("name", "tiny").lower())
                project = self.root / f"{len(self._designs):03d}-{name}"
                write_tree(files, project, force=False)
            except Exception as exc:  # reported by get(), in the test that asks for it
                future = Future()
                future.set_exception(exc)
            else:
                future = self._pool.submit(self._build, graph, cfg, project, files)
            self._designs[key] = future
        return self._designs[key]

    def _build(
        self, graph: AttnGraph, cfg: Config, project: Path, files: dict[str, bytes]
    ) -> Design:
        return Design(graph, cfg, project, files, DesignLibrary(project, self.cache))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def design_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterable[DesignFactory]:
    factory = DesignFactory(tmp_path_factory.mktemp("designs"), workers=os.cpu_count() or 1)
    yield factory
    factory.close()
