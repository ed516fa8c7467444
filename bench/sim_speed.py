"""Simulator speed: BERT-base dense attention (12 layers x 12 heads, d=64, seq 384).

Runs, on the same inputs in one process:
  - the bit-accurate simulator (`simulate(..., reference=False)`),
  - a numpy float64 reference (the same attention, all heads batched per layer),
  - a numpy float32 variant of it,
  - PyTorch CPU `scaled_dot_product_attention` (if torch is importable),
and prints the best-of-N wall time of each and the ratios simulator / peer.

    python bench/sim_speed.py [--seq-len 384] [--repeat 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from spatten_hls.compiler.driver import compile_model
from spatten_hls.compiler.sim import simulate
from spatten_hls.compiler.sim.inputs import random_inputs
from spatten_hls.kernels.reference import attention_float


def numpy_attention(inputs: dict, layers: int, group: int, dtype: type) -> list[np.ndarray]:
    outs = []
    for layer in range(layers):
        q = inputs[f"q{layer}"].astype(dtype)
        k = np.repeat(inputs[f"k{layer}"].astype(dtype), group, axis=0)
        v = np.repeat(inputs[f"v{layer}"].astype(dtype), group, axis=0)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1]).astype(dtype)
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        outs.append(s @ v)
    return outs


def project_reference(inputs: dict, layers: int, heads: int, group: int) -> list[np.ndarray]:
    """kernels/reference.py, one head at a time: the reference `simulate` measures against."""
    outs = []
    for layer in range(layers):
        q, k, v = (inputs[f"{t}{layer}"] for t in "qkv")
        outs.append(
            [
                attention_float(q[h], k[h // group], v[h // group], causal=False)
                for h in range(heads)
            ]
        )
    return outs


def torch_attention(inputs: dict, layers: int, group: int):  # pragma: no cover - optional
    import torch

    outs = []
    with torch.no_grad():
        for layer in range(layers):
            q, k, v = (torch.from_numpy(inputs[f"{t}{layer}"]) for t in "qkv")
            k = k.repeat_interleave(group, dim=0)
            v = v.repeat_interleave(group, dim=0)
            outs.append(torch.nn.functional.scaled_dot_product_attention(q, k, v))
    return outs


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up (JIT compile, caches)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=384)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cfg = Path(tempfile.mkdtemp()) / "bench.toml"
    cfg.write_text(f"[model]\nseq_len = {args.seq_len}\n")
    graph = compile_model("bert-base", cfg).graph
    info = graph.info
    inputs = random_inputs(info, seed=0)
    group = info.group_size

    rows = [
        (
            "spatten simulate (bit-accurate)",
            best_time(lambda: simulate(graph, inputs, reference=False), args.repeat),
        )
    ]
    rows.append(
        (
            "float64 reference (kernels/reference.py)",
            best_time(
                lambda: project_reference(inputs, info.num_layers, info.num_heads, group),
                args.repeat,
            ),
        )
    )
    rows.append(
        (
            "numpy float64, heads batched",
            best_time(
                lambda: numpy_attention(inputs, info.num_layers, group, np.float64), args.repeat
            ),
        )
    )
    rows.append(
        (
            "numpy float32, heads batched",
            best_time(
                lambda: numpy_attention(inputs, info.num_layers, group, np.float32), args.repeat
            ),
        )
    )
    try:
        import torch

        torch.set_num_threads(2)
        rows.append(
            (
                f"torch {torch.__version__} SDPA (CPU, fp32)",
                best_time(lambda: torch_attention(inputs, info.num_layers, group), args.repeat),
            )
        )
    except ImportError:
        print("torch not installed: skipping the PyTorch peer (pip install torch==2.13.0)")

    sim = rows[0][1]
    print(
        f"BERT-base dense attention: {info.num_layers} layers x {info.num_heads} heads, "
        f"seq {info.seq_len}, d={info.head_dim}"
    )
    print(f"{'run':40s} {'best s':>8s} {'sim / run':>10s}")
    for name, seconds in rows:
        print(f"{name:40s} {seconds:8.3f} {sim / seconds:10.2f}")


if __name__ == "__main__":
    main()
