import re
import socket
import threading
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parbench.harness.checks import check
from parbench.harness.collector import Capture, Collector, parse_capture
from parbench.harness.scenario import Distribution, Expectation, Workload, generate_host_names
from parbench.harness.wire import min_message_size
from parbench.harness.workload import build_plan, render_connection, send

TRAILER_RE = re.compile(rb"\|pb:([0-9a-f]{8}):([0-9a-f]{8}):([0-9a-f]{8}):([0-9a-f]{8}):([0-9a-f]{16})$")


def wl(**kw) -> Workload:
    base = dict(connections=3, messages_per_connection=500, keys=generate_host_names(16, 3), message_size=256, seed=9)
    base.update(kw)
    return Workload(**base)


def all_bytes(plan, send_ns=0) -> bytes:
    return b"".join(render_connection(plan, c, send_ns=send_ns).tobytes() for c in range(plan.n_connections))


def test_same_seed_same_bytes_other_seed_other_bytes():
    a = all_bytes(build_plan(wl()))
    assert a == all_bytes(build_plan(wl()))
    assert a != all_bytes(build_plan(wl(seed=10)))


def test_send_time_is_the_only_field_that_varies():
    plan = build_plan(wl(connections=1, messages_per_connection=50))
    x = render_connection(plan, 0, send_ns=0)
    y = render_connection(plan, 0, send_ns=0x1234567890ABCDEF)
    t = plan.trailer_at + 40
    differs = np.flatnonzero((x != y).any(axis=0))
    assert differs.min() >= t and differs.max() < t + 16
    assert bytes(y[0, t:t + 16]) == b"1234567890abcdef"


def test_rendered_message_carries_header_key_and_trailer_fields():
    plan = build_plan(wl(connections=2, messages_per_connection=40))
    rows = render_connection(plan, 1, start=10, count=5)
    assert rows.shape == (5, 257)
    keys = plan.key_index[1]
    for i, row in enumerate(rows):
        line = bytes(row)
        assert line.endswith(b"\n") and len(line) - 1 == 256
        name = plan.key_names[keys[10 + i]].encode()
        assert line.startswith(b"<13>Jan  1 00:00:00 " + name + b" parbench[4242]: ")
        m = TRAILER_RE.search(line[:-1])
        c, k, s, q, t = (int(g, 16) for g in m.groups())
        assert (c, k, q, t) == (1, keys[10 + i], 10 + i, 0)
        assert s == int(np.sum(keys[:10 + i] == keys[10 + i]))


def test_kseq_counts_each_connection_key_pair_from_zero_in_send_order():
    plan = build_plan(wl())
    for c in range(plan.n_connections):
        keys = plan.key_index[c]
        kseq = plan.kseq_flat[plan.offsets[c]:plan.offsets[c + 1]]
        for k in np.unique(keys):
            assert np.array_equal(kseq[keys == k], np.arange(np.sum(keys == k)))


def test_disjoint_keys_stay_with_their_connection():
    plan = build_plan(wl(connections=4, keys=generate_host_names(10, 1), shared_keys=False))
    for c, keys in enumerate(plan.key_index):
        assert set(np.unique(keys).tolist()) <= set(range(c, 10, 4))
    assert set(np.concatenate(plan.key_index).tolist()) == set(range(10))


def test_zipf_makes_the_first_key_hottest():
    plan = build_plan(wl(connections=1, messages_per_connection=20000, keys=generate_host_names(64, 1),
                         distribution=Distribution("zipf", s=1.2)))
    counts = np.bincount(plan.key_index[0], minlength=64)
    share = counts[0] / counts.sum()
    assert 0.25 < share < 0.33  # p0 = 0.2925
    assert counts[0] > counts[1] > counts[10]


def test_octet_counted_and_rfc5424_sdata_key():
    w = wl(format="rfc5424", framing="octet-counted", key_field=".SDATA.meta@32473.host", keys=("a.example", "b"),
           message_size=300, connections=1, messages_per_connection=4)
    rows = render_connection(build_plan(w), 0)
    for row in rows:
        line = bytes(row)
        assert line.startswith(b"300 <13>1 2026-01-01T00:00:00.000000Z pbhost parbench 4242 pb [meta@32473 host=\"")
        assert len(line) == 4 + 300 and TRAILER_RE.search(line)


def test_expected_for_keeps_only_what_was_sent():
    plan = build_plan(wl())
    exp = plan.expected_for(np.array([500, 7, 0]))
    assert exp.total == 507 and exp.sent.tolist() == [500, 7, 0]
    assert np.array_equal(exp.key_flat[500:], plan.key_index[1][:7])
    conn, key, count = exp.conn_key_counts()
    assert count.sum() == 507 and set(conn.tolist()) == {0, 1}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size_extra=st.integers(0, 300), fmt=st.sampled_from(["rfc3164", "rfc5424"]),
       framing=st.sampled_from(["newline", "octet-counted"]), field=st.sampled_from(["HOST", "PROGRAM", "SDATA"]),
       n_keys=st.integers(1, 20), seed=st.integers(0, 2**32), n=st.integers(1, 60))
