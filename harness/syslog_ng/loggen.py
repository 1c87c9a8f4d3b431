"""loggen, the load generator that ships with syslog-ng, as a load source.

Used as the anchor of the generator benchmark (how fast does syslog-ng's own
tool send on this machine) and as an alternative load source for scenarios
whose checks do not depend on the key: every loggen line has host
``localhost`` and program ``prg00000``, and no parbench trailer, so loggen
traffic fits only round-robin / per-connection scenarios and the collector
counts it but cannot check order or latency.

Facts about loggen 4.8 that shape the command line:

* ``-S`` (stream socket) is required, or no transport plugin is active.
* ``-n`` and ``-r`` are per connection; the default rate is 1000 msg/s and
  ``-r 0`` sends nothing, so "unlimited" is a huge rate.
* The default ``-I`` (interval) is 10 s and ends the run even before ``-n``
  messages are sent, so a count-based run gets a long interval.
* It reports on stderr, at the end, one summary line.  syslog-ng 4.8:
  ``average rate = R msg/sec, count=N, time=T, (average) msg size=B,
  bandwidth=K kB/sec``, with T close to a multiple of its 0.5 s reporting
  period, so for short runs the wall-clock rate measured here is the better
  figure (both are returned).  AxoSyslog (4.27): ``avg_rate=R msg/s,
  stdev_rate=S%, count=N, time=T, avg_msg_size=B, bandwidth=K KiB/s``,
  after periodic ``count=N, rate=R msg/s, avg_rate=R msg/s`` lines.  T is
  printed with C's ``%g`` (``2e-06``), B counts the framing, K is KiB/s.
  ``format_summary`` writes either line for ``parbench send``, which
  ``parse_loggen_output`` reads back.
"""
from __future__ import annotations

import math
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parbench.errors import RunFailure
from parbench.harness.syslog_ng.installation import Installation, find_syslog_ng

UNLIMITED_RATE = 1_000_000_000
COUNT_RUN_INTERVAL_S = 86_400
LOOPBACK = ("127.0.0.1", "::1", "localhost")
STDERR_TAIL_CHARS = 2000

_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf"
# syslog-ng 4.8's summary line
_AVERAGE = re.compile(
    rf"average rate = (?P<rate>{_FLOAT}) msg/sec, count=(?P<count>\d+), time=(?P<time>{_FLOAT})")
# AxoSyslog's summary line (the periodic lines carry no time=)
_AVG_SUMMARY = re.compile(
    rf"avg_rate=(?P<rate>{_FLOAT}) msg/s, stdev_rate=(?:{_FLOAT})%, count=(?P<count>\d+), time=(?P<time>{_FLOAT})")
_AVG_RATE = re.compile(rf"avg_rate=(?P<rate>{_FLOAT})")
_COUNT = re.compile(r"count=(?P<count>\d+)")
SUMMARY_STYLES = ("syslog-ng", "axosyslog")


class LoggenError(RunFailure):
    """loggen could not run or said nothing usable; str() is one line (plus a stderr tail)."""


@dataclass
class LoggenResult:
    sent: int  # messages loggen says it sent (all connections)
    avg_rate: float  # msg/s, as loggen reports it
    loggen_seconds: float | None  # loggen's own duration (0.5 s granularity)
    wall_seconds: float  # measured here, process start to exit
    exit_code: int
    argv: list[str] = field(default_factory=list)
    stderr_tail: str = ""

    @property
    def wall_rate(self) -> float:
        return self.sent / self.wall_seconds if self.wall_seconds > 0 else 0.0


def parse_loggen_output(text: str) -> tuple[int, float, float | None]:
    """loggen's stderr -> (count, average rate msg/s, seconds or None); the
    last summary line of either style wins."""
    matches = sorted([*_AVERAGE.finditer(text), *_AVG_SUMMARY.finditer(text)], key=lambda m: m.start())
    if matches:
        last = matches[-1]
        return int(last.group("count")), float(last.group("rate")), float(last.group("time"))
    rates = list(_AVG_RATE.finditer(text))
    if rates:
        counts = list(_COUNT.finditer(text))
        count = int(counts[-1].group("count")) if counts else 0
        return count, float(rates[-1].group("rate")), None
    raise ValueError("loggen printed no 'average rate = ...' or 'avg_rate=...' line")


def format_summary(style: str, count: int, seconds: float, message_bytes: int,
                   stdev_rate_percent: float | None = None) -> str:
    """loggen's final line, as syslog-ng 4.8's (``style`` "syslog-ng") or
    AxoSyslog's ("axosyslog") loggen prints it, for ``count`` messages of
    ``message_bytes`` bytes each (framing included) sent in ``seconds``."""
    rate = count / seconds if seconds > 0 else 0.0
    kib_per_s = count * message_bytes / 1024 / seconds if seconds > 0 else 0.0
    if style == "syslog-ng":
        return (f"average rate = {rate:.2f} msg/sec, count={count}, time={seconds:g}, "
                f"(average) msg size={message_bytes}, bandwidth={kib_per_s:.2f} kB/sec")
    if style == "axosyslog":
        stdev = math.nan if stdev_rate_percent is None else stdev_rate_percent
        return (f"avg_rate={rate:.2f} msg/s, stdev_rate={stdev:.2f}%, count={count}, time={seconds:g}, "
                f"avg_msg_size={message_bytes}, bandwidth={kib_per_s:.2f} KiB/s")
    raise ValueError(f"summary style {style!r}: expected one of {', '.join(SUMMARY_STYLES)}")


