"""Flow control in the real service: a fast sender against a slow pipeline
is held back by the window (log-iw-size / max-connections), so memory stays
bounded and nothing is lost.  The soak variant pushes 1M messages (about
220 MB of traffic) and bounds the service's resident memory."""
from __future__ import annotations

import json
import socket
import threading

import pytest
from loopback import LoopbackListener
from test_service_e2e import HOSTS, Service, parse_output, traffic


def slow_conf(out_port: int, window: int, latency_us: int) -> str:
    return f"""@version: 4.8
log {{
  source {{ tcp(ip("127.0.0.1") port(0) keep-hostname(yes) log-iw-size({window}) max-connections(1)
               log-fetch-limit(100)); }};
  parallelize(partitions(4) partition-key("$HOST"));
  parser {{ parbench-cost(latency-us({latency_us})); }};
  destination {{ tcp("127.0.0.1" port({out_port}) template("$HOST $MSG\\n")); }};
  flags(flow-control);
}};
"""


def send_in_chunks(port: int, data: bytes, stall_timeout: float = 60.0) -> None:
    """sendall() with a timeout per 1 MiB chunk: a sender held back by flow
    control makes slow progress, which is fine; no progress at all is not."""
    view = memoryview(data)
    with socket.create_connection(("127.0.0.1", port), timeout=stall_timeout) as s:
        for start in range(0, len(view), 1 << 20):
            s.sendall(view[start:start + (1 << 20)])


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def run_against_slow_pipeline(tmp_path, count: int, window: int, latency_us: int, timeout: float,
                              extra: tuple[str, ...] = ()):
    peak = {"rss": 0, "baseline": 0}
    with LoopbackListener() as out:
        svc = Service(tmp_path, slow_conf(out.port, window, latency_us), *extra)
        stop = threading.Event()
        try:
            port = svc.wait_ready()["sources"][0]["port"]
            peak["baseline"] = rss_bytes(svc.proc.pid)

            def sample() -> None:
                while not stop.wait(0.1):
                    try:
                        peak["rss"] = max(peak["rss"], rss_bytes(svc.proc.pid))
                    except (OSError, AssertionError):
                        return

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            send_in_chunks(port, traffic(count))
            assert out.wait_lines(count, timeout), f"only {out.newlines} of {count} lines arrived"
            stop.set()
            sampler.join(5)
            assert svc.terminate() == 0
        finally:
            stop.set()
            svc.kill()
        records = parse_output(out.lines())
    counters = json.loads(svc.counters.read_text())
    return records, counters, peak


def assert_exactly_once_in_host_order(records, count):
    assert sorted(s for _, s in records) == list(range(count))
    last: dict[bytes, int] = {}
    for host, seq in records:
        assert host == b"host%d" % (seq % HOSTS)
        assert seq > last.get(host, -1)
        last[host] = seq


def test_a_fast_sender_is_suspended_by_the_window_and_loses_nothing(tmp_path):
    # More pool threads than partitions, so reader jobs never queue behind
    # sleeping drain jobs: the window is what holds the sender back.
    records, counters, _ = run_against_slow_pipeline(tmp_path, 5000, window=200, latency_us=500, timeout=60,
                                                     extra=("--workers", "8"))
    assert_exactly_once_in_host_order(records, 5000)
    source = counters["sources"][0]
    assert source["received_events_total"] == 5000
    # The pipeline drains a few messages per 0.5 ms batch; the sender pushes 5000 at once.
    assert source["window_full_suspensions_total"] > 0


@pytest.mark.soak
def test_soak_a_million_messages_keep_memory_bounded(tmp_path):
    count = 1_000_000  # ~ 220 MB on the wire, pushed as fast as loopback takes it
    # 0.1 ms per batch and more pool threads than partitions: a reader job
    # runs as soon as slots free, so the window, not the pool, holds the
    # sender back.  (With 1 ms per batch this regime collapses to one-message
    # batches, ~4k msg/s: each wake-up reads only the slots just freed.)
    records, counters, peak = run_against_slow_pipeline(tmp_path, count, window=10_000, latency_us=100,
                                                        timeout=1200, extra=("--workers", "8"))
    assert_exactly_once_in_host_order(records, count)
    assert counters["sources"][0]["window_full_suspensions_total"] > 0
    growth = peak["rss"] - peak["baseline"]
    # Unbounded buffering would hold hundreds of MB; the window allows 10k messages.
    assert growth < 150 * 2**20, f"RSS grew by {growth / 2**20:.0f} MiB"
