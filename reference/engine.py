"""The reference parallelizer: reader jobs, staging, partition FIFOs, a worker
pool, flow control and counters, modelled on syslog-ng / AxoSyslog.

The behaviour it models is described, with the upstream files it comes
from, in docs/semantics.md, "Hand-over and flow control"; every behaviour that differs between versions is
taken from the active ``Profile`` (``reference/profiles.py``) and the comment
says which profile it belongs to.

Threads, as in the real thing:

* A worker pool (default ``max(2, os.cpu_count())`` threads) runs two kinds of
  jobs: *reader jobs* (one at a time per connection: take at most the source's
  ``log-fetch-limit()`` messages, never more than the connection's free window
  slots; run the elements before parallelize(); place; stage per partition;
  hand the staging lists over) and *drain jobs* (one at a time per partition:
  process whole batches of that partition's FIFO through the elements after
  parallelize()).
* Each destination has its own queue and writer thread (syslog-ng's
  destination worker).  A message holds its source window slot until its
  destination takes it: with ``flags(flow-control)`` until the writer has
  handed it to the sink; without, when it enters the destination queue (a
  full queue then drops it, counted, as syslog-ng does).

A connection reads from an ``InputSource`` (``reference.inputs``): the
in-process ``MessageQueue`` by default, an accepted socket in the service.

In-process use (tests, benchmarks)::

    engine = Engine(config, "axosyslog-4.26", sinks={"out": my_sink})
    conn = engine.connect("in")
    conn.submit([{"HOST": b"a", "MSG": b"x"}, ...])
    conn.close()
    engine.stop(timeout=10)
    engine.counters()
"""
from __future__ import annotations

import collections
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Protocol

from parbench.errors import UsageError
from parbench.reference.config_model import (Config, CostStage, Destination, LogPath, Parallelize, Parser, Source,
                                             SourceDriver)
from parbench.reference.cost import CostWorker
from parbench.reference.histogram import Log2Histogram
from parbench.reference.inputs import InputSource, Message, MessageQueue
from parbench.reference.profiles import DEFAULT_PROFILE, Profile, get_profile, limit_partitions

# syslog-ng's global log-fifo-size() default: the destination queue bound that
# matters when flow control is off (messages beyond it are dropped).
DEFAULT_LOG_FIFO_SIZE = 10000
# A destination writer hands at most this many queued messages to its sink at
# once (one render + one write per wake-up instead of one per batch).
WRITER_MAX_MESSAGES = 8192


class Sink(Protocol):
    def __call__(self, messages: list[Message]) -> None: ...


class EngineError(UsageError):
    """The configuration cannot be run by the engine (one line, with location)."""


# --------------------------------------------------------------------------
# Worker pool
# --------------------------------------------------------------------------


class _IdleWaiter:
    """``wait_idle`` for an object whose busy state is guarded by ``_lock``:
    waiters register in ``_idle_waiters`` so the worker side notifies
    ``_idle_cond`` only when somebody waits."""

    _lock: threading.Lock
    _idle_cond: threading.Condition
    _idle_waiters: int

    def _busy_locked(self) -> bool:
        raise NotImplementedError

    def idle(self) -> bool:
        with self._lock:
            return not self._busy_locked()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            self._idle_waiters += 1
            try:
                while self._busy_locked():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._idle_cond.wait(min(left, 0.5))
                return True
            finally:
                self._idle_waiters -= 1


class WorkerPool(_IdleWaiter):
    """A fixed set of threads running queued jobs (callables) in FIFO order.

    syslog-ng's main-loop worker pool: jobs are short and never block for
    long, so a plain FIFO is fair enough.  No busy waiting: idle threads block
    in ``SimpleQueue.get`` (C code, no Python-level condition on the hot
    path); a pending-job counter tells ``wait_idle`` when everything is done.
    """

    def __init__(self, size: int, on_error: Callable[[BaseException], None]) -> None:
        self.size = max(1, size)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle_cond = threading.Condition(self._lock)
        self._pending = 0  # queued + running
        self._idle_waiters = 0
        self._stopping = False
        self._on_error = on_error
        self._threads = [
            threading.Thread(target=self._loop, name=f"parbench-worker-{i}", daemon=True)
            for i in range(self.size)
        ]
        for t in self._threads:
            t.start()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._stopping:
                return
            self._pending += 1
        self._queue.put(job)

    def _loop(self) -> None:
        get = self._queue.get
        lock = self._lock
        while True:
            job = get()
            if job is None:
                return
            try:
                job()
            except BaseException as exc:  # a job must never kill a pool thread
                self._on_error(exc)
            with lock:
                self._pending -= 1
                if self._pending == 0 and self._idle_waiters:
                    self._idle_cond.notify_all()

    def _busy_locked(self) -> bool:
        return self._pending != 0

    def stop(self, timeout: float) -> bool:
        with self._lock:
            self._stopping = True
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)


