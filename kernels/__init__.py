"""Executable specification of the SpAtten attention datapath arithmetic on integer codes.

One module per engine; docs/numerics.md holds the formats, widths, rounding and saturation.
"""

from spatten_hls.kernels.attention import (
    FixedAttentionInfo,
    attention_head_fixed,
    attention_head_from_float,
)
from spatten_hls.kernels.error_bound import (
    exp_table_max_error,
    output_error_bound,
    recip_max_rel_error,
    relative_error_bound,
)
from spatten_hls.kernels.mask import causal_mask
from spatten_hls.kernels.pv import pv_accumulate, requantize_output
from spatten_hls.kernels.qk import ExactnessError, qk_scores, qk_scores_loop
from spatten_hls.kernels.quantize import dequantize, join_msb_lsb, quantize_symmetric, split_msb_lsb
from spatten_hls.kernels.reference import attention_float, causal_keep
from spatten_hls.kernels.scale import scale_multiplier, scale_scores
from spatten_hls.kernels.softmax import softmax_row_max, softmax_rows
from spatten_hls.kernels.tables import exp_hi_table, exp_lo_table, recip_table, softmax_tables

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
