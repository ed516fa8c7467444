// Local value pruning (kernels/importance.py value_topk_rows, one query row): keep the
// k = max(1, floor(visible * keep_num / keep_den)) largest probabilities of p[0..visible)
// and hand prob x V the survivors compacted, in their order: (key index, probability).
//
// Two parts: the threshold (the top-k engine's quick-select: theta, the k-th largest, and
// num_eq, how many copies of theta survive) and the filter (keep p > theta and the first
// num_eq p == theta, in key order). The layer runs the threshold in its own processes and the
// filter fused into the select pass (rows.h); value_topk_row is both, for one row.
#ifndef SPATTEN_ENGINES_VALUE_TOPK_H
#define SPATTEN_ENGINES_VALUE_TOPK_H

#include "spatten_types.h"
#include "topk.h"

namespace spatten {

// The kept count of a row of `visible` keys. Non-negative operands: C++ truncating division
// is the kernel's floor division.
inline int value_keep_count(int visible, int keep_num, int keep_den) {
#pragma HLS INLINE
    const ap_int<64> wanted = ap_int<64>(visible) * keep_num / keep_den;
    const int k = wanted < 1 ? 1 : int(wanted);
    return k < visible ? k : visible;
}

// What the filter needs: keep everything (k >= visible), or theta and num_eq.
struct value_threshold {
    bool all;
    prob_t theta;
    int num_eq;
};

// The threshold of a row; `cycles` gets the quick-select's (0 when the row keeps all).
template <int MAXK, int P>
value_threshold value_topk_threshold(const prob_t p[MAXK], int visible, int keep_num,
                                     int keep_den, int &cycles) {
#pragma HLS INLINE off
    value_threshold t;
    const int k = value_keep_count(visible, keep_num, keep_den);
    t.all = k >= visible;
    t.theta = 0;
    t.num_eq = 0;
    cycles = 0;
    if (!t.all) {
        int rounds;
        kth_largest<MAXK, P, prob_t>(p, visible, k, t.theta, t.num_eq, rounds, cycles);
    }
    return t;
}

// The filter for the next key in key order (it consumes the copies of theta).
inline bool value_keep(prob_t pj, value_threshold &t) {
#pragma HLS INLINE
    if (t.all || pj > t.theta) return true;
    if (pj == t.theta && t.num_eq > 0) {
        t.num_eq--;
        return true;
    }
    return false;
}

// One row: the survivors into kept_index / kept_p[0..return), P filtered a cycle; `cycles`
// gets the quick-select's only (the layer's filter runs in its select pass).
template <int MAXK, int P>
int value_topk_row(const prob_t p[MAXK], int visible, int keep_num, int keep_den,
                   index_t kept_index[MAXK], prob_t kept_p[MAXK], int &cycles) {
#pragma HLS INLINE off
    value_threshold t = value_topk_threshold<MAXK, P>(p, visible, keep_num, keep_den, cycles);
    const int blocks = (visible + P - 1) / P;
    int kept = 0;
filter:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT max=(MAXK + P - 1) / P
    lanes:
        for (int l = 0; l < P; l++) {
#pragma HLS UNROLL
            const int j = b * P + l;
            if (j < visible && value_keep(p[j], t)) {
                kept_index[kept] = j;
                kept_p[kept] = p[j];
                kept++;
            }
        }
    }
    return kept;
}

}  // namespace spatten

#endif
