"""Loopback listener for a target's output, and vectorized parsing of it.

``Collector`` accepts any number of connections on 127.0.0.1 (a target with
several writer threads may open several), and keeps, per connection (an
output *stream*), the bytes in arrival order plus the receive time
(``time.time_ns()``) of every chunk read from the socket.  ``stop()`` returns a
``Capture``; ``Capture.from_file`` makes one from a file of output lines.

``parse_capture`` turns a capture into ``Records`` with no Python loop per
message: newlines are found with numpy, the trailer bytes before each are
gathered through a sliding-window view and decoded by ``harness.wire``
(prefix, separators and hex digits validated), then byte-swapped into
integers.
A line's receive time is the receive time of the chunk holding its newline.

Faults (``harness.faults``) act on the collector as the target's destination:
``go_down()`` / ``come_up()`` (stop listening and close every connection,
then listen again on the same port), ``reset_connections()`` (close every
connection with a TCP reset) and ``set_read_rate()`` (read at most so many
bytes a second).  Before it closes a connection, the collector reads what
the kernel already acknowledged for it, so a break loses only what the
target had not yet handed over; ``harness.tcp_queues`` measures that.

Order across streams: bytes within one stream are in the order the target
wrote them; across streams only the receive time says anything.  Records are
therefore put in one global arrival order sorted by (chunk receive time,
stream, position in the stream), which is exact within a stream and as good
as the receive clock across streams.
"""
from __future__ import annotations

import os
import queue
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from parbench.errors import RunFailure
from parbench.harness import tcp_queues
from parbench.harness.wire import TRAILER_LEN, decode_trailers

_WAKE = object()  # selector data of the collector's wake-up socket
# A small kernel receive buffer for a collector that plays a slow destination.
SLOW_RCVBUF = 64 << 10
# Bytes scanned for newlines at a time: bounds the temporaries of parsing.
PARSE_BLOCK_BYTES = 8 << 20
# Lines decoded at a time: bounds the (lines, 56) trailer copies.
PARSE_BLOCK_LINES = 1 << 16
# A connection's unparsed bytes beyond this are parsed while receiving.
COMPACT_BYTES = 64 << 20
# A line longer than this is malformed, counted with its length and never
# held whole: twice the largest message a scenario sends (1 MiB).
MAX_LINE_BYTES = 2 << 20


#: bytes of a malformed line shown as its example
EXAMPLE_BYTES = 160


def _example_text(head: bytes, n_bytes: int, terminated: bool) -> str:
    """What a malformed line's example shows: its start, and for an
    over-long one its length (``n_bytes`` with the newline)."""
    text = head.decode("utf-8", "replace")
    if n_bytes > MAX_LINE_BYTES:
        text += (f" ... [over-long line: {n_bytes:,} bytes{'' if terminated else ', no newline at the end'}; "
                 f"longest allowed {MAX_LINE_BYTES:,}]")
    return text


@dataclass
class ParsedBlock:
    """Lines at the start of a stream that the collector already parsed while
    receiving (so a long capture holds ~50 bytes a message, not the line)."""

    fields: list  # conn, key, kseq, cseq, sent, recv, stream (unset), line: as in Records
    n_lines: int
    malformed: int
    examples: list[dict]  # as Records.malformed_examples, stream 0
    n_bytes: int = 0  # raw bytes these lines took


def _over_long_block(head: bytes, n_bytes: int, line_offset: int, terminated: bool) -> ParsedBlock:
    """One over-long line, skipped while reading (only its head was kept):
    a malformed line, no records."""
    fields = [np.zeros(0, dt) for dt in (np.uint32, np.uint32, np.uint32, np.uint32, np.int64, np.int64)]
    fields += [None, np.zeros(0, np.int64)]
    example = {"stream": 0, "line": line_offset + 1, "text": _example_text(head, n_bytes, terminated)}
    return ParsedBlock(fields, 1, 1, [example], n_bytes)