# --------------------------------------------------------------------------
# Destinations
# --------------------------------------------------------------------------


class DestinationQueue(_IdleWaiter):
    """A destination's queue and its writer thread.

    Items are ``(acknowledger, messages)``: the connection, or a _SharedAck
    when the batch went to several destinations.  With flow control the
    window slots are released after the sink returned (written); without, at
    enqueue time, and a full queue drops the excess (syslog-ng without
    ``flags(flow-control)``).
    """

    def __init__(self, name: str, sink: Sink, flow_control: bool, fifo_size: int,
                 on_error: Callable[[BaseException], None]) -> None:
        self.name = name
        self.sink = sink
        self.flow_control = flow_control
        self.fifo_size = fifo_size
        self._items: collections.deque[tuple[Connection, list[Message]]] = collections.deque()
        self._queued = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._idle_cond = self._cond  # the writer notifies idle waiters on the same condition
        self._busy = False
        self._writer_waiting = False
        self._idle_waiters = 0
        self._stopping = False
        self._on_error = on_error
        self.written_events_total = 0
        self.dropped_events_total = 0
        self._thread = threading.Thread(target=self._loop, name=f"parbench-dest-{name}", daemon=True)
        self._thread.start()

    def push(self, conn: "Connection", messages: list[Message]) -> None:
        n = len(messages)
        if self.flow_control:
            with self._lock:
                self._items.append((conn, messages))
                self._queued += n
                if self._writer_waiting:
                    self._cond.notify()
            return
        with self._lock:
            room = self.fifo_size - self._queued
            if room < n:
                kept = messages[: max(room, 0)]
                self.dropped_events_total += n - len(kept)
                messages = kept
            if messages:
                self._items.append((conn, messages))
                self._queued += len(messages)
                if self._writer_waiting:
                    self._cond.notify()
        # Without flow control the destination "takes" the message on enqueue.
        conn.release(n)

    def _loop(self) -> None:
        cond = self._cond
        lock = self._lock
        items = self._items
        while True:
            with lock:
                while not items:
                    self._busy = False
                    if self._idle_waiters:
                        cond.notify_all()
                    if self._stopping:
                        return
                    self._writer_waiting = True
                    cond.wait()
                    self._writer_waiting = False
                self._busy = True
                taken: list[tuple[Connection, list[Message]]] = []
                count = 0
                while items and count < WRITER_MAX_MESSAGES:
                    item = items.popleft()
                    taken.append(item)
                    count += len(item[1])
                self._queued -= count
            if len(taken) == 1:
                messages = taken[0][1]
            else:
                messages = [m for _, batch in taken for m in batch]
            try:
                self.sink(messages)
            except BaseException as exc:
                self._on_error(exc)
                with cond:
                    self.dropped_events_total += count
            else:
                with cond:
                    self.written_events_total += count
            if self.flow_control:
                released: dict[Connection, int] = {}
                for conn, batch in taken:
                    released[conn] = released.get(conn, 0) + len(batch)
                for conn, n in released.items():
                    conn.release(n)

    def _busy_locked(self) -> bool:
        return bool(self._items) or self._busy

    def stop(self, timeout: float) -> bool:
        with self._lock:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()


# --------------------------------------------------------------------------
# Partitions
# --------------------------------------------------------------------------


