"""``parbench collect --listen PORT --out CAPTURE``: receive a server's output
and write it to a capture file for ``parbench check``.

Any number of connections (a server with several writer threads opens
several); every complete line is appended to CAPTURE as it arrives, each
connection's lines in its own order, so the file is a valid capture at any
moment and a long collection holds no more than a partial line per
connection in memory.  A line still incomplete when its connection closes
(or when collecting stops) is not written, and the summary says how many
bytes that left out.

Bounded by ``--count`` (lines), ``--idle-s`` (no data for that long, once
data came) and ``--max-seconds``; SIGINT and SIGTERM stop it too, and every
way of stopping writes what was received and exits 0.  Loopback only unless
``--allow-remote``.  The summary line goes to stderr.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import click

from parbench.errors import UsageError
from parbench.harness.address import DEFAULT_HOST, parse_address, require_loopback

RECV_BYTES = 1 << 18
FLUSH_EVERY_S = 1.0
# after a stop, how long already-buffered data is still read
DRAIN_S = 2.0


@dataclass
class _Conn:
    sock: socket.socket
    pending: bytes = b""


@dataclass
class Collected:
    lines: int = 0
    bytes: int = 0  # bytes written (complete lines)
    connections: int = 0
    incomplete_bytes: int = 0  # bytes of lines cut off by a closed connection or the stop
    incomplete_lines: int = 0
    seconds: float = 0.0
    stopped_by: str = ""


def collect(listener: socket.socket, out, *, count: int | None = None, idle_s: float | None = None,
            max_seconds: float | None = None, stop: threading.Event | None = None) -> Collected:
    """Accept and read until a bound is reached or ``stop`` is set; write
    complete lines to the binary file ``out``."""
    stop = stop or threading.Event()
    result = Collected()
    sel = selectors.DefaultSelector()
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, None)
    conns: list[_Conn] = []
    started = time.monotonic()
    last_data = None
    last_flush = started

    def read(c: _Conn) -> bool:
        nonlocal last_data
        try:
            data = c.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            sel.unregister(c.sock)
            c.sock.close()
            if c.pending:
                result.incomplete_bytes += len(c.pending)
                result.incomplete_lines += 1
                c.pending = b""
            return False
        last_data = time.monotonic()
        data = c.pending + data if c.pending else data
        cut = data.rfind(b"\n") + 1
        if cut:
            out.write(data[:cut] if cut < len(data) else data)
            result.lines += data.count(b"\n", 0, cut)
            result.bytes += cut
        c.pending = data[cut:]
        return True

    def accept() -> None:
        while True:
            try:
                s, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            s.setblocking(False)
            c = _Conn(s)
            conns.append(c)
            result.connections += 1
            sel.register(s, selectors.EVENT_READ, c)

    try:
        while True:
            now = time.monotonic()
            if stop.is_set():
                result.stopped_by = result.stopped_by or "signal"
                break
            if count is not None and result.lines >= count:
                result.stopped_by = f"--count {count}"
                break
            if max_seconds is not None and now - started >= max_seconds:
                result.stopped_by = f"--max-seconds {max_seconds:g}"
                break
            if idle_s is not None and last_data is not None and now - last_data >= idle_s:
                result.stopped_by = f"--idle-s {idle_s:g}"
                break
            for key, _ in sel.select(0.05):
                if key.data is None:
                    accept()
                else:
                    read(key.data)
            if now - last_flush >= FLUSH_EVERY_S:
                out.flush()
                last_flush = now
        if count is None or result.lines < count:
            # read what is already buffered, without waiting for more
            deadline = time.monotonic() + DRAIN_S
            while time.monotonic() < deadline:
                progressed = False
                for key, _ in sel.select(0):
                    if key.data is None:
                        accept()
                    elif read(key.data):
                        progressed = True
                if not progressed:
                    break
    finally:
        for c in conns:
            if c.pending:
                result.incomplete_bytes += len(c.pending)
                result.incomplete_lines += 1
            try:
                c.sock.close()
            except OSError:
                pass
        sel.close()
        out.flush()
        result.seconds = time.monotonic() - started
    return result


@click.command("collect")
@click.option("--listen", "listen", required=True, metavar="[HOST:]PORT",
              help="Where to listen (TCP); a bare PORT is 127.0.0.1:PORT, 0 a free port. "
                   "Loopback only unless --allow-remote.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, allow_dash=False),
              help="Capture file to write (complete lines, as they arrive).")
@click.option("--allow-remote", is_flag=True, help="Allow listening on an address that is not loopback.")
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after this many lines.")
@click.option("--idle-s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop once no data came for this many seconds (counted from the first data).")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this many seconds in all.")
@click.option("--ready-file", type=click.Path(dir_okay=False), default=None,
              help="Written atomically once listening: JSON {\"pid\", \"host\", \"port\"}.")
def collect_command(listen, out_path, allow_remote, count, idle_s, max_seconds, ready_file) -> None:
    """Receive output lines on a TCP port and write them to a capture file.

    Together with `parbench send` and `parbench check` this checks a
    deployment end to end: point the server's destination at this port,
    send, then `parbench check CAPTURE --expect SENT.json`.  Stops at the
    first of --count, --idle-s, --max-seconds, SIGINT or SIGTERM, and always
    writes what was received.
    """
    address = parse_address(listen, "--listen", default_host=DEFAULT_HOST, allow_port_zero=True)
    require_loopback(address, "--listen", allow_remote)
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    try:
        listener = socket.create_server((address.host, address.port), family=family, backlog=1024)
    except OSError as exc:
        raise UsageError(f"--listen {address}: cannot listen: {exc.strerror or exc}") from None
    stop = threading.Event()
    caught: list[str] = []

    def on_signal(signum, frame):
        caught.append(signal.Signals(signum).name)
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        host, port = listener.getsockname()[:2]
        try:
            out = open(out_path, "wb", buffering=1 << 20)
        except OSError as exc:
            raise UsageError(f"--out {out_path}: cannot write: {exc.strerror or exc}") from None
        with out:
            if ready_file:
                _write_json_atomically(ready_file, {"pid": os.getpid(), "host": host, "port": port})
            click.echo(f"parbench collect: listening on {address.host}:{port}, writing {out_path}", err=True)
            result = collect(listener, out, count=count, idle_s=idle_s, max_seconds=max_seconds, stop=stop)
    finally:
        listener.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        result.stopped_by = caught[0]
    cut = (f"; {result.incomplete_lines} incomplete line(s), {result.incomplete_bytes} bytes, not written"
           if result.incomplete_lines else "")
    click.echo(f"parbench collect: {result.lines} lines ({result.bytes} bytes) from {result.connections} "
               f"connection(s) in {result.seconds:.1f} s to {out_path}; stopped by {result.stopped_by}{cut}",
               err=True)


def _write_json_atomically(path: str, payload: dict) -> None:
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload) + "\n")
    os.replace(tmp, target)