class _LineSkipper:
    """An over-long line being read past: its head, its size so far."""

    __slots__ = ("head", "n_bytes")

    def __init__(self, data: bytes):
        self.head = data[:EXAMPLE_BYTES]
        self.n_bytes = len(data)

    def feed(self, data: bytes) -> int:
        """Skip ``data`` up to the end of the line: the offset after its
        newline, or -1 when the line goes on."""
        end = data.find(b"\n")
        self.n_bytes += len(data) if end < 0 else end + 1
        return -1 if end < 0 else end + 1


@dataclass
class Stream:
    """One output connection (or one file): its bytes and chunk receive times."""

    data: bytes  # the bytes after the parsed blocks, starting at a line boundary
    chunk_ends: np.ndarray  # int64: end offset of each received chunk within data (cumulative)
    chunk_ns: np.ndarray  # int64: time.time_ns() when that chunk was read
    parsed: list[ParsedBlock] = field(default_factory=list)


@dataclass
class Capture:
    streams: list[Stream]
    has_recv_times: bool = True
    errors: list[str] = field(default_factory=list)  # what went wrong while collecting
    # True when one of ``errors`` means output the target sent is missing from
    # the capture (a connection not accepted, the receive loop died, it did
    # not stop in time): then "lost" messages are not the target's doing.
    data_lost: bool = False

    @classmethod
    def from_file(cls, path: str | Path, block_bytes: int = 8 << 20) -> "Capture":
        """A capture file of output lines (``-`` = standard input); it carries no
        receive times, so latency is unknown.  Read in blocks whose complete
        lines are parsed right away, so a large file is never held whole;
        a line longer than ``MAX_LINE_BYTES`` is read past (one malformed
        line, with its length), never held."""
        import sys

        f = sys.stdin.buffer if str(path) == "-" else open(path, "rb")
        parsed: list[ParsedBlock] = []
        lines = 0
        rest = b""
        skipping: _LineSkipper | None = None
        zero = np.zeros(1, np.int64)
        try:
            while True:
                block = f.read(block_bytes)
                if not block:
                    break
                if skipping is not None:
                    end = skipping.feed(block)
                    if end < 0:
                        continue
                    parsed.append(_over_long_block(skipping.head, skipping.n_bytes, lines, True))
                    lines += 1
                    skipping = None
                    block = block[end:]
                data = rest + block if rest else block
                cut = data.rfind(b"\n") + 1
                if cut:
                    pb = _parse_block(data[:cut], np.array([cut], np.int64), zero, lines)
                    parsed.append(pb)
                    lines += pb.n_lines
                rest = data[cut:]
                if len(rest) >= MAX_LINE_BYTES:
                    skipping, rest = _LineSkipper(rest), b""
        finally:
            if f is not sys.stdin.buffer:
                f.close()
        if skipping is not None:
            parsed.append(_over_long_block(skipping.head, skipping.n_bytes, lines, False))
        stream = Stream(rest, np.array([len(rest)], np.int64), zero.copy(), parsed)
        return cls([stream], has_recv_times=False)

    @classmethod
    def from_bytes(cls, data: bytes, recv_ns: int = 0, has_recv_times: bool = True) -> "Capture":
        return cls([Stream(bytes(data), np.array([len(data)], np.int64), np.array([recv_ns], np.int64))],
                   has_recv_times=has_recv_times)

    @property
    def total_bytes(self) -> int:
        return sum(len(s.data) + sum(b.n_bytes for b in s.parsed) for s in self.streams)


@dataclass
class Records:
    """Parsed well-formed output lines, in global arrival order."""

    conn: np.ndarray  # uint32 connection index (trailer C)
    key: np.ndarray  # uint32 key index (K)
    kseq: np.ndarray  # uint32 sequence within (connection, key) (S)
    cseq: np.ndarray  # uint32 sequence within the connection (Q)
    sent_ns: np.ndarray  # int64 send time (T)
    recv_ns: np.ndarray  # int64 receive time of the chunk holding the line
    arrival: np.ndarray  # int64 global arrival index (0..n-1)
    stream: np.ndarray  # uint32 output stream the line came on
    line: np.ndarray  # int64 line index within its stream (0-based, malformed lines counted)
    lines_total: int = 0
    malformed: int = 0
    # the first malformed lines: {"stream": S, "line": L (1-based), "text": its start}
    malformed_examples: list[dict] = field(default_factory=list)
    incomplete_tails: int = 0  # streams that ended in the middle of a line
    has_recv_times: bool = True

    def __len__(self) -> int:
        return len(self.conn)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.conn, self.key, self.kseq, self.cseq, self.sent_ns, self.recv_ns,
                                      self.arrival, self.stream, self.line))


