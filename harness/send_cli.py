"""``parbench send SCENARIO --to HOST:PORT``: a scenario's traffic to a server
parbench did not start.

The messages are the ones ``parbench run`` sends (``harness.workload``: the
same seed, keys, sequence numbers and trailers), so a capture of the
server's output is checked by ``parbench check``.  loggen's flags work with
loggen's meaning where they map; the final line is loggen's summary line, so
scripts that read loggen's output keep working.  ``--shard I/N`` sends only
connections I, I+N, ... (one of N senders on N hosts); ``--expect-out``
records what was sent for ``check --expect``.

Exit status: 0 everything meant to be sent was sent (a duration-bound run:
until its duration); 1 a connection failed or the time limit cut a
count-bound run short; 2 bad input; 130 interrupted (SIGINT/SIGTERM), after
writing the sent file and the summary line.
"""
from __future__ import annotations

import signal
import threading
import time
from typing import Any

import click
import numpy as np

from parbench.errors import Interrupted, RunFailure, UsageError
from parbench.harness.address import parse_address, require_loopback
from parbench.harness.scenario import FORMATS, FRAMINGS
from parbench.harness.syslog_ng.loggen import SUMMARY_STYLES

# How long a count-bound send may take before it is cut short: generous, so a
# slow server still finishes (the same budget ``parbench run`` gives its sender).
COUNT_BUDGET_BASE_S = 60.0
COUNT_BUDGET_PER_MESSAGE_S = 1 / 5000
DURATION_GRACE_S = 30.0
# loggen skips rate samples closer than this when it computes stdev_rate
RATE_SAMPLE_S = 0.1

_HELP = """Send SCENARIO's traffic (a scenario file or a shipped scenario name) to a
running server at --to HOST:PORT: the same deterministic messages and trailers
as `parbench run`, so `parbench check` can check what the server wrote.

The scenario's rate, duration or count, connections, size, format and framing
apply unless a flag overrides them.  loggen's flags have loggen's meaning,
except:

\b
  -r 0   means unlimited here (syslog-ng 4.8's loggen sends nothing with
         -r 0; AxoSyslog's loggen treats it as --perf).  Without -r the
         scenario's rate applies, not loggen's default of 1000 msg/s.
  -s     is the message size WITHOUT the framing (the scenario's
         message_size); loggen's -s counts the trailing newline, so
         loggen -s 256 sends what parbench -s 255 sends.
  -I     with -n is a time limit on a count-bound run (like syslog-ng 4.8's
         loggen; AxoSyslog's loggen ignores -I when -n is given).

Only loopback addresses unless --allow-remote.  Progress goes to stderr,
then loggen's summary line (stderr, as loggen prints it).
"""


