"""Deterministic message generation (numpy) and the loopback sender.

What each message looks like (header, padding, the 56-byte trailer) is
``harness.wire``'s; this module decides which messages a workload sends and
sends them.  Everything but the send-time field follows from the scenario's
seed.  Messages are built without a Python loop per message: a per-key table
of framed rows (header with the key + padding + trailer skeleton) is gathered
by the key sequence, the sequence fields are written as hex through a byte ->
two-chars lookup table, and the send time is stamped once per chunk as it is
sent.
"""
from __future__ import annotations

import heapq
import math
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from parbench.harness import wire
from parbench.harness.scenario import Workload
from parbench.harness.wire import Expected

# Messages generated for a duration run without a rate limit: the sender
# stops at the duration, or earlier when the plan runs out (a plan costs 6
# bytes a message, so it is capped).
DURATION_UNLIMITED_TOTAL_RATE = 1_000_000
DURATION_MAX_TOTAL_MESSAGES = 30_000_000
# Bytes of framed messages rendered per connection at a time.
SEND_CHUNK_BYTES = 1 << 20


@dataclass
class WorkloadPlan:
    workload: Workload
    key_names: tuple[str, ...]
    messages_per_connection: np.ndarray  # int64, planned (a cap in duration mode)
    offsets: np.ndarray  # int64 (n_connections + 1,)
    key_flat: np.ndarray  # key index per message, connections concatenated
    kseq_flat: np.ndarray  # uint32 sequence number within (connection, key)
    table: np.ndarray  # (n_keys, framed_len) uint8 framed row per key, C/S/Q/T fields zero
    framed_len: int
    trailer_at: int  # offset of the trailer within a framed row

    @property
    def n_connections(self) -> int:
        return len(self.messages_per_connection)

    @property
    def key_index(self) -> list[np.ndarray]:
        """Key index sequence of each connection (views)."""
        return [self.key_flat[self.offsets[c]:self.offsets[c + 1]] for c in range(self.n_connections)]

    @property
    def expected(self) -> Expected:
        return Expected(self.key_names, self.messages_per_connection.copy(), self.offsets,
                        self.key_flat, self.kseq_flat)

    def expected_for(self, sent: np.ndarray) -> Expected:
        """What the checker expects when connection c sent only its first sent[c] messages."""
        sent = np.minimum(np.asarray(sent, dtype=np.int64), self.messages_per_connection)
        if np.array_equal(sent, self.messages_per_connection):
            return self.expected
        offsets = np.zeros(len(sent) + 1, dtype=np.int64)
        np.cumsum(sent, out=offsets[1:])
        take = np.concatenate([np.arange(self.offsets[c], self.offsets[c] + sent[c]) for c in range(len(sent))]
                              ) if len(sent) else np.zeros(0, np.int64)
        return Expected(self.key_names, sent, offsets, self.key_flat[take], self.kseq_flat[take])


def _within_group_rank(groups: np.ndarray) -> np.ndarray:
    """For each element, how many earlier elements have the same value."""
    n = len(groups)
    order = np.argsort(groups, kind="stable")
    g_sorted = groups[order]
    starts = np.r_[0, np.flatnonzero(g_sorted[1:] != g_sorted[:-1]) + 1] if n else np.zeros(0, np.int64)
    run_len = np.diff(np.r_[starts, n])
    rank_sorted = np.arange(n, dtype=np.int64) - np.repeat(starts, run_len)
    rank = np.empty(n, dtype=np.uint32)
    rank[order] = rank_sorted
    return rank


def planned_messages(wl: Workload) -> int:
    if wl.messages_per_connection is not None:
        return wl.messages_per_connection
    if wl.rate_per_connection:
        return int(math.ceil(wl.rate_per_connection * wl.duration_s)) + 1
    total = min(DURATION_UNLIMITED_TOTAL_RATE * wl.duration_s, DURATION_MAX_TOTAL_MESSAGES)
    return max(1000, int(total / wl.connections))