class _Out:
    """The record arrays, allocated once for every line of the capture (an
    upper bound: malformed lines are dropped at the end), filled block by
    block so parsing holds no per-block copies of its results."""

    def __init__(self, n: int):
        self.conn = np.empty(n, np.uint32)
        self.key = np.empty(n, np.uint32)
        self.kseq = np.empty(n, np.uint32)
        self.cseq = np.empty(n, np.uint32)
        self.sent = np.empty(n, np.int64)
        self.recv = np.empty(n, np.int64)
        self.stream = np.empty(n, np.uint32)
        self.line = np.empty(n, np.int64)
        self.n = 0

    def fields(self):
        return (self.conn, self.key, self.kseq, self.cseq, self.sent, self.recv, self.stream, self.line)


def _newlines(buf: np.ndarray) -> np.ndarray:
    """Offsets of every newline (scanned in blocks to bound the temporaries)."""
    parts = [np.flatnonzero(buf[a:a + PARSE_BLOCK_BYTES] == 10) + a for a in range(0, len(buf), PARSE_BLOCK_BYTES)]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _parse_stream(stream: Stream, stream_idx: int, nl_all: np.ndarray, out: _Out, n_examples: int,
                  examples: list[dict], line_offset: int = 0):
    buf = np.frombuffer(stream.data, dtype=np.uint8)
    windows = sliding_window_view(buf, TRAILER_LEN) if len(buf) >= TRAILER_LEN else None
    malformed = 0
    for line_base in range(0, len(nl_all), PARSE_BLOCK_LINES):
        nl = nl_all[line_base:line_base + PARSE_BLOCK_LINES]
        starts = np.empty_like(nl)
        starts[0] = nl_all[line_base - 1] + 1 if line_base else 0
        starts[1:] = nl[:-1] + 1
        length = nl - starts  # without the newline
        long_enough = (length >= TRAILER_LEN) & (length < MAX_LINE_BYTES)
        all_long = bool(long_enough.all())
        cand = nl if all_long else nl[long_enough]
        if len(cand):
            ok, words = decode_trailers(windows[cand - TRAILER_LEN])
        else:
            ok, words = np.zeros(0, bool), np.zeros((0, 6), ">u4")
        n_good = len(words)
        n_bad = len(nl) - n_good
        if n_bad:
            good = np.zeros(len(nl), dtype=bool)
            good[np.flatnonzero(long_enough)[ok]] = True
            malformed += n_bad
            for i in np.flatnonzero(~good)[:max(0, n_examples - len(examples))]:
                text = _example_text(bytes(buf[starts[i]:nl[i]][:EXAMPLE_BYTES]), int(length[i]) + 1, True)
                examples.append({"stream": stream_idx, "line": int(line_offset + line_base + i + 1), "text": text})
            good_nl = nl[good]
        else:
            good_nl = nl
        del starts, long_enough, cand, length
        i, j = out.n, out.n + n_good
        out.conn[i:j] = words[:, 0]
        out.key[i:j] = words[:, 1]
        out.kseq[i:j] = words[:, 2]
        out.cseq[i:j] = words[:, 3]
        sent = out.sent[i:j]
        sent[:] = words[:, 4]
        sent <<= 32
        sent |= words[:, 5]
        chunk = np.searchsorted(stream.chunk_ends, good_nl, side="right")
        np.minimum(chunk, len(stream.chunk_ns) - 1, out=chunk)
        out.recv[i:j] = stream.chunk_ns[chunk]
        out.stream[i:j] = stream_idx
        if n_bad:
            out.line[i:j] = np.flatnonzero(good) + (line_offset + line_base)
        else:
            out.line[i:j] = np.arange(line_offset + line_base, line_offset + line_base + n_good)
        out.n = j
    incomplete = 1 if len(buf) and buf[-1] != 10 else 0
    return len(nl_all), malformed, incomplete


