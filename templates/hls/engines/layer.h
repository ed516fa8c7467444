// One attention layer of the SpAtten accelerator for one invocation (a summarization layer,
// or one decode step of a layer). Mirrors compiler/sim (the golden reference) operation for
// operation; docs/numerics.md is the arithmetic contract, docs/hls.md the microarchitecture.
//
// Per invocation: the visible tokens are compacted from the on-chip pruning state (the zero
// eliminator, SCAN_LANES entries a cycle); every query row of every live head flows through
// the row pipeline (rows.h, one DATAFLOW loop, one instance); rows the requant decision
// deferred flow through it again, a second pass with the full K words; then token importance
// folds into the state and the top-k engine drops tokens (with per-KV-head selection, all of
// this once per KV head, over its own tokens and query heads), then heads. The pruning state
// (the layer that dropped each token and head, and their importance) lives on chip for the
// whole run: the first invocation loads it from DRAM and the last stores it (`control`), not
// every layer.
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

// A name with a number pasted on (the last link of the threshold engines' chain).
#define SPATTEN_CAT_(a, b) a##b
#define SPATTEN_CAT(a, b) SPATTEN_CAT_(a, b)

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

// The token state has TOKEN_STATE_ROWS rows of MAX_CTX entries: one for the cascade, one per
// layer for a per-layer policy in generation (each layer's own KV cache and scores), or one
// per (layer, KV head), layer-major, when each KV head selects its own tokens.
template <class Cfg>
struct pruning_state {
    index_t token_dropped_at[Cfg::TOKEN_STATE_ROWS][Cfg::MAX_CTX];
    importance_t token_importance[Cfg::TOKEN_STATE_ROWS][Cfg::MAX_CTX];
    index_t head_dropped_at[Cfg::NUM_HEADS];
    importance_t head_importance[Cfg::NUM_HEADS];
};

// Bytes of the pruning state in DRAM (index_t and importance_t per token and head).
template <class Cfg>
constexpr long long state_bytes() {
    return (long long)(Cfg::TOKEN_STATE + Cfg::NUM_HEADS) * (4 + 8);
}

// One array of the state between chip and DRAM, in a loop of its own: the state's ports share
// one m_axi bundle (gmem_state), and Vitis bursts a loop's accesses only when no other array
// of the bundle is accessed in the same direction in it. The ROWS rows of N entries lie one
// after another at the port.
template <int ROWS, int N, class T>
void move_array(T on_chip[ROWS][N], T *port, bool load) {
    int r = 0, t = 0;
    if (load) {
    load_entries:
        for (int i = 0; i < ROWS * N; i++) {
#pragma HLS PIPELINE II = 1
            on_chip[r][t] = port[i];
            if (++t == N) {
                t = 0;
                r++;
            }
        }
    } else {
    store_entries:
        for (int i = 0; i < ROWS * N; i++) {
#pragma HLS PIPELINE II = 1
            port[i] = on_chip[r][t];
            if (++t == N) {
                t = 0;
                r++;
            }
        }
    }
}

// The state between the on-chip arrays and DRAM (once per run each way): STATE_ARRAYS token
// arrays and as many head arrays, each in its own bursting loop.
template <class Cfg>
void move_state(pruning_state<Cfg> &st, index_t *token_dropped_at, importance_t *token_importance,
                index_t *head_dropped_at, importance_t *head_importance, bool load) {
    constexpr int ROWS = Cfg::TOKEN_STATE_ROWS;
    move_array<ROWS, Cfg::MAX_CTX>(st.token_dropped_at, token_dropped_at, load);
    move_array<ROWS, Cfg::MAX_CTX>(st.token_importance, token_importance, load);
    move_array<1, Cfg::NUM_HEADS>(&st.head_dropped_at, head_dropped_at, load);
    move_array<1, Cfg::NUM_HEADS>(&st.head_importance, head_importance, load);
    SPATTEN_BYTES(P_STATE, state_bytes<Cfg>());
    SPATTEN_CYCLES(E_STATE, Cfg::STATE_ARRAYS * (loop_cycles(Cfg::TOKEN_STATE, 1000,
                                                             Cfg::FETCH_LATENCY) +
                                                 loop_cycles(Cfg::NUM_HEADS, 1000,
                                                             Cfg::FETCH_LATENCY)));
}

// Bytes of a head's parameters in DRAM: the 23-bit multiplier and the 17-bit head weight in
// 32-bit words, the shift in a byte.
static const int MULT_BYTES = 4;
static const int SHIFT_BYTES = 1;
static const int V_WEIGHT_BYTES = 4;

