"""Partition choice of parallelize(), exactly as the real code makes it.

* With ``partition-key()``: ``g_str_hash(key) % N``.  GLib's ``g_str_hash``
  is djb2 over *signed* chars: ``h = 5381; h = h * 33 + (signed char) c``,
  modulo 2**32.  The key is the raw value for a template that is exactly one
  ``$NAME``/``${NAME}`` (empty when unset), the literal for a literal
  template, otherwise the formatted template.
* Without a key: round-robin per input thread (connection); the profile says
  where a thread starts (0, or ``thread_index % N``) and whether ``batch-size``
  consecutive messages go to one partition before moving on.

Because 33 = 1 (mod 2**k), for N = 2, 4, 8, 16, 32 the partition is just
``(5381 + sum of signed bytes) % N``: anagrams (``web-01``/``web-10``) collide.
Upstream sources and versions: docs/semantics.md, "Partition choice" and
"Round-robin".
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from parbench.reference.profiles import Profile
from parbench.reference.template import Template

_MASK = 0xFFFFFFFF
# Bytes per step of g_str_hash before reducing the intermediate big integer.
_CHUNK = 64


def _high_byte_correction(data: bytes) -> int:
    # Bytes >= 0x80 were added as c instead of c - 256.
    n = len(data)
    return sum(256 * pow(33, n - 1 - i, 1 << 32) for i, c in enumerate(data) if c >= 0x80)


def g_str_hash(data: bytes) -> int:
    """GLib's g_str_hash of ``data`` (no NUL bytes: C strings end there)."""
    h = 5381
    if len(data) <= _CHUNK:
        for c in data:
            h = h * 33 + c
    else:
        for start in range(0, len(data), _CHUNK):
            for c in data[start:start + _CHUNK]:
                h = h * 33 + c
            h &= _MASK
    if not data.isascii():
        h -= _high_byte_correction(data)
    return h & _MASK


def g_str_hash_many(values: Sequence[bytes]) -> np.ndarray:
    """g_str_hash of many values at once (uint32 array), vectorized with numpy."""
    count = len(values)
    if count == 0:
        return np.zeros(0, dtype=np.uint32)
    lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=count)
    total = int(lengths.sum())
    # h = 5381 * 33**n + sum(c_i * 33**(n-1-i)), all modulo 2**32: uint32
    # arithmetic wraps exactly like the C code.
    max_len = int(lengths.max())
    pow33 = np.empty(max_len + 1, dtype=np.uint32)
    pow33[0] = 1
    # uint32 products wrap modulo 2**32, which is exactly what is wanted.
    np.cumprod(np.full(max_len, 33, dtype=np.uint32), dtype=np.uint32, out=pow33[1:])
    hashes = (np.uint32(5381) * pow33[lengths]).astype(np.uint32)
    if total:
        signed = np.frombuffer(b"".join(values), dtype=np.int8).astype(np.uint32)
        ends = np.cumsum(lengths)
        starts = ends - lengths
        owner = np.repeat(np.arange(count), lengths)
        exponent = ends[owner] - 1 - np.arange(total)
        terms = signed * pow33[exponent]
        nonempty = lengths > 0
        sums = np.add.reduceat(terms, starts[nonempty], dtype=np.uint32)
        hashes[nonempty] += sums
    return hashes


class KeyedPlacer:
    """partition = g_str_hash(key) % partitions, with a bounded cache per key value."""

    CACHE_LIMIT = 65536

    def __init__(self, partitions: int, key: Template):
        if partitions < 1:
            raise ValueError(
                f"partitions must be >= 1 for keyed placement, got {partitions} (0 means bypass)"
            )
        self.partitions = partitions
        self.key = key
        self._cache: dict[bytes, int] = {}
        self._literal_partition = (
            g_str_hash(key.literal) % partitions if key.literal is not None else None
        )

    def partition_of(self, key_value: bytes) -> int:
        cache = self._cache
        p = cache.get(key_value)
        if p is None:
            if len(cache) >= self.CACHE_LIMIT:
                cache.clear()  # keys may be unbounded (e.g. $MSG): stay bounded
            p = cache[key_value] = g_str_hash(key_value) % self.partitions
        return p

    def place(self, messages: list[dict[str, bytes]]) -> list[int]:
        if self._literal_partition is not None:
            return [self._literal_partition] * len(messages)
        name = self.key.single_name
        if name is not None:
            values = [m.get(name, b"") for m in messages]
        else:
            values = self.key.render_many(messages)
        cache = self._cache
        try:
            return [cache[v] for v in values]
        except KeyError:
            partition_of = self.partition_of
            return [partition_of(v) for v in values]


class RoundRobinPlacer:
    """Round-robin of one input thread: message t goes to (start + t // B) % N.

    ``batch_size`` 0 is per message (B = 1).  The counter t carries across
    calls, so chunking a stream differently never changes its placement.
    """

    def __init__(self, partitions: int, start: int = 0, batch_size: int = 0):
        if partitions < 1:
            raise ValueError(
                f"partitions must be >= 1 for round-robin placement, got {partitions} (0 means bypass)"
            )
        if batch_size < 0:
            raise ValueError(f"batch_size must be >= 0, got {batch_size}")
        self.partitions = partitions
        self.start = start % partitions
        self.batch_size = batch_size
        self._step = max(1, batch_size)
        self._placed = 0

    @property
    def placed(self) -> int:
        return self._placed

    def place(self, count: int) -> list[int]:
        if count <= 0:
            return []
        t0 = self._placed
        self._placed = t0 + count
        if count < 8:
            step, start, n = self._step, self.start, self.partitions
            return [(start + t // step) % n for t in range(t0, t0 + count)]
        t = np.arange(t0, t0 + count, dtype=np.int64)
        return ((t // self._step + self.start) % self.partitions).tolist()


def round_robin_start(profile: Profile, thread_index: int, partitions: int) -> int:
    """First partition of input thread ``thread_index`` under ``profile``."""
    if partitions <= 0:
        return 0
    if profile.round_robin_start == "zero":
        return 0
    if profile.round_robin_start == "thread_index":
        return thread_index % partitions
    raise ValueError(f"profile {profile.name}: unknown round_robin_start {profile.round_robin_start!r}")


def predict_keyed_load(values: Iterable[bytes], partitions: int, weights=None) -> np.ndarray:
    """Per-partition load when each key value carries its weight (default 1)."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    values = list(values)
    parts = (g_str_hash_many(values) % np.uint32(partitions)).astype(np.int64)
    w = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (len(values),):
        raise ValueError(f"weights has shape {w.shape}, expected ({len(values)},)")
    return np.bincount(parts, weights=w, minlength=partitions).astype(float)