def build_plan(workload: Workload) -> WorkloadPlan:
    wl = workload
    n_keys = len(wl.keys)
    n_conn = wl.connections
    m = planned_messages(wl)
    key_dtype = np.uint16 if n_keys <= 0xFFFF else np.uint32
    key_flat = np.empty(n_conn * m, dtype=key_dtype)
    kseq_flat = np.empty(n_conn * m, dtype=np.uint32)
    shared_p = np.cumsum(wl.distribution.probabilities(n_keys)) if wl.shared_keys else None
    for c in range(n_conn):
        rng = np.random.default_rng([wl.seed & 0xFFFFFFFFFFFFFFFF, c])
        if wl.shared_keys:
            own = None
            cum = shared_p
        else:
            own = np.arange(c, n_keys, n_conn)
            cum = np.cumsum(wl.distribution.probabilities(len(own)))
        cum = cum / cum[-1]
        pick = np.searchsorted(cum, rng.random(m), side="right")
        np.minimum(pick, len(cum) - 1, out=pick)
        keys_c = pick if own is None else own[pick]
        key_flat[c * m:(c + 1) * m] = keys_c
        kseq_flat[c * m:(c + 1) * m] = _within_group_rank(key_flat[c * m:(c + 1) * m])
    offsets = np.arange(n_conn + 1, dtype=np.int64) * m
    table, framed_len, trailer_at = _build_table(wl)
    return WorkloadPlan(workload=wl, key_names=tuple(wl.keys), messages_per_connection=np.full(n_conn, m, np.int64),
                        offsets=offsets, key_flat=key_flat, kseq_flat=kseq_flat, table=table,
                        framed_len=framed_len, trailer_at=trailer_at)


def _build_table(wl: Workload) -> tuple[np.ndarray, int, int]:
    pre, suf = wire.frame_prefix(wl.framing, wl.message_size), wire.frame_suffix(wl.framing)
    framed_len = len(pre) + wl.message_size + len(suf)
    trailer_at = len(pre) + wl.message_size - wire.TRAILER_LEN
    table = np.empty((len(wl.keys), framed_len), dtype=np.uint8)
    for k, name in enumerate(wl.keys):
        row = pre + wire.message(wl.format, wl.key_field, name, k, wl.message_size) + suf
        table[k] = np.frombuffer(row, dtype=np.uint8)
    return table, framed_len, trailer_at


