// One attention layer of the SpAtten accelerator for one invocation (a summarization layer,
// or one decode step of a layer). Mirrors compiler/sim (the golden reference) operation for
// operation; docs/numerics.md is the arithmetic contract, docs/hls.md the microarchitecture.
//
// Per invocation: the visible tokens are compacted from the on-chip pruning state (the zero
// eliminator, SCAN_LANES entries a cycle); every query row of every live head flows through
// the row pipeline (rows.h, one DATAFLOW loop); rows the requant decision deferred flow through
// it again with the full K words; then token importance folds into the state and the top-k
// engine drops tokens and heads. The pruning state (the layer that dropped each token and
// head, and their importance) lives on chip for the whole run: the first invocation loads it
// from DRAM and the last stores it (`control`), not every layer.
//
// Cfg is the generated `model_cfg` of params.h (the hardware plan's parameters).
#ifndef SPATTEN_LAYER_H
#define SPATTEN_LAYER_H

#include "csim.h"
#include "fetch.h"
#include "importance.h"
#include "rows.h"
#include "spatten_types.h"
#include "topk.h"

namespace spatten {

// control bits of an invocation
static const int LOAD_STATE = 1;   // first invocation of a run: read the pruning state
static const int STORE_STATE = 2;  // last invocation: write it back

struct layer_args {
    int layer;       // layer index (compared with the dropped_at state)
    int q_begin;     // query positions [q_begin, q_end) are computed
    int q_end;
    int end;         // sequence length so far: keys are positions < end
    int step_query;  // generation: this step's own token (never pruned now); -1 otherwise
    int control;     // LOAD_STATE | STORE_STATE
};

template <class Cfg>
struct pruning_state {
    index_t token_dropped_at[Cfg::MAX_CTX];
    importance_t token_importance[Cfg::MAX_CTX];
    index_t head_dropped_at[Cfg::NUM_HEADS];
    importance_t head_importance[Cfg::NUM_HEADS];
};

// Bytes of the pruning state in DRAM (index_t and importance_t per token and head).
template <class Cfg>
constexpr long long state_bytes() {
    return (long long)(Cfg::MAX_CTX + Cfg::NUM_HEADS) * (4 + 8);
}

// The state between the on-chip arrays and DRAM (once per run each way).
template <class Cfg>
void move_state(pruning_state<Cfg> &st, index_t *token_dropped_at, importance_t *token_importance,
                index_t *head_dropped_at, importance_t *head_importance, bool load) {
tokens:
    for (int t = 0; t < Cfg::MAX_CTX; t++) {
#pragma HLS PIPELINE II = 1
        if (load) {
            st.token_dropped_at[t] = token_dropped_at[t];
            st.token_importance[t] = token_importance[t];
        } else {
            token_dropped_at[t] = st.token_dropped_at[t];
            token_importance[t] = st.token_importance[t];
        }
    }
heads:
    for (int h = 0; h < Cfg::NUM_HEADS; h++) {
#pragma HLS PIPELINE II = 1
        if (load) {
            st.head_dropped_at[h] = head_dropped_at[h];
            st.head_importance[h] = head_importance[h];
        } else {
            head_dropped_at[h] = st.head_dropped_at[h];
            head_importance[h] = st.head_importance[h];
        }
    }
    SPATTEN_BYTES(P_STATE, state_bytes<Cfg>());
    SPATTEN_CYCLES(E_STATE, loop_cycles(Cfg::MAX_CTX, 1000, Cfg::FETCH_LATENCY) +
                                loop_cycles(Cfg::NUM_HEADS, 1000, Cfg::FETCH_LATENCY));
}

// The visible tokens of an invocation: positions < end still visible to the layer, ascending,
// and which of them are query rows.
template <class Cfg>
struct visible_set {
    index_t pos[Cfg::MAX_CTX];
    int nk;
    int first_row;  // query rows: visible indices [first_row, last_row)
    int last_row;
};

// The scan: SCAN_LANES state entries a cycle compacted into the visible list; the layer's
// importance accumulator (by visible index) starts at zero.
template <class Cfg>
void visible_tokens(const pruning_state<Cfg> &st, const layer_args &a, visible_set<Cfg> &vis,
                    importance_t local_importance[Cfg::MAX_CTX]) {
    const int blocks = (a.end + Cfg::SCAN_LANES - 1) / Cfg::SCAN_LANES;
    int n = 0;
    int before = 0;
    int below_end = 0;
blocks:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::MAX_CTX + Cfg::SCAN_LANES - 1) / Cfg::SCAN_LANES
    lanes:
        for (int l = 0; l < Cfg::SCAN_LANES; l++) {
#pragma HLS UNROLL
            const int t = b * Cfg::SCAN_LANES + l;
            if (t < a.end && st.token_dropped_at[t] > a.layer) {
                vis.pos[n] = t;
                local_importance[n] = 0;
                if (t < a.q_begin) before++;
                if (t < a.q_end) below_end++;
                n++;
            }
        }
    }
    vis.nk = n;
    vis.first_row = before;
    vis.last_row = below_end;
    SPATTEN_CYCLES(E_SCAN, loop_cycles(blocks, 1000, 2));
}

