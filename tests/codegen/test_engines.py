"""The hand-written HLS engine headers (templates/hls/engines/) equal the Numba kernels bit for bit.

One C++ shim (engines_shim.cpp beside this file) includes every engine header and the generated
spatten_tables.h, is compiled once per session with the strict flags and loaded with ctypes;
each test feeds the same seeded random integer inputs to the shim and to the kernel and
compares with np.array_equal. A static scan keeps the headers synthesizable.
"""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import numpy as np
import pytest

from spatten_hls.compiler.codegen.tables import tables_header
from spatten_hls.compiler.codegen.toolchain import build_cached
from spatten_hls.compiler.resources import templates_dir
from spatten_hls.kernels import formats, topk
from spatten_hls.kernels.formats import MASKED, PROB_ONE, SCORE_MAX, probability_code, sym_max
from spatten_hls.kernels.fused import qk_accumulate_f64, scaled_softmax_visible
from spatten_hls.kernels.importance import (
    abs_sum,
    select_survivors,
    value_topk_rows,
)
from spatten_hls.kernels.pv import pv_accumulate, requantize_output
from spatten_hls.kernels.qk import qk_scores_loop
from spatten_hls.kernels.scale import scale_multiplier, scale_scores
from spatten_hls.kernels.softmax import softmax_row_max, softmax_rows
from spatten_hls.kernels.tables import softmax_tables

pytestmark = pytest.mark.csim

ENGINES = templates_dir() / "hls" / "engines"
SHIM = Path(__file__).with_name("engines_shim.cpp")
TABLES = softmax_tables()
ROW_MAXK, PV_MAXK, HEAD_D, TOPK_MAXN = 256, 128, 64, 512  # capacities of the shim

I64 = np.ctypeslib.ndpointer(dtype=np.int64, flags="C_CONTIGUOUS")
INT, LONG = ctypes.c_int, ctypes.c_int64
SIGNATURES = {
    "engines_constant": (LONG, [ctypes.c_char_p]),
    "engines_xorshift32": (LONG, [LONG]),
    "engines_qk": (INT, [I64, I64, INT, INT, INT, I64]),
    "engines_scale": (INT, [I64, INT, LONG, INT, I64]),
    "engines_softmax": (INT, [I64, I64, INT, INT, I64]),
    "engines_scaled_softmax": (INT, [I64, I64, INT, INT, LONG, INT, I64]),
    "engines_row_max": (INT, [I64, INT, INT, I64]),
    "engines_pv": (INT, [I64, I64, INT, INT, INT, INT, I64]),
    "engines_topk": (INT, [I64, INT, INT, INT, I64, I64]),
    "engines_value_topk": (LONG, [I64, I64, INT, INT, INT, INT, INT, I64, I64, I64]),
    "engines_select": (INT, [I64, I64, INT, INT, INT, I64, I64]),
    "engines_abs_sum": (LONG, [I64, INT, INT]),
    "engines_requant": (INT, [I64, I64, I64, I64, INT, INT, INT, LONG, INT, LONG, I64, I64]),
}


@pytest.fixture(scope="session")
def lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    build = tmp_path_factory.mktemp("engines")
    include = build / "include"
    include.mkdir()
    (include / "spatten_tables.h").write_text(tables_header())
    path = build_cached([SHIM], [ENGINES, include], build / "cache", "engines_shim", shared=True)
    library = ctypes.CDLL(str(path))
    for name, (restype, argtypes) in SIGNATURES.items():
        function = getattr(library, name)
        function.restype, function.argtypes = restype, argtypes
    return library


def i64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


# -- constants --------------------------------------------------------------------------------


