// Cascade-pruning importance accumulators and survivor selection (kernels/importance.py).
#ifndef SPATTEN_ENGINES_IMPORTANCE_H
#define SPATTEN_ENGINES_IMPORTANCE_H

#include "spatten_types.h"
#include "topk.h"

namespace spatten {

// Token importance, one query row at a time: importance[positions[j]] += p[j] for j < nk.
// Summing row by row equals the kernel's column sums (integer addition is associative).
// positions are distinct (the original positions of the live keys), hence no RAW dependence
// between iterations on `importance`.
template <int MAXK, int MAXN>
void add_column_sums(importance_t importance[MAXN], const int positions[MAXK],
                     const prob_t p[MAXK], int nk) {
#pragma HLS INLINE off
    for (int j = 0; j < MAXK; j++) {
#pragma HLS PIPELINE II=1
#pragma HLS DEPENDENCE variable=importance type=inter dependent=false
        if (j < nk) {
            importance[positions[j]] += p[j];
        }
    }
}

// sum |out[t]| of one output row (head importance; the kernel's abs_sum over all rows).
// D * 2^15 < 2^40 for D < 2^25.
template <int D>
ap_uint<40> abs_sum_row(const code_t out[D]) {
#pragma HLS INLINE off
#pragma HLS ARRAY_PARTITION variable=out complete dim=1
    ap_uint<40> total = 0;
    for (int t = 0; t < D; t++) {
#pragma HLS UNROLL
        const ap_int<17> c = out[t];  // widened: |-2^15| fits
        total += c < 0 ? ap_uint<17>(-c) : ap_uint<17>(c);
    }
    return total;
}

// Survivors of imp[0..n): every protected candidate plus the most important of the others,
// up to `keep` in total (never fewer than the protected ones). cycles: the top-k engine's.
template <int MAXN>
void select_survivors(const importance_t imp[MAXN], const bool protected_[MAXN], int n,
                      int keep, int parallelism, bool survivors[MAXN], int &cycles) {
#pragma HLS INLINE off
    importance_t others[MAXN];
    int where[MAXN];
    bool chosen[MAXN];
    int n_protected = 0;
    int m = 0;
    for (int i = 0; i < MAXN; i++) {
#pragma HLS PIPELINE II=1
        survivors[i] = false;
        if (i < n) {
            if (protected_[i]) {
                n_protected++;
                survivors[i] = true;
            } else {
                others[m] = imp[i];
                where[m] = i;
                m++;
            }
        }
    }
    const int free_slots = keep - n_protected > 0 ? keep - n_protected : 0;
    int rounds;
    topk_mask<MAXN>(others, m, free_slots, parallelism, chosen, rounds, cycles);
    for (int t = 0; t < MAXN; t++) {
#pragma HLS PIPELINE II=1
        if (t < m && chosen[t]) {
            survivors[where[t]] = true;
        }
    }
}

}  // namespace spatten

#endif
