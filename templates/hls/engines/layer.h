// One attention layer of the SpAtten datapath for one invocation (a summarization layer, or one
// decode step of a layer), composed from the engines. Mirrors compiler/sim (the golden
// reference) operation for operation; docs/numerics.md is the arithmetic contract.
//
// Keys are processed in tiles of Cfg::TILE rows (hardware.max_tokens): when all visible keys
// fit, a KV head's K and V are fetched once and reused by every query row and query head of
// its group; otherwise every row walks the tiles, refetching them (scores go to a row buffer
// of MAX_CTX entries, softmax runs over the whole row, prob·V accumulates tile by tile). The
// integer results are the same either way: max and sums are order independent.
//
// Cfg is the generated `model_cfg` of params.h. DRAM arrays are layer-local and indexed by
// absolute token position: q [NUM_HEADS][MAX_CTX][HEAD_DIM], K planes and V
// [NUM_KV_HEADS][MAX_CTX][HEAD_DIM], out like q. The pruning state persists in DRAM between
// invocations: a token is visible to layer l while l < token_dropped_at[token] (heads alike).
#ifndef SPATTEN_LAYER_H
#define SPATTEN_LAYER_H

#include <hls_stream.h>

#include "importance.h"
#include "pv.h"
#include "qk.h"
#include "requant.h"
#include "scale.h"
#include "softmax.h"
#include "spatten_types.h"
#include "topk.h"
#include "value_topk.h"

