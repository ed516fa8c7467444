"""Resolve the command line's MODEL argument to a `ModelSpec`.

MODEL is a preset name, a Hugging Face `config.json` (any `.json` file), a model directory
(holding `config.json`, or else exactly one `.gguf` file), or a `.gguf` file. Preset names win
over same-named paths, so `spatten ir bert-base` means the same thing in every directory.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from spatten_hls.compiler.errors import FrontendError
from spatten_hls.compiler.frontend.gguf_meta import read_gguf
from spatten_hls.compiler.frontend.hf_config import read_hf_config
from spatten_hls.compiler.frontend.model import ModelSpec
from spatten_hls.compiler.frontend.presets import PRESETS, preset_names


def _from_directory(directory: Path) -> ModelSpec:
    """A model directory: its `config.json` (the HF layout), else its only `.gguf` file."""
    config = directory / "config.json"
    if config.is_file():
        return read_hf_config(config)
    ggufs = sorted(p for p in directory.glob("*.gguf") if p.is_file())
    if len(ggufs) == 1:
        return read_gguf(ggufs[0])
    if ggufs:
        names = ", ".join(p.name for p in ggufs)
        raise FrontendError(
            f"{directory}: no config.json and several .gguf files ({names}); name one of them"
        )
    raise FrontendError(f"{directory}: model directory holds neither config.json nor a .gguf file")


def _from_file(path: Path) -> ModelSpec:
    suffix = path.suffix.lower()
    if suffix == ".gguf":
        return read_gguf(path)
    if suffix == ".json":
        return read_hf_config(path)
    raise FrontendError(
        f"{path}: unsupported model file type '{path.suffix}' "
        f"(expected a .json config or a .gguf file)"
    )


def _looks_like_path(arg: str) -> bool:
    """True when the user evidently meant a file rather than a preset name."""
    return "/" in arg or "\\" in arg or arg.lower().endswith((".json", ".gguf"))


def load_model(arg: str) -> ModelSpec:
    """The `ModelSpec` named by a MODEL argument; `FrontendError` when it cannot be resolved."""
    if arg in PRESETS:
        return PRESETS[arg]
    path = Path(arg)
    if path.is_dir():
        return _from_directory(path)
    if path.exists():
        return _from_file(path)
    if _looks_like_path(arg):
        raise FrontendError(f"{arg}: no such file")
    close = difflib.get_close_matches(arg, preset_names(), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise FrontendError(
        f"unknown model '{arg}': not a preset ({', '.join(preset_names())}) and no such file{hint}"
    )
