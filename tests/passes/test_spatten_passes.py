"""The SpAtten passes: token / head / value pruning and progressive quantization.

Each pass is checked on a tiny model (GPT-2 style, 2 query heads sharing 1 KV head, d = 4,
4 tokens) against an inline expected IR text, plus structural checks of the wiring, the
no-op behaviour when disabled, purity, the CLI and the verifier's rejections.
"""

import dataclasses
import re

import pytest

from spatten_hls.compiler.cli.main import main
from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.errors import IRVerificationError
from spatten_hls.compiler.frontend import ModelSpec
from spatten_hls.compiler.frontend.builder import build_attention_graph
from spatten_hls.compiler.ir import print_ir, verify
from spatten_hls.compiler.ir.ops import LoadK, LoadOp, LoadQ, LoadV, MatMulPV, MatMulQK, Softmax
from spatten_hls.compiler.ir.ops_spatten import (
    HeadImportance,
    HeadSelect,
    LoadKLsb,
    LoadKMsb,
    Requant,
    TokenImportance,
    TokenSelect,
    ValueTopK,
)
from spatten_hls.compiler.ir.serialize import to_json
from spatten_hls.compiler.passes import (
    DEFAULT_PIPELINE,
    insert_head_pruning,
    insert_token_pruning,
    insert_value_pruning,
    run_pipeline,
    split_progressive_quant,
)


def tiny(layers: int = 2, heads: int = 2, kv_heads: int = 1) -> ModelSpec:
    return ModelSpec(
        name="tiny",
        family="gpt2",
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=4,
        hidden_size=4 * heads,
        max_positions=64,
        causal=True,
        source="test:tiny",
    )


def config(seq_len: int = 4, **sections):
    return config_from_dict({"model": {"seq_len": seq_len}, **sections})


def run(spec: ModelSpec, cfg, passes):
    g = run_pipeline(build_attention_graph(spec, cfg), cfg, ["assign-quant-types", *passes])
    verify(g)
    return g


def typed(spec: ModelSpec, cfg):
    return run(spec, cfg, [])


def of_kind(g, kind):
    return [n for n in g.nodes() if isinstance(g.op(n), kind)]


def body(text: str) -> list[str]:
    """The node lines of a printed graph (headers, including the properties line, dropped)."""
    return [line for line in text.splitlines() if not line.startswith("//")]


TOKEN = {"token_pruning": {"enabled": True, "keep": 0.5, "skip_first": 0.0}}
HEAD = {"head_pruning": {"enabled": True, "keep": 0.5, "skip_first": 0.0}}
VALUE = {"value_pruning": {"enabled": True, "keep": 0.5}}
PROG = {
    "quantization": {
        "progressive": True,
        "k_msb_bits": 6,
        "k_lsb_bits": 4,
        "requant_threshold": 0.05,
    }
}
ALL = {**TOKEN, **HEAD, **VALUE, **PROG}


# -- expected IR text, one per pass -----------------------------------------------------------
# Token pruning, 2 layers, keep 0.5, no skipped layer: the ramp 0.75, 0.25 of 4 tokens keeps
# 3 then 1; importance chains l0 -> l1; every layer-1 load is gated by l0's selection.

