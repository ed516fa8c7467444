"""C-simulation of an emitted project with g++: build the testbench, run it, judge it."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from spatten_hls.compiler.codegen.toolchain import compiler_command, run_compiler
from spatten_hls.compiler.errors import CodegenError

STREAM_WARNING = re.compile(r"Hls::stream .*(read while empty|leftover)", re.IGNORECASE)
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)


@dataclass(frozen=True)
class CsimResult:
    passed: int
    failed: int
    output: str
    stream_warnings: list[str]

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.stream_warnings and self.passed > 0


def run_csim(project: Path, timeout_s: float = 3600.0) -> CsimResult:
    project = Path(project)
    testbench = project / "tb" / "tb_spatten_top.cpp"
    if not testbench.is_file():
        raise CodegenError(f"{project}: not a spatten-hls project (no tb/tb_spatten_top.cpp)")
    sources = [*sorted((project / "src").glob("*.cpp")), testbench]
    with tempfile.TemporaryDirectory(prefix="spatten-csim-") as tmp:
        binary = Path(tmp) / "csim"
        command = compiler_command(sources, [project / "src" / "engines", project / "src",
                                             project / "tb"], binary)
        command.insert(-3, f'-DDATA_DIR="{(project / "tb" / "data").resolve()}"')
        run_compiler(command, f"the testbench of {project}")
        try:
            done = subprocess.run([str(binary)], capture_output=True, text=True,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise CodegenError(f"{project}: C-simulation ran past {timeout_s:.0f} s") from None
    output = done.stdout + done.stderr
    warnings = [line for line in output.splitlines() if STREAM_WARNING.search(line)]
    found = SUMMARY.findall(done.stdout)
    if not found:
        raise CodegenError(f"{project}: the testbench printed no 'N passed, M failed' line "
                           f"(exit {done.returncode}): {output.strip()[-300:]}")
    passed, failed = (int(x) for x in found[-1])
    if warnings:
        failed += 1
    return CsimResult(passed, failed, output, warnings)
