// Progressive quantization (docs/numerics.md section 12; compiler/sim/handlers_spatten.py
// _requant): a row whose largest probability is below the threshold code is recomputed with
// the full K word = widened MSB word (msb << lsb_bits) + LSB plane, through the same Q.K,
// scale and softmax engines.
#ifndef SPATTEN_ENGINES_REQUANT_H
#define SPATTEN_ENGINES_REQUANT_H

#include "qk.h"
#include "scale.h"
#include "softmax.h"
#include "spatten_types.h"

namespace spatten {

// threshold_code = round half up of requant_threshold * 2^16 (handlers_spatten.threshold_code).
inline bool needs_requant(prob_t row_max, prob_t threshold_code) {
#pragma HLS INLINE
    return row_max < threshold_code;
}

// The MSB word already has its low lsb_bits at 0, so + and | agree; the sum is the K code.
inline code_t k_full_word(code_t msb_widened, lsb_t lsb) {
#pragma HLS INLINE
    return code_t(msb_widened + lsb);
}

// One query row: if needs_requant(row_max(p), threshold_code), recompute p from the full K
// words (keys 0..visible-1 visible) and return true; otherwise leave p and return false.
template <int MAXK, int D>
bool requant_row(const code_t q[D], const code_t k_msb[MAXK][D], const lsb_t k_lsb[MAXK][D],
                 int visible, mult_t m, int sh, prob_t threshold_code, prob_t p[MAXK]) {
#pragma HLS INLINE off
#pragma HLS ARRAY_PARTITION variable=q complete dim=1
#pragma HLS ARRAY_PARTITION variable=k_msb complete dim=2
#pragma HLS ARRAY_PARTITION variable=k_lsb complete dim=2
    if (!needs_requant(row_max<MAXK>(p, visible), threshold_code)) {
        return false;
    }
    score_t s[MAXK];
    for (int j = 0; j < MAXK; j++) {
#pragma HLS PIPELINE II=1
        score_t sj = 0;
        if (j < visible) {
            code_t k_full[D];
#pragma HLS ARRAY_PARTITION variable=k_full complete dim=1
            for (int t = 0; t < D; t++) {
#pragma HLS UNROLL
                k_full[t] = k_full_word(k_msb[j][t], k_lsb[j][t]);
            }
            sj = scale_score(qk_dot<D>(q, k_full), m, sh);
        }
        s[j] = sj;
    }
    softmax_row<MAXK>(s, visible, p);
    return true;
}

}  // namespace spatten

#endif
