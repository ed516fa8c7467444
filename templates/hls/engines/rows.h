// The processes of the critical path of SpAtten (paper Fig. 8), one query row of one head per
// item: row schedule -> K fetch -> Q fetch -> Q·K -> softmax exp -> softmax normalization +
// requant decision -> value top-k threshold engines -> token importance + value top-k filter +
// V requests -> V fetch -> prob·V + requantization -> write back. layer.h calls them in one
// DATAFLOW loop over the rows of a layer, so consecutive rows overlap (row r + 1 in Q·K while
// row r is in softmax) and the rows of one KV head flow into the next KV head's without
// draining. Every loop runs to the row's live counts (visible keys, kept values): pruned
// tokens cost no cycles.
//
// Dataflow canonical form: every process runs for every row (one that has nothing to do for
// a row runs zero-trip loops) and writes all its outputs; every channel has one writer and one
// reader, in pipeline order (the row's `row_item` travels along the chain, the probabilities
// go to each reader in a copy of its own); state that outlives a row (the K and V buffers, the
// V residency tags, the row walk, the deferred count) is a static of the one process that
// uses it. The fetchers hand their rows on through hls::stream FIFOs, one per lane
// (FETCH_FIFO_DEPTH rows): a KV head's K fetch starts while the previous KV head's rows are
// still in Q·K, and its first row scores the K rows (and multiplies the V rows) as they arrive.
//
// Rates (from the hardware plan, params.h): Q·K takes QK_KPC keys a cycle against the
// broadcast query (its K buffer is partitioned cyclically so QK_KPC rows are read at once) and
// K_LANES keys every QK_STREAM_II cycles as they arrive from the fetcher; softmax and the
// select pass SOFTMAX_LANES scores a cycle; value top-k VALUE_TOPK_ENGINES threshold engines
// of VALUE_TOPK_P comparators taking turns; prob·V PV_KPC V rows a cycle from its buffer (or
// V_LANES every PV_STREAM_II cycles as they arrive); the fetcher K_LANES / V_LANES rows at
// once (fetch.h).
#ifndef SPATTEN_ENGINES_ROWS_H
#define SPATTEN_ENGINES_ROWS_H

#include <hls_stream.h>

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

// One query row of one head as it travels along the pipeline.
struct row_item {
    int head;
    int kv;
    int j;            // the query's index among the visible keys
    int t;            // its position
    int visible;      // keys it attends to: j + 1 (causal) or all of them
    int keys;         // visible keys of the layer: a KV head's K rows
    bool new_kv;      // the first row of its KV head in this pass
    bool resident;    // the KV head's K and V rows fit the buffers: fetched once, kept
    bool observed;    // its attention adds to the token scores (the observation window)
    bool with_lsb;    // full K words: the second pass, or no progressive quantization
    bool deferred;    // (from the softmax on) the requant decision sent it to the second pass
    int topk_engine;  // the value top-k threshold engine of the row
};

// The visible keys of an invocation (layer.h's scan): how many, and which are query rows.
struct visible_span {
    int nk;
    int first_row;  // query rows: visible indices [first_row, last_row)
    int last_row;
    int observe_from;  // rows at positions from here on add to the token scores
};

// A row of a pass's job list: the head and the query's visible index.
struct row_job {
    int head;
    int j;
};

// What the requant decision hands the deferred list: the row, and whether it waits.
struct deferral {
    row_job job;
    bool deferred;
};

// The V rows the select process asks the V fetch for: visible indices list[0 .. n) of KV head
// kv (resident: the kept rows not on chip yet; streamed: all the kept rows, in order).
template <class Cfg>
struct v_request {
    int kv;
    int n;
    index_t list[Cfg::MAX_CTX];
};

// What the select process hands prob·V: the kept keys (all `visible`, or the value top-k list
// in key order) and how many V rows arrive from the fetcher for the row.
template <class Cfg>
struct row_selection {
    bool all_kept;
    int n_kept;
    int n_fetch;
    index_t kept_index[Cfg::MAX_CTX];
    prob_t kept_p[Cfg::MAX_CTX];
};

