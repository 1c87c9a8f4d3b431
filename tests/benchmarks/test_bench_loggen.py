"""The generator anchor: syslog-ng's loggen and parbench's own sender, side by
side, sending 256-byte messages over one loopback connection to a sink that
discards them (run with --benchmark-only; the loggen half needs
`parbench install syslog-ng`).

Compare ``extra_info["msgs_per_s"]``, not the times: loggen ends its run on
its 0.5 s reporting tick, so a count-based loggen run measures the tick, not
the sender.  loggen therefore runs for a fixed interval (unthrottled) and its
own count/time is the rate; parbench's sender sends a fixed count and the
rate is count / time.  The machine is shared: compare the two within one
session, not across sessions.
"""
from __future__ import annotations

import time

import pytest

from parbench.harness.syslog_ng.installation import find_syslog_ng
from loopback import LoopbackListener
from parbench.harness.syslog_ng.loggen import run_loggen

MESSAGES = 200_000
SIZE = 256
LOGGEN_SECONDS = 2
GROUP = f"generator: {SIZE} B messages, 1 loopback connection (compare extra_info msgs_per_s)"


@pytest.fixture
def sink():
    s = LoopbackListener(keep=False)
    try:
        yield s
    finally:
        s.close()


def test_loggen_anchor(benchmark, sink):
    benchmark.group = GROUP
    install = find_syslog_ng()
    if install is None or install.loggen is None:
        pytest.skip("no loggen (run: parbench install syslog-ng)")
    results = []

    def once():
        results.append(run_loggen(sink.port, duration_s=LOGGEN_SECONDS, size=SIZE, install=install, timeout=60))

    benchmark.pedantic(once, rounds=3, iterations=1)
    benchmark.extra_info["msgs_per_s"] = [round(r.avg_rate) for r in results]
    benchmark.extra_info["sent"] = [r.sent for r in results]
    assert all(r.sent > 0 for r in results)


def test_parbench_sender(benchmark, sink):
    benchmark.group = GROUP
    from parbench.harness.scenario import Workload
    from parbench.harness.workload import build_plan, send

    plan = build_plan(Workload(connections=1, messages_per_connection=MESSAGES, message_size=SIZE,
                               keys=tuple(f"host-{i}" for i in range(8))))
    results = []

    def once():
        started = time.perf_counter()
        result = send(plan, "127.0.0.1", sink.port, deadline_s=120)
        results.append((result, time.perf_counter() - started))

    benchmark.pedantic(once, rounds=3, iterations=1)
    benchmark.extra_info["msgs_per_s"] = [round(MESSAGES / seconds) for _, seconds in results]
    assert all(int(r.sent.sum()) == MESSAGES for r, _ in results)


def test_parbench_send_command(benchmark, sink):
    """`parbench send` as a user runs it (a process: start-up and plan
    included in the wall time; its loggen-style summary line gives the
    send rate).  -s 255 + the newline = loggen's -s 256 on the wire."""
    import subprocess
    import sys

    from parbench.harness.syslog_ng.loggen import parse_loggen_output

    benchmark.group = GROUP
    results = []

    def once():
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "parbench", "send", "chatty-single-sender", "--to",
                               f"127.0.0.1:{sink.port}", "-n", str(MESSAGES), "-s", str(SIZE - 1), "-r", "0", "-Q"],
                              capture_output=True, text=True, timeout=120)
        results.append((proc, time.perf_counter() - started))

    benchmark.pedantic(once, rounds=3, iterations=1)
    assert all(proc.returncode == 0 for proc, _ in results), results[0][0].stderr
    benchmark.extra_info["msgs_per_s"] = [round(parse_loggen_output(proc.stderr)[1]) for proc, _ in results]
    benchmark.extra_info["wall_msgs_per_s"] = [round(MESSAGES / seconds) for _, seconds in results]
