import socket
import time

import numpy as np
import pytest

from parbench.harness.collector import Capture, Collector, Stream, parse_capture, write_capture
from parbench.harness.scenario import Workload, generate_host_names
from parbench.harness.workload import build_plan, render_connection


def plan_of(connections=1, n=20, keys=4):
    return build_plan(Workload(connections=connections, messages_per_connection=n,
                               keys=generate_host_names(keys, 1), message_size=200))


def lines_of(plan, conn=0, send_ns=0) -> list[bytes]:
    return [bytes(r) for r in render_connection(plan, conn, send_ns=send_ns)]


def wait_for(col, n, timeout=10.0):
    end = time.monotonic() + timeout
    while col.received_messages() < n and time.monotonic() < end:
        time.sleep(0.005)


def test_malformed_lines_are_counted_with_examples_and_do_not_shift_the_rest():
    lines = lines_of(plan_of())
    bad_prefix = lines[3][:-57] + b"|px" + lines[3][-54:]
    bad_hex = lines[4][:-10] + b"zz" + lines[4][-8:]
    data = b"".join(lines[:3]) + b"short\n" + bad_prefix + bad_hex + b"".join(lines[5:]) + b"\n"
    rec = parse_capture(Capture.from_bytes(data))
    assert rec.malformed == 4 and rec.lines_total == 22
    assert rec.cseq.tolist() == [0, 1, 2] + list(range(5, 20))
    # line numbers point at the capture's lines
    assert rec.line.tolist()[:4] == [0, 1, 2, 6]
    assert rec.malformed_examples[0] == {"stream": 0, "line": 4, "text": "short"}
    assert rec.malformed_examples[3] == {"stream": 0, "line": 22, "text": ""}
    assert rec.incomplete_tails == 0


def test_unterminated_last_line_is_an_incomplete_tail_not_a_record():
    lines = lines_of(plan_of())
    rec = parse_capture(Capture.from_bytes(b"".join(lines[:5]) + lines[5][:100]))
    assert len(rec) == 5 and rec.incomplete_tails == 1 and rec.malformed == 0


def test_output_with_a_prefix_before_msg_is_parsed():
    # e.g. syslog-ng's default file template: "DATE HOST PROGRAM: MSG\n"
    lines = [b"Nov 26 12:00:00 host prog: " + ln for ln in lines_of(plan_of(), send_ns=77)]
    rec = parse_capture(Capture.from_bytes(b"".join(lines)))
    assert len(rec) == 20 and rec.malformed == 0 and (rec.sent_ns == 77).all()


def test_receive_time_is_that_of_the_chunk_holding_the_newline():
    lines = lines_of(plan_of(n=4))
    data = b"".join(lines)
    L = len(lines[0])
    # chunk 1 ends in the middle of line 1, chunk 2 holds the rest
    s = Stream(data, np.array([L + 10, len(data)], np.int64), np.array([100, 200], np.int64))
    rec = parse_capture(Capture([s]))
    assert rec.recv_ns.tolist() == [100, 200, 200, 200]


def test_streams_are_merged_by_receive_time_and_keep_their_own_order():
    p = plan_of(connections=2, n=3)
    a, b = lines_of(p, 0), lines_of(p, 1)
    L = len(a[0])
    s0 = Stream(b"".join(a), np.array([L, 3 * L]), np.array([10, 30]))
    s1 = Stream(b"".join(b), np.array([2 * L, 3 * L]), np.array([20, 40]))
    rec = parse_capture(Capture([s0, s1]))
    assert list(zip(rec.conn.tolist(), rec.cseq.tolist())) == [(0, 0), (1, 0), (1, 1), (0, 1), (0, 2), (1, 2)]
    assert rec.arrival.tolist() == list(range(6))
    assert rec.stream.tolist() == [0, 1, 1, 0, 0, 1]


def test_capture_from_file_and_write_capture(tmp_path):
    p = plan_of(n=50)
    data = b"".join(lines_of(p))
    cap = Capture([Stream(data[:1000], np.array([1000]), np.array([1])), Stream(data[1000:], np.array([len(data) - 1000]), np.array([2]))])
    path = tmp_path / "cap.log"
    write_capture(cap, path)
    again = Capture.from_file(path)
    assert again.total_bytes == len(data) and not again.has_recv_times
    rec = parse_capture(again)
    assert rec.cseq.tolist() == list(range(50)) and not rec.has_recv_times


def test_parsing_spans_block_boundaries(monkeypatch):
    import parbench.harness.collector as col
    monkeypatch.setattr(col, "PARSE_BLOCK_BYTES", 333)  # not a multiple of the line length
    monkeypatch.setattr(col, "PARSE_BLOCK_LINES", 7)
    p = plan_of(n=200)
    rec = parse_capture(Capture.from_bytes(b"".join(lines_of(p))))
    assert rec.malformed == 0 and rec.cseq.tolist() == list(range(200))
    assert rec.line.tolist() == list(range(200))


