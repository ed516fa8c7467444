"""Reusable scratch arrays for the simulator's large intermediates.

Allocating a fresh multi-megabyte array per head costs page faults on every call (measured
here: a 1.2 MB copy into new memory takes ~1 ms, into reused memory ~0.1 ms). The interpreter
knows each value's last use, so buffers go back to the pool as soon as their value is dead.
"""

from __future__ import annotations

import threading

import numpy as np


class BufferPool:
    """Thread-safe: heads run in parallel worker threads share one pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: dict[tuple, list[np.ndarray]] = {}
        self._owned: dict[int, np.ndarray] = {}  # keeps every pooled array alive: ids stay unique

    def take(self, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
        key = (tuple(shape), np.dtype(dtype).str)
        with self._lock:
            free = self._free.get(key)
            if free:
                return free.pop()
            array = np.empty(shape, dtype=dtype)
            self._owned[id(array)] = array
            return array

    def give_back(self, value: object) -> None:
        """Return `value` to the pool if the pool made it (other values are ignored)."""
        with self._lock:
            if isinstance(value, np.ndarray) and self._owned.get(id(value)) is value:
                key = (value.shape, value.dtype.str)
                free = self._free.setdefault(key, [])
                if all(v is not value for v in free):
                    free.append(value)
