"""Every shipped scenario runs end to end against the reference with --quick
(`parbench run`, in process) and meets its own expectation; the report files
exist, results.json validates, and for keyed scenarios the reference's
per-partition counters equal the g_str_hash prediction.  Scenarios with
``[faults]`` lose messages by design and have their own test
(tests/test_fault_scenarios_e2e.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from parbench.harness.results import Results
from parbench.harness.scenario import load_scenario

ALL_SCENARIOS = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.toml"))
SCENARIOS = [p for p in ALL_SCENARIOS if not load_scenario(p).faults]


def test_the_required_scenarios_ship():
    names = {p.stem for p in ALL_SCENARIOS}
    assert {"chatty-single-sender", "many-connections", "round-robin", "hot-key", "slow-destination",
            "shared-keys"} <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_quick_run_against_reference_meets_its_expectation(tmp_path, path):
    from parbench.cli import main

    result = CliRunner().invoke(main, ["run", str(path), "--quick", "--impl", "reference", "--out", str(tmp_path)],
                                catch_exceptions=False)
    scenario = load_scenario(path)
    directories = list((tmp_path / scenario.name).iterdir())
    assert len(directories) == 1, result.output
    directory = directories[0]
    for name in ("results.json", "report.md", "throughput.png", "latency.png", "balance.png"):
        assert (directory / name).stat().st_size > 0, name
    results = Results.load(directory / "results.json")
    failures = [(r.partitions, r.error, r.verdict_reasons) for r in results.runs if r.verdict != "pass"]
    assert not failures, failures
    assert result.exit_code == 0, result.output
    assert results.runs, "no runs"
    for run in results.runs:
        assert run.received == run.sent > 0
        assert run.throughput_msgs_per_s and run.throughput_msgs_per_s > 0
        assert run.expectation == scenario.expect
        assert all(run.checks.count(name) == 0 for name in scenario.expect.prohibited)
        if run.partitions > 0:
            assert run.partition_processed is not None and len(run.partition_processed) == run.partitions
            assert sum(run.partition_processed) == run.received
            field = scenario.workload.key_field
            if scenario.pipeline.partition_key in (f"${field}", f"${{{field}}}"):
                assert run.partition_processed == run.partition_predicted
        else:
            assert not run.partition_processed
