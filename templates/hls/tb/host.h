// Host side of the design (testbench and ctypes harness, not synthesized): packs the raw code
// arrays into the DRAM images the design reads (engines/fetch.h, engines/pack.h), runs the
// schedule of invocations that the simulator runs (compiler/sim/simulation.py run_steps) over
// the golden run's extent (RunExtent: first layer, layers, seq_len, steps; the whole stage or a
// reduced co-simulation run of the same design): summarization is one step over positions
// [0, seq_len); generation is one step per position p in [seq_len, seq_len + steps), each the
// extent's layers one after another. The first invocation loads the pruning state and the last
// stores it. Every K lane gets the same K image, every V lane the V image.
#ifndef SPATTEN_HOST_H
#define SPATTEN_HOST_H

#include <cstdint>
#include <vector>

#include "host_params.h"
#include "spatten_top.h"

// Called after every invocation with (done, total) when set (the testbench prints progress).
static void (*spatten_progress)(int done, int total) = nullptr;

namespace spatten_host {

typedef model_cfg C;
using spatten::beat_t;
using spatten::code_t;

// rows x HEAD_DIM int16 codes into rows x BEATS beats, BITS bits a code.
template <int BITS, int BEATS>
void pack_rows(const int16_t *codes, long rows, beat_t *image) {
    for (long r = 0; r < rows; r++) {
        code_t row[C::HEAD_DIM];
        for (int d = 0; d < C::HEAD_DIM; d++) row[d] = codes[r * C::HEAD_DIM + d];
        spatten::pack_row<C::HEAD_DIM, BITS, BEATS>(row, image + r * BEATS);
    }
}

// The reverse, sign-extending (output rows).
template <int BITS, int BEATS>
void unpack_rows(const beat_t *image, long rows, int16_t *codes) {
    for (long r = 0; r < rows; r++) {
        code_t row[C::HEAD_DIM];
        spatten::unpack_row<C::HEAD_DIM, BITS, BEATS, true>(image + r * BEATS, row);
        for (int d = 0; d < C::HEAD_DIM; d++) codes[r * C::HEAD_DIM + d] = (int16_t)row[d];
    }
}

static const long Q_ROWS = (long)C::NUM_HEADS * C::MAX_CTX;     // rows of a layer's Q / out
static const long KV_ROWS = (long)C::NUM_KV_HEADS * C::MAX_CTX;  // rows of a layer's K / V
static const long Q_IMAGE = Q_ROWS * C::Q_BEATS;
static const long K_IMAGE = KV_ROWS * (C::K_MSB_BEATS + C::K_LSB_BEATS);  // MSB, then LSB
static const long V_IMAGE = KV_ROWS * C::V_BEATS;
static const long OUT_IMAGE = Q_ROWS * C::OUT_BEATS;

}  // namespace spatten_host

// Whether `run` (first layer, layers, seq_len, steps) is an extent of this design's stage.
static bool spatten_run_fits(const int64_t *run) {
    typedef model_cfg C;
    const int64_t first = run[0], layers = run[1], seq_len = run[2], steps = run[3];
    const int64_t most_steps = GENERATION ? C::MAX_CTX - seq_len : 1;
    return first >= 0 && first < C::NUM_LAYERS && layers >= 1 &&
           layers <= C::NUM_LAYERS - first && seq_len >= 1 && seq_len <= SEQ_LEN && steps >= 1 &&
           steps <= most_steps;
}