class _Rates:
    """Progress samples -> the standard deviation of the per-interval send
    rate, as a percentage of the average (loggen's stdev_rate)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []
        self.total = 0

    def add(self, n: int) -> None:
        self.total += n
        self.samples.append((time.monotonic(), self.total))

    def stdev_percent(self, average_rate: float) -> float | None:
        rates = []
        last_t, last_n = None, 0
        for t, n in self.samples:
            if last_t is None:
                last_t, last_n = t, n  # loggen skips the first (slow-start) sample too
                continue
            if t - last_t >= RATE_SAMPLE_S:
                rates.append((n - last_n) / (t - last_t))
                last_t, last_n = t, n
        if len(rates) < 2 or average_rate <= 0:
            return None
        return float(np.std(rates, ddof=1)) / average_rate * 100.0


class _Progress:
    def __init__(self, enabled: bool, total: int | None, label: str):
        self.progress = None
        self.task = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=24),
                                     MofNCompleteColumn(), TextColumn("msgs  {task.fields[rate]}"),
                                     TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self.task = self.progress.add_task(label, total=total, rate="")
        self.started = time.monotonic()
        self.count = 0

    def __enter__(self) -> "_Progress":
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress:
            self.progress.stop()

    def advance(self, n: int) -> None:
        self.count += n
        if self.progress:
            elapsed = time.monotonic() - self.started
            rate = f"{self.count / elapsed:,.0f} msg/s" if elapsed > 0 else ""
            self.progress.update(self.task, advance=n, rate=rate)


def workload_overrides(scenario: Any, *, rate: float | None, interval: float | None, number: int | None,
                       size: int | None, connections: int | None, syslog_proto: bool, no_framing: bool,
                       fmt: str | None, framing: str | None) -> tuple[dict[str, Any], float | None]:
    """The sender's flags -> (workload overrides, time limit in seconds or None)."""
    overrides: dict[str, Any] = {}
    time_limit = None
    if number is not None:
        overrides.update(messages_per_connection=number, duration_s=None)
        time_limit = interval
    elif interval is not None:
        overrides.update(duration_s=interval, messages_per_connection=None)
    if rate is not None:
        overrides["rate_per_connection"] = rate
    if size is not None:
        overrides["message_size"] = size
    if connections is not None:
        overrides["connections"] = connections
    if syslog_proto:
        if fmt == "rfc3164":
            raise UsageError("-P/--syslog-proto means --format rfc5424; got --format rfc3164 as well")
        overrides["format"] = "rfc5424"
        if not no_framing:
            overrides["framing"] = "octet-counted"
    if fmt is not None:
        overrides["format"] = fmt
    if no_framing:
        if framing == "octet-counted":
            raise UsageError("-F/--no-framing means --framing newline; got --framing octet-counted as well")
        overrides["framing"] = "newline"
    if framing is not None:
        overrides["framing"] = framing
    # a flag that repeats the scenario's own value changes nothing
    wl = scenario.workload
    return {k: v for k, v in overrides.items() if getattr(wl, k) != (v or None if k == "rate_per_connection" else v)
            }, time_limit


def send_budget_s(workload: Any, connections: int) -> float:
    if workload.duration_s is not None:
        return workload.duration_s + DURATION_GRACE_S
    budget = COUNT_BUDGET_BASE_S + workload.messages_per_connection * connections * COUNT_BUDGET_PER_MESSAGE_S
    if workload.rate_per_connection:
        budget += workload.messages_per_connection / workload.rate_per_connection
    return budget


@click.command("send", help=_HELP)
@click.argument("scenario_spec", metavar="SCENARIO")
@click.option("--to", "to", required=True, metavar="HOST:PORT",
              help="Where the server listens for syslog (TCP). Loopback only unless --allow-remote.")
@click.option("--allow-remote", is_flag=True,
              help="Allow a --to address that is not loopback (127.0.0.1, ::1, localhost).")
@click.option("-r", "--rate", type=click.FloatRange(min=0), default=None, metavar="MSG/S",
              help="Messages per second per connection (0 = unlimited). Default: the scenario's.")
@click.option("-I", "--interval", type=click.FloatRange(min=0, min_open=True, max=86400), default=None,
              metavar="SECONDS", help="Send for this many seconds (replaces the scenario's count); "
                                      "with -n, a time limit.")
@click.option("-n", "--number", type=click.IntRange(1, 10**9), default=None, metavar="N",
              help="Messages per connection (replaces the scenario's duration or count).")
@click.option("-s", "--size", type=click.IntRange(1, 1 << 20), default=None, metavar="BYTES",
              help="Message size without the framing (loggen's -s counts the newline).")
@click.option("--active-connections", "connections", type=click.IntRange(1, 100000), default=None, metavar="N",
              help="Connections of the workload (the scenario's connections).")
@click.option("-P", "--syslog-proto", is_flag=True,
              help="RFC 5424 messages, octet-counted unless -F (as loggen -P).")
@click.option("-F", "--no-framing", is_flag=True, help="Newline framing (as loggen -F).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Message format.")
@click.option("--framing", type=click.Choice(FRAMINGS), default=None, help="Framing on the wire.")
@click.option("-S", "--stream", is_flag=True, hidden=True)  # loggen needs -S for TCP; parbench always uses TCP
@click.option("-i", "--inet", is_flag=True, hidden=True)
@click.option("--shard", "shard_text", metavar="I/N", default=None,
              help="Send only connections I, I+N, I+2N, ... (sender I of N; e.g. $JOB_COMPLETION_INDEX/3).")
@click.option("--expect-out", type=click.Path(dir_okay=False), default=None,
              help="Write what was sent (JSON) for `parbench check --expect`.")
