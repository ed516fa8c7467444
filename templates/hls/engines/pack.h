// Codes in DRAM: each row of D codes is packed LSB-first at its plane's width into whole
// 256-bit beats (code i holds bits [i * BITS, (i + 1) * BITS) of the row), so a fetch moves
// exactly ceil(D * BITS / 256) beats; the host packs them (tb/host.h). A row never shares a
// beat with another row: any subset of rows is fetched without waste beyond its last beat.
#ifndef SPATTEN_ENGINES_PACK_H
#define SPATTEN_ENGINES_PACK_H

#include "spatten_types.h"

namespace spatten {

// The bitwidth converter: one packed row to D codes (signed planes sign-extend).
template <int D, int BITS, int BEATS, bool SIGNED>
void unpack_row(const beat_t beats[BEATS], code_t out[D]) {
#pragma HLS INLINE
    ap_uint<BEATS * 256> row;
    for (int b = 0; b < BEATS; b++) {
#pragma HLS UNROLL
        row(b * 256 + 255, b * 256) = beats[b];
    }
    for (int i = 0; i < D; i++) {
#pragma HLS UNROLL
        const ap_uint<BITS> raw = row(i * BITS + BITS - 1, i * BITS);
        if (SIGNED) {
            out[i] = code_t(ap_int<BITS>(raw));
        } else {
            out[i] = code_t(raw);
        }
    }
}

// The reverse, for the output rows (and the host).
template <int D, int BITS, int BEATS>
void pack_row(const code_t codes[D], beat_t beats[BEATS]) {
#pragma HLS INLINE
    ap_uint<BEATS * 256> row = 0;
    for (int i = 0; i < D; i++) {
#pragma HLS UNROLL
        row(i * BITS + BITS - 1, i * BITS) = ap_uint<BITS>(codes[i]);
    }
    for (int b = 0; b < BEATS; b++) {
#pragma HLS UNROLL
        beats[b] = row(b * 256 + 255, b * 256);
    }
}

}  // namespace spatten

#endif
