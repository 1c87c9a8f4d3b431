"""Property tests of the reference engine over random streams, both profiles.

Properties (docs/semantics.md, "Partition choice", "Round-robin",
"Hand-over and flow control"):
* exactly once: every accepted message is delivered once;
* with a key: per (connection, key) order kept, and every message is drained
  by partition g_str_hash(key) % N, checked against GLib's own g_str_hash;
* without a key: placement equals the profile's round-robin model (start at 0
  for syslog-ng-4.8, at connection index % N for axosyslog-4.26; runs of
  batch-size);
* bypass keeps per-connection order;
* a partition is drained by at most one thread at a time;
* stateful: in-flight messages per connection never exceed the window share,
  and reading resumes when slots free.

The mutation tests at the end prove that each property catches the broken
engine it is meant to catch.
"""
from __future__ import annotations

import collections
import ctypes
import ctypes.util
import threading
import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from parbench.reference.config_model import (Config, Destination, DestinationDriver, Location, LogPath,
                                    Parallelize, Source, SourceDriver)
from parbench.reference.engine import Connection, Engine, Partition, PathRuntime
from parbench.reference.profiles import PROFILES, get_profile

LOC = Location("test.conf", 1, 1)
MAX_CONNECTIONS = 8


def _load_glib_hash():
    try:
        from tests.glib_oracle import glib_str_hash  # the shared oracle, when present
        return glib_str_hash()
    except ImportError:
        pass
    name = ctypes.util.find_library("glib-2.0") or "libglib-2.0.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.g_str_hash.argtypes = [ctypes.c_char_p]
    lib.g_str_hash.restype = ctypes.c_uint
    return lambda data: lib.g_str_hash(data)


_GLIB_HASH = _load_glib_hash()


def _djb_signed(data: bytes) -> int:
    h = 5381
    for b in data:
        h = (h * 33 + (b - 256 if b >= 128 else b)) & 0xFFFFFFFF
    return h


# GLib when it loads; otherwise the documented algorithm (tests/test_partition.py
# pins it to vectors computed with GLib).
oracle_hash = _GLIB_HASH or _djb_signed


def make_config(partitions, key, *, batch_size=None, fetch=10, window=100, drain_limit=None,
                flow_control=True):
    src = Source("in", [SourceDriver("tcp", LOC, log_iw_size=window * MAX_CONNECTIONS,
                                     max_connections=MAX_CONNECTIONS, log_fetch_limit=fetch)], LOC)
    dst = Destination("out", [DestinationDriver("file", LOC, path="unused")], LOC)
    par = Parallelize(LOC, partitions=partitions, partition_key=key, batch_size=batch_size,
                      log_fetch_limit=drain_limit)
    return Config("test.conf", "4.8", sources={"in": src}, destinations={"out": dst},
                  log_paths=[LogPath([src], [par, dst], LOC, flow_control=flow_control)])


class Recorder:
    """The sink and drain probe of one run.

    The probe sleeps a little inside each batch so that two drain jobs of one
    partition, if the engine ever allowed them, really overlap.
    """

    def __init__(self, probe_sleep: float = 0.0) -> None:
        self.delivered: list[dict] = []
        self.placed: list[tuple[int | None, dict]] = []
        self.overlaps = 0
        self._active: set = set()
        self._lock = threading.Lock()
        self.probe_sleep = probe_sleep

    def sink(self, messages):
        self.delivered.extend(messages)

    def probe(self, path_index, partition_index, batch):
        token = (path_index, partition_index)
        with self._lock:
            if partition_index is not None and token in self._active:
                self.overlaps += 1
            self._active.add(token)
            self.placed.extend((partition_index, m) for m in batch)
        if self.probe_sleep:
            time.sleep(self.probe_sleep)
        with self._lock:
            self._active.discard(token)


