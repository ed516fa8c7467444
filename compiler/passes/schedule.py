"""Per-layer keep schedules of cascade token and head pruning (SpAtten paper section V-A).

The leading `skip_first` fraction of layers is left unpruned (ceil, so at least that
fraction); the remaining M layers get keep fractions that fall linearly from r_start to r_end
with r_start + r_end = 2 * keep, so their mean is exactly `keep`. The paper does not give the
slope; we start at r_start = min(1, 1.5 * keep), i.e. the last pruned layer keeps a third of
what the first keeps when `keep` <= 2/3. An explicit `keep_per_layer` replaces all of this.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from spatten_hls.compiler.ir.types import as_ratio


def keep_fractions(
    num_layers: int,
    keep: float,
    skip_first: float,
    keep_per_layer: Sequence[float] | None = None,
    uniform: bool = False,
) -> list[float]:
    """Keep fraction of every layer (1.0 for unpruned layers); non-increasing. `uniform`:
    every layer keeps `keep` (no dense leading layers, no ramp)."""
    if keep_per_layer is not None:
        return [float(f) for f in keep_per_layer]
    if uniform:
        return [keep] * num_layers
    skipped = min(num_layers, math.ceil(skip_first * num_layers - 1e-9))
    pruned = num_layers - skipped
    if pruned == 0:
        return [1.0] * num_layers
    start = min(1.0, 1.5 * keep)
    end = 2.0 * keep - start
    if pruned == 1:
        ramp = [keep]
    else:
        ramp = [start + (end - start) * i / (pruned - 1) for i in range(pruned)]
    return [1.0] * skipped + ramp


def keep_counts(total: int, fractions: Sequence[float]) -> list[int]:
    """floor(total * f) per layer, at least 1 (counts are relative to the original total)."""
    return [max(1, math.floor(total * as_ratio(f))) for f in fractions]
