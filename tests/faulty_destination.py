"""A loopback TCP destination whose faults a test controls: down (nothing
listens on its port), slow (reads at most so many bytes per tick), stalled
(reads nothing), reset (every open connection closed with a TCP RST).

It keeps what each connection delivered, so a test can tell complete lines
from a line cut off by a reset, and count every message it got twice.
Before it resets a connection it reads what its kernel already took in,
unless told to crash (``read_pending=False``): a collector that dies loses
what it had not read, and no sender can help that.  ``discarded_bytes_total``
counts what its kernel had acknowledged and a reset threw away.  Shared by the fault tests and by measurements
against real syslog-ng.
"""
from __future__ import annotations

import selectors
import socket
import struct
import threading
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bytes_received(sock: socket.socket) -> int | None:
    """Data bytes the kernel received on ``sock`` (Linux TCP_INFO
    ``tcpi_bytes_received``)."""
    try:
        return struct.unpack_from("Q", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 136), 128)[0]
    except (OSError, struct.error):
        return None


def reset_socket(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (SO_LINGER with a zero timeout)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class FaultyDestination:
    """``up()`` / ``down()`` / ``reset()`` / ``rate(bytes_per_tick)`` from the
    test thread, each done when it returns; one I/O thread reads.  ``port``
    stays the same over down/up, as a restarted collector's would."""

    TICK = 0.05

    def __init__(self, port: int | None = None, listening: bool = True, rcvbuf: int | None = None) -> None:
        self.port = port or free_port()
        # A fixed receive buffer (no autotuning: Linux may otherwise grow it to
        # tcp_rmem's maximum, 32 MiB on some machines) bounds what a stalled
        # destination's kernel absorbs.
        self.rcvbuf = rcvbuf
        self._lock = threading.Lock()  # guards _conns, _finished (read by the test thread)
        self._conns: dict[socket.socket, bytearray] = {}
        self._finished: list[bytes] = []  # data of connections that ended
        self._server: socket.socket | None = None  # owned by the I/O thread
        self._rate: int | None = None  # bytes per tick per connection; None = unlimited
        self._budget: dict[socket.socket, int] = {}
        self._calls: list = []
        self.connections_total = 0
        self.resets_total = 0
        self.discarded_bytes_total = 0
        self._stop = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, daemon=True, name="faulty-destination")
        self._thread.start()
        if listening:
            self.up()

    # -- faults (from the test thread) ------------------------------------------

    def up(self) -> None:
        self._in_loop(self._listen)

    def down(self, reset_connections: bool = True, read_pending: bool = True) -> None:
        """Stop listening; with ``reset_connections``, RST every open
        connection too (a killed collector)."""
        self._in_loop(self._unlisten)
        if reset_connections:
            self.reset(read_pending)

    def reset(self, read_pending: bool = True) -> None:
        """RST every open connection, after reading what its kernel holds
        unless ``read_pending`` is false (a crash)."""
        def act():
            for sock in list(self._conns):
                self._end(sock, rst=True, read_pending=read_pending)
                self.resets_total += 1
        self._in_loop(act)

    def rate(self, bytes_per_tick: int | None) -> None:
        """Read at most ``bytes_per_tick`` per connection every TICK; 0 stalls
        reading entirely; None reads as fast as data comes."""
        def act():
            self._rate = bytes_per_tick
            self._budget = {sock: bytes_per_tick or 0 for sock in self._conns}
        self._in_loop(act)

    # -- what arrived -----------------------------------------------------------

    def streams(self) -> list[bytes]:
        """The bytes of every connection, ended ones first."""
        with self._lock:
            return list(self._finished) + [bytes(b) for b in self._conns.values()]

    def lines(self) -> tuple[list[bytes], int]:
        """(complete lines of every connection, number of cut lines).  A cut
        line is the unterminated end of a connection that ended; the
        unterminated end of an open one may still be completed, and is
        neither."""
        with self._lock:
            ended = list(self._finished)
            still_open = [bytes(b) for b in self._conns.values()]
        lines: list[bytes] = []
        cut = 0
        for data, is_ended in [(d, True) for d in ended] + [(d, False) for d in still_open]:
            parts = data.split(b"\n")
            rest = parts.pop()
            lines.extend(parts)
            cut += bool(rest) and is_ended
        return lines, cut

    def line_count(self) -> int:
        with self._lock:
            return sum(d.count(b"\n") for d in self._finished) + sum(
                b.count(b"\n") for b in self._conns.values())

    def wait_lines(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.line_count() >= count:
                return True
            time.sleep(0.05)
        return self.line_count() >= count

    def wait_connections(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connections_total >= count:
                return True
            time.sleep(0.02)
        return self.connections_total >= count

    def close(self) -> None:
        self._stop.set()
        self._wake()
        self._thread.join(10)

    def __enter__(self) -> "FaultyDestination":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- I/O thread -------------------------------------------------------------

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _in_loop(self, fn) -> None:
        """Run ``fn`` in the I/O thread and wait until it ran."""
        done = threading.Event()
        error: list[BaseException] = []

        def call():
            try:
                fn()
            except BaseException as exc:
                error.append(exc)
            finally:
                done.set()

        with self._lock:
            self._calls.append(call)
        self._wake()
        if not done.wait(15):
            raise TimeoutError("faulty destination: the I/O thread did not answer")
        if error:
            raise error[0]

    def _listen(self) -> None:
        if self._server is not None:
            return
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.rcvbuf:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        deadline = time.monotonic() + 10
        while True:
            try:
                server.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    server.close()
                    raise
                time.sleep(0.05)
        server.listen(128)
        server.setblocking(False)
        self._selector.register(server, selectors.EVENT_READ, "server")
        self._server = server

    def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            self._selector.unregister(server)
            # Connections still in the backlog are reset by the close.
            server.close()

    def _end(self, sock: socket.socket, rst: bool, read_pending: bool = True) -> None:
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        self._budget.pop(sock, None)
        if rst:
            if read_pending:
                self._read_all(sock)
            kernel = bytes_received(sock)
            with self._lock:
                read = len(self._conns.get(sock, b""))
            if kernel is not None and kernel > read:
                self.discarded_bytes_total += kernel - read
        with self._lock:
            data = self._conns.pop(sock, None)
            if data is not None:
                self._finished.append(bytes(data))
        if rst:
            reset_socket(sock)
        else:
            sock.close()

    def _read_all(self, sock: socket.socket) -> None:
        """Read what the kernel holds, and acknowledge it at once (no delayed
        ACK): the sender then knows exactly what this collector got."""
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except OSError:
                break
            if not chunk:
                break
            with self._lock:
                if sock in self._conns:
                    self._conns[sock] += chunk
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            pass

    def _watch(self) -> None:
        """Watch exactly the connections that may read now (rate budget left)."""
        sel = self._selector
        for sock in list(self._conns):
            want = self._rate is None or self._budget.get(sock, 0) > 0
            watched = sock in sel.get_map()
            if want and not watched:
                sel.register(sock, selectors.EVENT_READ, "conn")
            elif not want and watched:
                sel.unregister(sock)

    def _run(self) -> None:
        sel = self._selector
        next_tick = time.monotonic()
        try:
            while not self._stop.is_set():
                with self._lock:
                    calls, self._calls = self._calls, []
                for call in calls:
                    call()
                now = time.monotonic()
                if self._rate is not None and now >= next_tick:
                    next_tick = now + self.TICK
                    self._budget = {sock: self._rate for sock in self._conns}
                self._watch()
                timeout = 0.1 if self._rate is None else max(0.0, min(0.1, next_tick - time.monotonic()))
                for key, _ in sel.select(timeout):
                    if key.data is None:
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except OSError:
                            pass
                    elif key.data == "server":
                        self._accept(key.fileobj)
                    else:
                        self._read(key.fileobj)
        finally:
            for sock in list(self._conns):
                self._end(sock, rst=False)
            self._unlisten()
            sel.close()
            self._wake_r.close()
            self._wake_w.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.setblocking(False)
            with self._lock:
                self._conns[conn] = bytearray()
            self._budget[conn] = self._rate or 0
            self.connections_total += 1

    def _read(self, sock: socket.socket) -> None:
        limit = 1 << 20 if self._rate is None else min(1 << 20, self._budget.get(sock, 0))
        if limit <= 0:
            return
        try:
            chunk = sock.recv(limit)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._end(sock, rst=False)
            return
        if self._rate is not None:
            self._budget[sock] = self._budget.get(sock, 0) - len(chunk)
        with self._lock:
            self._conns[sock] += chunk
