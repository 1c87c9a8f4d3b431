"""A real syslog-ng (or AxoSyslog) as the implementation under test.

The config is rendered from the scenario by ``harness.render`` (dialect
"syslog-ng", the same pipeline the reference runs) and started as a private
foreground process in the run's workdir with its own persist file, control
socket and pid file, bound to loopback only::

    syslog-ng -F -f CONF --persist-file P --control C --pidfile F --no-caps -e

syslog-ng cannot report the port of a ``port(0)`` source, so the harness picks
a free loopback port and retries with another one when the bind fails (some
other process took it in between).  Ready = the port accepts connections and
it is syslog-ng's own listening socket.  Stop = SIGTERM, SIGKILL after the
timeout.  Before stopping, ``syslog-ng-ctl stats`` is read: AxoSyslog exposes
``parallelized_{assigned,processed}_events_total`` per partition and the
batch-size histograms; syslog-ng 4.8 exposes no per-partition counters, and
the report says so.

Start-up log: once ready, the head of stderr is read.  A line saying that
parallelize() is off (``FEATURE_OFF_LINES``: an ivykis without
``iv_work_pool_submit_continuation()``) fails the start with that line; other
start-up warnings (the partition limit) become report notes.  At the end, a
non-zero ``parallelize_failed_events_total`` (messages that bypassed the
partitions) fails the run.

Which syslog-ng: ``SyslogNgTarget(path)`` / ``--impl syslog-ng:PATH``, else
``$PARBENCH_SYSLOG_NG``, else the private root of ``parbench install syslog-ng``,
else ``syslog-ng`` on PATH (see ``harness.syslog_ng.installation.locate_syslog_ng``).

``SyslogNgTarget`` runs any ``Installation``, whatever built it; ``KIND``
declares the ``syslog-ng[:PATH]`` spec to the registry.
"""
from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parbench.harness.render import TIME_REOPEN_S, config_notes, render_config, with_global_options
from parbench.harness.syslog_ng.installation import ENV_SYSLOG_NG, Installation, locate_syslog_ng
from parbench.harness.syslog_ng.stats import (
    parse_prometheus_failed,
    parse_prometheus_histograms,
    parse_prometheus_partitions,
    parse_stats_csv,
)
from parbench.harness.syslog_ng.version import Version
from parbench.harness.targets.base import Target, TargetError, TargetPlan, TargetReport, TargetUnavailable
from parbench.harness.targets.kind import Availability, ImplSpec, TargetKind
from parbench.harness.targets.process import (
    ManagedProcess,
    free_loopback_port,
    leftover_failure,
    leftover_notes,
    listening_inodes,
    owns_socket,
    usage_of,
)

if TYPE_CHECKING:
    import click

BIND_ATTEMPTS = 4
CTL_TIMEOUT_S = 5.0
# syslog-ng's default log-msg-size(); longer messages would be split.
DEFAULT_LOG_MSG_SIZE = 65536
NO_PARTITION_COUNTERS_NOTE = "syslog-ng 4.8 exposes no per-partition counters"
#: start-up lines meaning parallelize() does not run at all, whatever the
#: config says (lib/logscheduler.c, built without an ivykis that has
#: iv_work_pool_submit_continuation())
FEATURE_OFF_LINES = (re.compile(r"Unable to parallelize"),)
#: other start-up lines worth a note (the partition limit, any warning)
NOTABLE_LINES = re.compile(r"warning|error|parallelize", re.I)
#: lines before this one are the start-up log
STARTED_LINE = re.compile(r"syslog-ng starting up")
MAX_STARTUP_NOTES = 5
STARTUP_LOG_WAIT_S = 3.0


