"""Argument types of the command line: a value out of range is a usage error (exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

MAX_SEED = (1 << 63) - 1


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: an integer in [lo, hi]."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is out of range [{lo}, {hi}]")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


seed = int_in(0, MAX_SEED)
