// Top-k engine (kernels/topk.py; SpAtten Alg. 3 / Fig. 9): quick-select rounds find the k-th
// largest value theta and num_eq, the number of copies of theta inside the top k; a filter
// pass keeps every value > theta plus the first num_eq values == theta, so ties go to the
// lower index and survivors keep their order. Pivots come from xorshift32 seeded with
// PIVOT_SEED (index = state mod size), exactly the simulator's sequence.
// Cycle model (the RTL's TopKLatencyModel): each round ceil(size / P) + TOPK_ROUND_OVERHEAD,
// the filter ceil(n / P).
#ifndef SPATTEN_ENGINES_TOPK_H
#define SPATTEN_ENGINES_TOPK_H

#include "spatten_types.h"

namespace spatten {

// Must equal kernels/topk.py.
static const int TOPK_ROUND_OVERHEAD = 3;
static const unsigned int PIVOT_SEED = 0x2545F491u;

inline ap_uint<32> xorshift32(ap_uint<32> state) {
#pragma HLS INLINE
    state ^= state << 13;  // ap_uint<32> << keeps 32 bits: the & 0xFFFFFFFF of the kernel
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

// k-th largest of vals[0..n) for 1 <= k <= n: theta, num_eq, rounds and their cycles.
template <int MAXN>
void kth_largest(const importance_t vals[MAXN], int n, int k, int parallelism,
                 importance_t &theta, int &num_eq, int &rounds, int &cycles) {
#pragma HLS INLINE off
    importance_t cand[MAXN];
    for (int i = 0; i < MAXN; i++) {
#pragma HLS PIPELINE II=1
        if (i < n) {
            cand[i] = vals[i];
        }
    }
    int size = n;
    int target = k;
    ap_uint<32> state = PIVOT_SEED;
    rounds = 0;
    cycles = 0;
    theta = 0;
    num_eq = 0;

    // Every round removes at least the pivot from the candidates, so n <= MAXN rounds end it
    // (a random pivot needs ~2 ln n on average). Each round is two pipelined passes.
    for (int round = 0; round < MAXN; round++) {
#pragma HLS LOOP_FLATTEN off
        state = xorshift32(state);
        const importance_t pivot = cand[state % ap_uint<32>(size)];
        rounds++;
        cycles += (size + parallelism - 1) / parallelism + TOPK_ROUND_OVERHEAD;

        int greater = 0;
        int equal = 0;
        for (int i = 0; i < MAXN; i++) {
#pragma HLS PIPELINE II=1
            if (i >= size) {
                break;
            }
            if (cand[i] > pivot) {
                greater++;
            } else if (cand[i] == pivot) {
                equal++;
            }
        }

        bool keep_greater;
        if (greater >= target) {  // pivot too small: continue among the larger values
            keep_greater = true;
        } else if (greater + equal >= target) {
            theta = pivot;
            num_eq = target - greater;
            break;
        } else {  // pivot too large: continue among the smaller values
            keep_greater = false;
            target -= greater + equal;
        }

        // In-place compaction: the write index never passes the read index.
        int out = 0;
        for (int i = 0; i < MAXN; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS DEPENDENCE variable=cand type=inter direction=RAW dependent=false
            if (i >= size) {
                break;
            }
            const importance_t c = cand[i];
            if (keep_greater ? (c > pivot) : (c < pivot)) {
                cand[out] = c;
                out++;
            }
        }
        size = out;
    }
}

// mask[i] for i < n: vals[i] is among the k largest of vals[0..n); mask[i] = false for i >= n.
// k >= n keeps all and k <= 0 keeps none, both with 0 rounds and 0 cycles. parallelism >= 1.
template <int MAXN>
void topk_mask(const importance_t vals[MAXN], int n, int k, int parallelism, bool mask[MAXN],
               int &rounds, int &cycles) {
#pragma HLS INLINE off
    rounds = 0;
    cycles = 0;
    if (k >= n || k <= 0) {
        const bool all = k >= n;
        for (int i = 0; i < MAXN; i++) {
#pragma HLS PIPELINE II=1
            mask[i] = all && i < n;
        }
        return;
    }
    importance_t theta;
    int num_eq;
    kth_largest<MAXN>(vals, n, k, parallelism, theta, num_eq, rounds, cycles);
    for (int i = 0; i < MAXN; i++) {
#pragma HLS PIPELINE II=1
        bool keep = false;
        if (i < n) {
            if (vals[i] > theta) {
                keep = true;
            } else if (vals[i] == theta && num_eq > 0) {
                keep = true;
                num_eq--;
            }
        }
        mask[i] = keep;
    }
    cycles += (n + parallelism - 1) / parallelism;
}

}  // namespace spatten

#endif
