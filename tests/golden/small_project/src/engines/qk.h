// Q x K^T engine: one exact integer dot product of a query row and a key row
// (kernels/qk.py, qk_scores_loop). |acc| <= d * 2^15 * 2^15 < 2^47 for d < 2^17: no overflow.
#ifndef SPATTEN_ENGINES_QK_H
#define SPATTEN_ENGINES_QK_H

#include "spatten_types.h"

namespace spatten {

template <int D>
qk_acc_t qk_dot(const code_t q[D], const code_t k[D]) {
#pragma HLS INLINE
#pragma HLS ARRAY_PARTITION variable=q complete dim=1
#pragma HLS ARRAY_PARTITION variable=k complete dim=1
    qk_acc_t acc = 0;
    for (int t = 0; t < D; t++) {
#pragma HLS UNROLL
        acc += q[t] * k[t];  // 16 x 16 -> 32-bit product, exact
    }
    return acc;
}

}  // namespace spatten

#endif
