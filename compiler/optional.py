"""Optional dependencies: each feature that needs an extra says so in one error line.

The core install (`pip install spatten-hls`) compiles, simulates and reports; real models need
the `realmodels` extra, plots the `plot` extra. A feature calls `require(extra, feature)`
before it imports anything of the extra.
"""

from __future__ import annotations

import importlib

from spatten_hls.compiler.errors import CompilerError

# extra -> the modules it installs (pyproject.toml [project.optional-dependencies])
EXTRAS: dict[str, tuple[str, ...]] = {
    "realmodels": ("safetensors", "tokenizers"),
    "plot": ("matplotlib",),
    "sweep": ("dask", "distributed", "matplotlib"),
}


class MissingDependency(CompilerError):
    """A feature's optional dependency is not installed."""


def require(extra: str, feature: str) -> None:
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingDependency(
                f"{feature} needs '{module}' ({exc.name or module} is not importable): "
                f"pip install 'spatten-hls[{extra}]'"
            ) from None
