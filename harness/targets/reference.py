"""The reference parallelizer as a target: ``parbench serve -f CONF``.

The config is rendered from the scenario (``harness.render``) into workdir.
Readiness is the ready file ``parbench serve`` writes atomically once every
source listens (it carries the bound port: the config asks for ``port(0)``).
On stop: SIGTERM (the service drains, flushes and writes its counters JSON),
SIGKILL after the timeout.  The counters give per-partition assigned and
processed totals.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from parbench.harness.render import TIME_REOPEN_S, config_notes, render_config, with_global_options
from parbench.harness.targets.base import Target, TargetError, TargetPlan, TargetReport
from parbench.harness.targets.kind import BadArgument, ImplSpec, TargetKind
from parbench.harness.targets.process import ManagedProcess, stop_and_report

#: --max-seconds when the plan has no deadline
FALLBACK_MAX_SECONDS = 3600.0
#: how far --max-seconds lies beyond the runner's own deadline
MAX_SECONDS_MARGIN_S = 30.0


def _partition_totals(counters: dict[str, Any], field: str) -> list[int] | None:
    try:
        paths = counters.get("parallelize") or []
        if not paths:
            return None
        parts = sorted(paths[0]["partition"], key=lambda p: p["partition_index"])
        return [int(p[field]) for p in parts]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _batch_histograms(counters: dict[str, Any]) -> dict[str, Any] | None:
    """The first parallelize()'s batch-size histograms, named as AxoSyslog's."""
    paths = counters.get("parallelize") or []
    if not paths or not isinstance(paths[0], dict):
        return None
    found = {name: paths[0][name] for name in ("parallelized_batch_size", "parallelized_input_batch_size")
             if isinstance(paths[0].get(name), dict)}
    return found or None


class ReferenceTarget(Target):
    name = "reference"

    def __init__(self, profile: str | None = None, workers: int | None = None):
        self.profile = profile
        # Worker threads; None = the scenario's pipeline.workers, else the
        # service's default (one per CPU).
        self.workers = workers
        self._process: ManagedProcess | None = None
        self._killed: list[ManagedProcess] = []  # processes before a restart
        self._counters_path: Path | None = None
        self._notes: list[str] = []
        self._launch_args: tuple | None = None  # (plan, out_port, workdir, max_seconds) of start()
        self._port = 0
        # What the reference models is its profile; the service names the
        # one it ran in its counters (see stop()).
        self.version = profile

    def command(self, conf: Path, ready: Path, counters: Path, max_seconds: float,
                workers: int | None = None) -> list[str]:
        argv = [sys.executable, "-m", "parbench", "serve", "-f", str(conf),
                "--ready-file", str(ready), "--counters-out", str(counters),
                "--max-seconds", f"{max_seconds:g}"]
        if self.profile:
            argv += ["--profile", self.profile]
        if workers:
            argv += ["--workers", str(int(workers))]
        return argv

    @staticmethod
    def max_seconds_for(plan: TargetPlan, start_timeout: float) -> float:
        """``--max-seconds``: a safety net so that a harness that dies cannot
        leave a reference service running for long.  Slightly above the
        longest the runner may keep it (start, then ``plan.deadline_s``), so it
        never cuts a run short; without a deadline, an hour."""
        if plan.deadline_s is None:
            return FALLBACK_MAX_SECONDS
        return math.ceil(start_timeout + float(plan.deadline_s) + MAX_SECONDS_MARGIN_S)

    def start(self, plan: TargetPlan, out_port: int, workdir: Path, timeout: float = 30.0,
              max_seconds: float | None = None) -> tuple[str, int]:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self._notes += config_notes(plan.scenario, plan.partitions, "reference", self.profile)
        if max_seconds is None:
            max_seconds = self.max_seconds_for(plan, timeout)
        self._launch_args = (plan, out_port, workdir, max_seconds)
        return self._start_rendered(timeout, in_port=0)

    def restart(self, timeout: float = 30.0) -> tuple[str, int]:
        """SIGKILL, then ``parbench serve`` again on the same port."""
        if self._process is None or self._launch_args is None:
            raise TargetError("reference: restart before start")
        self._process.stop(0, graceful=False)
        self._killed.append(self._process)
        return self._start_rendered(timeout, in_port=self._port)

    def _start_rendered(self, timeout: float, in_port: int) -> tuple[str, int]:
        plan, out_port, workdir, max_seconds = self._launch_args
        conf = workdir / "reference.conf"
        text = render_config(plan.scenario, plan.partitions, out_port, in_port=in_port, dialect="reference",
                             version=self.profile)
        if getattr(plan.scenario, "faults", ()):
            # A broken destination connection is retried after time-reopen()
            # (60 s by default); only fault runs break it.
            text = with_global_options(text, [f"time-reopen({TIME_REOPEN_S})"])
        conf.write_text(text)
        workers = self.workers or getattr(plan.scenario.pipeline, "workers", None)
        source = self._launch(conf, workdir, timeout, max_seconds, workers)[0]
        self._port = int(source["port"])
        return str(source.get("ip", "127.0.0.1")), self._port

    def start_config(self, config_text: str, listen_ports, workdir: Path, timeout: float = 30.0,
                     deadline_s: float | None = None) -> None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        conf = workdir / "reference.conf"
        conf.write_text(config_text)
        max_seconds = FALLBACK_MAX_SECONDS if deadline_s is None else \
            math.ceil(timeout + float(deadline_s) + MAX_SECONDS_MARGIN_S)
        sources = self._launch(conf, workdir, timeout, max_seconds, self.workers)
        bound = {int(source["port"]) for source in sources}
        missing = sorted(set(map(int, listen_ports)) - bound)
        if missing:
            raise TargetError(f"reference: the configuration listens on {sorted(bound)}, "
                              f"not on {', '.join(map(str, missing))}")

    def _launch(self, conf: Path, workdir: Path, timeout: float, max_seconds: float,
                workers: int | None) -> list[dict[str, Any]]:
        """Start ``parbench serve -f conf``; the sources of its ready file."""
        ready = workdir / "ready.json"
        self._counters_path = workdir / "counters.json"
        for stale in (ready, self._counters_path):
            stale.unlink(missing_ok=True)
        label = f"reference-{len(self._killed)}" if self._killed else "reference"
        self._process = ManagedProcess(self.command(conf, ready, self._counters_path, max_seconds, workers),
                                       workdir, label)
        self._process.start()
        deadline = time.monotonic() + timeout
        while True:
            if ready.exists():
                try:
                    info = json.loads(ready.read_text())
                    sources = [dict(source, port=int(source["port"])) for source in info["sources"]]
                    if not sources:
                        raise ValueError("no source listens")
                    return sources
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    raise TargetError(f"reference: unreadable ready file {ready}: {exc}") from None
            if not self._process.alive():
                raise TargetError(
                    f"reference (parbench serve) exited with status {self._process.proc.returncode} "
                    f"before it was ready; stderr tail:\n{self._process.stderr_tail() or '(empty)'}"
                )
            if time.monotonic() >= deadline:
                raise TargetError(
                    f"reference (parbench serve) not ready within {timeout:g}s; "
                    f"stderr tail:\n{self._process.stderr_tail() or '(empty)'}"
                )
            time.sleep(0.02)

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.proc.pid if process is not None and process.alive() else None

    def stop(self, timeout: float = 15.0) -> TargetReport:
        process = self._process
        if process is None:
            return TargetReport(notes=list(self._notes))
        report = stop_and_report(process, self._notes, timeout, killed_note="killed (no counters)",
                                 earlier=self._killed)
        if self._killed:
            report.notes.append(f"restarted {len(self._killed)} time(s) (SIGKILL); the counters are the last "
                                "process's only")
        counters = None
        if self._counters_path is not None and self._counters_path.exists():
            try:
                counters = json.loads(self._counters_path.read_text())
            except ValueError as exc:
                report.notes.append(f"counters file unreadable: {exc}")
        elif not process.killed:
            report.notes.append("no counters file written")
        if counters:
            report.partition_processed = _partition_totals(counters, "parallelized_processed_events_total")
            report.partition_assigned = _partition_totals(counters, "parallelized_assigned_events_total")
            report.batch_histograms = _batch_histograms(counters)
        report.counters = counters
        accounting = (counters or {}).get("accounting")
        # After a restart the counters are the last process's only: no account of the run.
        report.accounting = dict(accounting) if isinstance(accounting, dict) and not self._killed else None
        report.version = (counters or {}).get("profile") or self.profile
        return report


class ReferenceKind(TargetKind):
    name = "reference"
    syntax = "reference[:PROFILE]"
    summary = ("the embedded reference parallelizer (parbench serve), under the sweep's version "
               "profile or PROFILE")
    argument = "optional"
    runs_reference_profile = True
    # parbench serve sends again what a broken destination connection's peer
    # did not acknowledge (TCP_INFO), so a break loses nothing.
    keeps_unacknowledged = True
    runs_config_text = True

    def check_argument(self, argument: str | None) -> str | None:
        from parbench.reference.profiles import PROFILES

        argument = super().check_argument(argument)
        if argument is not None and argument not in PROFILES:
            raise BadArgument(self.syntax, f"unknown profile {argument!r}; known profiles: "
                                           f"{', '.join(sorted(PROFILES))}")
        return argument

    def label(self, spec: ImplSpec) -> str:
        """``reference[PROFILE]`` for a spec that names its profile."""
        return self.name if spec.argument is None else f"{self.name}[{spec.argument}]"

    def make(self, spec: ImplSpec, *, profile: str | None = None) -> ReferenceTarget:
        """A profile in the spec wins over the sweep's."""
        target = ReferenceTarget(profile=spec.argument or profile)
        target.name = spec.text
        return target


KIND = ReferenceKind()
