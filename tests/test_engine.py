"""Unit tests of the reference engine: bypass, hand-over, drain limit, flow
control, profiles, counters, shutdown.  Randomized properties are in
test_engine_properties.py."""
from __future__ import annotations

import collections
import threading

import pytest

from parbench.reference.config_model import (Config, CostStage, Destination, DestinationDriver, Location,
                                    LogPath, Parallelize, Parser, Source, SourceDriver)
from parbench.reference.cost import CostWorker, calibrate
from parbench.reference.engine import Engine, EngineError, Partition
from parbench.reference.inputs import SubmitTimeout

LOC = Location("unit.conf", 1, 1)


def config(partitions=None, key=None, *, batch_size=None, fetch=10, iw=1000, max_conn=10,
           flow_control=True, drain_limit=None, destinations=("out",), parallelize=True, cost=None):
    src = Source("in", [SourceDriver("tcp", LOC, log_iw_size=iw, max_connections=max_conn,
                                     log_fetch_limit=fetch)], LOC)
    dests = {name: Destination(name, [DestinationDriver("file", LOC, path="x")], LOC) for name in destinations}
    pipeline: list = []
    if parallelize:
        pipeline.append(Parallelize(LOC, partitions=partitions, partition_key=key, batch_size=batch_size,
                                    log_fetch_limit=drain_limit))
    if cost:
        pipeline.append(Parser(None, [CostStage(LOC, *cost)], LOC))
    pipeline.extend(dests.values())
    return Config("unit.conf", "4.8", sources={"in": src}, destinations=dests,
                  log_paths=[LogPath([src], pipeline, LOC, flow_control=flow_control)])


def msgs(n, conn=0, hosts=(b"a", b"b", b"c")):
    return [{"HOST": hosts[i % len(hosts)], "CONN": conn, "SEQ": i} for i in range(n)]


class ListSink:
    def __init__(self):
        self.got = []
        self.calls = 0
        self.closed = False

    def __call__(self, messages):
        self.calls += 1
        self.got.extend(messages)

    def close(self):
        self.closed = True


class BlockedSink:
    def __init__(self):
        self.gate = threading.Event()
        self.got = []

    def __call__(self, messages):
        self.gate.wait(10)
        self.got.extend(messages)


def run(cfg, messages, profile="axosyslog-4.26", **kw):
    sink = ListSink()
    batches = []
    engine = Engine(cfg, profile, workers=2, sinks={"out": sink},
                    drain_probe=lambda path, part, batch: batches.append((part, len(batch))), **kw)
    try:
        conn = engine.connect("in")
        conn.submit(messages, timeout=10)
        conn.close()
        assert engine.drain(10)
        counters = engine.counters()
    finally:
        assert engine.stop(5)
    assert not engine.errors
    return sink, batches, counters


@pytest.mark.parametrize("partitions", [None, 0])
def test_bypass_runs_inline_in_order(partitions):
    sink, batches, counters = run(config(partitions), msgs(95))
    assert [m["SEQ"] for m in sink.got] == list(range(95))
    assert {p for p, _ in batches} == {None}
    (entry,) = counters["parallelize"]
    assert {k: entry[k] for k in ("log_path", "partitions", "key", "partition")} == \
        {"log_path": 0, "partitions": 0, "key": None, "partition": []}
    # bypass hands nothing over (AxoSyslog registers the histograms anyway)
    assert entry["parallelized_batch_size"]["count"] == entry["parallelized_input_batch_size"]["count"] == 0


def test_path_without_parallelize_is_inline():
    sink, batches, counters = run(config(parallelize=False), msgs(30))
    assert [m["SEQ"] for m in sink.got] == list(range(30))
    assert counters["parallelize"] == []


def test_staging_list_is_one_batch_per_reader_job_in_syslog_ng_4_8():
    # fetch 30, 3 hosts on 3 partitions: each job stages 10 per partition and
    # hands each list over once at the end of the job.
    cfg = config(3, "$HOST", fetch=30, iw=3000)
    sink, batches, counters = run(cfg, msgs(90), profile="syslog-ng-4.8")
    assert sorted(n for _, n in batches) == [10] * 9
    assert sum(p["batches_total"] for p in counters["parallelize"][0]["partition"]) == 9


def test_axosyslog_4_26_hands_over_early_at_batch_size():
    # batch-size(4): a staging list of 10 goes over as 4 + 4 + 2.
    cfg = config(3, "$HOST", fetch=30, iw=3000, batch_size=4)
    sink, batches, counters = run(cfg, msgs(30))
    assert sorted(n for _, n in batches) == sorted([4, 4, 2] * 3)
    assert len(sink.got) == 30


