"""Executable specification of the SpAtten attention datapath arithmetic on integer codes.

One module per engine; docs/numerics.md holds the formats, widths, rounding and saturation.
"""

from kernels.attention import (
    FixedAttentionInfo,
    attention_head_fixed,
    attention_head_from_float,
)
from kernels.error_bound import (
    exp_table_max_error,
    output_error_bound,
    recip_max_rel_error,
    relative_error_bound,
)
from kernels.mask import causal_mask
from kernels.pv import pv_accumulate, requantize_output
from kernels.qk import ExactnessError, qk_scores, qk_scores_loop
from kernels.quantize import dequantize, join_msb_lsb, quantize_symmetric, split_msb_lsb
from kernels.reference import attention_float, causal_keep
from kernels.scale import scale_multiplier, scale_scores
from kernels.softmax import softmax_row_max, softmax_rows
from kernels.tables import exp_hi_table, exp_lo_table, recip_table, softmax_tables

__all__ = [
    "ExactnessError",
    "FixedAttentionInfo",
    "attention_float",
    "attention_head_fixed",
    "attention_head_from_float",
    "causal_keep",
    "causal_mask",
    "dequantize",
    "exp_hi_table",
    "exp_lo_table",
    "exp_table_max_error",
    "join_msb_lsb",
    "output_error_bound",
    "pv_accumulate",
    "qk_scores",
    "qk_scores_loop",
    "quantize_symmetric",
    "recip_max_rel_error",
    "recip_table",
    "relative_error_bound",
    "requantize_output",
    "scale_multiplier",
    "scale_scores",
    "softmax_row_max",
    "softmax_rows",
    "softmax_tables",
    "split_msb_lsb",
]
