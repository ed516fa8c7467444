// C-simulation testbench of the golden-small design: runs every invocation of the
// schedule over the golden run's extent (run.bin: the whole stage, or the reduced run of
// `spatten compile --cosim-size`) on the golden inputs (written by the bit-accurate simulator)
// and compares the output codes of the layers it ran and the final pruning state exactly. The
// data directory (docs/hls.md, "Where the
// testbench finds its data") is the first argument; without one, the first of: data/ beside
// this source file as the compiler saw it (__FILE__: Vitis compiles and runs csim in
// <solution>/csim/build with relative source paths, make in the project directory), data/ in
// the working directory (add_files -tb tb/data), tb/data. Prints the csim counters
// ("bytes <port> N", "cycles <engine> N", "cycles total N"), one line per check, then
// "N passed, M failed".
#include <cstdint>
#include <cstdio>
#include <string>

#include "host.h"

static bool has_data(const std::string &dir) {
    FILE *f = std::fopen((dir + "/q.bin").c_str(), "rb");
    if (f) std::fclose(f);
    return f != nullptr;
}

static std::string data_dir(int argc, char **argv) {
    if (argc > 1) return argv[1];
    const std::string source = __FILE__;
    const size_t slash = source.find_last_of("/\\");
    const std::string beside =
        (slash == std::string::npos ? std::string(".") : source.substr(0, slash)) + "/data";
    const char *const others[] = {"data", "tb/data"};
    if (has_data(beside)) return beside;
    for (const char *dir : others) {
        if (has_data(dir)) return dir;
    }
    return beside;  // the error names where the data was expected
}

// Reads exactly `bytes` bytes: a golden file of any other size belongs to another design.
static bool load(const std::string &dir, const char *name, void *data, long bytes) {
    const std::string path = dir + "/" + name;
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f) {
        std::printf("error: cannot open %s\n", path.c_str());
        return false;
    }
    const bool sized = std::fseek(f, 0, SEEK_END) == 0;
    const long size = sized ? std::ftell(f) : -1;
    const bool read = sized && size == bytes && std::fseek(f, 0, SEEK_SET) == 0 &&
                      std::fread(data, 1, bytes, f) == (size_t)bytes;
    std::fclose(f);
    if (!read) std::printf("error: %s holds %ld bytes, the design expects %ld\n", path.c_str(),
                           size, bytes);
    return read;
}

static void print_progress(int done, int total) {
    std::printf("progress %d/%d\n", done, total);
    std::fflush(stdout);
}

int main(int argc, char **argv) {
    const std::string dir = data_dir(argc, argv);
    typedef model_cfg C;
    const long n_q = (long)C::NUM_LAYERS * C::NUM_HEADS * C::MAX_CTX * C::HEAD_DIM;
    const long n_kv = (long)C::NUM_LAYERS * C::NUM_KV_HEADS * C::MAX_CTX * C::HEAD_DIM;
    const long n_lh = (long)C::NUM_LAYERS * C::NUM_HEADS;
    const long n_state = 2L * C::TOKEN_STATE + 2L * C::NUM_HEADS;
    int16_t *q = new int16_t[n_q], *k_msb = new int16_t[n_kv], *k_lsb = new int16_t[n_kv];
    int16_t *v = new int16_t[n_kv], *out = new int16_t[n_q], *golden = new int16_t[n_q];
    int64_t *mult = new int64_t[n_lh], *shift = new int64_t[n_lh], *weight = new int64_t[n_lh];
    int64_t *state = new int64_t[n_state], *golden_state = new int64_t[n_state];
    int64_t requants[C::NUM_LAYERS] = {0};
    int64_t measured[spatten::N_MEASURED] = {0};
    int64_t run[4] = {0};  // first layer, layers, seq_len, steps
    bool ok = load(dir, "run.bin", run, sizeof run) && load(dir, "q.bin", q, n_q * 2) &&
              load(dir, "k_msb.bin", k_msb, n_kv * 2) &&
              load(dir, "k_lsb.bin", k_lsb, n_kv * 2) && load(dir, "v.bin", v, n_kv * 2) &&
              load(dir, "mult.bin", mult, n_lh * 8) && load(dir, "shift.bin", shift, n_lh * 8) &&
              load(dir, "v_weight.bin", weight, n_lh * 8) &&
              load(dir, "out.bin", golden, n_q * 2) &&
              load(dir, "state.bin", golden_state, n_state * 8);
    if (!ok) return 2;
    std::printf("run layers %lld-%lld, seq_len %lld, steps %lld\n", (long long)run[0],
                (long long)(run[0] + run[1] - 1), (long long)run[2], (long long)run[3]);
    spatten_progress = print_progress;
    if (spatten_run_model(run, q, k_msb, k_lsb, v, mult, shift, weight, out, state, requants,
                          measured) != 0) {
        std::printf("error: %s/run.bin names a run outside this design's stage\n", dir.c_str());
        return 2;
    }
    int at = 0;
    for (int p = 0; p < spatten::N_PORTS; p++)
        std::printf("bytes %s %lld\n", spatten::PORT_NAMES[p], (long long)measured[at++]);
    for (int e = 0; e < spatten::N_ENGINES; e++)
        std::printf("cycles %s %lld\n", spatten::ENGINE_NAMES[e], (long long)measured[at++]);
    std::printf("cycles total %lld\n", (long long)measured[at]);
    long passed = 0, failed = 0;
    const long per_layer = (long)C::NUM_HEADS * C::MAX_CTX * C::HEAD_DIM;
    for (int l = (int)run[0]; l < run[0] + run[1]; l++) {
        long bad = 0;
        for (long i = 0; i < per_layer; i++) bad += out[l * per_layer + i] != golden[l * per_layer + i];
        if (bad) std::printf("layer %d: %ld of %ld output codes differ\n", l, bad, per_layer);
        else std::printf("layer %d: ok\n", l);
        std::fflush(stdout);
        bad ? failed++ : passed++;
    }
    long bad_state = 0;
    for (long i = 0; i < n_state; i++) bad_state += state[i] != golden_state[i];
    if (bad_state) std::printf("pruning state: %ld of %ld entries differ\n", bad_state, n_state);
    else std::printf("pruning state: ok\n");
    bad_state ? failed++ : passed++;
    std::printf("%ld passed, %ld failed\n", passed, failed);
    delete[] q; delete[] k_msb; delete[] k_lsb; delete[] v; delete[] out; delete[] golden;
    delete[] mult; delete[] shift; delete[] weight; delete[] state; delete[] golden_state;
    return failed ? 1 : 0;
}