class Partition:
    """A FIFO of batches drained by at most one job at a time."""

    __slots__ = ("index", "path", "fifo", "lock", "scheduled",
                 "assigned", "processed", "batches")

    def __init__(self, index: int, path: "PathRuntime") -> None:
        self.index = index
        self.path = path
        self.fifo: collections.deque[tuple[Connection, list[Message]]] = collections.deque()
        self.lock = threading.Lock()
        self.scheduled = False
        # AxoSyslog metric names: parallelized_assigned_events_total,
        # parallelized_processed_events_total; batches handed over.
        self.assigned = 0
        self.processed = 0
        self.batches = 0

    def hand_over(self, conn: "Connection", batch: list[Message]) -> None:
        with self.lock:
            self.fifo.append((conn, batch))
            self.assigned += len(batch)
            self.batches += 1
            if self.scheduled:
                return
            self.scheduled = True
        self.path.engine._pool.submit(self.drain)

    def drain(self) -> None:
        # A drain job returns after >= drain_limit messages, finishing the
        # batch it is in (AxoSyslog 4.22+ parallelize log-fetch-limit(); the
        # syslog-ng-4.8 profile has no limit: it drains until empty).
        path = self.path
        limit = path.drain_limit
        done = 0
        fifo = self.fifo
        while True:
            with self.lock:
                if not fifo:
                    self.scheduled = False
                    return
                conn, batch = fifo.popleft()
            path.run_after(self.index, conn, batch)
            done += len(batch)
            with self.lock:
                self.processed += len(batch)
                if limit is not None and done >= limit:
                    if fifo:
                        break  # stay scheduled: rescheduled below
                    self.scheduled = False
                    return
        path.engine._pool.submit(self.drain)


# --------------------------------------------------------------------------
# Log paths
# --------------------------------------------------------------------------


@dataclass
class _Placement:
    keyed: bool
    partitions: int
    batch_size: int  # effective: round-robin run length / early hand-over size
    early_handover: bool


class _SharedAck:
    """Stands for a connection when one batch goes to several destinations:
    its window slots are released when the last destination took it (a
    message is acknowledged once every destination has it, as syslog-ng's
    per-message reference count does)."""

    __slots__ = ("conn", "remaining", "lock")

    def __init__(self, conn: "Connection", destinations: int) -> None:
        self.conn = conn
        self.remaining = destinations
        self.lock = threading.Lock()

    def release(self, n: int) -> None:
        with self.lock:
            self.remaining -= 1
            last = self.remaining == 0
        if last:
            self.conn.release(n)


