// The processes of the critical path of SpAtten (paper Fig. 8), one query row of one head per
// item: (row schedule, layer.h) -> K fetch -> Q fetch -> Q·K -> softmax exp -> softmax
// normalization + requant decision -> value top-k threshold -> token importance + value top-k
// filter + V requests -> V fetch -> prob·V + requantization -> write back. layer.h calls them
// in one DATAFLOW loop over the rows of a layer, so consecutive rows overlap (row r + 1 in
// Q·K while row r is in softmax) and the rows of one KV head flow into the next KV head's
// without draining. Every process runs for every row (dataflow
// canonical form); one that has nothing to do for a row runs zero-trip loops. Every loop runs
// to the row's live counts (visible keys, kept values): pruned tokens cost no cycles.
//
// Rates (from the hardware plan, params.h): Q·K takes QK_KPC keys a cycle against the
// broadcast query (the K buffer is partitioned cyclically so QK_KPC rows are read at once),
// softmax and the select pass SOFTMAX_LANES scores a cycle, value top-k VALUE_TOPK_ENGINES
// threshold engines of VALUE_TOPK_P comparators taking turns, prob·V PV_KPC V rows a cycle,
// the fetcher K_LANES / V_LANES rows at once (fetch.h).
//
// K and V buffers are ping-pong: the rows of a KV head use one half (`slot`) while the K rows
// of the next KV head arrive in the other. V rows arrive on demand: the select process asks
// for the kept rows not yet on chip for this KV head.
#ifndef SPATTEN_ENGINES_ROWS_H
#define SPATTEN_ENGINES_ROWS_H

#include "csim.h"
#include "fetch.h"
#include "importance.h"
#include "pv.h"
#include "qk.h"
#include "requant.h"
#include "scale.h"
#include "softmax.h"
#include "spatten_types.h"
#include "value_topk.h"

namespace spatten {

// One query row of one head as it enters the pipeline.
struct row_item {
    int head;
    int kv;
    int j;          // the query's index among the visible keys
    int t;          // its position
    int visible;    // keys it attends to: j + 1 (causal) or all of them
    int slot;       // the buffer half of its KV head
    bool new_kv;      // the first row of its KV head in this pass
    bool with_lsb;    // full K words: the second pass, or no progressive quantization
    int topk_engine;  // the value top-k threshold engine of the row
};

// The on-chip K and V buffers of the KV heads in flight.
template <class Cfg>
struct kv_buffers {
    code_t k[2][Cfg::TILE][Cfg::HEAD_DIM];
    lsb_t lsb[2][Cfg::TILE][Cfg::HEAD_DIM];
    code_t v[2][Cfg::TILE][Cfg::HEAD_DIM];
    ap_uint<32> v_tag[2][Cfg::TILE];  // == epoch[slot]: this KV head's V row is on chip
    ap_uint<32> epoch[2];
    int v_upto[2];  // ... and so is every V row below v_upto (a prefix fetched in order)
};

// What the select process hands on: the kept keys (all `visible`, or the value top-k list in
// key order) and the V rows to fetch for them.
template <class Cfg>
struct row_selection {
    bool deferred;  // the row waits for the K LSBs: nothing to fetch or multiply now
    bool all_kept;
    int n_kept;
    index_t kept_index[Cfg::MAX_CTX];
    prob_t kept_p[Cfg::MAX_CTX];
    int n_fetch;
    index_t fetch_list[Cfg::MAX_CTX];
};

// K fetch (its own process): a KV head's K rows when its first row arrives, into its half of
// the buffer; the LSB plane too when the rows use full words. With more than one tile the
// K rows are not resident: Q·K fetches them per row.
template <class Cfg>
void stage_fetch_k(const row_item &it, int nk, const index_t pos[Cfg::MAX_CTX],
                   kv_buffers<Cfg> &buf SPATTEN_K_PARAMS) {
    if (Cfg::MAX_TILES != 1 || !it.new_kv) return;
    fetch_k_rows<Cfg, K_MSB_PLANE, code_t>(it.kv, pos, 0, nk, buf.k[it.slot], E_FETCH_K
                                           SPATTEN_K_ARGS);
    if (it.with_lsb && Cfg::K_LSB_BITS > 0) {
        fetch_k_rows<Cfg, K_LSB_PLANE, lsb_t>(it.kv, pos, 0, nk, buf.lsb[it.slot], E_FETCH_K
                                              SPATTEN_K_ARGS);
    }
}

// Scores of the visible keys first .. first + count - 1 from buffer rows 0 .. count - 1.
template <class Cfg>
void qk_scores(const code_t q_row[Cfg::HEAD_DIM], const code_t k[Cfg::TILE][Cfg::HEAD_DIM],
               const lsb_t lsb[Cfg::TILE][Cfg::HEAD_DIM], bool with_lsb, int first, int count,
               mult_t m, int sh, score_t s[Cfg::MAX_CTX], score_t &top) {
    const int blocks = (count + Cfg::QK_KPC - 1) / Cfg::QK_KPC;
blocks:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::TILE + Cfg::QK_KPC - 1) / Cfg::QK_KPC
    lanes:
        for (int l = 0; l < Cfg::QK_KPC; l++) {
#pragma HLS UNROLL
            const int j = b * Cfg::QK_KPC + l;
            if (j < count) {
                code_t word[Cfg::HEAD_DIM];
            words:
                for (int d = 0; d < Cfg::HEAD_DIM; d++) {
#pragma HLS UNROLL
                    word[d] = with_lsb ? k_full_word(k[j][d], lsb[j][d]) : k[j][d];
                }
                const score_t sj = scale_score(qk_dot<Cfg::HEAD_DIM>(q_row, word), m, sh);
                s[first + j] = sj;
                if (sj > top) top = sj;
            }
        }
    }
    SPATTEN_CYCLES(E_QK, loop_cycles(blocks, 1000, Cfg::QK_DEPTH));
}

