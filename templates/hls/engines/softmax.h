// Softmax engine (kernels/softmax.py _softmax_row; kernels/fused.py _softmax_row_fused):
//   m   = max of the visible, unmasked scores
//   e_j = 0 if s_j == MASKED or m - s_j >= EXP_DOMAIN,
//         else (EXP_HI[x >> 10] * EXP_LO[x & 1023] + 2^15) >> 16 with x = m - s_j
//   S = sum e_j, n = bit_length(S), t = S >> (n - 12), r = RECIP[t - 2048], shift = n + 1
//   p_j = min((e_j * r + 2^(shift-1)) >> shift, PROB_ONE); entries j >= visible get 0.
// The fused kernel takes the max on the Q.K accumulator and scales it; scaling is monotone,
// so that equals the max of the scaled scores used here.
#ifndef SPATTEN_ENGINES_SOFTMAX_H
#define SPATTEN_ENGINES_SOFTMAX_H

#include "spatten_tables.h"
#include "spatten_types.h"

namespace spatten {

// exp(-x / 2^SCORE_FRAC) in UQ1.16 for a code x >= 0; x spans [0, 2^24 - 2].
inline exp_t exp_fixed(ap_uint<SCORE_BITS> x) {
#pragma HLS INLINE
    if (x >= EXP_DOMAIN) {
        return exp_t(0);
    }
    const ap_uint<EXP_INT_BITS> hi = x(EXP_INT_BITS + SCORE_FRAC - 1, SCORE_FRAC);
    const ap_uint<SCORE_FRAC> lo = x(SCORE_FRAC - 1, 0);
    const ap_uint<2 * (EXP_FRAC + 1)> product = EXP_HI[hi] * EXP_LO[lo];
    return exp_t((product + (1 << (EXP_FRAC - 1))) >> EXP_FRAC);
}

// Number of bits of v (0 for 0): a priority encoder over the static width, no loop-carried
// data dependence once unrolled.
inline int bit_length_sum(sum_t v) {
#pragma HLS INLINE
    int n = 0;
    for (int b = 0; b < sum_t::width; b++) {
#pragma HLS UNROLL
        if (v[b]) {
            n = b + 1;
        }
    }
    return n;
}

// e of one visible score against the row's max `top` (0 for a masked score).
inline exp_t softmax_exp(score_t top, score_t s) {
#pragma HLS INLINE
    if (s == MASKED) return exp_t(0);
    // top >= s, both in [-(2^23 - 1), 2^23 - 1]: the difference fits 24 unsigned bits
    const ap_int<SCORE_BITS + 1> x = top - s;
    return exp_fixed(ap_uint<SCORE_BITS>(x));
}

// The normalization of a row from its sum S: reciprocal and shift.
struct softmax_norm {
    recip_t r;
    int shift;
    ap_uint<64> round_half;
    bool valid;
};

// A row with a visible unmasked entry has S >= 2^16 (its max has e = 2^16), so n >= 17.
// A row without one violates the contract (the simulator raises): it gets all zeros.
inline softmax_norm softmax_reciprocal(sum_t total) {
#pragma HLS INLINE
    softmax_norm norm;
    const int n = bit_length_sum(total);
    norm.valid = n > RECIP_INDEX_BITS;
    const int index_shift = norm.valid ? n - RECIP_INDEX_BITS : 0;
    const ap_uint<RECIP_INDEX_BITS> t = total >> index_shift;  // truncated, in [2048, 4095]
    norm.r = RECIP[norm.valid ? int(t) - RECIP_BASE : 0];
    norm.shift = n + RECIP_SHIFT_BIAS;
    norm.round_half = ap_uint<64>(1) << (norm.valid ? norm.shift - 1 : 0);
    return norm;
}

inline prob_t softmax_prob(exp_t e, const softmax_norm &norm) {
#pragma HLS INLINE
    if (!norm.valid) return prob_t(0);
    const ap_uint<64> scaled = (ap_uint<64>(e) * norm.r + norm.round_half) >> norm.shift;
    return scaled > PROB_ONE ? prob_t(PROB_ONE) : prob_t(scaled);
}

// A whole row (the layer runs the same three passes lane by lane, layer.h).
template <int MAXK>
void softmax_row(const score_t s[MAXK], int visible, prob_t p[MAXK]) {
#pragma HLS INLINE off
    exp_t e[MAXK];
    score_t top = score_t(MASKED);
    for (int j = 0; j < MAXK; j++) {
#pragma HLS PIPELINE II=1
        if (j < visible && s[j] != MASKED && s[j] > top) {
            top = s[j];
        }
    }
    sum_t total = 0;
    for (int j = 0; j < MAXK; j++) {
#pragma HLS PIPELINE II=1
        const exp_t ej = j < visible ? softmax_exp(top, s[j]) : exp_t(0);
        e[j] = ej;
        total += ej;
    }
    const softmax_norm norm = softmax_reciprocal(total);
    for (int j = 0; j < MAXK; j++) {
#pragma HLS PIPELINE II=1
        p[j] = j < visible ? softmax_prob(e[j], norm) : prob_t(0);
    }
}

// Largest probability code among p[0..n) (kernels.softmax.softmax_row_max; 0 for n = 0): the
// input of the progressive-quantization decision.
template <int MAXK>
prob_t row_max(const prob_t p[MAXK], int n) {
#pragma HLS INLINE off
    prob_t best = 0;
    for (int j = 0; j < MAXK; j++) {
#pragma HLS PIPELINE II=1
        if (j < n && p[j] > best) {
            best = p[j];
        }
    }
    return best;
}

}  // namespace spatten

#endif
