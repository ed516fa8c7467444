"""The metrics a sweep records at every point, and which way each one is better.

Performance metrics come from `spatten report`'s model (simulated with seeded random inputs at
the config's workload); fidelity metrics from `spatten eval` on a real model, when the space
has an [eval] table. Every objective is minimized in its better direction: a metric that is
better higher (a cosine, a reduction) is negated for the Pareto comparison.
"""

from __future__ import annotations

from typing import Any

from spatten_hls.compiler.errors import ConfigError

# metric -> +1 if lower is better, -1 if higher is better
PERF_METRICS: dict[str, int] = {
    "latency_cycles": 1,
    "latency_s": 1,
    "throughput_gops": -1,
    "effective_throughput_gops": -1,
    "dram_bytes": 1,
    "dram_reduction": -1,
    "dsp": 1,
    "bram_18k": 1,
    "uram": 1,
}
FIDELITY_METRICS: dict[str, int] = {
    # decoders
    "ppl": 1,
    "ppl_change": 1,
    "top1_agreement": -1,
    "requant_fraction": 1,
    # encoders
    "mean_cosine": -1,
    "min_cosine": -1,
    "nn_agreement": -1,
    # both: KV (key) entries read over dense, and the real text's attention DRAM reduction
    "kv_read_fraction": 1,
    "eval_dram_reduction": -1,
}
DIRECTION = {**PERF_METRICS, **FIDELITY_METRICS}


def check_metric(name: Any, where: str) -> str:
    if not isinstance(name, str) or name not in DIRECTION:
        raise ConfigError(
            f"{where}: unknown metric {name!r} (known: {', '.join(sorted(DIRECTION))})"
        )
    return name


def perf_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The sweep's performance metrics from `performance_report(...).as_dict()`."""
    resources = report["resources"]
    return {
        "latency_cycles": report["latency_cycles"],
        "latency_s": report["latency_s"],
        "throughput_gops": report["throughput_gops"],
        "effective_throughput_gops": report["effective_throughput_gops"],
        "dram_bytes": report["dram_bytes"],
        "dram_reduction": report["dram_reduction"],
        "dsp": resources["dsp"],
        "bram_18k": resources["bram_18k"],
        "uram": resources["uram"],
        "fits": report["fits"],
        "bound": report["bound"],
    }


def fidelity_metrics(fidelity: dict[str, Any]) -> dict[str, Any]:
    """The sweep's fidelity metrics from a Decoder/EncoderFidelity's `as_dict()`."""
    if "ppl_spatten" in fidelity:
        names = {"ppl_spatten": "ppl", "ppl_dense": "ppl_dense", "ppl_change": "ppl_change"}
        names |= {k: k for k in ("top1_agreement", "requant_fraction")}
    else:
        names = {k: k for k in ("mean_cosine", "min_cosine", "nn_agreement")}
    names |= {"kv_read_fraction": "kv_read_fraction", "dram_reduction": "eval_dram_reduction"}
    return {ours: fidelity[theirs] for theirs, ours in names.items()}
