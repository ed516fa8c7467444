// Local value pruning (kernels/importance.py value_topk_rows, one query row): keep the
// k = max(1, floor(visible * keep_num / keep_den)) largest probabilities of p[0..visible),
// zero the rest, OR the kept columns into `fetched` (the V rows that must be read).
#ifndef SPATTEN_ENGINES_VALUE_TOPK_H
#define SPATTEN_ENGINES_VALUE_TOPK_H

#include "spatten_types.h"
#include "topk.h"

namespace spatten {

// Returns min(k, visible): the number of V rows this query row multiplies.
// keep_num >= 0, keep_den >= 1 (the exact ratio the user wrote).
template <int MAXK>
int value_topk_row(const prob_t p[MAXK], int visible, int keep_num, int keep_den,
                   int parallelism, prob_t out[MAXK], bool fetched[MAXK]) {
#pragma HLS INLINE off
    importance_t row[MAXK];
    bool mask[MAXK];
    for (int j = 0; j < MAXK; j++) {
#pragma HLS PIPELINE II=1
        row[j] = j < visible ? importance_t(p[j]) : importance_t(0);
    }
    // Non-negative operands: C++ truncating division is the kernel's floor division.
    const ap_int<64> wanted = ap_int<64>(visible) * keep_num / keep_den;
    const int k = wanted < 1 ? 1 : int(wanted);
    int rounds;
    int cycles;
    topk_mask<MAXK>(row, visible, k, parallelism, mask, rounds, cycles);
    for (int j = 0; j < MAXK; j++) {
#pragma HLS PIPELINE II=1
        const bool keep_it = j < visible && mask[j];
        out[j] = keep_it ? p[j] : prob_t(0);
        if (keep_it) {
            fetched[j] = true;
        }
    }
    return k < visible ? k : visible;
}

}  // namespace spatten

#endif
