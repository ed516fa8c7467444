"""Documented upper limits on everything a user's input can make the tool allocate or loop over.

Inputs are untrusted (model files and configs from colleagues and the internet), so every
declared size is checked against these limits before anything is built from it. The limits sit
above every published model (Llama-3.1-405B: 126 layers, 128 heads, hidden 16384) where the IR
stays fast; docs/cli.md ("Limits") lists them.
"""

from __future__ import annotations

# Model shape, from a preset, config.json or GGUF metadata.
MAX_LAYERS = 256
MAX_HEADS = 256
MAX_HEAD_DIM = 1024
MAX_HIDDEN = 1 << 16
MAX_POSITIONS = 1 << 24
# Attention heads in the whole model (layers x query heads): the IR holds ~12 nodes per head,
# and at 8192 heads the full pipeline takes about 20 s.
MAX_MODEL_HEADS = 8192

# Workload, from the config.
MAX_SEQ_LEN = 1 << 15
MAX_GEN_TOKENS = 1 << 13
MAX_BUFFER_TOKENS = 1 << 16
# Peak memory a simulation or compile may plan for (inputs, codes, score matrices).
MAX_WORKING_SET_BYTES = 8 << 30

# GGUF metadata (checked before the reader parses the header).
MAX_GGUF_TENSORS = 1 << 16
MAX_GGUF_KEYS = 1 << 16
MAX_GGUF_STRING = 1 << 24
MAX_GGUF_ARRAY = 1 << 22
MAX_GGUF_ARRAY_DEPTH = 4
MAX_GGUF_DIMS = 8

# Bytes per kind of input file.
FILE_LIMITS: dict[str, int] = {
    "config file": 1 << 20,
    "model config": 16 << 20,
    "GGUF file": 64 << 30,
    "safetensors file": 16 << 30,
    "tokenizer file": 256 << 20,
    "text file": 64 << 20,
    "inputs file": 8 << 30,
    "IR file": 1 << 30,
    "synthesis report": 256 << 20,
    "project source": 16 << 20,
}


def format_bytes(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            value = n / (1 << shift)
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"
