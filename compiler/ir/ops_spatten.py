"""Ops the SpAtten passes insert: importance accumulators, top-k selections, value top-k,
and the progressive-quantization K planes with their requantization decision.

Importance scores and selection state persist across layers and, in the generation stage,
across decode steps (the hardware keeps them in its accumulators / pruning-state memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

from spatten_hls.compiler.ir.ops import LoadOp, MatMulPV, Op, Softmax, register_op
from spatten_hls.compiler.ir.types import Fixed, TensorType, as_ratio
from spatten_hls.kernels.formats import probability_code

MASK = Fixed(1, 0, signed=False)
# Token importance: sums of UQ1.16 probabilities over queries, heads, layers and steps.
TOKEN_IMPORTANCE = Fixed(64, 16, signed=False)
# Head importance: sums of |output code| weighted by the head's relative V scale (UQ0.16).
HEAD_IMPORTANCE = Fixed(64, 16, signed=False)


def _probs_like(t: TensorType) -> bool:
    return t.dtype is None or (not t.dtype.signed and t.dtype.width > 1)


@register_op
@dataclass(frozen=True, kw_only=True)
class TokenImportance(Op):
    """s_t[j] += sum over heads and queries of prob[h][q][j] (operand i: head heads[i]).

    With `chained`, the last operand is the previous accumulation (an earlier layer's): the
    cascade's one score. `fresh`: the scores start from zero at every invocation (the
    "current" policy selects by this step's attention only). `decay_shift` s > 0: before this
    invocation adds, every score it sees loses floor(score / 2^s) (a per-layer score that
    forgets old steps, an exponential moving average in integers). `observation_window` N > 0:
    only the query rows at the last N positions of the sequence so far (end - N .. end - 1)
    add their attention (SnapKV's observation window; N = 1 is TOVA's last query); a decode
    step's one query always does.
    """

    KIND: ClassVar[str] = "token_importance"
    ARITY: ClassVar[int | None] = None
    CROSS_LAYER: ClassVar[bool] = True
    heads: tuple[int, ...]
    chained: bool
    fresh: bool = False
    per_kv_head: bool = False
    decay_shift: int = 0
    observation_window: int = 0

    def arity(self, connected: int) -> int:
        return len(self.heads) + int(self.chained)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        dtype = TOKEN_IMPORTANCE if all(t.dtype for t in inputs) else None
        return TensorType((inputs[0].shape[1],), dtype)

    def check(self, inputs: list[TensorType], operands: list[Op]) -> list[str]:
        problems = []
        for head, t, o in zip(self.heads, inputs, operands, strict=False):
            if getattr(o, "head", None) != head or not _probs_like(t):
                problems.append(f"operand for head {head} must be that head's probabilities")
        if self.chained and not isinstance(operands[-1], TokenImportance):
            problems.append("chained operand must be an earlier token_importance")
        if self.chained and self.fresh:
            problems.append("fresh scores cannot chain an earlier accumulation")
        if self.decay_shift and (self.chained or self.fresh):
            problems.append("only a layer's own accumulated scores decay")
        if not 0 <= self.decay_shift <= 16:
            problems.append(f"decay_shift {self.decay_shift} is outside [0, 16]")
        if self.observation_window < 0:
            problems.append(f"observation_window {self.observation_window} is negative")
        return problems


@register_op
@dataclass(frozen=True, kw_only=True)
class TokenSelect(Op):
    """Token selection after a layer: of the tokens the layer saw, keep
    `kept(end)` = max(1, floor(end * keep)) (end: the sequence length so far; `keep` as an
    exact ratio), the protected ones always: `keep_first` leading tokens (attention sinks),
    `keep_recent` most recent ones and, in generation, the step's own token.

    `by_recency` (the "window" policy) keeps the most recent of the others (the scores are
    accumulated but not consulted); otherwise the top-k engine keeps the most important by
    the operand's scores. `own_layer` (a per-layer policy of a decoder): the tokens leave this
    layer's KV cache only, for the later steps; otherwise (the cascade, and encoders) they are
    gone for every later layer, and for this layer in later steps. `per_kv_head` (with
    `own_layer`): each KV head of the layer selects its own tokens by its own scores, keeping
    `kept(end)` each.
    """

    KIND: ClassVar[str] = "token_select"
    ARITY: ClassVar[int | None] = 1
    keep: float
    keep_first: int
    keep_recent: int
    by_recency: bool = False
    own_layer: bool = False
    per_kv_head: bool = False

    @property
    def keep_ratio(self) -> Fraction:
        return as_ratio(self.keep)

    def kept(self, end: int) -> int:
        """Tokens kept when the sequence so far holds `end`, the protected ones among them
        (the selection keeps every protected token when they outnumber this)."""
        ratio = self.keep_ratio
        return max(1, end * ratio.numerator // ratio.denominator)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        return TensorType(inputs[0].shape, MASK if inputs[0].dtype else None)

    def check(self, inputs: list[TensorType], operands: list[Op]) -> list[str]:
        problems = [] if 0.0 < self.keep < 1.0 else [f"keep={self.keep} must lie in (0, 1)"]
        if not isinstance(operands[0], TokenImportance):
            problems.append("operand must be a token_importance")
        elif operands[0].per_kv_head != self.per_kv_head:
            problems.append("per-KV-head selection needs per-KV-head scores, and only it")
        if self.per_kv_head and not self.own_layer:
            problems.append("per-KV-head selection evicts from its own layer's cache only")
        return problems


@register_op
@dataclass(frozen=True, kw_only=True)
class HeadImportance(Op):
    """s_h[h] += sum over queries and dims of |E[h]| (operand i: matmul_pv of heads[i])."""

    KIND: ClassVar[str] = "head_importance"
    ARITY: ClassVar[int | None] = None
    CROSS_LAYER: ClassVar[bool] = True
    heads: tuple[int, ...]
    num_heads: int
    chained: bool

    def arity(self, connected: int) -> int:
        return len(self.heads) + int(self.chained)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        dtype = HEAD_IMPORTANCE if all(t.dtype for t in inputs) else None
        return TensorType((self.num_heads,), dtype)

    def check(self, inputs: list[TensorType], operands: list[Op]) -> list[str]:
        problems = []
        for head, o in zip(self.heads, operands, strict=False):
            if not isinstance(o, MatMulPV) or o.head != head:
                problems.append(f"operand for head {head} must be its matmul_pv")
        if self.chained and not isinstance(operands[-1], HeadImportance):
            problems.append("chained operand must be an earlier head_importance")
        return problems


@register_op
@dataclass(frozen=True, kw_only=True)
class HeadSelect(Op):
    """Top-k of the accumulated head importance after all heads of the layer: keep `keep`."""

    KIND: ClassVar[str] = "head_select"
    ARITY: ClassVar[int | None] = 1
    keep: int

    def infer(self, inputs: list[TensorType]) -> TensorType:
        return TensorType(inputs[0].shape, MASK if inputs[0].dtype else None)

    def check(self, inputs: list[TensorType], operands: list[Op]) -> list[str]:
        problems = [] if self.keep >= 1 else [f"keep={self.keep} must be >= 1"]
        if not isinstance(operands[0], HeadImportance):
            problems.append("operand must be a head_importance")
        return problems


@register_op
@dataclass(frozen=True, kw_only=True)
class ValueTopK(Op):
    """Local value pruning: per query row keep the floor(keep * visible) largest probabilities
    (at least 1; ties to the lower index), zero the rest, no renormalization."""

    KIND: ClassVar[str] = "value_topk"
    ARITY: ClassVar[int | None] = 1
    head: int
    keep: float

    @property
    def keep_ratio(self) -> Fraction:
        """`keep` as the exact ratio the engine multiplies by (numerator / denominator)."""
        return as_ratio(self.keep)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        return inputs[0]

    def check(self, inputs: list[TensorType], operands: list[Op]) -> list[str]:
        return [] if 0.0 < self.keep <= 1.0 else [f"keep={self.keep} outside (0, 1]"]


@register_op
@dataclass(frozen=True, kw_only=True)
class LoadKMsb(LoadOp):
    """Fetch the MSB plane of K (`bits` = MSB width) and widen it on chip: code = msb << lsb_bits
    (the bitwidth converter places the MSBs at the top of the word, LSBs zero)."""

    KIND: ClassVar[str] = "load_k_msb"
    MIN_BITS: ClassVar[int] = 1
    kv_head: int
    lsb_bits: int

    def infer(self, inputs: list[TensorType]) -> TensorType:
        dtype = Fixed(self.bits + self.lsb_bits, 0) if self.bits is not None else None
        return TensorType((self.tokens, self.head_dim), dtype)


@register_op
@dataclass(frozen=True, kw_only=True)
class LoadKLsb(LoadOp):
    """Fetch the LSB plane of K (`bits` unsigned bits per code), only for requantized rows."""

    KIND: ClassVar[str] = "load_k_lsb"
    MIN_BITS: ClassVar[int] = 1
    kv_head: int

    def infer(self, inputs: list[TensorType]) -> TensorType:
        dtype = Fixed(self.bits, 0, signed=False) if self.bits is not None else None
        return TensorType((self.tokens, self.head_dim), dtype)


@register_op
@dataclass(frozen=True, kw_only=True)
class Requant(Op):
    """Progressive quantization decision: rows whose max probability is below `threshold`
    are recomputed once with the full K (MSB plane + LSB plane), through the same Q·K,
    scale, mask and softmax arithmetic. Operands: MSB-only probabilities, Q, K MSB, K LSB."""

    KIND: ClassVar[str] = "requant"
    ARITY: ClassVar[int | None] = 4
    head: int
    kv_head: int
    threshold: float
    factor: float
    causal: bool

    @property
    def threshold_code(self) -> int:
        """The threshold as the probability code the decision compares a row's max with."""
        return probability_code(self.threshold)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        return inputs[0]

    def check(self, inputs: list[TensorType], operands: list[Op]) -> list[str]:
        problems = []
        kinds = [type(o).__name__ for o in operands]
        if (
            not isinstance(operands[0], Softmax)
            or not isinstance(operands[2], LoadKMsb)
            or not isinstance(operands[3], LoadKLsb)
        ):
            problems.append(
                f"operands must be softmax, load_q, load_k_msb, load_k_lsb; got {', '.join(kinds)}"
            )
        if not 0.0 < self.threshold <= 1.0:
            problems.append(f"threshold={self.threshold} outside (0, 1]")
        return problems
