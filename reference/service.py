"""``parbench serve``: the reference parallelizer as a TCP service.

One I/O thread (selectors, like syslog-ng's ivykis main loop) accepts
connections and watches the idle ones; when a connection becomes readable it
is taken out of the poller and a reader job is scheduled on the engine's
worker pool.  Each accepted connection is a ``SocketInput``, the engine
connection's input source (``reference.inputs``).  The reader job receives
once (a bounded chunk), frames it, parses at most ``log-fetch-limit()``
messages (never more than the free window slots) and hands them to the
engine; it re-arms the poller only when it has nothing buffered, so a
suspended (window-full) connection is not read at all.

Destinations: ``tcp()``/``network()`` (one connection; a slow destination is
waited for, one that is down retried every ``time-reopen()``: see
``TcpWriter``) and ``file()`` (appended), each rendering its template, or
syslog-ng's default line, once per batch with one write per batch.

What happens under faults (docs/semantics.md, "Destination faults"), and
the counters JSON that accounts for every message at exit, are in
DESIGN.md, "Reference contracts".
"""
from __future__ import annotations

import bisect
import collections
import errno
import itertools
import json
import os
import select
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import click

from parbench.reference.config_model import Config, Destination, GlobalOptions, SourceDriver
from parbench.reference.engine import Engine, EngineError, default_workers, source_key
from parbench.reference.message import Framer, FramingError, make_parser, resolve_peer_name
from parbench.reference.profiles import DEFAULT_PROFILE, PROFILES, get_profile

RECV_CHUNK = 256 * 1024
# What one reader job may receive: this much per message it may take (an
# empty line or empty frame costs framing work like a message does), within
# [RECV_MIN, RECV_CHUNK].
RECV_PER_MESSAGE = 4096
RECV_MIN = 16 * 1024
# A connection whose last bytes framed into nothing receives down to this
# much per turn.
RECV_JUNK_MIN = 1024
# How long a blocked write waits between checks of whether it must give up.
WRITE_POLL_S = 0.1
# A connect to a loopback destination is answered at once; this bounds one
# whose listen backlog is full.
CONNECT_TIMEOUT_S = 10.0
# After accept() fails for lack of file descriptors (or memory), the
# listener is not watched until a connection closes, or for this long.
ACCEPT_BACKOFF_S = 0.5
# Running out of descriptors is logged at most this often (it comes and goes
# as connections close).
EXHAUSTION_LOG_INTERVAL_S = 60.0
# Connections accepted from one listener per poller turn: a burst of new
# connections does not hold up reading the open ones.
ACCEPTS_PER_TURN = 64
# On SIGTERM, how long what is in flight may take to reach its destination;
# with the flush after it, the whole stop stays within the 15 s a harness
# allows before SIGKILL.
DRAIN_TIMEOUT = 10.0
# syslog-ng's listen-backlog() default (modules/afsocket/afsocket-source.c).
LISTEN_BACKLOG = 255
# At exit, how long a destination may take to acknowledge what it was sent.
FLUSH_TIMEOUT_S = 2.0