// Every invocation of the schedule over the extent `run` (4 int64; returns 1, running
// nothing, when it does not fit the design). Inputs: int16 codes q [L][H][C][D], k_msb /
// k_lsb / v
// [L][KV][C][D]; int64 mult, shift, v_weight [L][H]. Outputs: out like q, the final state
// (token_dropped_at, token_importance, head_dropped_at, head_importance), requants [L], and
// `measured` (spatten::N_MEASURED entries: bytes per port, engine cycles, total; csim.h).
extern "C" int spatten_run_model(const int64_t *run, const int16_t *q, const int16_t *k_msb,
                                 const int16_t *k_lsb,
                                 const int16_t *v, const int64_t *mult, const int64_t *shift,
                                 const int64_t *v_weight, int16_t *out, int64_t *state,
                                 int64_t *requants, int64_t *measured) {
    using namespace spatten_host;
    if (!spatten_run_fits(run)) return 1;
    const int first_layer = (int)run[0], layers = (int)run[1], seq_len = (int)run[2];
    const int steps = (int)run[3];
    constexpr int LSB_BITS = C::K_LSB_BITS > 0 ? C::K_LSB_BITS : 1;
    constexpr int LSB_BEATS = C::K_LSB_BEATS > 0 ? C::K_LSB_BEATS : 1;
    std::vector<beat_t> dq(Q_IMAGE * C::NUM_LAYERS), dk(K_IMAGE * C::NUM_LAYERS);
    std::vector<beat_t> dv(V_IMAGE * C::NUM_LAYERS), dout(OUT_IMAGE * C::NUM_LAYERS, beat_t(0));
    for (int l = 0; l < C::NUM_LAYERS; l++) {
        pack_rows<C::Q_BITS, C::Q_BEATS>(q + l * Q_ROWS * C::HEAD_DIM, Q_ROWS,
                                         &dq[l * Q_IMAGE]);
        pack_rows<C::K_MSB_BITS, C::K_MSB_BEATS>(k_msb + l * KV_ROWS * C::HEAD_DIM, KV_ROWS,
                                                 &dk[l * K_IMAGE]);
        if (C::K_LSB_BEATS > 0) {
            pack_rows<LSB_BITS, LSB_BEATS>(k_lsb + l * KV_ROWS * C::HEAD_DIM, KV_ROWS,
                                           &dk[l * K_IMAGE + KV_ROWS * C::K_MSB_BEATS]);
        }
        pack_rows<C::V_BITS, C::V_BEATS>(v + l * KV_ROWS * C::HEAD_DIM, KV_ROWS,
                                         &dv[l * V_IMAGE]);
    }
    static spatten::index_t token_dropped[C::TOKEN_STATE];
    static spatten::importance_t token_imp[C::TOKEN_STATE];
    spatten::index_t head_dropped[C::NUM_HEADS];
    spatten::importance_t head_imp[C::NUM_HEADS];
    for (int t = 0; t < C::TOKEN_STATE; t++) {
        token_dropped[t] = C::NUM_LAYERS;
        token_imp[t] = 0;
    }
    for (int h = 0; h < C::NUM_HEADS; h++) {
        head_dropped[h] = C::NUM_LAYERS;
        head_imp[h] = 0;
    }
    static spatten::mult_t m[C::NUM_LAYERS][C::NUM_HEADS];
    static ap_uint<8> sh[C::NUM_LAYERS][C::NUM_HEADS];
    static ap_uint<17> w[C::NUM_LAYERS][C::NUM_HEADS];
    for (int l = 0; l < C::NUM_LAYERS; l++) {
        for (int h = 0; h < C::NUM_HEADS; h++) {
            m[l][h] = mult[l * C::NUM_HEADS + h];
            sh[l][h] = shift[l * C::NUM_HEADS + h];
            w[l][h] = v_weight[l * C::NUM_HEADS + h];
        }
    }
    spatten::csim_reset();
    const bool generating = GENERATION;
    const int first = generating ? seq_len : 0;
    const int last_layer = first_layer + layers - 1;
    for (int s = 0; s < steps; s++) {
        const int q_begin = first + s;
        const int q_end = generating ? q_begin + 1 : seq_len;
        const int end = generating ? q_begin + 1 : seq_len;
        const int step_query = generating ? q_begin : -1;
        for (int l = first_layer; l <= last_layer; l++) {
            const bool first_call = s == 0 && l == first_layer;
            const bool last_call = s == steps - 1 && l == last_layer;
            const int control = (first_call ? spatten::LOAD_STATE : 0) |
                                (last_call ? spatten::STORE_STATE : 0);
            const beat_t *k_image = &dk[l * K_IMAGE];
            const beat_t *v_image = &dv[l * V_IMAGE];
#define SPATTEN_HOST_K(i) , k_image
#define SPATTEN_HOST_V(i) , v_image
            int rq = 0;
            spatten_top(&dq[l * Q_IMAGE] SPATTEN_K_LANES(SPATTEN_HOST_K)
                            SPATTEN_V_LANES(SPATTEN_HOST_V),
                        &dout[l * OUT_IMAGE], token_dropped, token_imp, head_dropped, head_imp,
                        m[l], sh[l], w[l], l, q_begin, q_end, end, step_query, control, &rq);
#undef SPATTEN_HOST_K
#undef SPATTEN_HOST_V
            requants[l] += rq;
            if (spatten_progress) spatten_progress(s * layers + l - first_layer + 1, steps * layers);
        }
    }
    for (int l = 0; l < C::NUM_LAYERS; l++) {
        unpack_rows<C::V_BITS, C::OUT_BEATS>(&dout[l * OUT_IMAGE], Q_ROWS,
                                             out + l * Q_ROWS * C::HEAD_DIM);
    }
    long at = 0;
    for (int t = 0; t < C::TOKEN_STATE; t++) state[at++] = token_dropped[t].to_int64();
    for (int t = 0; t < C::TOKEN_STATE; t++) state[at++] = (int64_t)token_imp[t].to_uint64();
    for (int h = 0; h < C::NUM_HEADS; h++) state[at++] = head_dropped[h].to_int64();
    for (int h = 0; h < C::NUM_HEADS; h++) state[at++] = (int64_t)head_imp[h].to_uint64();
    long long counters[spatten::N_MEASURED];
    spatten::csim_export(counters);
    for (int i = 0; i < spatten::N_MEASURED; i++) measured[i] = counters[i];
    return 0;
}

#endif
