"""Model front-ends: presets, Hugging Face `config.json` and GGUF metadata -> `ModelSpec`."""

from spatten_hls.compiler.frontend.load import load_model
from spatten_hls.compiler.frontend.model import FAMILIES, ModelSpec
from spatten_hls.compiler.frontend.presets import PRESETS, preset_names

__all__ = ["FAMILIES", "PRESETS", "ModelSpec", "load_model", "preset_names"]