TOKEN_PRUNED = """\
// spatten-ir model=tiny family=gpt2 stage=summarization layers=2 heads=2 kv_heads=1 head_dim=4 seq_len=4 gen_tokens=32 causal=true
// properties: dense, token-pruned, typed
%l0.kv0.load_k = load_k() {bits=12, gates=[], head_dim=4, kv_head=0, layer=0, msb_bits=8, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/kv_head0 | assign-quant-types
%l0.kv0.load_v = load_v() {bits=12, gates=[], head_dim=4, kv_head=0, layer=0, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/kv_head0 | assign-quant-types
%l0.h0.load_q = load_q() {bits=12, gates=[], head=0, head_dim=4, layer=0, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/head0 | assign-quant-types
%l0.h0.qk = matmul_qk(%l0.h0.load_q, %l0.kv0.load_k) {head=0, kv_head=0, layer=0} : fixed<25,0>[4,4]  # test:tiny/layer0/head0
%l0.h0.scale = scale(%l0.h0.qk) {factor=0.5, head=0, layer=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head0
%l0.h0.mask = causal_mask(%l0.h0.scale) {head=0, layer=0, q_offset=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head0
%l0.h0.softmax = softmax(%l0.h0.mask) {head=0, layer=0} : ufixed<17,16>[4,4]  # test:tiny/layer0/head0
%l0.h0.pv = matmul_pv(%l0.h0.softmax, %l0.kv0.load_v) {head=0, kv_head=0, layer=0} : fixed<12,0>[4,4]  # test:tiny/layer0/head0
%l0.h1.load_q = load_q() {bits=12, gates=[], head=1, head_dim=4, layer=0, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/head1 | assign-quant-types
%l0.h1.qk = matmul_qk(%l0.h1.load_q, %l0.kv0.load_k) {head=1, kv_head=0, layer=0} : fixed<25,0>[4,4]  # test:tiny/layer0/head1
%l0.h1.scale = scale(%l0.h1.qk) {factor=0.5, head=1, layer=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head1
%l0.h1.mask = causal_mask(%l0.h1.scale) {head=1, layer=0, q_offset=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head1
%l0.h1.softmax = softmax(%l0.h1.mask) {head=1, layer=0} : ufixed<17,16>[4,4]  # test:tiny/layer0/head1
%l0.h1.pv = matmul_pv(%l0.h1.softmax, %l0.kv0.load_v) {head=1, kv_head=0, layer=0} : fixed<12,0>[4,4]  # test:tiny/layer0/head1
%l0.concat = head_concat(%l0.h0.pv, %l0.h1.pv) {heads=[0, 1], layer=0} : fixed<12,0>[4,8]  # test:tiny/layer0
%l0.token_importance = token_importance(%l0.h0.softmax, %l0.h1.softmax) {chained=false, decay_shift=0, fresh=false, heads=[0, 1], layer=0, observation_window=0, per_kv_head=false} : ufixed<64,16>[4]  # test:tiny/layer0 | insert-token-pruning
%l0.token_select = token_select(%l0.token_importance) {by_recency=false, keep=0.75, keep_first=0, keep_recent=0, layer=0, own_layer=false, per_kv_head=false} : ufixed<1,0>[4]  # test:tiny/layer0 | insert-token-pruning
%l1.kv0.load_k = load_k(%l0.token_select) {bits=12, gates=[tokens], head_dim=4, kv_head=0, layer=1, msb_bits=8, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer1/kv_head0 | assign-quant-types | insert-token-pruning
%l1.kv0.load_v = load_v(%l0.token_select) {bits=12, gates=[tokens], head_dim=4, kv_head=0, layer=1, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer1/kv_head0 | assign-quant-types | insert-token-pruning
%l1.h0.load_q = load_q(%l0.token_select) {bits=12, gates=[tokens], head=0, head_dim=4, layer=1, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer1/head0 | assign-quant-types | insert-token-pruning
%l1.h0.qk = matmul_qk(%l1.h0.load_q, %l1.kv0.load_k) {head=0, kv_head=0, layer=1} : fixed<25,0>[4,4]  # test:tiny/layer1/head0
%l1.h0.scale = scale(%l1.h0.qk) {factor=0.5, head=0, layer=1} : fixed<24,10>[4,4]  # test:tiny/layer1/head0
%l1.h0.mask = causal_mask(%l1.h0.scale) {head=0, layer=1, q_offset=0} : fixed<24,10>[4,4]  # test:tiny/layer1/head0
%l1.h0.softmax = softmax(%l1.h0.mask) {head=0, layer=1} : ufixed<17,16>[4,4]  # test:tiny/layer1/head0
%l1.h0.pv = matmul_pv(%l1.h0.softmax, %l1.kv0.load_v) {head=0, kv_head=0, layer=1} : fixed<12,0>[4,4]  # test:tiny/layer1/head0
%l1.h1.load_q = load_q(%l0.token_select) {bits=12, gates=[tokens], head=1, head_dim=4, layer=1, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer1/head1 | assign-quant-types | insert-token-pruning
%l1.h1.qk = matmul_qk(%l1.h1.load_q, %l1.kv0.load_k) {head=1, kv_head=0, layer=1} : fixed<25,0>[4,4]  # test:tiny/layer1/head1
%l1.h1.scale = scale(%l1.h1.qk) {factor=0.5, head=1, layer=1} : fixed<24,10>[4,4]  # test:tiny/layer1/head1
%l1.h1.mask = causal_mask(%l1.h1.scale) {head=1, layer=1, q_offset=0} : fixed<24,10>[4,4]  # test:tiny/layer1/head1
%l1.h1.softmax = softmax(%l1.h1.mask) {head=1, layer=1} : ufixed<17,16>[4,4]  # test:tiny/layer1/head1
%l1.h1.pv = matmul_pv(%l1.h1.softmax, %l1.kv0.load_v) {head=1, kv_head=0, layer=1} : fixed<12,0>[4,4]  # test:tiny/layer1/head1
%l1.concat = head_concat(%l1.h0.pv, %l1.h1.pv) {heads=[0, 1], layer=1} : fixed<12,0>[4,8]  # test:tiny/layer1
%l1.token_importance = token_importance(%l1.h0.softmax, %l1.h1.softmax, %l0.token_importance) {chained=true, decay_shift=0, fresh=false, heads=[0, 1], layer=1, observation_window=0, per_kv_head=false} : ufixed<64,16>[4]  # test:tiny/layer1 | insert-token-pruning
%l1.token_select = token_select(%l1.token_importance) {by_recency=false, keep=0.25, keep_first=0, keep_recent=0, layer=1, own_layer=false, per_kv_head=false} : ufixed<1,0>[4]  # test:tiny/layer1 | insert-token-pruning
"""  # noqa: E501


# Head pruning, 2 layers, keep 0.5 of 2 heads: floor(1.5) = 1 and max(1, floor(0.5)) = 1;
# importance reads each head's prob.V output; layer-1 loads are gated by l0.head_select.

