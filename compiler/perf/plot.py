"""Optional PNG plots of a performance report (matplotlib, the `plot` extra): the roofline
with its peak and the design's point, and the tokens entering and kept and the DRAM bytes of
each layer. The figure names the model, the config and the part."""

from __future__ import annotations

import io

from spatten_hls.compiler.optional import require
from spatten_hls.compiler.perf.report import Report


def plot_report(report: Report) -> bytes:
    """The report's figure as PNG bytes (the caller writes them atomically)."""
    fig = report_figure(report)
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def report_figure(report: Report):  # -> matplotlib.figure.Figure (an optional dependency)
    require("plot", "--plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roof = report.roofline
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6), dpi=110)
    fig.suptitle(
        f"{report.model} ({report.stage}), config {report.config}, on {report.hardware['part']}",
        fontsize=10,
    )
    # The roofline spans a decade and a half either side of both the ridge and the design.
    point = roof.op_per_byte if roof.op_per_byte != float("inf") else roof.ridge_op_per_byte
    low = min(point, roof.ridge_op_per_byte) / 32
    high = max(point, roof.ridge_op_per_byte) * 32
    intensity = [low * (high / low) ** (i / 64) for i in range(65)]
    left.plot(
        intensity,
        [min(roof.compute_roof_gops, x * roof.bandwidth_gbps) for x in intensity],
        color="black",
        label="roofline",
    )
    left.axhline(roof.compute_roof_gops, color="gray", linestyle=":", linewidth=0.8)
    left.annotate(
        f"peak {roof.compute_roof_gops:.0f} GOP/s ({report.hardware['multipliers']} multipliers)",
        (high, roof.compute_roof_gops),
        ha="right",
        va="bottom",
        fontsize=8,
    )
    left.annotate(
        f"{roof.bandwidth_gbps:.0f} GB/s",
        (low * 2, low * 2 * roof.bandwidth_gbps),
        rotation=30,
        fontsize=8,
    )
    left.scatter(
        [point],
        [roof.throughput_gops],
        color="tab:red",
        zorder=3,
        label=f"design: {roof.throughput_gops:.0f} GOP/s at {point:.2f} op/B",
    )
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xlabel("operational intensity (integer ops / DRAM byte)")
    left.set_ylabel("GOP/s")
    left.set_title(f"roofline ({report.bound}-bound)", fontsize=10)
    left.legend(fontsize=8, loc="lower right")
    left.grid(alpha=0.3, which="both")
    layers = [row.layer for row in report.layers]
    right.bar(
        [x - 0.2 for x in layers],
        [row.tokens for row in report.layers],
        width=0.4,
        color="tab:blue",
        label="tokens entering",
    )
    right.bar(
        [x + 0.2 for x in layers],
        [row.kept_tokens for row in report.layers],
        width=0.4,
        color="tab:cyan",
        label="tokens kept",
    )
    right.set_xlabel("layer")
    right.set_ylabel("tokens")
    bytes_axis = right.twinx()
    bytes_axis.plot(
        layers,
        [row.dram_bytes for row in report.layers],
        color="tab:orange",
        marker="o",
        label="DRAM bytes",
    )
    bytes_axis.set_ylabel("DRAM bytes", color="tab:orange")
    handles = right.get_legend_handles_labels()[0] + bytes_axis.get_legend_handles_labels()[0]
    right.legend(handles=handles, fontsize=8, loc="upper right")
    right.set_title("per layer", fontsize=10)
    fig.tight_layout()
    return fig