// A row of the job list: the head and the query's visible index.
struct row_job {
    int head;
    int j;
};

// Everything a pass of the row pipeline reads and writes besides the rows themselves.
template <class Cfg>
struct layer_rows {
    const visible_set<Cfg> *vis;
    const mult_t *mult;
    const ap_uint<8> *shift;
    importance_t *local_importance;
    ap_uint<64> *abs_total;
    row_job *deferred;
    int n_deferred;
};

// The row schedule (the first process of the pipeline): which head and query the r-th row of
// a pass is, whether it starts a KV head (its K rows are fetched then) and the buffer half
// it uses. The first pass walks the query rows of the live heads in order (live[0 .. )), the
// second the deferred list.
template <class Cfg>
void issue_row(bool second, int r, const int live[Cfg::NUM_HEADS], const visible_set<Cfg> &vis,
               const row_job deferred[Cfg::MAX_ROWS], row_item &it) {
    static int live_at, j, kv_now, slot;  // the walk so far: the process's own state
    if (r == 0) {
        live_at = 0;
        j = vis.first_row;
        kv_now = -1;
        slot = 1;
    }
    it.head = second ? deferred[r].head : live[live_at];
    it.j = second ? deferred[r].j : j;
    it.kv = it.head / Cfg::GROUP;
    it.new_kv = it.kv != kv_now;
    if (it.new_kv) {
        kv_now = it.kv;
        slot ^= 1;
    }
    it.slot = Cfg::MAX_TILES == 1 ? slot : 0;
    it.t = (int)vis.pos[it.j];
    it.visible = Cfg::CAUSAL ? it.j + 1 : vis.nk;
    it.with_lsb = second || !Cfg::PROGRESSIVE;
    it.topk_engine = r % Cfg::VALUE_TOPK_ENGINES;
    if (!second && ++j == vis.last_row) {
        j = vis.first_row;
        live_at++;
    }
}

// The deferred list (its own process): the rows the requant decision sends to the second pass.
template <class Cfg>
void note_deferred(const row_item &it, bool deferred, row_job list[Cfg::MAX_ROWS], int &n) {
    if (!deferred) return;
    list[n].head = it.head;
    list[n].j = it.j;
    n++;
}

