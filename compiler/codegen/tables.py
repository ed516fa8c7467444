"""The softmax tables as a C++ header (from kernels/tables.py, never recomputed in C++)."""

from __future__ import annotations

from spatten_hls.compiler.codegen.env import render
from spatten_hls.kernels import formats
from spatten_hls.kernels.tables import softmax_tables


def tables_header() -> str:
    exp_hi, exp_lo, recip = softmax_tables()
    return render(
        "spatten_tables.h.j2",
        exp_hi=list(exp_hi),
        exp_lo=list(exp_lo),
        recip=list(recip),
        exp_frac=formats.EXP_FRAC,
        score_frac=formats.SCORE_FRAC,
        recip_frac=formats.RECIP_FRAC,
        recip_base=formats.RECIP_BASE,
    )
