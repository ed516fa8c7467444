// The fetcher: packed code rows from DRAM, on demand, through parallel read lanes.
//
// K and V rows are read by Cfg::K_LANES / Cfg::V_LANES lanes, one m_axi port each (an HBM
// pseudo-channel); lane l takes the rows l, l + LANES, ... of a request, so LANES rows move at
// once, a beat per lane per cycle (Cfg::BEAT_MILLICYCLES / 1000 cycles a beat where the
// channel is slower than the port). Every lane port addresses the whole image (the host hands
// all of them the same buffer). Q rows and output rows use one port each. Rows are unpacked
// by the bitwidth converter (pack.h); the K MSB plane is widened on chip (msb << K_LSB_BITS).
//
// K and V rows leave the fetcher through one stream (hls::stream, a FIFO) per lane: the fetch
// processes of the row pipeline (rows.h) run ahead of their consumers, which
// keep the rows they reuse in buffers of their own. A fetch loop moves its beats at
// BEAT_MILLICYCLES / 1000 cycles each; the latency to the first beat (FETCH_LATENCY) is paid
// once per row pipeline and port, because a fetch process issues its next request while the
// previous burst streams (outstanding AXI reads).
//
// Images (layer-local, `beat_t`): Q [NUM_HEADS][MAX_CTX][Q_BEATS]; K [MSB plane
// [NUM_KV_HEADS][MAX_CTX][K_MSB_BEATS], then LSB plane [..][..][K_LSB_BEATS]]; V
// [NUM_KV_HEADS][MAX_CTX][V_BEATS]; out like Q with OUT_BEATS.
//
// The lane ports are listed by the generated X-macros SPATTEN_K_LANES / SPATTEN_V_LANES of
// params.h: SPATTEN_K_PARAMS declares them as parameters, SPATTEN_K_ARGS passes them on.
#ifndef SPATTEN_ENGINES_FETCH_H
#define SPATTEN_ENGINES_FETCH_H

#include <hls_stream.h>

#include "csim.h"
#include "pack.h"
#include "spatten_types.h"

#define SPATTEN_K_PARAM(i) , const ::spatten::beat_t *k##i
#define SPATTEN_K_ARG(i) , k##i
#define SPATTEN_V_PARAM(i) , const ::spatten::beat_t *v##i
#define SPATTEN_V_ARG(i) , v##i
#define SPATTEN_K_PARAMS SPATTEN_K_LANES(SPATTEN_K_PARAM)
#define SPATTEN_K_ARGS SPATTEN_K_LANES(SPATTEN_K_ARG)
#define SPATTEN_V_PARAMS SPATTEN_V_LANES(SPATTEN_V_PARAM)
#define SPATTEN_V_ARGS SPATTEN_V_LANES(SPATTEN_V_ARG)

namespace spatten {

// A fetched row, unpacked: the element of a K fetch lane's stream (one stream per lane, so
// that an element is one row wide).
template <class Cfg>
struct code_row {
    code_t code[Cfg::HEAD_DIM];
};

// ... of a V fetch lane's stream: the row and its visible index (where it goes on chip).
template <class Cfg>
struct keyed_row {
    code_t code[Cfg::HEAD_DIM];
    index_t key;
};

// One lane's share of a K request: visible key first + j, for j = step * K_LANES + lane, from
// the MSB plane and, for full words, the LSB plane.
#define SPATTEN_K_LANE(i)                                                                    \
    {                                                                                        \
        const int j = step * Cfg::K_LANES + (i);                                             \
        if ((i) < Cfg::K_LANES && j < count) {                                               \
            const long row = (long)kv * Cfg::MAX_CTX + (int)pos[first + j];                  \
            beat_t beats[MSB_BEATS];                                                         \
            for (int b = 0; b < MSB_BEATS; b++) beats[b] = k##i[row * MSB_BEATS + b];        \
            code_t codes[Cfg::HEAD_DIM];                                                     \
            unpack_row<Cfg::HEAD_DIM, Cfg::K_MSB_BITS, MSB_BEATS, true>(beats, codes);       \
            code_row<Cfg> hi;                                                                \
            for (int d = 0; d < Cfg::HEAD_DIM; d++) hi.code[d] = codes[d] * WIDEN;           \
            msb[i].write(hi);                                                                \
            if (FULL) {                                                                      \
                beat_t low[LSB_BEATS];                                                       \
                const long at = lsb_base + row * LSB_BEATS;                                  \
                for (int b = 0; b < LSB_BEATS; b++) low[b] = k##i[at + b];                   \
                code_row<Cfg> lo;                                                            \
                unpack_row<Cfg::HEAD_DIM, LSB_BITS, LSB_BEATS, false>(low, lo.code);        \
                lsb[i].write(lo);                                                            \
            }                                                                                \
        }                                                                                    \
    }

// K rows of the visible keys first .. first + count - 1, K_LANES a step, lane l's rows into
// its stream msb[l] and, for full words (FULL), their LSB plane into lsb[l] in the same step,
// so that Q·K takes both a step at a time. `process`: the dataflow process the fetch runs in.
template <class Cfg, bool FULL>
void fetch_k_rows(int kv, const index_t pos[Cfg::MAX_CTX], int first, int count,
                  hls::stream<code_row<Cfg> > msb[Cfg::K_LANES],
                  hls::stream<code_row<Cfg> > lsb[Cfg::K_LANES],
                  engine_id process SPATTEN_K_PARAMS) {
    constexpr int MSB_BEATS = Cfg::K_MSB_BEATS;
    constexpr int LSB_BEATS = Cfg::K_LSB_BEATS > 0 ? Cfg::K_LSB_BEATS : 1;
    constexpr int LSB_BITS = Cfg::K_LSB_BITS > 0 ? Cfg::K_LSB_BITS : 1;
    constexpr int WIDEN = 1 << Cfg::K_LSB_BITS;
    const long lsb_base = (long)Cfg::NUM_KV_HEADS * Cfg::MAX_CTX * Cfg::K_MSB_BEATS;
    const int steps = (count + Cfg::K_LANES - 1) / Cfg::K_LANES;
steps:
    for (int step = 0; step < steps; step++) {
#pragma HLS PIPELINE II = MSB_BEATS + (FULL ? LSB_BEATS : 0)
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::TILE + Cfg::K_LANES - 1) / Cfg::K_LANES
        SPATTEN_K_LANES(SPATTEN_K_LANE)
    }
    SPATTEN_FETCH(E_FETCH_K, process, P_K_MSB, (long long)count * MSB_BEATS,
                  (long long)steps * MSB_BEATS, Cfg::BEAT_MILLICYCLES, Cfg::FETCH_LATENCY);
    if (FULL) {
        SPATTEN_FETCH(E_FETCH_K, process, P_K_LSB, (long long)count * LSB_BEATS,
                      (long long)steps * LSB_BEATS, Cfg::BEAT_MILLICYCLES, Cfg::FETCH_LATENCY);
    }
}

