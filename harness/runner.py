"""Sweep orchestration: every (repeat, partition count, implementation) of a
scenario, one run at a time.

Order: for each repeat, for each partition count, every candidate (an
implementation, or a scenario variant: ``harness.candidates``) once, so the
runs of one repeat slot are adjacent in time and slow drift of the machine
(thermal, other load) hits all of them alike; ``parbench compare --baseline
--current`` pairs them.  Odd repeats run the candidates in reverse (A B, B A,
A B ...): a run that is slower for coming first or second after a switch
then shows as noise on both sides, not as a difference between them.

One run: start the collector, start the target (pointing its output at the
collector), send the workload, wait for quiescence (every expected message
received, or no progress for ``idle_s``, or the run's deadline), stop the
target, stop the collector, parse, check, compute metrics.  An exception in a
run becomes that run's ``error`` (verdict "fail") and the sweep goes on; a
collector that lost output is an ``error`` too, and the verdict "unknown"
unless the target is proven at fault anyway.
Ctrl-C (or SIGTERM / SIGHUP, through ``parbench.interrupts``) stops the
current run cleanly (target and collector stopped in ``finally``, where a
further signal waits until they are stopped) and ends the sweep with the
runs done so far (``SweepOutcome.interrupted``).
"""
from __future__ import annotations

import re
import shutil
import signal
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from parbench import interrupts
from parbench.harness import metrics
from parbench.harness.balance import key_counts, predicted_partitions
from parbench.harness.candidates import Candidate, as_candidates
from parbench.harness.checks import check
from parbench.harness.collector import SLOW_RCVBUF, Collector, parse_capture
from parbench.harness.faults import (
    RESTART_TIMEOUT_S,
    AppliedFault,
    FaultInjector,
    promise,
    recovery_s,
    unexplained_losses,
)
from parbench.harness.results import Run
from parbench.harness.targets.base import TargetError, TargetPlan
from parbench.harness.targets.kind import LABEL_RE, ImplSpec
from parbench.harness.targets.registry import get_target, kind_of, parse_impl, shorten_label, spec_label
from parbench.harness.workload import build_plan, send
from parbench.interrupts import signal_of

#: seconds without a new message before a run is considered finished early
DEFAULT_IDLE_S = 3.0
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
#: after the sender's deadline, how long a run may still wait for output
QUIESCE_GRACE_S = 30.0


@dataclass
class SweepOutcome:
    scenario: Any
    runs: list[Run] = field(default_factory=list)
    interrupted: bool = False
    # The reference's version profile in this sweep and why it was chosen
    # (None when the sweep runs no reference).
    profile: str | None = None
    profile_reason: str = ""
    # When the real implementations need several profiles: why each (the
    # reference then runs once per profile, as reference:PROFILE).
    profile_reasons: dict[str, str] = field(default_factory=dict)


