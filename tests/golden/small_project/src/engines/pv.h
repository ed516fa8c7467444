// Prob x V engine and output requantization (kernels/pv.py; kernels/fused.py requantize_f64):
//   acc_d = sum_{j < nk} p_j * v_jd        (exact: |acc| < nk * 2^16 * 2^15 < 2^63)
//   out_d = sat_sym((acc_d + 2^15) >> 16, v_bits)   (floor shift: round half up)
#ifndef SPATTEN_ENGINES_PV_H
#define SPATTEN_ENGINES_PV_H

#include "spatten_types.h"

namespace spatten {

// v_bits in [2, 16] (code_t holds the V codes).
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
        if (j < nk) {
            for (int t = 0; t < D; t++) {
#pragma HLS UNROLL
                acc[t] += p[j] * v[j][t];
            }
        }
    }

    const ap_int<17> hi = (ap_int<17>(1) << (v_bits - 1)) - 1;
    for (int t = 0; t < D; t++) {
#pragma HLS UNROLL
        const pv_acc_t x = (acc[t] + (1 << (PROB_FRAC - 1))) >> PROB_FRAC;
        if (x > hi) {
            out[t] = code_t(hi);
        } else if (x < -hi) {
            out[t] = code_t(-hi);
        } else {
            out[t] = code_t(x);
        }
    }
}

}  // namespace spatten

#endif