// Q·K of a row over its visible keys, and their max (the softmax's reference). With more than
// one tile the row walks them, fetching each.
template <class Cfg>
void stage_qk(const code_t q_row[Cfg::HEAD_DIM], const row_item &it,
              const index_t pos[Cfg::MAX_CTX], kv_buffers<Cfg> &buf, mult_t m, int sh,
              score_t s[Cfg::MAX_CTX], score_t &top SPATTEN_K_PARAMS) {
    top = score_t(MASKED);
    if (Cfg::MAX_TILES == 1) {
        qk_scores<Cfg>(q_row, buf.k[it.slot], buf.lsb[it.slot], it.with_lsb, 0, it.visible, m,
                       sh, s, top);
        return;
    }
tiles:
    for (int first = 0; first < it.visible; first += Cfg::TILE) {
#pragma HLS LOOP_TRIPCOUNT max = Cfg::MAX_TILES
        const int count = it.visible - first < Cfg::TILE ? it.visible - first : Cfg::TILE;
        fetch_k_rows<Cfg, K_MSB_PLANE, code_t>(it.kv, pos, first, count, buf.k[0], E_QK
                                               SPATTEN_K_ARGS);
        if (it.with_lsb && Cfg::K_LSB_BITS > 0) {
            fetch_k_rows<Cfg, K_LSB_PLANE, lsb_t>(it.kv, pos, first, count, buf.lsb[0], E_QK
                                                  SPATTEN_K_ARGS);
        }
        qk_scores<Cfg>(q_row, buf.k[0], buf.lsb[0], it.with_lsb, first, count, m, sh, s, top);
    }
}

// Softmax, first pass: e_j and their sum, SOFTMAX_LANES at a time.
template <class Cfg>
void stage_exp(const score_t s[Cfg::MAX_CTX], score_t top, int visible, exp_t e[Cfg::MAX_CTX],
               sum_t &total) {
    const int blocks = (visible + Cfg::SOFTMAX_LANES - 1) / Cfg::SOFTMAX_LANES;
    total = 0;
blocks:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::MAX_CTX + Cfg::SOFTMAX_LANES - 1) / Cfg::SOFTMAX_LANES
    lanes:
        for (int l = 0; l < Cfg::SOFTMAX_LANES; l++) {
#pragma HLS UNROLL
            const int j = b * Cfg::SOFTMAX_LANES + l;
            if (j < visible) {
                e[j] = softmax_exp(top, s[j]);
                total += e[j];
            }
        }
    }
    SPATTEN_CYCLES(E_SOFTMAX_EXP, loop_cycles(blocks, 1000, Cfg::EXP_DEPTH));
}

