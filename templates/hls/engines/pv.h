// Prob x V engine and output requantization (kernels/pv.py, the simulator's implementation):
//   acc_d = sum_{j < nk} p_j * v_jd        (exact: |acc| < nk * 2^16 * 2^15 < 2^63)
//   out_d = sat_sym((acc_d + 2^15) >> 16, v_bits)   (floor shift: round half up)
// pv_mac and requantize_row are the only implementations of this arithmetic: the layer's
// tiled prob x V (layer.h) and pv_row both use them.
#ifndef SPATTEN_ENGINES_PV_H
#define SPATTEN_ENGINES_PV_H

#include "spatten_types.h"

namespace spatten {

// One key's contribution to every output dimension.
template <int D>
void pv_mac(prob_t p, const code_t v[D], pv_acc_t acc[D]) {
#pragma HLS INLINE
    for (int t = 0; t < D; t++) {
#pragma HLS UNROLL
        acc[t] += p * v[t];
    }
}

// The accumulator as V codes; v_bits in [2, 16] (code_t holds the V codes).
template <int D>
void requantize_row(const pv_acc_t acc[D], int v_bits, code_t out[D]) {
#pragma HLS INLINE
    const pv_acc_t hi = (pv_acc_t(1) << (v_bits - 1)) - 1;
    for (int t = 0; t < D; t++) {
#pragma HLS UNROLL
        const pv_acc_t x = (acc[t] + (1 << (PROB_FRAC - 1))) >> PROB_FRAC;
        out[t] = code_t(x > hi ? hi : (x < -hi ? pv_acc_t(-hi) : x));
    }
}

template <int MAXK, int D>
void pv_row(const prob_t p[MAXK], const code_t v[MAXK][D], int nk, int v_bits, code_t out[D]) {
#pragma HLS INLINE off
#pragma HLS ARRAY_PARTITION variable=v complete dim=2
#pragma HLS ARRAY_PARTITION variable=out complete dim=1
    pv_acc_t acc[D];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=1
    for (int t = 0; t < D; t++) {
#pragma HLS UNROLL
        acc[t] = 0;
    }

    // One key per cycle, all D lanes in parallel.
    for (int j = 0; j < MAXK; j++) {
#pragma HLS PIPELINE II=1
        if (j < nk) pv_mac<D>(p[j], v[j], acc);
    }
    requantize_row<D>(acc, v_bits, out);
}

}  // namespace spatten

#endif