def choose_reference_profile(scenario: Any, impls: list[str], profile: str | None = None, *,
                             target_factory: Callable[..., Any] = get_target) -> tuple[str, str]:
    """The reference's version profile for a sweep, and why.

    An explicit ``profile`` (``--profile``) wins.  Otherwise, when the sweep
    also runs an implementation that models a version (a real syslog-ng:
    ``TargetKind.gives_reference_profile``), the profile its target names
    (``Target.reference_profile()``), so both sides of the comparison run
    the same semantics; this overrides the scenario's
    ``pipeline.profile`` (the note says so).  Otherwise the scenario's
    ``pipeline.profile`` (or the default)."""
    if profile:
        return profile, "given with --profile"
    scenario_profile = scenario.pipeline.profile
    explicit = "profile" in ((getattr(scenario, "raw", None) or {}).get("pipeline") or {})
    fallback_reason = "the scenario's pipeline.profile" if explicit else "the default profile"
    for spec in impls:
        if not kind_of(spec).gives_reference_profile:
            continue
        try:
            target = target_factory(spec)
            detected = target.reference_profile()
            version = target.version or spec
        except Exception as exc:  # TargetError, an unsupported version (ValueError)
            return scenario_profile, (f"{fallback_reason}; no profile from {spec}: "
                                      f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        if detected is None:
            continue
        reason = f"picked for the detected {version}"
        if explicit and scenario_profile != detected:
            reason += f" (instead of the scenario's pipeline.profile {scenario_profile}; --profile overrides)"
        return detected, reason
    return scenario_profile, fallback_reason


def profiles_needed(impls: list[str], *, target_factory: Callable[..., Any] = get_target) -> dict[str, list[str]]:
    """Profile -> the versions of the sweep's real implementations that it
    models, in the order the implementations come; implementations that
    cannot tell are left out (``choose_reference_profile`` says why)."""
    needed: dict[str, list[str]] = {}
    for spec in impls:
        if not kind_of(spec).gives_reference_profile:
            continue
        try:
            target = target_factory(spec)
            detected = target.reference_profile()
        except Exception:  # TargetError, an unsupported version (ValueError)
            continue
        if detected is not None:
            needed.setdefault(detected, []).append(target.version or str(spec))
    return needed


def split_reference_by_profile(impls: list[str], needed: dict[str, list[str]]) -> tuple[list[str], dict[str, str]]:
    """With real implementations needing several profiles, every reference
    spec that names no profile becomes one spec per profile
    (``reference:PROFILE``, labelled ``reference[PROFILE]``), so each real
    implementation is compared with the reference modelling it.  Returns the
    specs and, per profile, why it runs."""
    if len(needed) < 2:
        return list(impls), {}
    out: list[str] = []
    for impl in impls:
        spec = parse_impl(impl)
        if not kind_of(spec).runs_reference_profile or spec.argument is not None:
            out.append(impl)
            continue
        for profile in needed:
            name = f"{spec.name}-{profile}" if spec.name else None
            if name is not None and not LABEL_RE.fullmatch(name):
                name = None
            out.append(ImplSpec(kind=spec.kind, argument=profile, name=name).text)
    reasons = {profile: f"picked for the detected {', '.join(versions)}" for profile, versions in needed.items()}
    return out, reasons


def _split_candidates(candidates: list[Candidate], needed: dict[str, list[str]]
                      ) -> tuple[list[Candidate], dict[str, str]]:
    """``split_reference_by_profile`` for candidates: a reference candidate
    becomes one per profile, labelled as the split spec is (a variant's
    name in front)."""
    out: list[Candidate] = []
    reasons: dict[str, str] = {}
    for c in candidates:
        specs, why = split_reference_by_profile([c.impl], needed)
        reasons.update(why)
        if specs == [c.impl]:
            out.append(c)
            continue
        for spec in specs:
            label = spec_label(spec) if c.variant is None else f"{c.variant}:{spec_label(spec)}"
            out.append(replace(c, impl=spec, label=label))
    return out, reasons


def run_order(impls: list[Any], partitions: list[int], repeats: int) -> list[tuple[Any, int, int]]:
    """(candidate, partitions, repeat) in the interleaved, counterbalanced
    order runs are made (see the module docstring)."""
    return [(impl, p, r) for r in range(repeats) for p in partitions
            for impl in (impls if r % 2 == 0 else impls[::-1])]


def expected_total(plan: Any, workload: Any) -> int | None:
    """Messages the plan will send, when known in advance (None for a
    duration-bound workload, whose plan is only a cap)."""
    if workload.duration_s:
        return None
    return int(np.sum(plan.messages_per_connection))


def _send_deadline_s(workload: Any, total: int | None) -> float:
    if workload.duration_s:
        return float(workload.duration_s) + 30.0
    budget = 60.0
    if total:
        budget += total / 5000.0  # generous: a slow target still finishes
    if workload.rate_per_connection and workload.messages_per_connection:
        budget += workload.messages_per_connection / workload.rate_per_connection
    return budget


class _ReceivedPoller:
    """Reports the collector's received count to a callback every 0.1 s from
    a daemon thread (the main thread is busy sending)."""

    def __init__(self, collector: Any, callback: Callable[[int], None] | None):
        self.collector = collector
        self.callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="received-poller")

    def __enter__(self) -> "_ReceivedPoller":
        if self.callback:
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.callback(self.collector.received_messages())
            except Exception:  # progress display must never break a run
                pass

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)


