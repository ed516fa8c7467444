// Host side of the design (testbench and ctypes harness, not synthesized): converts raw
// integer arrays to the design's types and runs the schedule of invocations that the
// simulator runs (compiler/sim/interpreter.py): summarization is one step over positions
// [0, SEQ_LEN); generation is one step per position p in [SEQ_LEN, MAX_CTX), each layer after
// layer, with the pruning state carried in the state arrays.
#ifndef SPATTEN_HOST_H
#define SPATTEN_HOST_H

#include <cstdint>

#include "host_params.h"
#include "spatten_top.h"

// Called after every invocation with (done, total) when set (the testbench prints progress).
static void (*spatten_progress)(int done, int total) = nullptr;

extern "C" int spatten_run_model(const int16_t *q, const int16_t *k_msb, const int16_t *k_lsb,
                                 const int16_t *v, const int64_t *mult, const int64_t *shift,
                                 const int64_t *v_weight, int16_t *out, int64_t *state,
                                 int64_t *requants) {
    typedef model_cfg C;
    const long layer_q = (long)C::NUM_HEADS * C::MAX_CTX * C::HEAD_DIM;
    const long layer_kv = (long)C::NUM_KV_HEADS * C::MAX_CTX * C::HEAD_DIM;
    const long total_q = layer_q * C::NUM_LAYERS;
    const long total_kv = layer_kv * C::NUM_LAYERS;
    spatten::code_t *dq = new spatten::code_t[total_q];
    spatten::code_t *dout = new spatten::code_t[total_q];
    spatten::code_t *dk = new spatten::code_t[total_kv];
    spatten::lsb_t *dl = new spatten::lsb_t[total_kv];
    spatten::code_t *dv = new spatten::code_t[total_kv];
    for (long i = 0; i < total_q; i++) {
        dq[i] = q[i];
        dout[i] = 0;
    }
    for (long i = 0; i < total_kv; i++) {
        dk[i] = k_msb[i];
        dl[i] = (uint16_t)k_lsb[i];
        dv[i] = v[i];
    }
    spatten::index_t token_dropped[C::MAX_CTX];
    spatten::importance_t token_imp[C::MAX_CTX];
    spatten::index_t head_dropped[C::NUM_HEADS];
    spatten::importance_t head_imp[C::NUM_HEADS];
    for (int t = 0; t < C::MAX_CTX; t++) {
        token_dropped[t] = C::NUM_LAYERS;
        token_imp[t] = 0;
    }
    for (int h = 0; h < C::NUM_HEADS; h++) {
        head_dropped[h] = C::NUM_LAYERS;
        head_imp[h] = 0;
    }
    spatten::mult_t m[C::NUM_LAYERS][C::NUM_HEADS];
    ap_uint<8> sh[C::NUM_LAYERS][C::NUM_HEADS];
    ap_uint<17> w[C::NUM_LAYERS][C::NUM_HEADS];
    for (int l = 0; l < C::NUM_LAYERS; l++) {
        for (int h = 0; h < C::NUM_HEADS; h++) {
            m[l][h] = mult[l * C::NUM_HEADS + h];
            sh[l][h] = shift[l * C::NUM_HEADS + h];
            w[l][h] = v_weight[l * C::NUM_HEADS + h];
        }
    }
    const bool generating = GENERATION;
    const int first = generating ? SEQ_LEN : 0;
    const int steps = generating ? C::MAX_CTX - SEQ_LEN : 1;
    for (int s = 0; s < steps; s++) {
        const int q_begin = first + s;
        const int q_end = generating ? q_begin + 1 : SEQ_LEN;
        const int end = generating ? q_begin + 1 : SEQ_LEN;
        const int step_query = generating ? q_begin : -1;
        for (int l = 0; l < C::NUM_LAYERS; l++) {
            int rq = 0;
            int cycles = 0;
            spatten_top(dq + l * layer_q, dk + l * layer_kv, dl + l * layer_kv, dv + l * layer_kv,
                        dout + l * layer_q, token_dropped, token_imp, head_dropped, head_imp,
                        m[l], sh[l], w[l], l, q_begin, q_end, end, step_query, &rq, &cycles);
            requants[l] += rq;
            if (spatten_progress) spatten_progress(s * C::NUM_LAYERS + l + 1, steps * C::NUM_LAYERS);
        }
    }
    for (long i = 0; i < total_q; i++) out[i] = (int16_t)dout[i].to_int();
    long at = 0;
    for (int t = 0; t < C::MAX_CTX; t++) state[at++] = token_dropped[t].to_int64();
    for (int t = 0; t < C::MAX_CTX; t++) state[at++] = (int64_t)token_imp[t].to_uint64();
    for (int h = 0; h < C::NUM_HEADS; h++) state[at++] = head_dropped[h].to_int64();
    for (int h = 0; h < C::NUM_HEADS; h++) state[at++] = (int64_t)head_imp[h].to_uint64();
    delete[] dq;
    delete[] dout;
    delete[] dk;
    delete[] dl;
    delete[] dv;
    return 0;
}

#endif
