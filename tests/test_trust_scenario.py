"""A scenario file does not choose programs to run: an implementation that
names one (``command:ARGV``, ``syslog-ng:PATH``) is taken from ``--impl``,
or from ``sweep.implementations`` only with ``--trust-scenario``."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RELAY = Path(__file__).parent / "fixtures" / "relay.py"

SCENARIO = """name = "trust"
[workload]
connections = 1
messages_per_connection = 50
keys = ["a", "b"]
[pipeline]
partition_key = "$HOST"
[sweep]
partitions = [0]
repeats = 1
implementations = [{impl}]
"""


def _parbench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parbench", "run", *args, "--no-progress", "--out", str(tmp_path / "r")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def _write(tmp_path: Path, *impls: str) -> Path:
    path = tmp_path / "trust.toml"
    path.write_text(SCENARIO.format(impl=", ".join(json.dumps(i) for i in impls)))
    return path


@pytest.mark.parametrize("index", [0, 1])
def test_a_command_from_a_scenario_file_is_refused_without_running_it(tmp_path, index):
    marker = tmp_path / "ran"
    command = f"command:{sys.executable} -c \"open('{marker}', 'w')\" {{in_port}} {{out_port}}"
    impls = ["reference", command] if index else [command]
    scenario = _write(tmp_path, *impls)
    done = _parbench(tmp_path, str(scenario))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"parbench run: {scenario}: sweep.implementations[{index}]: ")
    assert "--trust-scenario" in line and "--impl" in line
    assert not marker.exists(), "the scenario's command ran"
    assert not (tmp_path / "r").exists()


def test_a_syslog_ng_path_from_a_scenario_file_is_refused(tmp_path):
    scenario = _write(tmp_path, "syslog-ng:/bin/true")
    done = _parbench(tmp_path, str(scenario))
    assert done.returncode == 2, done.stderr
    assert f"{scenario}: sweep.implementations[0]: " in done.stderr and "--trust-scenario" in done.stderr


def test_an_axosyslog_path_from_a_scenario_file_is_refused_a_version_is_not(tmp_path):
    done = _parbench(tmp_path, str(_write(tmp_path, "axosyslog:/bin/true")))
    assert done.returncode == 2 and "sweep.implementations[0]: refusing" in done.stderr, done.stderr
    done = _parbench(tmp_path, str(_write(tmp_path, "axosyslog:4.27.0")))
    assert "refusing" not in done.stderr  # a build parbench made: not runnable here, but not refused for trust


def test_trust_scenario_runs_the_scenario_command(tmp_path):
    scenario = _write(tmp_path, f"command:{sys.executable} {RELAY} --listen {{in_port}} --forward {{out_port}}")
    done = _parbench(tmp_path, str(scenario), "--trust-scenario")
    assert done.returncode == 0, done.stderr
    assert "1/1 runs pass" in done.stdout


def test_the_same_command_given_with_impl_needs_no_trust(tmp_path):
    scenario = _write(tmp_path, "reference")
    done = _parbench(tmp_path, str(scenario), "--impl",
                     f"command:{sys.executable} {RELAY} --listen {{in_port}} --forward {{out_port}}")
    assert done.returncode == 0, done.stderr


def test_a_scenario_naming_only_kinds_without_a_program_needs_no_trust(tmp_path):
    done = _parbench(tmp_path, str(_write(tmp_path, "reference")))
    assert done.returncode == 0, done.stderr
