// C-simulation shim of the SpAtten engine headers for tests/codegen/test_engines.py:
// extern "C" wrappers over raw int64 arrays (row-major), converting to the ap types, calling
// the engines, converting back. Every wrapper returns a negative value when a size exceeds the
// capacity it was instantiated with, so a test can never pass on truncated data.
#include <cstdint>
#include <cstring>

#include "importance.h"
#include "pv.h"
#include "qk.h"
#include "requant.h"
#include "scale.h"
#include "softmax.h"
#include "spatten_types.h"
#include "topk.h"
#include "value_topk.h"

using namespace spatten;

namespace {

constexpr int ROW_MAXK = 256;  // softmax / value top-k / column sums row capacity
constexpr int PV_MAXK = 128;   // keys of pv_row and requant_row
constexpr int HEAD_D = 64;     // head dimension (shorter rows are zero-padded: exact for dot
                               // products, and the pv / abs-sum lanes beyond d are ignored)
constexpr int TOPK_MAXN = 512; // top-k and survivor selection capacity

}  // namespace

extern "C" {

int64_t engines_constant(const char *name) {
    struct Entry {
        const char *name;
        int64_t value;
    };
    static const Entry entries[] = {
        {"SCORE_FRAC", SCORE_FRAC},
        {"SCORE_BITS", SCORE_BITS},
        {"MULT_BITS", MULT_BITS},
        {"QK_ACC_BITS", QK_ACC_BITS},
        {"SCORE_MAX", SCORE_MAX},
        {"MASKED", MASKED},
        {"EXP_INT_BITS", EXP_INT_BITS},
        {"EXP_FRAC", EXP_FRAC},
        {"EXP_DOMAIN", EXP_DOMAIN},
        {"RECIP_INDEX_BITS", RECIP_INDEX_BITS},
        {"RECIP_FRAC", RECIP_FRAC},
        {"RECIP_BASE", RECIP_BASE},
        {"PROB_FRAC", PROB_FRAC},
        {"PROB_ONE", PROB_ONE},
        {"RECIP_SHIFT_BIAS", RECIP_SHIFT_BIAS},
        {"TOPK_ROUND_OVERHEAD", TOPK_ROUND_OVERHEAD},
        {"PIVOT_SEED", PIVOT_SEED},
        {"EXP_HI_SIZE", sizeof(EXP_HI) / sizeof(EXP_HI[0])},
        {"EXP_LO_SIZE", sizeof(EXP_LO) / sizeof(EXP_LO[0])},
        {"RECIP_SIZE", sizeof(RECIP) / sizeof(RECIP[0])},
        {"MULT_T_WIDTH", mult_t::width},
        {"SCORE_T_WIDTH", score_t::width},
        {"PROB_T_WIDTH", prob_t::width},
        {"EXP_T_WIDTH", exp_t::width},
        {"RECIP_T_WIDTH", recip_t::width},
    };
    for (const Entry &entry : entries) {
        if (std::strcmp(entry.name, name) == 0) {
            return entry.value;
        }
    }
    return INT64_MIN;
}

int64_t engines_xorshift32(int64_t state) {
    return int64_t(xorshift32(ap_uint<32>(uint64_t(state))).to_uint64());
}

int engines_qk(const int64_t *q, const int64_t *k, int lq, int lk, int d, int64_t *out) {
    if (d > HEAD_D) {
        return -1;
    }
    code_t qrow[HEAD_D];
    code_t krow[HEAD_D];
    for (int i = 0; i < lq; i++) {
        for (int t = 0; t < HEAD_D; t++) {
            qrow[t] = t < d ? code_t(q[i * d + t]) : code_t(0);
        }
        for (int j = 0; j < lk; j++) {
            for (int t = 0; t < HEAD_D; t++) {
                krow[t] = t < d ? code_t(k[j * d + t]) : code_t(0);
            }
            out[i * lk + j] = qk_dot<HEAD_D>(qrow, krow).to_int64();
        }
    }
    return 0;
}

int engines_scale(const int64_t *acc, int n, int64_t m, int sh, int64_t *out) {
    for (int i = 0; i < n; i++) {
        out[i] = scale_score(qk_acc_t(acc[i]), mult_t(uint64_t(m)), sh).to_int64();
    }
    return 0;
}

// Scores beyond lk (up to the capacity) are filled with SCORE_MAX: were the engine to read
// past `visible`, they would become the row max and change every probability.
int engines_softmax(const int64_t *scores, const int64_t *visible, int rows, int lk,
                    int64_t *out) {
    if (lk > ROW_MAXK) {
        return -1;
    }
    score_t s[ROW_MAXK];
    prob_t p[ROW_MAXK];
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < ROW_MAXK; j++) {
            s[j] = j < lk ? score_t(scores[i * lk + j]) : score_t(SCORE_MAX);
        }
        softmax_row<ROW_MAXK>(s, int(visible[i]), p);
        for (int j = 0; j < lk; j++) {
            out[i * lk + j] = p[j].to_int64();
        }
    }
    return 0;
}

