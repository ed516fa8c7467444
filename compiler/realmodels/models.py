"""Which real model a MODEL argument names, and loading it (cached per process by the loaders).

Encoders: `minilm-l6` (the packaged all-MiniLM-L6-v2) or a Hugging Face BERT directory.
Decoders: `smollm2-135m` (the packaged SmolLM2-135M GGUF) or a LLaMA `.gguf` file.
"""

from __future__ import annotations

ENCODERS = ("minilm-l6",)
DECODERS = ("smollm2-135m",)


def is_decoder(model_arg: str) -> bool:
    return model_arg in DECODERS or model_arg.endswith(".gguf")


def load_real_model(model_arg: str):
    """The loaded model: a `bert.BertModel` or a `llama.LlamaModel`."""
    from spatten_hls.compiler.realmodels import bert, llama  # the realmodels extra

    if is_decoder(model_arg):
        return llama.load_llama(None if model_arg in DECODERS else model_arg)
    return bert.load_bert(None if model_arg in ENCODERS else model_arg)