def test_constants_equal_the_python_formats(lib):
    names = [
        "SCORE_FRAC",
        "SCORE_BITS",
        "MULT_BITS",
        "QK_ACC_BITS",
        "SCORE_MAX",
        "MASKED",
        "EXP_INT_BITS",
        "EXP_FRAC",
        "EXP_DOMAIN",
        "RECIP_INDEX_BITS",
        "RECIP_FRAC",
        "RECIP_BASE",
        "PROB_FRAC",
        "PROB_ONE",
        "RECIP_SHIFT_BIAS",
    ]
    for name in names:
        assert lib.engines_constant(name.encode()) == getattr(formats, name), name
    assert lib.engines_constant(b"TOPK_ROUND_OVERHEAD") == topk.TOPK_ROUND_OVERHEAD
    assert lib.engines_constant(b"PIVOT_SEED") == topk.PIVOT_SEED
    sizes = [lib.engines_constant(f"{t}_SIZE".encode()) for t in ("EXP_HI", "EXP_LO", "RECIP")]
    assert sizes == [len(t) for t in TABLES]
    widths = {
        "MULT_T": formats.MULT_BITS,
        "SCORE_T": formats.SCORE_BITS,
        "PROB_T": formats.PROB_FRAC + 1,
        "EXP_T": formats.EXP_FRAC + 1,
        "RECIP_T": 19,
    }
    for name, width in widths.items():
        assert lib.engines_constant(f"{name}_WIDTH".encode()) == width, name
    assert lib.engines_constant(b"NO_SUCH_CONSTANT") == -(2**63)  # the lookup can fail


def test_xorshift32_sequence(lib):
    state, seeds = topk.PIVOT_SEED, [1, 0xFFFFFFFF, 0x80000000, 12345]
    for _ in range(1000):
        nxt = topk._xorshift32(state)
        assert lib.engines_xorshift32(state) == nxt
        state = nxt
    for seed in seeds:
        assert lib.engines_xorshift32(seed) == topk._xorshift32(seed)


# -- Q.K, scale, softmax, P.V ------------------------------------------------------------------


def test_qk_dot_equals_integer_loop(lib):
    rng = np.random.default_rng(1)
    for d in (1, 3, 16, 63, 64):
        for bits in (2, 8, 12, 16):
            q = rng.integers(-sym_max(bits), sym_max(bits) + 1, (6, d))
            k = rng.integers(-sym_max(bits), sym_max(bits) + 1, (9, d))
            k[0] = sym_max(bits)
            q[0] = -sym_max(bits)  # the extreme product in every term
            out = np.empty((6, 9), dtype=np.int64)
            assert lib.engines_qk(i64(q), i64(k), 6, 9, d, out) == 0
            assert np.array_equal(out, qk_scores_loop(i64(q), i64(k)))


