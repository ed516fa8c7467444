"""Several configurations evaluated on the same text, side by side: one table, one figure
(fidelity against the KV entries read), for `spatten eval --compare`."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from spatten_hls.compiler.optional import require
from spatten_hls.compiler.realmodels.evaluate import DecoderFidelity, EncoderFidelity

Fidelity = EncoderFidelity | DecoderFidelity


def label(config: str) -> str:
    """A config's name in tables and figures: its file name without .toml."""
    return Path(config).name.removesuffix(".toml")


def fidelity_loss(r: Fidelity) -> float:
    """What a figure plots upwards: ppl change (decoders), 1 - mean cosine (encoders)."""
    if isinstance(r, DecoderFidelity):
        return r.ppl_spatten / r.ppl_dense - 1.0
    return 1.0 - r.mean_cosine


def table(configs: Sequence[str], results: Sequence[Fidelity]) -> str:
    """A Markdown table, one row per config, in the order given."""
    if isinstance(results[0], DecoderFidelity):
        columns = ["ppl", "change", "top-1 agreement"]
    else:
        columns = ["mean cosine", "min cosine", "nn agreement"]
    columns = ["config", *columns, "kv_read_fraction", "DRAM reduction"]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for config, r in zip(configs, results, strict=True):
        if isinstance(r, DecoderFidelity):
            cells = [
                f"{r.ppl_spatten:.3f}",
                f"{r.ppl_spatten / r.ppl_dense - 1:+.2%}",
                f"{r.top1_agreement:.1%}",
            ]
        else:
            cells = [f"{r.mean_cosine:.5f}", f"{r.min_cosine:.5f}", f"{r.nn_agreement:.1%}"]
        cells += [f"{r.kv_read_fraction:.3f}", f"{r.dram_reduction:.2f}x"]
        lines.append("| " + " | ".join([label(config), *cells]) + " |")
    return "\n".join(lines) + "\n"


def figure_png(configs: Sequence[str], results: Sequence[Fidelity], title: str) -> bytes:
    """Fidelity loss against kv_read_fraction, a labelled point per config (PNG bytes)."""
    require("plot", "--plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    decoder = isinstance(results[0], DecoderFidelity)
    fig, ax = plt.subplots(figsize=(7.2, 4.6), dpi=110)
    markers = "osD^vP*X<>"
    for i, (config, r) in enumerate(zip(configs, results, strict=True)):
        ax.scatter(
            [r.kv_read_fraction],
            [100 * fidelity_loss(r)],
            marker=markers[i % len(markers)],
            s=42,
            label=label(config),
        )
    ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("KV entries read (fraction of dense)")
    ax.set_ylabel("perplexity change (%)" if decoder else "1 - mean cosine (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
