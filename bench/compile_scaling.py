"""Compile-time scaling: front-end + the default pass pipeline, layers 12 -> 96, heads 12 -> 32.

Builds a GPT-2-like model (head_dim 64, seq 128) of each shape, runs the whole default
pipeline (verify after every pass), and fits time ~ (layers x heads)^alpha by least squares
on the logs. Linear scaling is alpha ~ 1.

    python bench/compile_scaling.py
"""

from __future__ import annotations

import time

import numpy as np

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.frontend.builder import build_attention_graph
from spatten_hls.compiler.frontend.model import ModelSpec
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline

SHAPES = [(12, 12), (24, 12), (48, 12), (96, 12), (12, 16), (12, 24), (12, 32), (48, 32)]


def compile_time(layers: int, heads: int, repeat: int = 3) -> float:
    spec = ModelSpec(
        f"gpt-{layers}x{heads}", "gpt2", layers, heads, heads, 64, heads * 64, 1024, True, "bench"
    )
    cfg = Config()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run_pipeline(build_attention_graph(spec, cfg), cfg, DEFAULT_PIPELINE)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    print(f"{'layers':>6} {'heads':>5} {'layers x heads':>14} {'seconds':>8} {'ms per head':>11}")
    sizes, times = [], []
    for layers, heads in SHAPES:
        seconds = compile_time(layers, heads)
        sizes.append(layers * heads)
        times.append(seconds)
        print(
            f"{layers:6d} {heads:5d} {layers * heads:14d} {seconds:8.3f} "
            f"{1000 * seconds / (layers * heads):11.3f}"
        )
    alpha, _ = np.polyfit(np.log(sizes), np.log(times), 1)
    print(f"fitted exponent: time ~ (layers x heads)^{alpha:.2f}")


if __name__ == "__main__":
    main()
