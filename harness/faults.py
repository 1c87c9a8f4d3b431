"""Faults during a run: a scenario's ``[faults]`` played on a timeline, what
an implementation promises under them, and what each fault cost.

The timeline starts when sending starts.  Faults act where a real
deployment fails:

* ``destination_down``: the collector (the target's destination) stops
  listening and closes every connection, for ``for_s`` seconds;
* ``destination_slow``: the collector reads at most ``bytes_per_s``;
* ``connection_reset``: the collector resets every connection (TCP RST);
* ``target_restart``: the target is killed (SIGKILL) and started again
  (``Target.restart``), and the sender reconnects to it.

Before the collector breaks a connection it reads what its kernel already
acknowledged; just before a break or a kill, the bytes the kernel still held
in the affected connections are measured (``harness.tcp_queues``).

What an implementation promises (``promise``) is stated per fault; a run
is checked against it:

* with flow control, a slow destination stops the source: nothing may be
  lost (``destination_slow``);
* with flow control, a destination that goes down or resets a connection
  loses nothing that the implementation still holds; what it had already
  handed to the kernel for a connection that then broke is another matter.
  TCP acknowledges to the kernel, not to the program: an implementation
  that counts a message delivered once written (syslog-ng, AxoSyslog) may
  lose what was in its socket's send buffer at the break, at most the
  kernel's largest send buffer (``tcp_wmem``) per broken connection.  One
  that keeps what the peer's TCP has not acknowledged and sends it again
  (the reference: ``TargetKind.keeps_unacknowledged``) may lose nothing;
* a SIGKILL loses what the process held: with flow control at most its
  source window (``log_iw_size`` messages read and not yet delivered) plus
  what the kernel held in its input connections at the kill (measured), so
  a run may lose up to that and no more;
* without flow control an implementation drops what it cannot deliver:
  losses are allowed, counted and reported, next to the implementation's
  own count of dropped messages.

Duplicates and broken per-key order stay prohibited under every fault.

``recover_s`` of a fault: from its end (the destination back, the target
ready again) until every message sent before that end that arrived at all
had arrived, and the first message sent after it too.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from parbench.harness import tcp_queues
from parbench.harness.scenario import Fault

#: how long the collector may take to act on a fault
COLLECTOR_TIMEOUT_S = 10.0
#: how long a restarted target may take to be ready again
RESTART_TIMEOUT_S = 30.0
#: how long after a break or kill a message may still have been lost to it
#: (written into the broken connection before the reset came back)
BREAK_SLACK_S = 0.1


@dataclass
class AppliedFault:
    """A fault as it happened; times in seconds after sending started."""

    fault: Fault
    started_s: float | None = None
    ended_s: float | None = None
    end_ns: int | None = None  # time.time_ns() at its end, to measure recovery from
    start_ns: int | None = None  # time.time_ns() at its start
    # time.time_ns() once the break or kill had happened (the collector closed
    # the connections; the target was killed and is back): the last moment
    # a message can have been lost to it
    broke_ns: int | None = None
    connections: int | None = None  # connections it broke
    in_flight_bytes: int | None = None  # what the kernel held in them at the break
    error: str | None = None
    recover_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        f = self.fault
        return {"kind": f.kind, "at_s": f.at_s, "for_s": f.for_s, "bytes_per_s": f.bytes_per_s,
                "started_s": self.started_s, "ended_s": self.ended_s, "connections": self.connections,
                "in_flight_bytes": self.in_flight_bytes, "error": self.error, "recover_s": self.recover_s}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "AppliedFault":
        fault = Fault(doc["kind"], float(doc["at_s"]), float(doc.get("for_s") or 0.0), doc.get("bytes_per_s"))
        return cls(fault, started_s=doc.get("started_s"), ended_s=doc.get("ended_s"),
                   connections=doc.get("connections"), in_flight_bytes=doc.get("in_flight_bytes"),
                   error=doc.get("error"), recover_s=doc.get("recover_s"))

    def describe(self) -> str:
        text = self.fault.describe()
        if self.started_s is not None:
            text += f" (at {self.started_s:.2f}s"
            text += f", ended {self.ended_s:.2f}s" if self.ended_s is not None and self.fault.for_s else ""
            text += f", {self.connections} connection(s)" if self.connections is not None else ""
            text += f", {self.in_flight_bytes:,} bytes in flight" if self.in_flight_bytes else ""
            text += ")"
        if self.recover_s is not None:
            text += f"; recovered in {self.recover_s:.2f}s"
        if self.error:
            text += f"; FAILED: {self.error}"
        return text


class FaultInjector:
    """Plays ``faults`` from a thread, from ``start()`` on.  ``address()`` is
    where the target listens now (it may move when restarted)."""

    def __init__(self, faults: tuple[Fault, ...], collector: Any, target: Any, address: tuple[str, int],
                 *, restart_timeout: float = RESTART_TIMEOUT_S):
        self.applied = [AppliedFault(f) for f in faults]
        self.collector = collector
        self.target = target
        self.restart_timeout = restart_timeout
        self._address = address
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._play, name="parbench-faults", daemon=True)
        self._t0 = 0.0
        self._down = False
        self._slow = False

    def address(self) -> tuple[str, int]:
        with self._lock:
            return self._address

    @property
    def restarts(self) -> bool:
        return any(a.fault.kind == "target_restart" for a in self.applied)

    def start(self) -> "FaultInjector":
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _events(self) -> list[tuple[float, int, str, AppliedFault]]:
        events = []
        for i, applied in enumerate(self.applied):
            f = applied.fault
            events.append((f.at_s, i, "begin", applied))
            if f.for_s:
                events.append((f.end_s, i, "end", applied))
        return sorted(events, key=lambda e: (e[0], e[2] != "end", e[1]))

    def _play(self) -> None:
        for at, _, step, applied in self._events():
            if self._cancel.wait(max(0.0, at - self._now())):
                return
            try:
                (self._begin if step == "begin" else self._end)(applied)
            except Exception as exc:  # noqa: BLE001 - the run reports it
                applied.error = f"{type(exc).__name__}: {exc}".splitlines()[0]

    def _begin(self, applied: AppliedFault) -> None:
        kind = applied.fault.kind
        applied.started_s = self._now()
        applied.start_ns = time.time_ns()
        if kind == "destination_down":
            self._down = True
            self._record(applied, self.collector.go_down(COLLECTOR_TIMEOUT_S))
            applied.broke_ns = time.time_ns()
        elif kind == "destination_slow":
            self._slow = True
            self.collector.set_read_rate(applied.fault.bytes_per_s)
        elif kind == "connection_reset":
            self._record(applied, self.collector.reset_connections(COLLECTOR_TIMEOUT_S))
            applied.broke_ns = time.time_ns()
            self._ended(applied)
        elif kind == "target_restart":
            port = self.address()[1]
            held = tcp_queues.queued(port)
            if held is not None:
                applied.connections, applied.in_flight_bytes = held.connections, held.total
            address = self.target.restart(self.restart_timeout)
            with self._lock:
                self._address = address
            self._ended(applied)
            # Until the new process listens, what the sender hands over goes
            # into the dead connections.
            applied.broke_ns = applied.end_ns

    def _end(self, applied: AppliedFault) -> None:
        if applied.fault.kind == "destination_down":
            self.collector.come_up(COLLECTOR_TIMEOUT_S)
            self._down = False
        elif applied.fault.kind == "destination_slow":
            self.collector.set_read_rate(None)
            self._slow = False
        self._ended(applied)

    def _ended(self, applied: AppliedFault) -> None:
        applied.ended_s = self._now()
        applied.end_ns = time.time_ns()

    @staticmethod
    def _record(applied: AppliedFault, result: dict) -> None:
        applied.connections = result.get("connections")
        applied.in_flight_bytes = result.get("in_flight_bytes")

    def last_end_s(self) -> float:
        return max((a.fault.end_s for a in self.applied), default=0.0)

    def wait(self, timeout: float) -> bool:
        """Until every fault has been played (True), or ``timeout``."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> list[AppliedFault]:
        """Stop playing (what has not begun never will) and leave the
        destination up and reading at full speed."""
        self._cancel.set()
        self._thread.join(self.restart_timeout + COLLECTOR_TIMEOUT_S)
        try:
            if self._down:
                self.collector.come_up(COLLECTOR_TIMEOUT_S)
            if self._slow:
                self.collector.set_read_rate(None)
        except Exception:  # noqa: BLE001 - the collector reports its own errors
            pass
        for applied in self.applied:
            if applied.started_s is not None and applied.ended_s is None and applied.error is None:
                applied.error = "cut short: the run ended first"
        return self.applied