HEAD_PRUNED = """\
// spatten-ir model=tiny family=gpt2 stage=summarization layers=2 heads=2 kv_heads=1 head_dim=4 seq_len=4 gen_tokens=32 causal=true
// properties: dense, head-pruned, typed
%l0.kv0.load_k = load_k() {bits=12, gates=[], head_dim=4, kv_head=0, layer=0, msb_bits=8, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/kv_head0 | assign-quant-types
%l0.kv0.load_v = load_v() {bits=12, gates=[], head_dim=4, kv_head=0, layer=0, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/kv_head0 | assign-quant-types
%l0.h0.load_q = load_q() {bits=12, gates=[], head=0, head_dim=4, layer=0, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/head0 | assign-quant-types
%l0.h0.qk = matmul_qk(%l0.h0.load_q, %l0.kv0.load_k) {head=0, kv_head=0, layer=0} : fixed<25,0>[4,4]  # test:tiny/layer0/head0
%l0.h0.scale = scale(%l0.h0.qk) {factor=0.5, head=0, layer=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head0
%l0.h0.mask = causal_mask(%l0.h0.scale) {head=0, layer=0, q_offset=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head0
%l0.h0.softmax = softmax(%l0.h0.mask) {head=0, layer=0} : ufixed<17,16>[4,4]  # test:tiny/layer0/head0
%l0.h0.pv = matmul_pv(%l0.h0.softmax, %l0.kv0.load_v) {head=0, kv_head=0, layer=0} : fixed<12,0>[4,4]  # test:tiny/layer0/head0
%l0.h1.load_q = load_q() {bits=12, gates=[], head=1, head_dim=4, layer=0, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/head1 | assign-quant-types
%l0.h1.qk = matmul_qk(%l0.h1.load_q, %l0.kv0.load_k) {head=1, kv_head=0, layer=0} : fixed<25,0>[4,4]  # test:tiny/layer0/head1
%l0.h1.scale = scale(%l0.h1.qk) {factor=0.5, head=1, layer=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head1
%l0.h1.mask = causal_mask(%l0.h1.scale) {head=1, layer=0, q_offset=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head1
%l0.h1.softmax = softmax(%l0.h1.mask) {head=1, layer=0} : ufixed<17,16>[4,4]  # test:tiny/layer0/head1
%l0.h1.pv = matmul_pv(%l0.h1.softmax, %l0.kv0.load_v) {head=1, kv_head=0, layer=0} : fixed<12,0>[4,4]  # test:tiny/layer0/head1
%l0.concat = head_concat(%l0.h0.pv, %l0.h1.pv) {heads=[0, 1], layer=0} : fixed<12,0>[4,8]  # test:tiny/layer0
%l0.head_importance = head_importance(%l0.h0.pv, %l0.h1.pv) {chained=false, heads=[0, 1], layer=0, num_heads=2} : ufixed<64,16>[2]  # test:tiny/layer0 | insert-head-pruning
%l0.head_select = head_select(%l0.head_importance) {keep=1, layer=0} : ufixed<1,0>[2]  # test:tiny/layer0 | insert-head-pruning
%l1.kv0.load_k = load_k(%l0.head_select) {bits=12, gates=[heads], head_dim=4, kv_head=0, layer=1, msb_bits=8, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer1/kv_head0 | assign-quant-types | insert-head-pruning
%l1.kv0.load_v = load_v(%l0.head_select) {bits=12, gates=[heads], head_dim=4, kv_head=0, layer=1, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer1/kv_head0 | assign-quant-types | insert-head-pruning
%l1.h0.load_q = load_q(%l0.head_select) {bits=12, gates=[heads], head=0, head_dim=4, layer=1, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer1/head0 | assign-quant-types | insert-head-pruning
%l1.h0.qk = matmul_qk(%l1.h0.load_q, %l1.kv0.load_k) {head=0, kv_head=0, layer=1} : fixed<25,0>[4,4]  # test:tiny/layer1/head0
%l1.h0.scale = scale(%l1.h0.qk) {factor=0.5, head=0, layer=1} : fixed<24,10>[4,4]  # test:tiny/layer1/head0
%l1.h0.mask = causal_mask(%l1.h0.scale) {head=0, layer=1, q_offset=0} : fixed<24,10>[4,4]  # test:tiny/layer1/head0
%l1.h0.softmax = softmax(%l1.h0.mask) {head=0, layer=1} : ufixed<17,16>[4,4]  # test:tiny/layer1/head0
%l1.h0.pv = matmul_pv(%l1.h0.softmax, %l1.kv0.load_v) {head=0, kv_head=0, layer=1} : fixed<12,0>[4,4]  # test:tiny/layer1/head0
%l1.h1.load_q = load_q(%l0.head_select) {bits=12, gates=[heads], head=1, head_dim=4, layer=1, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer1/head1 | assign-quant-types | insert-head-pruning
%l1.h1.qk = matmul_qk(%l1.h1.load_q, %l1.kv0.load_k) {head=1, kv_head=0, layer=1} : fixed<25,0>[4,4]  # test:tiny/layer1/head1
%l1.h1.scale = scale(%l1.h1.qk) {factor=0.5, head=1, layer=1} : fixed<24,10>[4,4]  # test:tiny/layer1/head1
%l1.h1.mask = causal_mask(%l1.h1.scale) {head=1, layer=1, q_offset=0} : fixed<24,10>[4,4]  # test:tiny/layer1/head1
%l1.h1.softmax = softmax(%l1.h1.mask) {head=1, layer=1} : ufixed<17,16>[4,4]  # test:tiny/layer1/head1
%l1.h1.pv = matmul_pv(%l1.h1.softmax, %l1.kv0.load_v) {head=1, kv_head=0, layer=1} : fixed<12,0>[4,4]  # test:tiny/layer1/head1
%l1.concat = head_concat(%l1.h0.pv, %l1.h1.pv) {heads=[0, 1], layer=1} : fixed<12,0>[4,8]  # test:tiny/layer1
%l1.head_importance = head_importance(%l1.h0.pv, %l1.h1.pv, %l0.head_importance) {chained=true, heads=[0, 1], layer=1, num_heads=2} : ufixed<64,16>[2]  # test:tiny/layer1 | insert-head-pruning
%l1.head_select = head_select(%l1.head_importance) {keep=1, layer=1} : ufixed<1,0>[2]  # test:tiny/layer1 | insert-head-pruning
"""  # noqa: E501


