"""Check a capture taken anywhere against what was sent: the logic behind
``parbench check`` and the pytest plugin's ``parbench_check``.

What was sent comes, in this order of precedence, from sent files written
by ``parbench send --expect-out`` (merged; one per shard; they also carry
the flags that changed the scenario's workload, so no scenario is needed),
from explicit counts per connection, from the scenario's count, and for a
duration-bound scenario from the highest sequence number seen from each
connection (a loss at the very end of a connection is invisible then).
Plain loggen traffic (``check_loggen``) has no scenario: loggen's own
sequence numbers say what each connection sent.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from parbench.errors import UsageError
from parbench.harness import checks
from parbench.harness.budget import check_fits
from parbench.harness.collector import Capture, Records, Stream, parse_capture
from parbench.harness.scenario import Expectation, Scenario, load_scenario
from parbench.harness.wire import Expected
from parbench.harness.workload import build_plan


@dataclass
class CaptureCheck:
    """What was checked, against what, and what was found."""

    records: Records
    expected: Expected
    result: checks.CheckResult
    expect: Expectation
    source: str  # "scenario NAME" or "loggen"
    scenario: Scenario | None = None
    notes: list[str] = field(default_factory=list)

    def verdict(self) -> tuple[str, list[str]]:
        verdict, reasons = self.result.verdict(self.expect)
        if self.source == "loggen":
            reasons = [r.replace("without a parbench trailer", "without loggen's seq and thread") for r in reasons]
        return verdict, reasons


def read_captures(paths: Sequence[str]) -> Capture:
    """Capture files (``-`` = stdin) as one capture, a stream per file."""
    streams: list[Stream] = []
    for path in paths:
        try:
            streams += Capture.from_file(path).streams
        except OSError as e:
            raise UsageError(f"{path}: cannot read: {e.strerror or e}") from None
    return Capture(streams, has_recv_times=False)


def _sent_from_records(records: Records, n_conn: int, cap: np.ndarray) -> np.ndarray:
    sent = np.zeros(n_conn, dtype=np.int64)
    ok = records.conn < n_conn
    np.maximum.at(sent, records.conn[ok].astype(np.int64), records.cseq[ok].astype(np.int64) + 1)
    return np.minimum(sent, cap)


def check_parbench(capture: Capture, scenario: Scenario | str | None = None, *,
                   expect_files: Sequence[str] = (), sent: Sequence[int] | np.ndarray | None = None,
                   sent_per_connection: int | None = None, ordering: str | None = None) -> CaptureCheck:
    """Check a capture of parbench traffic; see the module docstring for how
    what was sent is known.  ``scenario``: a Scenario, a file or a shipped
    name; ``sent``: messages sent per connection (as ``SendResult.sent``)."""
    from parbench.harness.scenario import scenario_from_dict
    from parbench.harness.sent_file import SentRecord, merge

    notes: list[str] = []
    given = scenario if scenario is None or isinstance(scenario, Scenario) else load_scenario(scenario)
    if expect_files:
        if sent_per_connection is not None or sent is not None:
            raise UsageError("--sent-per-connection: not with --expect (the sent files say what was sent)")
        loaded = [(str(path), SentRecord.load(path)) for path in expect_files]
        effective, sent_arr, covered = merge(loaded)
        if given is not None:
            recorded = scenario_from_dict(dict(loaded[0][1].scenario_toml), loaded[0][1].scenario_path)
            if given.workload != recorded.workload:
                raise UsageError(f"--scenario {given.path}: its workload differs from the one the sender ran "
                                 f"({loaded[0][0]}: scenario {recorded.name!r}); leave --scenario out")
            effective = replace(effective, expect=given.expect)
        if not covered.all():
            missing = np.flatnonzero(~covered)
            shown = ", ".join(map(str, missing[:8])) + (", ..." if len(missing) > 8 else "")
            notes.append(f"{len(missing)} connection(s) in no --expect file ({shown}): expected to have sent nothing")
        for path, record in loaded:
            if not record.complete:
                notes.append(f"{path}: the sender did not send everything it meant to; checking what it did send")
    else:
        if given is None:
            raise UsageError("--scenario: required (or --expect files from parbench send --expect-out)")
        effective, sent_arr = given, None
    check_fits(effective)
    plan = build_plan(effective.workload)
    records = parse_capture(capture)
    n_conn = plan.n_connections
    if sent is not None:
        sent_arr = np.asarray(sent, dtype=np.int64)
        if sent_arr.shape != (n_conn,):
            raise UsageError(f"sent: expected {n_conn} counts (one per connection), got {sent_arr.shape[0]}")
    if sent_arr is None:
        if sent_per_connection is not None:
            sent_arr = np.full(n_conn, sent_per_connection, dtype=np.int64)
            if (sent_arr > plan.messages_per_connection).any():
                raise UsageError(f"--sent-per-connection: expected at most {int(plan.messages_per_connection[0])} "
                                 f"(the scenario's plan), got {sent_per_connection}")
        elif effective.workload.duration_s is not None:
            sent_arr = _sent_from_records(records, n_conn, plan.messages_per_connection)
        else:
            sent_arr = plan.messages_per_connection
    elif (sent_arr > plan.messages_per_connection).any():
        raise UsageError("sent: more messages than the scenario's plan holds")
    expect = effective.expect if ordering is None else replace(effective.expect, ordering=ordering)
    expected = plan.expected_for(sent_arr)
    return CaptureCheck(records, expected, checks.check(records, expected), expect,
                        f"scenario {effective.name}", effective, notes)


def check_loggen(paths: Sequence[str], *, scenario: Scenario | str | None = None, ordering: str | None = None,
                 connections: int | None = None, sent_per_connection: int | None = None) -> CaptureCheck:
    """Check captures of plain loggen traffic: per connection, by default
    (``scenario`` may give another expectation; ``ordering`` overrides)."""
    from parbench.harness.syslog_ng import loggen_lines

    if scenario is None:
        expect = Expectation(ordering="per-connection")
    else:
        expect = (load_scenario(scenario) if not isinstance(scenario, Scenario) else scenario).expect
    if ordering is not None:
        expect = replace(expect, ordering=ordering)
    try:
        records = loggen_lines.parse_files(list(paths))
    except OSError as e:
        raise UsageError(f"{e.filename}: cannot read: {e.strerror or e}") from None
    expected = loggen_lines.expected(records, connections, sent_per_connection)
    return CaptureCheck(records, expected, checks.check(records, expected), expect, "loggen")


def describe_failure(done: CaptureCheck, verdict: str, reasons: list[str], shown: int = 5) -> str:
    """Every reason and the first witnesses of each prohibited anomaly found:
    what a test's assertion message shows."""
    lines = [f"verdict {verdict} ({done.source}; expected ordering {done.expect.ordering!r}, loss "
             f"{'allowed' if done.expect.loss_allowed else 'not allowed'})"]
    lines += [f"  - {reason}" for reason in reasons]
    for name in done.expect.prohibited:
        found = done.result.anomalies.get(name)
        for witness in (found.witnesses[:shown] if found else ()):
            lines.append(f"  {name}: {checks.format_witness(witness)}")
    lines += [f"  note: {note}" for note in done.notes]
    return "\n".join(lines)