def parse_capture(capture: Capture, *, n_examples: int = 5) -> Records:
    examples: list[dict] = []
    lines_total = malformed = incomplete = 0
    newlines = [_newlines(np.frombuffer(s.data, dtype=np.uint8)) for s in capture.streams]
    # A well-formed line takes at least TRAILER_LEN + 1 bytes: no more records than that.
    out = _Out(sum(min(len(x), len(st.data) // (TRAILER_LEN + 1) + 1) for x, st in zip(newlines, capture.streams))
               + sum(len(b.fields[0]) for st in capture.streams for b in st.parsed))
    for si, s in enumerate(capture.streams):
        line_offset = 0
        for block in s.parsed:
            i, j = out.n, out.n + len(block.fields[0])
            for dst, src in zip(out.fields(), block.fields):
                if src is not None:
                    dst[i:j] = src
            out.stream[i:j] = si
            out.n = j
            line_offset += block.n_lines
            malformed += block.malformed
            # block examples were written before the stream had its index
            examples.extend(dict(e, stream=si) for e in block.examples[:max(0, n_examples - len(examples))])
        n_lines, bad, inc = _parse_stream(s, si, newlines[si], out, n_examples, examples, line_offset)
        newlines[si] = None
        lines_total += line_offset + n_lines
        malformed += bad
        incomplete += inc
    n = out.n
    fields = [f[:n].copy() if n < len(f) else f for f in out.fields()]
    del out
    if len(capture.streams) > 1 and n:
        # merge streams by receive time; stable within a stream (recv is non-decreasing there)
        order = np.lexsort((fields[7], fields[6], fields[5]))
        for k in range(len(fields)):
            fields[k] = fields[k][order]
        del order
    conn, key, kseq, cseq, sent, recv, stream, line = fields
    return Records(conn=conn, key=key, kseq=kseq, cseq=cseq, sent_ns=sent, recv_ns=recv,
                   arrival=np.arange(n, dtype=np.int64), stream=stream, line=line, lines_total=lines_total,
                   malformed=malformed, malformed_examples=examples, incomplete_tails=incomplete,
                   has_recv_times=capture.has_recv_times)


def _parse_block(data: bytes, chunk_ends: np.ndarray, chunk_ns: np.ndarray, line_offset: int,
                 n_examples: int = 5) -> ParsedBlock:
    stream = Stream(data, chunk_ends, chunk_ns)
    nl = _newlines(np.frombuffer(data, dtype=np.uint8))
    out = _Out(min(len(nl), len(data) // (TRAILER_LEN + 1) + 1))
    examples: list[dict] = []
    n_lines, bad, _ = _parse_stream(stream, 0, nl, out, n_examples, examples, line_offset)
    n = out.n
    fields = [f[:n].copy() if n < len(f) else f for f in out.fields()]
    fields[6] = None  # the stream index is given when the capture is assembled
    return ParsedBlock(fields, n_lines, bad, examples, len(data))


# struct tcp_info (linux/tcp.h): tcpi_bytes_received, Linux >= 4.1
_TCP_INFO_LEN = 136
_TCPI_BYTES_RECEIVED = 128
# Times a closing connection is read again because more arrived meanwhile.
DRAIN_ROUNDS = 1000


def _bytes_received(sock: socket.socket) -> int | None:
    """Data bytes the kernel received (and acknowledged) on ``sock``; None
    when it cannot say."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
        return struct.unpack_from("Q", info, _TCPI_BYTES_RECEIVED)[0] if len(info) >= _TCP_INFO_LEN else None
    except (OSError, AttributeError, struct.error):
        return None


class _Conn:
    __slots__ = ("sock", "chunks", "ends", "times", "size", "open", "parsed", "lines_parsed", "total",
                 "since_newline", "skipping")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.chunks: list[bytes] = []  # received bytes not parsed yet
        self.ends: list[int] = []  # cumulative end of each chunk within them
        self.times: list[int] = []
        self.size = 0  # bytes not parsed yet
        self.total = 0  # bytes received
        self.open = True
        self.parsed: list[ParsedBlock] = []
        self.lines_parsed = 0
        self.since_newline = 0  # bytes received after the last newline
        self.skipping: _LineSkipper | None = None  # an over-long line being read past

    def end_skipping(self, terminated: bool) -> None:
        self.parsed.append(_over_long_block(self.skipping.head, self.skipping.n_bytes, self.lines_parsed, terminated))
        self.lines_parsed += 1
        self.skipping = None


class Collector:
    """Listens on 127.0.0.1 (any free port, ``.port``) for a target's output.

    Use as a context manager or call ``stop()`` in a ``finally``."""

    RECV_BYTES = 1 << 18

    def __init__(self, host: str = "127.0.0.1", port: int = 0, compact_bytes: int = COMPACT_BYTES,
                 rcvbuf: int | None = None):
        # A connection's unparsed bytes beyond this are parsed into records
        # while receiving, so long runs do not keep every raw line in memory.
        self.compact_bytes = compact_bytes
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the collector binds loopback only")
        family = socket.AF_INET6 if host == "::1" else socket.AF_INET
        # Kernel receive buffer of every connection (None: the kernel's
        # autotuning); set on the listener, so accepted sockets start with it.
        self.rcvbuf = rcvbuf
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if rcvbuf:
                self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self._listener.bind((host if host != "localhost" else "127.0.0.1", port))
            self._listener.listen(1024)
            self._listener.setblocking(False)
        except OSError:
            self._listener.close()
            raise
        self.host = host
        self.port = self._listener.getsockname()[1]
        self._conns: list[_Conn] = []
        self._newlines = 0
        self._bytes = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._error: str | None = None
        self._data_lost = False
        self._capture: Capture | None = None
        self._family = family
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, selectors.EVENT_READ, None)
        # Faults: commands run by the receive thread, woken through a socket pair.
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._rate: float | None = None  # bytes a second, None = as fast as it comes
        self._tokens = 0.0
        self._tokens_at = 0.0
        self._thread = threading.Thread(target=self._run, name="parbench-collector", daemon=True)
        self._thread.start()

    def __enter__(self) -> "Collector":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def received_messages(self) -> int:
        """Lines received so far (newline count): cheap, for progress and quiescence."""
        return self._newlines

    def received_bytes(self) -> int:
        return self._bytes

    @property
    def connections(self) -> int:
        return len(self._conns)

    def _read(self, c: _Conn, limit: int | None = None) -> bool:
        if not c.open:  # closed by a fault earlier in the same batch of events
            return False
        try:
            data = c.sock.recv(self.RECV_BYTES if limit is None else max(1, min(limit, self.RECV_BYTES)))
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            self._sel.unregister(c.sock)
            c.sock.close()
            c.open = False
            return False
        now = time.time_ns()
        c.total += len(data)
        self._bytes += len(data)
        self._newlines += data.count(b"\n")
        if c.skipping is not None:
            end = c.skipping.feed(data)
            if end < 0:
                return True
            c.end_skipping(True)
            data = data[end:]
            if not data:
                return True
        last = data.rfind(b"\n")
        c.since_newline = len(data) - last - 1 if last >= 0 else c.since_newline + len(data)
        c.chunks.append(data)
        c.size += len(data)
        c.ends.append(c.size)
        c.times.append(now)
        if c.size >= self.compact_bytes or c.since_newline >= MAX_LINE_BYTES:
            try:
                self._compact(c)
            except Exception as e:  # noqa: BLE001 - keep receiving; the raw bytes are still there
                self._error = f"compacting a stream failed, kept raw: {e!r}"
                self.compact_bytes = 1 << 62
        return True

    def _compact(self, c: _Conn) -> None:
        """Parse the complete lines received so far and keep only their records."""
        data = b"".join(c.chunks)
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) < MAX_LINE_BYTES:
            c.chunks = [data]
            return
        if cut:
            block = _parse_block(data[:cut], np.array(c.ends, np.int64), np.array(c.times, np.int64),
                                 c.lines_parsed)
            c.parsed.append(block)
            c.lines_parsed += block.n_lines
        rest = data[cut:]
        if len(rest) >= MAX_LINE_BYTES:
            c.skipping, rest = _LineSkipper(rest), b""
            c.since_newline = 0
        c.chunks = [rest] if rest else []
        c.ends = [len(rest)] if rest else []
        c.times = [c.times[-1]] if rest else []
        c.size = len(rest)

    def _accept(self) -> None:
        while self._listener is not None:
            try:
                s, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._error = f"accept failed: {e}"
                self._data_lost = True
                return
            s.setblocking(False)
            c = _Conn(s)
            with self._lock:
                self._conns.append(c)
            self._sel.register(s, selectors.EVENT_READ, c)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                budget = self._read_budget()
                if budget is not None and budget < 1:
                    # Slow: no reading until the budget refills; commands and
                    # new connections are still served.
                    time.sleep(min(0.01, (1 - budget) / self._rate))
                    for key, _ in self._sel.select(0):
                        if key.data is None:
                            self._accept()
                        elif key.data is _WAKE:
                            self._run_commands()
                    continue
                for key, _ in self._sel.select(0.05):
                    if key.data is None:
                        self._accept()
                    elif key.data is _WAKE:
                        self._run_commands()
                    elif budget is None:
                        self._read(key.data)
                    elif budget >= 1:
                        before = self._bytes
                        self._read(key.data, int(budget))
                        budget -= self._bytes - before
                        self._tokens -= self._bytes - before
            # drain whatever is already readable, without waiting for more
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                events = self._sel.select(0)
                progressed = False
                for key, _ in events:
                    if key.data is _WAKE:
                        self._run_commands()
                    elif key.data is None:
                        n_before = len(self._conns)
                        self._accept()
                        progressed = progressed or len(self._conns) > n_before
                    elif self._read(key.data):
                        progressed = True
                if not progressed:
                    break
        except Exception as e:  # noqa: BLE001 - reported through stop()
            self._error = f"collector failed: {e!r}"
            self._data_lost = True

    # ---------------------------------------------------------------- faults

    def go_down(self, timeout: float = 5.0) -> dict:
        """Stop listening and close every connection (after reading what its
        kernel already holds).  Returns what was done: ``connections``
        closed, ``in_flight_bytes`` the target had handed to them that the
        collector's kernel had not acknowledged yet (None without /proc)."""
        return self._command("down", timeout)

    def come_up(self, timeout: float = 5.0) -> dict:
        """Listen again on the same port."""
        return self._command("up", timeout)

    def reset_connections(self, timeout: float = 5.0) -> dict:
        """Close every connection with a TCP reset (after reading what its
        kernel already holds); the listener stays.  Returns as ``go_down``."""
        return self._command("reset", timeout)

    def set_read_rate(self, bytes_per_s: float | None) -> None:
        """Read at most ``bytes_per_s`` bytes a second over all connections
        (None: as fast as data comes).  For the slowness to reach the
        target, make the collector with a small ``rcvbuf``: the kernel's
        own buffers (tens of MB with autotuning, and an advertised window
        never shrinks) would otherwise absorb the backlog."""
        self._tokens, self._tokens_at = 0.0, time.monotonic()
        self._rate = float(bytes_per_s) if bytes_per_s else None

    def _read_budget(self) -> float | None:
        rate = self._rate
        if rate is None:
            return None
        now = time.monotonic()
        # at most a tenth of a second's worth saved up
        self._tokens = min(self._tokens + (now - self._tokens_at) * rate, max(1.0, rate / 10))
        self._tokens_at = now
        return self._tokens

    def _command(self, name: str, timeout: float) -> dict:
        done = threading.Event()
        result: dict = {}
        self._commands.put((name, done, result))
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if not done.wait(timeout):
            raise RuntimeError(f"the collector did not carry out {name!r} within {timeout:g}s")
        if "error" in result:
            raise RuntimeError(result["error"])
        return result

    def _run_commands(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            try:
                name, done, result = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                if name == "up":
                    self._listen_again()
                else:
                    result.update(self._close_all(reset=name == "reset", stop_listening=name == "down"))
            except Exception as exc:  # noqa: BLE001 - reported to the caller
                result["error"] = f"{name}: {exc}"
            done.set()

    def _close_all(self, reset: bool, stop_listening: bool) -> dict:
        if self._listener is not None:
            self._accept()  # a connection the kernel completed would be reset unread with the listener
            if stop_listening:
                self._sel.unregister(self._listener)
                self._listener.close()
                self._listener = None
        open_conns = [c for c in self._conns if c.open]
        in_flight = tcp_queues.queued(self.port)
        for c in open_conns:
            # Everything the kernel acknowledged is read before the close
            # (TCP_INFO says how much that is): what the target handed over
            # is delivered, only what it had not handed over yet is cut off.
            for _ in range(DRAIN_ROUNDS):
                while c.open and self._read(c):
                    pass
                acked = _bytes_received(c.sock) if c.open else None
                if acked is None or acked <= c.total:
                    break
            if not c.open:
                continue
            self._sel.unregister(c.sock)
            if reset:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.sock.close()
            c.open = False
        return {"connections": len(open_conns),
                "in_flight_bytes": in_flight.to_port if in_flight is not None else None}

    def _listen_again(self) -> None:
        if self._listener is not None:
            return
        deadline = time.monotonic() + 5.0
        while True:
            sock = socket.socket(self._family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if self.rcvbuf:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
                sock.bind((self.host if self.host != "localhost" else "127.0.0.1", self.port))
                sock.listen(1024)
                sock.setblocking(False)
                break
            except OSError as exc:
                sock.close()
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"cannot listen on port {self.port} again: {exc}") from None
                time.sleep(0.05)
        self._listener = sock
        self._sel.register(sock, selectors.EVENT_READ, None)

    def stop(self, timeout: float = 5.0) -> Capture:
        """Stop listening, read what is already buffered, close everything and
        return the capture.  Safe to call more than once."""
        if self._capture is not None:
            return self._capture
        self._stop.set()
        self._thread.join(timeout)
        errors = [self._error] if self._error else []
        if self._thread.is_alive():
            errors.append(f"the receive thread did not stop within {timeout:g}s; the capture may be incomplete")
            self._data_lost = True
        try:
            for c in self._conns:
                if c.open:
                    c.sock.close()
            if self._listener is not None:
                self._listener.close()
            self._wake_r.close()
            self._wake_w.close()
            self._sel.close()
        except OSError:
            pass
        for c in self._conns:
            if c.skipping is not None:
                c.end_skipping(False)
        streams = [Stream(b"".join(c.chunks), np.array(c.ends, np.int64), np.array(c.times, np.int64), c.parsed)
                   for c in self._conns if c.total]
        for c in self._conns:
            c.chunks = []
        self._capture = Capture(streams, errors=errors, data_lost=self._data_lost)
        return self._capture

    @property
    def error(self) -> str | None:
        return self._error


def write_capture(capture: Capture, path: str | Path) -> None:
    """Concatenate the streams into one file of lines (for ``parbench check``).

    A stream the collector compacted while receiving (more than its
    ``compact_bytes``) no longer holds the raw lines of its parsed blocks, so
    such a capture is refused rather than written without them; run
    ``parbench collect`` (which writes lines as they arrive) for captures of
    that size."""
    compacted = sum(b.n_lines for s in capture.streams for b in s.parsed)
    if compacted:
        raise RunFailure(f"cannot write the capture to {path}: {compacted} lines were parsed while receiving "
                         "and their raw bytes are gone (use parbench collect for captures this large)")
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        for s in capture.streams:
            f.write(s.data)
    os.replace(tmp, path)
