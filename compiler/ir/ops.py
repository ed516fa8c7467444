"""Op kinds of the attention IR: one frozen dataclass per kind.

Each op knows its arity, how to infer its output type from its operand types (`infer`), and
its own invariants (`check`, returning a list of problems). Fixed-point result formats follow
the numerics contract in `kernels/formats.py` (docs/numerics.md), so the IR, the simulator and
the generated C++ agree on every width.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from spatten_hls.compiler.errors import brief
from spatten_hls.compiler.ir.types import Fixed, TensorType
from spatten_hls.kernels import formats

OP_KINDS: dict[str, type[Op]] = {}
MAX_ATTR_INT = 1 << 31  # no attribute (a count, an index, a width) is larger


def register_op(cls: type[Op]) -> type[Op]:
    OP_KINDS[cls.KIND] = cls
    return cls


@dataclass(frozen=True, kw_only=True)
class Op:
    """Base of all ops. `layer` is the transformer layer the op belongs to."""

    KIND: ClassVar[str] = "op"
    ARITY: ClassVar[int | None] = 0  # None: variadic, see `arity()`
    CROSS_LAYER: ClassVar[bool] = False  # may take operands from earlier layers

    layer: int

    def arity(self, connected: int) -> int:
        """Number of operands this op needs (`connected`: how many it has)."""
        return self.ARITY if self.ARITY is not None else max(connected, 1)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        raise NotImplementedError

    def check(self, inputs: list[TensorType], operands: list[Op]) -> list[str]:
        """Op-specific invariants beyond arity and type inference."""
        return []

    def attrs(self) -> dict[str, Any]:
        """Attributes for printing and serialization (sorted by name)."""
        return {
            f.name: _plain(getattr(self, f.name))
            for f in sorted(dataclasses.fields(self), key=lambda f: f.name)
        }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def op_from_attrs(kind: str, attrs: dict[str, Any]) -> Op:
    """Rebuild an op from its kind and `attrs()` (the JSON round trip).

    The attributes come from a file that may have been edited: each one is checked against
    the op's field type (a string where an int belongs is a `ValueError`, not a later crash).
    """
    cls = OP_KINDS[kind]
    hints = {
        name: hint
        for name, hint in typing.get_type_hints(cls).items()
        if name in {f.name for f in dataclasses.fields(cls)}
    }
    unknown = sorted(set(attrs) - set(hints))
    missing = sorted(set(hints) - set(attrs))
    if unknown or missing:
        raise ValueError(f"{kind}: unknown attributes {unknown}, missing {missing}")
    return cls(**{name: _attr(kind, name, attrs[name], hints[name]) for name in hints})


_ATTR_KINDS = {
    "<class 'int'>": "an integer",
    "<class 'float'>": "a finite number",
    "<class 'bool'>": "a boolean",
    "int | None": "an integer or null",
    "tuple[int, ...]": "a list of integers",
    "tuple[str, ...]": "a list of strings",
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_ATTR_INT


def _attr(kind: str, name: str, value: Any, hint: Any) -> Any:
    if hint is float:
        ok = (_is_int(value) or isinstance(value, float)) and math.isfinite(value)
    elif hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = _is_int(value)
    elif hint == int | None:
        ok = value is None or _is_int(value)
    else:  # tuple[int, ...] or tuple[str, ...], a JSON list
        item = _is_int if hint == tuple[int, ...] else (lambda v: isinstance(v, str))
        ok = isinstance(value, list) and all(item(v) for v in value)
    if not ok:
        raise ValueError(
            f"{kind}: attribute '{name}' must be {_ATTR_KINDS[str(hint)]} (integers "
            f"at most {MAX_ATTR_INT} in size), got {brief(value)}"
        )
    if hint is float:
        return float(value)
    return tuple(value) if isinstance(value, list) else value


def _typed(inputs: list[TensorType]) -> bool:
    return all(t.dtype is not None for t in inputs)


@dataclass(frozen=True, kw_only=True)
class LoadOp(Op):
    """Fetch one head's rows of Q, K or V from DRAM as `bits`-bit signed integer codes.

    `gates` names the operands that restrict the fetch, in port order: "tokens" (a
    token_select mask: only surviving tokens are fetched) and/or "heads" (a head_select mask:
    nothing is fetched for pruned heads).
    """

    ARITY: ClassVar[int | None] = None
    CROSS_LAYER: ClassVar[bool] = True
    MIN_BITS: ClassVar[int] = 2  # a K plane alone may be 1 bit (the whole K code is >= 2)
    tokens: int
    head_dim: int
    bits: int | None = None
    gates: tuple[str, ...] = ()

    def arity(self, connected: int) -> int:
        return len(self.gates)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        dtype = Fixed(self.bits, 0) if self.bits is not None else None
        return TensorType((self.tokens, self.head_dim), dtype)

    def check(self, inputs: list[TensorType], operands: list[Op]) -> list[str]:
        problems = []
        expected = {"tokens": "token_select", "heads": "head_select"}
        for gate, operand in zip(self.gates, operands, strict=True):
            if expected.get(gate) != operand.KIND:
                problems.append(
                    f"gate '{gate}' must come from {expected.get(gate, '?')}, "
                    f"comes from {operand.KIND}"
                )
            elif operand.layer >= self.layer:
                problems.append(f"gate '{gate}' comes from layer {operand.layer}, not earlier")
        if self.tokens < 1 or self.head_dim < 1:
            problems.append(f"shape [{self.tokens},{self.head_dim}] must be positive")
        if self.bits is not None and not self.MIN_BITS <= self.bits <= 16:
            problems.append(f"bits={self.bits} outside {self.MIN_BITS}..16")
        return problems


@register_op
@dataclass(frozen=True, kw_only=True)
class LoadQ(LoadOp):
    KIND: ClassVar[str] = "load_q"
    head: int


@register_op
@dataclass(frozen=True, kw_only=True)
class LoadK(LoadOp):
    """K codes; DRAM holds them as an MSB plane of `msb_bits` and an LSB plane of the rest."""

    KIND: ClassVar[str] = "load_k"
    kv_head: int
    msb_bits: int | None = None

    def check(self, inputs: list[TensorType], operands: list[Op]) -> list[str]:
        problems = super().check(inputs, operands)
        if (self.bits is None) != (self.msb_bits is None):
            problems.append("bits and msb_bits must be assigned together")
        elif self.bits is not None and not 1 <= self.msb_bits <= self.bits:
            problems.append(f"msb_bits={self.msb_bits} outside 1..bits={self.bits}")
        return problems


@register_op
@dataclass(frozen=True, kw_only=True)
class LoadV(LoadOp):
    KIND: ClassVar[str] = "load_v"
    kv_head: int


@register_op
@dataclass(frozen=True, kw_only=True)
class MatMulQK(Op):
    """Integer Q·K^T of one query head against its KV head: a wide, non-wrapping accumulator."""

    KIND: ClassVar[str] = "matmul_qk"
    ARITY: ClassVar[int | None] = 2
    head: int
    kv_head: int

    def infer(self, inputs: list[TensorType]) -> TensorType:
        q, k = inputs
        shape = (q.shape[0], k.shape[0])
        if not _typed(inputs):
            return TensorType(shape)
        growth = math.ceil(math.log2(q.shape[1])) if q.shape[1] > 1 else 0
        return TensorType(shape, Fixed(q.dtype.width + k.dtype.width - 1 + growth, 0))

    def check(self, inputs: list[TensorType], operands: list[Op]) -> list[str]:
        q, k = inputs
        problems = []
        if q.shape[1] != k.shape[1]:
            problems.append(f"head_dim mismatch: q {q.shape[1]} vs k {k.shape[1]}")
        if not isinstance(operands[0], LoadQ) or operands[0].head != self.head:
            problems.append(f"operand 0 must be load_q of head {self.head}")
        k_kinds = ("load_k", "load_k_msb")  # full K, or its MSB plane (progressive quantization)
        if operands[1].KIND not in k_kinds or operands[1].kv_head != self.kv_head:
            problems.append(f"operand 1 must be load_k or load_k_msb of kv_head {self.kv_head}")
        return problems


@register_op
@dataclass(frozen=True, kw_only=True)
class Scale(Op):
    """Scale accumulators by `factor` (1/sqrt(d)) into the score format.

    The host folds the per-head Q and K quantization scales into the same runtime multiplier.
    """

    KIND: ClassVar[str] = "scale"
    ARITY: ClassVar[int | None] = 1
    head: int
    factor: float

    def infer(self, inputs: list[TensorType]) -> TensorType:
        dtype = Fixed(formats.SCORE_BITS, formats.SCORE_FRAC) if _typed(inputs) else None
        return TensorType(inputs[0].shape, dtype)

    def check(self, inputs: list[TensorType], operands: list[Op]) -> list[str]:
        return [] if self.factor > 0 else [f"factor={self.factor} must be positive"]


@register_op
@dataclass(frozen=True, kw_only=True)
class CausalMask(Op):
    """Mask keys after the query's position (query row i sits at position i + q_offset)."""

    KIND: ClassVar[str] = "causal_mask"
    ARITY: ClassVar[int | None] = 1
    head: int
    q_offset: int

    def infer(self, inputs: list[TensorType]) -> TensorType:
        return inputs[0]

    def check(self, inputs: list[TensorType], operands: list[Op]) -> list[str]:
        return [] if self.q_offset >= 0 else [f"q_offset={self.q_offset} must be >= 0"]


