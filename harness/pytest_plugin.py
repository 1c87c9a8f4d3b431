"""parbench in a pytest suite: a pytest plugin (entry point ``pytest11``,
name ``parbench``), loaded by any pytest in an environment where parbench
is installed.

Fixtures (each a function-scoped object; nothing runs until a test calls it):

* ``parbench_run(scenario, impl=None, partitions=None, *, repeat=None,
  quick=None, profile=None, must_pass=True) -> Results``: a sweep as
  ``parbench run`` makes it (scenario file, shipped name or ``Scenario``),
  its report written under ``--reports`` (default: the test's tmp_path);
  returns the results model (``harness.results.Results``).
* ``parbench_check(capture, scenario=None, *, sent=None, expect=(),
  ordering=None, format="parbench", connections=None,
  sent_per_connection=None, must_pass=True) -> CaptureCheck``: the checks
  of ``parbench check`` on a capture (a ``Capture``, bytes, a file or a
  list of files).
* ``parbench_impl``: starts any registered implementation, as
  axosyslog-light's ``syslog_ng`` fixture starts syslog-ng:
  ``running = parbench_impl.start(scenario, partitions=4)`` returns a
  running implementation whose output goes to a collector;
  ``running.send()``, ``running.stop() -> Capture``, ``running.sent``,
  ``running.report``.  Whatever a test leaves running is stopped at teardown.

A run or capture that breaks its expectation fails the test with
``ParbenchExpectationFailed`` (an ``AssertionError``) whose message holds
every reason and the first witnesses of each anomaly found; ``must_pass=False``
returns the result instead.

Command-line options, named as axosyslog-light names them where the meaning
is the same:

* ``--installdir DIR``: a syslog-ng / AxoSyslog build to test (DIR/sbin/syslog-ng);
  the default implementation becomes ``syslog-ng:DIR``;
* ``--reports DIR``: where ``parbench_run`` writes reports;
* ``--parbench-impl SPEC`` (repeatable): the default implementations;
* ``--parbench-quick``: every ``parbench_run`` as with ``parbench run --quick``.

When axosyslog-light is installed it owns ``--installdir`` and
``--reports`` (the same meaning); this plugin then reads them from it and
adds only the ``--parbench-installdir`` / ``--parbench-reports`` spellings,
so both plugins load in one session.  Importing this module imports nothing
of parbench: a pytest session that uses none of the fixtures pays nothing.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pytest

LIGHT_PACKAGE = "axosyslog_light"
SHOWN_WITNESSES = 5


class ParbenchExpectationFailed(AssertionError):
    """A run or a capture broke its scenario's expectation; the message has
    the reasons and the witnesses."""


def _light_installed() -> bool:
    return importlib.util.find_spec(LIGHT_PACKAGE) is not None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("parbench", "parbench: syslog-ng parallelize() checks")
    light = _light_installed()
    group.addoption(*(["--parbench-installdir"] + ([] if light else ["--installdir"])),
                    dest="parbench_installdir", default=None, metavar="DIR",
                    help="syslog-ng / AxoSyslog install prefix to test (DIR/sbin/syslog-ng): the default "
                         "implementation of the parbench fixtures becomes syslog-ng:DIR.")
    group.addoption(*(["--parbench-reports"] + ([] if light else ["--reports"])),
                    dest="parbench_reports", default=None, metavar="DIR",
                    help="Where parbench_run writes its reports (default: each test's tmp_path).")
    group.addoption("--parbench-impl", dest="parbench_impls", action="append", default=None,
                    metavar="[NAME=]KIND[:ARG]",
                    help="Default implementation of the parbench fixtures (repeatable), as parbench run --impl.")
    group.addoption("--parbench-quick", dest="parbench_quick", action="store_true", default=False,
                    help="Run every parbench_run scenario as parbench run --quick does.")


@dataclass(frozen=True)
class Settings:
    installdir: str | None
    reports: str | None
    impls: tuple[str, ...]
    quick: bool

    @classmethod
    def of(cls, config: pytest.Config) -> "Settings":
        def option(own: str, light: str) -> Any:
            value = config.getoption(own, None)
            return value if value is not None else config.getoption(light, None)

        installdir = option("parbench_installdir", "installdir")
        if installdir is not None and not (Path(installdir) / "sbin" / "syslog-ng").exists():
            raise pytest.UsageError(f"--installdir {installdir}: no sbin/syslog-ng there "
                                    "(expected the install prefix of a syslog-ng or AxoSyslog build)")
        return cls(installdir, option("parbench_reports", "reports"),
                   tuple(config.getoption("parbench_impls", None) or ()), bool(config.getoption("parbench_quick")))

    def default_impls(self, scenario: Any) -> list[str]:
        if self.impls:
            return list(self.impls)
        if self.installdir:
            return [f"syslog-ng:{self.installdir}"]
        return list(scenario.sweep.implementations or ("reference",))


def pytest_configure(config: pytest.Config) -> None:
    Settings.of(config)  # a bad --installdir stops the session before any test


def _scenario(spec: Any) -> Any:
    from parbench.harness.scenario import Scenario, load_scenario

    return spec if isinstance(spec, Scenario) else load_scenario(spec)


def _run_failure_message(results: Any, directory: Path) -> str:
    from parbench.harness.checks import format_witness
    from parbench.harness.targets.registry import impl_label

    bad = [r for r in results.runs if not r.passed]
    expect = results.runs[0].expectation if results.runs else None
    head = (f"parbench: scenario {results.scenario.name}: {len(bad)} of {len(results.runs)} runs did not pass"
            + (f" (expected ordering {expect.ordering!r}, loss {'allowed' if expect.loss_allowed else 'not allowed'})"
               if expect else "") + (" (interrupted)" if results.interrupted else ""))
    lines = [head]
    for run in bad:
        lines.append(f"  {impl_label(run.impl)} partitions={run.partitions} repeat={run.repeat}: {run.verdict}")
        lines += [f"    - {reason}" for reason in run.verdict_reasons]
        if run.checks is not None:
            for name in run.expectation.prohibited:
                found = run.checks.anomalies.get(name)
                for witness in (found.witnesses[:SHOWN_WITNESSES] if found else ()):
                    lines.append(f"    {name}: {format_witness(witness)}")
        if run.error and run.stderr_tail:
            lines.append("    stderr tail: " + run.stderr_tail[-500:].replace("\n", "\n      "))
    lines.append(f"  results: {directory / 'results.json'} (report.md beside it)")
    return "\n".join(lines)


@pytest.fixture
def parbench_run(request: pytest.FixtureRequest, tmp_path: Path):
    """Run a scenario's sweep; returns ``harness.results.Results``."""
    settings = Settings.of(request.config)

    def run(scenario: Any, impl: str | Sequence[str] | None = None, partitions: int | Sequence[int] | None = None,
            *, repeat: int | None = None, quick: bool | None = None, profile: str | None = None,
            must_pass: bool = True) -> Any:
        __tracebackhide__ = True
        from parbench.harness.metrics import describe_window
        from parbench.harness.report import report_dir, write_report
        from parbench.harness.results import Results, ScenarioInfo
        from parbench.harness.runner import run_sweep
        from parbench.harness.scenario import apply_quick
        from parbench.harness.targets.registry import parse_impls

        sc = _scenario(scenario)
        if quick or (quick is None and settings.quick):
            sc = apply_quick(sc)
        impls = [impl] if isinstance(impl, str) else list(impl) if impl else settings.default_impls(sc)
        parse_impls(impls)
        parts = [partitions] if isinstance(partitions, int) else list(partitions) if partitions is not None else None
        work = tmp_path / "parbench-work"
        work.mkdir(exist_ok=True)
        outcome = run_sweep(sc, impls, parts, repeat, profile=profile, show_progress=False, workroot=work)
        results = Results(ScenarioInfo(sc.name, str(sc.path), sc.raw), outcome.runs,
                          interrupted=outcome.interrupted, throughput_window=describe_window())
        directory = report_dir(Path(settings.reports) if settings.reports else tmp_path / "reports", sc.name)
        results.write(directory / "results.json")
        write_report(results, directory)
        request.node.user_properties.append(("parbench_results", str(directory / "results.json")))
        if must_pass and (outcome.interrupted or not results.runs or not all(r.passed for r in results.runs)):
            raise ParbenchExpectationFailed(_run_failure_message(results, directory))
        return results

    return run