def run_once(scenario: Any, impl: str, partitions: int, repeat: int, workdir: Path, *,
             profile: str | None = None, idle_s: float = DEFAULT_IDLE_S,
             on_received: Callable[[int], None] | None = None,
             on_total: Callable[[int | None], None] | None = None,
             target_factory: Callable[..., Any] = get_target) -> Run:
    """One run; always returns a Run (errors inside it), except for
    KeyboardInterrupt, which propagates after cleanup."""
    run = Run(impl, int(partitions), int(repeat), expectation=scenario.expect)
    reference_profile = profile or getattr(scenario.pipeline, "profile", None)
    if kind_of(impl).runs_reference_profile:
        # reference:PROFILE runs its own profile
        run.profile = parse_impl(impl).argument or reference_profile
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    collector = target = report = capture = injector = None
    applied: list[AppliedFault] = []
    send_result = None
    t_start = time.monotonic()
    try:
        plan = build_plan(scenario.workload)
        total = expected_total(plan, scenario.workload)
        if on_total:
            on_total(total)
        faults = tuple(getattr(scenario, "faults", ()) or ())
        collector = Collector(rcvbuf=SLOW_RCVBUF if any(f.kind == "destination_slow" for f in faults) else None)
        target = target_factory(impl, profile=reference_profile)
        faults_s = max((f.end_s for f in faults), default=0.0)
        deadline_s = _send_deadline_s(scenario.workload, total) + faults_s
        # Once started, the target runs at most: sending, the quiescence
        # grace, and its stop.
        target_plan = TargetPlan(scenario=scenario, partitions=partitions,
                                 deadline_s=deadline_s + QUIESCE_GRACE_S + STOP_TIMEOUT_S)
        host, port = target.start(target_plan, collector.port, workdir, timeout=START_TIMEOUT_S)
        t_start = time.monotonic()
        if faults:
            injector = FaultInjector(faults, collector, target, (host, port)).start()
        with _ReceivedPoller(collector, on_received):
            send_result = send(plan, host, port, deadline_s=deadline_s,
                               reconnect=injector.address if injector is not None and injector.restarts else None)
            sent = int(send_result.total_sent)
            if on_total:
                on_total(sent)
            if injector is not None:
                # Every fault is played (and over) before quiescence counts.
                injector.wait(max(0.0, t_start + faults_s - time.monotonic()) + RESTART_TIMEOUT_S)
            _wait_quiescent(collector, sent, idle_s, t_start + deadline_s + QUIESCE_GRACE_S)
        run.sent = sent
        if send_result.reconnects:
            run.target_notes.append(f"sender: {sum(send_result.reconnects.values())} broken connection(s) opened "
                                    "again")
        if send_result.errors:
            first = min(send_result.errors)
            run.target_notes.append(
                f"sender: {len(send_result.errors)} connection(s) failed; connection {first}: {send_result.errors[first]}")
        if send_result.timed_out:
            run.target_notes.append(f"sender stopped at its deadline ({deadline_s:.0f}s) before sending everything")
    except KeyboardInterrupt as exc:
        run.error = f"interrupted ({signal.Signals(signal_of(exc)).name})"
        raise
    except TargetError as exc:
        run.error = str(exc)
    except Exception as exc:  # one broken run must not end the sweep
        run.error = f"{type(exc).__name__}: {exc}"
        (workdir / "run-error.txt").write_text(traceback.format_exc())
    finally:
        with interrupts.deferred():  # a signal now must not leave the target half stopped
            if injector is not None:
                applied = injector.stop()
            if target is not None:
                try:
                    report = target.stop(timeout=STOP_TIMEOUT_S)
                except Exception as exc:
                    run.target_notes.append(f"stopping the target failed: {type(exc).__name__}: {exc}")
            if collector is not None:
                try:
                    capture = collector.stop()
                except Exception as exc:
                    run.target_notes.append(f"stopping the collector failed: {type(exc).__name__}: {exc}")
                    if run.error is None:
                        run.error = f"stopping the collector failed: {type(exc).__name__}: {exc}"
                else:
                    run.target_notes += [f"collector: {error}" for error in capture.errors]
        run.duration_s = time.monotonic() - t_start
        if report is not None:
            run.cpu_seconds = report.cpu_seconds
            run.peak_rss_bytes = report.peak_rss_bytes
            run.partition_processed = report.partition_processed
            run.partition_assigned = report.partition_assigned
            run.target_notes += list(report.notes)
            run.target_version = report.version
            run.target_accounting = report.accounting
            run.stderr_tail = report.stderr_tail or ""
            run.stderr_head = report.stderr_head or ""
            run.batch_histograms = report.batch_histograms
            if report.exit_code not in (0, None) and run.error is None:
                run.target_notes.append(f"target exited with status {report.exit_code}")

    run.faults = applied
    failed_faults = [a for a in applied if a.error]
    if failed_faults and run.error is None:
        run.error = f"a fault could not be applied as planned: {failed_faults[0].describe()}"
    evaluated = False
    if run.error is None and capture is not None:
        try:
            _evaluate(run, scenario, plan, capture, send_result, partitions)
            evaluated = True
        except Exception as exc:
            run.error = f"evaluating the capture failed: {type(exc).__name__}: {exc}"
            (workdir / "run-error.txt").write_text(traceback.format_exc())
    if run.error is None and report is not None and report.failure:
        # The checks above still describe what arrived; the run cannot pass.
        run.error = report.failure
    if evaluated and run.error is None and capture.data_lost and run.verdict != "pass":
        # The checks still describe what arrived and the verdict weighed the
        # missing output; the figures are incomplete, so the run is no sample.
        run.error = f"the collector lost output, so the capture is incomplete: {_capture_trouble(capture)}"
    elif run.error is not None:
        run.verdict = "fail"
        run.verdict_reasons = [f"error: {run.error.splitlines()[0]}"]
    return run