def render_connection(plan: WorkloadPlan, conn: int, start: int = 0, count: int | None = None, *,
                      send_ns: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Framed messages start..start+count of connection ``conn`` as an
    (n, framed_len) uint8 array.  ``send_ns`` fills the send-time field
    (0 = left as zeros, so renders are byte-identical)."""
    total = int(plan.messages_per_connection[conn])
    if count is None:
        count = total - start
    count = max(0, min(count, total - start))
    base = int(plan.offsets[conn]) + start
    keys = plan.key_flat[base:base + count]
    if out is None:
        out = np.empty((count, plan.framed_len), dtype=np.uint8)
    else:
        out = out[:count]
    np.take(plan.table, keys, axis=0, out=out)
    t = plan.trailer_at
    out[:, t + wire.CONN.start:t + wire.CONN.stop] = wire.hex8(np.array([conn], dtype=np.uint32))[0]
    out[:, t + wire.KSEQ.start:t + wire.KSEQ.stop] = wire.hex8(plan.kseq_flat[base:base + count])
    out[:, t + wire.CSEQ.start:t + wire.CSEQ.stop] = wire.hex8(np.arange(start, start + count, dtype=np.uint32))
    if send_ns:
        out[:, t + wire.TIME.start:t + wire.TIME.stop] = wire.hex16(send_ns)
    return out


@dataclass
class SendResult:
    sent: np.ndarray  # int64 per connection: messages completely handed to the kernel
    planned: np.ndarray  # int64 per connection
    t_first_ns: int | None  # time.time_ns() of the first send
    t_last_ns: int | None  # time.time_ns() after the last send
    errors: dict[int, str] = field(default_factory=dict)  # connection -> what went wrong
    timed_out: bool = False  # the deadline stopped the sender early
    stopped: bool = False  # ``stop`` was set before everything was sent
    # Connections broken and opened again (``reconnect``): connection -> count.
    reconnects: dict[int, int] = field(default_factory=dict)
    # When each message was first handed over: per connection, the first
    # message index of every chunk rendered and its time.time_ns() (see sent_at).
    chunk_starts: list[np.ndarray] = field(default_factory=list)
    chunk_ns: list[np.ndarray] = field(default_factory=list)

    def sent_at(self, conn: np.ndarray, cseq: np.ndarray) -> np.ndarray:
        """time.time_ns() at which message ``cseq`` of connection ``conn``
        was first handed over (its chunk's time; 0 when never)."""
        out = np.zeros(len(conn), dtype=np.int64)
        for c in np.unique(conn):
            if c >= len(self.chunk_starts) or not len(self.chunk_starts[c]):
                continue
            mine = conn == c
            at = np.searchsorted(self.chunk_starts[c], cseq[mine], side="right") - 1
            out[mine] = np.where(at >= 0, self.chunk_ns[c][np.maximum(at, 0)], 0)
        return out

    @property
    def total_sent(self) -> int:
        return int(self.sent.sum())

    @property
    def complete(self) -> bool:
        return not self.errors and not self.timed_out


class _Conn:
    __slots__ = ("idx", "sock", "next", "pending", "pending_start", "bytes_sent", "buf", "wake")

    def __init__(self, idx: int, sock: socket.socket):
        self.idx = idx
        self.sock = sock
        self.next = 0  # next message index to render
        self.pending: memoryview | None = None
        self.pending_start = 0
        self.bytes_sent = 0
        self.buf: np.ndarray | None = None
        self.wake = 0.0


#: first wait before connecting again after a break (doubles up to RECONNECT_MAX_S)
RECONNECT_DELAY_S = 0.02
RECONNECT_MAX_S = 0.5


def send(plan: WorkloadPlan, host: str, port: int, *, deadline_s: float = 300.0,
         progress: Callable[[int], None] | None = None, connect_timeout: float = 5.0,
         chunk_bytes: int = SEND_CHUNK_BYTES, connections: Sequence[int] | None = None,
         stop: threading.Event | None = None,
         reconnect: Callable[[], tuple[str, int]] | None = None) -> SendResult:
    """Send every connection's messages concurrently (one thread, non-blocking
    sockets, so thousands of connections work), honouring the per-connection
    rate and the workload duration.  Gives up after ``deadline_s`` seconds
    (``timed_out``); a failing connection is recorded in ``errors`` and the
    others go on.  ``progress`` is called with the number of messages sent
    since its previous call (at most about 20 times a second).

    ``reconnect`` (a target that is restarted): a connection that breaks is
    opened again to the address ``reconnect()`` gives, retried until the
    deadline, and goes on with its first message not completely handed to
    the kernel (a message cut by the break is sent again whole; what the
    kernel had taken is counted as sent: if the break lost it, it is lost).
    ``connections``: send only these connection indices of the plan (a shard;
    default all).  ``stop``: when set, finish the chunks in flight and send
    no more (``stopped``); what was sent until then is in ``sent``."""
    wl = plan.workload
    n_conn = plan.n_connections
    planned = plan.messages_per_connection.copy()
    sent = np.zeros(n_conn, dtype=np.int64)
    errors: dict[int, str] = {}
    started = time.monotonic()
    hard_stop = started + deadline_s
    fl = plan.framed_len
    rate = wl.rate_per_connection
    chunk_rows = max(1, chunk_bytes // fl)
    if rate:
        # small chunks keep the pacing smooth: about 10 ms of messages
        chunk_rows = max(1, min(chunk_rows, int(rate / 100) or 1))
    conns: list[_Conn] = []
    reconnects: dict[int, int] = {}
    log_starts: list[list[int]] = [[] for _ in range(n_conn)]
    log_ns: list[list[int]] = [[] for _ in range(n_conn)]
    first_sent_end = [0] * n_conn
    sel = selectors.DefaultSelector()
    t_first: int | None = None
    t_last: int | None = None
    timed_out = False
    stopped = False
    reported = 0
    last_report = 0.0
    try:
        for c in (range(n_conn) if connections is None else connections):
            if stop is not None and stop.is_set():
                break  # the send loop below marks it stopped
            if time.monotonic() > hard_stop:
                errors[c] = "not connected: deadline reached while connecting"
                timed_out = True
                continue
            try:
                s = socket.create_connection((host, port), timeout=min(connect_timeout, max(0.1, hard_stop - time.monotonic())))
                s.setblocking(False)
            except OSError as e:
                errors[c] = f"connect to {host}:{port} failed: {e}"
                continue
            conns.append(_Conn(c, s))
        t0 = time.monotonic()
        end_time = t0 + wl.duration_s if wl.duration_s is not None else math.inf
        if stop is not None and stop.is_set():
            stopped, end_time = True, -math.inf
        # (wake time, connection index, conn) of rate-limited connections ahead of schedule
        sleeping: list[tuple[float, int, _Conn]] = []
        for cn in conns:
            sel.register(cn.sock, selectors.EVENT_WRITE, cn)
        active = len(conns)

        def finish(cn: _Conn, err: str | None = None) -> None:
            nonlocal active
            if err:
                errors[cn.idx] = err
            try:
                sel.unregister(cn.sock)
            except (KeyError, ValueError):
                pass
            cn.wake = -1.0  # a finished connection's heap entry is skipped
            cn.sock.close()
            cn.pending = None
            active -= 1

        # (time, connection index, conn, delay) of broken connections to open again
        broken: list[tuple[float, int, _Conn, float]] = []

        def break_off(cn: _Conn, err: OSError) -> None:
            """Give the connection up until it is opened again (``reconnect``)."""
            try:
                sel.unregister(cn.sock)
            except (KeyError, ValueError):
                pass
            cn.sock.close()
            done = cn.bytes_sent // fl
            sent[cn.idx] = done
            cn.next, cn.bytes_sent, cn.pending = done, done * fl, None
            cn.wake = -1.0
            reconnects[cn.idx] = reconnects.get(cn.idx, 0) + 1
            heapq.heappush(broken, (time.monotonic() + RECONNECT_DELAY_S, cn.idx, cn, RECONNECT_DELAY_S))

        def open_again(now: float) -> None:
            while broken and broken[0][0] <= now:
                _, _, cn, delay = heapq.heappop(broken)
                try:
                    s = socket.create_connection(reconnect(), timeout=min(0.5, max(0.05, hard_stop - now)))
                    s.setblocking(False)
                except OSError:
                    delay = min(delay * 2, RECONNECT_MAX_S)
                    heapq.heappush(broken, (time.monotonic() + delay, cn.idx, cn, delay))
                    return
                cn.sock, cn.wake = s, 0.0
                sel.register(s, selectors.EVENT_WRITE, cn)

        while active:
            now = time.monotonic()
            if now >= hard_stop:
                timed_out = True
                break
            if stop is not None and not stopped and stop.is_set():
                # finish the chunks in flight (a message cut in half would
                # reach the server as a malformed one), start no new ones
                stopped = True
                end_time = -math.inf
                while sleeping:
                    _, _, cn = heapq.heappop(sleeping)
                    if cn.wake >= 0:
                        sel.register(cn.sock, selectors.EVENT_WRITE, cn)
            while sleeping and sleeping[0][0] <= now:
                _, _, cn = heapq.heappop(sleeping)
                if cn.wake >= 0:
                    sel.register(cn.sock, selectors.EVENT_WRITE, cn)
            if broken:
                open_again(now)
            timeout = min(0.05, hard_stop - now)
            if sleeping:
                timeout = max(0.0, min(timeout, sleeping[0][0] - now))
            if broken:
                timeout = max(0.0, min(timeout, broken[0][0] - now))
            events = sel.select(timeout)
            for key, _ in events:
                cn: _Conn = key.data
                if cn.pending is None:
                    now = time.monotonic()
                    if now >= end_time or cn.next >= planned[cn.idx]:
                        finish(cn)
                        continue
                    n = chunk_rows
                    if rate:
                        due = int((now - t0) * rate) + 1 - cn.next
                        if due <= 0:
                            cn.wake = t0 + (cn.next / rate)
                            sel.unregister(cn.sock)
                            heapq.heappush(sleeping, (cn.wake, cn.idx, cn))
                            continue
                        n = min(n, due)
                    if cn.buf is None:
                        cn.buf = np.empty((chunk_rows, fl), dtype=np.uint8)
                    stamp = time.time_ns()
                    if t_first is None:
                        t_first = stamp
                    rows = render_connection(plan, cn.idx, cn.next, n, send_ns=stamp, out=cn.buf)
                    if cn.next >= first_sent_end[cn.idx]:  # a message sent again keeps its first time
                        log_starts[cn.idx].append(cn.next)
                        log_ns[cn.idx].append(stamp)
                        first_sent_end[cn.idx] = cn.next + len(rows)
                    cn.next += len(rows)
                    cn.pending = memoryview(rows).cast("B")
                    cn.pending_start = 0
                try:
                    k = cn.sock.send(cn.pending[cn.pending_start:])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    if reconnect is not None:
                        break_off(cn, e)
                        continue
                    sent[cn.idx] = cn.bytes_sent // fl
                    finish(cn, f"send failed after {sent[cn.idx]} messages: {e}")
                    continue
                cn.pending_start += k
                cn.bytes_sent += k
                if cn.pending_start >= len(cn.pending):
                    cn.pending = None
                sent[cn.idx] = cn.bytes_sent // fl
                t_last = time.time_ns()
            if progress is not None:
                now = time.monotonic()
                if now - last_report >= 0.05:
                    total = int(sent.sum())
                    if total > reported:
                        progress(total - reported)
                        reported = total
                    last_report = now
    finally:
        for cn in conns:
            try:
                cn.sock.close()
            except OSError:
                pass
        sel.close()
    if progress is not None:
        total = int(sent.sum())
        if total > reported:
            progress(total - reported)
    if wl.duration_s is None:
        for cn in conns:
            if sent[cn.idx] < planned[cn.idx] and cn.idx not in errors and timed_out:
                errors.setdefault(cn.idx, f"deadline of {deadline_s}s reached after {sent[cn.idx]} of {planned[cn.idx]} messages")
    return SendResult(sent=sent, planned=planned, t_first_ns=t_first, t_last_ns=t_last, errors=errors,
                      timed_out=timed_out, stopped=stopped, reconnects=reconnects,
                      chunk_starts=[np.asarray(x, dtype=np.int64) for x in log_starts],
                      chunk_ns=[np.asarray(x, dtype=np.int64) for x in log_ns])