// The heads' parameters on chip, once per invocation: the score scales (Q·K reads them every
// row) and, with head pruning, the head-importance weights. They share one m_axi port, so a
// head takes a cycle per array.
template <class Cfg>
void load_head_params(const mult_t *mult, const ap_uint<8> *shift, const ap_uint<17> *v_weight,
                      mult_t head_mult[Cfg::NUM_HEADS], ap_uint<8> head_shift[Cfg::NUM_HEADS],
                      ap_uint<17> head_weight[Cfg::NUM_HEADS]) {
    constexpr int ARRAYS = Cfg::HEAD_PRUNING ? 3 : 2;
heads:
    for (int h = 0; h < Cfg::NUM_HEADS; h++) {
#pragma HLS PIPELINE II = ARRAYS
        head_mult[h] = mult[h];
        head_shift[h] = shift[h];
        head_weight[h] = Cfg::HEAD_PRUNING ? v_weight[h] : ap_uint<17>(0);
    }
    SPATTEN_BYTES(P_PARAMS, Cfg::NUM_HEADS * (MULT_BYTES + SHIFT_BYTES +
                                              (Cfg::HEAD_PRUNING ? V_WEIGHT_BYTES : 0)));
    SPATTEN_CYCLES(E_STATE, loop_cycles(Cfg::NUM_HEADS, 1000 * ARRAYS, Cfg::FETCH_LATENCY));
}

// The token state row that `layer` (its KV head `kv_head` with per-KV-head selection) reads
// and writes: the cascade's one row, or the layer's (KV head's) own.
template <class Cfg>
int token_row(int layer, int kv_head) {
    return Cfg::TOKEN_STATE_ROWS > 1 ? layer * Cfg::TOKEN_STATE_GROUPS + kv_head : 0;
}

// Tokens a selection after a layer keeps of the `end` so far: max(1, floor(end * num / den)).
inline int kept_tokens(int end, int num, int den) {
    const long long kept = (long long)end * num / den;
    return kept > 1 ? (int)kept : 1;
}

// The scan: SCAN_LANES state entries a cycle compacted into the visible list (a copy for
// each process of the row pipeline that reads it: the row schedule and the K and V fetches);
// the layer's importance accumulator (by visible index) starts at zero.
template <class Cfg>
void visible_tokens(const pruning_state<Cfg> &st, const layer_args &a, int row,
                    visible_span &span, index_t pos[Cfg::MAX_CTX], index_t pos_k[Cfg::MAX_CTX],
                    index_t pos_v[Cfg::MAX_CTX], importance_t local_importance[Cfg::MAX_CTX]) {
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
            if (t < a.end && st.token_dropped_at[row][t] > a.layer) {
                pos[n] = t;
                pos_k[n] = t;
                pos_v[n] = t;
                local_importance[n] = 0;
                if (t < a.q_begin) before++;
                if (t < a.q_end) below_end++;
                n++;
            }
        }
    }
    span.nk = n;
    span.first_row = before;
    span.last_row = below_end;
    const int window = Cfg::TOKEN_OBSERVATION_WINDOW;
    span.observe_from = window > 0 ? a.end - window : 0;
    SPATTEN_CYCLES(E_SCAN, loop_cycles(blocks, 1000, 2));
}

// The second pass's job list: the deferred rows (the row schedule reads the job list, the
// requant decision writes the deferred list: two arrays, so that no process of the pipeline
// both reads and writes one).
template <class Cfg>
int take_deferred(const row_job deferred[Cfg::MAX_ROWS], int n, row_job jobs[Cfg::MAX_ROWS]) {
copy:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = Cfg::MAX_ROWS
        jobs[i] = deferred[i];
    }
    SPATTEN_CYCLES(E_SCAN, loop_cycles(n, 1000, 1));
    return n;
}