# Value pruning, 1 layer: a value_topk between every softmax and its matmul_pv.

VALUE_PRUNED = """\
// spatten-ir model=tiny family=gpt2 stage=summarization layers=1 heads=2 kv_heads=1 head_dim=4 seq_len=4 gen_tokens=32 causal=true
// properties: dense, typed, value-pruned
%l0.kv0.load_k = load_k() {bits=12, gates=[], head_dim=4, kv_head=0, layer=0, msb_bits=8, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/kv_head0 | assign-quant-types
%l0.kv0.load_v = load_v() {bits=12, gates=[], head_dim=4, kv_head=0, layer=0, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/kv_head0 | assign-quant-types
%l0.h0.load_q = load_q() {bits=12, gates=[], head=0, head_dim=4, layer=0, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/head0 | assign-quant-types
%l0.h0.qk = matmul_qk(%l0.h0.load_q, %l0.kv0.load_k) {head=0, kv_head=0, layer=0} : fixed<25,0>[4,4]  # test:tiny/layer0/head0
%l0.h0.scale = scale(%l0.h0.qk) {factor=0.5, head=0, layer=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head0
%l0.h0.mask = causal_mask(%l0.h0.scale) {head=0, layer=0, q_offset=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head0
%l0.h0.softmax = softmax(%l0.h0.mask) {head=0, layer=0} : ufixed<17,16>[4,4]  # test:tiny/layer0/head0
%l0.h0.value_topk = value_topk(%l0.h0.softmax) {head=0, keep=0.5, layer=0} : ufixed<17,16>[4,4]  # test:tiny/layer0/head0 | insert-value-pruning
%l0.h0.pv = matmul_pv(%l0.h0.value_topk, %l0.kv0.load_v) {head=0, kv_head=0, layer=0} : fixed<12,0>[4,4]  # test:tiny/layer0/head0
%l0.h1.load_q = load_q() {bits=12, gates=[], head=1, head_dim=4, layer=0, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/head1 | assign-quant-types
%l0.h1.qk = matmul_qk(%l0.h1.load_q, %l0.kv0.load_k) {head=1, kv_head=0, layer=0} : fixed<25,0>[4,4]  # test:tiny/layer0/head1
%l0.h1.scale = scale(%l0.h1.qk) {factor=0.5, head=1, layer=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head1
%l0.h1.mask = causal_mask(%l0.h1.scale) {head=1, layer=0, q_offset=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head1
%l0.h1.softmax = softmax(%l0.h1.mask) {head=1, layer=0} : ufixed<17,16>[4,4]  # test:tiny/layer0/head1
%l0.h1.value_topk = value_topk(%l0.h1.softmax) {head=1, keep=0.5, layer=0} : ufixed<17,16>[4,4]  # test:tiny/layer0/head1 | insert-value-pruning
%l0.h1.pv = matmul_pv(%l0.h1.value_topk, %l0.kv0.load_v) {head=1, kv_head=0, layer=0} : fixed<12,0>[4,4]  # test:tiny/layer0/head1
%l0.concat = head_concat(%l0.h0.pv, %l0.h1.pv) {heads=[0, 1], layer=0} : fixed<12,0>[4,8]  # test:tiny/layer0
"""  # noqa: E501


# Progressive quantization 6+4 bits: K splits into a 6-bit MSB plane (widened to 10 bits) and
# a 4-bit LSB plane; Q.K reads the MSB plane; requant(softmax, Q, K msb, K lsb) feeds prob.V.

