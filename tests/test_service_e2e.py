"""End to end: `parbench serve -f CONF` as a real process on loopback.

100k RFC 3164 messages for 8 hosts over one connection; the output is received
by a loopback listener in the test and checked for exactly-once delivery and,
with partition-key("$HOST"), per-host order.
"""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from loopback import LoopbackListener

REPO = Path(__file__).resolve().parents[1]
HOSTS = 8
COUNT = 100_000


class Service:
    def __init__(self, tmp_path: Path, conf_text: str, *extra: str) -> None:
        self.conf = tmp_path / "pipeline.conf"
        self.conf.write_text(conf_text)
        self.ready = tmp_path / "ready.json"
        self.counters = tmp_path / "counters.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "parbench", "serve", "-f", str(self.conf), "--ready-file",
             str(self.ready), "--counters-out", str(self.counters), *extra],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_ready(self, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready.exists():
                return json.loads(self.ready.read_text())
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {self.proc.stderr.read().decode()}")
            time.sleep(0.05)
        raise AssertionError("serve did not write its ready file within 30 s")

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream and not stream.closed:
                stream.close()


def make_conf(out_port: int, key: str | None, partitions: int = 4) -> str:
    key_opt = f' partition-key("{key}")' if key else ""
    return f"""@version: 4.8
log {{
  source {{ tcp(ip("127.0.0.1") port(0) keep-hostname(yes) use-dns(no)
               log-iw-size(20000) max-connections(2) log-fetch-limit(100)); }};
  parallelize(partitions({partitions}){key_opt});
  destination {{ tcp("127.0.0.1" port({out_port}) template("$HOST $MSG\\n")); }};
  flags(flow-control);
}};
"""


def traffic(count: int = COUNT) -> bytes:
    pad = b"p" * 180
    return b"".join(b"<13>Nov 26 12:00:00 host%d prog[42]: seq=%08d %s\n" % (i % HOSTS, i, pad)
                    for i in range(count))


def send(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)


def parse_output(lines: list[bytes]) -> list[tuple[bytes, int]]:
    out = []
    for line in lines:
        host, msg = line.split(b" ", 1)
        out.append((host, int(msg[4:12])))
    return out


@pytest.fixture
def collector():
    c = LoopbackListener()
    try:
        yield c
    finally:
        c.close()


def _run(tmp_path, collector, key):
    svc = Service(tmp_path, make_conf(collector.port, key))
    try:
        ready = svc.wait_ready()
        assert ready["pid"] == svc.proc.pid
        (source,) = ready["sources"]
        assert source["ip"] == "127.0.0.1" and source["port"] > 0
        send(source["port"], traffic())
        assert collector.wait_lines(COUNT, 120), f"only {collector.newlines} of {COUNT} lines arrived"
        rc = svc.terminate()
        stderr = svc.proc.stderr.read().decode() if not svc.proc.stderr.closed else ""
        assert rc == 0, stderr
    finally:
        svc.kill()
    records = parse_output(collector.lines())
    seqs = sorted(s for _, s in records)
    assert seqs == list(range(COUNT)), "not exactly once"
    for host, seq in records:
        assert host == b"host%d" % (seq % HOSTS)
    counters = json.loads(svc.counters.read_text())
    processed = sum(p["parallelized_processed_events_total"] for p in counters["parallelize"][0]["partition"])
    assert processed == len(records) == COUNT
    assert counters["sources"][0]["received_events_total"] == COUNT
    assert counters["sources"][0]["connections_total"] == 1
    return records, counters


def test_keyed_service_delivers_exactly_once_in_per_host_order(tmp_path, collector):
    records, counters = _run(tmp_path, collector, "$HOST")
    last: dict[bytes, int] = {}
    for host, seq in records:
        assert seq > last.get(host, -1), f"{host!r}: {seq} after {last[host]}"
        last[host] = seq
    # Every host stays on one partition: 8 hosts cannot load more than 8 partitions'
    # worth, and the counters add up to what was placed.
    parts = counters["parallelize"][0]["partition"]
    assert sum(p["parallelized_assigned_events_total"] for p in parts) == COUNT


def test_round_robin_service_delivers_exactly_once(tmp_path, collector):
    _, counters = _run(tmp_path, collector, None)
    parts = counters["parallelize"][0]["partition"]
    # axosyslog-4.26 round-robin with batch-size 100: an even spread.
    assert [p["parallelized_assigned_events_total"] for p in parts] == [COUNT // 4] * 4


def test_bad_config_exits_2_with_location(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text('@version: 4.8\nlog {\n  source { tcp(port(0) no-such-option(1)); };\n};\n')
    proc = subprocess.run([sys.executable, "-m", "parbench", "serve", "-f", str(conf)], cwd=REPO,
                          capture_output=True, timeout=60)
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"parbench serve: {conf}:3:24: unknown option")


def test_max_seconds_stops_cleanly_and_max_connections_refuses(tmp_path, collector):
    conf = make_conf(collector.port, "$HOST").replace("max-connections(2)", "max-connections(1)")
    svc = Service(tmp_path, conf, "--max-seconds", "3")
    try:
        port = svc.wait_ready()["sources"][0]["port"]
        first = socket.create_connection(("127.0.0.1", port), timeout=10)
        second = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            first.sendall(traffic(10))
            assert collector.wait_lines(10, 30)
            second.settimeout(10)
            # The second connection is over max-connections(1): closed unread.
            assert second.recv(1) == b""
        finally:
            first.close()
            second.close()
        assert svc.proc.wait(30) == 0
    finally:
        svc.kill()
    counters = json.loads(svc.counters.read_text())
    assert counters["sources"][0]["received_events_total"] == 10
    assert counters["refused_connections_total"] == 1


def test_sigterm_mid_stream_drains_and_counts_what_was_delivered(tmp_path, collector):
    svc = Service(tmp_path, make_conf(collector.port, "$HOST"))
    data = traffic(300_000)
    sender_done = threading.Event()

    def send_until_reset(port):
        try:
            send(port, data)
        except OSError:
            pass  # the service closed the connection on SIGTERM
        finally:
            sender_done.set()

    try:
        port = svc.wait_ready()["sources"][0]["port"]
        sender = threading.Thread(target=send_until_reset, args=(port,), daemon=True)
        sender.start()
        assert collector.wait_lines(1000, 30)  # mid-stream
        assert svc.terminate() == 0
        assert sender_done.wait(30)
    finally:
        svc.kill()
    counters = json.loads(svc.counters.read_text())
    assert counters["drained"] is True
    processed = sum(p["parallelized_processed_events_total"] for p in counters["parallelize"][0]["partition"])
    # Everything read was processed and written before exit: the collector
    # holds exactly that many lines (it may still be reading the last bytes).
    assert collector.wait_lines(processed, 10)
    records = parse_output(collector.lines())
    assert len(records) == processed == counters["sources"][0]["received_events_total"]
    assert len({s for _, s in records}) == processed
