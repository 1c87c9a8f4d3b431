"""A scenario whose run would not fit in memory is refused before anything
starts (exit 2, with the figures), and the estimate behind it is an upper
bound of what the plan really takes."""
from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc

import pytest

from parbench.harness.budget import check_fits, memory_limit, parse_size, planned_memory
from parbench.harness.scenario import ScenarioError, Workload, generate_host_names, scenario_from_dict
from parbench.harness.workload import build_plan


@pytest.mark.parametrize("connections, messages, keys", [(1, 400_000, 16), (8, 50_000, 70_000)])
def test_the_plan_estimate_bounds_what_building_the_plan_takes(connections, messages, keys):
    workload = Workload(connections=connections, messages_per_connection=messages,
                        keys=generate_host_names(keys, 1), message_size=256)
    estimate = planned_memory(workload)
    tracemalloc.start()
    try:
        plan = build_plan(workload)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert plan.key_flat.size == estimate.messages == connections * messages
    assert kept <= estimate.plan_bytes * 1.05 + 65536
    assert kept >= estimate.plan_bytes * 0.9  # the estimate is not padded beyond use
    assert peak <= estimate.plan_bytes + estimate.build_bytes + 65536


@pytest.mark.parametrize("text, size", [("4G", 4 << 30), ("512M", 512 << 20), ("1.5GiB", 3 << 29), ("1000", 1000),
                                        ("64k", 64 << 10), ("x", None), ("", None), ("4Q", None)])
def test_sizes(text, size):
    assert parse_size(text) == size


def _scenario(tmp_path, connections, messages):
    path = tmp_path / "big.toml"
    path.write_text(f'name = "big"\n[workload]\nconnections = {connections}\nmessages_per_connection = {messages}\n'
                    '[sweep]\npartitions = [0]\nrepeats = 1\n')
    return path


def test_a_plan_over_the_limit_is_refused_with_its_figures(monkeypatch):
    monkeypatch.setenv("PARBENCH_MEMORY_LIMIT", "1G")
    scenario = scenario_from_dict({"workload": {"connections": 10, "messages_per_connection": 10**7}}, "big.toml")
    with pytest.raises(ScenarioError) as err:
        check_fits(scenario)
    text = str(err.value)
    assert text.startswith("big.toml: workload.messages_per_connection: expected a workload whose run fits in memory")
    assert "100,000,000 messages" in text and "1.0 GiB" in text and "$PARBENCH_MEMORY_LIMIT" in text
    monkeypatch.setenv("PARBENCH_MEMORY_LIMIT", "100G")
    assert check_fits(scenario).messages == 10**8


def test_without_a_cap_the_limit_is_a_share_of_mem_available(monkeypatch):
    monkeypatch.delenv("PARBENCH_MEMORY_LIMIT", raising=False)
    limit, source = memory_limit()
    with open("/proc/meminfo") as fh:
        available = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("MemAvailable:"))
    assert "MemAvailable" in source or "cgroup" in source
    assert 0 < limit <= available


def _run(tmp_path, *args, env=None):
    return subprocess.run([sys.executable, "-m", "parbench", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_parbench_run_refuses_an_oversized_scenario_up_front(tmp_path):
    done = _run(tmp_path, "run", str(_scenario(tmp_path, 10, 10**7)), "--no-progress", "--out", str(tmp_path / "r"),
                env={"PARBENCH_MEMORY_LIMIT": "64M"})
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "workload.messages_per_connection" in line and "100,000,000 messages" in line
    assert not (tmp_path / "r").exists()


def test_a_billion_messages_per_connection_is_refused_not_a_memory_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PARBENCH_MEMORY_LIMIT"}
    done = subprocess.run([sys.executable, "-m", "parbench", "run", str(_scenario(tmp_path, 1000, 10**9)),
                           "--no-progress", "--out", str(tmp_path / "r")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2, done.stderr
    assert "1,000,000,000,000 messages" in done.stderr and "MemoryError" not in done.stderr


def test_parbench_check_refuses_an_oversized_scenario(tmp_path):
    capture = tmp_path / "capture.txt"
    capture.write_bytes(b"")
    done = _run(tmp_path, "check", str(capture), "--scenario", str(_scenario(tmp_path, 10, 10**7)),
                env={"PARBENCH_MEMORY_LIMIT": "64M"})
    assert done.returncode == 2, done.stderr
    assert "fits in memory" in done.stderr


def test_a_malformed_cap_is_one_line_and_exit_2(tmp_path):
    done = _run(tmp_path, "run", str(_scenario(tmp_path, 1, 10)), "--no-progress", "--out", str(tmp_path / "r"),
                env={"PARBENCH_MEMORY_LIMIT": "lots"})
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "PARBENCH_MEMORY_LIMIT" in line and "'lots'" in line
