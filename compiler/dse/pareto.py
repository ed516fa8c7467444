"""The non-dominated points of a sweep, as DIR/pareto.csv and DIR/pareto.png.

A point dominates another when it is at least as good in every objective and better in one
(each metric in its own better direction, `metrics.DIRECTION`). Only points that evaluated and
fit the part (`fits` not false) compete: a design that cannot be built is on no front.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

from spatten_hls.compiler.dse.metrics import DIRECTION


def candidates(records: Sequence[dict[str, Any]], objectives: Sequence[str]) -> list[dict]:
    """The records that compete: evaluated, fitting, with a finite value of every objective."""
    out = []
    for r in records:
        if r["status"] != "ok" or r["metrics"].get("fits") is False:
            continue
        values = [r["metrics"].get(name) for name in objectives]
        if all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            out.append(r)
    return out


def _key(record: dict[str, Any], objectives: Sequence[str]) -> tuple[float, ...]:
    return tuple(DIRECTION[name] * record["metrics"][name] for name in objectives)


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b


def pareto_front(records: Sequence[dict[str, Any]], objectives: Sequence[str]) -> list[dict]:
    """The non-dominated records, ordered by their objectives (best first in the first).

    In lexicographic order a point can only be dominated by one before it, and if by any, then
    by one already on the front (domination is transitive): one pass against the front.
    """
    ranked = sorted(candidates(records, objectives), key=lambda r: _key(r, objectives))
    front: list[dict[str, Any]] = []
    keys: list[tuple[float, ...]] = []
    for record in ranked:
        key = _key(record, objectives)
        if not any(_dominates(k, key) for k in keys):
            front.append(record)
            keys.append(key)
    return front


def _cell(value: Any) -> str:
    """A CSV cell: floats at full precision, lists as Python writes them, the rest as text."""
    return repr(value) if isinstance(value, float | list | dict) else str(value)


def front_csv(
    front: Sequence[dict[str, Any]], keys: Sequence[str], objectives: Sequence[str]
) -> str:
    """id, the swept keys, the objectives, then fits: one row per front point."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", *keys, *objectives, "fits"])
    for r in front:
        writer.writerow(
            [
                r["id"],
                *(_cell(r["point"].get(k)) for k in keys),
                *(_cell(r["metrics"][name]) for name in objectives),
                _cell(r["metrics"].get("fits")),
            ]
        )
    return out.getvalue()


def front_png(
    records: Sequence[dict[str, Any]],
    front: Sequence[dict[str, Any]],
    objectives: Sequence[str],
    title: str,
) -> bytes:
    """Every competing point and the front, in the first two objectives (one objective: its
    value against the points' rank)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = candidates(records, objectives)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    if len(objectives) >= 2:
        x_name, y_name = objectives[0], objectives[1]
        xs = [r["metrics"][x_name] for r in points]
        ys = [r["metrics"][y_name] for r in points]
        ax.scatter(xs, ys, s=12, color="0.65", label=f"{len(points)} points")
        fx = [r["metrics"][x_name] for r in front]
        fy = [r["metrics"][y_name] for r in front]
        ax.plot(fx, fy, "o-", color="C3", ms=5, label=f"front ({len(front)})")
        ax.set_xlabel(_label(x_name))
        ax.set_ylabel(_label(y_name))
    else:
        name = objectives[0]
        values = sorted(DIRECTION[name] * r["metrics"][name] for r in points)
        ax.plot(
            range(len(values)),
            [DIRECTION[name] * v for v in values],
            ".",
            color="0.4",
            label=f"{len(points)} points, best first",
        )
        ax.set_xlabel("point rank")
        ax.set_ylabel(_label(name))
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _label(name: str) -> str:
    return f"{name} ({'lower' if DIRECTION[name] > 0 else 'higher'} is better)"