@pytest.fixture
def parbench_check(tmp_path: Path):
    """Check a capture against a scenario (or sent files, or loggen's own
    numbering); returns ``harness.capture_check.CaptureCheck``."""

    def check(capture: Any, scenario: Any = None, *, sent: Any = None, expect: Sequence[str | Path] = (),
              ordering: str | None = None, format: str = "parbench", connections: int | None = None,
              sent_per_connection: int | None = None, must_pass: bool = True) -> Any:
        __tracebackhide__ = True
        from parbench.harness.capture_check import check_loggen, check_parbench, describe_failure, read_captures
        from parbench.harness.collector import Capture

        if format == "loggen":
            if isinstance(capture, (bytes, bytearray)):
                path = tmp_path / "loggen-capture.log"
                path.write_bytes(capture)
                capture = [path]
            paths = [str(p) for p in (capture if isinstance(capture, (list, tuple)) else [capture])]
            done = check_loggen(paths, scenario=scenario, ordering=ordering, connections=connections,
                                sent_per_connection=sent_per_connection)
        elif format == "parbench":
            if isinstance(capture, (bytes, bytearray)):
                capture = Capture.from_bytes(bytes(capture), has_recv_times=False)
            elif not isinstance(capture, Capture):
                capture = read_captures([str(p) for p in (capture if isinstance(capture, (list, tuple))
                                                          else [capture])])
            done = check_parbench(capture, scenario, expect_files=[str(p) for p in expect], sent=sent,
                                  sent_per_connection=sent_per_connection, ordering=ordering)
        else:
            raise ValueError(f"format {format!r}: expected 'parbench' or 'loggen'")
        verdict, reasons = done.verdict()
        if must_pass and verdict != "pass":
            raise ParbenchExpectationFailed("parbench: capture " + describe_failure(done, verdict, reasons,
                                                                                     SHOWN_WITNESSES))
        return done

    return check


