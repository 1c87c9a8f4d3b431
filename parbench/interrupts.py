"""SIGINT, SIGTERM and SIGHUP as one kind of interruption.

Python turns SIGINT into ``KeyboardInterrupt``, but SIGTERM (``timeout``,
``kill``, a service manager) and SIGHUP (a closed terminal) end the process
on the spot: no ``finally`` runs, so a target keeps running, temp files stay
and no results are written.  ``Interruption`` is a ``KeyboardInterrupt``
that remembers its signal, so every ``except KeyboardInterrupt`` and
``finally`` already in place handles all three the same way.

Inside ``handled()`` the signals are noted; inside ``interruptible()`` the
first one raises ``Interruption`` in the main thread.  It is raised once: a
second signal while the first one's cleanup runs is noted and otherwise
ignored, so the cleanup (bounded by its own timeouts) is not cut short.
``deferred()`` marks work that must not be torn in the middle (starting or
stopping a process, writing results): a signal there is raised when the
block ends.  Outside ``handled()`` all of this does nothing, and SIGINT is
Python's ``KeyboardInterrupt`` as usual.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interruption(KeyboardInterrupt):
    """A signal asked the process to stop; ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal."""
        return 128 + self.signum


def signal_of(exc: BaseException) -> int:
    """The signal behind a KeyboardInterrupt (SIGINT for Python's own)."""
    return getattr(exc, "signum", signal.SIGINT)


class _Catcher:
    def __init__(self) -> None:
        self.raising = False
        self.pending: int | None = None
        self.delivered = False

    def __call__(self, signum: int, frame) -> None:
        if self.pending is None:
            self.pending = signum
        if self.raising and not self.delivered:
            self.delivered = True
            raise Interruption(signum)


_catcher: _Catcher | None = None


@contextmanager
def handled() -> Iterator[None]:
    """Catch the three signals for the duration of the block (main thread
    only; elsewhere nothing changes).  Inside, signals are noted; use
    ``interruptible()`` for the parts that may be cut short."""
    global _catcher
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    catcher = _Catcher()
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    outer, _catcher = _catcher, catcher
    for sig in SIGNALS:
        signal.signal(sig, catcher)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _catcher = outer


@contextmanager
def interruptible() -> Iterator[None]:
    """Inside ``handled()``: the first signal raises ``Interruption`` here
    (at once when one is already pending)."""
    catcher = _catcher
    if catcher is None:
        yield
        return
    if catcher.pending is not None and not catcher.delivered:
        catcher.delivered = True
        raise Interruption(catcher.pending)
    catcher.raising = True
    try:
        yield
    finally:
        catcher.raising = False


@contextmanager
def deferred() -> Iterator[None]:
    """Inside ``interruptible()``: a signal during the block is raised when
    the block ends normally (left pending when an exception leaves it).
    Signals reach the main thread only, so in any other thread the block
    runs as it is."""
    catcher = _catcher
    if catcher is None or not catcher.raising or threading.current_thread() is not threading.main_thread():
        yield
        return
    catcher.raising = False
    try:
        yield
    finally:
        catcher.raising = True
    raise_if_pending()


def pending() -> int | None:
    """The first signal received inside ``handled()``, if any."""
    return _catcher.pending if _catcher is not None else None


def raise_if_pending() -> None:
    """Raise the noted signal (once) as an ``Interruption``."""
    catcher = _catcher
    if catcher is not None and catcher.pending is not None and not catcher.delivered:
        catcher.delivered = True
        raise Interruption(catcher.pending)