// The steps of a fetch of `count` rows through `lanes` lanes.
inline int lane_steps(int count, int lanes) {
#pragma HLS INLINE
    return (count + lanes - 1) / lanes;
}

// The row schedule (the first process of the pipeline): which head and query the r-th row of
// a pass is and whether it starts a KV head (its K rows are fetched then). The first pass
// walks the query rows of the live heads in order (live[0 .. )), the second the job list.
template <class Cfg>
void issue_row(bool second, int r, const int live[Cfg::NUM_HEADS],
               const row_job jobs[Cfg::MAX_ROWS], const visible_span &span,
               const index_t pos[Cfg::MAX_CTX], row_item &to_fetch_k, row_item &to_fetch_q) {
    static int live_at, j, kv_now;  // the walk so far: the process's own state
    if (r == 0) {
        live_at = 0;
        j = span.first_row;
        kv_now = -1;
    }
    row_item it;
    it.head = second ? jobs[r].head : live[live_at];
    it.j = second ? jobs[r].j : j;
    it.kv = it.head / Cfg::GROUP;
    it.new_kv = it.kv != kv_now;
    kv_now = it.kv;
    it.t = (int)pos[it.j];
    it.visible = Cfg::CAUSAL ? it.j + 1 : span.nk;
    it.keys = span.nk;
    it.resident = Cfg::MAX_TILES == 1 || span.nk <= Cfg::TILE;
    it.observed = it.t >= span.observe_from;
    it.with_lsb = second || !Cfg::PROGRESSIVE;
    it.deferred = false;
    it.topk_engine = r % Cfg::VALUE_TOPK_ENGINES;
    if (!second && ++j == span.last_row) {
        j = span.first_row;
        live_at++;
    }
    to_fetch_k = it;
    to_fetch_q = it;
}

// K fetch (its own process): a KV head's K rows when its first row arrives (the LSB plane too
// when the rows use full words), when they fit the buffer; when they do not (more visible
// keys than TILE in this invocation), every row's visible keys a tile at a time. The rows
// stream to Q·K, a FIFO per lane and plane.
template <class Cfg>
void stage_fetch_k(const row_item &it, const index_t pos[Cfg::MAX_CTX],
                   hls::stream<code_row<Cfg> > msb[Cfg::K_LANES],
                   hls::stream<code_row<Cfg> > lsb[Cfg::K_LANES] SPATTEN_K_PARAMS) {
    const bool resident = it.resident;
    if (resident && !it.new_kv) return;
    const bool full = it.with_lsb && Cfg::K_LSB_BITS > 0;
    const int keys = resident ? it.keys : it.visible;
tiles:
    for (int first = 0; first < keys; first += Cfg::TILE) {
#pragma HLS LOOP_TRIPCOUNT max = Cfg::MAX_TILES
        const int count = keys - first < Cfg::TILE ? keys - first : Cfg::TILE;
        if (full) {
            fetch_k_rows<Cfg, true>(it.kv, pos, first, count, msb, lsb, E_FETCH_K SPATTEN_K_ARGS);
        } else {
            fetch_k_rows<Cfg, false>(it.kv, pos, first, count, msb, lsb,
                                     E_FETCH_K SPATTEN_K_ARGS);
        }
    }
}

// Q fetch (its own process): the row's query, handed on with the row.
template <class Cfg>
void stage_fetch_q(const beat_t *q, const row_item &in, code_t q_row[Cfg::HEAD_DIM],
                   row_item &out) {
    fetch_q_row<Cfg>(q, in.head, in.t, q_row);
    out = in;
}

// The score of one key and the running max.
template <class Cfg>
void qk_key(const code_t q_row[Cfg::HEAD_DIM], const code_t word[Cfg::HEAD_DIM], mult_t m,
            int sh, int j, score_t s[Cfg::MAX_CTX], score_t &top) {
#pragma HLS INLINE
    const score_t sj = scale_score(qk_dot<Cfg::HEAD_DIM>(q_row, word), m, sh);
    s[j] = sj;
    if (sj > top) top = sj;
}