def _capture_trouble(capture: Any) -> str:
    return "; ".join(capture.errors or ["(no detail)"])


def _wait_quiescent(collector: Any, target_count: int | None, idle_s: float, deadline: float) -> None:
    last = -1
    last_change = time.monotonic()
    while True:
        now = time.monotonic()
        received = collector.received_messages()
        if target_count is not None and received >= target_count:
            # Everything expected is in; a short grace catches duplicates.
            time.sleep(min(0.2, idle_s))
            return
        if received != last:
            last, last_change = received, now
        elif now - last_change >= idle_s:
            return
        if now >= deadline:
            return
        time.sleep(0.02)


def _evaluate(run: Run, scenario: Any, plan: Any, capture: Any, send_result: Any, partitions: int) -> None:
    records = parse_capture(capture)
    # Only what was actually sent is expected (a duration-bound or failed
    # sender stops early).
    expected = plan.expected_for(send_result.sent)
    run.checks = check(records, expected)
    expectation = scenario.expect
    bound = None
    if run.faults:
        recovery_s(run.faults, np.asarray(records.sent_ns), np.asarray(records.recv_ns))
        line_bytes = capture.total_bytes / max(1, records.lines_total)
        written = (run.target_accounting or {}).get("written")
        bound = promise(run.faults, scenario.pipeline.flow_control, scenario.pipeline.log_iw_size, line_bytes,
                        keeps_unacknowledged=kind_of(run.impl).keeps_unacknowledged,
                        written_unreceived=None if written is None else int(written) - len(records))
        run.fault_promise = bound
        if not expectation.loss_allowed:
            # The promise says how many may be lost; the other anomalies stay prohibited.
            expectation = replace(expectation, loss_allowed=True)
            run.expectation = expectation
    run.verdict, run.verdict_reasons = run.checks.verdict(
        expectation, incomplete=_capture_trouble(capture) if capture.data_lost else None)
    if bound is not None and not scenario.expect.loss_allowed:
        lost = run.checks.count("lost")
        if bound.max_lost is not None and lost > bound.max_lost:
            run.verdict = "fail"
            run.verdict_reasons.append(f"lost {lost:,} messages under the faults, more than the {bound.max_lost:,} "
                                       f"the implementation may lose ({bound.why})")
        elif bound.max_lost is not None and lost:
            late, first = unexplained_losses(bound, records, expected, send_result.sent_at)
            if late:
                run.verdict = "fail"
                run.verdict_reasons.append(
                    f"{late:,} of the {lost:,} lost messages were sent after the last break or kill (first: "
                    f"{first}): no fault explains them")
        silent = unaccounted(run.checks.count("lost"), run.target_accounting)
        if bound.max_lost is None and silent:
            run.verdict = "fail"
            run.verdict_reasons.append(f"lost {silent:,} messages more than the implementation counted as dropped "
                                       f"or still queued ({_accounting_text(run.target_accounting)})")
    sent_ns = np.asarray(records.sent_ns)
    recv_ns = np.asarray(records.recv_ns)
    run.received = int(sent_ns.size)
    tp = metrics.throughput(sent_ns, recv_ns, scenario.sweep.warmup_s)
    run.throughput_msgs_per_s = tp.msgs_per_s
    if scenario.sweep.warmup_s and not tp.warmup_applied:
        run.target_notes.append("run too short for the warm-up; throughput over all messages")
    run.latency_ms = metrics.latency_ms(sent_ns, recv_ns, scenario.sweep.warmup_s)
    run.partition_predicted = predicted_partitions(
        scenario, partitions, key_counts(records.key, len(scenario.workload.keys)))


def unaccounted(lost: int, accounting: dict | None) -> int:
    """Messages lost beyond what the implementation's own counters explain
    (dropped, or still queued when it stopped); 0 when it keeps no count."""
    if not accounting or "dropped" not in accounting:
        return 0
    return max(0, int(lost) - int(accounting.get("dropped", 0)) - int(accounting.get("queued_at_exit", 0)))


def _accounting_text(accounting: dict | None) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in (accounting or {}).items() if isinstance(v, int))


