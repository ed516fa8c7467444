// Cascade-pruning importance accumulators and survivor selection (kernels/importance.py).
#ifndef SPATTEN_ENGINES_IMPORTANCE_H
#define SPATTEN_ENGINES_IMPORTANCE_H

#include "spatten_types.h"
#include "topk.h"

namespace spatten {

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
// up to `keep` in total (never fewer than the protected ones). The unprotected candidates are
// compacted P a cycle (the zero eliminator), the top-k engine picks among them, and its mask is
// expanded back P a cycle. cycles: the top-k engine's (kernels/importance.py select_survivors)
// plus the compaction and expansion passes, ceil(n / P) each.
template <int MAXN, int P>
void select_survivors(const importance_t imp[MAXN], const bool protected_[MAXN], int n,
                      int keep, bool survivors[MAXN], int &cycles) {
#pragma HLS INLINE off
    importance_t others[MAXN];
    bool chosen[MAXN];
    int n_protected = 0;
    int m = 0;
    const int blocks = (n + P - 1) / P;
gather:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT max=(MAXN + P - 1) / P
    gather_lanes:
        for (int l = 0; l < P; l++) {
#pragma HLS UNROLL
            const int i = b * P + l;
            if (i < n) {
                if (protected_[i]) {
                    n_protected++;
                } else {
                    others[m++] = imp[i];
                }
            }
        }
    }
    const int free_slots = keep - n_protected > 0 ? keep - n_protected : 0;
    int rounds;
    topk_mask<MAXN, P>(others, m, free_slots, chosen, rounds, cycles);
    int t = 0;
scatter:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT max=(MAXN + P - 1) / P
    scatter_lanes:
        for (int l = 0; l < P; l++) {
#pragma HLS UNROLL
            const int i = b * P + l;
            if (i < n) {
                survivors[i] = protected_[i];
                if (!protected_[i]) survivors[i] = chosen[t++];  // the next unprotected one
            }
        }
    }
    cycles += 2 * blocks;
}

// Survivors of n candidates in position order for the window policy: every protected one
// plus the last (most recent) of the others, up to `keep` in total (kernels/importance.py
// keep_recent). No scores and no quick-select: a pass counts the unprotected candidates and a
// pass marks the survivors, P a cycle each.
template <int MAXN, int P>
void select_recent(const bool protected_[MAXN], int n, int keep, bool survivors[MAXN],
                   int &cycles) {
#pragma HLS INLINE off
    int n_protected = 0;
    const int blocks = (n + P - 1) / P;
count:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT max=(MAXN + P - 1) / P
    count_lanes:
        for (int l = 0; l < P; l++) {
#pragma HLS UNROLL
            const int i = b * P + l;
            if (i < n && protected_[i]) n_protected++;
        }
    }
    const int free_slots = keep - n_protected > 0 ? keep - n_protected : 0;
    const int first_kept = (n - n_protected) - free_slots;  // unprotected ones before the window
    int seen = 0;
mark:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT max=(MAXN + P - 1) / P
    mark_lanes:
        for (int l = 0; l < P; l++) {
#pragma HLS UNROLL
            const int i = b * P + l;
            if (i < n) {
                survivors[i] = protected_[i] || seen >= first_kept;
                if (!protected_[i]) seen++;
            }
        }
    }
    cycles = 2 * blocks;
}

}  // namespace spatten

#endif