def _scale_accs(rng: np.random.Generator, sh: int) -> np.ndarray:
    edge = [0, 1, -1, 2**37, -(2**37), 2**37 - 1, -(2**37) + 1, 2**38 - 1, -(2**38) + 1]
    near = rng.integers(-4096, 4097, 16) + 2**37 * rng.choice([-1, 1], 16)
    spread = rng.integers(-(2**38) + 1, 2**38, 16)
    small = rng.integers(-(2**20), 2**20, 16)
    # With M = 2^22, acc * M / 2^sh has fraction exactly 1/2 for acc = odd * 2^(sh-23).
    unit = 2 ** max(sh - 23, 0)
    half_range = min((2**38 - 1) // unit, 128) // 2  # |acc| < 2^38 (the kernel checks)
    ties = (2 * rng.integers(-half_range, half_range, 8) + 1) * unit if half_range else []
    return i64(np.concatenate([edge, near, spread, small, ties]))


def test_scale_score_all_shifts(lib):
    rng = np.random.default_rng(2)
    saturated = unsaturated = 0
    for sh in range(1, 63):
        multipliers = [
            2**22,
            2**23 - 1,
            int(rng.integers(2**22, 2**23)),
            int(rng.integers(0, 2**23)),
        ]
        for m in multipliers:
            acc = _scale_accs(rng, sh)
            out = np.empty_like(acc)
            assert lib.engines_scale(acc, len(acc), m, sh, out) == 0
            expected = scale_scores(acc.reshape(1, -1), m, sh)[0]
            assert np.array_equal(out, expected), (sh, m)
            saturated += int(np.sum(np.abs(out) == SCORE_MAX))
            unsaturated += int(np.sum((np.abs(out) < SCORE_MAX) & (out != 0)))
    assert saturated > 1000 and unsaturated > 1000  # both regimes exercised


def test_softmax_worked_example(lib):
    """docs/numerics.md section 9: scores [0, 632, -908] -> p = [20068, 37200, 8268]."""
    out = np.empty((1, 3), dtype=np.int64)
    assert lib.engines_softmax(i64([[0, 632, -908]]), i64([3]), 1, 3, out) == 0
    assert out.tolist() == [[20068, 37200, 8268]]


def _score_rows(rng: np.random.Generator, visible: np.ndarray, lk: int, kind: str) -> np.ndarray:
    rows = len(visible)
    top = rng.integers(-SCORE_MAX + 2**16, SCORE_MAX + 1, (rows, 1))
    if kind == "narrow":
        return top - rng.integers(0, 3000, (rows, lk))
    if kind == "wide":
        return rng.integers(-SCORE_MAX, SCORE_MAX + 1, (rows, lk))
    if kind == "saturated":
        return rng.choice([SCORE_MAX, -SCORE_MAX, SCORE_MAX - 1, 0], (rows, lk))
    if kind == "single":  # everything but the max is flushed: p = [65536, 0, ...]
        s = top - rng.integers(2**14, 2**15, (rows, lk))
        s[np.arange(rows), rng.integers(0, visible)] = top[:, 0]
        return s
    if kind == "masked_low":  # MASKED - max < EXP_DOMAIN: only the sentinel check zeroes it
        s = rng.integers(-SCORE_MAX, -SCORE_MAX + 3000, (rows, lk))
        return np.where((rng.random((rows, lk)) < 0.3) & (np.arange(lk) > 0), MASKED, s)
    if kind == "boundary":  # x = EXP_DOMAIN - 1 survives, x = EXP_DOMAIN is flushed
        return top - rng.choice([0, 2**14 - 1, 2**14, 1023, 1024], (rows, lk))
    return np.broadcast_to(top, (rows, lk)) + rng.integers(0, 2, (rows, lk))  # "ties"


def test_softmax_row_equals_softmax_rows(lib):
    rng = np.random.default_rng(3)
    cases = 0
    kinds = ("narrow", "wide", "saturated", "single", "boundary", "ties", "masked_low")
    for lk in (1, 2, 3, 7, 16, 64, 129, 256):
        for kind in kinds:
            rows = 24
            visible = rng.integers(1, lk + 1, rows)
            visible[0] = lk
            scores = _score_rows(rng, visible, lk, kind)
            if kind == "narrow" and lk > 2:  # masked entries inside the visible prefix
                scores = np.where(rng.random((rows, lk)) < 0.2, MASKED, scores)
                scores[:, 0] = rng.integers(-5000, 5000, rows)
            beyond = np.arange(lk)[None, :] >= visible[:, None]
            c_in = np.where(beyond, SCORE_MAX, scores)  # the engine must not look past visible
            py_in = np.where(beyond, MASKED, scores)
            out = np.empty((rows, lk), dtype=np.int64)
            assert lib.engines_softmax(i64(c_in), i64(visible), rows, lk, out) == 0
            expected = softmax_rows(i64(py_in), *TABLES)
            assert np.array_equal(out, expected), (lk, kind)
            if kind == "single":
                assert np.all(out.max(axis=1) == PROB_ONE)
            cases += rows
    assert cases == 8 * 7 * 24


def test_scaled_softmax_equals_fused_kernel(lib):
    rng = np.random.default_rng(4)
    for lk in (1, 5, 33, 128, 256):
        for spread, c in ((2**12, 0.01), (2**20, 3e-4), (2**37, 1e-6), (2**38 - 1, 1.0)):
            m, sh = scale_multiplier(c * rng.uniform(0.5, 2.0))
            rows = 30
            acc = rng.integers(-spread, spread, (rows, lk), endpoint=True)
            visible = rng.integers(1, lk + 1, rows)
            out = np.empty((rows, lk), dtype=np.int64)
            assert lib.engines_scaled_softmax(i64(acc), i64(visible), rows, lk, m, sh, out) == 0
            expected = scaled_softmax_visible(acc.astype(np.float64), m, sh, visible, *TABLES)
            assert np.array_equal(out, expected.astype(np.int64)), (lk, spread)


def test_row_max(lib):
    rng = np.random.default_rng(5)
    probs = rng.integers(0, PROB_ONE + 1, (50, 40))
    probs[:5] = 0
    out = np.empty(50, dtype=np.int64)
    assert lib.engines_row_max(i64(probs), 50, 40, out) == 0
    assert np.array_equal(out, softmax_row_max(i64(probs)))


def test_pv_worked_example(lib):
    """docs/numerics.md section 9: p = [20068, 37200, 8268] and V -> out = [31, 80]."""
    out = np.empty((1, 2), dtype=np.int64)
    v = i64([[127, 0], [0, 127], [-64, 64]])
    assert lib.engines_pv(i64([[20068, 37200, 8268]]), v, 1, 3, 2, 8, out) == 0
    assert out.tolist() == [[31, 80]]
    # p = 1/2 times odd codes: every output is a tie, rounded half up (-1.5 -> -1, 2.5 -> 3)
    v = i64([[-5, -3, -1, 1, 3, 5]])
    out = np.empty((1, 6), dtype=np.int64)
    assert lib.engines_pv(i64([[PROB_ONE // 2]]), v, 1, 1, 6, 4, out) == 0
    assert out.tolist() == [[-2, -1, 0, 1, 2, 3]]
    assert np.array_equal(out, requantize_output(pv_accumulate(i64([[PROB_ONE // 2]]), v), 4))


def test_pv_row_equals_accumulate_and_requantize(lib):
    rng = np.random.default_rng(6)
    cases = 0
    for lk in (1, 3, 17, 128):
        for d in (1, 8, 64):
            for v_bits in (2, 4, 8, 12, 16):
                lq = 8
                logits = rng.integers(-6000, 1, (lq, lk))
                probs = softmax_rows(i64(logits), *TABLES)
                probs[0] = rng.integers(0, PROB_ONE + 1, lk)  # not a distribution
                probs[1] = PROB_ONE  # saturates: acc = lk * 2^16 * vmax
                v = rng.integers(-sym_max(v_bits), sym_max(v_bits) + 1, (lk, d))
                v[0] = sym_max(v_bits)
                out = np.empty((lq, d), dtype=np.int64)
                assert lib.engines_pv(i64(probs), i64(v), lq, lk, d, v_bits, out) == 0
                expected = requantize_output(pv_accumulate(probs, v), v_bits)
                assert np.array_equal(out, expected), (lk, d, v_bits)
                cases += lq
    assert cases == 4 * 3 * 5 * 8


# -- top-k and pruning selections --------------------------------------------------------------


def _topk_values(rng: np.random.Generator, n: int, kind: int) -> np.ndarray:
    if kind == 0:
        return rng.integers(0, 4, n)  # many ties
    if kind == 1:
        return rng.integers(0, 2**62, n)
    if kind == 2:
        return np.full(n, 7)
    if kind == 3:
        return np.sort(rng.integers(0, 50, n))
    return rng.integers(0, 2**20, n) * PROB_ONE  # importances: sums of probability codes


def test_topk_mask_rounds_and_cycles(lib):
    rng = np.random.default_rng(7)
    cases = total_rounds = 0
    for n in (0, 1, 2, 3, 5, 17, 64, 200, 512):
        for kind in range(5):
            values = i64(_topk_values(rng, n, kind))
            ks = {-1, 0, 1, n // 2, n - 1, n, n + 3, int(rng.integers(0, n + 1))}
            for k in sorted(ks):
                for parallelism in (1, 3, 16, 64):
                    mask = np.full(n, -1, dtype=np.int64)
                    rc = np.full(2, -1, dtype=np.int64)
                    assert lib.engines_topk(values, n, k, parallelism, mask, rc) == 0
                    e_mask, e_rounds, e_cycles = topk.topk_mask(values, k, parallelism)
                    assert np.array_equal(mask.astype(bool), e_mask), (n, kind, k)
                    assert rc.tolist() == [e_rounds, e_cycles], (n, kind, k, parallelism)
                    cases += 1
                    total_rounds += e_rounds
    assert cases > 1000 and total_rounds > 1000


def test_value_topk_row_equals_kernel(lib):
    rng = np.random.default_rng(8)
    cases = 0
    for lk in (1, 4, 37, 256):
        for keep_num, keep_den in ((1, 2), (3, 10), (1, 1), (7, 8), (1, 100)):
            for parallelism in (1, 16):
                rows = 12
                scores = rng.integers(-4000, 1, (rows, lk))
                scores[0] = 0  # all equal: ties everywhere
                probs = softmax_rows(i64(scores), *TABLES)
                visible = rng.integers(1, lk + 1, rows)
                visible[0] = lk
                probs = np.where(np.arange(lk)[None, :] < visible[:, None], probs, 0)
                out, fetched = np.empty((rows, lk), dtype=np.int64), np.zeros(lk, np.int64)
                cycles = np.full(1, -1, dtype=np.int64)
                kept = lib.engines_value_topk(
                    i64(probs),
                    i64(visible),
                    rows,
                    lk,
                    keep_num,
                    keep_den,
                    parallelism,
                    out,
                    fetched,
                    cycles,
                )
                e_out, e_fetched = np.empty((rows, lk)), np.zeros((1, lk), dtype=np.bool_)
                e_kept, e_cycles = value_topk_rows(
                    probs.astype(np.float64),
                    i64(visible),
                    keep_num,
                    keep_den,
                    parallelism,
                    e_out,
                    e_fetched,
                    np.zeros(rows, dtype=np.int64),
                )
                assert kept == e_kept
                assert np.array_equal(out, e_out.astype(np.int64))
                assert np.array_equal(fetched.astype(bool), e_fetched[0])
                assert cycles[0] == e_cycles
                cases += rows
    assert cases == 4 * 5 * 2 * 12


def test_select_survivors_equals_kernel(lib):
    rng = np.random.default_rng(9)
    cases = 0
    for n in (1, 2, 9, 100, 512):
        for trial in range(30):
            imp = i64(_topk_values(rng, n, trial % 5))
            protected = rng.random(n) < (0.0, 0.1, 0.5, 1.0)[trial % 4]
            keep = int(rng.integers(0, n + 3))
            parallelism = int(rng.choice([1, 4, 32]))
            survivors, cycles = np.empty(n, dtype=np.int64), np.full(1, -1, dtype=np.int64)
            assert (
                lib.engines_select(imp, i64(protected), n, keep, parallelism, survivors, cycles)
                == 0
            )
            e_mask, e_cycles = select_survivors(imp, protected, keep, parallelism)
            assert np.array_equal(survivors.astype(bool), e_mask), (n, trial)
            assert cycles[0] == e_cycles
            cases += 1
    assert cases == 150


def test_abs_sum(lib):
    rng = np.random.default_rng(10)
    for d in (1, 7, 64):
        for bits in (2, 12, 16):
            codes = i64(rng.integers(-sym_max(bits), sym_max(bits) + 1, (11, d)))
            codes[0] = -sym_max(bits)
            assert lib.engines_abs_sum(codes, 11, d) == abs_sum(codes)


# -- progressive quantization ------------------------------------------------------------------


def _softmax_of(
    q: np.ndarray, k: np.ndarray, bits: int, m: int, sh: int, visible: np.ndarray
) -> np.ndarray:
    acc = qk_accumulate_f64(q.astype(np.float64), k.astype(np.float64), bits, bits)
    return scaled_softmax_visible(acc, m, sh, i64(visible), *TABLES).astype(np.int64)


def test_requant_row_equals_handler_arithmetic(lib):
    """As compiler/sim/handlers_spatten._requant: rows whose max probability is below the
    threshold code are recomputed from the full K word (widened MSB + LSB)."""
    rng = np.random.default_rng(11)
    bits, lsb_bits, lq = 12, 4, 16
    redone_rows = 0
    for trial in range(12):
        lk, d = int(rng.choice([1, 9, 128])), int(rng.choice([4, 64]))
        q = rng.integers(-sym_max(bits), sym_max(bits) + 1, (lq, d))
        k = rng.integers(-sym_max(bits), sym_max(bits) + 1, (lk, d))
        k_msb, k_lsb = (k >> lsb_bits) << lsb_bits, k & ((1 << lsb_bits) - 1)
        m, sh = scale_multiplier(1024 / (40 * sym_max(bits) ** 2) * rng.uniform(1, 40))
        visible = rng.integers(1, lk + 1, lq) if trial % 2 else np.full(lq, lk)
        probs = _softmax_of(q, k_msb, bits, m, sh, visible)
        threshold = probability_code(float(rng.choice([0.0, 0.2, 0.5, 1.0])))
        rows = np.flatnonzero(probs.max(axis=1) < threshold)
        expected = probs.copy()
        if len(rows):
            expected[rows] = _softmax_of(q[rows], k_msb + k_lsb, bits, m, sh, visible[rows])
        got, redone = probs.copy(), np.full(lq, -1, dtype=np.int64)
        assert (
            lib.engines_requant(
                i64(q),
                i64(k_msb),
                i64(k_lsb),
                i64(visible),
                lq,
                lk,
                d,
                m,
                sh,
                threshold,
                got,
                redone,
            )
            == 0
        )
        assert np.flatnonzero(redone).tolist() == rows.tolist()
        assert np.array_equal(got, expected), trial
        redone_rows += len(rows)
    assert redone_rows > 20


# -- synthesizability scan -----------------------------------------------------------------

FORBIDDEN = {
    "dynamic memory": r"\bnew\b|\bdelete\b|\bmalloc\s*\(|\bcalloc\s*\(|\bfree\s*\(",
    "std library": r"\bstd::|<vector>|<map>|<iostream>|<cstdio>|\bcout\b|\bprintf\b",
    "floating point": r"\bfloat\b|\bdouble\b|hls_math|<cmath>|<math\.h>",
}
KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof"}


def _code(path: Path) -> str:
    """Header text as synthesis sees it: without comments and without the C-simulation-only
    blocks (`#ifndef __SYNTHESIS__ ... #else`, csim.h); strings occur only in those."""
    text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"#ifndef __SYNTHESIS__.*?#(else|endif)", "", text, flags=re.S)


def _function_bodies(code: str) -> list[tuple[str, str]]:
    """(name, body) of each function definition: `name(...) {` outside a control keyword."""
    found = []
    for match in re.finditer(r"\b(\w+)\s*\(([^;{}]*)\)\s*(?:const\s*)?\{", code):
        if match.group(1) in KEYWORDS:
            continue
        depth, end = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(code[end], 0)
            end += 1
        found.append((match.group(1), code[match.end() : end - 1]))
    return found


# The engines of this suite; other headers in the folder (written on top of these) get the
# folder-wide rules only, not the one-pragma-per-loop house rule of these engines.
ENGINE_HEADERS = (
    "spatten_types.h",
    "qk.h",
    "scale.h",
    "softmax.h",
    "pv.h",
    "topk.h",
    "value_topk.h",
    "importance.h",
    "requant.h",
    "pack.h",
    "rows.h",
    "layer.h",
)


def test_engine_headers_exist():
    assert all((ENGINES / name).is_file() for name in ENGINE_HEADERS)


@pytest.mark.parametrize("header", sorted(ENGINES.glob("*.h")), ids=lambda p: p.name)
def test_header_is_synthesizable(header: Path):
    """No dynamic memory, std library, floating point or self-calls; loops carry pragmas."""
    code = _code(header)
    assert "namespace spatten {" in code
    for what, pattern in FORBIDDEN.items():
        assert not re.search(pattern, code), f"{header.name}: {what}"
    bodies = _function_bodies(code)
    assert bodies or header.name in ("spatten_types.h", "csim.h")  # csim.h: macros only
    for name, body in bodies:
        call = re.compile(rf"\b{name}\s*(<[^<>;]*>)?\s*\(")
        assert not call.search(body), f"{header.name}: {name} calls itself"
    assert not re.search(r"\bwhile\s*\(", code), f"{header.name}: unbounded while loop"
    if re.search(r"\bfor\s*\(", code):
        assert "#pragma HLS" in code, f"{header.name}: loops without any pragma"


@pytest.mark.parametrize("name", ENGINE_HEADERS)
def test_every_engine_loop_has_a_pragma(name: str):
    """Each loop of the engines states its schedule (PIPELINE / UNROLL / TRIPCOUNT) first."""
    lines = [ln.strip() for ln in _code(ENGINES / name).splitlines() if ln.strip()]
    loops = [i for i, line in enumerate(lines) if re.match(r"for\s*\(", line)]
    assert loops or name in ("spatten_types.h", "scale.h")
    for i in loops:
        assert lines[i + 1].startswith("#pragma HLS"), f"{name}: loop '{lines[i]}'"