PROGRESSIVE = """\
// spatten-ir model=tiny family=gpt2 stage=summarization layers=1 heads=2 kv_heads=1 head_dim=4 seq_len=4 gen_tokens=32 causal=true
// properties: dense, k-planes, typed
%l0.kv0.load_k_lsb = load_k_lsb() {bits=4, gates=[], head_dim=4, kv_head=0, layer=0, tokens=4} : ufixed<4,0>[4,4]  # test:tiny/layer0/kv_head0 | assign-quant-types | split-progressive-quant
%l0.kv0.load_k_msb = load_k_msb() {bits=6, gates=[], head_dim=4, kv_head=0, layer=0, lsb_bits=4, tokens=4} : fixed<10,0>[4,4]  # test:tiny/layer0/kv_head0 | assign-quant-types | split-progressive-quant
%l0.kv0.load_v = load_v() {bits=12, gates=[], head_dim=4, kv_head=0, layer=0, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/kv_head0 | assign-quant-types
%l0.h0.load_q = load_q() {bits=12, gates=[], head=0, head_dim=4, layer=0, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/head0 | assign-quant-types
%l0.h0.qk = matmul_qk(%l0.h0.load_q, %l0.kv0.load_k_msb) {head=0, kv_head=0, layer=0} : fixed<23,0>[4,4]  # test:tiny/layer0/head0
%l0.h0.scale = scale(%l0.h0.qk) {factor=0.5, head=0, layer=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head0
%l0.h0.mask = causal_mask(%l0.h0.scale) {head=0, layer=0, q_offset=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head0
%l0.h0.softmax = softmax(%l0.h0.mask) {head=0, layer=0} : ufixed<17,16>[4,4]  # test:tiny/layer0/head0
%l0.h0.requant = requant(%l0.h0.softmax, %l0.h0.load_q, %l0.kv0.load_k_msb, %l0.kv0.load_k_lsb) {causal=true, factor=0.5, head=0, kv_head=0, layer=0, threshold=0.05} : ufixed<17,16>[4,4]  # test:tiny/layer0/head0 | split-progressive-quant
%l0.h0.pv = matmul_pv(%l0.h0.requant, %l0.kv0.load_v) {head=0, kv_head=0, layer=0} : fixed<12,0>[4,4]  # test:tiny/layer0/head0
%l0.h1.load_q = load_q() {bits=12, gates=[], head=1, head_dim=4, layer=0, tokens=4} : fixed<12,0>[4,4]  # test:tiny/layer0/head1 | assign-quant-types
%l0.h1.qk = matmul_qk(%l0.h1.load_q, %l0.kv0.load_k_msb) {head=1, kv_head=0, layer=0} : fixed<23,0>[4,4]  # test:tiny/layer0/head1
%l0.h1.scale = scale(%l0.h1.qk) {factor=0.5, head=1, layer=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head1
%l0.h1.mask = causal_mask(%l0.h1.scale) {head=1, layer=0, q_offset=0} : fixed<24,10>[4,4]  # test:tiny/layer0/head1
%l0.h1.softmax = softmax(%l0.h1.mask) {head=1, layer=0} : ufixed<17,16>[4,4]  # test:tiny/layer0/head1
%l0.h1.requant = requant(%l0.h1.softmax, %l0.h1.load_q, %l0.kv0.load_k_msb, %l0.kv0.load_k_lsb) {causal=true, factor=0.5, head=1, kv_head=0, layer=0, threshold=0.05} : ufixed<17,16>[4,4]  # test:tiny/layer0/head1 | split-progressive-quant
%l0.h1.pv = matmul_pv(%l0.h1.requant, %l0.kv0.load_v) {head=1, kv_head=0, layer=0} : fixed<12,0>[4,4]  # test:tiny/layer0/head1
%l0.concat = head_concat(%l0.h0.pv, %l0.h1.pv) {heads=[0, 1], layer=0} : fixed<12,0>[4,8]  # test:tiny/layer0
"""  # noqa: E501


# -- inline expected text ---------------------------------------------------------------------


def test_token_pruning_text():
    assert print_ir(run(tiny(2), config(**TOKEN), ["insert-token-pruning"])) == TOKEN_PRUNED


def test_head_pruning_text():
    assert print_ir(run(tiny(2), config(**HEAD), ["insert-head-pruning"])) == HEAD_PRUNED


def test_value_pruning_text():
    assert print_ir(run(tiny(1), config(**VALUE), ["insert-value-pruning"])) == VALUE_PRUNED


def test_progressive_quant_text():
    assert print_ir(run(tiny(1), config(**PROG), ["split-progressive-quant"])) == PROGRESSIVE


def test_printing_is_deterministic():
    a = print_ir(run(tiny(2), config(**ALL), DEFAULT_PIPELINE[1:]))
    b = print_ir(run(tiny(2), config(**ALL), DEFAULT_PIPELINE[1:]))
    assert a == b


# -- disabled techniques are no-ops -----------------------------------------------------------

PASS_FNS = {
    "insert-token-pruning": insert_token_pruning,
    "insert-head-pruning": insert_head_pruning,
    "insert-value-pruning": insert_value_pruning,
    "split-progressive-quant": split_progressive_quant,
}
DISABLED = {
    "token_pruning": {"enabled": False, "keep": 0.1, "skip_first": 0.0},
    "head_pruning": {"enabled": False, "keep": 0.1, "skip_first": 0.0},
    "value_pruning": {"enabled": False, "keep": 0.1},
    "quantization": {"progressive": False, "k_msb_bits": 6, "k_lsb_bits": 4},
}


@pytest.mark.parametrize("name", sorted(PASS_FNS))
def test_disabled_pass_leaves_graph_unchanged(name):
    cfg = config(**DISABLED)
    g = typed(tiny(2), cfg)
    before = print_ir(g)
    assert print_ir(PASS_FNS[name](g.copy(), cfg)) == before
    # through the manager only the properties header may change
    after = print_ir(run_pipeline(g, cfg, [name]))
    assert body(after) == body(before)


def test_all_disabled_pipeline_matches_typed_graph():
    cfg = config(**DISABLED)
    spatten_passes = [p for p in DEFAULT_PIPELINE[1:] if p not in ("tile", "lower-to-engines")]
    assert body(print_ir(run(tiny(2), cfg, spatten_passes))) == body(print_ir(typed(tiny(2), cfg)))


# -- token pruning ----------------------------------------------------------------------------


def test_token_importance_per_layer_chained():
    g = run(tiny(3), config(**TOKEN), ["insert-token-pruning"])
    imps = of_kind(g, TokenImportance)
    assert imps == ["l0.token_importance", "l1.token_importance", "l2.token_importance"]
    for layer, imp in enumerate(imps):
        op = g.op(imp)
        assert op.layer == layer and op.heads == (0, 1)
        assert op.chained == (layer > 0)
        operands = g.operands(imp)
        assert operands[:2] == [f"l{layer}.h0.softmax", f"l{layer}.h1.softmax"]
        assert operands[2:] == ([imps[layer - 1]] if layer else [])


