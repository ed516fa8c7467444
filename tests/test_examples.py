"""The worked examples under examples/ run and tell the story they claim."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)->(\d+)\s+([\d.]+)%\s+([\d.]+)%\s*$")


def run_example(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "fig1_story.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_fig1_story_table_shrinks_layer_by_layer() -> None:
    out = run_example()
    rows = [tuple(float(x) for x in m.groups()) for m in map(ROW.match, out.splitlines()) if m]
    assert [int(r[0]) for r in rows] == list(range(12))
    tokens_in, kept, heads_in, heads_kept, compute, dram = zip(*(r[1:] for r in rows), strict=True)
    for column in (tokens_in, kept, heads_in, heads_kept, compute, dram):
        assert all(a >= b for a, b in itertools.pairwise(column)), column
    for a, b, c, d in zip(tokens_in, kept, heads_in, heads_kept, strict=True):
        assert b <= a and d <= c
    # the Fig. 1 counts: 11 -> 6 -> 2 tokens, 12 -> 10 -> 8 heads, in three stages
    assert sorted(set(tokens_in), reverse=True) == [11, 6, 2]
    assert sorted(set(heads_in), reverse=True) == [12, 10, 8]
    assert compute[0] == dram[0] == 100.0 and dram[-1] < 15.0
    assert "paper, Fig. 1" in out
