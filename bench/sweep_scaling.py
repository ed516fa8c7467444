"""`spatten sweep` throughput on Dask: a performance-only grid on BERT-base at 1 and 2 workers.

Builds a 576-point grid (token keep x K MSB bits x multipliers x top-k comparators x head keep,
token and head pruning on), sweeps it into a fresh directory with a local cluster of 1 worker
process, then again with 2, in this process, and prints the points per second of each, the
speed-up, and the Pareto front of latency against DRAM bytes (identical in both runs).

    python bench/sweep_scaling.py [--workers 1 2] [--limit N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from spatten_hls.compiler.dse.space import load_space
from spatten_hls.compiler.dse.sweep import run_sweep

SPACE = """
base = "base.toml"
[space]
"token_pruning.keep" = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
"quantization.k_msb_bits" = [4, 6, 8]
"hardware.multipliers" = [256, 512, 1024, 2048]
"hardware.topk_parallelism" = [4, 16]
"head_pruning.keep" = [0.7, 0.9, 1.0]
[sweep]
objectives = ["latency_cycles", "dram_bytes"]
"""
BASE = "[token_pruning]\nenabled = true\n[head_pruning]\nenabled = true\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--limit", type=int, help="sample this many points instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "base.toml").write_text(BASE)
        text = SPACE
        if args.limit:
            text += f'mode = "random"\nsamples = {args.limit}\n'
        (folder / "space.toml").write_text(text)
        space = load_space(folder / "space.toml")
        rates, fronts = {}, {}
        for workers in args.workers:
            start = time.perf_counter()
            outcome = run_sweep(
                "bert-base", space, folder / f"w{workers}", None, workers, False, None
            )
            seconds = time.perf_counter() - start
            failed = sum(r["status"] != "ok" for r in outcome.records)
            rates[workers] = outcome.evaluated / seconds
            fronts[workers] = [r["id"] for r in outcome.front]
            mean = sum(r["seconds"] for r in outcome.records) / len(outcome.records)
            print(
                f"{workers} worker(s): {outcome.evaluated} points ({failed} failed) in "
                f"{seconds:.1f} s, cluster start included: {rates[workers]:.2f} points/s; "
                f"{mean:.3f} s per point inside a worker; front of {len(outcome.front)}"
            )
        base = args.workers[0]
        for workers in args.workers[1:]:
            print(
                f"speed-up {workers} vs {base} worker(s): {rates[workers] / rates[base]:.2f}x; "
                f"same front: {fronts[workers] == fronts[base]}"
            )
        front = outcome.front
        print("front (latency_cycles, dram_bytes):")
        for r in front:
            m = r["metrics"]
            print(f"  {r['point']}: {m['latency_cycles']:.0f} cycles, {m['dram_bytes']:,} B")


if __name__ == "__main__":
    main()