def run_stream(profile_name, streams, partitions, keyed, batch_size, fetch, window, drain_limit,
               flow_control=True, workers=2, engine_class=Engine, probe_sleep=0.0,
               submit_timeout=10.0):
    """Feed one stream per connection (each a list of key bytes) concurrently;
    return (recorder, engine counters, effective partitions)."""
    profile = get_profile(profile_name)
    if not profile.clamp_partitions:
        partitions = min(partitions, profile.max_partitions)
    config = make_config(partitions, "$HOST" if keyed else None, batch_size=batch_size,
                         fetch=fetch, window=window, drain_limit=drain_limit,
                         flow_control=flow_control)
    rec = Recorder(probe_sleep)
    engine = engine_class(config, profile, workers=workers, sinks={"out": rec.sink},
                          drain_probe=rec.probe)
    failures: list[BaseException] = []
    try:
        conns = [engine.connect("in") for _ in streams]

        def feed(ci, keys):
            try:
                msgs = [{"HOST": k, "CONN": ci, "SEQ": i} for i, k in enumerate(keys)]
                # Several submits so reader jobs interleave with the sender.
                for start in range(0, len(msgs), 7):
                    conns[ci].submit(msgs[start:start + 7], timeout=submit_timeout)
                conns[ci].close()
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=feed, args=(ci, keys)) for ci, keys in enumerate(streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(submit_timeout + 5)
        if failures:
            raise AssertionError(f"sender failed: {failures[0]!r}")
        assert engine.drain(10.0), "engine did not drain within 10 s"
        counters = engine.counters()
    finally:
        engine.stop(5.0)
    assert not engine.errors, engine.errors
    effective = len(engine.paths[0].partitions)
    return rec, counters, effective


def check_properties(profile_name, streams, partitions, keyed, batch_size, fetch, window,
                     drain_limit, flow_control=True, **kw):
    rec, counters, n = run_stream(profile_name, streams, partitions, keyed, batch_size, fetch,
                                  window, drain_limit, flow_control, **kw)
    profile = get_profile(profile_name)
    expected_n = min(partitions, profile.max_partitions)
    assert n == expected_n

    # Exactly once.
    sent = collections.Counter((ci, i) for ci, keys in enumerate(streams) for i in range(len(keys)))
    got = collections.Counter((m["CONN"], m["SEQ"]) for m in rec.delivered)
    assert got == sent, f"lost {sum((sent - got).values())}, duplicated {sum((got - sent).values())}"

    # A partition is a serial consumer.
    assert rec.overlaps == 0, f"{rec.overlaps} batches drained concurrently within one partition"

    total = sum(len(s) for s in streams)
    assert counters["sources"][0]["received_events_total"] == total

    if n == 0:
        # Bypass keeps per-connection order.
        last: dict[int, int] = {}
        for m in rec.delivered:
            assert m["SEQ"] > last.get(m["CONN"], -1), "bypass reordered a connection"
            last[m["CONN"]] = m["SEQ"]
        return

    parts = counters["parallelize"][0]["partition"]
    placed_per_partition = collections.Counter(p for p, _ in rec.placed)
    for entry in parts:
        i = entry["partition_index"]
        assert entry["parallelized_assigned_events_total"] == placed_per_partition[i]
        assert entry["parallelized_processed_events_total"] == placed_per_partition[i]

    if keyed:
        for p, m in rec.placed:
            assert p == oracle_hash(m["HOST"]) % n, f"key {m['HOST']!r} drained by partition {p}"
        last_seq: dict[tuple, int] = {}
        for m in rec.delivered:
            k = (m["CONN"], m["HOST"])
            assert m["SEQ"] > last_seq.get(k, -1), f"order broken for (connection, key) {k}"
            last_seq[k] = m["SEQ"]
    else:
        # The profile's round-robin model, per connection (= input thread).
        if profile.accepts_batch_size and batch_size is not None:
            run = batch_size
        else:
            run = profile.default_batch_size
        run = max(run, 1)
        placement = {(m["CONN"], m["SEQ"]): p for p, m in rec.placed}
        for ci, keys in enumerate(streams):
            start = 0 if profile.round_robin_start == "zero" else ci % n
            for i in range(len(keys)):
                assert placement[(ci, i)] == (start + i // run) % n, (
                    f"connection {ci} message {i}: partition {placement[(ci, i)]}, "
                    f"model says {(start + i // run) % n}")


keys_st = st.sampled_from([b"web-01", b"web-10", b"db", b"", "hôte-é".encode(), b"\xff\x80\x01",
                           "ключ".encode(), b"a b"]) | st.binary(min_size=0, max_size=6).filter(
    lambda b: b"\x00" not in b)  # g_str_hash stops at NUL: the key is a C string
streams_st = st.lists(st.lists(keys_st, min_size=0, max_size=60), min_size=1, max_size=8)
params = dict(
    profile_name=st.sampled_from(sorted(PROFILES)),
    streams=streams_st,
    partitions=st.integers(0, 40),
    batch_size=st.one_of(st.none(), st.integers(0, 12)),
    fetch=st.integers(1, 25),
    window=st.integers(1, 40),
    drain_limit=st.one_of(st.none(), st.integers(1, 30)),
    flow_control=st.booleans(),
)
SETTINGS = settings(max_examples=120, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(**params)
def test_keyed_streams(**kw):
    check_properties(keyed=True, **kw)


@SETTINGS
@given(**params)
def test_round_robin_streams(**kw):
    check_properties(keyed=False, **kw)


# ---------------------------------------------------------------------------
# Stateful: the window.
# ---------------------------------------------------------------------------


class GatedSink:
    """A destination that completes one write per permit the test grants."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.permits = 0
        self.waiting = False
        self.closed = False
        self.delivered = collections.Counter()

    def __call__(self, messages):
        with self.cond:
            while self.permits == 0 and not self.closed:
                self.waiting = True
                self.cond.wait(5.0)
            self.waiting = False
            if self.permits:
                self.permits -= 1
            for m in messages:
                self.delivered[m["CONN"]] += 1

    def grant(self, n=1):
        with self.cond:
            self.permits += n
            self.cond.notify_all()

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class WindowMachine(RuleBasedStateMachine):
    engine_class = Engine

    @initialize(profile_name=st.sampled_from(sorted(PROFILES)), n_conns=st.integers(1, 3),
                partitions=st.integers(0, 4), window=st.integers(1, 6), fetch=st.integers(1, 8),
                keyed=st.booleans())
    def setup(self, profile_name, n_conns, partitions, window, fetch, keyed):
        self.sink = GatedSink()
        self.window = window
        self.violations: list[str] = []
        config = make_config(partitions, "$HOST" if keyed else None, fetch=fetch, window=window)
        self.engine = self.engine_class(config, profile_name, workers=2, sinks={"out": self.sink},
                             drain_probe=self._probe)
        self.conns = [self.engine.connect("in") for _ in range(n_conns)]
        self.seq = [0] * n_conns
        self.offered = [0] * n_conns

    def _probe(self, path_index, partition_index, batch):
        # received - written can only under-estimate what is in flight (the
        # window is released after the write), so exceeding the window here
        # is a real violation.
        for ci, conn in enumerate(self.conns):
            with self.sink.cond:
                written = self.sink.delivered[ci]
            if conn.received - written > self.window:
                self.violations.append(f"connection {ci}: {conn.received - written} in flight")

    def settle(self):
        deadline = time.monotonic() + 5.0
        stable = 0
        while time.monotonic() < deadline:
            queue = self.engine._dest_queues["out"]
            if self.engine._pool.idle() and (queue.idle() or self.sink.waiting):
                stable += 1
                if stable >= 2:
                    return
            else:
                stable = 0
            time.sleep(0.002)
        raise AssertionError("engine did not settle within 5 s")

    @rule(ci=st.integers(0, 7), count=st.integers(1, 15), host=st.sampled_from([b"a", b"b", b"c"]))
    def offer(self, ci, count, host):
        ci %= len(self.conns)
        msgs = [{"HOST": host, "CONN": ci, "SEQ": self.seq[ci] + i} for i in range(count)]
        taken = self.conns[ci].offer(msgs)
        self.seq[ci] += taken
        self.offered[ci] += taken
        self.settle()

    @rule(n=st.integers(1, 3))
    def grant(self, n):
        self.sink.grant(n)
        self.settle()

    @invariant()
    def window_respected_and_reading_resumes(self):
        if not hasattr(self, "engine"):
            return
        assert not self.violations, self.violations[:3]
        for ci, conn in enumerate(self.conns):
            with self.sink.cond:
                written = self.sink.delivered[ci]
            in_flight = conn.received - written
            assert 0 <= in_flight <= self.window
            assert conn.in_flight == in_flight
            buffered = self.offered[ci] - conn.received
            # Settled: a connection with input waiting must have a full window
            # (otherwise reading failed to resume when slots freed).
            assert buffered == 0 or in_flight == self.window, (
                f"connection {ci}: {buffered} buffered but only {in_flight}/{self.window} in flight")

    def teardown(self):
        if hasattr(self, "engine"):
            self.sink.grant(10**6)
            try:
                assert self.engine.stop(5.0)
            finally:
                self.sink.close()
            assert not self.engine.errors


WindowMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=20, deadline=None,
                                           database=None,
                                           suppress_health_check=[HealthCheck.too_slow])
TestWindow = WindowMachine.TestCase


# ---------------------------------------------------------------------------
# Mutation checks: each broken engine must be caught by the properties above.
# ---------------------------------------------------------------------------

MUTATION_SETTINGS = settings(max_examples=60, deadline=None, database=None,
                             phases=[Phase.generate],  # the first failure is enough
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _expect_caught(engine_class, keyed, **fixed):
    strategies = dict(params)
    strategies.update({k: st.just(v) for k, v in fixed.items()})

    @MUTATION_SETTINGS
    @given(**strategies)
    def prop(**kw):
        check_properties(keyed=keyed, engine_class=engine_class, **kw)

    with pytest.raises(AssertionError):
        prop()


class UnsignedHashPlacer:
    """g_str_hash with bytes taken as unsigned: wrong for bytes >= 0x80."""

    def __init__(self, partitions):
        self.n = partitions

    def place(self, batch):
        out = []
        for m in batch:
            h = 5381
            for b in m.get("HOST", b""):
                h = (h * 33 + b) & 0xFFFFFFFF
            out.append(h % self.n)
        return out


class BrokenPartitionerEngine(Engine):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        for path in self.paths:
            if path.keyed_placer is not None:
                path.keyed_placer = UnsignedHashPlacer(len(path.partitions))


class RacyPartition(Partition):
    """Schedules a drain job on every hand-over, even while one is running."""

    def hand_over(self, conn, batch):
        with self.lock:
            self.fifo.append((conn, batch))
            self.assigned += len(batch)
            self.batches += 1
            self.scheduled = True
        self.path.engine._pool.submit(self.drain)


class TwoDrainersEngine(Engine):
    partition_class = RacyPartition


class LosingPath(PathRuntime):
    """Forgets the end-of-job hand-over of the last partition's staging list."""

    def hand_over(self, conn, staging):
        staging = list(staging)
        for p in range(len(staging) - 1, -1, -1):
            if staging[p]:
                staging[p] = []
                break
        super().hand_over(conn, staging)


class LostHandOverEngine(Engine):
    path_class = LosingPath


def test_mutation_broken_partitioner_is_caught():
    # Signedness changes each high byte's term by 256 * 33**k, which no
    # power-of-two N <= 256 can see: 3 partitions can.
    _expect_caught(BrokenPartitionerEngine, keyed=True, partitions=3,
                   streams=[["hôte-é".encode(), "ключ".encode(), b"\xff\x80\x01", b"\xc3\xa9"] * 3])


def test_mutation_two_drainers_per_partition_is_caught():
    _expect_caught(TwoDrainersEngine, keyed=True, partitions=1, fetch=1, probe_sleep=0.002,
                   streams=[[b"a", b"b"] * 10, [b"c"] * 20])


def test_mutation_lost_hand_over_is_caught():
    _expect_caught(LostHandOverEngine, keyed=False, submit_timeout=1.0, partitions=3,
                   window=40, streams=[[b"k"] * 30])


class IgnoresWindowConnection(Connection):
    def _free_slots_locked(self):
        return self.fetch_limit  # reads a full fetch whatever is in flight


class NeverResumesConnection(Connection):
    def release(self, units):
        with self._cond:
            self._held_units -= units  # frees slots but never wakes the reader


def _window_machine_fails(connection_class):
    class Mutant(Engine):
        pass

    Mutant.connection_class = connection_class

    class MutantMachine(WindowMachine):
        engine_class = Mutant

    case = MutantMachine.TestCase
    case.settings = settings(max_examples=40, stateful_step_count=20, deadline=None, database=None,
                             phases=[Phase.generate],
                             suppress_health_check=[HealthCheck.too_slow])
    with pytest.raises(AssertionError):
        case("runTest").runTest()


def test_mutation_window_ignored_is_caught():
    _window_machine_fails(IgnoresWindowConnection)


def test_mutation_reader_never_resumes_is_caught():
    _window_machine_fails(NeverResumesConnection)
