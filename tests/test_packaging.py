"""A plain (non-editable) install: one import package, scenarios as package
data, the main job runnable by scenario name from an empty directory."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                           "-w", str(out), str(REPO)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (found,) = out.glob("parbench-*.whl")
    return found


def test_wheel_holds_one_top_level_package_and_the_scenarios(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"parbench"}
    assert "parbench/reference/engine.py" in names
    assert "parbench/harness/runner.py" in names
    assert "parbench/scenarios/chatty-single-sender.toml" in names
    shipped = {Path(n).name for n in names if n.startswith("parbench/scenarios/") and n.endswith(".toml")}
    assert shipped == {p.name for p in (REPO / "scenarios").glob("*.toml")}


def test_installed_wheel_runs_a_shipped_scenario_by_name_from_an_empty_directory(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (site / "reference").exists() and not (site / "harness").exists()
    work = tmp_path / "empty"
    work.mkdir()
    # Only the installed copy of parbench is importable: no source tree on the
    # path, the test venv's site-packages after it for the dependencies.
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}
    code = "import parbench, sys; print(parbench.__file__)"
    where = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    run = subprocess.run([sys.executable, "-m", "parbench", "run", "chatty-single-sender", "--quick",
                          "--no-progress", "--partitions", "0,2"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2/2 runs pass" in run.stdout
    assert list((work / "reports" / "chatty-single-sender").glob("*/results.json"))
