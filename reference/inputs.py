"""What a connection of the engine reads from: the ``InputSource`` interface
and its in-process implementation, ``MessageQueue``.

A ``reference.engine.Connection`` owns the window, the reader job and the
hand-over to partitions; where its messages come from is an ``InputSource``:

* ``MessageQueue`` (here): producers in the same process (tests, benchmarks)
  put parsed messages in a bounded buffer;
* ``reference.service.SocketInput``: an accepted TCP connection, framed and
  parsed inside the reader job, re-armed in the service's poller when idle.

The engine calls ``take``, ``has_input``, ``may_have_input`` and ``at_end``
from the connection's reader job (at most one runs at a time) or under the
connection's lock, so they must be cheap and must not call back into the
connection.  The source calls the ``on_input`` callback given to ``attach``
whenever input arrives that no reader job may have seen; the connection then
schedules one (unless one runs, or the window is full: docs/semantics.md,
"Hand-over and flow control").
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Iterable, Protocol

from parbench.errors import RunFailure

Message = dict  # dict[str, bytes]


class SubmitTimeout(RunFailure, TimeoutError):
    """MessageQueue.submit() could not hand everything over in time (window full)."""


class InputSource(Protocol):
    def attach(self, on_input: Callable[[], None]) -> None:
        """Called once by the connection: ``on_input()`` schedules a reader job."""

    def take(self, limit: int) -> list[Message]:
        """Up to ``limit`` messages (may read, frame and parse to get them)."""

    def has_input(self) -> bool:
        """Messages are buffered, ready to be taken now."""

    def may_have_input(self) -> bool:
        """More input may come without ``on_input`` being called (a socket
        not yet read to its end): a full window must then suspend reading."""

    def at_end(self) -> bool:
        """No input will ever come again and nothing is buffered."""

    def buffered(self) -> int:
        """Complete messages buffered, not yet taken (counted at exit as
        read but never taken in)."""

    def watch(self) -> None:
        """Nothing is buffered: call ``on_input`` when more arrives."""

    def close(self) -> None:
        """Stop reading new input; what is buffered is still taken."""

    def release(self) -> None:
        """The connection is finished: free what the input holds."""


class MessageQueue:
    """The in-process input: a bounded buffer of parsed messages (the
    socket buffer of a real connection)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._items: collections.deque[Message] = collections.deque()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # producers wait here for room
        self._closed = False
        self._on_input: Callable[[], None] = _unattached

    # -- producer side ----------------------------------------------------------

    def offer(self, messages: list[Message]) -> int:
        """Put as many messages as there is room for; non-blocking.  Returns
        how many were taken."""
        with self._lock:
            if self._closed:
                raise RuntimeError("connection is closed")
            room = self.capacity - len(self._items)
            taken = messages[: max(room, 0)]
            self._items.extend(taken)
        if taken:
            self._on_input()
        return len(taken)

    def submit(self, messages: Iterable[Message], timeout: float = 30.0) -> None:
        """Put every message; blocks while the buffer is full (i.e. while the
        window is full and the reader is suspended)."""
        pending = list(messages)
        deadline = time.monotonic() + timeout
        while pending:
            n = self.offer(pending)
            pending = pending[n:]
            if not pending:
                return
            with self._lock:
                while len(self._items) >= self.capacity:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise SubmitTimeout(
                            f"window full for {timeout:.1f}s: {len(pending)} messages not accepted")
                    self._room.wait(min(left, 0.5))

    # -- InputSource ------------------------------------------------------------

    def attach(self, on_input: Callable[[], None]) -> None:
        self._on_input = on_input

    def take(self, limit: int) -> list[Message]:
        with self._lock:
            items = self._items
            n = min(limit, len(items))
            if n == len(items):
                taken = list(items)
                items.clear()
            else:
                taken = [items.popleft() for _ in range(n)]
            self._room.notify_all()
            return taken

    def has_input(self) -> bool:
        return bool(self._items)

    def may_have_input(self) -> bool:
        # Nothing arrives unannounced: every offer() calls on_input.
        return bool(self._items)

    def at_end(self) -> bool:
        return self._closed and not self._items

    def buffered(self) -> int:
        return len(self._items)

    def watch(self) -> None:
        """offer() announces new input itself."""

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def release(self) -> None:
        """Nothing to free."""


def _unattached() -> None:
    raise RuntimeError("input source not attached to a connection")