def test_collector_receives_several_connections_with_times():
    p = plan_of(connections=3, n=100)
    with Collector() as col:
        assert col.host == "127.0.0.1"
        t0 = time.time_ns()
        socks = [socket.create_connection(("127.0.0.1", col.port), timeout=5) for _ in range(3)]
        try:
            for c, s in enumerate(socks):
                s.sendall(b"".join(lines_of(p, c)))
        finally:
            for s in socks:
                s.close()
        wait_for(col, 300)
        assert col.received_messages() == 300
        cap = col.stop()
        assert col.stop() is cap  # idempotent
    assert len(cap.streams) == 3
    rec = parse_capture(cap)
    assert len(rec) == 300 and rec.malformed == 0
    assert (rec.recv_ns >= t0).all() and (rec.recv_ns <= time.time_ns()).all()
    for c in range(3):
        assert rec.cseq[rec.conn == c].tolist() == list(range(100))


def test_collector_refuses_non_loopback():
    with pytest.raises(ValueError):
        Collector(host="0.0.0.0")


def test_stop_reads_what_is_already_buffered():
    p = plan_of(n=500)
    col = Collector()
    try:
        s = socket.create_connection(("127.0.0.1", col.port), timeout=5)
        s.sendall(b"".join(lines_of(p)))
        s.close()
    finally:
        cap = col.stop()
    # stop() drains what the kernel already holds: nothing sent is missing
    # unless the collector had not yet accepted; then it still accepts on drain
    assert parse_capture(cap).cseq.tolist() == list(range(500))


def test_compaction_while_receiving_gives_the_same_records():
    p = plan_of(connections=2, n=400)
    payload = []
    for c in range(2):
        ls = lines_of(p, c, send_ns=5)
        ls.insert(150, b"garbage\n")
        payload.append(b"".join(ls))
    with Collector(compact_bytes=3000) as col:
        socks = [socket.create_connection(("127.0.0.1", col.port), timeout=5) for _ in range(2)]
        try:
            for s, data in zip(socks, payload):
                for i in range(0, len(data), 777):  # chunks that cut lines
                    s.sendall(data[i:i + 777])
        finally:
            for s in socks:
                s.close()
        wait_for(col, 802)
        cap = col.stop()
    assert all(s.parsed for s in cap.streams)  # compaction happened
    rec = parse_capture(cap)
    assert rec.malformed == 2 and rec.lines_total == 802 and len(rec) == 800
    assert sorted(rec.malformed_examples, key=lambda e: e["stream"]) == [
        {"stream": 0, "line": 151, "text": "garbage"}, {"stream": 1, "line": 151, "text": "garbage"}]
    assert cap.errors == []
    for si in range(2):
        mine = rec.stream == si
        assert rec.cseq[mine].tolist() == list(range(400))
        assert rec.line[mine].tolist() == list(range(150)) + list(range(151, 401))
        assert (np.diff(rec.recv_ns[mine]) >= 0).all()
    whole = parse_capture(Capture([Stream(d, np.array([len(d)]), np.array([0])) for d in payload]))
    assert np.array_equal(np.sort(whole.conn * 1000 + whole.cseq), np.sort(rec.conn * 1000 + rec.cseq))


def test_capture_file_read_in_blocks_matches_whole(tmp_path):
    p = plan_of(connections=2, n=300)
    ls = lines_of(p, 0) + [b"bad\n"] + lines_of(p, 1)
    path = tmp_path / "c.log"
    path.write_bytes(b"".join(ls) + b"partial")
    small = parse_capture(Capture.from_file(path, block_bytes=1000))  # blocks cut lines
    whole = parse_capture(Capture.from_bytes(path.read_bytes()))
    for name in ("conn", "key", "kseq", "cseq", "sent_ns", "line"):
        assert np.array_equal(getattr(small, name), getattr(whole, name)), name
    assert (small.malformed, small.lines_total, small.incomplete_tails) == (1, 601, 1)
    assert small.malformed_examples == whole.malformed_examples == [{"stream": 0, "line": 301, "text": "bad"}]


def test_write_capture_refuses_a_compacted_capture_instead_of_dropping_its_parsed_lines(tmp_path):
    from parbench.errors import RunFailure
    from parbench.harness.workload import send

    p = plan_of(n=400)
    with Collector(compact_bytes=4096) as col:  # tiny: parsed into records while receiving
        send(p, "127.0.0.1", col.port)
        deadline = time.monotonic() + 10
        while col.received_messages() < 400 and time.monotonic() < deadline:
            time.sleep(0.01)
        cap = col.stop()
    assert sum(b.n_lines for s in cap.streams for b in s.parsed) > 0
    with pytest.raises(RunFailure, match="parsed while receiving"):
        write_capture(cap, tmp_path / "cap.log")
    assert not (tmp_path / "cap.log").exists()
