"""`spatten tune`: the cheapest point of a sweep that meets a target, as a config TOML.

A target is one or more comparisons joined by commas or `and`:
`"ppl_change<=0.05"`, `"ppl_change <= 0.05 and latency_cycles < 2e6"`. The winner minimizes
(or, for a metric that is better higher, maximizes) `--minimize METRIC` among the points that
evaluated, fit the part and meet every comparison; ties go to the point first in the space's
order.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.dse.metrics import DIRECTION, check_metric
from spatten_hls.compiler.errors import CompilerError, ConfigError

_COMPARISON = re.compile(r"\s*([a-z_0-9]+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*")
_OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
MAX_TARGET = 500


@dataclass(frozen=True)
class Comparison:
    metric: str
    op: str
    bound: float

    def holds(self, metrics: dict[str, Any]) -> bool:
        value = metrics.get(self.metric)
        return isinstance(value, int | float) and _OPERATORS[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


def parse_target(text: str) -> tuple[Comparison, ...]:
    if len(text) > MAX_TARGET:
        raise ConfigError(f"--target: longer than {MAX_TARGET} characters")
    parts = [p for p in re.split(r",|\band\b", text) if p.strip()]
    if not parts:
        raise ConfigError('--target: empty (e.g. "ppl_change<=0.05")')
    out = []
    for part in parts:
        match = _COMPARISON.fullmatch(part)
        if match is None:
            raise ConfigError(
                f"--target: {part.strip()!r} is not METRIC OP NUMBER (OP one of <=, <, >=, >)"
            )
        metric = check_metric(match[1], "--target")
        try:
            bound = float(match[3])
        except ValueError:
            raise ConfigError(f"--target: {match[3]!r} is not a number") from None
        out.append(Comparison(metric, match[2], bound))
    return tuple(out)


@dataclass(frozen=True)
class Choice:
    winner: dict[str, Any]
    meeting: list[dict[str, Any]]  # every point that meets the target, best first
    evaluated: int


def choose(
    records: Sequence[dict[str, Any]], target: Sequence[Comparison], minimize: str
) -> Choice:
    ok = [r for r in records if r["status"] == "ok" and r["metrics"].get("fits") is not False]
    meeting = [
        r
        for r in ok
        if all(c.holds(r["metrics"]) for c in target)
        and isinstance(r["metrics"].get(minimize), int | float)
    ]
    if not meeting:
        raise CompilerError(
            f"no point meets {' and '.join(map(str, target))}: {len(ok)} of {len(records)} "
            f"points evaluated and fit{_closest(ok, target)}"
        )
    order = {id(r): i for i, r in enumerate(records)}  # ties: the space's order
    meeting.sort(key=lambda r: (DIRECTION[minimize] * r["metrics"][minimize], order[id(r)]))
    return Choice(meeting[0], meeting, len(ok))


def _closest(ok: Sequence[dict[str, Any]], target: Sequence[Comparison]) -> str:
    """The best value reached of the first comparison, to say how far the target is."""
    first = target[0]
    values = [r["metrics"][first.metric] for r in ok if first.metric in r["metrics"]]
    if not values:
        return ""
    best = min(values) if DIRECTION[first.metric] > 0 else max(values)
    return f"; the best {first.metric} reached is {best:.6g}"


def why(
    choice: Choice, target: Sequence[Comparison], minimize: str, keys: Sequence[str]
) -> list[str]:
    """The reasons, one line each: what it scored, against how many, and the runner-up (named
    by its values of `keys`)."""
    w = choice.winner["metrics"][minimize]
    lines = [
        f"{minimize} = {w:.6g}, the {'least' if DIRECTION[minimize] > 0 else 'most'} of the "
        f"{len(choice.meeting)} of {choice.evaluated} evaluated points that meet "
        f"{' and '.join(map(str, target))}",
        "it scores "
        + ", ".join(f"{c.metric} = {choice.winner['metrics'][c.metric]:.6g}" for c in target),
    ]
    if len(choice.meeting) > 1:
        runner = choice.meeting[1]
        r = runner["metrics"][minimize]
        change = f" ({r / w - 1:+.1%})" if w else ""
        lines.append(f"runner-up {_describe(runner['point'], keys)}: {minimize} = {r:.6g}{change}")
    return lines


def _describe(point: dict[str, Any], keys: Sequence[str]) -> str:
    return ", ".join(f"{k} = {point[k]!r}" for k in keys if k in point) or "the base config"


def best_toml(
    config_doc: dict[str, Any], header: Sequence[str], point: dict[str, Any], keys: Sequence[str]
) -> str:
    """The winner's complete config, commented: the command, the reasons, the swept keys."""
    cfg = config_from_dict(config_doc, source="the chosen point")
    comments = [f"# {line}" for line in header]
    comments.append(f"# swept keys at this point: {_describe(point, keys)}")
    return "\n".join(comments) + "\n\n" + cfg.to_toml()