int engines_scaled_softmax(const int64_t *acc, const int64_t *visible, int rows, int lk,
                           int64_t m, int sh, int64_t *out) {
    if (lk > ROW_MAXK) {
        return -1;
    }
    score_t s[ROW_MAXK];
    prob_t p[ROW_MAXK];
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < ROW_MAXK; j++) {
            s[j] = j < lk ? scale_score(qk_acc_t(acc[i * lk + j]), mult_t(uint64_t(m)), sh)
                          : score_t(SCORE_MAX);
        }
        softmax_row<ROW_MAXK>(s, int(visible[i]), p);
        for (int j = 0; j < lk; j++) {
            out[i * lk + j] = p[j].to_int64();
        }
    }
    return 0;
}

int engines_row_max(const int64_t *probs, int rows, int lk, int64_t *out) {
    if (lk > ROW_MAXK) {
        return -1;
    }
    prob_t p[ROW_MAXK];
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < ROW_MAXK; j++) {
            p[j] = j < lk ? prob_t(probs[i * lk + j]) : prob_t(PROB_ONE);
        }
        out[i] = row_max<ROW_MAXK>(p, lk).to_int64();
    }
    return 0;
}

int engines_pv(const int64_t *probs, const int64_t *v, int lq, int lk, int d, int v_bits,
               int64_t *out) {
    if (lk > PV_MAXK || d > HEAD_D || v_bits < 2 || v_bits > code_t::width) {
        return -1;
    }
    static code_t vbuf[PV_MAXK][HEAD_D];
    prob_t p[PV_MAXK];
    code_t o[HEAD_D];
    for (int j = 0; j < PV_MAXK; j++) {
        for (int t = 0; t < HEAD_D; t++) {
            vbuf[j][t] = j < lk && t < d ? code_t(v[j * d + t]) : code_t(1);
        }
    }
    for (int i = 0; i < lq; i++) {
        for (int j = 0; j < PV_MAXK; j++) {
            p[j] = j < lk ? prob_t(probs[i * lk + j]) : prob_t(PROB_ONE);
        }
        pv_row<PV_MAXK, HEAD_D>(p, vbuf, lk, v_bits, o);
        for (int t = 0; t < d; t++) {
            out[i * d + t] = o[t].to_int64();
        }
    }
    return 0;
}

}  // extern "C"

namespace {

// The engines take their comparators P as a template parameter (the design's plan fixes it);
// the shim instantiates the P values the tests use.
#define SHIM_DISPATCH(P_VALUE, CALL) \
    switch (P_VALUE) {               \
        case 1: CALL(1); break;      \
        case 3: CALL(3); break;      \
        case 4: CALL(4); break;      \
        case 16: CALL(16); break;    \
        case 32: CALL(32); break;    \
        case 64: CALL(64); break;    \
        default: return -3;          \
    }

}  // namespace

extern "C" {

int engines_topk(const int64_t *vals, int n, int k, int parallelism, int64_t *mask,
                 int64_t *rounds_cycles) {
    if (n > TOPK_MAXN) {
        return -1;
    }
    importance_t buf[TOPK_MAXN];
    bool m[TOPK_MAXN];
    for (int i = 0; i < TOPK_MAXN; i++) {
        m[i] = false;
        // Past n: the largest value, which would win every selection if it were looked at.
        buf[i] = i < n ? importance_t(uint64_t(vals[i])) : importance_t(~uint64_t(0));
    }
    int rounds = -1;
    int cycles = -1;
#define SHIM_TOPK(P) topk_mask<TOPK_MAXN, P>(buf, n, k, m, rounds, cycles)
    SHIM_DISPATCH(parallelism, SHIM_TOPK)
    for (int i = 0; i < TOPK_MAXN; i++) {
        if (i >= n && m[i]) {
            return -2;  // the engine writes mask[0..n) only
        }
        if (i < n) {
            mask[i] = m[i];
        }
    }
    rounds_cycles[0] = rounds;
    rounds_cycles[1] = cycles;
    return 0;
}

// Rows of probabilities through value_topk_row: the pruned rows (kept entries, others 0) into
// `out`, the kept columns ORed into `fetched`, the engine's cycles summed into cycles[0];
// returns the kept count.
int64_t engines_value_topk(const int64_t *probs, const int64_t *visible, int rows, int lk,
                           int keep_num, int keep_den, int parallelism, int64_t *out,
                           int64_t *fetched, int64_t *cycles) {
    if (lk > ROW_MAXK) {
        return -1;
    }
    prob_t p[ROW_MAXK];
    index_t kept_index[ROW_MAXK];
    prob_t kept_p[ROW_MAXK];
    int64_t kept = 0;
    cycles[0] = 0;
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < ROW_MAXK; j++) {
            p[j] = j < lk ? prob_t(probs[i * lk + j]) : prob_t(PROB_ONE);
        }
        int n = 0;
        int c = -1;
#define SHIM_VALUE_TOPK(P)                                                                  \
    n = value_topk_row<ROW_MAXK, P>(p, int(visible[i]), keep_num, keep_den, kept_index, kept_p, \
                                    c)
        SHIM_DISPATCH(parallelism, SHIM_VALUE_TOPK)
        for (int j = 0; j < lk; j++) {
            out[i * lk + j] = 0;
        }
        for (int e = 0; e < n; e++) {
            const int j = int(kept_index[e]);
            if (j < 0 || j >= int(visible[i]) || (e > 0 && j <= int(kept_index[e - 1]))) {
                return -2;  // survivors are visible keys, in order
            }
            out[i * lk + j] = kept_p[e].to_int64();
            fetched[j] = 1;
        }
        kept += n;
        cycles[0] += c;
    }
    return kept;
}

