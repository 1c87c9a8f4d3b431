"""`parbench serve` under destination faults: slow, stalled, down, killed
and restarted, and SIGTERM while it is down.

What the reference promises (docs/semantics.md, "Destination faults"):
with flags(flow-control) nothing is lost and nothing is sent twice, the
source stops reading while the destination cannot take more; without it,
drops happen only when the destination queue (log-fifo-size()) is full, and
are counted.  At every exit the counters balance: every received message
is written, dropped or still queued.
"""
from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time

import pytest
from faulty_destination import FaultyDestination
from test_service_e2e import Service

HOSTS = 8
_LINE = re.compile(rb"^host(\d) seq=(\d{8}) p*$")


def message(seq: int, size: int) -> bytes:
    head = b"<13>Nov 26 12:00:00 host%d prog[42]: seq=%08d " % (seq % HOSTS, seq)
    return head + b"p" * (size - len(head)) + b"\n"


def traffic(start: int, count: int, size: int = 200) -> bytes:
    return b"".join(message(i, size) for i in range(start, start + count))


def conf(out_port: int, *, flow_control: bool = True, window: int = 1000, fifo: int | None = None,
         time_reopen: int = 1, fetch: int = 100) -> str:
    options = [f"time-reopen({time_reopen})"]
    if fifo is not None:
        options.append(f"log-fifo-size({fifo})")
    return f"""@version: 4.8
options {{ {"; ".join(options)}; }};
log {{
  source {{ tcp(ip("127.0.0.1") port(0) keep-hostname(yes) log-iw-size({window}) max-connections(1)
               log-fetch-limit({fetch})); }};
  parallelize(partitions(4) partition-key("$HOST"));
  destination {{ tcp("127.0.0.1" port({out_port}) template("$HOST $MSG\\n")); }};
  {"flags(flow-control);" if flow_control else ""}
}};
"""


def whole_lines(stream: bytes, size: int) -> list[tuple[int, int]]:
    """(host, sequence number) of every whole line of one connection's bytes."""
    expected = size - len(b"<13>Nov 26 12:00:00 prog[42]: ")
    out = []
    for line in stream.split(b"\n")[:-1]:
        m = _LINE.match(line)
        if m is not None and len(line) == expected:
            out.append((int(m.group(1)), int(m.group(2))))
    return out


def delivered(dest: FaultyDestination, size: int = 200) -> tuple[list[int], int]:
    """(sequence numbers of the whole lines delivered, lines cut or malformed)."""
    lines, cut = dest.lines()
    expected = size - len(b"<13>Nov 26 12:00:00 prog[42]: ")
    seqs = []
    for line in lines:
        m = _LINE.match(line)
        if m is None or len(line) != expected:
            cut += 1
            continue
        seqs.append(int(m.group(2)))
    return seqs, cut


def balanced(counters: dict) -> dict:
    """The exit counters of a one-source, one-destination service, checked
    to balance; returns the destination's entry."""
    (src,) = counters["sources"]
    (dst,) = counters["destinations"]
    acc = counters["accounting"]
    assert src["received_events_total"] == dst["routed_events_total"] == acc["received"]
    assert (acc["written"], acc["dropped"], acc["queued_at_exit"]) == (
        dst["written_events_total"], dst["dropped_events_total"], dst["queued_events"])
    assert acc["received"] == acc["written"] + acc["dropped"] + acc["queued_at_exit"], acc
    assert acc["unaccounted"] == 0
    return dst


class Sender(threading.Thread):
    """Sends ``data`` on one connection, counting bytes the kernel took."""

    def __init__(self, port: int, data: bytes) -> None:
        super().__init__(daemon=True)
        self.port, self.data = port, data
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=120) as s:
                view = memoryview(self.data)
                while self.sent < len(view):
                    self.sent += s.send(view[self.sent:self.sent + (1 << 20)])
        except OSError as exc:
            self.error = exc


def start(tmp_path, text: str) -> tuple[Service, int]:
    svc = Service(tmp_path, text)
    try:
        return svc, svc.wait_ready()["sources"][0]["port"]
    except BaseException:
        svc.kill()
        raise


def stop(svc: Service, timeout: float = 30.0) -> tuple[int, str]:
    """SIGTERM; (exit status, stderr)."""
    svc.proc.send_signal(signal.SIGTERM)
    _, err = svc.proc.communicate(timeout=timeout)
    return svc.proc.returncode, err.decode()


def counters_of(svc: Service) -> dict:
    return json.loads(svc.counters.read_text())