// Scores of the visible keys 0 .. count - 1 from the buffer, QK_KPC a cycle.
template <class Cfg>
void qk_scores(const code_t q_row[Cfg::HEAD_DIM], const code_t k[Cfg::TILE][Cfg::HEAD_DIM],
               const lsb_t lsb[Cfg::TILE][Cfg::HEAD_DIM], bool with_lsb, int count, mult_t m,
               int sh, score_t s[Cfg::MAX_CTX], score_t &top) {
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
                qk_key<Cfg>(q_row, word, m, sh, j, s, top);
            }
        }
    }
    SPATTEN_CYCLES(E_QK, loop_cycles(blocks, 1000, Cfg::QK_DEPTH));
}

// Scores of the keys first .. first + count - 1 as the fetcher's steps arrive (K_LANES keys
// every QK_STREAM_II cycles: the array's QK_KPC keys a cycle); the keys of the row are those
// below `visible`. `keep`: store the rows in the buffer for the KV head's later rows.
template <class Cfg>
void qk_streamed(const code_t q_row[Cfg::HEAD_DIM], hls::stream<code_row<Cfg> > msb[Cfg::K_LANES],
                 hls::stream<code_row<Cfg> > lsb[Cfg::K_LANES], bool with_lsb, bool keep,
                 int first, int count, int visible, mult_t m, int sh,
                 code_t k[Cfg::TILE][Cfg::HEAD_DIM], lsb_t k_lsb[Cfg::TILE][Cfg::HEAD_DIM],
                 score_t s[Cfg::MAX_CTX], score_t &top) {
    const bool full = with_lsb && Cfg::K_LSB_BITS > 0;
    const int steps = lane_steps(count, Cfg::K_LANES);
steps:
    for (int step = 0; step < steps; step++) {
#pragma HLS PIPELINE II = Cfg::QK_STREAM_II
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::TILE + Cfg::K_LANES - 1) / Cfg::K_LANES
    lanes:
        for (int l = 0; l < Cfg::K_LANES; l++) {
#pragma HLS UNROLL
            const int j = step * Cfg::K_LANES + l;
            if (j < count) {
                const code_row<Cfg> hi = msb[l].read();
                code_row<Cfg> lo;
                if (full) lo = lsb[l].read();  // the fetcher writes both planes of a step
                code_t word[Cfg::HEAD_DIM];
            words:
                for (int d = 0; d < Cfg::HEAD_DIM; d++) {
#pragma HLS UNROLL
                    const lsb_t low = full ? lsb_t(lo.code[d]) : lsb_t(0);
                    word[d] = full ? k_full_word(hi.code[d], low) : hi.code[d];
                    if (keep) {
                        k[j][d] = hi.code[d];
                        k_lsb[j][d] = low;
                    }
                }
                if (first + j < visible) qk_key<Cfg>(q_row, word, m, sh, first + j, s, top);
            }
        }
    }
    SPATTEN_CYCLES(E_QK, loop_cycles(steps, 1000 * Cfg::QK_STREAM_II, Cfg::QK_DEPTH));
}

