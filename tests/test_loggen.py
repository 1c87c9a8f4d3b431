"""harness.syslog_ng.loggen: command line, output parsing, and real runs of syslog-ng's loggen."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from syslog_ng_required import skip_unless_required

from parbench.harness.syslog_ng.installation import Installation, find_syslog_ng
from parbench.harness.syslog_ng.loggen import (
    UNLIMITED_RATE,
    LoggenError,
    format_summary,
    loggen_command,
    loggen_unfit_reason,
    parse_loggen_output,
    run_loggen,
)
from parbench.harness.targets.base import TargetPlan
from parbench.harness.syslog_ng.target import SyslogNgTarget

from loopback import LoopbackListener
from test_syslog_ng_target import scenario

FAKE = Installation(syslog_ng=Path("/opt/sng/sbin/syslog-ng"), version="syslog-ng 4.8.1", source="explicit",
                       loggen=Path("/opt/sng/bin/loggen"))

LOGGEN_48_STDERR = """count=3733, rate = 7464.82 msg/sec
count=21400, rate = 381.90 msg/sec
average rate = 2037.62 msg/sec, count=21400, time=10.5024, (average) msg size=256, bandwidth=509.41 kB/sec
"""


def test_parse_loggen_48_output():
    assert parse_loggen_output(LOGGEN_48_STDERR) == (21400, 2037.62, 10.5024)


# AxoSyslog 4.27's loggen, as it printed these lines here: periodic lines
# (no time=), then the summary.
LOGGEN_AXOSYSLOG_STDERR = """count=0, rate=0.00 msg/s, avg_rate=0.00 msg/s
count=5230, rate=52247.75 msg/s, avg_rate=52147.02 msg/s
avg_rate=1154.47 msg/s, stdev_rate=nan%, count=10, time=0.008662, avg_msg_size=256, bandwidth=288.62 KiB/s
"""


def test_parse_axosyslog_summary_gives_the_time():
    assert parse_loggen_output(LOGGEN_AXOSYSLOG_STDERR) == (10, 1154.47, 0.008662)


def test_parse_time_printed_with_an_exponent():
    # loggen prints time with %g: a very short run is "2e-06", not "2"
    text = "average rate = 5000000.00 msg/sec, count=10, time=2e-06, (average) msg size=260, bandwidth=1.00 kB/sec\n"
    assert parse_loggen_output(text) == (10, 5000000.0, 2e-06)


@pytest.mark.parametrize("style, real", [
    ("syslog-ng", "average rate = 19.99 msg/sec, count=10, time=0.500211, (average) msg size=256, "
                  "bandwidth=5.00 kB/sec"),
    ("axosyslog", "avg_rate=1154.47 msg/s, stdev_rate=nan%, count=10, time=0.008662, avg_msg_size=256, "
                  "bandwidth=288.62 KiB/s"),
])
def test_format_summary_prints_what_loggen_prints(style, real):
    """Lines real loggens printed (syslog-ng 4.8.1; AxoSyslog 4.27.0) for 10
    messages of 256 bytes; the same figures give the same text."""
    seconds = float(real.split("time=")[1].split(",")[0])
    assert format_summary(style, 10, seconds, 256) == real
    assert parse_loggen_output(format_summary(style, 10, seconds, 256, 12.5)) == parse_loggen_output(real)
    with pytest.raises(ValueError, match="summary style"):
        format_summary("rsyslog", 1, 1.0, 1)


def test_parse_older_avg_rate_output():
    assert parse_loggen_output("count=1000\navg_rate=512.5 msg/s\n") == (1000, 512.5, None)


def test_parse_output_without_a_rate_is_an_error():
    with pytest.raises(ValueError, match="average rate"):
        parse_loggen_output("Total runtime = 0.500115, count = 0\n")


def test_command_for_a_count_run_is_unthrottled_and_not_cut_at_10s():
    argv = loggen_command(FAKE, 5514, count=1000, connections=3, size=300)
    assert argv[0] == "/opt/sng/bin/loggen" and argv[-2:] == ["127.0.0.1", "5514"]
    assert "-S" in argv
    assert argv[argv.index("-r") + 1] == str(UNLIMITED_RATE)
    assert argv[argv.index("-n") + 1] == "1000"
    assert int(argv[argv.index("-I") + 1]) > 10
    assert argv[argv.index("--active-connections") + 1] == "3"
    assert argv[argv.index("-s") + 1] == "300"


def test_command_rfc5424_without_framing():
    argv = loggen_command(FAKE, 1, duration_s=5, rate=2000, rfc5424=True, framing=False)
    assert "-P" in argv and "-F" in argv and argv[argv.index("-I") + 1] == "5"
    assert argv[argv.index("-r") + 1] == "2000"


@pytest.mark.parametrize("kwargs, message", [
    ({"host": "10.0.0.1", "count": 1}, "loopback"),
    ({"count": 1, "size": 100}, "127 bytes"),
    ({}, "count or a duration"),
])
def test_command_refuses_bad_requests(kwargs, message):
    with pytest.raises(LoggenError, match=message):
        loggen_command(FAKE, 1, **kwargs)


def test_loggen_fits_round_robin_only():
    assert loggen_unfit_reason(scenario(partition_key=None)) is None
    reason = loggen_unfit_reason(scenario(partition_key="$HOST"))
    assert reason is not None and "one host" in reason


@pytest.fixture(scope="module")
def installed():
    found = find_syslog_ng()
    if found is None or found.loggen is None:
        skip_unless_required("no syslog-ng with loggen installed here (run: parbench install syslog-ng)")
    return found


@pytest.mark.syslog_ng
def test_loggen_sends_count_per_connection(installed):
    collector = LoopbackListener()
    try:
        result = run_loggen(collector.port, count=3000, connections=2, size=200, install=installed, timeout=60)
        collector.wait_lines(6000, timeout=30)
    finally:
        collector.close()
    assert result.sent == 6000 and result.exit_code == 0
    assert result.avg_rate > 0 and result.wall_rate > 0
    lines = collector.lines()
    assert len(lines) == 6000
    assert all(b"prg00000" in line for line in lines[:10])


@pytest.mark.syslog_ng
def test_loggen_against_a_closed_port_is_an_error(installed):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(LoggenError):
            run_loggen(port, count=10, install=installed, timeout=30)


@pytest.mark.syslog_ng
def test_loggen_as_load_source_for_round_robin_syslog_ng(tmp_path, installed):
    collector = LoopbackListener()
    target = SyslogNgTarget(install=installed)
    try:
        host, port = target.start(TargetPlan(scenario(partition_key=None), 2), collector.port, tmp_path, timeout=30)
        result = run_loggen(port, count=2000, connections=2, install=installed, timeout=60)
        collector.wait_lines(result.sent, timeout=30)
    finally:
        report = target.stop()
        collector.close()
    assert result.sent == 4000
    assert len(collector.lines()) == 4000, report.stderr_tail