class _Progress:
    """A rich progress bar: messages received of expected, and which run."""

    def __init__(self, enabled: bool, total_runs: int):
        self.enabled = enabled
        self.progress = None
        self.task = None
        self.total_runs = total_runs
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                TextColumn("msgs"), TimeElapsedColumn(),
                console=Console(stderr=True), transient=False,
            )

    def __enter__(self) -> "_Progress":
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress:
            self.progress.stop()

    def new_run(self, index: int, scenario: str, label: str, partitions: int, repeat: int) -> None:
        if not self.progress:
            return
        if index == 0:
            self.progress.console.print(f"[bold]{scenario}[/]: {self.total_runs} runs")
        label = f"[{index + 1}/{self.total_runs}] {shorten_label(label)[:28]} p={partitions} r={repeat}"
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(label, total=None)

    def set_total(self, total: int | None) -> None:
        if self.progress and self.task is not None:
            self.progress.update(self.task, total=total)

    def received(self, n: int) -> None:
        if self.progress and self.task is not None:
            self.progress.update(self.task, completed=n)

    def finished(self, run: Run) -> None:
        if not self.progress:
            return
        mark = {"pass": "[green]pass", "unknown": "[yellow]UNKNOWN"}.get(run.verdict, "[red]FAIL")
        self.progress.remove_task(self.task)
        self.task = None
        self.progress.console.print(
            f"{mark}[/] {shorten_label(run.label)} partitions={run.partitions} repeat={run.repeat}"
            + (f"  {run.throughput_msgs_per_s:,.0f} msg/s" if run.throughput_msgs_per_s else "")
            + (f"  ({'; '.join(run.verdict_reasons)[:200]})" if run.verdict_reasons else "")
        )


def run_sweep(scenario: Any, impls: list[Any], partitions: list[int] | None = None,
              repeats: int | None = None, *, profile: str | None = None, show_progress: bool = True,
              workroot: Path | None = None, idle_s: float = DEFAULT_IDLE_S,
              target_factory: Callable[..., Any] = get_target) -> SweepOutcome:
    """All runs of one scenario.  ``impls``: implementation specs, or
    ``harness.candidates.Candidate``s (a variant runs its own scenario).
    Work files (configs, stderr) go to a temp dir under ``workroot`` that
    is removed afterwards unless a run failed (then its path is in the
    run's notes)."""
    parts = list(partitions if partitions is not None else scenario.sweep.partitions)
    reps = int(repeats if repeats is not None else scenario.sweep.repeats)
    candidates = as_candidates(scenario, impls)
    specs = list(dict.fromkeys(c.impl for c in candidates))
    order = run_order(candidates, parts, reps)
    outcome = SweepOutcome(scenario=scenario)
    if any(kind_of(impl).runs_reference_profile for impl in specs):
        outcome.profile, outcome.profile_reason = choose_reference_profile(
            scenario, specs, profile, target_factory=target_factory)
        if not profile:
            needed = profiles_needed(specs, target_factory=target_factory)
            candidates, outcome.profile_reasons = _split_candidates(candidates, needed)
            order = run_order(candidates, parts, reps)
        if profile is not None or any(kind_of(impl).gives_reference_profile for impl in specs):
            profile = outcome.profile
        # else each candidate runs its own scenario's pipeline.profile (a
        # variant may change it)
    tmp = Path(tempfile.mkdtemp(prefix=f"parbench-{_safe(scenario.name)}-", dir=workroot))
    keep = False
    try:
        with _Progress(show_progress, len(order)) as progress:
            for index, (candidate, p, r) in enumerate(order):
                workdir = tmp / f"{index:03d}-{_safe(candidate.label)[:40]}-p{p}-r{r}"
                progress.new_run(index, scenario.name, candidate.label, p, r)
                try:
                    interrupts.raise_if_pending()
                    run = run_once(candidate.scenario, candidate.impl, p, r, workdir, profile=profile,
                                   idle_s=idle_s, on_received=progress.received, on_total=progress.set_total,
                                   target_factory=target_factory)
                except KeyboardInterrupt:
                    outcome.interrupted = True
                    break
                run.label, run.variant = candidate.label, candidate.variant
                if run.profile is not None and outcome.profile_reason:
                    reason = outcome.profile_reasons.get(run.profile) or (
                        "named in the spec" if parse_impl(candidate.impl).argument else outcome.profile_reason)
                    run.target_notes.insert(0, f"version profile {run.profile}: {reason}")
                outcome.runs.append(run)
                progress.finished(run)
                if run.error:
                    keep = True
                    run.target_notes.append(f"work files kept in {workdir}")
    finally:
        with interrupts.deferred():
            if not keep:
                shutil.rmtree(tmp, ignore_errors=True)
    return outcome


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"
