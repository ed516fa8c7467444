// Score scaling (kernels/scale.py, scale_scores):
//   score = sat_sym((acc * M + 2^(sh-1)) >> sh, SCORE_BITS)
// The product is formed in 72 bits (|acc| < 2^47, M < 2^23), so it is exact for every qk_acc_t
// and never relies on the simulator's |acc| < 2^38 check. >> on a signed ap_int is an
// arithmetic (floor) shift, which makes the +2^(sh-1) offset round half up also for negatives.
#ifndef SPATTEN_ENGINES_SCALE_H
#define SPATTEN_ENGINES_SCALE_H

#include "spatten_types.h"

namespace spatten {

// sh in [1, 62] (scale_multiplier guarantees it).
inline score_t scale_score(qk_acc_t acc, mult_t m, int sh) {
#pragma HLS INLINE
    const ap_int<72> product = acc * m;
    const ap_int<72> half = ap_int<72>(1) << (sh - 1);
    const ap_int<73> rounded = (product + half) >> sh;
    if (rounded > SCORE_MAX) {
        return score_t(SCORE_MAX);
    }
    if (rounded < -SCORE_MAX) {
        return score_t(-SCORE_MAX);
    }
    return score_t(rounded);
}

}  // namespace spatten

#endif