// Softmax, second pass: the probabilities; then the requant decision on their max. A row whose
// largest probability is below THRESHOLD_CODE (progressive quantization) is deferred: it
// leaves the pipeline here and runs again in the second pass with the full K words.
template <class Cfg>
void stage_norm(const exp_t e[Cfg::MAX_CTX], sum_t total, const row_item &it,
                prob_t p[Cfg::MAX_CTX], bool &deferred) {
    const softmax_norm norm = softmax_reciprocal(total);
    const int blocks = (it.visible + Cfg::SOFTMAX_LANES - 1) / Cfg::SOFTMAX_LANES;
    prob_t best = 0;
blocks:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::MAX_CTX + Cfg::SOFTMAX_LANES - 1) / Cfg::SOFTMAX_LANES
    lanes:
        for (int l = 0; l < Cfg::SOFTMAX_LANES; l++) {
#pragma HLS UNROLL
            const int j = b * Cfg::SOFTMAX_LANES + l;
            if (j < it.visible) {
                p[j] = softmax_prob(e[j], norm);
                if (p[j] > best) best = p[j];
            }
        }
    }
    deferred = Cfg::PROGRESSIVE && !it.with_lsb && needs_requant(best, Cfg::THRESHOLD_CODE);
    SPATTEN_CYCLES(E_SOFTMAX_NORM, loop_cycles(blocks, 1000, Cfg::NORM_DEPTH));
}

// Value top-k threshold engine `engine` (one of VALUE_TOPK_ENGINES, each its own process with
// VALUE_TOPK_P comparators): the quick-select of the rows r with r % VALUE_TOPK_ENGINES ==
// engine, so one row's rounds overlap the next row's.
template <class Cfg>
void stage_threshold(const prob_t p[Cfg::MAX_CTX], const row_item &it, bool deferred,
                     int engine, value_threshold &t) {
    t.all = true;
    t.theta = 0;
    t.num_eq = 0;
    if (!Cfg::VALUE_PRUNING || deferred || it.topk_engine != engine) return;
    int cycles = 0;
    t = value_topk_threshold<Cfg::MAX_CTX, Cfg::VALUE_TOPK_P>(
        p, it.visible, Cfg::VALUE_KEEP_NUM, Cfg::VALUE_KEEP_DEN, cycles);
    SPATTEN_CYCLES_IN(E_VALUE_TOPK, engine_id(E_THRESHOLD + engine), cycles);
}

// The select pass, SOFTMAX_LANES keys a cycle: token importance (into the layer's accumulator
// by visible index), the value top-k filter (survivors compacted in key order) and the V
// requests: the kept rows not on chip for this KV head yet (asked for once per KV head and
// pass; the prefix below v_upto arrived in order).
template <class Cfg>
void stage_select(const prob_t p[Cfg::MAX_CTX], const row_item &it, bool deferred,
                  value_threshold t, kv_buffers<Cfg> &buf,
                  importance_t local_importance[Cfg::MAX_CTX], row_selection<Cfg> &sel) {
    sel.deferred = deferred;
    sel.all_kept = t.all;
    sel.n_kept = 0;
    sel.n_fetch = 0;
    if (Cfg::MAX_TILES == 1 && it.new_kv) {  // a fresh half: none of its V rows are on chip
        buf.epoch[it.slot]++;
        buf.v_upto[it.slot] = 0;
    }
    if (deferred) return;
    const int visible = it.visible;
    const bool requests = Cfg::MAX_TILES == 1;  // tiles: prob·V fetches the kept rows per row
    const ap_uint<32> epoch = buf.epoch[it.slot];
    const int upto = buf.v_upto[it.slot];
    const int blocks = (visible + Cfg::SOFTMAX_LANES - 1) / Cfg::SOFTMAX_LANES;
blocks:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::MAX_CTX + Cfg::SOFTMAX_LANES - 1) / Cfg::SOFTMAX_LANES
    lanes:
        for (int l = 0; l < Cfg::SOFTMAX_LANES; l++) {
#pragma HLS UNROLL
            const int j = b * Cfg::SOFTMAX_LANES + l;
            if (j < visible) {
                if (Cfg::TOKEN_PRUNING) local_importance[j] += p[j];
                if (value_keep(p[j], t)) {
                    sel.kept_index[sel.n_kept] = j;
                    sel.kept_p[sel.n_kept] = p[j];
                    sel.n_kept++;
                    if (requests && j >= upto && buf.v_tag[it.slot][j] != epoch) {
                        sel.fetch_list[sel.n_fetch++] = j;
                        buf.v_tag[it.slot][j] = epoch;
                    }
                }
            }
        }
    }
    if (requests && sel.all_kept && visible > upto) buf.v_upto[it.slot] = visible;
    SPATTEN_CYCLES(E_SELECT, loop_cycles(blocks, 1000, 1));
}

