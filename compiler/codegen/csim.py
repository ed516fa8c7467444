"""C-simulation of an emitted project with g++: build the testbench, run it, judge it.

The testbench binary is cached by the bytes of the project's sources (toolchain.py): a rerun
on the same project, or on new golden data, skips the build.

Paths are never spliced into source text or a shell line: the data directory reaches the
testbench as its argument, so project paths with spaces, quotes or any unicode work.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from spatten_hls.compiler.codegen.counters import CsimCounters, counters_from_lines
from spatten_hls.compiler.codegen.toolchain import (
    build_cached,
    compiler_command,
    prune_cache,
    run_compiler,
    user_cache_dir,
)
from spatten_hls.compiler.errors import CodegenError
from spatten_hls.compiler.sim import RunExtent

STREAM_WARNING = re.compile(r"Hls::stream .*(read while empty|leftover)", re.IGNORECASE)
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)
PROGRESS = re.compile(r"^progress (\d+)/(\d+)$")
LAYER_CHECK = re.compile(r"^layer \d+: ")
RUN = re.compile(r"^run layers (\d+)-(\d+), seq_len (\d+), steps (\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class CsimResult:
    passed: int
    failed: int
    output: str
    stream_warnings: list[str]
    layers: int = 0  # layer output checks (plus one for the final pruning state)
    checks: list[str] = field(default_factory=list)  # the testbench's per-check lines
    measured: CsimCounters | None = None  # bytes at the ports, cycle estimate (counters.py)
    run: RunExtent | None = None  # the golden run's extent (tb/data/run.bin)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.stream_warnings and self.passed > 0

    def as_dict(self) -> dict[str, object]:
        """`spatten csim --json`: the verdict and what the design measured."""
        return {
            "passed": self.passed,
            "failed": self.failed,
            "run": dataclasses.asdict(self.run) if self.run else None,
            **self.measured.as_dict(),
        }

    def summary(self) -> str:
        """What was compared and the verdict, e.g. '12 layers + pruning state: 13 passed'."""
        layers = f"{self.layers} layer{'s' if self.layers != 1 else ''}"
        return f"{layers} + pruning state: {self.passed} passed, {self.failed} failed"


def run_csim(project: Path, timeout_s: float = 3600.0, progress: bool = False) -> CsimResult:
    """Build and run the testbench of `project`; `progress` draws bars on a terminal."""
    project = Path(project)
    testbench = project / "tb" / "tb_spatten_top.cpp"
    if not testbench.is_file():
        raise CodegenError(f"{project}: not a spatten-hls project (no tb/tb_spatten_top.cpp)")
    sources = [*sorted((project / "src").glob("*.cpp")), testbench]
    includes = [project / "src" / "engines", project / "src", project / "tb"]
    with ExitStack() as stack:
        with tqdm(
            total=1,
            desc="build (g++)",
            disable=not progress,
            leave=False,
            bar_format="{desc}: {elapsed}",
        ) as bar:
            binary = stack.enter_context(_testbench(project, sources, includes))
            bar.update()
        data = str((project / "tb" / "data").resolve())
        output = _run_testbench([str(binary), data], timeout_s, progress, project)
    warnings = [line for line in output.splitlines() if STREAM_WARNING.search(line)]
    found = SUMMARY.findall(output)
    if not found:
        reason = next(
            (line for line in output.splitlines() if line.startswith("error: ")),
            output.strip()[-300:],
        )
        raise CodegenError(f"{project}: the testbench stopped: {reason.removeprefix('error: ')}")
    passed, failed = (int(x) for x in found[-1])
    if warnings:
        failed += 1
    checks = [
        line
        for line in output.splitlines()
        if LAYER_CHECK.match(line) or line.startswith("pruning state: ")
    ]
    layers = sum(1 for line in checks if LAYER_CHECK.match(line))
    measured = counters_from_lines(output.splitlines())
    if measured is None:
        raise CodegenError(f"{project}: the testbench printed no csim counters")
    return CsimResult(passed, failed, output, warnings, layers, checks, measured, _run(output))


def _run(output: str) -> RunExtent | None:
    """The extent the testbench printed."""
    found = RUN.search(output)
    if found is None:
        return None
    first, last, seq_len, steps = (int(x) for x in found.groups())
    return RunExtent(first, last - first + 1, seq_len, steps)


@contextmanager
def _testbench(project: Path, sources: list[Path], includes: list[Path]) -> Iterator[Path]:
    """The testbench binary: from the user cache (one build per distinct project), or, where
    the cache cannot be written, built for this run only in a temporary directory."""
    cache = user_cache_dir() / "csim"
    try:
        binary = build_cached(sources, includes, cache, "tb_spatten_top")
    except OSError:
        with tempfile.TemporaryDirectory(prefix="spatten-csim-") as tmp:
            binary = Path(tmp) / "csim"
            run_compiler(compiler_command(sources, includes, binary), f"the testbench of {project}")
            yield binary
        return
    prune_cache(cache)
    yield binary


def _run_testbench(command: list[str], timeout_s: float, progress: bool, project: Path) -> str:
    """Run the binary, following its `progress D/T` lines; return everything it printed."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        process.kill()

    timer = threading.Timer(timeout_s, expire)
    timer.start()
    lines: list[str] = []
    try:
        with tqdm(desc="layers", unit="invocation", disable=not progress, leave=False) as bar:
            for line in process.stdout:
                found = PROGRESS.match(line.strip())
                if found:
                    bar.total = int(found.group(2))
                    bar.update(int(found.group(1)) - bar.n)
                else:
                    lines.append(line.rstrip("\n"))
        process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    if expired.is_set():
        raise CodegenError(f"{project}: C-simulation ran past {timeout_s:.0f} s")
    return "\n".join(lines)
