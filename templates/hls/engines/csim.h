// Measurement in C-simulation only: bytes moved through each m_axi port and a loop-level
// cycle estimate. Synthesis defines __SYNTHESIS__, where every hook below is empty.
//
// The cycle estimate is the loop nest's own arithmetic, not a Vitis number: a pipelined loop
// costs (trips - 1) x II + depth (the II it requests, assumed met, and the iteration latency
// the plan gives it), a fetch its beat times plus the latency to the first beat, code in
// sequence adds up, and a DATAFLOW region costs its slowest process (the
// sum over its items) plus the first item's cycles in every other process (filling and
// draining the pipeline). A fetch pays the port's latency once per region (fetch.h).
#ifndef SPATTEN_CSIM_H
#define SPATTEN_CSIM_H

namespace spatten {

// Engines the estimate is broken down by (busy cycles each), then keys that only name a
// dataflow process: the row pipeline and the value top-k threshold engines (one process
// each, E_THRESHOLD + engine).
enum engine_id {
    E_STATE, E_SCAN, E_FETCH_K, E_FETCH_Q, E_QK, E_SOFTMAX_EXP, E_SOFTMAX_NORM, E_SELECT,
    E_IMPORTANCE, E_VALUE_TOPK, E_FETCH_V, E_PV, E_WRITEBACK, E_TOPK,
    N_ENGINES,
    E_ROWS = N_ENGINES,
    E_THRESHOLD,
    N_KEYS = E_THRESHOLD + 16
};
enum port_id { P_Q, P_K_MSB, P_K_LSB, P_V, P_OUT, P_STATE, P_PARAMS, N_PORTS };

// The layout of csim_export(): bytes per port, busy cycles per engine, the total.
static const int N_MEASURED = int(N_PORTS) + int(N_ENGINES) + 1;

#ifndef __SYNTHESIS__

// Their names in `spatten csim --json` (compiler/codegen/counters.py reads them by name).
static const char *const PORT_NAMES[N_PORTS] = {"q",   "k_msb", "k_lsb", "v",
                                                 "out", "state", "params"};
static const char *const ENGINE_NAMES[N_ENGINES] = {
    "state", "scan", "fetch_k", "fetch_q", "qk", "softmax_exp", "softmax_norm", "select",
    "importance", "value_topk", "fetch_v", "pv", "writeback", "topk"};

static const int CSIM_MAX_DEPTH = 4;  // nesting of dataflow regions

struct csim_region {
    long long process_total[N_KEYS];
    long long process_first[N_KEYS];
    bool first_item;
    bool port_open[N_PORTS];  // the port's latency is paid
};

struct csim_counters {
    long long bytes[N_PORTS];
    long long engine_cycles[N_KEYS];
    long long total_cycles;
    int depth;  // open dataflow regions
    csim_region regions[CSIM_MAX_DEPTH];
};

inline csim_counters &csim() {
    static csim_counters counters;
    return counters;
}

inline void csim_reset() {
    csim_counters &c = csim();
    for (int p = 0; p < N_PORTS; p++) c.bytes[p] = 0;
    for (int e = 0; e < N_KEYS; e++) c.engine_cycles[e] = 0;
    c.total_cycles = 0;
    c.depth = 0;
}

// The counters as N_MEASURED integers (see N_MEASURED).
inline void csim_export(long long *measured) {
    const csim_counters &c = csim();
    int at = 0;
    for (int p = 0; p < N_PORTS; p++) measured[at++] = c.bytes[p];
    for (int e = 0; e < N_ENGINES; e++) measured[at++] = c.engine_cycles[e];
    measured[at] = c.total_cycles;
}

// Adds `n` cycles to the process `process` of the innermost region (at the top level: to the
// total, in sequence).
inline void csim_add(engine_id process, long long n) {
    csim_counters &c = csim();
    if (c.depth == 0) {
        c.total_cycles += n;
        return;
    }
    csim_region &r = c.regions[c.depth - 1];
    r.process_total[process] += n;
    if (r.first_item) r.process_first[process] += n;
}

// `engine` spent `n` cycles in the dataflow process `process`.
inline void csim_cycles_in(engine_id engine, engine_id process, long long n) {
    csim().engine_cycles[engine] += n;
    csim_add(process, n);
}

inline void csim_bytes(port_id port, long long n) { csim().bytes[port] += n; }

// A fetch loop of `steps` beat times moving `beats` beats through `port`.
inline void csim_fetch(engine_id engine, engine_id process, port_id port, long long beats,
                       long long steps, int beat_millicycles, int latency) {
    csim_bytes(port, beats * 32);
    if (steps == 0) return;
    csim_counters &c = csim();
    bool pay = true;
    if (c.depth > 0) {
        csim_region &r = c.regions[c.depth - 1];
        pay = !r.port_open[port];
        r.port_open[port] = true;
    }
    csim_cycles_in(engine, process, (steps * beat_millicycles + 999) / 1000 + (pay ? latency : 0));
}

inline void csim_region_begin() {
    csim_counters &c = csim();
    csim_region &r = c.regions[c.depth++];
    for (int e = 0; e < N_KEYS; e++) {
        r.process_total[e] = 0;
        r.process_first[e] = 0;
    }
    for (int p = 0; p < N_PORTS; p++) r.port_open[p] = false;
    r.first_item = true;
}

// The region's first item has passed every process.
inline void csim_region_item_done() { csim().regions[csim().depth - 1].first_item = false; }

// Closes the innermost region and adds its cycles to the enclosing one as process `as`.
inline void csim_region_end(engine_id as) {
    csim_counters &c = csim();
    const csim_region &r = c.regions[--c.depth];
    int slowest = 0;
    for (int e = 1; e < N_KEYS; e++) {
        if (r.process_total[e] > r.process_total[slowest]) slowest = e;
    }
    long long cycles = r.process_total[slowest];
    for (int e = 0; e < N_KEYS; e++) {
        if (e != slowest) cycles += r.process_first[e];
    }
    csim_add(as, cycles);
}

// Cycles of a pipelined loop of `trips` iterations at an II of `milli_ii` / 1000 cycles whose
// iteration takes `depth` cycles: (trips - 1) x II + depth, as Vitis reports a loop's
// latency (0 trips: 0 cycles).
inline long long loop_cycles(long long trips, long long milli_ii, int depth) {
    return trips > 0 ? ((trips - 1) * milli_ii + 999) / 1000 + depth : 0;
}

#define SPATTEN_BYTES(port, n) ::spatten::csim_bytes(port, (long long)(n))
#define SPATTEN_CYCLES(engine, n) ::spatten::csim_cycles_in(engine, engine, (long long)(n))
#define SPATTEN_CYCLES_IN(engine, process, n) \
    ::spatten::csim_cycles_in(engine, process, (long long)(n))
#define SPATTEN_FETCH(engine, process, port, beats, steps, milli, latency) \
    ::spatten::csim_fetch(engine, process, port, beats, steps, milli, latency)
#define SPATTEN_REGION_BEGIN() ::spatten::csim_region_begin()
#define SPATTEN_REGION_ITEM_DONE() ::spatten::csim_region_item_done()
#define SPATTEN_REGION_END(as) ::spatten::csim_region_end(as)

#else

#define SPATTEN_BYTES(port, n)
#define SPATTEN_CYCLES(engine, n)
#define SPATTEN_CYCLES_IN(engine, process, n)
#define SPATTEN_FETCH(engine, process, port, beats, steps, milli, latency)
#define SPATTEN_REGION_BEGIN()
#define SPATTEN_REGION_ITEM_DONE()
#define SPATTEN_REGION_END(as)

#endif

}  // namespace spatten

#endif