// V fetch (its own process): the rows the select process asked for, into the KV head's half.
template <class Cfg>
void stage_fetch_v(const row_selection<Cfg> &sel, const row_item &it,
                   const index_t pos[Cfg::MAX_CTX], kv_buffers<Cfg> &buf SPATTEN_V_PARAMS) {
    if (Cfg::MAX_TILES != 1 || sel.n_fetch == 0) return;
    fetch_v_rows<Cfg, true>(it.kv, pos, sel.fetch_list, 0, sel.n_fetch, true, buf.v[it.slot],
                            E_FETCH_V SPATTEN_V_ARGS);
}

// prob·V of the kept entries lo .. hi - 1 (keys, or the value top-k list), PV_KPC a cycle;
// buffer row: the key (resident V) or the entry - lo (a chunk fetched for this row).
template <class Cfg, bool BY_KEY>
void pv_rows(const prob_t p[Cfg::MAX_CTX], const row_selection<Cfg> &sel,
             const code_t v[Cfg::TILE][Cfg::HEAD_DIM], int lo, int hi,
             pv_acc_t acc[Cfg::HEAD_DIM]) {
    const int blocks = (hi - lo + Cfg::PV_KPC - 1) / Cfg::PV_KPC;
blocks:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::TILE + Cfg::PV_KPC - 1) / Cfg::PV_KPC
    lanes:
        for (int l = 0; l < Cfg::PV_KPC; l++) {
#pragma HLS UNROLL
            const int i = lo + b * Cfg::PV_KPC + l;
            if (i < hi) {
                const int key = sel.all_kept ? i : (int)sel.kept_index[i];
                const prob_t pk = sel.all_kept ? p[i] : sel.kept_p[i];
                pv_mac<Cfg::HEAD_DIM>(pk, v[BY_KEY ? key : i - lo], acc);
            }
        }
    }
    SPATTEN_CYCLES(E_PV, loop_cycles(blocks, 1000, Cfg::PV_DEPTH));
}

// prob·V and requantization of a row (with more than one tile: its kept V rows fetched TILE
// at a time); adds the row's sum |out| to its head's importance.
template <class Cfg>
void stage_pv(const prob_t p[Cfg::MAX_CTX], const row_selection<Cfg> &sel, const row_item &it,
              const index_t pos[Cfg::MAX_CTX], kv_buffers<Cfg> &buf,
              code_t out_row[Cfg::HEAD_DIM],
              ap_uint<64> abs_total[Cfg::NUM_HEADS] SPATTEN_V_PARAMS) {
    if (sel.deferred) return;
    pv_acc_t acc[Cfg::HEAD_DIM];
#pragma HLS ARRAY_PARTITION variable = acc complete dim = 1
zero:
    for (int d = 0; d < Cfg::HEAD_DIM; d++) {
#pragma HLS UNROLL
        acc[d] = 0;
    }
    if (Cfg::MAX_TILES == 1) {
        pv_rows<Cfg, true>(p, sel, buf.v[it.slot], 0, sel.n_kept, acc);
    } else {
    chunks:
        for (int lo = 0; lo < sel.n_kept; lo += Cfg::TILE) {
#pragma HLS LOOP_TRIPCOUNT max = Cfg::MAX_TILES
            const int count = sel.n_kept - lo < Cfg::TILE ? sel.n_kept - lo : Cfg::TILE;
            fetch_v_rows<Cfg, false>(it.kv, pos, sel.kept_index, lo, count, !sel.all_kept,
                                     buf.v[0], E_PV SPATTEN_V_ARGS);
            pv_rows<Cfg, false>(p, sel, buf.v[0], lo, lo + count, acc);
        }
    }
    requantize_row<Cfg::HEAD_DIM>(acc, Cfg::V_BITS, out_row);
    abs_total[it.head] += abs_sum_row<Cfg::HEAD_DIM>(out_row);
}

// Write back (its own process): the output row, unless the row was deferred.
template <class Cfg>
void stage_write(const code_t out_row[Cfg::HEAD_DIM], const row_selection<Cfg> &sel,
                 const row_item &it, beat_t *out) {
    if (!sel.deferred) write_out_row<Cfg>(out, it.head, it.t, out_row);
}

}  // namespace spatten

#endif
