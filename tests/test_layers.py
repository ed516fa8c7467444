"""The architecture holds: import contracts (import-linter), no private names imported across
modules, and the op table, the simulator's handlers and the engine lowering cover one op set.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spatten_hls.compiler.ir.ops import OP_KINDS
from spatten_hls.compiler.passes.lower_to_engines import ENGINE_OF
from spatten_hls.compiler.sim.interpreter import HANDLERS

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"compiler": "spatten_hls/compiler", "kernels": "spatten_hls/kernels"}
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path, config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def package_copy(tmp_path: Path) -> Path:
    """The packages laid out as installed (spatten_hls/compiler, ...), to edit freely."""
    for folder, target in PACKAGES.items():
        shutil.copytree(
            REPO / folder, tmp_path / target, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tmp_path


@pytest.mark.skipif(not LINT_IMPORTS.is_file(), reason="import-linter is not installed")
def test_the_import_contracts_hold_and_catch_a_wrong_import(tmp_path: Path) -> None:
    root = package_copy(tmp_path)
    kept = lint_imports(root, REPO / "pyproject.toml")
    assert kept.returncode == 0, kept.stdout[-2000:]
    assert "3 kept, 0 broken" in kept.stdout
    # The simulator reading the config is exactly what the contracts forbid.
    result = root / "spatten_hls" / "compiler" / "sim" / "result.py"
    result.write_text(result.read_text() + "\nfrom spatten_hls.compiler.config import Config\n")
    broken = lint_imports(root, REPO / "pyproject.toml")
    assert broken.returncode == 1
    assert "Back-ends read the IR and its plan, never the config" in broken.stdout
    assert "BROKEN" in broken.stdout and "spatten_hls.compiler.sim.result" in broken.stdout


def _private(name: str) -> bool:
    """`_name` is private; dunders (`__version__`) are public."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def package_modules() -> list[Path]:
    return sorted(p for folder in PACKAGES for p in (REPO / folder).rglob("*.py"))


def test_no_module_imports_another_modules_private_names() -> None:
    offences = []
    for path in package_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("spatten_hls"):
                offences += [
                    f"{path.name}: from {node.module} import {a.name}"
                    for a in node.names
                    if _private(a.name)
                ]
                modules |= {a.asname or a.name for a in node.names}
            elif isinstance(node, ast.Import):
                modules |= {
                    (a.asname or a.name).split(".")[0]
                    for a in node.names
                    if a.name.startswith("spatten_hls")
                }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and _private(node.attr)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
            ):
                offences.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert offences == []


def test_ops_handlers_and_engines_cover_one_op_set() -> None:
    kinds = set(OP_KINDS)
    assert {cls.KIND for cls in HANDLERS} == kinds
    assert set(ENGINE_OF) == kinds