// One pass of the row pipeline over `n_jobs` rows: the first pass takes the query rows of the
// live heads in order (live[0 .. )), the second the job list (its rows have the full K words,
// so none is deferred again). One instance serves both passes (INLINE off).
template <class Cfg>
void run_pass(bool second, int n_jobs, const int live[Cfg::NUM_HEADS],
              const row_job jobs[Cfg::MAX_ROWS], const visible_span &span,
              const index_t pos[Cfg::MAX_CTX], const index_t pos_k[Cfg::MAX_CTX],
              const index_t pos_v[Cfg::MAX_CTX], const mult_t mult[Cfg::NUM_HEADS],
              const ap_uint<8> shift[Cfg::NUM_HEADS],
              importance_t local_importance[Cfg::MAX_CTX], ap_uint<64> abs_total[Cfg::NUM_HEADS],
              row_job deferred[Cfg::MAX_ROWS], int &n_deferred, const beat_t *q,
              beat_t *out SPATTEN_K_PARAMS SPATTEN_V_PARAMS) {
#pragma HLS INLINE off
    SPATTEN_REGION_BEGIN();
rows:
    for (int r = 0; r < n_jobs; r++) {
#pragma HLS DATAFLOW
#pragma HLS LOOP_TRIPCOUNT max = Cfg::MAX_ROWS
        // the loop body is in canonical form: declarations and process calls only; every
        // channel has one writer and one reader
        row_item at_fetch_k, at_fetch_q, at_qk, at_exp, at_norm, at_pv, at_write;
        hls::stream<code_row<Cfg> > k_msb[Cfg::K_LANES], k_lsb[Cfg::K_LANES];
        hls::stream<keyed_row<Cfg> > v_rows[Cfg::V_LANES];
        // the fetchers' FIFOs, one per lane: a few rows ahead of their consumers (which take
        // a step's rows as they arrive), beside the m_axi adapters' own read buffers
#pragma HLS STREAM variable = k_msb depth = Cfg::FETCH_FIFO_DEPTH
#pragma HLS STREAM variable = k_lsb depth = Cfg::FETCH_FIFO_DEPTH
#pragma HLS STREAM variable = v_rows depth = Cfg::FETCH_FIFO_DEPTH
        code_t q_row[Cfg::HEAD_DIM];
        score_t s[Cfg::MAX_CTX];
        exp_t e[Cfg::MAX_CTX];
        prob_t p[Cfg::MAX_CTX];
        prob_t p_engine[Cfg::VALUE_TOPK_ENGINES][Cfg::MAX_CTX];
        // the row buffers between the processes (ping-pong), SOFTMAX_LANES entries at once;
        // each threshold engine's copy of the probabilities is a channel of its own
#pragma HLS ARRAY_PARTITION variable = q_row complete
#pragma HLS ARRAY_PARTITION variable = s cyclic factor = Cfg::SOFTMAX_LANES
#pragma HLS ARRAY_PARTITION variable = e cyclic factor = Cfg::SOFTMAX_LANES
#pragma HLS ARRAY_PARTITION variable = p cyclic factor = Cfg::SOFTMAX_LANES
#pragma HLS ARRAY_PARTITION variable = p_engine complete dim = 1
#pragma HLS ARRAY_PARTITION variable = p_engine cyclic factor = Cfg::SOFTMAX_LANES dim = 2
        // the links of the threshold engines' chain: the row and its threshold before engine
        // `next` (at_engine_0: from the normalization; the last: to the select pass)
        row_item at_engine_0;
        value_threshold threshold_0;
#define SPATTEN_LINK(engine, next) \
    row_item at_engine_##next;     \
    value_threshold threshold_##next;
        SPATTEN_VALUE_TOPK_ENGINES(SPATTEN_LINK)
#undef SPATTEN_LINK
        score_t top;
        sum_t total;
        deferral note;
        v_request<Cfg> want;
        row_selection<Cfg> sel;
        // the compacted lists take SOFTMAX_LANES entries a cycle
#pragma HLS ARRAY_PARTITION variable = want.list cyclic factor = Cfg::SOFTMAX_LANES
#pragma HLS ARRAY_PARTITION variable = sel.kept_index cyclic factor = Cfg::SOFTMAX_LANES
#pragma HLS ARRAY_PARTITION variable = sel.kept_p cyclic factor = Cfg::SOFTMAX_LANES
        code_t out_row[Cfg::HEAD_DIM];
        issue_row<Cfg>(second, r, live, jobs, span, pos, at_fetch_k, at_fetch_q);
        stage_fetch_k<Cfg>(at_fetch_k, pos_k, k_msb, k_lsb SPATTEN_K_ARGS);
        stage_fetch_q<Cfg>(q, at_fetch_q, q_row, at_qk);
        stage_qk<Cfg>(q_row, at_qk, k_msb, k_lsb, mult, shift, s, top, at_exp);
        stage_exp<Cfg>(s, top, at_exp, e, total, at_norm);
        stage_norm<Cfg>(e, total, at_norm, p, p_engine, at_engine_0, threshold_0, note);
        note_deferred<Cfg>(r, note, deferred, n_deferred);
#define SPATTEN_THRESHOLD(engine, next)                                                      \
    stage_threshold<Cfg>(p_engine[engine], at_engine_##engine, threshold_##engine, engine,  \
                         at_engine_##next, threshold_##next);
        SPATTEN_VALUE_TOPK_ENGINES(SPATTEN_THRESHOLD)
#undef SPATTEN_THRESHOLD
        stage_select<Cfg>(p, SPATTEN_CAT(at_engine_, SPATTEN_VALUE_TOPK_LAST),
                          SPATTEN_CAT(threshold_, SPATTEN_VALUE_TOPK_LAST), local_importance,
                          want, sel, at_pv);
        stage_fetch_v<Cfg>(want, pos_v, v_rows SPATTEN_V_ARGS);
        stage_pv<Cfg>(sel, at_pv, v_rows, out_row, abs_total, at_write);
        stage_write<Cfg>(out_row, at_write, out);
#ifndef __SYNTHESIS__
        if (r == 0) SPATTEN_REGION_ITEM_DONE();
#endif
    }
    SPATTEN_REGION_END(E_ROWS);
}

// After the rows: token importance folds into the state in position order (the scan's
// expansion, SCAN_LANES a cycle), gathering the candidates of the token top-k on the way. The
// "current" policy's scores are this invocation's alone (written, not added); with
// TOKEN_DECAY_SHIFT s > 0 a per-layer score first loses score >> s (a shift and a subtract
// per lane, inside the same pipelined loop).
template <class Cfg>
void fold_importance(pruning_state<Cfg> &st, const layer_args &a, int row,
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
            if (t < a.end && st.token_dropped_at[row][t] > a.layer) {
                const importance_t old = st.token_importance[row][t];
                const importance_t kept =
                    Cfg::TOKEN_DECAY_SHIFT > 0 ? importance_t(old - (old >> Cfg::TOKEN_DECAY_SHIFT))
                                               : old;
                st.token_importance[row][t] =
                    local_importance[n] + (Cfg::TOKEN_SCORES_FRESH ? importance_t(0) : kept);
                imp[n] = st.token_importance[row][t];
                protect[n] =
                    t < Cfg::KEEP_FIRST || t >= a.end - Cfg::KEEP_RECENT || t == a.step_query;
                n++;
            }
        }
    }
    SPATTEN_CYCLES(E_IMPORTANCE, loop_cycles(blocks, 1000, 2));
}