def test_exact_size_and_parse_round_trip(size_extra, fmt, framing, field, n_keys, seed, n):
    key_field = ".SDATA.pb@1.k" if field == "SDATA" else field
    if key_field.startswith(".SDATA") and fmt == "rfc3164":
        key_field = "HOST"
    w = wl(connections=2, messages_per_connection=n, format=fmt, framing=framing, key_field=key_field,
           keys=generate_host_names(n_keys, seed), seed=seed, message_size=1)
    w = replace(w, message_size=min_message_size(w.format, w.key_field, w.keys) + size_extra)
    plan = build_plan(w)
    lines = []
    for c in range(2):
        rows = render_connection(plan, c, send_ns=seed + 1)
        for row in rows:
            b = bytes(row)
            if framing == "octet-counted":
                head, _, msg = b.partition(b" ")
                assert int(head) == w.message_size == len(msg)
            else:
                msg = b[:-1]
                assert b.endswith(b"\n") and b.count(b"\n") == 1 and len(msg) == w.message_size
            lines.append(msg + b"\n")
    rec = parse_capture(Capture.from_bytes(b"".join(lines)))
    assert rec.malformed == 0 and len(rec) == 2 * n
    assert rec.conn.tolist() == [0] * n + [1] * n
    assert rec.cseq.tolist() == list(range(n)) * 2
    assert np.array_equal(rec.key, np.concatenate(plan.key_index))
    assert np.array_equal(rec.kseq, plan.kseq_flat)
    assert (rec.sent_ns == seed + 1).all()


def test_send_delivers_every_connection_to_a_collector():
    plan = build_plan(wl(connections=5, messages_per_connection=3000))
    seen = []
    with Collector() as col:
        res = send(plan, "127.0.0.1", col.port, deadline_s=60, progress=seen.append)
        _wait_for(col, res.total_sent)
        cap = col.stop()
    assert res.complete and res.sent.tolist() == [3000] * 5 and sum(seen) == 15000
    assert res.t_first_ns <= res.t_last_ns
    rec = parse_capture(cap)
    result = check(rec, plan.expected_for(res.sent))
    assert result.verdict(Expectation("per-connection")) == ("pass", [])
    assert (rec.sent_ns >= res.t_first_ns).all() and (rec.recv_ns >= rec.sent_ns).all()


def test_a_thousand_connections_work():
    plan = build_plan(wl(connections=1000, messages_per_connection=3, keys=generate_host_names(4, 1)))
    with Collector() as col:
        res = send(plan, "127.0.0.1", col.port, deadline_s=60)
        _wait_for(col, 3000)
        cap = col.stop()
    assert res.complete and res.total_sent == 3000
    assert len(cap.streams) == 1000
    r = check(parse_capture(cap), plan.expected)
    assert (r.count("lost"), r.count("duplicated"), r.count("unexpected")) == (0, 0, 0)


def test_rate_limit_spaces_the_send_times():
    plan = build_plan(wl(connections=2, messages_per_connection=60, rate_per_connection=400.0))
    with Collector() as col:
        res = send(plan, "127.0.0.1", col.port, deadline_s=30)
        _wait_for(col, 120)
        rec = parse_capture(col.stop())
    assert res.complete
    for c in range(2):
        t = np.sort(rec.sent_ns[rec.conn == c])
        # message i may not leave before t0 + i / rate (a lower bound: a busy machine only adds delay)
        assert (t[-1] - t[0]) / 1e9 >= (60 - 1) / 400.0 * 0.95


def test_duration_mode_stops_and_reports_what_was_sent():
    w = wl(connections=2, messages_per_connection=None, duration_s=0.3, rate_per_connection=500.0)
    plan = build_plan(w)
    with Collector() as col:
        res = send(plan, "127.0.0.1", col.port, deadline_s=30)
        _wait_for(col, res.total_sent)
        rec = parse_capture(col.stop())
    assert not res.errors and not res.timed_out
    assert (res.sent > 0).all() and (res.sent <= 0.3 * 500 + 2).all()  # the rate caps it
    r = check(rec, plan.expected_for(res.sent))
    assert (r.count("lost"), r.count("unexpected"), r.count("duplicated")) == (0, 0, 0)


def test_refused_connection_is_reported_not_raised():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    res = send(build_plan(wl(connections=2, messages_per_connection=10)), "127.0.0.1", port, deadline_s=5,
               connect_timeout=1)
    assert set(res.errors) == {0, 1} and "connect" in res.errors[0] and res.total_sent == 0


@pytest.mark.timeout(30)
def test_a_target_that_never_reads_hits_the_deadline_instead_of_hanging():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    accepted = []
    stop = threading.Event()

    def accept_and_sit():
        srv.settimeout(5)
        try:
            accepted.append(srv.accept()[0])
        except OSError:
            pass
        stop.wait(10)

    th = threading.Thread(target=accept_and_sit, daemon=True)
    th.start()
    try:
        plan = build_plan(wl(connections=1, messages_per_connection=400000))
        res = send(plan, "127.0.0.1", srv.getsockname()[1], deadline_s=1.0)
        assert res.timed_out and not res.complete and 0 < res.total_sent < 400000
        assert "deadline" in res.errors[0]
    finally:
        stop.set()
        th.join(5)
        for c in accepted:
            c.close()
        srv.close()


def _wait_for(col: Collector, n: int, timeout: float = 20.0) -> None:
    import time
    end = time.monotonic() + timeout
    while col.received_messages() < n and time.monotonic() < end:
        time.sleep(0.01)


def test_many_rate_limited_connections_all_finish():
    plan = build_plan(wl(connections=300, messages_per_connection=8, rate_per_connection=100.0))
    with Collector() as col:
        res = send(plan, "127.0.0.1", col.port, deadline_s=30)
        _wait_for(col, 2400)
        rec = parse_capture(col.stop())
    assert res.complete and res.total_sent == 2400
    r = check(rec, plan.expected)
    assert (r.count("lost"), r.count("duplicated"), r.count("nonmonotonic-per-connection")) == (0, 0, 0)