def test_a_stalled_destination_gets_every_message_once_when_it_reads_again(tmp_path):
    # 20 MB in flight is more than the loopback socket buffers hold, so the
    # writer blocks on the stalled reader for longer than any socket
    # timeout: it must wait, not give up and send the batch again.
    count, size = 5000, 4096
    with FaultyDestination() as dest:
        dest.rate(0)
        svc, port = start(tmp_path, conf(dest.port, window=count))
        try:
            sender = Sender(port, traffic(0, count, size))
            sender.start()
            time.sleep(11)
            assert dest.line_count() == 0 and dest.connections_total == 1
            dest.rate(None)
            sender.join(60)
            assert dest.wait_lines(count, 60), f"{dest.line_count()} of {count} lines"
            assert svc.terminate() == 0
        finally:
            svc.kill()
        seqs, cut = delivered(dest, size)
    assert cut == 0
    assert sorted(seqs) == list(range(count))  # once each
    dst = balanced(counters_of(svc))
    assert (dst["written_events_total"], dst["connections_total"], dst["broken_connections_total"]) == (count, 1, 0)


def test_with_flow_control_a_destination_down_at_start_gets_everything_when_it_comes_up(tmp_path):
    count = 1000
    with FaultyDestination(listening=False) as dest:
        svc, port = start(tmp_path, conf(dest.port, window=200))
        try:
            sender = Sender(port, traffic(0, count))
            sender.start()
            time.sleep(6)  # several time-reopen() periods
            dest.up()
            assert dest.wait_lines(count, 30), f"{dest.line_count()} of {count} lines"
            sender.join(10)
            rc, stderr = stop(svc)
            assert rc == 0
        finally:
            svc.kill()
        seqs, cut = delivered(dest)
    assert cut == 0 and sorted(seqs) == list(range(count))
    counters = counters_of(svc)
    dst = balanced(counters)
    assert dst["dropped_events_total"] == 0 and dst["written_events_total"] == count
    # Retried every time-reopen(1): a few attempts, not a busy loop.
    assert 3 <= dst["connect_failures_total"] <= 10
    # The window held the sender back while the destination was down.
    assert counters["sources"][0]["window_full_suspensions_total"] >= 1
    assert stderr.count("connection failed") == 1 and "connected again" in stderr


def test_with_flow_control_a_killed_and_restarted_collector_loses_nothing(tmp_path):
    with FaultyDestination() as dest:
        svc, port = start(tmp_path, conf(dest.port, window=200))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(traffic(0, 500))
                assert dest.wait_lines(500, 30)
                dest.down(reset_connections=True)  # the collector dies
                s.sendall(traffic(500, 150))  # fits the window: taken in, queued
                time.sleep(6)
                dest.up()  # and comes back
                s.sendall(traffic(650, 350))
                assert dest.wait_lines(1000, 30), f"{dest.line_count()} of 1000 lines"
            assert svc.terminate() == 0
        finally:
            svc.kill()
        seqs, cut = delivered(dest)
    assert cut == 0 and sorted(seqs) == list(range(1000))
    dst = balanced(counters_of(svc))
    assert dst["written_events_total"] == 1000 and dst["dropped_events_total"] == 0
    assert dst["connections_total"] == 2


def test_a_crashed_collector_loses_only_what_it_acknowledged_and_never_read(tmp_path):
    # A stalled collector dies (RST, unread data thrown away) while the
    # writer is blocked with megabytes in the kernel buffers.  Lost: at most
    # the lines its kernel had received and it never read.  Everything
    # its kernel had not acknowledged is sent again on the next connection,
    # and no whole line arrives twice.
    count, size = 4000, 4096
    line = size - len(b"<13>Nov 26 12:00:00 prog[42]: ") + 1
    with FaultyDestination() as dest:
        dest.rate(64 * 1024)  # 1.3 MB/s: the kernel buffers fill up
        svc, port = start(tmp_path, conf(dest.port, window=count))
        try:
            sender = Sender(port, traffic(0, count, size))
            sender.start()
            assert dest.wait_lines(300, 30)
            dest.reset(read_pending=False)
            (first,) = dest.streams()
            read, acked = len(first), len(first) + dest.discarded_bytes_total
            lost_lines = acked // line - read // line  # the lines that ended in the discarded bytes
            dest.rate(None)
            sender.join(60)
            assert dest.wait_lines(count - lost_lines, 60)
            time.sleep(1.0)  # the rest of what is sent again
            rc, stderr = stop(svc)
            assert rc == 0
        finally:
            svc.kill()
        first, second = dest.streams()
        seqs, cut = delivered(dest, size)
    assert dest.discarded_bytes_total > 0
    assert cut == (1 if read % line else 0)
    # At most the lines its kernel received and it never read are lost
    # (fewer when its kernel had not acknowledged them all yet: those are
    # sent again).
    assert len(seqs) == len(set(seqs)) and count - lost_lines <= len(seqs) <= count
    # Per host: a prefix on the first connection, the lost run, the rest on the second.
    gaps = 0
    for host in range(HOSTS):
        expected = list(range(host, count, HOSTS))
        one = [seq for h, seq in whole_lines(first, size) if h == host]
        two = [seq for h, seq in whole_lines(second, size) if h == host]
        assert one == expected[:len(one)] and two == expected[len(expected) - len(two):]
        gaps += len(expected) - len(one) - len(two)
    assert gaps == count - len(seqs)
    counters = counters_of(svc)
    dst = balanced(counters)
    assert dst["written_events_total"] == count and dst["broken_connections_total"] == 1
    assert dst["resent_events_total"] > 0
    assert "sent again" in stderr


