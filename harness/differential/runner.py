"""One implementation, one configuration, every case: the records of each case.

The implementation is started once (``Target.start_config``) with the
prepared text; the runner's collector listens where the text's
destinations write.  Then, case after case:

1. a connection to the chosen source sends the case's bytes and
   half-closes; the runner waits until the implementation closes it (it
   has read everything and handed every message on);
2. a second connection sends a *sentinel*, a short line whose $PROGRAM is
   a token naming the case (framed like the source expects: newline, or
   ``LEN SP`` octet counting);
3. every record that arrives before the sentinel's belongs to the case.

Records are masked (``record.mask``) with the wall-clock span of the case.
Every wait is bounded; the implementation is stopped in a ``finally``.
"""
from __future__ import annotations

import errno
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from parbench.harness.differential.corpus import Case
from parbench.harness.differential.prepare import PreparedConfig
from parbench.harness.differential.record import (
    TEMPLATE,
    UNIT,
    Record,
    mask,
    parse_record,
    received_dates,
    split_records,
)
from parbench.harness.targets.base import Target, TargetError
from parbench.harness.targets.process import free_loopback_port

CASE_TIMEOUT_S = 5.0
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
#: shortest log-msg-size() the sentinel fits in
MIN_LOG_MSG_SIZE = 32


@dataclass
class CaseResult:
    case: Case
    records: list[Record] = field(default_factory=list)
    error: str | None = None  # the case could not be run to its end


@dataclass
class ImplRun:
    """What one implementation made of every case."""

    label: str
    version: str | None
    results: dict[str, CaseResult] = field(default_factory=dict)
    error: str | None = None  # it could not be started, or stopped answering
    stderr_tail: str = ""


class Collector:
    """Loopback listener for the destinations' records (any number of
    connections: an implementation may reconnect)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._records: list[bytes] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, name="pbdiff-collector", daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            reader = threading.Thread(target=self._read, args=(conn,), daemon=True)
            self._threads.append(reader)
            reader.start()

    def _read(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        rest = b""
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(1 << 16)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not data:
                    break
                records, rest = split_records(rest + data)
                if records:
                    with self._cond:
                        self._records.extend(records)
                        self._cond.notify_all()

    def wait_for(self, token: bytes, start: int, deadline: float) -> int | None:
        """Index of the first record from ``start`` on whose $PROGRAM is
        ``token``; None at the deadline."""
        needle = UNIT + token + UNIT
        with self._cond:
            while True:
                for index in range(start, len(self._records)):
                    if needle in self._records[index]:
                        return index
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.2))

    def records(self, start: int, end: int) -> list[bytes]:
        with self._cond:
            return self._records[start:end]

    def close(self) -> None:
        self._stop.set()
        try:
            self.sock.close()
        finally:
            self._accepter.join(2.0)
            for reader in self._threads:
                reader.join(2.0)


def frame(message: bytes, framing: str) -> bytes:
    """``message`` as one frame of ``framing`` ("text" or "framed")."""
    return b"%d %s" % (len(message), message) if framing == "framed" else message + b"\n"


def _send_and_wait_close(port: int, payload: bytes, deadline: float) -> str | None:
    """Send ``payload`` on a new connection, half-close, wait until the peer
    closes; an error text, or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=max(0.1, deadline - time.monotonic())) as sock:
            try:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError, OSError) as exc:
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                    raise
                return None  # the implementation closed it first (a framing error)
            while True:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    if not sock.recv(4096):
                        return None
                except ConnectionResetError:
                    return None
    except socket.timeout:
        return "the implementation did not close the connection in time"
    except OSError as exc:
        return f"connection failed: {exc}"


def run_implementation(target: Target, label: str, prepared: PreparedConfig, cases: Sequence[Case],
                       workdir: Path, source_index: int = 0, case_timeout: float = CASE_TIMEOUT_S,
                       start_timeout: float = START_TIMEOUT_S) -> ImplRun:
    """Start ``target`` with ``prepared``, run every case, stop it."""
    spot = prepared.sources[source_index]
    run = ImplRun(label=label, version=target.version)
    collector = Collector()
    try:
        ports = [free_loopback_port() for _ in prepared.sources]
        text = prepared.render(ports, collector.port, TEMPLATE)
        try:
            target.start_config(text, ports, workdir, timeout=start_timeout,
                                deadline_s=len(cases) * case_timeout + STOP_TIMEOUT_S)
        except TargetError as exc:
            run.error = str(exc)
            return run
        run.version = target.version
        pid = target.pid
        port = ports[source_index]
        nonce = os.urandom(3).hex()
        seen = 0
        for index, case in enumerate(cases):
            result = CaseResult(case)
            run.results[case.name] = result
            started = time.time()
            deadline = time.monotonic() + case_timeout
            error = _send_and_wait_close(port, case.payload, deadline)
            token = b"pbd%s.%d" % (nonce.encode(), index)
            error = error or _send_and_wait_close(port, frame(token, spot.framing), deadline)
            found = None if error else collector.wait_for(token, seen, deadline)
            if found is None:
                result.error = error or "its records did not arrive in time (no sentinel)"
                run.error = f"case {case.name}: {result.error}; the remaining cases were not run"
                break
            received = received_dates(started, time.time())
            result.records = [mask(parse_record(raw), received, pid) for raw in collector.records(seen, found)]
            seen = found + 1
    finally:
        try:
            report = target.stop(STOP_TIMEOUT_S)
            run.stderr_tail = report.stderr_tail
            run.version = run.version or report.version
        finally:
            collector.close()
    return run