// Q·K of a row over its visible keys, and their max (the softmax's reference). When the KV
// head's keys fit the buffer, its first row scores the K rows as they arrive and keeps them;
// the others read the buffer. When they do not, every row scores its tiles as they arrive.
template <class Cfg>
void stage_qk(const code_t q_row[Cfg::HEAD_DIM], const row_item &in,
              hls::stream<code_row<Cfg> > msb[Cfg::K_LANES],
              hls::stream<code_row<Cfg> > lsb[Cfg::K_LANES],
              const mult_t mult[Cfg::NUM_HEADS], const ap_uint<8> shift[Cfg::NUM_HEADS],
              score_t s[Cfg::MAX_CTX], score_t &top, row_item &out) {
    // the K buffer: K_BANKS rows readable at once (cyclic banks), a row's HEAD_DIM codes in
    // one wide word (reshaped)
    static code_t k[Cfg::TILE][Cfg::HEAD_DIM];
    static lsb_t k_lsb[Cfg::TILE][Cfg::HEAD_DIM];
#pragma HLS ARRAY_PARTITION variable = k cyclic factor = Cfg::K_BANKS dim = 1
#pragma HLS ARRAY_RESHAPE variable = k complete dim = 2
#pragma HLS ARRAY_PARTITION variable = k_lsb cyclic factor = Cfg::K_BANKS dim = 1
#pragma HLS ARRAY_RESHAPE variable = k_lsb complete dim = 2
    const mult_t m = mult[in.head];
    const int sh = (int)shift[in.head];
    top = score_t(MASKED);
    if (in.resident && !in.new_kv) {
        qk_scores<Cfg>(q_row, k, k_lsb, in.with_lsb, in.visible, m, sh, s, top);
    } else {
        // one call site of the streamed scoring (one array in the RTL): the first row of a
        // resident KV head takes all its K rows in one tile and keeps them, a streamed row
        // its visible keys a tile at a time
        const bool fill = in.resident;
        const int n = fill ? in.keys : in.visible;
    tiles:
        for (int first = 0; first < n; first += Cfg::TILE) {
#pragma HLS LOOP_TRIPCOUNT max = Cfg::MAX_TILES
            const int count = n - first < Cfg::TILE ? n - first : Cfg::TILE;
            qk_streamed<Cfg>(q_row, msb, lsb, in.with_lsb, fill, first, count, in.visible, m,
                             sh, k, k_lsb, s, top);
        }
    }
    out = in;
}

// Softmax, first pass: e_j and their sum, SOFTMAX_LANES at a time.
template <class Cfg>
void stage_exp(const score_t s[Cfg::MAX_CTX], score_t top, const row_item &in,
               exp_t e[Cfg::MAX_CTX], sum_t &total, row_item &out) {
    const int blocks = (in.visible + Cfg::SOFTMAX_LANES - 1) / Cfg::SOFTMAX_LANES;
    sum_t sum = 0;
blocks:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::MAX_CTX + Cfg::SOFTMAX_LANES - 1) / Cfg::SOFTMAX_LANES
    lanes:
        for (int l = 0; l < Cfg::SOFTMAX_LANES; l++) {
#pragma HLS UNROLL
            const int j = b * Cfg::SOFTMAX_LANES + l;
            if (j < in.visible) {
                e[j] = softmax_exp(top, s[j]);
                sum += e[j];
            }
        }
    }
    total = sum;
    out = in;
    SPATTEN_CYCLES(E_SOFTMAX_EXP, loop_cycles(blocks, 1000, Cfg::EXP_DEPTH));
}

// Softmax, second pass: the probabilities, one copy for the select pass and one for each
// threshold engine; then the requant decision on their max. A row whose largest probability
// is below THRESHOLD_CODE (progressive quantization) is deferred: it leaves the pipeline here
// and runs again in the second pass with the full K words. `keep_all` starts the row's value
// threshold (the threshold engine of the row replaces it).
template <class Cfg>
void stage_norm(const exp_t e[Cfg::MAX_CTX], sum_t total, const row_item &in,
                prob_t p[Cfg::MAX_CTX], prob_t p_engine[Cfg::VALUE_TOPK_ENGINES][Cfg::MAX_CTX],
                row_item &out, value_threshold &keep_all, deferral &note) {
    const softmax_norm norm = softmax_reciprocal(total);
    const int blocks = (in.visible + Cfg::SOFTMAX_LANES - 1) / Cfg::SOFTMAX_LANES;
    prob_t best = 0;
blocks:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::MAX_CTX + Cfg::SOFTMAX_LANES - 1) / Cfg::SOFTMAX_LANES
    lanes:
        for (int l = 0; l < Cfg::SOFTMAX_LANES; l++) {
#pragma HLS UNROLL
            const int j = b * Cfg::SOFTMAX_LANES + l;
            if (j < in.visible) {
                const prob_t pj = softmax_prob(e[j], norm);
                p[j] = pj;
            copies:
                for (int c = 0; c < Cfg::VALUE_TOPK_ENGINES; c++) {
#pragma HLS UNROLL
                    p_engine[c][j] = pj;
                }
                if (pj > best) best = pj;
            }
        }
    }
    out = in;
    out.deferred = Cfg::PROGRESSIVE && !in.with_lsb && needs_requant(best, Cfg::THRESHOLD_CODE);
    keep_all.all = true;
    keep_all.theta = 0;
    keep_all.num_eq = 0;
    note.job.head = in.head;
    note.job.j = in.j;
    note.deferred = out.deferred;
    SPATTEN_CYCLES(E_SOFTMAX_NORM, loop_cycles(blocks, 1000, Cfg::NORM_DEPTH));
}