class PathRuntime:
    """One log { } path: elements before parallelize(), the placement, the
    partitions, and the elements after it."""

    def __init__(self, engine: "Engine", index: int, log_path: LogPath) -> None:
        self.engine = engine
        self.index = index
        self.log_path = log_path
        profile = engine.profile
        self.before: list[Callable[[list], list]] = []
        self.after: list[Callable[[list], list]] = []
        self.destinations: list[DestinationQueue] = []
        self.parallelize: Parallelize | None = None
        for element in log_path.pipeline:
            if isinstance(element, Parallelize):
                if self.parallelize is not None:
                    raise EngineError(f"{element.loc}: a second parallelize() in one log path; "
                                      "the reference supports one per log path")
                self.parallelize = element
            elif isinstance(element, Parser):
                stages = [CostWorker(s.cpu_us, s.latency_us) for s in element.stages]
                (self.after if self.parallelize is not None else self.before).extend(stages)
            elif isinstance(element, CostStage):
                (self.after if self.parallelize is not None else self.before).append(
                    CostWorker(element.cpu_us, element.latency_us))
            elif isinstance(element, Destination):
                self.destinations.append(engine._destination_queue(element, log_path.flow_control))
            else:
                raise EngineError(f"{getattr(element, 'loc', '?')}: unsupported log path element "
                                  f"{type(element).__name__}")
        par = self.parallelize
        partitions = (par.partitions or 0) if par is not None else 0
        try:
            partitions, warning = limit_partitions(profile, partitions)
        except ValueError as exc:
            raise EngineError(f"{par.loc}: {exc}") from None
        if warning:
            print(f"{par.loc}: warning: {warning}", file=sys.stderr)
        self.partitions = [engine.partition_class(i, self) for i in range(partitions)]
        self.placement = None
        self.keyed_placer = None
        self.drain_limit: int | None = None
        if partitions:
            from parbench.reference.partition import KeyedPlacer
            keyed = bool(par.partition_key)
            # batch-size(): only profiles that accept it (axosyslog 4.17+);
            # default 0 (per message) in syslog-ng-4.8, 100 in axosyslog-4.26.
            if par.batch_size is not None and profile.accepts_batch_size:
                batch_size = par.batch_size
            else:
                batch_size = profile.default_batch_size
            if keyed and not profile.key_with_batch_size:
                batch_size = 0
            early = profile.early_handover and batch_size > 0
            self.placement = _Placement(keyed, partitions, batch_size, early)
            if keyed:
                from parbench.reference.template import compile_template
                self.keyed_placer = KeyedPlacer(partitions, compile_template(par.partition_key))
            if par.log_fetch_limit is not None and profile.accepts_parallelize_fetch_limit:
                self.drain_limit = par.log_fetch_limit
            else:
                self.drain_limit = profile.default_drain_limit
            if self.drain_limit is not None and self.drain_limit <= 0:
                self.drain_limit = None
        # AxoSyslog's parallelized_input_batch_size (messages placed per
        # reader job) and parallelized_batch_size (each batch handed over).
        self.histogram_lock = threading.Lock()
        self.input_batch_sizes = Log2Histogram()
        self.batch_sizes = Log2Histogram()
        # Window units: a message holds one unit per log path it goes
        # through; within a path the unit is freed when the last of its
        # destinations took the message (see _SharedAck).
        self.ack_units = 1

    # -- reader side -------------------------------------------------------

    def run_in_reader(self, conn: "Connection", batch: list[Message]) -> None:
        for stage in self.before:
            batch = stage(batch)
        if not self.partitions:
            # Bypass (partitions 0 / no parallelize()): inline in the reader.
            self.run_after(None, conn, batch)
            return
        placement = self.placement
        n = placement.partitions
        if placement.keyed:
            parts = self.keyed_placer.place(batch)
        else:
            parts = conn._round_robin(self.index, placement).place(len(batch))
        staging: list[list[Message]] = [[] for _ in range(n)]
        appenders = [s.append for s in staging]
        for msg, p in zip(batch, parts):
            appenders[p](msg)
        if batch:
            with self.histogram_lock:
                self.input_batch_sizes.add(len(batch))
        self.hand_over(conn, staging)

    def hand_over(self, conn: "Connection", staging: list[list[Message]]) -> None:
        """Append each non-empty staging list as one batch to its partition
        (end of the reader job); axosyslog-4.26 also hands a staging list over
        as soon as it reaches batch-size, so a list is cut into runs of
        batch-size in arrival order."""
        size = self.placement.batch_size if self.placement.early_handover else 0
        partitions = self.partitions
        for p, staged in enumerate(staging):
            if not staged:
                continue
            if size and len(staged) > size:
                batches = [staged[start:start + size] for start in range(0, len(staged), size)]
            else:
                batches = [staged]
            with self.histogram_lock:
                for cut in batches:
                    self.batch_sizes.add(len(cut))
            for cut in batches:
                partitions[p].hand_over(conn, cut)

    # -- drain side --------------------------------------------------------

    def run_after(self, partition_index: int | None, conn: "Connection", batch: list[Message]) -> None:
        probe = self.engine.drain_probe
        if probe is not None:
            probe(self.index, partition_index, batch)
        n = len(batch)
        for stage in self.after:
            batch = stage(batch)
        dests = self.destinations
        if len(dests) == 1:
            dests[0].push(conn, batch)
        elif dests:
            ack = _SharedAck(conn, len(dests))
            for dest in dests:
                dest.push(ack, batch)
        else:
            conn.release(n)


# --------------------------------------------------------------------------
# Sources and connections
# --------------------------------------------------------------------------