@click.option("--summary-format", type=click.Choice(SUMMARY_STYLES), default="syslog-ng", show_default=True,
              help="Which loggen's final line to print: syslog-ng 4.8's ('average rate = ...') or "
                   "AxoSyslog's ('avg_rate=...').")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Give up after this long. Default: the duration + 30 s, or for a count a generous budget "
                   "(60 s + 0.2 ms a message + count / rate).")
@click.option("--no-progress", "-Q", "--quiet", "no_progress", is_flag=True,
              help="No progress bar (loggen's -Q); the summary line is still printed.")
def send(scenario_spec, to, allow_remote, rate, interval, number, size, connections, syslog_proto, no_framing,
         fmt, framing, stream, inet, shard_text, expect_out, summary_format, timeout, no_progress) -> None:
    from parbench.harness.budget import check_fits
    from parbench.harness.scenario import load_scenario
    from parbench.harness.sent_file import SentRecord, apply_overrides
    from parbench.harness.shard import parse_shard
    from parbench.harness.syslog_ng.loggen import format_summary
    from parbench.harness.workload import build_plan
    from parbench.harness.workload import send as send_workload

    address = parse_address(to, "--to")
    require_loopback(address, "--to", allow_remote)
    shard = parse_shard(shard_text) if shard_text is not None else None
    base = load_scenario(scenario_spec)
    overrides, time_limit = workload_overrides(
        base, rate=rate, interval=interval, number=number, size=size, connections=connections,
        syslog_proto=syslog_proto, no_framing=no_framing, fmt=fmt, framing=framing)
    scenario = apply_overrides(base, overrides)
    check_fits(scenario, collect=False)
    wl = scenario.workload
    plan = build_plan(wl)
    mine = shard.connections(wl.connections) if shard else range(wl.connections)
    if shard and not len(mine):
        click.echo(f"parbench send: note: shard {shard} has no connections (the workload has "
                   f"{wl.connections}); nothing to send", err=True)
    budget = timeout if timeout is not None else send_budget_s(wl, len(mine))
    total = None if wl.duration_s is not None else int(plan.messages_per_connection[0]) * len(mine)

    stop = threading.Event()
    caught: list[str] = []

    def on_signal(signum, frame):
        caught.append(signal.Signals(signum).name)
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    timer = threading.Timer(time_limit, stop.set) if time_limit else None
    rates = _Rates()
    label = f"{scenario.name} -> {address}" + (f" shard {shard}" if shard else "")
    try:
        if timer:
            timer.daemon = True
            timer.start()
        with _Progress(not no_progress, total, label) as progress:
            def advance(n: int) -> None:
                rates.add(n)
                progress.advance(n)

            result = send_workload(plan, address.host, address.port, deadline_s=budget, progress=advance,
                                   connections=mine, stop=stop)
    finally:
        if timer:
            timer.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    sent_total = result.total_sent
    seconds = ((result.t_last_ns - result.t_first_ns) / 1e9
               if result.t_first_ns is not None and result.t_last_ns is not None else 0.0)
    average = sent_total / seconds if seconds > 0 else 0.0
    click.echo(format_summary(summary_format, sent_total, seconds, plan.framed_len,
                              rates.stdev_percent(average)), err=True)

    notes = []
    if result.errors:
        first = min(result.errors)
        notes.append(f"{len(result.errors)} connection(s) failed; connection {first}: {result.errors[first]}")
    if result.stopped:
        notes.append(f"stopped by {caught[0]}" if caught else f"stopped at the time limit of {time_limit:g} s")
    if result.timed_out:
        notes.append(f"cut short at the timeout of {budget:g} s")
    count_bound = wl.duration_s is None
    short = count_bound and bool((result.sent[list(mine)] < plan.messages_per_connection[list(mine)]).any())
    if expect_out:
        SentRecord.of(base, overrides, shard, str(address), mine, result.sent,
                      complete=not result.errors and not short, notes=notes).write(expect_out)
    if caught:
        raise Interrupted(f"interrupted by {caught[0]} after {sent_total} messages"
                          + (f"; what was sent is in {expect_out}" if expect_out else ""))
    if result.errors:
        raise RunFailure(notes[0])
    if result.timed_out and count_bound:
        raise RunFailure(f"sent {sent_total} of {total} messages before the timeout of {budget:g} s")