ACCEPT_EXHAUSTION_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def _log(text: str) -> None:
    print(f"parbench serve: {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Destinations
# --------------------------------------------------------------------------


def _renderer(template_text: str | None):
    """Messages -> one rendered line per message."""
    if template_text is None:
        from parbench.reference.message import format_default
        return lambda msgs: list(map(format_default, msgs))
    from parbench.reference.template import compile_template
    return compile_template(template_text).render_many


def _bytes_acked(sock: socket.socket) -> int | None:
    """Data bytes the peer's TCP acknowledged on ``sock`` (Linux TCP_INFO
    ``tcpi_bytes_acked``, which counts the SYN too); None if unknown.  Still
    readable after the connection was reset."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
        return max(0, struct.unpack_from("Q", info, _TCPI_BYTES_ACKED)[0] - 1)
    except (OSError, struct.error, AttributeError):
        return None


_TCP_INFO_LEN = 136
_TCPI_BYTES_ACKED = 120  # offset of tcpi_bytes_acked in struct tcp_info (Linux >= 4.1)


class TcpWriter:
    """A tcp()/network() destination: one loopback connection.

    As syslog-ng's writer does (docs/semantics.md, "Destination faults"):

    * a slow destination is waited for: a write blocks (in slices, so that
      it can be told to give up) and resumes where the kernel stopped taking
      bytes: the back-pressure flow control relies on;
    * a destination that is down is retried every ``time-reopen()``
      seconds, for as long as it takes; the messages stay queued;
    * a connection that breaks, or that the peer closed while we were idle,
      is reopened after ``time-reopen()``.

    A message counts as written once all its bytes were handed to the
    kernel (syslog-ng's meaning).  Unlike syslog-ng, the writer keeps the
    lines the destination's TCP has not acknowledged yet; when the
    connection breaks, those are sent again on the next one, so a break
    loses only what the destination's kernel acknowledged and its reader
    never read.  Until they are handed over again they count as queued
    (``pending_resend``), not written.  A message cut by the break is sent
    again whole; a whole line already acknowledged is never sent twice.

    Shutdown: ``stop_retrying()`` makes a destination that is down at that
    moment give up at once (after one more connect attempt); ``abort()``
    makes a blocked write give up.  The call then returns how many of its
    messages it handed over.
    """

    def __init__(self, host: str, port: int, template: str | None, time_reopen: float, name: str = "") -> None:
        self.address = (host, port)
        self.name = name or f"tcp({host}:{port})"
        self.render = _renderer(template)
        self.time_reopen = float(time_reopen)
        self._sock: socket.socket | None = None
        self._stream_pos = 0  # data bytes handed to the kernel on this connection
        # (stream offset of its end, line) of lines handed over on this
        # connection and not yet acknowledged by the peer's TCP.
        self._backlog: collections.deque[tuple[int, bytes]] = collections.deque()
        self._resend: list[bytes] = []  # counted written once, to be handed over again
        self._reopen_at = 0.0  # no connect attempt before this (monotonic)
        self._stopping = threading.Event()
        self._abort = threading.Event()
        self._down_since: float | None = None  # the current outage, for its log lines
        self.connections_total = 0
        self.connect_failures_total = 0
        self.broken_connections_total = 0
        self.resent_events_total = 0

    def counters(self) -> dict:
        return {"connections_total": self.connections_total,
                "connect_failures_total": self.connect_failures_total,
                "broken_connections_total": self.broken_connections_total,
                "resent_events_total": self.resent_events_total}

    def pending_resend(self) -> int:
        """Messages counted as written by an earlier call whose connection
        broke before the destination acknowledged them."""
        return len(self._resend)

    def needs_attention(self) -> bool:
        """Lines wait to be acknowledged or sent again: call with an empty
        batch now and then (the destination queue does) to settle them."""
        return bool(self._backlog or self._resend)

    # -- shutdown -------------------------------------------------------------

    def stop_retrying(self) -> None:
        self._stopping.set()

    def abort(self) -> None:
        self._stopping.set()
        self._abort.set()

    # -- writing --------------------------------------------------------------

    def __call__(self, messages: list) -> int:
        lines = self.render(messages) if messages else []
        nxt = 0  # first line of this batch never handed over yet
        self._settle()
        while self._resend or nxt < len(lines):
            if self._sock is None and not self._open():
                return nxt
            sock = self._sock
            n_resend = len(self._resend)
            todo = self._resend + lines[nxt:] if n_resend else lines[nxt:]
            ends = list(itertools.accumulate(map(len, todo)))
            data = memoryview(b"".join(todo))
            sent = 0
            failure: str | None = None
            while sent < len(data):
                if not self._wait_writable(sock):
                    failure = "aborted"
                    break
                try:
                    sent += sock.send(data[sent:])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    failure = exc.strerror or str(exc)
                    break
            handed = bisect.bisect_right(ends, sent)
            base = self._stream_pos
            self._backlog.extend(zip((base + e for e in ends[:handed]), todo[:handed]))
            self._stream_pos = base + sent
            if handed >= n_resend:
                self.resent_events_total += n_resend
                self._resend = []
                nxt += handed - n_resend
            else:
                self.resent_events_total += handed
                self._resend = self._resend[handed:]
            if failure == "aborted":
                return nxt
            if failure is not None:
                self._break(failure)
        self._prune()
        return len(lines)

    def _settle(self) -> None:
        """Forget what was acknowledged; notice a connection the peer closed
        while we were idle (syslog-ng watches idle connections for this)."""
        if self._sock is None:
            return
        self._prune()
        if self._peer_closed(self._sock):
            self._break("the destination closed the connection")

    def _prune(self) -> None:
        backlog = self._backlog
        if not backlog or self._sock is None:
            return
        acked = _bytes_acked(self._sock)
        if acked is None:
            backlog.clear()  # cannot know: keep syslog-ng's meaning (written = delivered)
            return
        while backlog and backlog[0][0] <= acked:
            backlog.popleft()

    def _wait_writable(self, sock: socket.socket) -> bool:
        """Wait until ``sock`` takes bytes (or reports an error); False when
        told to abort."""
        poller = select.poll()
        poller.register(sock, select.POLLOUT)
        while not self._abort.is_set():
            if poller.poll(WRITE_POLL_S * 1000):
                return True
        return False

    def _peer_closed(self, sock: socket.socket) -> bool:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        if not poller.poll(0):
            return False
        try:
            # Whatever a destination sends is not for us; only the end matters.
            while True:
                if not sock.recv(65536):
                    return True
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    def _break(self, reason: str) -> None:
        """The connection is gone: what its peer did not acknowledge goes
        first on the next one."""
        sock = self._sock
        acked = _bytes_acked(sock) if sock is not None else None
        if acked is None:
            unacked: list[bytes] = []  # cannot know: counted as delivered, as syslog-ng does
        else:
            unacked = [line for end, line in self._backlog if end > acked]
        self._backlog.clear()
        self._resend = unacked + self._resend
        self._stream_pos = 0
        self.broken_connections_total += 1
        self._drop_socket()
        self._reopen_at = time.monotonic() + self.time_reopen
        if self._down_since is None:
            self._down_since = time.monotonic()
            again = f"; {len(unacked)} messages it did not acknowledge are sent again" if unacked else ""
            _log(f"destination {self.name}: connection lost ({reason}){again}; "
                 f"reconnecting every {self.time_reopen:g} s (time-reopen)")

    def _open(self) -> bool:
        """Connect, waiting time-reopen() between attempts, until connected
        (True) or told to give up (False)."""
        while True:
            if self._abort.is_set():
                return False
            if not self._stopping.is_set():
                while (wait := self._reopen_at - time.monotonic()) > 0:
                    if self._stopping.wait(min(wait, WRITE_POLL_S)):
                        break
            try:
                sock = socket.create_connection(self.address, timeout=CONNECT_TIMEOUT_S)
            except OSError as exc:
                self.connect_failures_total += 1
                self._reopen_at = time.monotonic() + self.time_reopen
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    _log(f"destination {self.name}: connection failed ({exc.strerror or exc}); "
                         f"retrying every {self.time_reopen:g} s (time-reopen), messages stay queued")
                if self._stopping.is_set():
                    return False
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            self._sock = sock
            self._stream_pos = 0
            self.connections_total += 1
            if self._down_since is not None:
                _log(f"destination {self.name}: connected again after "
                     f"{time.monotonic() - self._down_since:.1f} s")
                self._down_since = None
            return True

    def _drop_socket(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> None:
        """Wait (bounded) until the destination acknowledged every line; a
        connection found broken meanwhile leaves its unacknowledged lines
        pending (counted queued, not written)."""
        deadline = time.monotonic() + timeout
        while self._backlog and self._sock is not None and not self._abort.is_set() \
                and time.monotonic() < deadline:
            self._settle()
            if self._backlog:
                time.sleep(0.01)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        self._drop_socket()


class FileWriter:
    """A file() destination: appended, flushed after every batch."""

    def __init__(self, path: str, template: str | None) -> None:
        self.path = path
        self.render = _renderer(template)
        self._fh = open(path, "ab")

    def __call__(self, messages: list) -> None:
        self._fh.write(b"".join(self.render(messages)))
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class FanOut:
    """A destination with several drivers writes each message to every one;
    a message counts as written once every driver wrote it."""

    def __init__(self, writers: list) -> None:
        self.writers = writers

    def __call__(self, messages: list) -> int:
        written = len(messages)
        for w in self.writers:
            n = w(messages)
            written = min(written, len(messages) if n is None else n)
        return written

    def counters(self) -> dict:
        totals: dict = {}
        for w in self.writers:
            for name, value in getattr(w, "counters", dict)().items():
                totals[name] = totals.get(name, 0) + value
        return totals

    def pending_resend(self) -> int:
        return max((getattr(w, "pending_resend", lambda: 0)() for w in self.writers), default=0)

    def needs_attention(self) -> bool:
        return any(getattr(w, "needs_attention", lambda: False)() for w in self.writers)

    def flush(self) -> None:
        for w in self.writers:
            getattr(w, "flush", lambda: None)()

    def stop_retrying(self) -> None:
        for w in self.writers:
            getattr(w, "stop_retrying", lambda: None)()

    def abort(self) -> None:
        for w in self.writers:
            getattr(w, "abort", lambda: None)()

    def close(self) -> None:
        for w in self.writers:
            w.close()


def make_sink(dest: Destination, options: GlobalOptions | None = None):
    options = options or GlobalOptions()
    writers = []
    for drv in dest.drivers:
        if drv.kind in ("tcp", "network"):
            time_reopen = drv.time_reopen if drv.time_reopen is not None else options.time_reopen
            host, port = drv.host or "127.0.0.1", int(drv.port or 514)
            writers.append(TcpWriter(host, port, drv.template, time_reopen,
                                     name=f"{dest.name or drv.loc} {drv.kind}({host}:{port})"))
        elif drv.kind == "file":
            try:
                writers.append(FileWriter(drv.path, drv.template))
            except OSError as exc:
                raise EngineError(f"{drv.loc}: cannot open file {drv.path!r} for appending: "
                                  f"{exc.strerror or exc}") from None
        else:
            raise EngineError(f"{drv.loc}: destination driver {drv.kind}() is not supported; "
                              "supported: tcp(), network(), file()")
    return writers[0] if len(writers) == 1 else FanOut(writers)


# --------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------


class Listener:
    def __init__(self, source_name: str, driver: SourceDriver, sock: socket.socket) -> None:
        self.source_name = source_name
        self.driver = driver
        self.sock = sock
        self.active = 0  # open connections, bounded by max-connections()
        self.lock = threading.Lock()


_PARSE_ERROR_MSG = b"Error processing log message: "


def _parse_errors(messages: list) -> int:
    """How many of a parsed batch are syslog-ng's parse-error message."""
    return sum(1 for m in messages
               if m.get("PROGRAM") == b"syslog-ng" and m.get("MSG", b"").startswith(_PARSE_ERROR_MSG))


class SocketInput:
    """An accepted TCP connection as the input of an engine connection
    (``reference.inputs.InputSource``): received, framed and parsed inside
    the reader job; re-armed in the poller when it has nothing buffered.

    A reader job receives at most once, at most ``RECV_PER_MESSAGE`` bytes
    per message it may take, whatever the bytes turn out to hold: a
    connection sending only empty lines or empty frames costs one bounded
    turn per reader job like any other, and cannot hold a pool thread
    (syslog-ng's reader reads once per fetch loop too).
    Everything it holds is dropped when the connection is released."""

    __slots__ = ("sock", "listener", "loop", "source", "_framer", "_parse", "_frames", "_pos", "_eof",
                 "_closed", "_released", "_on_input", "_recv_cap")

    def __init__(self, sock: socket.socket, listener: Listener, loop: "IOLoop", max_msg_size: int) -> None:
        drv = listener.driver
        self.sock = sock
        self.listener = listener
        self.loop = loop
        self.source = loop.engine.sources[listener.source_name]
        address = sock.getpeername()[0]
        self._framer: Framer | None = Framer(max_msg_size, framing=drv.framing)
        self._parse = make_parser(
            drv.syslog_protocol, drv.keep_hostname, address.encode(),
            peer_name=resolve_peer_name(address, drv.use_fqdn) if drv.use_dns else None,
            expect_hostname="no-hostname" not in drv.flags,
            store_legacy_msghdr="dont-store-legacy-msghdr" not in drv.flags,
            profile=loop.engine.profile)
        self._frames: list[bytes] = []
        self._pos = 0
        self._eof = False
        self._closed = False  # no more reading: the engine closed the connection
        self._released = False
        self._on_input: Callable[[], None] | None = None
        self._recv_cap = RECV_CHUNK

    @property
    def watched(self) -> bool:
        """Whether the poller should still watch this socket."""
        return not (self._closed or self._released)

    def readable(self) -> None:
        """The poller saw data (or the end of the stream)."""
        on_input = self._on_input
        if on_input is not None:
            on_input()

    def _receive(self, limit: int) -> None:
        """One recv: frame what came (or the end of the stream)."""
        framer = self._framer
        size = min(self._recv_cap, max(RECV_MIN, min(RECV_CHUNK, limit * RECV_PER_MESSAGE)))
        try:
            data = self.sock.recv(size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # reset by the peer: what was read stays, the rest is gone
        if not data:
            self._eof = True
            self._frames.extend(framer.close())
            return
        pending = framer.pending_bytes
        try:
            frames = framer.feed(data)
            # Bytes that framed into nothing and are not part of a message
            # still coming (empty lines, empty frames) are work all the same:
            # the next turns of this connection receive less, so a flood
            # costs what its share of turns is worth.
            if frames or framer.pending_bytes - pending >= len(data) // 2:
                self._recv_cap = RECV_CHUNK
            else:
                self._recv_cap = max(RECV_JUNK_MIN, self._recv_cap // 4)
            self._frames.extend(frames)
        except FramingError as exc:
            # syslog-ng closes a connection whose framing is broken,
            # keeping the messages completed before the error.
            self._frames.extend(exc.messages)
            self._eof = True
            self.source.add("framing_errors_total")
            _log(f"closing connection from {self.listener.source_name}: {exc}")

    # -- InputSource ------------------------------------------------------------

    def attach(self, on_input: Callable[[], None]) -> None:
        self._on_input = on_input

    def take(self, limit: int) -> list:
        if len(self._frames) - self._pos < limit and not (self._eof or self._closed):
            self._receive(limit)
        pos = self._pos
        taken = self._frames[pos:pos + limit]
        pos += len(taken)
        if pos >= len(self._frames):
            self._frames = []
            pos = 0
        elif pos > 4096:
            del self._frames[:pos]
            pos = 0
        self._pos = pos
        if not taken:
            return []
        messages = self._parse(taken)
        errors = _parse_errors(messages)
        if errors:
            self.source.add("parse_errors_total", errors)
        return messages

    def has_input(self) -> bool:
        return len(self._frames) > self._pos

    def may_have_input(self) -> bool:
        return self.has_input() or not (self._eof or self._closed)

    def at_end(self) -> bool:
        return (self._eof or self._closed) and not self.has_input()

    def buffered(self) -> int:
        return len(self._frames) - self._pos

    def watch(self) -> None:
        self.loop.arm(self)

    def close(self) -> None:
        self._closed = True

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        try:
            self.sock.close()
        except OSError:
            pass
        # Nothing of the connection outlives it: buffers, framer, parser, and
        # the callback into the engine's connection.
        self._framer = None
        self._parse = None
        self._frames = []
        self._pos = 0
        self._on_input = None
        with self.listener.lock:
            self.listener.active -= 1
        self.loop.connection_released(self.listener)


class IOLoop:
    """Accepts connections and schedules reader jobs for readable ones.

    When accept() fails for lack of file descriptors (or of memory), the
    listener is logged once and not watched until a connection closes, or
    for ``ACCEPT_BACKOFF_S``: the pending connections wait in the kernel's
    backlog instead of the loop spinning on a listener that stays readable."""

    def __init__(self, engine: Engine, listeners: list[Listener]) -> None:
        self.engine = engine
        self.listeners = listeners
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._arm_requests: collections.deque[SocketInput] = collections.deque()
        self._stopping = False
        self.refused = 0
        self.vanished = 0  # accepted, but the peer was gone before we could look at it
        self.accept_errors_total = 0
        self._paused: dict[Listener, float] = {}  # listener -> resume no later than (monotonic)
        self._resume_requested = False
        self._exhaustion_logged_at: float | None = None
        for lst in listeners:
            lst.sock.setblocking(False)
            self.selector.register(lst.sock, selectors.EVENT_READ, lst)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="parbench-io", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def arm(self, inp: SocketInput) -> None:
        """Watch ``inp`` again (from any thread): its reader found nothing buffered."""
        self._arm_requests.append(inp)
        self._wake()

    def connection_released(self, lst: Listener) -> None:
        """A connection closed (from any thread): a file descriptor is free."""
        if self._paused:
            self._resume_requested = True
            self._wake()

    def _run(self) -> None:
        sel = self.selector
        while not self._stopping:
            timeout = 1.0
            if self._paused:
                timeout = max(0.0, min(self._paused.values()) - time.monotonic())
            for key, _ in sel.select(timeout=timeout):
                obj = key.data
                if obj is None:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                elif isinstance(obj, Listener):
                    self._accept(obj)
                else:
                    sel.unregister(key.fileobj)
                    obj.readable()
            while self._arm_requests:
                inp = self._arm_requests.popleft()
                if inp.watched:
                    self._register(inp)
            if self._paused:
                self._resume_paused()
            # Between turns the loop keeps nothing of a connection (it may close).
            key = obj = inp = None

    def _resume_paused(self) -> None:
        now = time.monotonic()
        requested, self._resume_requested = self._resume_requested, False
        for lst, until in list(self._paused.items()):
            if requested or now >= until:
                del self._paused[lst]
                self.selector.register(lst.sock, selectors.EVENT_READ, lst)

    def _pause(self, lst: Listener, exc: OSError) -> None:
        now = time.monotonic()
        last = self._exhaustion_logged_at
        if last is None or now - last >= EXHAUSTION_LOG_INTERVAL_S:
            self._exhaustion_logged_at = now
            _log(f"cannot accept connections on {lst.source_name}: {exc.strerror or exc}; "
                 f"not accepting until a connection closes (at most {ACCEPT_BACKOFF_S:g} s at a time); "
                 f"{self.accept_errors_total} failed accepts so far")
        self.selector.unregister(lst.sock)
        self._paused[lst] = time.monotonic() + ACCEPT_BACKOFF_S

    def _accept(self, lst: Listener) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            try:
                sock, _ = lst.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.accept_errors_total += 1
                if exc.errno in ACCEPT_EXHAUSTION_ERRNOS:
                    self._pause(lst, exc)
                    return
                continue  # the peer gave up before we accepted it (ECONNABORTED...)
            with lst.lock:
                full = lst.active >= lst.driver.max_connections
                if not full:
                    lst.active += 1
            if full:
                # syslog-ng: "Number of allowed concurrent connections
                # reached, rejecting connection".
                self.refused += 1
                sock.close()
                continue
            sock.setblocking(False)
            opts = self.engine.config.options
            max_msg = lst.driver.log_msg_size if lst.driver.log_msg_size is not None else opts.log_msg_size
            try:
                inp = SocketInput(sock, lst, self, max_msg)
            except OSError:
                # The peer is gone already (getpeername fails): nothing to read.
                self.vanished += 1
                sock.close()
                with lst.lock:
                    lst.active -= 1
                continue
            self.engine.connect(lst.source_name, inp, driver=lst.driver)
            self._register(inp)

    def _register(self, inp: SocketInput) -> None:
        try:
            self.selector.register(inp.sock, selectors.EVENT_READ, inp)
        except KeyError:
            # Already registered: by this connection (harmless) or by a
            # closed one whose file descriptor number was reused.
            key = self.selector.get_key(inp.sock)
            if key.data is not inp:
                self.selector.modify(inp.sock, selectors.EVENT_READ, inp)
        except (ValueError, OSError):
            pass  # closed meanwhile

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting and polling; connections are closed by the engine."""
        self._stopping = True
        self._wake()
        self._thread.join(timeout)
        for lst in self.listeners:
            try:
                lst.sock.close()
            except OSError:
                pass
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # a wake-up is already pending (BlockingIOError), or we are shutting down


def bind_listeners(config: Config) -> list[Listener]:
    listeners: list[Listener] = []
    try:
        for lp in config.log_paths:
            for src in lp.sources:
                name = source_key(src)
                if any(lst.source_name == name for lst in listeners):
                    continue
                for drv in src.drivers:
                    family = socket.AF_INET6 if ":" in drv.ip else socket.AF_INET
                    sock = socket.socket(family, socket.SOCK_STREAM)
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        sock.bind((drv.ip, drv.port))
                        sock.listen(LISTEN_BACKLOG)
                    except OSError as exc:
                        sock.close()
                        raise EngineError(f"{drv.loc}: cannot listen on {drv.ip} port {drv.port}: "
                                          f"{exc.strerror or exc}") from None
                    listeners.append(Listener(name, drv, sock))
    except BaseException:
        for lst in listeners:
            lst.sock.close()
        raise
    return listeners


def write_json_atomically(path: str, payload: dict) -> None:
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(tmp, target)


# --------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------


@click.command("serve")
@click.option("-f", "--cfgfile", "config_path", required=True, type=click.Path(dir_okay=False),
              help="syslog-ng configuration file (the subset parbench supports).")
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default=DEFAULT_PROFILE, show_default=True,
              help="Which real implementation's parallelize() behaviour to reproduce.")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Worker pool threads (default: max(2, CPU count)).")
@click.option("--ready-file", type=click.Path(dir_okay=False), default=None,
              help="Written atomically, as JSON with the bound ports, once every source listens.")
@click.option("--counters-out", type=click.Path(dir_okay=False), default=None,
              help="Write the counters JSON here on exit.")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop (as on SIGTERM) after this many seconds.")
def serve(config_path, profile, workers, ready_file, counters_out, max_seconds):
    """Run the reference parallelizer as a TCP service configured by a syslog-ng
    config file.  Stops on SIGTERM/SIGINT: stops accepting, drains what is in
    flight, flushes destinations and writes the counters JSON."""
    from parbench.reference.config import load_config

    prof = get_profile(profile)
    stop_event = threading.Event()
    stopped_by = ["error"]

    def on_signal(signum, frame):
        stopped_by[0] = signal.Signals(signum).name
        stop_event.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    engine = None
    loop = None
    listeners: list[Listener] = []
    try:
        # A ConfigError or EngineError (exit status 2) goes to the parbench
        # command's one handler, after the finally below has cleaned up.
        config = load_config(config_path, prof)
        try:
            engine = Engine(config, prof, workers=workers or default_workers(),
                            sink_factory=lambda dest: make_sink(dest, config.options))
            listeners = bind_listeners(config)
        except OSError as exc:
            raise EngineError(f"{config_path}: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None
        loop = IOLoop(engine, listeners)
        loop.start()
        if ready_file:
            write_json_atomically(ready_file, {
                "pid": os.getpid(),
                "sources": [{"source": lst.source_name, "ip": lst.sock.getsockname()[0],
                             "port": lst.sock.getsockname()[1]} for lst in listeners],
            })
        deadline = time.monotonic() + max_seconds if max_seconds else None
        while not stop_event.is_set():
            left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if left <= 0:
                stopped_by[0] = "max-seconds"
                break
            stop_event.wait(left)
    finally:
        if loop is not None:
            loop.stop()
        elif listeners:
            for lst in listeners:
                lst.sock.close()
        drained = True
        if engine is not None:
            drained = engine.stop(DRAIN_TIMEOUT)
            counters = engine.counters()
            if not drained:
                left = counters["accounting"]["queued_at_exit"]
                unread = sum(src["unread_at_exit_events"] for src in counters["sources"])
                _log(f"exiting with {left} messages queued (not delivered within {DRAIN_TIMEOUT:.0f} s, or the "
                     f"destination is down) and {unread} read but not yet taken in")
            if counters_out:
                counters["drained"] = drained
                counters["stopped_by"] = stopped_by[0]
                if loop is not None:
                    counters["refused_connections_total"] = loop.refused
                    counters["vanished_connections_total"] = loop.vanished
                    counters["accept_errors_total"] = loop.accept_errors_total
                write_json_atomically(counters_out, counters)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