int engines_select(const int64_t *imp, const int64_t *prot, int n, int keep, int parallelism,
                   int64_t *survivors, int64_t *cycles) {
    if (n > TOPK_MAXN) {
        return -1;
    }
    importance_t buf[TOPK_MAXN];
    bool pr[TOPK_MAXN];
    bool s[TOPK_MAXN];
    for (int i = 0; i < TOPK_MAXN; i++) {
        buf[i] = i < n ? importance_t(uint64_t(imp[i])) : importance_t(~uint64_t(0));
        pr[i] = i < n ? prot[i] != 0 : true;
        s[i] = false;
    }
    int c = -1;
#define SHIM_SELECT(P) select_survivors<TOPK_MAXN, P>(buf, pr, n, keep, s, c)
    SHIM_DISPATCH(parallelism, SHIM_SELECT)
    for (int i = 0; i < TOPK_MAXN; i++) {
        if (i >= n && s[i]) {
            return -2;
        }
        if (i < n) {
            survivors[i] = s[i];
        }
    }
    cycles[0] = c;
    return 0;
}

int64_t engines_abs_sum(const int64_t *codes, int rows, int d) {
    if (d > HEAD_D) {
        return -1;
    }
    code_t row[HEAD_D];
    int64_t total = 0;
    for (int i = 0; i < rows; i++) {
        for (int t = 0; t < HEAD_D; t++) {
            row[t] = t < d ? code_t(codes[i * d + t]) : code_t(0);
        }
        total += int64_t(abs_sum_row<HEAD_D>(row).to_uint64());
    }
    return total;
}

// probs [lq, lk] in/out; redone[i] = 1 where row i was recomputed.
int engines_requant(const int64_t *q, const int64_t *k_msb, const int64_t *k_lsb,
                    const int64_t *visible, int lq, int lk, int d, int64_t m, int sh,
                    int64_t threshold_code, int64_t *probs, int64_t *redone) {
    if (lk > PV_MAXK || d > HEAD_D) {
        return -1;
    }
    static code_t msb[PV_MAXK][HEAD_D];
    static lsb_t lsb[PV_MAXK][HEAD_D];
    code_t qrow[HEAD_D];
    prob_t p[PV_MAXK];
    for (int j = 0; j < PV_MAXK; j++) {
        for (int t = 0; t < HEAD_D; t++) {
            const bool inside = j < lk && t < d;
            msb[j][t] = inside ? code_t(k_msb[j * d + t]) : code_t(0);
            lsb[j][t] = inside ? lsb_t(uint64_t(k_lsb[j * d + t])) : lsb_t(0);
        }
    }
    for (int i = 0; i < lq; i++) {
        for (int t = 0; t < HEAD_D; t++) {
            qrow[t] = t < d ? code_t(q[i * d + t]) : code_t(0);
        }
        for (int j = 0; j < PV_MAXK; j++) {
            p[j] = j < lk ? prob_t(probs[i * lk + j]) : prob_t(0);
        }
        redone[i] = requant_row<PV_MAXK, HEAD_D>(qrow, msb, lsb, int(visible[i]),
                                                 mult_t(uint64_t(m)), sh,
                                                 prob_t(threshold_code), p);
        for (int j = 0; j < lk; j++) {
            probs[i * lk + j] = p[j].to_int64();
        }
    }
    return 0;
}

}  // extern "C"