// One pass of the row pipeline over `n_jobs` rows: the first pass takes the query rows of the
// live heads in order (live[0 .. n_live)), the second the deferred list (its rows have the
// full K words, so none is deferred again).
template <class Cfg>
void run_pass(bool second, const int live[Cfg::NUM_HEADS], int n_jobs, kv_buffers<Cfg> &buf,
              layer_rows<Cfg> &lr, const beat_t *q, beat_t *out SPATTEN_K_PARAMS
              SPATTEN_V_PARAMS) {
    const visible_set<Cfg> &vis = *lr.vis;
    SPATTEN_REGION_BEGIN();
rows:
    for (int r = 0; r < n_jobs; r++) {
#pragma HLS DATAFLOW
#pragma HLS LOOP_TRIPCOUNT max = Cfg::MAX_ROWS
        // the loop body is in canonical form: declarations and process calls only
        row_item it;
        code_t q_row[Cfg::HEAD_DIM];
        score_t s[Cfg::MAX_CTX];
        exp_t e[Cfg::MAX_CTX];
        prob_t p[Cfg::MAX_CTX];
        // the row buffers between the processes (ping-pong), SOFTMAX_LANES entries at once
#pragma HLS ARRAY_PARTITION variable = q_row complete
#pragma HLS ARRAY_PARTITION variable = s cyclic factor = Cfg::SOFTMAX_LANES
#pragma HLS ARRAY_PARTITION variable = e cyclic factor = Cfg::SOFTMAX_LANES
#pragma HLS ARRAY_PARTITION variable = p cyclic factor = Cfg::SOFTMAX_LANES
        score_t top;
        sum_t total;
        bool deferred;
        row_selection<Cfg> sel;
        issue_row<Cfg>(second, r, live, vis, lr.deferred, it);
        stage_fetch_k<Cfg>(it, vis.nk, vis.pos, buf SPATTEN_K_ARGS);
        fetch_q_row<Cfg>(q, it.head, it.t, q_row);
        stage_qk<Cfg>(q_row, it, vis.pos, buf, lr.mult[it.head], (int)lr.shift[it.head], s, top
                      SPATTEN_K_ARGS);
        stage_exp<Cfg>(s, top, it.visible, e, total);
        stage_norm<Cfg>(e, total, it, p, deferred);
        note_deferred<Cfg>(it, deferred, lr.deferred, lr.n_deferred);
        value_threshold thresholds[Cfg::VALUE_TOPK_ENGINES];
#define SPATTEN_THRESHOLD(e) stage_threshold<Cfg>(p, it, deferred, e, thresholds[e]);
        SPATTEN_VALUE_TOPK_ENGINES(SPATTEN_THRESHOLD)
#undef SPATTEN_THRESHOLD
        stage_select<Cfg>(p, it, deferred, thresholds[it.topk_engine], buf, lr.local_importance,
                          sel);
        stage_fetch_v<Cfg>(sel, it, vis.pos, buf SPATTEN_V_ARGS);
        code_t out_row[Cfg::HEAD_DIM];
        stage_pv<Cfg>(p, sel, it, vis.pos, buf, out_row, lr.abs_total SPATTEN_V_ARGS);
        stage_write<Cfg>(out_row, sel, it, out);
        if (r == 0) SPATTEN_REGION_ITEM_DONE();
    }
    SPATTEN_REGION_END(E_ROWS);
}

// After the rows: token importance folds into the state in position order (the scan's
// expansion, SCAN_LANES a cycle), gathering the candidates of the token top-k on the way.
template <class Cfg>
void fold_importance(pruning_state<Cfg> &st, const layer_args &a,
                     const importance_t local_importance[Cfg::MAX_CTX],
                     importance_t imp[Cfg::MAX_CTX], bool protect[Cfg::MAX_CTX]) {
    const int blocks = (a.end + Cfg::SCAN_LANES - 1) / Cfg::SCAN_LANES;
    int n = 0;
blocks:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::MAX_CTX + Cfg::SCAN_LANES - 1) / Cfg::SCAN_LANES
    lanes:
        for (int l = 0; l < Cfg::SCAN_LANES; l++) {
#pragma HLS UNROLL
            const int t = b * Cfg::SCAN_LANES + l;
            if (t < a.end && st.token_dropped_at[t] > a.layer) {
                st.token_importance[t] += local_importance[n];
                imp[n] = st.token_importance[t];
                protect[n] =
                    t < Cfg::KEEP_FIRST || t >= a.end - Cfg::KEEP_RECENT || t == a.step_query;
                n++;
            }
        }
    }
    SPATTEN_CYCLES(E_IMPORTANCE, loop_cycles(blocks, 1000, 2));
}

