"""Plot a fidelity-vs-DRAM Markdown table (from minilm_fidelity.py / smollm2_fidelity.py).

    python examples/smollm2_fidelity.py > table.md
    python examples/plot_table.py table.md --metric "vs dense" -o smollm2.png

Needs matplotlib (`pip install ".[plot]"`).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = [
        line.strip().strip("|").split("|")
        for line in path.read_text().splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]
    header, *body = [[cell.strip() for cell in row] for row in rows]
    return header, body


def number(cell: str) -> float:
    return float(cell.rstrip("x%").replace("+", "")) / (100 if cell.endswith("%") else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=Path)
    parser.add_argument("--metric", required=True, help="column to plot against DRAM")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    header, body = read_table(args.table)
    x_col, y_col = header.index("DRAM reduction"), header.index(args.metric)
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=120)
    for i, row in enumerate(body, start=1):
        x, y = number(row[x_col]), number(row[y_col])
        ax.scatter(x, y, label=f"{i}: {row[0][:60]} ({row[1] if len(header) > 5 else ''})")
        ax.annotate(str(i), (x, y), fontsize=8, xytext=(4, 3), textcoords="offset points")
    if args.metric == "vs dense":
        ax.set_yscale("symlog", linthresh=0.05)
    ax.set_xlabel("attention DRAM reduction vs dense 12-bit (x)")
    ax.set_ylabel("perplexity increase over dense" if args.metric == "vs dense" else args.metric)
    ax.set_title(args.table.stem)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(args.output)


if __name__ == "__main__":
    main()
