"""Optional PNG plots of a performance report (matplotlib, the `plot` extra): the roofline
with the design's point, and the tokens and DRAM bytes of each layer."""

from __future__ import annotations

from pathlib import Path

from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.perf.report import Report


def plot_report(report: Report, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        raise CompilerError("--plot needs matplotlib: pip install 'spatten-hls[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roof = report.roofline
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    intensity = [roof.ridge_op_per_byte / 64 * 2**i for i in range(13)]
    left.plot(intensity, [min(roof.compute_roof_gops, x * roof.bandwidth_gbps)
                          for x in intensity], color="black", label="roofline")
    left.scatter([roof.op_per_byte], [roof.throughput_gops], color="tab:red", zorder=3,
                 label=f"design: {roof.throughput_gops:.0f} GOP/s at {roof.op_per_byte:.2f} "
                       "op/B")
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xlabel("operational intensity (op / DRAM byte)")
    left.set_ylabel("GOP/s")
    left.set_title(f"roofline ({report.bound}-bound)")
    left.legend(fontsize=8)
    left.grid(alpha=0.3, which="both")
    layers = [row.layer for row in report.layers]
    right.bar(layers, [row.tokens for row in report.layers], color="tab:blue",
              label="tokens entering")
    right.set_xlabel("layer")
    right.set_ylabel("tokens", color="tab:blue")
    bytes_axis = right.twinx()
    bytes_axis.plot(layers, [row.dram_bytes for row in report.layers], color="tab:orange",
                    marker="o", label="DRAM bytes")
    bytes_axis.set_ylabel("DRAM bytes", color="tab:orange")
    right.set_title("per layer")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
