"""DRAM traffic of SpAtten's techniques, added one at a time, against the dense baseline.

Runs the bit-accurate simulator on the example configs (seeded random inputs) and prints,
per variant, the bytes read (Q, K MSB, K LSB, V), the reduction against the dense 12-bit
design, and the step-wise factor each technique adds:

    python bench/dram_breakdown.py [--seed 0]

Variants: dense 12-bit; + cascade token pruning; + local value pruning; + head pruning (if
the config enables it); + the config's static bit widths (K fetched whole); + progressive
quantization (if enabled).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from spatten_hls.compiler.config import QuantizationSection, load_config
from spatten_hls.compiler.frontend import load_model
from spatten_hls.compiler.frontend.builder import build_attention_graph
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline
from spatten_hls.compiler.sim import simulate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "configs"
CASES = (("bert-base", "bert-base-spatten.toml"), ("gpt2-small", "gpt2-small-traces.toml"))


def variants(cfg):
    off = dataclasses.replace
    twelve = QuantizationSection(q_bits=12, k_msb_bits=8, k_lsb_bits=4, v_bits=12)
    base = off(
        cfg,
        token_pruning=off(cfg.token_pruning, enabled=False),
        value_pruning=off(cfg.value_pruning, enabled=False),
        head_pruning=off(cfg.head_pruning, enabled=False),
        quantization=twelve,
    )
    steps = [("dense 12-bit", base)]
    if cfg.token_pruning.enabled:
        base = off(base, token_pruning=cfg.token_pruning)
        steps.append(("+ token pruning", base))
    if cfg.value_pruning.enabled:
        base = off(base, value_pruning=cfg.value_pruning)
        steps.append(("+ value pruning", base))
    if cfg.head_pruning.enabled:
        base = off(base, head_pruning=cfg.head_pruning)
        steps.append(("+ head pruning", base))
    static = off(cfg.quantization, progressive=False)
    if static != twelve:
        base = off(base, quantization=static)
        steps.append(("+ static bit widths", base))
    if cfg.quantization.progressive:
        steps.append(("+ progressive quantization", off(base, quantization=cfg.quantization)))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for model_name, config_file in CASES:
        model, cfg = load_model(model_name), load_config(EXAMPLES / config_file)
        print(f"\n{model_name} ({config_file}), seed {args.seed}")
        print(
            f"{'variant':28s} {'q':>11s} {'k_msb':>11s} {'k_lsb':>11s} {'v':>11s} "
            f"{'total':>12s} {'vs dense':>9s} {'step':>6s} {'requant':>8s}"
        )
        previous = None
        for name, variant in variants(cfg):
            graph = run_pipeline(build_attention_graph(model, variant), variant, DEFAULT_PIPELINE)
            result = simulate(graph, seed=args.seed, reference=False)
            d = result.dram_bytes
            requant = max(r.requant_fraction for r in result.layers)
            step = previous / d["total"] if previous else 1.0
            print(
                f"{name:28s} {d['q']:11,d} {d['k_msb']:11,d} {d['k_lsb']:11,d} {d['v']:11,d} "
                f"{d['total']:12,d} {result.dram_reduction:8.2f}x {step:5.2f}x "
                f"{requant:8.1%}"
            )
            previous = d["total"]


if __name__ == "__main__":
    main()
