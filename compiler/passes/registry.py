"""Pass registration: each pass declares the graph properties it requires and provides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.ir.graph import AttnGraph

PassFn = Callable[[AttnGraph, Config], AttnGraph]


@dataclass(frozen=True)
class PassInfo:
    name: str
    fn: PassFn
    requires: frozenset[str]
    provides: frozenset[str]


PASSES: dict[str, PassInfo] = {}


def register_pass(
    name: str, requires: set[str] = frozenset(), provides: set[str] = frozenset()
) -> Callable[[PassFn], PassFn]:
    def decorate(fn: PassFn) -> PassFn:
        if name in PASSES:
            raise ValueError(f"pass '{name}' registered twice")
        PASSES[name] = PassInfo(name, fn, frozenset(requires), frozenset(provides))
        return fn

    return decorate