// The deferred list (its own process): the rows the requant decision sends to the second
// pass; `n` is the count so far (the process keeps it, the pass reads the last).
template <class Cfg>
void note_deferred(int r, const deferral &note, row_job list[Cfg::MAX_ROWS], int &n) {
    static int count;
    if (r == 0) count = 0;
    if (note.deferred) list[count++] = note.job;
    n = count;
}

// Value top-k threshold engine `engine` (one of VALUE_TOPK_ENGINES, each its own process with
// VALUE_TOPK_P comparators, in a chain): the quick-select of the rows r with
// r % VALUE_TOPK_ENGINES == engine, so one row's rounds overlap the next row's; the other rows'
// thresholds pass through.
template <class Cfg>
void stage_threshold(const prob_t p[Cfg::MAX_CTX], const row_item &in,
                     const value_threshold &before, int engine, row_item &out,
                     value_threshold &t) {
    t = before;
    out = in;
    if (!Cfg::VALUE_PRUNING || in.deferred || in.topk_engine != engine) return;
    int cycles = 0;
    t = value_topk_threshold<Cfg::MAX_CTX, Cfg::VALUE_TOPK_P>(
        p, in.visible, Cfg::VALUE_KEEP_NUM, Cfg::VALUE_KEEP_DEN, cycles);
    SPATTEN_CYCLES_IN(E_VALUE_TOPK, engine_id(E_THRESHOLD + engine), cycles);
}

// The select pass, SOFTMAX_LANES keys a cycle: token importance (into the layer's accumulator
// by visible index), the value top-k filter (survivors compacted in key order) and the V
// requests. When the KV head's keys fit the buffers its V rows stay on chip for its rows: a
// request asks for the kept rows not on chip yet (the tags; the prefix below v_upto arrived
// in order). When they do not, every kept row is fetched for its row.
template <class Cfg>
void stage_select(const prob_t p[Cfg::MAX_CTX], const row_item &in,
                  const value_threshold &threshold,
                  importance_t local_importance[Cfg::MAX_CTX], v_request<Cfg> &want,
                  row_selection<Cfg> &sel, row_item &out) {
    static ap_uint<32> v_tag[Cfg::TILE];  // == epoch: this KV head's V row is requested
    static ap_uint<32> epoch = 0;
    static int v_upto = 0;
#pragma HLS ARRAY_PARTITION variable = v_tag cyclic factor = Cfg::SOFTMAX_LANES
    const bool resident = in.resident;
    value_threshold t = threshold;  // the filter consumes the copies of theta
    out = in;
    want.kv = in.kv;
    want.n = 0;
    sel.all_kept = t.all;
    sel.n_kept = 0;
    sel.n_fetch = 0;
    if (resident && in.new_kv) {  // a new KV head: none of its V rows are on chip
        epoch++;
        v_upto = 0;
    }
    if (in.deferred) return;
    const int visible = in.visible;
    const int upto = v_upto;
    int n_kept = 0;
    int n_fetch = 0;
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
                if (Cfg::TOKEN_PRUNING && in.observed) local_importance[j] += p[j];
                if (value_keep(p[j], t)) {
                    sel.kept_index[n_kept] = j;
                    sel.kept_p[n_kept] = p[j];
                    n_kept++;
                    // (j < TILE holds when resident; stated so the tag read is in bounds)
                    if (!resident || (j < Cfg::TILE && j >= upto && v_tag[j] != epoch)) {
                        want.list[n_fetch++] = j;
                        if (resident) v_tag[j] = epoch;
                    }
                }
            }
        }
    }
    sel.n_kept = n_kept;
    sel.n_fetch = n_fetch;
    want.n = n_fetch;
    if (resident && sel.all_kept && visible > upto) v_upto = visible;
    SPATTEN_CYCLES(E_SELECT, loop_cycles(blocks, 1000, 1));
}