namespace spatten {

typedef ap_int<32> index_t;

struct layer_args {
    int layer;       // layer index (compared with the dropped_at state)
    int q_begin;     // query positions [q_begin, q_end) are computed
    int q_end;
    int end;         // sequence length so far: keys are positions < end
    int step_query;  // generation: this step's own token (never pruned now); -1 otherwise
};

// Fetcher: positions < end still visible to this layer, ascending; returns their count.
template <class Cfg>
int visible_tokens(const index_t dropped_at[Cfg::MAX_CTX], int layer, int end,
                   index_t pos[Cfg::MAX_CTX]) {
    int n = 0;
scan:
    for (int t = 0; t < Cfg::MAX_CTX; t++) {
#pragma HLS PIPELINE II = 1
        if (t < end && dropped_at[t] > layer) {
            pos[n] = t;
            n++;
        }
    }
    return n;
}

// Fetcher, read side: the visible rows of one tile of a KV head from DRAM, K MSB widened on
// chip (the bitwidth converter puts the MSBs at the top of the word), as data FIFOs.
template <class Cfg>
void read_tile(const code_t *k_msb, const lsb_t *k_lsb, const code_t *v, int kv,
               const index_t pos[Cfg::MAX_CTX], int first, int count,
               hls::stream<code_t> &k_words, hls::stream<lsb_t> &lsb_words,
               hls::stream<code_t> &v_words) {
rows:
    for (int j = 0; j < Cfg::TILE; j++) {
        if (j < count) {
            const int base = (kv * Cfg::MAX_CTX + (int)pos[first + j]) * Cfg::HEAD_DIM;
        dims:
            for (int d = 0; d < Cfg::HEAD_DIM; d++) {
#pragma HLS PIPELINE II = 1
                k_words.write((code_t)(k_msb[base + d] * (1 << Cfg::K_LSB_BITS)));
                lsb_words.write(k_lsb[base + d]);
                v_words.write(v[base + d]);
            }
        }
    }
}

// Fetcher, write side: the data FIFOs into the on-chip K and V buffers.
template <class Cfg>
void write_tile(int count, hls::stream<code_t> &k_words, hls::stream<lsb_t> &lsb_words,
                hls::stream<code_t> &v_words, code_t k_buf[Cfg::TILE][Cfg::HEAD_DIM],
                lsb_t lsb_buf[Cfg::TILE][Cfg::HEAD_DIM],
                code_t v_buf[Cfg::TILE][Cfg::HEAD_DIM]) {
rows:
    for (int j = 0; j < Cfg::TILE; j++) {
        if (j < count) {
        dims:
            for (int d = 0; d < Cfg::HEAD_DIM; d++) {
#pragma HLS PIPELINE II = 1
                k_buf[j][d] = k_words.read();
                lsb_buf[j][d] = lsb_words.read();
                v_buf[j][d] = v_words.read();
            }
        }
    }
}

// Gather one tile of visible keys (visible keys first .. first + count - 1) of a KV head into
// the on-chip buffers: DRAM reads and buffer writes overlap through FIFOs.
template <class Cfg>
void fetch_kv(const code_t *k_msb, const lsb_t *k_lsb, const code_t *v, int kv,
              const index_t pos[Cfg::MAX_CTX], int first, int count,
              code_t k_buf[Cfg::TILE][Cfg::HEAD_DIM], lsb_t lsb_buf[Cfg::TILE][Cfg::HEAD_DIM],
              code_t v_buf[Cfg::TILE][Cfg::HEAD_DIM]) {
#pragma HLS DATAFLOW
    hls::stream<code_t> k_words;
    hls::stream<lsb_t> lsb_words;
    hls::stream<code_t> v_words;
#pragma HLS STREAM variable = k_words depth = Cfg::FIFO_DEPTH
#pragma HLS STREAM variable = lsb_words depth = Cfg::FIFO_DEPTH
#pragma HLS STREAM variable = v_words depth = Cfg::FIFO_DEPTH
    read_tile<Cfg>(k_msb, k_lsb, v, kv, pos, first, count, k_words, lsb_words, v_words);
    write_tile<Cfg>(count, k_words, lsb_words, v_words, k_buf, lsb_buf, v_buf);
}

// Scores of one query row against the buffered tile of keys, written to s[first ..]
// (with_lsb: the full K word MSB + LSB; otherwise the buffered word as it is).
template <class Cfg>
void score_tile(const code_t q_row[Cfg::HEAD_DIM], const code_t k_buf[Cfg::TILE][Cfg::HEAD_DIM],
                const lsb_t lsb_buf[Cfg::TILE][Cfg::HEAD_DIM], bool with_lsb, int first,
                int count, mult_t m, int sh, score_t s[Cfg::MAX_CTX]) {
keys:
    for (int j = 0; j < Cfg::TILE; j++) {
#pragma HLS PIPELINE II = 1
        if (j < count) {
            code_t k_row[Cfg::HEAD_DIM];
        words:
            for (int d = 0; d < Cfg::HEAD_DIM; d++) {
                k_row[d] = with_lsb ? (code_t)(k_buf[j][d] + (code_t)lsb_buf[j][d]) : k_buf[j][d];
            }
            s[first + j] = scale_score(qk_dot<Cfg::HEAD_DIM>(q_row, k_row), m, sh);
        }
    }
}

// Accumulate sum_j p[first + j] * v_buf[j] over one tile (exact; tiles add up associatively).
template <class Cfg>
void pv_tile(const prob_t p[Cfg::MAX_CTX], const code_t v_buf[Cfg::TILE][Cfg::HEAD_DIM],
             int first, int count, pv_acc_t acc[Cfg::HEAD_DIM]) {
keys:
    for (int j = 0; j < Cfg::TILE; j++) {
#pragma HLS PIPELINE II = 1
        if (j < count) pv_mac<Cfg::HEAD_DIM>(p[first + j], v_buf[j], acc);
    }
}

// DRAM pointers and tiling of the layer, shared by every row of a KV head.
struct kv_source {
    const code_t *k_msb;
    const lsb_t *k_lsb;
    const code_t *v;
    int kv;
    int tiles;  // 1: the whole key set is resident on chip; >1: refetched per row
};

// Make tile t of the visible keys resident (fetched only when the keys span several tiles;
// one tile stays on chip for the whole KV head). Returns the tile's first key and count.
template <class Cfg>
int load_tile(const kv_source &src, const index_t pos[Cfg::MAX_CTX], int nk, int t,
              code_t k_buf[Cfg::TILE][Cfg::HEAD_DIM], lsb_t lsb_buf[Cfg::TILE][Cfg::HEAD_DIM],
              code_t v_buf[Cfg::TILE][Cfg::HEAD_DIM], int &count) {
    const int first = t * Cfg::TILE;
    count = nk - first < Cfg::TILE ? nk - first : Cfg::TILE;
    if (src.tiles > 1) {
        fetch_kv<Cfg>(src.k_msb, src.k_lsb, src.v, src.kv, pos, first, count, k_buf, lsb_buf,
                      v_buf);
    }
    return first;
}

// Scores of a row over every tile of keys.
template <class Cfg>
void score_row(const code_t q_row[Cfg::HEAD_DIM], const kv_source &src,
               const index_t pos[Cfg::MAX_CTX], int nk, bool with_lsb, mult_t m, int sh,
               code_t k_buf[Cfg::TILE][Cfg::HEAD_DIM], lsb_t lsb_buf[Cfg::TILE][Cfg::HEAD_DIM],
               code_t v_buf[Cfg::TILE][Cfg::HEAD_DIM], score_t s[Cfg::MAX_CTX]) {
tiles:
    for (int t = 0; t < Cfg::MAX_TILES; t++) {
        if (t < src.tiles) {
            int count = 0;
            const int first = load_tile<Cfg>(src, pos, nk, t, k_buf, lsb_buf, v_buf, count);
            score_tile<Cfg>(q_row, k_buf, lsb_buf, with_lsb, first, count, m, sh, s);
        }
    }
}

// One query row of one head: Q·K, scale, mask, softmax, requant decision, importance, value
// top-k and prob·V. Returns the row's |output| sum (head importance) and counts requants.
template <class Cfg>
ap_uint<40> attend_row(const code_t q_row[Cfg::HEAD_DIM], int q_pos, const kv_source &src,
                       code_t k_buf[Cfg::TILE][Cfg::HEAD_DIM],
                       lsb_t lsb_buf[Cfg::TILE][Cfg::HEAD_DIM],
                       code_t v_buf[Cfg::TILE][Cfg::HEAD_DIM], const index_t pos[Cfg::MAX_CTX],
                       int nk, mult_t m, int sh, importance_t token_importance[Cfg::MAX_CTX],
                       code_t out_row[Cfg::HEAD_DIM], int &requants) {
    score_t s[Cfg::MAX_CTX];
    prob_t p[Cfg::MAX_CTX];
    prob_t kept[Cfg::MAX_CTX];
    bool fetched[Cfg::MAX_CTX];
    int visible = nk;
    if (Cfg::CAUSAL) {
        visible = 0;
    count:
        for (int j = 0; j < Cfg::MAX_CTX; j++) {
#pragma HLS PIPELINE II = 1
            if (j < nk && (int)pos[j] <= q_pos) visible = j + 1;
        }
    }
    score_row<Cfg>(q_row, src, pos, nk, !Cfg::PROGRESSIVE, m, sh, k_buf, lsb_buf, v_buf, s);
    softmax_row<Cfg::MAX_CTX>(s, visible, p);
    if (Cfg::PROGRESSIVE && needs_requant(row_max<Cfg::MAX_CTX>(p, nk), Cfg::THRESHOLD_CODE)) {
        score_row<Cfg>(q_row, src, pos, nk, true, m, sh, k_buf, lsb_buf, v_buf, s);
        softmax_row<Cfg::MAX_CTX>(s, visible, p);
        requants++;
    }
    if (Cfg::TOKEN_PRUNING) {
    importance:
        for (int j = 0; j < Cfg::MAX_CTX; j++) {
#pragma HLS PIPELINE II = 1
            if (j < nk) token_importance[pos[j]] += p[j];
        }
    }
    if (Cfg::VALUE_PRUNING) {
        value_topk_row<Cfg::MAX_CTX>(p, visible, Cfg::VALUE_KEEP_NUM, Cfg::VALUE_KEEP_DEN,
                                     Cfg::TOPK_PARALLELISM, kept, fetched);
    }
    pv_acc_t acc[Cfg::HEAD_DIM];
zero:
    for (int d = 0; d < Cfg::HEAD_DIM; d++) acc[d] = 0;
tiles:
    for (int t = 0; t < Cfg::MAX_TILES; t++) {
        if (t < src.tiles) {
            int count = 0;
            const int first = load_tile<Cfg>(src, pos, nk, t, k_buf, lsb_buf, v_buf, count);
            pv_tile<Cfg>(Cfg::VALUE_PRUNING ? kept : p, v_buf, first, count, acc);
        }
    }
    requantize_row<Cfg::HEAD_DIM>(acc, Cfg::V_BITS, out_row);
    return abs_sum_row<Cfg::HEAD_DIM>(out_row);
}

// Top-k of the token importance after this layer (if the schedule prunes here).
template <class Cfg>
void select_tokens(const index_t pos[Cfg::MAX_CTX], int nk, int keep, const layer_args &a,
                   const importance_t token_importance[Cfg::MAX_CTX],
                   index_t token_dropped_at[Cfg::MAX_CTX], int &cycles) {
    if (nk <= keep) return;
    importance_t imp[Cfg::MAX_CTX];
    bool protect[Cfg::MAX_CTX];
    bool survivors[Cfg::MAX_CTX];
gather:
    for (int j = 0; j < Cfg::MAX_CTX; j++) {
#pragma HLS PIPELINE II = 1
        const int t = j < nk ? (int)pos[j] : 0;
        imp[j] = j < nk ? token_importance[t] : (importance_t)0;
        protect[j] = j < nk && (t < Cfg::KEEP_FIRST || t >= a.end - Cfg::KEEP_RECENT ||
                                t == a.step_query);
    }
    select_survivors<Cfg::MAX_CTX>(imp, protect, nk, keep, Cfg::TOPK_PARALLELISM, survivors,
                                   cycles);
drop:
    for (int j = 0; j < Cfg::MAX_CTX; j++) {
#pragma HLS PIPELINE II = 1
        if (j < nk && !survivors[j]) token_dropped_at[pos[j]] = a.layer;
    }
}

// Top-k of the head importance after all heads of this layer (if the schedule prunes here).
template <class Cfg>
void select_heads(const bool alive[Cfg::NUM_HEADS], int keep, int layer,
                  const importance_t head_importance[Cfg::NUM_HEADS],
                  index_t head_dropped_at[Cfg::NUM_HEADS], int &cycles) {
    importance_t imp[Cfg::NUM_HEADS];
    bool protect[Cfg::NUM_HEADS];
    bool survivors[Cfg::NUM_HEADS];
    int heads[Cfg::NUM_HEADS];
    int n = 0;
gather:
    for (int h = 0; h < Cfg::NUM_HEADS; h++) {
        if (alive[h]) {
            imp[n] = head_importance[h];
            protect[n] = false;
            heads[n] = h;
            n++;
        }
    }
    if (n <= keep) return;
    select_survivors<Cfg::NUM_HEADS>(imp, protect, n, keep, Cfg::TOPK_PARALLELISM, survivors,
                                     cycles);
drop:
    for (int i = 0; i < Cfg::NUM_HEADS; i++) {
        if (i < n && !survivors[i]) head_dropped_at[heads[i]] = layer;
    }
}

template <class Cfg>
void attention_layer(const code_t *q, const code_t *k_msb, const lsb_t *k_lsb, const code_t *v,
                     code_t *out, index_t token_dropped_at[Cfg::MAX_CTX],
                     importance_t token_importance[Cfg::MAX_CTX],
                     index_t head_dropped_at[Cfg::NUM_HEADS],
                     importance_t head_importance[Cfg::NUM_HEADS],
                     const mult_t mult[Cfg::NUM_HEADS], const ap_uint<8> shift[Cfg::NUM_HEADS],
                     const ap_uint<17> v_weight[Cfg::NUM_HEADS], const layer_args &a,
                     int token_keep, int head_keep, int &requants, int &topk_cycles) {
    static code_t k_buf[Cfg::TILE][Cfg::HEAD_DIM];
    static lsb_t lsb_buf[Cfg::TILE][Cfg::HEAD_DIM];
    static code_t v_buf[Cfg::TILE][Cfg::HEAD_DIM];
#pragma HLS ARRAY_PARTITION variable = k_buf dim = 2 complete
#pragma HLS ARRAY_PARTITION variable = lsb_buf dim = 2 complete
#pragma HLS ARRAY_PARTITION variable = v_buf dim = 2 complete
    index_t pos[Cfg::MAX_CTX];
    bool alive[Cfg::NUM_HEADS];
    const int nk = visible_tokens<Cfg>(token_dropped_at, a.layer, a.end, pos);
    const int tiles = (nk + Cfg::TILE - 1) / Cfg::TILE;
heads_alive:
    for (int h = 0; h < Cfg::NUM_HEADS; h++) alive[h] = head_dropped_at[h] > a.layer;
kv_heads:
    for (int kv = 0; kv < Cfg::NUM_KV_HEADS; kv++) {
        bool group_alive = false;
    group:
        for (int g = 0; g < Cfg::GROUP; g++) group_alive = group_alive || alive[kv * Cfg::GROUP + g];
        if (!group_alive) continue;
        const kv_source src = {k_msb, k_lsb, v, kv, tiles};
        if (tiles == 1) fetch_kv<Cfg>(k_msb, k_lsb, v, kv, pos, 0, nk, k_buf, lsb_buf, v_buf);
    heads:
        for (int g = 0; g < Cfg::GROUP; g++) {
            const int h = kv * Cfg::GROUP + g;
            if (!alive[h]) continue;
            ap_uint<64> abs_total = 0;
        queries:
            for (int j = 0; j < Cfg::MAX_CTX; j++) {
                if (j < nk && (int)pos[j] >= a.q_begin && (int)pos[j] < a.q_end) {
                    code_t q_row[Cfg::HEAD_DIM];
                    code_t out_row[Cfg::HEAD_DIM];
                    const int row = (h * Cfg::MAX_CTX + (int)pos[j]) * Cfg::HEAD_DIM;
                load_q:
                    for (int d = 0; d < Cfg::HEAD_DIM; d++) {
#pragma HLS PIPELINE II = 1
                        q_row[d] = q[row + d];
                    }
                    abs_total += attend_row<Cfg>(q_row, (int)pos[j], src, k_buf, lsb_buf, v_buf,
                                                 pos, nk, mult[h], (int)shift[h],
                                                 token_importance, out_row, requants);
                store:
                    for (int d = 0; d < Cfg::HEAD_DIM; d++) {
#pragma HLS PIPELINE II = 1
                        out[row + d] = out_row[d];
                    }
                }
            }
            if (Cfg::HEAD_PRUNING) head_importance[h] += abs_total * v_weight[h];
        }
    }
    if (Cfg::HEAD_PRUNING && head_keep < Cfg::NUM_HEADS) {
        select_heads<Cfg>(alive, head_keep, a.layer, head_importance, head_dropped_at,
                          topk_cycles);
    }
    if (Cfg::TOKEN_PRUNING && token_keep < Cfg::MAX_CTX) {
        select_tokens<Cfg>(pos, nk, token_keep, a, token_importance, token_dropped_at,
                           topk_cycles);
    }
}

}  // namespace spatten

#endif
