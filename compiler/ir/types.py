"""Tensor types on IR edges: a shape and, once quantization is assigned, a fixed-point type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction


def as_ratio(fraction: float) -> Fraction:
    """A keep fraction as the decimal the user wrote, exactly: 0.7 is 7/10, not
    0.6999999999999999556 (fractions have at most six decimal places)."""
    return Fraction(fraction).limit_denominator(1_000_000)


@dataclass(frozen=True, order=True)
class Fixed:
    """A fixed-point format: `width` bits in total, `frac` of them fractional.

    Mirrors Vitis HLS `ap_fixed<width, width - frac>` / `ap_ufixed` (`ap_int` when frac == 0).
    """

    width: int
    frac: int
    signed: bool = True

    def __post_init__(self) -> None:
        if self.width < 1 or self.width > 128 or self.frac < 0 or self.frac > self.width:
            raise ValueError(f"invalid fixed-point format width={self.width} frac={self.frac}")

    def __str__(self) -> str:
        return f"{'fixed' if self.signed else 'ufixed'}<{self.width},{self.frac}>"

    @staticmethod
    def parse(text: str) -> Fixed:
        m = re.fullmatch(r"(u?)fixed<(\d+),(\d+)>", text)
        if not m:
            raise ValueError(f"not a fixed-point type: {text!r}")
        return Fixed(int(m[2]), int(m[3]), signed=not m[1])


@dataclass(frozen=True)
class TensorType:
    """Shape (upper bounds for dynamic token counts) and element format (None = not assigned)."""

    shape: tuple[int, ...]
    dtype: Fixed | None = None

    def __str__(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        return f"{self.dtype if self.dtype is not None else '?'}[{dims}]"

    @staticmethod
    def parse(text: str) -> TensorType:
        m = re.fullmatch(r"(\?|u?fixed<\d+,\d+>)\[([\d,]*)\]", text)
        if not m:
            raise ValueError(f"not a tensor type: {text!r}")
        dtype = None if m[1] == "?" else Fixed.parse(m[1])
        shape = tuple(int(d) for d in m[2].split(",")) if m[2] else ()
        return TensorType(shape, dtype)
