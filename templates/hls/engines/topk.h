// Top-k engine (kernels/topk.py; SpAtten Alg. 3 / Fig. 9): quick-select rounds find the k-th
// largest value theta and num_eq, the number of copies of theta inside the top k; a filter
// pass keeps every value > theta plus the first num_eq values == theta, so ties go to the
// lower index and survivors keep their order. Pivots come from xorshift32 seeded with
// PIVOT_SEED (index = state mod size), exactly the simulator's sequence.
//
// P comparators a cycle: a round is one pass over the candidates, P at a time, that compares
// each with the pivot and compacts the larger ones into one buffer and the smaller ones into
// another (the paper's FIFO_R / FIFO_L with their zero eliminators); the round continues in
// one of them. A round costs ceil(size / P) + TOPK_ROUND_OVERHEAD cycles, the filter
// ceil(n / P): the cycle model of the simulator (and of the RTL's TopKLatencyModel).
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

// One round: the candidates src[0..size) against `pivot`, P per cycle, the larger compacted
// into gt and the smaller into lt; returns how many equal the pivot.
template <int MAXN, int P, class T>
int partition_round(const T src[MAXN], int size, T pivot, T gt[MAXN], int &n_gt, T lt[MAXN],
                    int &n_lt) {
#pragma HLS INLINE off
    int equal = 0;
    n_gt = 0;
    n_lt = 0;
    const int blocks = (size + P - 1) / P;
blocks:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT max=(MAXN + P - 1) / P
    lanes:
        for (int l = 0; l < P; l++) {
#pragma HLS UNROLL
            const int i = b * P + l;
            if (i < size) {
                const T c = src[i];
                if (c > pivot) {
                    gt[n_gt++] = c;
                } else if (c < pivot) {
                    lt[n_lt++] = c;
                } else {
                    equal++;
                }
            }
        }
    }
    return equal;
}

// k-th largest of vals[0..n) for 1 <= k <= n: theta, num_eq, rounds and their cycles.
template <int MAXN, int P, class T>
void kth_largest(const T vals[MAXN], int n, int k, T &theta, int &num_eq, int &rounds,
                 int &cycles) {
#pragma HLS INLINE off
    T buf[3][MAXN];
#pragma HLS ARRAY_PARTITION variable=buf cyclic factor=P dim=2
    int cur = -1;  // -1: the candidates are still vals
    int size = n;
    int target = k;
    ap_uint<32> state = PIVOT_SEED;
    rounds = 0;
    cycles = 0;
    theta = 0;
    num_eq = 0;
    // Every round removes at least the pivot from the candidates, so n <= MAXN rounds end it
    // (a random pivot needs ~2 ln n on average).
rounds:
    for (int round = 0; round < MAXN; round++) {
#pragma HLS LOOP_TRIPCOUNT max=32
        state = xorshift32(state);
        const int at = int(state % ap_uint<32>(size));
        const T pivot = cur < 0 ? vals[at] : buf[cur][at];
        rounds++;
        cycles += (size + P - 1) / P + TOPK_ROUND_OVERHEAD;
        const int gt = cur == 0 ? 1 : 0;  // the two buffers that are not the candidates
        const int lt = cur == 2 ? 1 : 2;
        int n_gt = 0;
        int n_lt = 0;
        const int equal = cur < 0 ? partition_round<MAXN, P, T>(vals, size, pivot, buf[gt],
                                                                n_gt, buf[lt], n_lt)
                                  : partition_round<MAXN, P, T>(buf[cur], size, pivot,
                                                                buf[gt], n_gt, buf[lt], n_lt);
        if (n_gt >= target) {  // pivot too small: continue among the larger values
            cur = gt;
            size = n_gt;
        } else if (n_gt + equal >= target) {
            theta = pivot;
            num_eq = target - n_gt;
            break;
        } else {  // pivot too large: continue among the smaller values
            target -= n_gt + equal;
            cur = lt;
            size = n_lt;
        }
    }
}

// mask[i] for i < n: vals[i] is among the k largest of vals[0..n) (mask[n..] is not written).
// k >= n keeps all and k <= 0 keeps none, both with 0 rounds and 0 cycles.
template <int MAXN, int P>
void topk_mask(const importance_t vals[MAXN], int n, int k, bool mask[MAXN], int &rounds,
               int &cycles) {
#pragma HLS INLINE off
    rounds = 0;
    cycles = 0;
    if (k >= n || k <= 0) {
        const bool all = k >= n;
    fill:
        for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT max=MAXN
            mask[i] = all;
        }
        return;
    }
    importance_t theta;
    int num_eq;
    kth_largest<MAXN, P, importance_t>(vals, n, k, theta, num_eq, rounds, cycles);
    const int blocks = (n + P - 1) / P;
filter:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT max=(MAXN + P - 1) / P
    lanes:
        for (int l = 0; l < P; l++) {
#pragma HLS UNROLL
            const int i = b * P + l;
            if (i < n) {
                bool keep = vals[i] > theta;
                if (!keep && vals[i] == theta && num_eq > 0) {
                    keep = true;
                    num_eq--;
                }
                mask[i] = keep;
            }
        }
    }
    cycles += blocks;
}

}  // namespace spatten

#endif