def test_token_select_only_where_count_below_context():
    """keep_per_layer 1.0, 0.5, 0.5 of 4 tokens: layer 0 keeps all, so only l1 and l2 select;
    layer 1 loads are ungated, layer 2 loads are gated by l1's selection."""
    cfg = config(token_pruning={"enabled": True, "keep_per_layer": [1.0, 0.5, 0.5]})
    g = run(tiny(3), cfg, ["insert-token-pruning"])
    selects = of_kind(g, TokenSelect)
    assert selects == ["l1.token_select", "l2.token_select"]
    assert [g.op(s).kept(g.info.seq_len) for s in selects] == [2, 2]
    for load in of_kind(g, LoadOp):
        op = g.op(load)
        if op.layer <= 1:
            assert op.gates == () and g.operands(load) == [], load
        else:
            assert op.gates == ("tokens",) and g.operands(load) == ["l1.token_select"], load


def test_later_layers_gated_by_latest_select():
    cfg = config(
        token_pruning={
            "enabled": True,
            "keep_per_layer": [0.75, 0.5, 0.25, 0.25],
            "keep_first": 1,
            "keep_recent": 2,
        }
    )
    g = run(tiny(4, heads=4, kv_heads=2), cfg, ["insert-token-pruning"])
    selects = of_kind(g, TokenSelect)
    assert selects == [f"l{i}.token_select" for i in range(4)]
    assert [g.op(s).kept(g.info.seq_len) for s in selects] == [3, 2, 1, 1]
    assert all(g.op(s).keep_first == 1 and g.op(s).keep_recent == 2 for s in selects)
    loads = of_kind(g, LoadOp)
    assert {type(g.op(n)) for n in loads} == {LoadQ, LoadK, LoadV}
    for load in loads:
        op = g.op(load)
        expected = [f"l{op.layer - 1}.token_select"] if op.layer else []
        assert g.operands(load) == expected, load
        assert op.gates == (("tokens",) if op.layer else ())


def test_token_counts_relative_to_the_current_context():
    """In generation a selection keeps floor(end * keep) of the `end` tokens so far, at every
    step (the first steps prune too)."""
    cfg = config_from_dict(
        {
            "model": {"seq_len": 4, "stage": "generation", "gen_tokens": 4},
            "token_pruning": {"enabled": True, "keep_per_layer": [0.5]},
        }
    )
    g = run(tiny(1), cfg, ["insert-token-pruning"])
    assert g.info.context == 8
    (select,) = of_kind(g, TokenSelect)
    assert [g.op(select).kept(end) for end in range(5, 9)] == [2, 3, 3, 4]


def test_token_importance_reads_requant_when_progressive():
    g = run(tiny(2), config(**ALL), DEFAULT_PIPELINE[1:])
    for imp in of_kind(g, TokenImportance):
        layer = g.op(imp).layer
        assert g.operands(imp)[:2] == [f"l{layer}.h0.requant", f"l{layer}.h1.requant"]


# -- head pruning -----------------------------------------------------------------------------


def test_head_pruning_with_skip_first():
    """4 layers, skip 0.30 -> ceil(1.2) = 2 unpruned layers; keep 0.5 of 4 heads ramps
    0.75, 0.25 -> 3, 1 heads; loads of layer 3 are gated by l2's head_select."""
    cfg = config(head_pruning={"enabled": True, "keep": 0.5, "skip_first": 0.30})
    g = run(tiny(4, heads=4, kv_heads=2), cfg, ["insert-head-pruning"])
    imps = of_kind(g, HeadImportance)
    assert imps == [f"l{i}.head_importance" for i in range(4)]
    for layer, imp in enumerate(imps):
        op = g.op(imp)
        assert op.num_heads == 4 and op.heads == (0, 1, 2, 3) and op.chained == (layer > 0)
        operands = g.operands(imp)
        assert operands[:4] == [f"l{layer}.h{h}.pv" for h in range(4)]
        assert operands[4:] == ([imps[layer - 1]] if layer else [])
        assert all(isinstance(g.op(o), MatMulPV) for o in operands[:4])
    selects = of_kind(g, HeadSelect)
    assert selects == ["l2.head_select", "l3.head_select"]
    assert [g.op(s).keep for s in selects] == [3, 1]
    for load in of_kind(g, LoadOp):
        op = g.op(load)
        if op.layer <= 2:
            assert op.gates == () and g.operands(load) == [], load
        else:
            assert op.gates == ("heads",) and g.operands(load) == ["l2.head_select"], load


def test_both_gates_in_port_order():
    """Token pruning runs first, so a load's operands are (token_select, head_select)."""
    g = run(tiny(2), config(**TOKEN, **HEAD), ["insert-token-pruning", "insert-head-pruning"])
    for load in of_kind(g, LoadOp):
        op = g.op(load)
        if op.layer == 1:
            assert op.gates == ("tokens", "heads")
            assert g.operands(load) == ["l0.token_select", "l0.head_select"]


# -- value pruning ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "passes",
    [
        DEFAULT_PIPELINE[1:],
        ("insert-value-pruning", "insert-token-pruning"),  # the other order: same wiring
    ],
)
def test_value_topk_before_every_pv(passes):
    sections = {**TOKEN, **VALUE, "value_pruning": {"enabled": True, "keep": 0.25}}
    g = run(tiny(2, heads=4, kv_heads=2), config(**sections), passes)
    pvs = of_kind(g, MatMulPV)
    assert len(pvs) == 8
    for pv in pvs:
        probs, v = g.operands(pv)
        assert isinstance(g.op(probs), ValueTopK)
        assert g.op(probs).keep == 0.25 and g.op(probs).head == g.op(pv).head
        assert isinstance(g.op(v), LoadV)
        assert isinstance(g.op(g.operands(probs)[0]), Softmax)
    for imp in of_kind(g, TokenImportance):
        for src in g.operands(imp)[:4]:
            assert isinstance(g.op(src), Softmax)
    assert not any(
        isinstance(g.op(u), ValueTopK) for n in of_kind(g, TokenImportance) for u in g.users(n)
    )