// Top-k of the token importance after this layer; the drop pass walks the state in position
// order like the scan.
template <class Cfg>
void select_tokens(pruning_state<Cfg> &st, const visible_set<Cfg> &vis, const layer_args &a,
                   const importance_t imp[Cfg::MAX_CTX], const bool protect[Cfg::MAX_CTX],
                   int keep) {
    bool survivors[Cfg::MAX_CTX];
    int cycles = 0;
    select_survivors<Cfg::MAX_CTX, Cfg::TOPK_PARALLELISM>(imp, protect, vis.nk, keep, survivors,
                                                          cycles);
    const int blocks = (a.end + Cfg::SCAN_LANES - 1) / Cfg::SCAN_LANES;
    int n = 0;
drop:
    for (int b = 0; b < blocks; b++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::MAX_CTX + Cfg::SCAN_LANES - 1) / Cfg::SCAN_LANES
    lanes:
        for (int l = 0; l < Cfg::SCAN_LANES; l++) {
#pragma HLS UNROLL
            const int t = b * Cfg::SCAN_LANES + l;
            if (t < a.end && st.token_dropped_at[t] > a.layer) {
                if (!survivors[n]) st.token_dropped_at[t] = a.layer;
                n++;
            }
        }
    }
    SPATTEN_CYCLES(E_TOPK, cycles + loop_cycles(blocks, 1000, 2));
}

// Head importance (sum |out| of each live head, weighted by its V scale) and, if the schedule
// prunes here, the top-k of the live heads.
template <class Cfg>
void select_heads(pruning_state<Cfg> &st, const bool alive[Cfg::NUM_HEADS],
                  const ap_uint<64> abs_total[Cfg::NUM_HEADS],
                  const ap_uint<17> v_weight[Cfg::NUM_HEADS], int keep, int layer) {
    importance_t imp[Cfg::NUM_HEADS];
    bool protect[Cfg::NUM_HEADS];
    bool survivors[Cfg::NUM_HEADS];
    int heads[Cfg::NUM_HEADS];
    int n = 0;
gather:
    for (int h = 0; h < Cfg::NUM_HEADS; h++) {
#pragma HLS PIPELINE II = 1
        if (alive[h]) {
            st.head_importance[h] += abs_total[h] * v_weight[h];
            imp[n] = st.head_importance[h];
            protect[n] = false;
            heads[n] = h;
            n++;
        }
    }
    SPATTEN_CYCLES(E_IMPORTANCE, loop_cycles(Cfg::NUM_HEADS, 1000, 2));
    if (keep >= Cfg::NUM_HEADS || n <= keep) return;
    int cycles = 0;
    select_survivors<Cfg::NUM_HEADS, Cfg::TOPK_PARALLELISM>(imp, protect, n, keep, survivors,
                                                            cycles);
drop:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = Cfg::NUM_HEADS
        if (!survivors[i]) st.head_dropped_at[heads[i]] = layer;
    }
    SPATTEN_CYCLES(E_TOPK, cycles + loop_cycles(n, 1000, 2));
}