// One lane's share of a V request: entry lo + j of the list, j = step * V_LANES + lane.
#define SPATTEN_V_LANE(i)                                                                    \
    {                                                                                        \
        const int j = step * Cfg::V_LANES + (i);                                             \
        if ((i) < Cfg::V_LANES && j < count) {                                               \
            const int key = (int)list[lo + j];                                               \
            const long row = ((long)kv * Cfg::MAX_CTX + (int)pos[key]) * Cfg::V_BEATS;       \
            beat_t beats[Cfg::V_BEATS];                                                      \
            for (int b = 0; b < Cfg::V_BEATS; b++) beats[b] = v##i[row + b];                 \
            keyed_row<Cfg> fetched;                                                          \
            unpack_row<Cfg::HEAD_DIM, Cfg::V_BITS, Cfg::V_BEATS, true>(beats, fetched.code); \
            fetched.key = key;                                                               \
            out[i].write(fetched);                                                           \
        }                                                                                    \
    }

// V rows of the visible keys list[lo .. lo + count), V_LANES a step, lane l's rows (each with
// its key) into its stream out[l].
template <class Cfg>
void fetch_v_rows(int kv, const index_t pos[Cfg::MAX_CTX], const index_t list[Cfg::MAX_CTX],
                  int lo, int count, hls::stream<keyed_row<Cfg> > out[Cfg::V_LANES]
                  SPATTEN_V_PARAMS) {
    const int steps = (count + Cfg::V_LANES - 1) / Cfg::V_LANES;
steps:
    for (int step = 0; step < steps; step++) {
#pragma HLS PIPELINE II = Cfg::V_BEATS
#pragma HLS LOOP_TRIPCOUNT max = (Cfg::TILE + Cfg::V_LANES - 1) / Cfg::V_LANES
        SPATTEN_V_LANES(SPATTEN_V_LANE)
    }
    SPATTEN_FETCH(E_FETCH_V, E_FETCH_V, P_V, (long long)count * Cfg::V_BEATS,
                  (long long)steps * Cfg::V_BEATS, Cfg::BEAT_MILLICYCLES, Cfg::FETCH_LATENCY);
}

// The query row of head h at position t (its own process).
template <class Cfg>
void fetch_q_row(const beat_t *q, int h, int t, code_t q_row[Cfg::HEAD_DIM]) {
    beat_t beats[Cfg::Q_BEATS];
    const long row = ((long)h * Cfg::MAX_CTX + t) * Cfg::Q_BEATS;
beats:
    for (int b = 0; b < Cfg::Q_BEATS; b++) {
#pragma HLS PIPELINE II = 1
        beats[b] = q[row + b];
    }
    unpack_row<Cfg::HEAD_DIM, Cfg::Q_BITS, Cfg::Q_BEATS, true>(beats, q_row);
    SPATTEN_FETCH(E_FETCH_Q, E_FETCH_Q, P_Q, Cfg::Q_BEATS, Cfg::Q_BEATS, Cfg::BEAT_MILLICYCLES,
                  Cfg::FETCH_LATENCY);
}

// The output row of head h at position t, packed at V's width (its own process).
template <class Cfg>
void write_out_row(beat_t *out, int h, int t, const code_t out_row[Cfg::HEAD_DIM]) {
    beat_t beats[Cfg::OUT_BEATS];
    pack_row<Cfg::HEAD_DIM, Cfg::V_BITS, Cfg::OUT_BEATS>(out_row, beats);
    const long row = ((long)h * Cfg::MAX_CTX + t) * Cfg::OUT_BEATS;
beats:
    for (int b = 0; b < Cfg::OUT_BEATS; b++) {
#pragma HLS PIPELINE II = 1
        out[row + b] = beats[b];
    }
    SPATTEN_BYTES(P_OUT, Cfg::OUT_BEATS * 32);
    SPATTEN_CYCLES(E_WRITEBACK, loop_cycles(Cfg::OUT_BEATS, Cfg::BEAT_MILLICYCLES, 1));
}

}  // namespace spatten

#endif
