// C-simulation testbench of the golden-small design: runs every invocation of the
// schedule on the golden inputs of tb/data (written by the bit-accurate simulator) and
// compares output codes and the final pruning state exactly. Prints "N passed, M failed".
#include <cstdint>
#include <cstdio>

#include "host.h"

static bool load(const char *name, void *data, size_t bytes) {
    char path[512];
    std::snprintf(path, sizeof(path), "%s/%s", DATA_DIR, name);
    FILE *f = std::fopen(path, "rb");
    if (!f) {
        std::printf("error: cannot open %s\n", path);
        return false;
    }
    const size_t got = std::fread(data, 1, bytes, f);
    std::fclose(f);
    if (got != bytes) std::printf("error: %s holds %zu bytes, expected %zu\n", path, got, bytes);
    return got == bytes;
}

int main() {
    typedef model_cfg C;
    const long n_q = (long)C::NUM_LAYERS * C::NUM_HEADS * C::MAX_CTX * C::HEAD_DIM;
    const long n_kv = (long)C::NUM_LAYERS * C::NUM_KV_HEADS * C::MAX_CTX * C::HEAD_DIM;
    const long n_lh = (long)C::NUM_LAYERS * C::NUM_HEADS;
    const long n_state = 2L * C::MAX_CTX + 2L * C::NUM_HEADS;
    int16_t *q = new int16_t[n_q], *k_msb = new int16_t[n_kv], *k_lsb = new int16_t[n_kv];
    int16_t *v = new int16_t[n_kv], *out = new int16_t[n_q], *golden = new int16_t[n_q];
    int64_t *mult = new int64_t[n_lh], *shift = new int64_t[n_lh], *weight = new int64_t[n_lh];
    int64_t *state = new int64_t[n_state], *golden_state = new int64_t[n_state];
    int64_t requants[C::NUM_LAYERS] = {0};
    bool ok = load("q.bin", q, n_q * 2) && load("k_msb.bin", k_msb, n_kv * 2) &&
              load("k_lsb.bin", k_lsb, n_kv * 2) && load("v.bin", v, n_kv * 2) &&
              load("mult.bin", mult, n_lh * 8) && load("shift.bin", shift, n_lh * 8) &&
              load("v_weight.bin", weight, n_lh * 8) && load("out.bin", golden, n_q * 2) &&
              load("state.bin", golden_state, n_state * 8);
    if (!ok) return 2;
    spatten_run_model(q, k_msb, k_lsb, v, mult, shift, weight, out, state, requants);
    long passed = 0, failed = 0;
    const long per_layer = (long)C::NUM_HEADS * C::MAX_CTX * C::HEAD_DIM;
    for (int l = 0; l < C::NUM_LAYERS; l++) {
        long bad = 0;
        for (long i = 0; i < per_layer; i++) bad += out[l * per_layer + i] != golden[l * per_layer + i];
        if (bad) std::printf("layer %d: %ld of %ld output codes differ\n", l, bad, per_layer);
        bad ? failed++ : passed++;
    }
    long bad_state = 0;
    for (long i = 0; i < n_state; i++) bad_state += state[i] != golden_state[i];
    if (bad_state) std::printf("pruning state: %ld of %ld entries differ\n", bad_state, n_state);
    bad_state ? failed++ : passed++;
    std::printf("%ld passed, %ld failed\n", passed, failed);
    delete[] q; delete[] k_msb; delete[] k_lsb; delete[] v; delete[] out; delete[] golden;
    delete[] mult; delete[] shift; delete[] weight; delete[] state; delete[] golden_state;
    return failed ? 1 : 0;
}
