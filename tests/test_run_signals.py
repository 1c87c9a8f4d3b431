"""`parbench run` ends the same way for SIGINT, SIGTERM and SIGHUP: the
target stopped, the temp dir removed, the finished runs written with
``interrupted`` set, exit status 128 + the signal number.

The signal goes to the `parbench run` process alone, as `timeout` and a
closing terminal deliver it; the target runs in a session of its own and
never sees it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parbench.harness.results import Results
from syslog_ng_required import skip_unless_required

RELAY = Path(__file__).parent / "fixtures" / "relay.py"

SLOW_SCENARIO = (
    'name = "signal-demo"\n[workload]\nconnections = 1\nmessages_per_connection = 100000\n'
    'rate_per_connection = 2000\nkeys = ["a", "b"]\n[pipeline]\npartition_key = "$HOST"\n'
    '[sweep]\npartitions = [0, 1]\nrepeats = 1\n[expect]\nordering = "per-key"\n')


def _pids_with(marker: str, exclude: int = -1) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == exclude:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != b"Z":
            found.append(int(entry))
    return found


def _run_and_signal(tmp_path: Path, impl: str, marker: str, sig: int) -> tuple[subprocess.CompletedProcess, Path]:
    scenario = tmp_path / "slow.toml"
    scenario.write_text(SLOW_SCENARIO)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "parbench", "run", str(scenario), "--no-progress", "--out", str(tmp_path / "r"),
         "--impl", impl],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _pids_with(marker, proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _pids_with(marker, proc.pid), "the target never started"
        time.sleep(1.0)  # in the middle of sending
        os.kill(proc.pid, sig)  # the harness alone, as timeout(1) does
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in _pids_with(marker, proc.pid):  # never leave one behind, even when the test fails
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), tmpdir


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_writes_partial_results_cleans_up_and_exits_128_plus_its_number(tmp_path, sig):
    relay = tmp_path / "relay_signal_marker.py"
    relay.write_bytes(RELAY.read_bytes())
    done, tmpdir = _run_and_signal(
        tmp_path, f"command:{sys.executable} {relay} --listen {{in_port}} --forward {{out_port}}", str(relay), sig)
    err = done.stderr.decode()
    assert done.returncode == 128 + sig, err
    assert f"interrupted ({sig.name})" in err and "partial results written" in err, err
    assert "Traceback" not in err
    (results,) = (tmp_path / "r" / "signal-demo").glob("*/results.json")
    loaded = Results.load(results)
    assert loaded.interrupted is True and loaded.runs == []
    assert not _pids_with(str(relay)), "the target outlived parbench run"
    assert list(tmpdir.iterdir()) == [], "the sweep's temp dir was left behind"


def test_sigterm_stops_a_real_syslog_ng_and_removes_its_work_files(tmp_path):
    from parbench.harness.syslog_ng.installation import locate_syslog_ng

    found, reasons = locate_syslog_ng(None)
    if found is None:
        skip_unless_required("no syslog-ng: " + "; ".join(reasons))
    # Each syslog-ng of this test runs with a config under this tmpdir.
    done, tmpdir = _run_and_signal(tmp_path, "syslog-ng", str(tmp_path / "tmp"), signal.SIGTERM)
    err = done.stderr.decode()
    assert done.returncode == 128 + signal.SIGTERM, err
    (results,) = (tmp_path / "r" / "signal-demo").glob("*/results.json")
    assert Results.load(results).interrupted is True
    assert not _pids_with(str(tmpdir)), "syslog-ng outlived parbench run"
    assert list(tmpdir.iterdir()) == []
