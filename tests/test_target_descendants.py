"""A target is stopped with every process it started: a daemon it left
behind (fork, setsid, fork again: out of its process group and session) is
found, killed, reaped, noted, and fails the run."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from parbench.harness.runner import run_sweep
from parbench.harness.scenario import Expectation, Pipeline, Scenario, Sweep, Workload
from parbench.harness.targets.process import listening_inodes

RELAY = Path(__file__).parent / "fixtures" / "relay.py"


def _scenario() -> Scenario:
    return Scenario(
        name="daemon-test", path="daemon-test.toml", description="",
        workload=Workload(connections=1, messages_per_connection=200, keys=("a", "b"), seed=3),
        pipeline=Pipeline(partition_key="$HOST"),
        sweep=Sweep(partitions=(0,), repeats=1),
        expect=Expectation(ordering="per-key"),
    )


def _exists(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


@pytest.mark.parametrize("clean_env", [False, True], ids=["env-kept", "env-cleared"])
def test_a_daemon_left_by_the_target_is_killed_reaped_noted_and_fails_the_run(tmp_path, clean_env):
    pidfile = tmp_path / "daemon.pid"
    impl = (f"command:{sys.executable} {RELAY} --listen {{in_port}} --forward {{out_port}} "
            f"--leave-daemon {pidfile}" + (" --daemon-clean-env" if clean_env else ""))
    outcome = run_sweep(_scenario(), [impl], show_progress=False, workroot=tmp_path)
    deadline = time.monotonic() + 10
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid, port = map(int, pidfile.read_text().split())
    try:
        (run,) = outcome.runs
        assert not _exists(pid), "the daemon outlived its target (or was left a zombie)"
        assert listening_inodes(port) == set()
        assert run.verdict == "fail"
        assert run.error and "still running after the target stopped" in run.error, run.error
        notes = [n for n in run.target_notes if str(pid) in n]
        assert notes and "killed" in notes[0], run.target_notes
        # Everything the relay itself forwarded arrived: only the daemon fails the run.
        assert run.checks.count("lost") == 0 and run.received == run.sent == 200
    finally:
        if _exists(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_target_that_leaves_nothing_behind_passes(tmp_path):
    impl = f"command:{sys.executable} {RELAY} --listen {{in_port}} --forward {{out_port}}"
    (run,) = run_sweep(_scenario(), [impl], show_progress=False, workroot=tmp_path).runs
    assert run.verdict == "pass", run.verdict_reasons
    assert not any("still running" in note for note in run.target_notes)