def loggen_unfit_reason(scenario: Any) -> str | None:
    """Why loggen cannot stand in for the parbench generator in ``scenario`` (None: it can)."""
    pipeline, workload = scenario.pipeline, scenario.workload
    if pipeline.partition_key:
        return (f"loggen sends one host and one program for every line, so partition-key "
                f"{pipeline.partition_key!r} would put all its traffic in one partition")
    if getattr(scenario.expect, "ordering", "none") == "per-key":
        return "loggen lines carry no parbench key trailer, so per-key order cannot be checked"
    if workload.framing == "octet-counted" and workload.format != "rfc5424":
        return "loggen uses octet-counted framing only with RFC 5424 (-P)"
    return None


def loggen_command(
    install: Installation,
    port: int,
    *,
    host: str = "127.0.0.1",
    count: int | None = None,
    rate: float | None = None,
    size: int = 256,
    connections: int = 1,
    duration_s: float | None = None,
    rfc5424: bool = False,
    framing: bool = True,
) -> list[str]:
    """The loggen argv; ``count`` and ``rate`` are per connection (as loggen takes them)."""
    if host not in LOOPBACK:
        raise LoggenError(f"loggen target {host!r}: parbench sends only to loopback (127.0.0.1 or ::1)")
    if count is None and duration_s is None:
        raise LoggenError("loggen: give a message count or a duration")
    if size < 127:
        # below 127 bytes loggen cuts the newline off
        raise LoggenError(f"loggen: size {size} is below loggen's minimum of 127 bytes")
    if connections < 1:
        raise LoggenError(f"loggen: connections must be >= 1, got {connections}")
    argv = install.loggen_argv()
    if argv is None:
        raise LoggenError(f"no loggen next to {install.syslog_ng} (it ships in syslog-ng-core)")
    argv = [*argv, "-S", "-s", str(int(size)), "--active-connections", str(int(connections)),
            "-r", str(int(rate) if rate else UNLIMITED_RATE)]
    if count is not None:
        argv += ["-n", str(int(count))]
    interval = duration_s if duration_s is not None else COUNT_RUN_INTERVAL_S
    argv += ["-I", str(max(1, int(round(interval))))]
    if rfc5424:
        argv.append("-P")
        if not framing:
            argv.append("-F")
    if host == "::1":
        argv.append("-6")
    return [*argv, host, str(int(port))]


def run_loggen(
    port: int,
    *,
    host: str = "127.0.0.1",
    count: int | None = None,
    rate: float | None = None,
    size: int = 256,
    connections: int = 1,
    duration_s: float | None = None,
    rfc5424: bool = False,
    framing: bool = True,
    install: Installation | None = None,
    timeout: float | None = None,
    workdir: Path | None = None,
) -> LoggenResult:
    """Run loggen to completion against a loopback port and parse what it reports.

    ``timeout`` defaults to the expected duration plus a minute; loggen is
    killed (and LoggenError raised) when it runs longer."""
    install = install or find_syslog_ng()
    if install is None:
        raise LoggenError("loggen: no syslog-ng installation found (run: parbench install syslog-ng)")
    argv = loggen_command(install, port, host=host, count=count, rate=rate, size=size, connections=connections,
                          duration_s=duration_s, rfc5424=rfc5424, framing=framing)
    if timeout is None:
        expected = duration_s if duration_s is not None else (count / rate if (count and rate) else 0.0)
        timeout = expected + 60.0
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, env=install.full_env(), cwd=workdir, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired as exc:
        # subprocess.run has already killed and reaped it
        tail = (exc.stderr or "")[-STDERR_TAIL_CHARS:] if isinstance(exc.stderr, str) else ""
        raise LoggenError(f"loggen did not finish within {timeout:g} s; stderr tail:\n{tail}") from None
    except OSError as exc:
        raise LoggenError(f"cannot run loggen ({argv[0]}): {exc}") from None
    wall = time.monotonic() - started
    output = proc.stderr + proc.stdout
    tail = output[-STDERR_TAIL_CHARS:].strip()
    errors = [line for line in output.splitlines() if line.startswith("error ")]
    try:
        sent, avg_rate, seconds = parse_loggen_output(output)
    except ValueError as exc:
        raise LoggenError(f"loggen exit {proc.returncode}: {exc}; stderr tail:\n{tail}") from None
    if proc.returncode != 0 or (errors and sent == 0):
        raise LoggenError(f"loggen exit {proc.returncode}, sent {sent}: "
                          f"{errors[0] if errors else 'see stderr'}; stderr tail:\n{tail}")
    return LoggenResult(sent=sent, avg_rate=avg_rate, loggen_seconds=seconds, wall_seconds=wall,
                        exit_code=proc.returncode, argv=argv, stderr_tail=tail)
