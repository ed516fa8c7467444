"""ctypes harness: the emitted design as a shared library, run on golden vectors in-process.

Building takes a few seconds; the library is cached by a hash of its sources, so many inputs
(seeds) can be compared against the simulator with one build.
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spatten_hls.compiler.codegen.counters import CsimCounters, counters_from_array, measured_size
from spatten_hls.compiler.codegen.csim import STREAM_WARNING
from spatten_hls.compiler.codegen.toolchain import build_cached
from spatten_hls.compiler.codegen.vectors import GoldenVectors
from spatten_hls.compiler.errors import CodegenError


@dataclass(frozen=True)
class DesignRun:
    out: np.ndarray  # int16 output codes, like GoldenVectors.arrays["out"]
    state: np.ndarray  # int64 final pruning state, like GoldenVectors.arrays["state"]
    requants: np.ndarray  # int64 per layer: rows recomputed with the K LSBs
    measured: CsimCounters  # bytes at the ports and the cycle estimate (engines/csim.h)


class StreamMisuse(RuntimeError):
    """The design's processes disagree on how many rows a stream carries (the stream model
    warned that a FIFO was read while empty or left with data: the RTL would hang)."""


class DesignLibrary:
    def __init__(self, project: Path, cache_dir: Path) -> None:
        project = Path(project)
        sources = [*sorted((project / "src").glob("*.cpp")), project / "tb" / "ctypes_api.cpp"]
        includes = [project / "src" / "engines", project / "src", project / "tb"]
        self.path = build_cached(sources, includes, Path(cache_dir), "spatten_design", shared=True)
        self._lib = ctypes.CDLL(str(self.path))
        i16 = np.ctypeslib.ndpointer(np.int16, flags="C_CONTIGUOUS")
        i64 = np.ctypeslib.ndpointer(np.int64, flags="C_CONTIGUOUS")
        self._run = self._lib.spatten_run_model
        self._run.argtypes = [i64, i16, i16, i16, i16, i64, i64, i64, i16, i64, i64, i64]
        self._run.restype = ctypes.c_int

    def run(self, vectors: GoldenVectors) -> DesignRun:
        a = {k: np.ascontiguousarray(v) for k, v in vectors.arrays.items()}
        out = np.zeros_like(a["out"])
        state = np.zeros_like(a["state"])
        requants = np.zeros(a["mult"].shape[0], dtype=np.int64)
        measured = np.zeros(measured_size(), dtype=np.int64)
        status: list[int] = []
        printed = self._printing(
            lambda: status.append(
                self._run(
                    a["run"],
                    a["q"],
                    a["k_msb"],
                    a["k_lsb"],
                    a["v"],
                    a["mult"],
                    a["shift"],
                    a["v_weight"],
                    out,
                    state,
                    requants,
                    measured,
                )
            )
        )
        if status != [0]:
            raise CodegenError(f"the design does not run the extent {a['run'].tolist()}")
        self._check_streams(printed)
        return DesignRun(out, state, requants, counters_from_array(measured))

    @staticmethod
    def _check_streams(printed: str) -> None:
        warnings = [line for line in printed.splitlines() if STREAM_WARNING.search(line)]
        if warnings:
            raise StreamMisuse(f"{len(warnings)} stream warnings, first: {warnings[0]}")

    @staticmethod
    def _printing(call) -> str:
        """What `call` printed on the process's stdout (where the stream model warns)."""
        sys.stdout.flush()
        libc = ctypes.CDLL(None)
        saved = os.dup(1)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 1)
            try:
                call()
            finally:
                libc.fflush(None)
                os.dup2(saved, 1)
                os.close(saved)
            captured.seek(0)
            return captured.read().decode(errors="replace")