def test_value_topk_reads_requant_when_progressive():
    g = run(tiny(1), config(**VALUE, **PROG), ["split-progressive-quant", "insert-value-pruning"])
    for vt in of_kind(g, ValueTopK):
        assert isinstance(g.op(g.operands(vt)[0]), Requant)
        assert [g.op(u).KIND for u in g.users(vt)] == ["matmul_pv"]


# -- progressive quantization -----------------------------------------------------------------


def test_progressive_planes_and_requant():
    g = run(tiny(2, heads=4, kv_heads=2), config(**PROG), ["split-progressive-quant"])
    assert of_kind(g, LoadK) == []
    msbs, lsbs = of_kind(g, LoadKMsb), of_kind(g, LoadKLsb)
    assert len(msbs) == len(lsbs) == 4
    assert all(g.op(n).bits == 6 and g.op(n).lsb_bits == 4 for n in msbs)
    assert all(g.op(n).bits == 4 for n in lsbs)
    assert str(g.output_type(msbs[0])) == "fixed<10,0>[4,4]"
    assert str(g.output_type(lsbs[0])) == "ufixed<4,0>[4,4]"
    for qk in of_kind(g, MatMulQK):
        op = g.op(qk)
        assert g.operands(qk) == [
            f"l{op.layer}.h{op.head}.load_q",
            f"l{op.layer}.kv{op.kv_head}.load_k_msb",
        ]
    softmaxes = of_kind(g, Softmax)
    assert len(softmaxes) == 8
    for sm in softmaxes:
        op = g.op(sm)
        (requant,) = g.users(sm)
        assert requant == f"l{op.layer}.h{op.head}.requant"
        rq = g.op(requant)
        assert isinstance(rq, Requant) and rq.threshold == 0.05 and rq.causal
        assert rq.kv_head == op.head // 2 and rq.factor == 0.5
        p, kv = f"l{op.layer}.h{op.head}", f"l{op.layer}.kv{op.head // 2}"
        assert g.operands(requant) == [sm, f"{p}.load_q", f"{kv}.load_k_msb", f"{kv}.load_k_lsb"]
        assert g.users(requant) == [f"{p}.pv"]


def test_progressive_non_causal_requant():
    spec = dataclasses.replace(tiny(1), family="bert", causal=False)
    g = run(spec, config(**PROG), ["split-progressive-quant"])
    assert all(not g.op(n).causal for n in of_kind(g, Requant))


def structure(g):
    """Ops and port-labelled edges, origins ignored."""
    return (
        {n: g.op(n) for n in g.nx_graph.nodes},
        {(u, v, d["port"], str(d["tensor"])) for u, v, d in g.nx_graph.edges(data=True)},
    )


def test_split_after_token_pruning_same_graph():
    """Split after pruning: both K planes inherit the load_k gate and token importance reads
    the requantized probabilities, exactly as in the default order."""
    cfg = config(**TOKEN, **PROG)
    late = run(tiny(2), cfg, ["insert-token-pruning", "split-progressive-quant"])
    early = run(tiny(2), cfg, ["split-progressive-quant", "insert-token-pruning"])
    for plane in ("load_k_msb", "load_k_lsb"):
        op = late.op(f"l1.kv0.{plane}")
        assert op.gates == ("tokens",)
        assert late.operands(f"l1.kv0.{plane}") == ["l0.token_select"]
    assert late.op("l0.kv0.load_k_msb").gates == ()
    assert late.operands("l1.token_importance") == [
        "l1.h0.requant",
        "l1.h1.requant",
        "l0.token_importance",
    ]
    assert late.users("l1.h0.softmax") == ["l1.h0.requant"]
    assert structure(late) == structure(early)


def test_default_pipeline_gates_both_planes():
    g = run(tiny(2), config(**ALL), DEFAULT_PIPELINE[1:])
    for plane in ("load_k_msb", "load_k_lsb"):
        assert g.operands(f"l1.kv0.{plane}") == ["l0.token_select", "l0.head_select"]


# -- purity -----------------------------------------------------------------------------------


def test_caller_graph_unchanged_by_run_pipeline():
    cfg = config(**ALL)
    g = build_attention_graph(tiny(2), cfg)
    text, doc = print_ir(g), to_json(g)
    nodes = {n: dict(d) for n, d in g.nx_graph.nodes(data=True)}
    out = run_pipeline(g, cfg, DEFAULT_PIPELINE)
    assert print_ir(g) == text and to_json(g) == doc
    assert {n: dict(d) for n, d in g.nx_graph.nodes(data=True)} == nodes
    assert g.properties == frozenset({"dense"})
    assert print_ir(out) != text


# -- command line -----------------------------------------------------------------------------

INSERTED_KINDS = (
    "token_importance",
    "token_select",
    "head_importance",
    "head_select",
    "value_topk",
    "load_k_msb",
    "load_k_lsb",
    "requant",
)


def write_config(tmp_path, token=False, head=False, value=False, progressive=False):
    path = tmp_path / "spatten.toml"
    path.write_text(
        "[model]\nseq_len = 16\n"
        f"[token_pruning]\nenabled = {str(token).lower()}\n"
        f"[head_pruning]\nenabled = {str(head).lower()}\n"
        f"[value_pruning]\nenabled = {str(value).lower()}\n"
        f"[quantization]\nprogressive = {str(progressive).lower()}\n",
        encoding="utf-8",
    )
    return path


