"""Every shipped fault scenario, run end to end (`parbench run`, in process,
partitions 4) against the reference and a real syslog-ng, holds the
promise of its faults: every fault played, nothing duplicated, per-key
order kept, no more lost than the promise allows, and without flow control
every loss counted by the implementation."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from parbench.harness.results import Results
from parbench.harness.scenario import load_scenario
from syslog_ng_required import skip_unless_required

FAULT_SCENARIOS = [p for p in sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.toml"))
                   if load_scenario(p).faults]


def test_every_fault_kind_ships_in_a_scenario():
    kinds = {f.kind for p in FAULT_SCENARIOS for f in load_scenario(p).faults}
    assert kinds == {"destination_down", "destination_slow", "connection_reset", "target_restart"}
    assert any(not load_scenario(p).pipeline.flow_control for p in FAULT_SCENARIOS)


def _reference_retries() -> bool:
    """Whether this reference retries a lost destination (time-reopen())."""
    from parbench.reference.config import ConfigError, parse_config

    text = ('@version: 4.8\noptions { time-reopen(1); };\nsource s { network(ip("127.0.0.1") port(0)); };\n'
            'destination d { tcp("127.0.0.1" port(1)); };\nlog { source(s); destination(d); };\n')
    try:
        parse_config(text, "<probe>", warn=lambda *a: None)
    except ConfigError:
        return False
    return True


def _require(impl: str) -> None:
    if impl == "syslog-ng":
        from parbench.harness.syslog_ng.installation import locate_syslog_ng

        found, reasons = locate_syslog_ng(None)
        if found is None:
            skip_unless_required("no syslog-ng: " + "; ".join(reasons))
    elif not _reference_retries():
        pytest.skip("this reference has no time-reopen(): it does not retry a lost destination yet")


@pytest.mark.parametrize("impl", ["reference", "syslog-ng"])
@pytest.mark.parametrize("path", FAULT_SCENARIOS, ids=lambda p: p.stem)
def test_a_fault_scenario_holds_its_promise(tmp_path, path, impl):
    from parbench.cli import main

    _require(impl)
    scenario = load_scenario(path)
    result = CliRunner().invoke(main, ["run", str(path), "--impl", impl, "--partitions", "4", "--no-progress",
                                       "--out", str(tmp_path)], catch_exceptions=False)
    (directory,) = (tmp_path / scenario.name).iterdir()
    (run,) = Results.load(directory / "results.json").runs
    assert run.verdict == "pass", (run.verdict_reasons, run.error, result.output)
    assert result.exit_code == 0, result.output
    assert len(run.faults) == len(scenario.faults)
    for fault in run.faults:
        assert fault.error is None and fault.started_s is not None and fault.recover_s is not None
    lost = run.checks.count("lost")
    assert run.checks.count("duplicated") == 0 and run.checks.count("nonmonotonic-per-key") == 0
    if run.fault_promise.max_lost is not None:
        assert lost <= run.fault_promise.max_lost
    else:
        assert lost > 0  # the destination was down long enough to overflow the queue
        if run.target_accounting:
            counted = run.target_accounting["dropped"] + run.target_accounting.get("queued_at_exit", 0)
            assert lost == counted
    if run.target_accounting and "received" in run.target_accounting:
        acct = run.target_accounting
        assert acct["received"] == acct["written"] + acct["dropped"] + acct.get("queued_at_exit", 0)
        # What arrived was written; what was written and lost went down with a broken connection,
        # which only an implementation that sends unacknowledged lines again never loses.
        assert acct["written"] >= run.received
        if impl == "reference":
            assert acct["written"] == run.received