class RunningImpl:
    """One started implementation: its syslog input, its output collector."""

    def __init__(self, scenario: Any, spec: str, partitions: int, target: Any, collector: Any,
                 address: tuple[str, int]):
        import numpy as np

        self.scenario = scenario
        self.spec = spec
        self.partitions = partitions
        self.target = target
        self.collector = collector
        self.host, self.port = address
        self.sent = np.zeros(scenario.workload.connections, dtype=np.int64)
        self.report = None
        self.capture = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def send(self, deadline_s: float = 120.0) -> Any:
        """Send the scenario's traffic (``parbench run``'s sender); returns its ``SendResult``."""
        from parbench.harness.workload import build_plan, send

        result = send(build_plan(self.scenario.workload), self.host, self.port, deadline_s=deadline_s)
        self.sent = self.sent + result.sent
        return result

    def wait_output(self, count: int | None = None, *, idle_s: float = 2.0, timeout: float = 60.0) -> int:
        """Wait until ``count`` lines (default: everything sent) arrived, or
        none for ``idle_s``, or ``timeout``; returns the lines received."""
        import time

        want = int(self.sent.sum()) if count is None else count
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            got = self.collector.received_messages()
            if got >= want:
                return got
            if got != last:
                last, since = got, time.monotonic()
            elif time.monotonic() - since >= idle_s:
                break
            time.sleep(0.02)
        return self.collector.received_messages()

    def stop(self, timeout: float = 15.0) -> Any:
        """Wait for the output, stop the implementation and the collector;
        returns the capture (``harness.collector.Capture``).  Safe twice."""
        if self.capture is None:
            try:
                self.wait_output()
            finally:
                try:
                    self.report = self.target.stop(timeout=timeout)
                finally:
                    self.capture = self.collector.stop()
        return self.capture


class ImplStarter:
    """The ``parbench_impl`` fixture's value."""

    def __init__(self, settings: Settings, workdir: Path):
        self.settings = settings
        self.workdir = workdir
        self.running: list[RunningImpl] = []

    def start(self, scenario: Any, *, partitions: int = 0, impl: str | None = None, profile: str | None = None,
              quick: bool | None = None, timeout: float = 30.0) -> RunningImpl:
        from parbench.harness.collector import Collector
        from parbench.harness.scenario import apply_quick
        from parbench.harness.targets.base import TargetPlan
        from parbench.harness.targets.registry import get_target

        sc = _scenario(scenario)
        if quick or (quick is None and self.settings.quick):
            sc = apply_quick(sc)
        spec = impl or self.settings.default_impls(sc)[0]
        workdir = self.workdir / f"impl-{len(self.running)}"
        workdir.mkdir(parents=True, exist_ok=True)
        collector = Collector()
        try:
            target = get_target(spec, profile=profile or sc.pipeline.profile)
            try:
                address = target.start(TargetPlan(scenario=sc, partitions=partitions), collector.port, workdir,
                                       timeout=timeout)
            except BaseException:
                target.stop()
                raise
        except BaseException:
            collector.stop()
            raise
        running = RunningImpl(sc, spec, partitions, target, collector, address)
        self.running.append(running)
        return running

    def stop_all(self) -> None:
        for running in self.running:
            try:
                running.stop()
            except Exception:  # noqa: BLE001 - teardown stops every other implementation too
                pass


@pytest.fixture
def parbench_impl(request: pytest.FixtureRequest, tmp_path: Path):
    """Starts registered implementations (``.start(scenario, partitions=...)``); stops them at teardown."""
    starter = ImplStarter(Settings.of(request.config), tmp_path / "parbench-impl")
    yield starter
    starter.stop_all()