def kinds_of(text: str) -> set[str]:
    return set(re.findall(r"^%\S+ = (\w+)\(", text, flags=re.MULTILINE))


def test_cli_ir_after_all_shows_inserted_kinds(tmp_path, capsys):
    cfg = write_config(tmp_path, True, True, True, True)
    assert main(["ir", "gpt2-small", "--config", str(cfg), "--after", "all"]) == 0
    text = capsys.readouterr().out
    kinds = kinds_of(text)
    assert set(INSERTED_KINDS) <= kinds
    assert "load_k" not in kinds
    # GPT-2 Small: 12 layers x 12 heads, token skip ceil(1.8) = 2, head skip ceil(3.6) = 4
    # and head keep 0.9 starts its ramp at 1.0 (no select in layer 4)
    assert text.count(" = token_select(") == 10
    assert text.count(" = head_select(") == 7
    assert text.count(" = requant(") == text.count(" = value_topk(") == 144


def test_cli_ir_dense_has_none(tmp_path, capsys):
    cfg = write_config(tmp_path)
    assert main(["ir", "gpt2-small", "--config", str(cfg), "--after", "all"]) == 0
    kinds = kinds_of(capsys.readouterr().out)
    assert not kinds & set(INSERTED_KINDS)
    assert "load_k" in kinds


TECHNIQUE_OF_PASS = {
    "split-progressive-quant": "progressive",
    "insert-token-pruning": "token",
    "insert-value-pruning": "value",
    "insert-head-pruning": "head",
    "tile": "always",  # annotates the K/V fetches with their tiles
    "lower-to-engines": "always",  # annotates every node with its engine
}


@pytest.mark.parametrize(
    "enabled",
    [
        (),
        ("token",),
        ("head",),
        ("value",),
        ("progressive",),
        ("token", "head", "value", "progressive"),
        ("token", "value"),
    ],
)
def test_dump_ir_after_all(tmp_path, capsys, enabled):
    cfg = write_config(tmp_path, **{t: True for t in enabled})
    dump = tmp_path / "dump"
    assert (
        main(
            [
                "ir",
                "gpt2-small",
                "--config",
                str(cfg),
                "--dump-ir-after-all",
                str(dump),
                "-o",
                str(tmp_path / "out.txt"),
            ]
        )
        == 0
    )
    files = sorted(p.name for p in dump.iterdir())
    assert files == ["00-input.ir.txt"] + [
        f"{i:02d}-{name}.ir.txt" for i, name in enumerate(DEFAULT_PIPELINE, 1)
    ]
    texts = [(dump / f).read_text(encoding="utf-8") for f in files]
    assert texts[-1] == (tmp_path / "out.txt").read_text(encoding="utf-8")
    assert body(texts[1]) != body(texts[0])  # assign-quant-types always changes the graph
    for i, name in enumerate(DEFAULT_PIPELINE[1:], start=2):
        changed = body(texts[i]) != body(texts[i - 1])
        expected = TECHNIQUE_OF_PASS[name] == "always" or TECHNIQUE_OF_PASS[name] in enabled
        assert changed == expected, name


# -- the verifier -----------------------------------------------------------------------------


def gate(g, load: str, kind: str, src: str) -> None:
    op = g.op(load)
    g.set_op(load, dataclasses.replace(op, gates=(*op.gates, kind)))
    g.add_edge(src, load, len(op.gates))
    g.retype()


def test_verifier_rejects_gate_from_later_layer():
    g = run(tiny(2), config(**TOKEN), ["insert-token-pruning"])
    # load_v does not feed the probabilities, so this edge makes no cycle
    gate(g, "l0.kv0.load_v", "tokens", "l1.token_select")
    with pytest.raises(IRVerificationError, match=r"l0\.kv0\.load_v.*layer 1, not earlier"):
        verify(g)


def test_verifier_rejects_gate_from_same_layer():
    g = run(tiny(2), config(**TOKEN), ["insert-token-pruning"])
    gate(g, "l1.kv0.load_v", "tokens", "l1.token_select")
    with pytest.raises(IRVerificationError, match="not earlier"):
        verify(g)


def test_verifier_rejects_gate_of_wrong_kind():
    g = run(tiny(2), config(**TOKEN), ["insert-token-pruning"])
    op = g.op("l1.kv0.load_v")
    g.set_op("l1.kv0.load_v", dataclasses.replace(op, gates=("heads",)))
    g.retype()
    with pytest.raises(IRVerificationError, match="gate 'heads' must come from head_select"):
        verify(g)


def test_verifier_rejects_token_select_without_importance():
    g = run(tiny(2), config(**TOKEN), ["insert-token-pruning"])
    g.nx_graph.remove_edge("l0.token_importance", "l0.token_select")
    g.add_edge("l0.h0.softmax", "l0.token_select", 0)
    g.retype()
    with pytest.raises(
        IRVerificationError, match=r"l0\.token_select.*operand must be a token_importance"
    ):
        verify(g)


def test_verifier_rejects_head_select_without_importance():
    g = run(tiny(2), config(**TOKEN, **HEAD), ["insert-token-pruning", "insert-head-pruning"])
    g.nx_graph.remove_edge("l0.head_importance", "l0.head_select")
    g.add_edge("l0.token_importance", "l0.head_select", 0)
    g.retype()
    with pytest.raises(IRVerificationError, match="operand must be a head_importance"):
        verify(g)