@dataclass
class Promise:
    """What the implementation promises under a run's faults: at most
    ``max_lost`` messages lost (None: no bound, losses are counted), each
    sent before ``sent_before_ns`` (a fault can only cost messages the
    implementation had by then; None: no such limit)."""

    max_lost: int | None
    why: str
    parts: list[str] = field(default_factory=list)
    sent_before_ns: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"max_lost": self.max_lost, "why": self.why, "parts": list(self.parts)}


def send_buffer_max() -> int:
    """The largest send buffer the kernel gives a TCP socket (``tcp_wmem``)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as fh:
            return int(fh.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20  # Linux's default


def promise(applied: list[AppliedFault], flow_control: bool, log_iw_size: int, line_bytes: float,
            keeps_unacknowledged: bool = False, send_buffer_bytes: int | None = None,
            written_unreceived: int | None = None) -> Promise:
    """The loss a run may show under ``applied`` faults (see the module's
    docstring); ``line_bytes``: bytes of one message on the wire, to turn
    bytes held in the kernel into messages; ``keeps_unacknowledged``: the
    implementation sends again what a broken connection's peer did not
    acknowledge; ``written_unreceived``: messages the implementation
    counted as written that never arrived, when it keeps that count: then
    exactly those may be lost to broken connections, instead of a full
    send buffer's worth per connection."""
    if not flow_control:
        return Promise(None, "without flow control an implementation drops what it cannot deliver: losses are "
                             "allowed, counted and reported")
    line = max(1.0, line_bytes)
    parts: list[str] = []
    whys: list[str] = []
    bound = 0
    latest = None
    for a in applied:
        if a.started_s is None:
            continue
        kind = a.fault.kind
        costs = kind == "target_restart" or (
            kind in ("destination_down", "connection_reset") and a.connections and not keeps_unacknowledged)
        if costs and a.broke_ns is not None:
            latest = max(latest or 0, a.broke_ns + int(BREAK_SLACK_S * 1e9))
        if kind == "target_restart":
            kernel = math.ceil((a.in_flight_bytes or 0) / line) + (a.connections or 0)
            bound += log_iw_size + kernel
            parts.append(f"restart at {a.started_s:.2f}s: up to {log_iw_size:,} held (log_iw_size) + {kernel:,} "
                         f"in its input connections' kernel buffers")
            whys.append("a SIGKILL loses at most what the process held (its source window) and what the kernel "
                        "held in its input connections")
        elif kind in ("destination_down", "connection_reset") and a.connections and not keeps_unacknowledged:
            whys.append("a broken connection loses what was written into it and not yet acknowledged: the "
                        "implementation counts a message delivered once the kernel took it")
            if written_unreceived is not None:
                continue  # bounded by the implementation's own count, below
            buffered = math.ceil((send_buffer_bytes or send_buffer_max()) / line) + 1
            bound += buffered * a.connections
            parts.append(f"{kind.replace('_', ' ')} at {a.started_s:.2f}s: up to {buffered:,} written into each "
                         f"of {a.connections} connection(s) it broke (a full kernel send buffer)")
    if written_unreceived is not None and whys and not all(w.startswith("a SIGKILL") for w in whys):
        bound += max(0, written_unreceived)
        parts.append(f"broken connections: the {max(0, written_unreceived):,} messages the implementation counted "
                     "as written and the destination never received")
    if not parts:
        kinds = sorted({a.fault.kind for a in applied})
        return Promise(0, f"with flow control nothing may be lost under {', '.join(kinds)}")
    return Promise(bound, "with flow control, " + "; ".join(dict.fromkeys(whys)), parts, latest)


