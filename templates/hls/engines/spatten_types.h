// Datapath types and format constants of the SpAtten engines (docs/numerics.md, sections 2-3).
//
// Every constant below MUST equal its namesake in kernels/formats.py: the Numba simulator is
// the golden reference and the engines must match it bit for bit.
// tests/codegen/test_engines.py compiles a shim that returns these values and compares them.
#ifndef SPATTEN_TYPES_H
#define SPATTEN_TYPES_H

#include <ap_int.h>

namespace spatten {

// --- format constants (mirror kernels/formats.py) -----------------------------------------
static const int SCORE_FRAC = 10;        // fraction bits of a score code (Q13.10)
static const int SCORE_BITS = 24;        // width of a score code (signed)
static const int MULT_BITS = 23;         // width of the unsigned score multiplier M
static const int QK_ACC_BITS = 38;       // |Q.K accumulator| < 2^38 (the simulator checks it)
static const int SCORE_MAX = (1 << (SCORE_BITS - 1)) - 1;  // unmasked scores saturate here
static const int MASKED = -(1 << (SCORE_BITS - 1));        // masked-score sentinel
static const int EXP_INT_BITS = 4;       // exp(-x) = 0 for x >= 2^4
static const int EXP_FRAC = 16;          // fraction bits of the exp tables and of e
static const int EXP_DOMAIN = 1 << (EXP_INT_BITS + SCORE_FRAC);  // first flushed exp argument
static const int RECIP_INDEX_BITS = 12;  // bits of the normalised row sum t
static const int RECIP_FRAC = 29;        // fraction bits of the reciprocal table
static const int RECIP_BASE = 1 << (RECIP_INDEX_BITS - 1);       // smallest t; RECIP size
static const int PROB_FRAC = 16;         // fraction bits of a probability code (UQ1.16)
static const int PROB_ONE = 1 << PROB_FRAC;                      // probability 1.0
static const int RECIP_SHIFT_BIAS = RECIP_FRAC - RECIP_INDEX_BITS - PROB_FRAC;  // shift = n + 1

// --- datapath types (widths: docs/numerics.md section 3) ----------------------------------
typedef ap_int<16> code_t;        // Q, K, V codes (<= 16 bits) and widened K MSB words
typedef ap_uint<16> lsb_t;        // K LSB plane
typedef ap_int<48> qk_acc_t;      // Q.K accumulator (exact for d * 2^30 < 2^47)
typedef ap_uint<23> mult_t;       // score multiplier M, [2^22, 2^23)
typedef ap_int<24> score_t;       // score code, Q13.10
typedef ap_uint<17> exp_t;        // exp table entries and e, UQ1.16 in [0, 2^16]
typedef ap_uint<48> sum_t;        // row sum S of e
typedef ap_uint<19> recip_t;      // reciprocal table entries, UQ-.29
typedef ap_uint<17> prob_t;       // probability code, UQ1.16 in [0, 2^16]
typedef ap_int<64> pv_acc_t;      // P.V accumulator (exact)
typedef ap_uint<64> importance_t; // token / head importance accumulators (non-negative)
typedef ap_int<32> index_t;       // token positions and the layer a token / head was dropped at
typedef ap_uint<256> beat_t;      // one m_axi beat of packed codes (tb/host.h packs them)

}  // namespace spatten

#endif
