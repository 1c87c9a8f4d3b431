"""Speed of the reference parallelizer (run with --benchmark-only).

Targets (tests/benchmarks/README.md): in-process dispatch of already-parsed messages with a key
at partitions(4) to a null destination >= 1,000,000 msg/s; the TCP service
end to end on one connection (RFC 3164, ~256-byte messages, key $HOST,
partitions 4) >= 150,000 msg/s.  Each benchmark records its rate in
``extra_info["msgs_per_s"]``.

The source uses the seed config's sizes (log-iw-size(10M) max-connections(10)
log-fetch-limit(100000)): with syslog-ng's default fetch limit of 10 the cost
is the per-job overhead, not the dispatch (a separate row measures that).
"""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from parbench.reference.config_model import (Config, Destination, DestinationDriver, Location, LogPath,
                                    Parallelize, Source, SourceDriver)
from parbench.reference.engine import Engine, null_sink

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from loopback import LoopbackListener  # noqa: E402
from test_service_e2e import make_conf  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LOC = Location("bench.conf", 1, 1)
DISPATCH_COUNT = 200_000
SERVICE_COUNT = 100_000


def dispatch_config(partitions, key, fetch):
    src = Source("in", [SourceDriver("tcp", LOC, log_iw_size=10_000_000, max_connections=10,
                                     log_fetch_limit=fetch)], LOC)
    dst = Destination("null", [DestinationDriver("file", LOC, path="/dev/null")], LOC)
    par = Parallelize(LOC, partitions=partitions, partition_key=key)
    return Config("bench.conf", "4.8", sources={"in": src}, destinations={"null": dst},
                  log_paths=[LogPath([src], [par, dst], LOC, flow_control=True)])


MESSAGES = [{"HOST": b"host-%02d.example" % (i % 16), "PROGRAM": b"app", "MSG": b"m"}
            for i in range(DISPATCH_COUNT)]


def _time_rounds(benchmark, engine, messages, rounds):
    """Submit ``messages`` on a fresh connection per round until every
    window slot is released; the rate goes to extra_info."""
    def one_round():
        conn = engine.connect("in")
        conn.submit(messages, timeout=60)
        conn.close()
        assert conn.wait_released(60)

    try:
        benchmark.pedantic(one_round, rounds=rounds, warmup_rounds=1)
    finally:
        engine.stop(10)
    assert not engine.errors
    benchmark.extra_info["msgs_per_s"] = round(len(messages) / benchmark.stats.stats.median)


def _dispatch(benchmark, partitions, key, fetch, count=DISPATCH_COUNT):
    engine = Engine(dispatch_config(partitions, key, fetch), "axosyslog-4.26", sinks={"null": null_sink})
    _time_rounds(benchmark, engine, MESSAGES[:count], rounds=5)


@pytest.mark.parametrize("partitions", [1, 2, 4, 8])
def test_dispatch_keyed(benchmark, partitions):
    benchmark.group = "engine: in-process dispatch, key $HOST, 200k msgs"
    _dispatch(benchmark, partitions, "$HOST", fetch=100_000)


@pytest.mark.parametrize("partitions", [0, 4])
def test_dispatch_round_robin_and_bypass(benchmark, partitions):
    benchmark.group = "engine: in-process dispatch, key $HOST, 200k msgs"
    _dispatch(benchmark, partitions, None, fetch=100_000)


def test_dispatch_default_fetch_limit(benchmark):
    benchmark.group = "engine: in-process dispatch, log-fetch-limit(10), 20k msgs"
    _dispatch(benchmark, 4, "$HOST", fetch=10, count=20_000)


def _traffic(count):
    pad = b"p" * 200
    return b"".join(b"<13>Nov 26 12:00:00 host%d prog[42]: seq=%08d %s\n" % (i % 8, i, pad)
                    for i in range(count))


@pytest.mark.parametrize("key", ["$HOST", None])
def test_service_end_to_end_one_connection(benchmark, key):
    benchmark.group = "engine: parbench serve end to end, 1 connection, 100k x 256 B"
    collector = LoopbackListener()
    data = _traffic(SERVICE_COUNT)
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp, "bench.conf")
        conf.write_text(make_conf(collector.port, key).replace(
            "log-iw-size(20000) max-connections(2) log-fetch-limit(100)",
            "log-iw-size(10M) max-connections(10) log-fetch-limit(100000)"))
        ready = Path(tmp, "ready.json")
        proc = subprocess.Popen([sys.executable, "-m", "parbench", "serve", "-f", str(conf),
                                 "--ready-file", str(ready)], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not ready.exists():
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.05)
            port = json.loads(ready.read_text())["sources"][0]["port"]
            expected = [0]

            def one_round():
                expected[0] += SERVICE_COUNT
                with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                    s.sendall(data)
                assert collector.wait_lines(expected[0], 120)

            benchmark.pedantic(one_round, rounds=5, warmup_rounds=1)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
                collector.close()
    benchmark.extra_info["msgs_per_s"] = round(SERVICE_COUNT / benchmark.stats.stats.median)


@pytest.mark.parametrize("partitions", [1, 2])
def test_cost_stage_scales_with_partitions(benchmark, partitions):
    """parbench-cost(cpu-us(20)) after parallelize(): the work releases the
    GIL, so two partitions on two workers should approach twice the rate."""
    benchmark.group = "engine: parbench-cost(cpu-us(20)), 4 hosts, 10k msgs"
    from parbench.reference.config_model import CostStage, Parser
    config = dispatch_config(partitions, "$HOST", 100)
    config.log_paths[0].pipeline.insert(1, Parser(None, [CostStage(LOC, 20.0, 0.0)], LOC))
    engine = Engine(config, "axosyslog-4.26", workers=2, sinks={"null": null_sink})
    messages = [{"HOST": b"h%d" % (i % 4)} for i in range(10_000)]
    _time_rounds(benchmark, engine, messages, rounds=3)