def lost_messages(records: Any, expected: Any) -> tuple[np.ndarray, np.ndarray]:
    """(connection, cseq) of every message sent and never received."""
    n_conn = expected.n_connections
    conn = np.asarray(records.conn, dtype=np.int64)
    cseq = np.asarray(records.cseq, dtype=np.int64)
    ok = conn < n_conn
    conn, cseq = conn[ok], cseq[ok]
    ok = cseq < expected.sent[conn]
    got = np.zeros(expected.total, dtype=bool)
    got[expected.offsets[conn[ok]] + cseq[ok]] = True
    missing = np.flatnonzero(~got)
    lost_conn = np.searchsorted(expected.offsets, missing, side="right") - 1
    return lost_conn, missing - expected.offsets[lost_conn]


def unexplained_losses(promised: Promise, records: Any, expected: Any, sent_at: Callable) -> tuple[int, str]:
    """Lost messages no fault can have cost (first handed over after the
    last break or kill, plus ``BREAK_SLACK_S``): (how many, the first)."""
    if promised.sent_before_ns is None:
        return 0, ""
    conn, cseq = lost_messages(records, expected)
    if not len(conn):
        return 0, ""
    at = sent_at(conn, cseq)
    late = np.flatnonzero(at > promised.sent_before_ns)
    if not len(late):
        return 0, ""
    first = late[np.argmin(at[late])]
    return len(late), f"conn={int(conn[first])}, cseq={int(cseq[first])}"


def recovery_s(applied: list[AppliedFault], sent_ns: np.ndarray, recv_ns: np.ndarray) -> None:
    """Set each fault's ``recover_s``: from its end until the messages sent
    before that end had arrived (those that arrived at all) and the first
    message sent after it had arrived (when one was sent)."""
    for a in applied:
        if a.end_ns is None or not len(sent_ns):
            continue
        before = sent_ns < a.end_ns
        done = [int(recv_ns[before].max())] if before.any() else []
        if (~before).any():
            done.append(int(recv_ns[~before][np.argmin(sent_ns[~before])]))
        a.recover_s = max(0.0, (max(done) - a.end_ns) / 1e9) if done else 0.0