class SourceRuntime:
    def __init__(self, engine: "Engine", name: str, source: Source) -> None:
        self.engine = engine
        self.name = name
        self.source = source
        self.paths: list[PathRuntime] = []
        self.ack_units = 0
        self.lock = threading.Lock()
        self.received_events_total = 0
        self.window_full_suspensions_total = 0
        self.connections_total = 0

    def limits(self, driver: SourceDriver | None = None) -> tuple[int, int]:
        """(window, fetch limit) of one connection accepted by ``driver``
        (default: the source's first driver)."""
        opts = self.engine.config.options
        if driver is None and self.source.drivers:
            driver = self.source.drivers[0]
        iw = driver.log_iw_size if driver and driver.log_iw_size is not None else opts.log_iw_size
        max_conn = driver.max_connections if driver else 10
        fetch = driver.log_fetch_limit if driver and driver.log_fetch_limit is not None else opts.log_fetch_limit
        # log-iw-size() is the window of the whole source, shared out among
        # max-connections() for tcp() (both profiles).
        return max(1, iw // max(1, max_conn)), max(1, fetch)


class Connection:
    """One input connection: a window, at most one reader job at a time, and
    an ``InputSource`` (reference.inputs) it reads from."""

    def __init__(self, source: SourceRuntime, index: int, input: InputSource,
                 window: int, fetch_limit: int) -> None:
        self.source = source
        self.engine = source.engine
        self.index = index  # the "input thread index" of round-robin placement
        self.input = input
        self.window = window
        self.units_per_message = source.ack_units
        self.fetch_limit = fetch_limit
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._held_units = 0  # window slots taken, in acknowledgement units
        self._reader_active = False
        self._suspended = False
        self._finished = False
        self._placers: dict[int, object] = {}
        self.received = 0
        input.attach(self.input_ready)

    # -- window -------------------------------------------------------------

    def _free_slots_locked(self) -> int:
        # One unit per log path the source feeds.  With several paths a
        # message acknowledged by one path but not yet by another counts as
        # half held (an approximation: exact for one path, which is what
        # parbench scenarios use).
        held = -(-self._held_units // self.units_per_message)
        return self.window - held

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self.window - self._free_slots_locked()

    def release(self, units: int) -> None:
        if units <= 0:
            return
        schedule = False
        with self._lock:
            self._held_units -= units
            if self._suspended and not self._finished and self._free_slots_locked() > 0:
                self._suspended = False
                self._reader_active = True
                schedule = True
            if self._held_units == 0:
                self._cond.notify_all()
        if schedule:
            self.engine._pool.submit(self._reader_job)

    # -- input side -----------------------------------------------------------

    def input_ready(self) -> None:
        """The input has something new: schedule a reader job unless one
        runs or the window holds reading back (release() resumes it)."""
        with self._lock:
            if self._finished or self._reader_active or self._suspended:
                return
            self._reader_active = True
        self.engine._pool.submit(self._reader_job)

    # In-process callers (tests, benchmarks) feed the default MessageQueue
    # through its connection.
    def offer(self, messages: list[Message]) -> int:
        return self.input.offer(messages)

    def submit(self, messages: Iterable[Message], timeout: float = 30.0) -> None:
        self.input.submit(messages, timeout)

    def close(self) -> None:
        """End of input: what is buffered is still read (like a peer's FIN)."""
        self.input.close()
        with self._lock:
            done = not self.input.has_input() and not self._reader_active
        if done:
            self._finish()

    def _finish(self) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self.engine._connection_finished(self)
        self.input.release()

    # -- reader job -----------------------------------------------------------

    def _reader_job(self) -> None:
        with self._lock:
            if self._finished:
                self._reader_active = False
                return
            limit = min(self.fetch_limit, self._free_slots_locked())
        batch = self.input.take(limit) if limit > 0 else []
        if batch:
            n = len(batch)
            with self._lock:
                self._held_units += n * self.units_per_message
            self.received += n
            src = self.source
            with src.lock:
                src.received_events_total += n
            for path in src.paths:
                path.run_in_reader(self, batch)
        self._after_read()

    def _after_read(self) -> None:
        """Decide what happens next: read again, suspend (window full), finish
        (end of input) or wait for input."""
        inp = self.input
        with self._lock:
            if self._free_slots_locked() <= 0 and inp.may_have_input():
                # Window full: stop reading this connection until slots free
                # (log_source_free_to_send() false in syslog-ng); release()
                # schedules the next reader job, so nothing need watch the input.
                self._suspended = True
                self._reader_active = False
                with self.source.lock:
                    self.source.window_full_suspensions_total += 1
                return
            if inp.has_input():
                again = True
            else:
                again = False
                self._reader_active = False
                finished = inp.at_end()
        if again:
            self.engine._pool.submit(self._reader_job)
        elif finished:
            self._finish()
        else:
            inp.watch()

    def _round_robin(self, path_index: int, placement: _Placement):
        placer = self._placers.get(path_index)
        if placer is None:
            from parbench.reference.partition import RoundRobinPlacer, round_robin_start
            start = round_robin_start(self.engine.profile, self.index, placement.partitions)
            placer = RoundRobinPlacer(placement.partitions, start, placement.batch_size)
            self._placers[path_index] = placer
        return placer

    def wait_released(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._held_units or self.input.has_input() or self._reader_active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True


# --------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------


def default_workers() -> int:
    return max(2, os.cpu_count() or 1)


def null_sink(messages: list[Message]) -> None:
    """A destination that takes everything and writes nothing."""


def destination_key(dest: Destination) -> str:
    """The name a destination's sink is registered under (inline ones by location)."""
    return dest.name if dest.name is not None else f"destination@{dest.loc}"


def source_key(src: Source) -> str:
    return src.name if src.name is not None else f"source@{src.loc}"


class Engine:
    """The parallelizer, in process.

    ``sinks`` maps destination names (``destination_key``) to callables taking
    a list of messages; ``sink_factory(destination)`` builds the missing ones
    (the service's tcp/file writers).  ``drain_probe(path_index,
    partition_index, batch)`` is called for every batch in its drain job (with
    ``partition_index`` None in bypass) before the elements after
    parallelize(): tests use it to observe placement and exclusivity.
    """

    # Overridable so tests can run mutants of the engine (tests/test_engine_properties.py).
    connection_class = Connection
    partition_class = Partition
    path_class = PathRuntime

    def __init__(self, config: Config, profile: Profile | str | None = None, *,
                 workers: int | None = None,
                 sinks: Mapping[str, Sink] | None = None,
                 sink_factory: Callable[[Destination], Sink] | None = None,
                 drain_probe: Callable[[int, int | None, list[Message]], None] | None = None,
                 log_fifo_size: int = DEFAULT_LOG_FIFO_SIZE) -> None:
        if profile is None:
            profile = DEFAULT_PROFILE
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        self.config = config
        self.drain_probe = drain_probe
        self.errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        self._sinks = dict(sinks or {})
        self._sink_factory = sink_factory
        self._log_fifo_size = log_fifo_size
        self._dest_queues: dict[str, DestinationQueue] = {}
        self._lock = threading.Lock()
        self._conn_count = 0
        self._connections: set[Connection] = set()
        self._all_finished = threading.Condition(self._lock)
        self._stopped = False
        self._pool = WorkerPool(workers or default_workers(), self._record_error)
        try:
            self.sources: dict[str, SourceRuntime] = {}
            for lp in config.log_paths:
                for src in lp.sources:
                    key = source_key(src)
                    if key not in self.sources:
                        self.sources[key] = SourceRuntime(self, key, src)
            for name, src in config.sources.items():
                if name not in self.sources:
                    self.sources[name] = SourceRuntime(self, name, src)
            self.paths = [self.path_class(self, i, lp) for i, lp in enumerate(config.log_paths)]
            for path in self.paths:
                for src in path.log_path.sources:
                    rt = self.sources[source_key(src)]
                    rt.paths.append(path)
                    rt.ack_units += path.ack_units
            for rt in self.sources.values():
                rt.ack_units = max(1, rt.ack_units)
        except BaseException:
            self._shutdown_threads(1.0)
            raise

    # -- wiring ---------------------------------------------------------------

    def _destination_queue(self, dest: Destination, flow_control: bool) -> DestinationQueue:
        key = destination_key(dest)
        queue = self._dest_queues.get(key)
        if queue is None:
            sink = self._sinks.get(key)
            if sink is None:
                if self._sink_factory is None:
                    raise EngineError(f"{dest.loc}: no sink for destination {key!r}")
                sink = self._sink_factory(dest)
                self._sinks[key] = sink
            queue = DestinationQueue(key, sink, flow_control, self._log_fifo_size, self._record_error)
            self._dest_queues[key] = queue
        elif flow_control and not queue.flow_control:
            # Shared by paths with and without flow control: the safer
            # (no-drop) behaviour wins.
            queue.flow_control = True
        return queue

    def _record_error(self, exc: BaseException) -> None:
        with self._errors_lock:
            self.errors.append(exc)
        print(f"parbench engine: {type(exc).__name__}: {exc}", file=sys.stderr)

    # -- connections ------------------------------------------------------------

    def connect(self, source_name: str, input: InputSource | None = None, *,
                driver: SourceDriver | None = None) -> Connection:
        """A new connection of source ``source_name`` reading from ``input``
        (default: a MessageQueue, fed with ``Connection.submit``); window and
        fetch limit come from ``driver`` (default: the source's first)."""
        if self._stopped:
            raise RuntimeError("engine is stopped")
        src = self.sources.get(source_name)
        if src is None:
            raise KeyError(f"no source named {source_name!r}; known: {', '.join(self.sources)}")
        window, fetch_limit = src.limits(driver)
        if input is None:
            input = MessageQueue(max(window, fetch_limit))
        with self._lock:
            index = self._conn_count
            self._conn_count += 1
            conn = self.connection_class(src, index, input, window, fetch_limit)
            self._connections.add(conn)
        with src.lock:
            src.connections_total += 1
        return conn

    def _connection_finished(self, conn: Connection) -> None:
        with self._lock:
            self._connections.discard(conn)
            self._all_finished.notify_all()

    # -- observation ----------------------------------------------------------------

    def idle(self) -> bool:
        """No job queued or running and every destination queue empty."""
        return self._pool.idle() and all(q.idle() for q in self._dest_queues.values())

    def wait_idle(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if not self._pool.wait_idle(left):
                return False
            for q in self._dest_queues.values():
                if not q.wait_idle(max(0.0, deadline - time.monotonic())):
                    return False
            if self.idle():
                return True

    def counters(self) -> dict:
        """Counters, named after AxoSyslog's metrics (docs/semantics.md,
        "Metrics"; the layout is DESIGN.md's counters JSON)."""
        parallelize = []
        for path in self.paths:
            if path.parallelize is None:
                continue
            partitions = []
            for p in path.partitions:
                with p.lock:
                    partitions.append({
                        "partition_index": p.index,
                        "parallelized_assigned_events_total": p.assigned,
                        "parallelized_processed_events_total": p.processed,
                        "batches_total": p.batches,
                    })
            with path.histogram_lock:
                histograms = {"parallelized_batch_size": path.batch_sizes.to_dict(),
                              "parallelized_input_batch_size": path.input_batch_sizes.to_dict()}
            parallelize.append({
                "log_path": path.index,
                "partitions": len(path.partitions),
                "key": path.parallelize.partition_key,
                "partition": partitions,
                **histograms,
            })
        sources = []
        for src in self.sources.values():
            with src.lock:
                sources.append({
                    "source": src.name,
                    "received_events_total": src.received_events_total,
                    "window_full_suspensions_total": src.window_full_suspensions_total,
                    "connections_total": src.connections_total,
                })
        destinations = []
        for q in self._dest_queues.values():
            with q._cond:
                destinations.append({
                    "destination": q.name,
                    "written_events_total": q.written_events_total,
                    "dropped_events_total": q.dropped_events_total,
                })
        return {"profile": self.profile.name, "parallelize": parallelize,
                "sources": sources, "destinations": destinations}

    # -- shutdown -------------------------------------------------------------------

    def drain(self, timeout: float) -> bool:
        """Wait until every connection is closed and fully acknowledged and
        nothing is queued anywhere (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._connections:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._all_finished.wait(min(left, 0.5))
        return self.wait_idle(max(0.0, deadline - time.monotonic()))

    def stop(self, timeout: float = 10.0) -> bool:
        """Close every connection, drain in-flight work (bounded), flush and
        close the sinks, join every thread.  Returns True when all drained."""
        if self._stopped:
            return True
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            conn.close()
        drained = self.drain(timeout)
        self._stopped = True
        self._shutdown_threads(max(1.0, timeout / 4))
        for sink in self._sinks.values():
            for method in ("flush", "close"):
                fn = getattr(sink, method, None)
                if fn is not None:
                    try:
                        fn()
                    except BaseException as exc:
                        self._record_error(exc)
        return drained

    def _shutdown_threads(self, timeout: float) -> None:
        self._pool.stop(timeout)
        for q in self._dest_queues.values():
            q.stop(timeout)
