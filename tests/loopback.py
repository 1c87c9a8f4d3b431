"""A loopback TCP listener for tests and benchmarks: accepts any number of
connections on 127.0.0.1, counts bytes and lines, and keeps what it received
(``keep=True``) or throws it away (a blackhole that costs the sender nothing
but the kernel copy)."""
from __future__ import annotations

import selectors
import socket
import threading
import time


class LoopbackListener:
    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.setblocking(False)
        self.port = self.server.getsockname()[1]
        self.bytes = 0
        self.newlines = 0
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="loopback-listener")
        self._thread.start()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.server, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.1):
                    if key.fileobj is self.server:
                        try:
                            conn, _ = self.server.accept()
                        except BlockingIOError:
                            continue
                        conn.setblocking(False)
                        selector.register(conn, selectors.EVENT_READ)
                        continue
                    try:
                        chunk = key.fileobj.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    except OSError:
                        chunk = b""
                    if not chunk:
                        selector.unregister(key.fileobj)
                        key.fileobj.close()
                        continue
                    with self._lock:
                        self.bytes += len(chunk)
                        if self.keep:
                            self._chunks.append(chunk)
                            self.newlines += chunk.count(b"\n")
        finally:
            for key in list(selector.get_map().values()):
                key.fileobj.close()
            selector.close()

    def data(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)

    def lines(self) -> list[bytes]:
        return self.data().split(b"\n")[:-1]

    def wait_lines(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.newlines >= count:
                return True
            time.sleep(0.02)
        return self.newlines >= count

    def wait_bytes(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.bytes >= count:
                return True
            time.sleep(0.005)
        return self.bytes >= count

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> "LoopbackListener":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