@register_op
@dataclass(frozen=True, kw_only=True)
class Softmax(Op):
    """Row-wise fixed-point softmax (max subtraction, table exp, table reciprocal)."""

    KIND: ClassVar[str] = "softmax"
    ARITY: ClassVar[int | None] = 1
    head: int

    def infer(self, inputs: list[TensorType]) -> TensorType:
        dtype = (
            Fixed(formats.PROB_FRAC + 1, formats.PROB_FRAC, signed=False)
            if _typed(inputs)
            else None
        )
        return TensorType(inputs[0].shape, dtype)


@register_op
@dataclass(frozen=True, kw_only=True)
class MatMulPV(Op):
    """prob·V with output requantization to the V format (the output shares V's scale)."""

    KIND: ClassVar[str] = "matmul_pv"
    ARITY: ClassVar[int | None] = 2
    head: int
    kv_head: int

    def infer(self, inputs: list[TensorType]) -> TensorType:
        p, v = inputs
        return TensorType((p.shape[0], v.shape[1]), v.dtype if _typed(inputs) else None)

    def check(self, inputs: list[TensorType], operands: list[Op]) -> list[str]:
        p, v = inputs
        problems = []
        if p.shape[1] != v.shape[0]:
            problems.append(f"key count mismatch: probs {p.shape[1]} vs v {v.shape[0]}")
        if not isinstance(operands[1], LoadV) or operands[1].kv_head != self.kv_head:
            problems.append(f"operand 1 must be load_v of kv_head {self.kv_head}")
        return problems


@register_op
@dataclass(frozen=True, kw_only=True)
class HeadConcat(Op):
    """Concatenate the heads' outputs along the feature axis (operand i = head i)."""

    KIND: ClassVar[str] = "head_concat"
    ARITY: ClassVar[int | None] = None
    heads: tuple[int, ...]

    def arity(self, connected: int) -> int:
        return max(len(self.heads), 1)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        rows, width = inputs[0].shape
        dtype = inputs[0].dtype if _typed(inputs) else None
        return TensorType((rows, width * len(inputs)), dtype)

    def check(self, inputs: list[TensorType], operands: list[Op]) -> list[str]:
        problems = []
        if len(self.heads) != len(inputs):
            problems.append(f"heads lists {len(self.heads)} heads but has {len(inputs)} operands")
        if any(t != inputs[0] for t in inputs):
            problems.append("operands differ in type: " + ", ".join(str(t) for t in inputs))
        got = [getattr(o, "head", None) for o in operands]
        if list(self.heads) != got:
            problems.append(f"operands come from heads {got}, expected {list(self.heads)}")
        return problems