// V fetch (its own process): the rows the select process asked for (tiled: a tile at a time),
// streamed to prob·V.
template <class Cfg>
void stage_fetch_v(const v_request<Cfg> &want, const index_t pos[Cfg::MAX_CTX],
                   hls::stream<keyed_row<Cfg> > rows[Cfg::V_LANES] SPATTEN_V_PARAMS) {
chunks:
    for (int lo = 0; lo < want.n; lo += Cfg::TILE) {
#pragma HLS LOOP_TRIPCOUNT max = Cfg::MAX_TILES
        const int count = want.n - lo < Cfg::TILE ? want.n - lo : Cfg::TILE;
        fetch_v_rows<Cfg>(want.kv, pos, want.list, lo, count, rows SPATTEN_V_ARGS);
    }
}

// The V rows that arrived for the row into the buffer, at their keys (a step every V_BEATS
// cycles: the rate the buffer's banks take the fetcher's rows at).
template <class Cfg>
void pv_store(hls::stream<keyed_row<Cfg> > rows[Cfg::V_LANES], int count,
              code_t v[Cfg::TILE][Cfg::HEAD_DIM]) {
    const int steps = lane_steps(count, Cfg::V_LANES);
steps:
    for (int step = 0; step < steps; step++) {
#pragma HLS PIPELINE II = Cfg::V_BEATS
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::TILE + Cfg::V_LANES - 1) / Cfg::V_LANES
    lanes:
        for (int l = 0; l < Cfg::V_LANES; l++) {
#pragma HLS UNROLL
            if (step * Cfg::V_LANES + l < count) {
                const keyed_row<Cfg> in = rows[l].read();
            words:
                for (int d = 0; d < Cfg::HEAD_DIM; d++) {
#pragma HLS UNROLL
                    v[(int)in.key][d] = in.code[d];
                }
            }
        }
    }
    SPATTEN_CYCLES(E_PV, loop_cycles(steps, 1000 * Cfg::V_BEATS, 1));
}

// prob·V of the kept entries 0 .. n - 1 from the buffer (resident V, rows by key), PV_KPC a
// cycle.
template <class Cfg>
void pv_rows(const row_selection<Cfg> &sel, const code_t v[Cfg::TILE][Cfg::HEAD_DIM],
             pv_acc_t acc[Cfg::HEAD_DIM]) {
    const int blocks = (sel.n_kept + Cfg::PV_KPC - 1) / Cfg::PV_KPC;
blocks:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::TILE + Cfg::PV_KPC - 1) / Cfg::PV_KPC
    lanes:
        for (int l = 0; l < Cfg::PV_KPC; l++) {
#pragma HLS UNROLL
            const int i = b * Cfg::PV_KPC + l;
            if (i < sel.n_kept) {
                const int key = sel.all_kept ? i : (int)sel.kept_index[i];
                pv_mac<Cfg::HEAD_DIM>(sel.kept_p[i], v[key], acc);
            }
        }
    }
    SPATTEN_CYCLES(E_PV, loop_cycles(blocks, 1000, Cfg::PV_DEPTH));
}