def test_round_robin_models_per_profile():
    # syslog-ng-4.8: per message from partition 0; axosyslog-4.26: runs of
    # batch-size (default 100) from connection index % N.
    for profile, expected in [("syslog-ng-4.8", [i % 4 for i in range(12)]),
                              ("axosyslog-4.26", [0] * 12)]:
        placed = {}
        engine = Engine(config(4, fetch=12, iw=1000), profile, workers=1, sinks={"out": ListSink()},
                        drain_probe=lambda path, part, batch: placed.update({m["SEQ"]: part for m in batch}))
        try:
            conn = engine.connect("in")
            conn.submit(msgs(12))
            conn.close()
            assert engine.drain(10)
        finally:
            engine.stop(5)
        assert [placed[i] for i in range(12)] == expected, profile


def test_second_connection_starts_at_its_index_in_axosyslog_4_26():
    placed = collections.defaultdict(set)
    engine = Engine(config(4, batch_size=5), "axosyslog-4.26", workers=2, sinks={"out": ListSink()},
                    drain_probe=lambda path, part, batch: [placed[m["CONN"]].add(part) for m in batch])
    try:
        conns = [engine.connect("in") for _ in range(2)]
        for ci, c in enumerate(conns):
            c.submit(msgs(5, conn=ci))
            c.close()
        assert engine.drain(10)
    finally:
        engine.stop(5)
    assert placed == {0: {0}, 1: {1}}


class FakePool:
    def __init__(self):
        self.jobs = []

    def submit(self, job):
        self.jobs.append(job)


class FakePath:
    def __init__(self, drain_limit):
        self.drain_limit = drain_limit
        self.ran = []
        self.engine = type("E", (), {"_pool": FakePool()})()

    def run_after(self, index, conn, batch):
        self.ran.append(len(batch))


def test_drain_job_returns_after_limit_finishing_its_batch():
    path = FakePath(drain_limit=5)
    part = Partition(0, path)
    for _ in range(4):
        part.hand_over(None, [1, 2, 3])
    assert len(path.engine._pool.jobs) == 1  # one drain job however many hand-overs
    path.engine._pool.jobs.pop()()
    assert path.ran == [3, 3]  # 6 >= 5: returned after finishing the second batch
    assert len(path.engine._pool.jobs) == 1 and part.scheduled  # rescheduled: FIFO not empty
    path.engine._pool.jobs.pop()()
    assert path.ran == [3, 3, 3, 3] and not part.scheduled and not path.engine._pool.jobs
    assert (part.assigned, part.processed, part.batches) == (12, 12, 4)


def test_drain_without_limit_empties_the_fifo():
    path = FakePath(drain_limit=None)
    part = Partition(0, path)
    for _ in range(5):
        part.hand_over(None, [1] * 400)
    path.engine._pool.jobs.pop()()
    assert path.ran == [400] * 5 and not path.engine._pool.jobs


def test_full_window_blocks_submit_until_the_destination_takes_messages():
    sink = BlockedSink()
    engine = Engine(config(2, "$HOST", fetch=5, iw=20, max_conn=2), workers=2, sinks={"out": sink})
    try:
        conn = engine.connect("in")
        assert conn.window == 10
        # 10 in the window + 10 in the input buffer; the rest cannot go in.
        with pytest.raises(SubmitTimeout):
            conn.submit(msgs(50), timeout=0.3)
        assert conn.in_flight == 10
        assert engine.counters()["sources"][0]["window_full_suspensions_total"] >= 1
        sink.gate.set()
        conn.submit(msgs(30), timeout=10)
        conn.close()
        assert engine.drain(10)
    finally:
        sink.gate.set()
        engine.stop(5)
    assert conn.in_flight == 0


def test_without_flow_control_a_full_destination_queue_drops_and_counts():
    sink = BlockedSink()
    engine = Engine(config(1, "$HOST", fetch=10, iw=1000, max_conn=1, flow_control=False), workers=2,
                    sinks={"out": sink}, log_fifo_size=20)
    try:
        conn = engine.connect("in")
        conn.submit(msgs(200), timeout=10)  # never blocks: the queue "takes" them
        conn.close()
        assert engine.wait_idle(0.2) is False  # the writer is stuck in the sink
        sink.gate.set()
        assert engine.drain(10)
        counters = engine.counters()
    finally:
        sink.gate.set()
        engine.stop(5)
    (dest,) = counters["destinations"]
    assert dest["dropped_events_total"] > 0
    assert dest["written_events_total"] + dest["dropped_events_total"] == 200 == len(sink.got) + dest["dropped_events_total"]