template <class Cfg>
void attention_layer(const beat_t *q SPATTEN_K_PARAMS SPATTEN_V_PARAMS, beat_t *out,
                     index_t *token_dropped_at, importance_t *token_importance,
                     index_t *head_dropped_at, importance_t *head_importance,
                     const mult_t mult[Cfg::NUM_HEADS], const ap_uint<8> shift[Cfg::NUM_HEADS],
                     const ap_uint<17> v_weight[Cfg::NUM_HEADS], const layer_args &a,
                     int token_keep, int head_keep, int &requants) {
    static pruning_state<Cfg> st;
    static kv_buffers<Cfg> buf;
    static visible_set<Cfg> vis;
    static importance_t local_importance[Cfg::MAX_CTX];
    static row_job deferred[Cfg::MAX_ROWS];
    // K and V buffers: the two halves apart, K_BANKS / V_BANKS rows readable at once (cyclic
    // banks), a row's HEAD_DIM codes in one wide word (reshaped).
#pragma HLS ARRAY_PARTITION variable = buf.k complete dim = 1
#pragma HLS ARRAY_PARTITION variable = buf.k cyclic factor = Cfg::K_BANKS dim = 2
#pragma HLS ARRAY_RESHAPE variable = buf.k complete dim = 3
#pragma HLS ARRAY_PARTITION variable = buf.lsb complete dim = 1
#pragma HLS ARRAY_PARTITION variable = buf.lsb cyclic factor = Cfg::K_BANKS dim = 2
#pragma HLS ARRAY_RESHAPE variable = buf.lsb complete dim = 3
#pragma HLS ARRAY_PARTITION variable = buf.v complete dim = 1
#pragma HLS ARRAY_PARTITION variable = buf.v cyclic factor = Cfg::V_BANKS dim = 2
#pragma HLS ARRAY_RESHAPE variable = buf.v complete dim = 3
#pragma HLS ARRAY_PARTITION variable = buf.v_tag cyclic factor = Cfg::SOFTMAX_LANES dim = 2
#pragma HLS ARRAY_PARTITION variable = local_importance cyclic factor = Cfg::SOFTMAX_LANES
#pragma HLS ARRAY_PARTITION variable = st.token_dropped_at cyclic factor = Cfg::SCAN_LANES
#pragma HLS ARRAY_PARTITION variable = st.token_importance cyclic factor = Cfg::SCAN_LANES
    if (a.control & LOAD_STATE) {
        move_state<Cfg>(st, token_dropped_at, token_importance, head_dropped_at,
                        head_importance, true);
    }
    visible_tokens<Cfg>(st, a, vis, local_importance);
    bool alive[Cfg::NUM_HEADS];
    int live[Cfg::NUM_HEADS];
    ap_uint<64> abs_total[Cfg::NUM_HEADS];
    int n_live = 0;
heads_alive:
    for (int h = 0; h < Cfg::NUM_HEADS; h++) {
#pragma HLS UNROLL
        alive[h] = st.head_dropped_at[h] > a.layer;
        abs_total[h] = 0;
        if (alive[h]) live[n_live++] = h;
    }
    layer_rows<Cfg> lr = {&vis, mult, shift, local_importance, abs_total, deferred, 0};
    const int rows = vis.last_row > vis.first_row ? vis.last_row - vis.first_row : 0;
    run_pass<Cfg>(false, live, n_live * rows, buf, lr, q, out SPATTEN_K_ARGS SPATTEN_V_ARGS);
    requants = lr.n_deferred;
    if (lr.n_deferred > 0) {
        const int n = lr.n_deferred;
        lr.n_deferred = 0;
        run_pass<Cfg>(true, live, n, buf, lr, q, out SPATTEN_K_ARGS SPATTEN_V_ARGS);
    }
    importance_t imp[Cfg::MAX_CTX];
    bool protect[Cfg::MAX_CTX];
    if (Cfg::TOKEN_PRUNING) fold_importance<Cfg>(st, a, local_importance, imp, protect);
    if (Cfg::HEAD_PRUNING) select_heads<Cfg>(st, alive, abs_total, v_weight, head_keep, a.layer);
    if (Cfg::TOKEN_PRUNING && token_keep < Cfg::MAX_CTX && vis.nk > token_keep) {
        select_tokens<Cfg>(st, vis, a, imp, protect, token_keep);
    }
    if (a.control & STORE_STATE) {
        move_state<Cfg>(st, token_dropped_at, token_importance, head_dropped_at,
                        head_importance, false);
    }
}

}  // namespace spatten

#endif