@pytest.mark.parametrize("flow_control", [True, False], ids=["flow-control", "no-flow-control"])
def test_sigterm_with_the_destination_down_accounts_for_every_message(tmp_path, flow_control):
    with FaultyDestination(listening=False) as dest:
        svc, port = start(tmp_path, conf(dest.port, flow_control=flow_control, window=500, fifo=300,
                                         time_reopen=60))
        try:
            sender = Sender(port, traffic(0, 50_000))
            sender.start()
            time.sleep(2)
            t0 = time.monotonic()
            assert svc.terminate() == 0
            stop_seconds = time.monotonic() - t0
            sender.join(30)
        finally:
            svc.kill()
        assert dest.line_count() == 0
    counters = counters_of(svc)
    dst = balanced(counters)
    (src,) = counters["sources"]
    assert src["received_events_total"] > 0
    assert counters["drained"] is False and counters["stopped_by"] == "SIGTERM"
    if flow_control:
        # Nothing dropped: the window stopped the reading.
        assert dst["dropped_events_total"] == 0
        assert dst["queued_events"] == src["received_events_total"] <= 500
    else:
        # Only what did not fit the destination queue was dropped.
        assert dst["queued_events"] == 300
        assert dst["dropped_events_total"] == src["received_events_total"] - 300 > 0
    # A destination that is down at shutdown is not waited for.
    assert stop_seconds < 10


def test_without_flow_control_a_slow_destination_drops_only_when_the_queue_is_full(tmp_path):
    # More than the kernel buffers between serve and a stalled destination
    # hold (the writer's send buffer grows to tcp_wmem's 4 MiB maximum).
    count, size = 12000, 1024
    with FaultyDestination(rcvbuf=64 << 10) as dest:
        dest.rate(0)
        svc, port = start(tmp_path, conf(dest.port, flow_control=False, window=100, fifo=1000))
        try:
            sender = Sender(port, traffic(0, count, size))
            sender.start()
            sender.join(60)
            assert sender.error is None and sender.sent == len(sender.data)
            time.sleep(1)
            dest.rate(None)
            time.sleep(2)
            assert svc.terminate() == 0
        finally:
            svc.kill()
        seqs, cut = delivered(dest, size)
    counters = counters_of(svc)
    dst = balanced(counters)
    assert counters["sources"][0]["received_events_total"] == count
    assert dst["queued_events"] == 0
    # Everything written arrived once; the rest was dropped and counted.
    assert cut == 0 and len(seqs) == len(set(seqs)) == dst["written_events_total"]
    assert dst["dropped_events_total"] == count - len(seqs) > 0


def test_parse_errors_are_counted_delivered_and_balance(tmp_path):
    # syslog-ng replaces a message it cannot parse with its own error
    # message, which goes on like any other: received, written, counted.
    good = b"".join(b"<13>1 2026-11-26T12:00:00Z host%d prog 42 - - seq=%08d\n" % (i % HOSTS, i) for i in range(50))
    bad = b"<13>1 not a timestamp\n" * 7
    with FaultyDestination() as dest:
        text = conf(dest.port).replace("keep-hostname(yes)", "keep-hostname(yes) flags(syslog-protocol)")
        svc, port = start(tmp_path, text)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(good + bad)
            assert dest.wait_lines(57, 30)
            assert svc.terminate() == 0
        finally:
            svc.kill()
        lines, cut = dest.lines()
    assert cut == 0 and sum(b"Error processing log message: <13>1" in x for x in lines) == 7
    assert sorted(int(x[-8:]) for x in lines if b"seq=" in x) == list(range(50))
    counters = counters_of(svc)
    dst = balanced(counters)
    src = counters["sources"][0]
    assert (src["received_events_total"], src["parse_errors_total"]) == (57, 7)
    assert dst["written_events_total"] == 57 and counters["drained"] is True
    assert counters["stopped_by"] == "SIGTERM"