// prob·V of the kept entries lo .. lo + count - 1 as their V rows arrive (V_LANES rows every
// PV_STREAM_II cycles: the array's PV_KPC rows a cycle). `keep`: store them in the buffer
// too, at their keys, for the KV head's later rows.
template <class Cfg>
void pv_streamed(const row_selection<Cfg> &sel, hls::stream<keyed_row<Cfg> > rows[Cfg::V_LANES],
                 bool keep, int lo, int count, code_t v[Cfg::TILE][Cfg::HEAD_DIM],
                 pv_acc_t acc[Cfg::HEAD_DIM]) {
    const int steps = lane_steps(count, Cfg::V_LANES);
steps:
    for (int step = 0; step < steps; step++) {
#pragma HLS PIPELINE II = Cfg::PV_STREAM_II
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::TILE + Cfg::V_LANES - 1) / Cfg::V_LANES
    lanes:
        for (int l = 0; l < Cfg::V_LANES; l++) {
#pragma HLS UNROLL
            const int i = lo + step * Cfg::V_LANES + l;
            if (i < lo + count) {
                const keyed_row<Cfg> in = rows[l].read();
                pv_mac<Cfg::HEAD_DIM>(sel.kept_p[i], in.code, acc);
                if (keep) {
                words:
                    for (int d = 0; d < Cfg::HEAD_DIM; d++) {
#pragma HLS UNROLL
                        v[(int)in.key][d] = in.code[d];
                    }
                }
            }
        }
    }
    SPATTEN_CYCLES(E_PV, loop_cycles(steps, 1000 * Cfg::PV_STREAM_II, Cfg::PV_DEPTH));
}

// prob·V and requantization of a row. Resident (the KV head's keys fit the buffers), the
// first row of a KV head multiplies its kept V rows as they arrive (none is on chip yet, so
// all of them come, in order) and keeps them; a later row stores the rows that arrived for
// it, then multiplies from the buffer. Otherwise the kept rows are multiplied as they
// arrive. Adds the row's sum |out| to its
// head's importance.
template <class Cfg>
void stage_pv(const row_selection<Cfg> &sel, const row_item &in,
              hls::stream<keyed_row<Cfg> > rows[Cfg::V_LANES], code_t out_row[Cfg::HEAD_DIM],
              ap_uint<64> abs_total[Cfg::NUM_HEADS], row_item &out) {
    // the V buffer of the KV head: V_BANKS rows readable at once, a row in one wide word
    static code_t v[Cfg::TILE][Cfg::HEAD_DIM];
#pragma HLS ARRAY_PARTITION variable = v cyclic factor = Cfg::V_BANKS dim = 1
#pragma HLS ARRAY_RESHAPE variable = v complete dim = 2
    out = in;
    if (in.deferred) return;
    pv_acc_t acc[Cfg::HEAD_DIM];
#pragma HLS ARRAY_PARTITION variable = acc complete dim = 1
zero:
    for (int d = 0; d < Cfg::HEAD_DIM; d++) {
#pragma HLS UNROLL
        acc[d] = 0;
    }
    if (in.resident && !in.new_kv) {
        pv_store<Cfg>(rows, sel.n_fetch, v);
        pv_rows<Cfg>(sel, v, acc);
    } else {
        // one call site of the streamed prob·V: the first row of a resident KV head takes its
        // kept rows in one tile and keeps them, a streamed row TILE at a time
    chunks:
        for (int lo = 0; lo < sel.n_kept; lo += Cfg::TILE) {
#pragma HLS LOOP_TRIPCOUNT max = Cfg::MAX_TILES
            const int count = sel.n_kept - lo < Cfg::TILE ? sel.n_kept - lo : Cfg::TILE;
            pv_streamed<Cfg>(sel, rows, in.resident, lo, count, v, acc);
        }
    }
    requantize_row<Cfg::HEAD_DIM>(acc, Cfg::V_BITS, out_row);
    abs_total[in.head] += abs_sum_row<Cfg::HEAD_DIM>(out_row);
}

// Write back (its own process): the output row, unless the row was deferred.
template <class Cfg>
void stage_write(const code_t out_row[Cfg::HEAD_DIM], const row_item &in, beat_t *out) {
    if (!in.deferred) write_out_row<Cfg>(out, in.head, in.t, out_row);
}

}  // namespace spatten

#endif
