"""The one interface through which the harness drives any implementation.

A target is started with a plan (what to run: the scenario and the partition
count of this run), a loopback port where the collector listens for its
output, and a private working directory.  It returns the loopback address
where it accepts syslog traffic once it is ready, and on ``stop`` it reports
what it can observe of itself.  ``stop`` must always be safe to call, also
after a failed ``start``, and must leave no process, port or file behind
outside ``workdir``.

Everything the runner asks of a target is declared here: ``start``,
``stop`` (whose ``TargetReport`` carries CPU, memory, per-partition counters
and the version), ``version`` and ``reference_profile()``.  Kinds that read
syslog-ng's configuration language (the reference, the syslog-ng family)
also run a configuration text as it is, instead of a scenario:
``start_config`` (the differential runner, ``harness.differential``, uses
it), with ``pid`` telling which process generated messages of its own.  A kind of
implementation is declared to the harness in ``harness.targets.kind`` and
registered in ``harness.targets.registry``.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from parbench.errors import EXIT_USAGE, RunFailure


class TargetError(RunFailure):
    """A target could not be started or misbehaved; the message says why
    (and includes the tail of the implementation's stderr when there is one).
    Inside a sweep it becomes that run's error; the sweep goes on."""


class TargetUnavailable(TargetError):
    """The implementation asked for is not runnable on this machine (not
    installed, too old, a path that is not a binary): the user can fix it, so
    on the command line it is bad input, not a failed run."""

    exit_code = EXIT_USAGE


@dataclass
class TargetPlan:
    scenario: Any  # harness.scenario.Scenario
    # Partition count of this run; 0 = no parallelize() element at all.
    partitions: int
    # Longest the runner keeps the target running once start() returned
    # (sending, waiting for quiescence, stopping); None = unknown.  A target
    # with a safety timeout of its own sets it slightly above this.
    deadline_s: float | None = None


@dataclass
class TargetReport:
    cpu_seconds: float | None = None  # user+system of the target's processes
    peak_rss_bytes: int | None = None
    # Per partition index: messages processed there / assigned there, when
    # the target exposes such counters (None: it does not).
    partition_processed: list[int] | None = None
    partition_assigned: list[int] | None = None
    counters: dict[str, Any] | None = None  # raw counters as the target reported them
    exit_code: int | None = None
    stderr_tail: str = ""
    # The start of stderr: start-up warnings, which the tail of a long run
    # no longer holds.
    stderr_head: str = ""
    notes: list[str] = field(default_factory=list)  # findings worth a line in the report
    version: str | None = None  # implementation version, when known
    # AxoSyslog's batch-size histograms, when exposed:
    # {"parallelized_batch_size": {"sum", "count", "buckets": {"1": n, ...}},
    #  "parallelized_input_batch_size": {...}} (see reference.histogram).
    batch_histograms: dict[str, Any] | None = None
    # The implementation's own count of its messages, when it keeps one:
    # {"received", "written", "dropped", "queued_at_exit", ...} (None: it does not).
    accounting: dict[str, Any] | None = None
    # Set when what the target saw or did means the run cannot pass (the
    # feature under test was off for some messages, it left processes
    # running); the runner makes it the run's error.
    failure: str | None = None


class Target(abc.ABC):
    #: short name of the implementation (its kind, or the spec it was made from)
    name: str
    #: the implementation's version ("syslog-ng 4.8.1"), once known; None when
    #: the kind has none to tell (a command) or has not looked yet
    version: str | None = None

    @abc.abstractmethod
    def start(self, plan: TargetPlan, out_port: int, workdir: Path, timeout: float = 30.0) -> tuple[str, int]:
        """Start and wait until ready; return (host, port) accepting syslog."""

    @abc.abstractmethod
    def stop(self, timeout: float = 15.0) -> TargetReport:
        """Stop what start() started (gracefully, then by force) and report."""

    def restart(self, timeout: float = 30.0) -> tuple[str, int]:
        """Kill the implementation at once (SIGKILL: what it held in memory
        is lost, as in a crash) and start it again with the same plan and
        output port; return the address to send to once it is ready again
        (the same port when the kind can keep it).  TargetError when it
        cannot start again, or when the kind cannot be restarted (the
        default)."""
        raise TargetError(f"{self.name}: this kind of implementation cannot be restarted")
    @property
    def pid(self) -> int | None:
        """Process id of the running implementation (what it writes into
        messages it generates itself, such as a parse error's ``$PID``);
        None when not running or not known."""
        return None

    def start_config(self, config_text: str, listen_ports: Sequence[int], workdir: Path,
                     timeout: float = 30.0, deadline_s: float | None = None) -> None:
        """Start with ``config_text``, a configuration in syslog-ng's
        language, exactly as given; return once the implementation listens
        on every port of ``listen_ports`` (the loopback TCP ports the text's
        sources name).  Raise TargetError (with the stderr tail) when it
        cannot start.  ``stop()`` stops it as after ``start``.
        ``deadline_s``: longest the caller keeps it running (as
        ``TargetPlan.deadline_s``).  Only kinds with
        ``TargetKind.runs_config_text`` implement it."""
        raise TargetError(f"{self.name}: this kind of implementation does not run a configuration file")

    def reference_profile(self) -> str | None:
        """The reference's version profile that models this implementation,
        so a sweep comparing the two runs the same semantics on both sides;
        None when the implementation models no particular version.  Kinds
        that answer set ``TargetKind.gives_reference_profile``.  May raise
        TargetError (cannot tell) or ValueError (a version without
        parallelize())."""
        return None