// The token selection after this layer: the top-k of the token importance, or (the window
// policy) the most recent tokens; the drop pass walks the state in position order like the
// scan.
template <class Cfg>
void select_tokens(pruning_state<Cfg> &st, const visible_span &span, const layer_args &a,
                   int row, const importance_t imp[Cfg::MAX_CTX],
                   const bool protect[Cfg::MAX_CTX], int keep) {
    bool survivors[Cfg::MAX_CTX];
    int cycles = 0;
    if (Cfg::TOKEN_BY_RECENCY) {
        select_recent<Cfg::MAX_CTX, Cfg::TOPK_PARALLELISM>(protect, span.nk, keep, survivors,
                                                           cycles);
    } else {
        select_survivors<Cfg::MAX_CTX, Cfg::TOPK_PARALLELISM>(imp, protect, span.nk, keep,
                                                              survivors, cycles);
    }
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
            if (t < a.end && st.token_dropped_at[row][t] > a.layer) {
                if (!survivors[n]) st.token_dropped_at[row][t] = a.layer;
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
                  const ap_uint<17> head_weight[Cfg::NUM_HEADS], int keep, int layer) {
    importance_t imp[Cfg::NUM_HEADS];
    bool protect[Cfg::NUM_HEADS];
    bool survivors[Cfg::NUM_HEADS];
    int heads[Cfg::NUM_HEADS];
    int n = 0;
gather:
    for (int h = 0; h < Cfg::NUM_HEADS; h++) {
#pragma HLS PIPELINE II = 1
        if (alive[h]) {
            st.head_importance[h] += abs_total[h] * head_weight[h];
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
                     int token_keep_num, int token_keep_den, int head_keep, int &requants) {
    static pruning_state<Cfg> st;
    static index_t pos[Cfg::MAX_CTX], pos_k[Cfg::MAX_CTX], pos_v[Cfg::MAX_CTX];
    static importance_t local_importance[Cfg::MAX_CTX];
    static row_job jobs[Cfg::MAX_ROWS], deferred[Cfg::MAX_ROWS];
    // the K fetch reads K_LANES consecutive positions a cycle (cyclic banks); the V fetch
    // reads V_LANES positions of its request at any keys, banked alike (Vitis schedules
    // such reads for the worst case: docs/hls.md, "What Vitis has not confirmed")
#pragma HLS ARRAY_PARTITION variable = pos_k cyclic factor = Cfg::K_LANES
#pragma HLS ARRAY_PARTITION variable = pos_v cyclic factor = Cfg::V_LANES
#pragma HLS ARRAY_PARTITION variable = local_importance cyclic factor = Cfg::SOFTMAX_LANES
#pragma HLS ARRAY_PARTITION variable = st.token_dropped_at cyclic factor = Cfg::SCAN_LANES dim = 2
#pragma HLS ARRAY_PARTITION variable = st.token_importance cyclic factor = Cfg::SCAN_LANES dim = 2
    if (a.control & LOAD_STATE) {
        move_state<Cfg>(st, token_dropped_at, token_importance, head_dropped_at,
                        head_importance, true);
    }
    mult_t head_mult[Cfg::NUM_HEADS];
    ap_uint<8> head_shift[Cfg::NUM_HEADS];
    ap_uint<17> head_weight[Cfg::NUM_HEADS];
    load_head_params<Cfg>(mult, shift, v_weight, head_mult, head_shift, head_weight);
    bool alive[Cfg::NUM_HEADS];
    ap_uint<64> abs_total[Cfg::NUM_HEADS];
heads_alive:
    for (int h = 0; h < Cfg::NUM_HEADS; h++) {
#pragma HLS UNROLL
        alive[h] = st.head_dropped_at[h] > a.layer;
        abs_total[h] = 0;
    }
    const int token_keep = kept_tokens(a.end, token_keep_num, token_keep_den);
    requants = 0;
    // With per-KV-head selection each KV head's query heads run over its own tokens, one KV
    // head after another (scan, passes, fold and selection each); otherwise every head runs
    // over the layer's tokens at once.
    constexpr int GROUP_HEADS = Cfg::TOKEN_STATE_GROUPS > 1 ? Cfg::GROUP : Cfg::NUM_HEADS;
kv_groups:
    for (int g = 0; g < Cfg::TOKEN_STATE_GROUPS; g++) {
#pragma HLS LOOP_TRIPCOUNT max = Cfg::TOKEN_STATE_GROUPS
        const int row = token_row<Cfg>(a.layer, g);
        visible_span span;
        visible_tokens<Cfg>(st, a, row, span, pos, pos_k, pos_v, local_importance);
        int live[Cfg::NUM_HEADS];
        int n_live = 0;
    group_heads:
        for (int i = 0; i < GROUP_HEADS; i++) {
#pragma HLS UNROLL
            const int h = g * GROUP_HEADS + i;
            if (alive[h]) live[n_live++] = h;
        }
        const int rows = span.last_row > span.first_row ? span.last_row - span.first_row : 0;
        int n_jobs = n_live * rows;
        int n_deferred = 0;
    passes:
        for (int pass = 0; pass < 2 && n_jobs > 0; pass++) {
#pragma HLS LOOP_TRIPCOUNT max = 2
            run_pass<Cfg>(pass == 1, n_jobs, live, jobs, span, pos, pos_k, pos_v, head_mult,
                          head_shift, local_importance, abs_total, deferred, n_deferred, q,
                          out SPATTEN_K_ARGS SPATTEN_V_ARGS);
            if (pass == 0) {
                requants += n_deferred;
                n_jobs = n_deferred > 0 ? take_deferred<Cfg>(deferred, n_deferred, jobs) : 0;
            }
        }
        importance_t imp[Cfg::MAX_CTX];
        bool protect[Cfg::MAX_CTX];
        if (Cfg::TOKEN_PRUNING) fold_importance<Cfg>(st, a, row, local_importance, imp, protect);
        if (Cfg::TOKEN_PRUNING && token_keep_num < token_keep_den && span.nk > token_keep) {
            select_tokens<Cfg>(st, span, a, row, imp, protect, token_keep);
        }
    }
    if (Cfg::HEAD_PRUNING) {
        select_heads<Cfg>(st, alive, abs_total, head_weight, head_keep, a.layer);
    }
    if (a.control & STORE_STATE) {
        move_state<Cfg>(st, token_dropped_at, token_importance, head_dropped_at,
                        head_importance, false);
    }
}

}  // namespace spatten

#endif