def test_two_destinations_each_get_every_message_and_hold_the_window():
    a, b = ListSink(), BlockedSink()
    engine = Engine(config(2, "$HOST", fetch=5, iw=10, max_conn=1, destinations=("out", "slow")),
                    workers=2, sinks={"out": a, "slow": b})
    try:
        conn = engine.connect("in")
        with pytest.raises(SubmitTimeout):
            conn.submit(msgs(40), timeout=0.3)
        # "out" took everything it was given, but "slow" holds every slot.
        assert conn.in_flight == 10 and len(a.got) == 10
        b.gate.set()
        conn.close()
        assert engine.drain(10)
    finally:
        b.gate.set()
        engine.stop(5)
    assert len(a.got) == len(b.got) == 20


def test_partitions_clamped_to_the_profile_limit(capsys):
    engine = Engine(config(40, "$HOST"), "axosyslog-4.26", workers=1, sinks={"out": ListSink()})
    engine.stop(1)
    assert len(engine.paths[0].partitions) == 32
    assert "used_workers='32'" in capsys.readouterr().err
    engine = Engine(config(17, "$HOST"), "syslog-ng-4.8", workers=1, sinks={"out": ListSink()})
    engine.stop(1)
    assert len(engine.paths[0].partitions) == 16
    assert "clamped to 16" in capsys.readouterr().err


def test_missing_sink_is_an_engine_error():
    with pytest.raises(EngineError, match="unit.conf:1:1"):
        Engine(config(2), workers=1)


def test_stop_flushes_closes_sinks_and_joins_every_thread():
    before = {t for t in threading.enumerate() if t.name.startswith("parbench-")}
    sink, batches, counters = run(config(4, "$HOST"), msgs(1000))
    assert sink.closed
    after = {t for t in threading.enumerate() if t.name.startswith("parbench-")}
    assert after == before


def test_counters_shape_and_totals():
    sink, batches, counters = run(config(4, "$HOST", fetch=100, iw=1000), msgs(300, hosts=(b"x", b"y")))
    assert counters["profile"] == "axosyslog-4.26"
    (par,) = counters["parallelize"]
    assert par["partitions"] == 4 and par["key"] == "$HOST"
    assert [p["partition_index"] for p in par["partition"]] == [0, 1, 2, 3]
    assert sum(p["parallelized_processed_events_total"] for p in par["partition"]) == 300
    (src,) = counters["sources"]
    assert src == {"source": "in", "received_events_total": 300,
                   "window_full_suspensions_total": src["window_full_suspensions_total"],
                   "connections_total": 1}


def test_cost_stage_runs_after_parallelize_and_keeps_batches():
    sink, batches, counters = run(config(2, "$HOST", cost=(5.0, 50.0)), msgs(40))
    assert sorted(m["SEQ"] for m in sink.got) == list(range(40))


def test_cost_worker_validation_and_calibration():
    assert calibrate() > 0
    batch = [1, 2, 3]
    assert CostWorker(1.0, 0.0)(batch) is batch
    with pytest.raises(ValueError):
        CostWorker(-1.0)


@pytest.mark.parametrize("key, batch_size", [("$HOST", 3), (None, 7), (None, 0)])
def test_batch_size_histograms_count_every_batch_handed_over(key, batch_size):
    """AxoSyslog's parallelized_batch_size / _input_batch_size, as the
    reference counts them: one observation per batch a partition drains,
    one per reader job that placed messages (at most log-fetch-limit())."""
    sink, batches, counters = run(config(4, key, batch_size=batch_size, fetch=10), msgs(500, hosts=tuple(
        f"h{i}".encode() for i in range(7))))
    (entry,) = counters["parallelize"]
    handed = entry["parallelized_batch_size"]
    assert handed["sum"] == 500 and handed["count"] == len(batches)
    assert handed["count"] == sum(p["batches_total"] for p in entry["partition"])
    from parbench.reference.histogram import bucket_of

    expected = collections.Counter(bucket_of(n) for _, n in batches)
    assert [handed["buckets"][label] for label in handed["buckets"]] == [expected[i] for i in range(14)]
    if batch_size:  # early hand-over: no batch longer than batch-size()
        assert max(n for _, n in batches) <= batch_size
    inputs = entry["parallelized_input_batch_size"]
    assert inputs["sum"] == 500 and inputs["count"] >= 50  # fetch limit 10: at least 50 reader jobs
    assert sum(v for label, v in inputs["buckets"].items() if label not in ("1", "2", "4", "8", "16")) == 0
