"""``parbench-cost()``: a synthetic processing stage (a parbench extension).

Real parallelize() pays off when the elements after it cost CPU (parsers,
rewrites, formatting) or wait (a slow network destination).  This stage
reproduces both without depending on what a real parser does:

* ``cpu_us`` per message, spent as work that releases the GIL, the way a C
  parser in syslog-ng runs without holding any global lock.  hashlib releases
  the GIL for buffers of 2 KiB and more, so the work is hashing a buffer whose
  length comes from a one-time calibration (bytes hashed per microsecond).
* ``latency_us`` per batch, spent sleeping (a round trip to a slow service).

The work is done once per batch (cpu_us * len(batch)), never per message, so
the Python overhead stays out of the measured cost.
"""
from __future__ import annotations

import hashlib
import threading
import time

# hashlib drops the GIL only for updates of at least this many bytes
# (CPython's HASHLIB_GIL_MINSIZE); every chunk we hash is larger.
_CHUNK = 64 * 1024
_BUFFER = bytes(range(256)) * (_CHUNK // 256)

_calibration_lock = threading.Lock()
_bytes_per_us: float | None = None


def calibrate(rounds: int = 5, probe_bytes: int = 4 * 1024 * 1024) -> float:
    """Bytes of hashing per microsecond on this machine (cached per process).

    The fastest of a few rounds is kept: other processes sharing the CPU only
    ever make a round slower, never faster.
    """
    global _bytes_per_us
    with _calibration_lock:
        if _bytes_per_us is None:
            best = float("inf")
            for _ in range(rounds):
                t0 = time.perf_counter()
                _hash_bytes(probe_bytes)
                best = min(best, time.perf_counter() - t0)
            _bytes_per_us = probe_bytes / max(best * 1e6, 1e-3)
        return _bytes_per_us


def _hash_bytes(total: int) -> None:
    h = hashlib.sha1()
    view = memoryview(_BUFFER)
    while total > 0:
        n = min(total, _CHUNK)
        # Short tails are padded up: below 2 KiB the GIL would be held.
        h.update(view[: max(n, 4096)])
        total -= n


class CostWorker:
    """Runs one parbench-cost() stage on whole batches; thread-safe."""

    __slots__ = ("cpu_us", "latency_us", "_bytes_per_msg")

    def __init__(self, cpu_us: float = 0.0, latency_us: float = 0.0) -> None:
        if cpu_us < 0 or latency_us < 0:
            raise ValueError("parbench-cost(): cpu-us() and latency-us() must be >= 0")
        self.cpu_us = float(cpu_us)
        self.latency_us = float(latency_us)
        self._bytes_per_msg = calibrate() * self.cpu_us if self.cpu_us > 0 else 0.0

    def __call__(self, batch: list) -> list:
        if self._bytes_per_msg and batch:
            _hash_bytes(int(self._bytes_per_msg * len(batch)))
        if self.latency_us > 0 and batch:
            time.sleep(self.latency_us / 1e6)
        return batch
