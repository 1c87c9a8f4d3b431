"""Harness hot paths (group "harness"): the generator + sender and the
parser + checker must never be what limits a measurement.

* send: 256-byte messages on one loopback connection into a blackhole (a
  thread that reads and discards). Target >= 1.2M msg/s (3x loggen's ~400k
  msg/s on these machines).
* parse+check: a captured buffer of 1M messages (4 connections, 64 keys) to a
  CheckResult. Target >= 3M msg/s.
* memory: tracemalloc peak of parse+check per tracked message, the capture
  buffer itself not counted. Target <= 100 bytes.

Rates are in ``extra_info["msgs_per_s"]`` / ``extra_info["bytes_per_message"]``.
The machine is shared with other work: numbers are noisy.
"""
from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from parbench.harness.checks import check
from loopback import LoopbackListener
from parbench.harness.collector import Capture, Stream, parse_capture
from parbench.harness.scenario import Workload, generate_host_names
from parbench.harness.workload import build_plan, render_connection, send

GROUP = "harness"
SEND_MESSAGES = 500_000
PARSE_MESSAGES = 1_000_000


@pytest.fixture
def blackhole():
    b = LoopbackListener(keep=False)
    try:
        yield b
    finally:
        b.close()


def test_generate_and_send_256_byte_messages(benchmark, blackhole):
    benchmark.group = GROUP
    workload = Workload(connections=1, messages_per_connection=SEND_MESSAGES,
                        keys=generate_host_names(16, 1), message_size=256)
    results = []

    def go():  # generation counts: the plan (key sequence) is built inside the timing
        plan = build_plan(workload)
        results.append(send(plan, "127.0.0.1", blackhole.port, deadline_s=120))

    benchmark.pedantic(go, rounds=3, iterations=1, warmup_rounds=1)
    assert all(r.complete and r.total_sent == SEND_MESSAGES for r in results)
    deadline = time.monotonic() + 30
    while blackhole.bytes < 4 * SEND_MESSAGES * 257 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert blackhole.bytes == 4 * SEND_MESSAGES * 257  # warm-up + 3 rounds, all of it arrived
    benchmark.extra_info["msgs_per_s"] = SEND_MESSAGES / benchmark.stats.stats.min
    benchmark.extra_info["target_msgs_per_s"] = 1_200_000


def _capture(n: int) -> tuple[Capture, object]:
    conns = 4
    plan = build_plan(Workload(connections=conns, messages_per_connection=n // conns,
                               keys=generate_host_names(64, 1), message_size=256))
    # one output stream interleaving the connections in chunks, as a target would
    parts = [render_connection(plan, c, send_ns=1_700_000_000_000_000_000) for c in range(conns)]
    chunk = 1000
    order = [p[i:i + chunk] for i in range(0, n // conns, chunk) for p in parts]
    data = np.concatenate(order).tobytes()
    del parts, order
    size = len(data)
    ends = np.arange(1 << 18, size + (1 << 18), 1 << 18, dtype=np.int64)
    ends[-1] = size
    return Capture([Stream(data, ends, np.arange(len(ends), dtype=np.int64) + 1_700_000_000_000_000_000)]), plan


def test_parse_and_check_a_captured_buffer(benchmark):
    benchmark.group = GROUP
    cap, plan = _capture(PARSE_MESSAGES)
    expected = plan.expected

    def go():
        return check(parse_capture(cap), expected)

    r = benchmark.pedantic(go, rounds=3, iterations=1, warmup_rounds=1)
    assert r.stats["received"] == PARSE_MESSAGES
    assert all(a.count == 0 for a in r.anomalies.values()) and len(r.anomalies) == 6
    benchmark.extra_info["msgs_per_s"] = PARSE_MESSAGES / benchmark.stats.stats.min
    benchmark.extra_info["target_msgs_per_s"] = 3_000_000


def test_memory_per_tracked_message(benchmark):
    benchmark.group = GROUP
    cap, plan = _capture(PARSE_MESSAGES)
    expected = plan.expected
    peaks = []

    def go():
        tracemalloc.start()
        try:
            rec = parse_capture(cap)
            check(rec, expected)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()

    benchmark.pedantic(go, rounds=1, iterations=1)
    per_msg = max(peaks) / PARSE_MESSAGES
    benchmark.extra_info["bytes_per_message"] = per_msg
    benchmark.extra_info["target_bytes_per_message"] = 100
    # the plan's expected arrays (key, kseq: 6 bytes a message) exist before and are not counted
    assert per_msg <= 100, f"parse+check peaked at {per_msg:.0f} bytes per message"


def test_send_into_the_collector_then_parse_and_check(benchmark):
    """The whole harness path without a target: sender -> Collector (which
    compacts while receiving) -> parse -> check."""
    benchmark.group = GROUP
    from parbench.harness.collector import Collector

    n = 500_000
    plan = build_plan(Workload(connections=1, messages_per_connection=n, keys=generate_host_names(16, 1),
                               message_size=256))
    outcomes = []

    def go():
        with Collector(compact_bytes=16 << 20) as col:
            res = send(plan, "127.0.0.1", col.port, deadline_s=120)
            deadline = time.monotonic() + 60
            while col.received_messages() < res.total_sent and time.monotonic() < deadline:
                time.sleep(0.001)
            cap = col.stop()
        outcomes.append(check(parse_capture(cap), plan.expected_for(res.sent)))

    benchmark.pedantic(go, rounds=3, iterations=1, warmup_rounds=1)
    assert all((r.stats["received"], r.count("lost"), r.count("nonmonotonic-per-key")) == (n, 0, 0)
               for r in outcomes)
    benchmark.extra_info["msgs_per_s"] = n / benchmark.stats.stats.min
