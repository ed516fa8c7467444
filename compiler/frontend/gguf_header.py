"""A bounded walk over a GGUF header, before `gguf.GGUFReader` parses it.

`GGUFReader` trusts the counts and lengths a file declares: it loops over every declared
key, array element and tensor in Python and recurses into nested arrays, so a few hostile
bytes ("10^12 tensors", an array nested 10^5 deep) hang it or exhaust memory. This walk reads
the same layout (magic, version, tensor and key counts, each key's value, each tensor's
name, dims, type and offset) and checks every count and length against `compiler.limits` and
against what the file can hold; fixed-size arrays are skipped in one seek. Only then is the
file handed to the reader.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from spatten_hls.compiler import limits
from spatten_hls.compiler.errors import FrontendError

MAGIC = b"GGUF"
VERSIONS = (2, 3)
STRING, ARRAY = 8, 9
# Byte size of each scalar value type of the GGUF spec (uint8 .. float64).
SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


class _Walk:
    def __init__(self, handle: BinaryIO, size: int, path: Path, order: str) -> None:
        self.handle, self.size, self.path, self.order = handle, size, path, order

    def fail(self, what: str) -> FrontendError:
        return FrontendError(f"{self.path}: not a valid GGUF file ({what})")

    def read(self, count: int) -> bytes:
        data = self.handle.read(count)
        if len(data) != count:
            raise self.fail("truncated header")
        return data

    def skip(self, count: int) -> None:
        if self.handle.tell() + count > self.size:
            raise self.fail("truncated header")
        self.handle.seek(count, 1)

    def u32(self) -> int:
        return struct.unpack(self.order + "I", self.read(4))[0]

    def u64(self) -> int:
        return struct.unpack(self.order + "Q", self.read(8))[0]

    def count(self, limit: int, what: str) -> int:
        value = self.u64()
        if value > limit:
            raise FrontendError(f"{self.path}: declares {value} {what}; the limit is {limit}")
        return value

    def string(self, limit: int = limits.MAX_GGUF_STRING) -> None:
        self.skip(self.count(limit, "bytes in a string"))

    def value(self, kind: int, depth: int = 0) -> None:
        if kind in SCALAR_SIZES:
            self.skip(SCALAR_SIZES[kind])
        elif kind == STRING:
            self.string()
        elif kind == ARRAY:
            if depth >= limits.MAX_GGUF_ARRAY_DEPTH:
                raise FrontendError(
                    f"{self.path}: arrays nested deeper than {limits.MAX_GGUF_ARRAY_DEPTH}"
                )
            item = self.u32()
            length = self.count(limits.MAX_GGUF_ARRAY, "array elements")
            if item in SCALAR_SIZES:
                self.skip(length * SCALAR_SIZES[item])
            else:
                for _ in range(length):
                    self.value(item, depth + 1)
        else:
            raise self.fail(f"unknown value type {kind}")


def check_gguf_header(path: Path, size: int) -> None:
    """Raise `FrontendError` unless every count and length in the header is within limits."""
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != MAGIC:
                raise FrontendError(f"{path}: not a valid GGUF file (bad magic)")
            raw = handle.read(4)
            order = "<" if raw[:2] != b"\0\0" else ">"  # the reader's byte-order probe
            walk = _Walk(handle, size, path, order)
            if len(raw) != 4 or struct.unpack(order + "I", raw)[0] not in VERSIONS:
                raise walk.fail("unsupported version")
            tensors = walk.count(limits.MAX_GGUF_TENSORS, "tensors")
            keys = walk.count(limits.MAX_GGUF_KEYS, "metadata keys")
            for _ in range(keys):
                walk.string(1 << 16)
                walk.value(walk.u32())
            for _ in range(tensors):
                walk.string(1 << 16)
                dims = walk.u32()
                if dims > limits.MAX_GGUF_DIMS:
                    raise walk.fail(f"a tensor with {dims} dimensions")
                walk.skip(8 * dims + 4 + 8)
    except OSError as exc:
        raise FrontendError(f"{path}: cannot read: {exc.strerror or exc}") from None
