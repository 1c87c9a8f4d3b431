"""``parbench serve``: the reference parallelizer as a TCP service.

One I/O thread (selectors, like syslog-ng's ivykis main loop) accepts
connections and watches the idle ones; when a connection becomes readable it
is taken out of the poller and a reader job is scheduled on the engine's
worker pool.  Each accepted connection is a ``SocketInput``, the engine
connection's input source (``reference.inputs``).  The reader job receives a big chunk, frames it, parses at most
``log-fetch-limit()`` messages (never more than the free window slots) and
hands them to the engine; it re-arms the poller only when it has nothing
buffered, so a suspended (window-full) connection is not read at all.

Destinations: ``tcp()``/``network()`` (one connection, reconnected with a
bounded retry) and ``file()`` (appended), each rendering its template, or
syslog-ng's default line, once per batch with one write per batch.
"""
from __future__ import annotations

import collections
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import click

from parbench.reference.config_model import Config, Destination, SourceDriver
from parbench.reference.engine import Engine, EngineError, default_workers, source_key
from parbench.reference.message import Framer, FramingError, make_parser, resolve_peer_name
from parbench.reference.profiles import DEFAULT_PROFILE, PROFILES, get_profile

RECV_CHUNK = 256 * 1024
# Bounded retry of a tcp() destination (syslog-ng retries every time-reopen();
# parbench gives up on a batch after this, counting it as dropped).
CONNECT_ATTEMPTS = 50
CONNECT_RETRY_DELAY = 0.1
DRAIN_TIMEOUT = 15.0


# --------------------------------------------------------------------------
# Destinations
# --------------------------------------------------------------------------


def _renderer(template_text: str | None):
    if template_text is None:
        from parbench.reference.message import format_default_many
        return format_default_many
    from parbench.reference.template import compile_template
    template = compile_template(template_text)
    render_many = template.render_many
    return lambda msgs: b"".join(render_many(msgs))


class TcpWriter:
    """A tcp()/network() destination: one loopback connection, reconnected on error."""

    def __init__(self, host: str, port: int, template: str | None) -> None:
        self.address = (host, port)
        self.render = _renderer(template)
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        last: OSError | None = None
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                sock = socket.create_connection(self.address, timeout=10.0)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
            except OSError as exc:
                last = exc
                time.sleep(CONNECT_RETRY_DELAY)
        raise ConnectionError(f"tcp destination {self.address[0]}:{self.address[1]}: "
                              f"cannot connect after {CONNECT_ATTEMPTS} attempts: {last}")

    def __call__(self, messages: list) -> None:
        data = self.render(messages)
        for attempt in range(2):
            if self._sock is None:
                self._sock = self._connect()
            try:
                self._sock.sendall(data)
                return
            except OSError:
                self._drop_socket()
                if attempt:
                    raise

    def _drop_socket(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

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
        self._fh.write(self.render(messages))
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class FanOut:
    """A destination with several drivers writes each message to every one."""

    def __init__(self, writers: list) -> None:
        self.writers = writers

    def __call__(self, messages: list) -> None:
        for w in self.writers:
            w(messages)

    def close(self) -> None:
        for w in self.writers:
            w.close()


def make_sink(dest: Destination):
    writers = []
    for drv in dest.drivers:
        if drv.kind in ("tcp", "network"):
            writers.append(TcpWriter(drv.host or "127.0.0.1", int(drv.port or 514), drv.template))
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


class SocketInput:
    """An accepted TCP connection as the input of an engine connection
    (``reference.inputs.InputSource``): received, framed and parsed inside
    the reader job; re-armed in the poller when it has nothing buffered."""

    def __init__(self, sock: socket.socket, listener: Listener, loop: "IOLoop", max_msg_size: int) -> None:
        drv = listener.driver
        self.sock = sock
        self.listener = listener
        self.loop = loop
        address = sock.getpeername()[0]
        self._framer = Framer(max_msg_size, framing=drv.framing)
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

    @property
    def watched(self) -> bool:
        """Whether the poller should still watch this socket."""
        return not (self._closed or self._released)

    def readable(self) -> None:
        """The poller saw data (or the end of the stream)."""
        self._on_input()

    def _fill(self, want: int) -> None:
        frames = self._frames
        framer = self._framer
        while len(frames) - self._pos < want:
            try:
                data = self.sock.recv(RECV_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._eof = True
                frames.extend(framer.close())
                return
            try:
                frames.extend(framer.feed(data))
            except FramingError as exc:
                # syslog-ng closes a connection whose framing is broken,
                # keeping the messages completed before the error.
                frames.extend(exc.messages)
                self._eof = True
                print(f"parbench serve: closing connection from {self.listener.source_name}: {exc}",
                      file=sys.stderr)
                return

    # -- InputSource ------------------------------------------------------------

    def attach(self, on_input: Callable[[], None]) -> None:
        self._on_input = on_input

    def take(self, limit: int) -> list:
        if len(self._frames) - self._pos < limit and not (self._eof or self._closed):
            self._fill(limit)
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
        return self._parse(taken) if taken else []

    def has_input(self) -> bool:
        return len(self._frames) > self._pos

    def may_have_input(self) -> bool:
        return self.has_input() or not (self._eof or self._closed)

    def at_end(self) -> bool:
        return (self._eof or self._closed) and not self.has_input()

    def watch(self) -> None:
        self.loop.arm(self)

    def close(self) -> None:
        self._closed = True

    def release(self) -> None:
        self._released = True
        try:
            self.sock.close()
        except OSError:
            pass
        with self.listener.lock:
            self.listener.active -= 1


class IOLoop:
    """Accepts connections and schedules reader jobs for readable ones."""

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

    def _run(self) -> None:
        sel = self.selector
        while not self._stopping:
            for key, _ in sel.select(timeout=1.0):
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

    def _accept(self, lst: Listener) -> None:
        while True:
            try:
                sock, _ = lst.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
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
                        sock.listen(128)
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

    def on_signal(signum, frame):
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
            engine = Engine(config, prof, workers=workers or default_workers(), sink_factory=make_sink)
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
            if not drained:
                print(f"parbench serve: in-flight messages not drained within {DRAIN_TIMEOUT:.0f} s",
                      file=sys.stderr)
            if counters_out:
                counters = engine.counters()
                counters["drained"] = drained
                if loop is not None:
                    counters["refused_connections_total"] = loop.refused
                write_json_atomically(counters_out, counters)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