def startup_lines(stderr_head: str) -> list[str]:
    """The start-up part of a syslog-ng stderr (``-e``): everything up to
    and including "syslog-ng starting up", or all of it when that line is
    not there yet."""
    lines = [line.strip() for line in stderr_head.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if STARTED_LINE.search(line):
            return lines[: index + 1]
    return lines


def feature_off_line(stderr_head: str) -> str | None:
    """The start-up line saying parallelize() is off, if any."""
    for line in startup_lines(stderr_head):
        if any(pattern.search(line) for pattern in FEATURE_OFF_LINES):
            return line
    return None


def startup_warnings(stderr_head: str) -> list[str]:
    """Start-up lines worth a report note (warnings, the partition limit)."""
    return [line for line in startup_lines(stderr_head)
            if NOTABLE_LINES.search(line) and not STARTED_LINE.search(line)][:MAX_STARTUP_NOTES]


def render_syslog_ng_config(scenario: Any, partitions: int, out_port: int, in_port: int, version: str) -> str:
    """The config for a real syslog-ng of ``version`` ("syslog-ng 4.8.1", "axosyslog 4.26.0").

    ``harness.render`` writes the pipeline; a global ``options`` block is added
    after ``@version`` for what only a real syslog-ng needs: a quick reconnect
    to the collector, a message size limit above the scenario's messages, and
    stats level 4 on AxoSyslog so the per-partition ``parallelized_*``
    counters exist."""
    text = render_config(scenario, partitions, out_port, in_port=in_port, dialect="syslog-ng", version=version)
    options = [f"time-reopen({TIME_REOPEN_S})"]
    size = int(getattr(scenario.workload, "message_size", 0) or 0)
    if size + 1024 > DEFAULT_LOG_MSG_SIZE:
        options.append(f"log-msg-size({size + 1024})")
    if Version.parse(version).has_partition_counters:
        options.append("stats(level(4))")
    return with_global_options(text, options)


def stats_accounting(rows: list[dict[str, str]]) -> dict[str, int] | None:
    """syslog-ng's own count of its messages from ``syslog-ng-ctl stats``:
    received (``center;;received``), and over its destinations written,
    dropped and queued (at the moment of reading: at exit, as it stops
    right after).  None when the stats hold none of it."""
    found: dict[str, int] = {}
    for row in rows:
        try:
            number = int(row.get("Number", 0) or 0)
        except ValueError:
            continue
        name, kind = row.get("SourceName", ""), row.get("Type")
        if name == "center" and row.get("SourceInstance") == "received" and kind == "processed":
            found["received"] = found.get("received", 0) + number
        elif name.startswith("dst.") and kind in ("written", "dropped", "queued"):
            key = "queued_at_exit" if kind == "queued" else kind
            found[key] = found.get(key, 0) + number
    return found or None


class SyslogNgTarget(Target):
    name = "syslog-ng"

    def __init__(self, syslog_ng: str | Path | None = None, install: Installation | None = None):
        self._explicit = syslog_ng
        self._install = install
        self._process: ManagedProcess | None = None
        self._killed: list[ManagedProcess] = []  # processes before a restart
        self._conf: Path | None = None
        self._workdir = Path(".")
        self._in_port = 0
        self._control: Path | None = None
        self._notes: list[str] = []
        self._partitions = 0
        self.version: str | None = install.version if install else None

    # ------------------------------------------------------------------ setup

    def installation(self) -> Installation:
        """The syslog-ng this target runs; TargetError (one line) when there is none."""
        if self._install is None:
            found, reasons = locate_syslog_ng(self._explicit)
            if found is None:
                raise TargetUnavailable("syslog-ng: not runnable here: " + "; ".join(reasons)
                                        + " (install it with: parbench install syslog-ng)")
            self._install = found
            self.version = found.version
        return self._install

    def reference_profile(self) -> str:
        """The reference's version profile that models this syslog-ng."""
        return Version.parse(self.installation().version).reference_profile

    def command(self, conf: Path, workdir: Path) -> list[str]:
        install = self.installation()
        # env(1) execs, so the pid Popen sees is syslog-ng's own.
        env_prefix = ["env", *(f"{k}={v}" for k, v in install.env.items())] if install.env else []
        return [
            *env_prefix, *install.syslog_ng_argv(),
            "-F", "-e", "--no-caps",
            "-f", str(conf),
            "--persist-file", str(workdir / "syslog-ng.persist"),
            "--control", str(workdir / "syslog-ng.ctl"),
            "--pidfile", str(workdir / "syslog-ng.pid"),
        ]

    # ------------------------------------------------------------------ run

    def start(self, plan: TargetPlan, out_port: int, workdir: Path, timeout: float = 30.0) -> tuple[str, int]:
        install = self.installation()
        workdir = Path(workdir).absolute()
        workdir.mkdir(parents=True, exist_ok=True)
        self._partitions = plan.partitions
        self._control = workdir / "syslog-ng.ctl"
        self._notes += config_notes(plan.scenario, plan.partitions, "syslog-ng", install.version)
        conf = workdir / "syslog-ng.conf"
        deadline = time.monotonic() + timeout
        last_error = ""
        for attempt in range(BIND_ATTEMPTS):
            in_port = free_loopback_port()
            try:
                text = render_syslog_ng_config(plan.scenario, plan.partitions, out_port, in_port, install.version)
            except ValueError as exc:
                raise TargetError(f"syslog-ng: cannot render the config: {exc}") from None
            conf.write_text(text)
            for stale in ("syslog-ng.persist", "syslog-ng.ctl", "syslog-ng.pid"):
                (workdir / stale).unlink(missing_ok=True)
            self._process = ManagedProcess(self.command(conf, workdir), workdir, f"syslog-ng-{attempt}")
            self._process.start()
            if self._wait_ready(in_port, deadline):
                self._conf, self._workdir, self._in_port = conf, workdir, in_port
                self._check_startup(plan.partitions)
                return "127.0.0.1", in_port
            tail = self._process.stderr_tail()
            self._process.stop(5.0)
            if "Address already in use" not in tail:
                raise TargetError(
                    f"syslog-ng ({install.version}) exited with status {self._process.exit_code} before it was "
                    f"ready; config {conf}; stderr tail:\n{tail or '(empty)'}")
            last_error = tail
            self._notes.append(f"port {in_port} was taken before syslog-ng bound it; retried with another")
        raise TargetError(f"syslog-ng: could not bind a free loopback port in {BIND_ATTEMPTS} attempts; "
                          f"stderr tail:\n{last_error}")

    def restart(self, timeout: float = 30.0) -> tuple[str, int]:
        """SIGKILL, then syslog-ng again with the same config (same port)
        and its persist file, as after a crash."""
        if self._process is None or self._conf is None:
            raise TargetError("syslog-ng: restart before start")
        self._process.stop(0, graceful=False)
        self._killed.append(self._process)
        for stale in ("syslog-ng.ctl", "syslog-ng.pid"):
            (self._workdir / stale).unlink(missing_ok=True)
        self._process = ManagedProcess(self.command(self._conf, self._workdir), self._workdir,
                                       f"syslog-ng-restart-{len(self._killed)}")
        self._process.start()
        if not self._wait_ready(self._in_port, time.monotonic() + timeout):
            raise TargetError(f"syslog-ng exited with status {self._process.proc.returncode} when started again "
                              f"after SIGKILL; stderr tail:\n{self._process.stderr_tail() or '(empty)'}")
        return "127.0.0.1", self._in_port

    def _check_startup(self, partitions: int) -> None:
        """Fail the start when the start-up log says parallelize() is off;
        note the other start-up warnings."""
        # The socket may listen before init has finished logging; the
        # "starting up" line comes after every start-up warning.
        give_up = time.monotonic() + STARTUP_LOG_WAIT_S
        head = self._process.stderr_head()
        while not STARTED_LINE.search(head) and self._process.alive() and time.monotonic() < give_up:
            time.sleep(0.02)
            head = self._process.stderr_head()
        off = feature_off_line(head) if partitions else None
        if off is not None:
            raise TargetError(f"{self.version}: parallelize() is off, the run would not test it: {off}")
        self._notes += [f"start-up: {line}" for line in startup_warnings(head)]

    def start_config(self, config_text: str, listen_ports, workdir: Path, timeout: float = 30.0,
                     deadline_s: float | None = None) -> None:
        """Run ``config_text`` as it is (no options added: the caller's text
        is what runs).  The ports are the caller's: unlike ``start``, a port
        taken meanwhile is an error, not a retry."""
        install = self.installation()
        workdir = Path(workdir).absolute()
        workdir.mkdir(parents=True, exist_ok=True)
        self._control = workdir / "syslog-ng.ctl"
        conf = workdir / "syslog-ng.conf"
        conf.write_text(config_text)
        for stale in ("syslog-ng.persist", "syslog-ng.ctl", "syslog-ng.pid"):
            (workdir / stale).unlink(missing_ok=True)
        self._process = ManagedProcess(self.command(conf, workdir), workdir, "syslog-ng")
        self._process.start()
        deadline = time.monotonic() + timeout
        for port in listen_ports:
            if not self._wait_ready(int(port), deadline):
                raise TargetError(
                    f"{install.version} exited with status {self._process.proc.poll()} before it was ready; "
                    f"config {conf}; stderr tail:\n{self._process.stderr_tail() or '(empty)'}")

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.proc.pid if process is not None and process.alive() else None

    def _wait_ready(self, port: int, deadline: float) -> bool:
        """True once syslog-ng itself listens on ``port`` and accepts a connection;
        False if it exited; TargetError at the deadline."""
        process = self._process
        while True:
            if not process.alive():
                return False
            owned = owns_socket(process.proc.pid, listening_inodes(port))
            if owned:
                # No probe connection: syslog-ng counts it against
                # max-connections() until it notices the close, and a sender
                # connecting right after could be rejected for it.
                return True
            if owned is None:  # /proc cannot tell: fall back to a probe
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        return True
                except OSError:
                    pass
            if time.monotonic() >= deadline:
                tail = process.stderr_tail()
                raise TargetError(f"syslog-ng did not accept connections on 127.0.0.1:{port} in time; "
                                  f"stderr tail:\n{tail or '(empty)'}")
            time.sleep(0.02)

    def _ctl(self, *args: str) -> str | None:
        install = self._install
        argv = install.syslog_ng_ctl_argv() if install else None
        if argv is None or self._control is None:
            return None
        try:
            proc = subprocess.run([*argv, *args, "--control", str(self._control)], env=install.full_env(),
                                  capture_output=True, text=True, timeout=CTL_TIMEOUT_S,
                                  stdin=subprocess.DEVNULL, errors="replace")
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._notes.append(f"syslog-ng-ctl {' '.join(args)} failed: {exc}")
            return None
        if proc.returncode != 0:
            self._notes.append(f"syslog-ng-ctl {' '.join(args)}: exit {proc.returncode}: "
                               f"{(proc.stderr.strip().splitlines() or [''])[-1]}")
            return None
        return proc.stdout

    def read_counters(self) -> dict[str, Any]:
        """What syslog-ng reports about itself now (while it runs)."""
        counters: dict[str, Any] = {}
        csv_text = self._ctl("stats")
        if csv_text is not None:
            counters["stats"] = parse_stats_csv(csv_text)
        prom_text = self._ctl("stats", "prometheus")
        if prom_text is not None:
            partitions = parse_prometheus_partitions(prom_text)
            if partitions is not None:
                counters["parallelized"] = partitions
            histograms = parse_prometheus_histograms(prom_text)
            if histograms is not None:
                counters["histograms"] = histograms
            failed = parse_prometheus_failed(prom_text)
            if failed is not None:
                counters["parallelize_failed_events_total"] = failed
        return counters

    def stop(self, timeout: float = 15.0) -> TargetReport:
        process = self._process
        notes = list(self._notes)
        if process is None:
            return TargetReport(notes=notes, version=self.version)
        counters: dict[str, Any] = {}
        try:
            if process.alive():
                counters = self.read_counters()
                notes = list(self._notes)
        finally:
            process.stop(timeout)
            self._process = None  # a second stop() must not signal a reused pid
        if process.killed:
            notes.append(f"syslog-ng did not exit within {timeout:g}s of SIGTERM; killed")
        every = [*self._killed, process]
        notes += leftover_notes(every)
        if self._killed:
            notes.append(f"restarted {len(self._killed)} time(s) (SIGKILL); the counters are the last process's only")
        accounting = stats_accounting(counters.get("stats", []))
        dropped = (accounting or {}).get("dropped", 0)
        if dropped:
            notes.append(f"syslog-ng counted {dropped} messages dropped at the destination")
        partitioned = counters.get("parallelized")
        if self._partitions and partitioned is None:
            has_counters = self.version is not None and Version.parse(self.version).has_partition_counters
            notes.append(NO_PARTITION_COUNTERS_NOTE if not has_counters
                         else f"{self.version}: no parallelized_* metrics found in syslog-ng-ctl stats")
        failure = leftover_failure(every)
        bypassed = counters.get("parallelize_failed_events_total") or 0
        if self._partitions and bypassed and failure is None:
            failure = (f"{self.version}: {bypassed} messages bypassed parallelize() "
                       "(parallelize_failed_events_total), so it was not tested for them")
        head = process.stderr_head()
        if self._partitions and failure is None and feature_off_line(head):
            failure = f"{self.version}: parallelize() is off: {feature_off_line(head)}"
        cpu, rss = usage_of(every)
        return TargetReport(
            stderr_head=head,
            batch_histograms=counters.get("histograms"),
            failure=failure,
            cpu_seconds=cpu,
            peak_rss_bytes=rss,
            partition_processed=partitioned["processed"] if partitioned else None,
            partition_assigned=partitioned["assigned"] if partitioned else None,
            counters=counters or None,
            exit_code=process.exit_code,
            stderr_tail=process.stderr_tail(),
            notes=notes,
            version=self.version,
            accounting=accounting if not self._killed else None,
        )


class SyslogNgKind(TargetKind):
    name = "syslog-ng"
    syntax = "syslog-ng[:PATH]"
    summary = ("a real syslog-ng or AxoSyslog, PATH its binary or install prefix (default: "
               f"${ENV_SYSLOG_NG}, else the private install, else $PATH)")
    argument = "optional"
    gives_reference_profile = True
    runs_config_text = True

    def names_a_program(self, spec: ImplSpec) -> bool:
        return spec.argument is not None  # PATH: a binary of the spec's choosing

    def make(self, spec: ImplSpec, *, profile: str | None = None) -> SyslogNgTarget:
        """Finds the binary now, so a command line naming an implementation
        that is not here fails before any run starts (TargetUnavailable)."""
        target = SyslogNgTarget(syslog_ng=spec.argument)
        target.installation()
        return target

    def availability(self, spec: ImplSpec | None = None) -> Availability:
        found, reasons = locate_syslog_ng(spec.argument if spec else None)
        if found is None:
            return Availability(False, "", [*reasons, "install it with: parbench install syslog-ng"])
        try:
            profile = Version.parse(found.version).reference_profile
        except ValueError as exc:
            profile = f"none ({exc})"
        details = [f"loggen: {found.loggen}" if found.loggen else "loggen: not found next to syslog-ng or on PATH",
                   f"syslog-ng-ctl: {found.syslog_ng_ctl}" if found.syslog_ng_ctl
                   else "syslog-ng-ctl: not found (no per-partition counters)"]
        return Availability(True, f"{found.version} ({found.source}: {found.syslog_ng}); reference profile {profile}",
                            details)

    def install_command(self) -> "click.Command":
        from parbench.harness.syslog_ng.debian import install_command

        return install_command


KIND = SyslogNgKind()
