"""`parbench compare` and `parbench history` from the command line."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from parbench.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "compare"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def fixture(name):
    return FIXTURES / name


def test_slowdown_exits_1_and_writes_markdown(tmp_path):
    md = tmp_path / "comment.md"
    result = invoke("compare", fixture("results_base.json"), fixture("results_slow.json"), "--markdown", md)
    assert result.exit_code == 1, result.output
    assert "regression" in result.output and "4 regressions" in result.output
    assert "only in current (not compared): reference p=8" in result.output
    assert "excluded errored run" in result.output
    text = md.read_text()
    assert text.startswith("### parbench compare: ❌ performance regression")
    assert text.count("🔴 regression") == 4


def test_speedup_exits_0():
    result = invoke("compare", fixture("results_base.json"), fixture("results_fast.json"))
    assert result.exit_code == 0, result.output
    assert "4 improvements" in result.output and "regression" not in result.output


def test_metric_selection_and_threshold_option():
    result = invoke("compare", fixture("results_base.json"), fixture("results_slow.json"),
                    "--metric", "cpu_seconds")
    assert result.exit_code == 1
    assert "cpu_seconds" in result.output and "throughput_msgs_per_s" not in result.output
    # a 30 % tolerance lets the 20 % slowdown through
    result = invoke("compare", fixture("results_base.json"), fixture("results_slow.json"), "--threshold", "30%")
    assert result.exit_code == 0, result.output
    assert "4 regressions" not in result.output


def test_erratic_and_too_few_do_not_fail_ci():
    erratic = invoke("compare", fixture("results_base.json"), fixture("results_erratic.json"))
    assert erratic.exit_code == 0 and "erratic (CV" in erratic.output
    few = invoke("compare", fixture("results_base.json"), fixture("results_few.json"))
    assert few.exit_code == 0 and "too few samples (2 < 3)" in few.output


def test_pytest_benchmark_files(tmp_path):
    result = invoke("compare", fixture("bench_base.json"), fixture("bench_slow.json"), "--markdown",
                    tmp_path / "m.md")
    assert result.exit_code == 1, result.output
    assert "time_s" in result.output and "1 regression" in result.output
    assert "(collect)" in (tmp_path / "m.md").read_text()


@pytest.mark.parametrize("args, expected", [
    (["bench_base.json", "bench_nodata.json"], "bench_nodata.json: benchmarks[0].stats.data: no raw timings"),
    (["results_base.json", "bench_slow.json"], "same kind"),
    (["results_base.json", "missing.json"], "missing.json: cannot read"),
    (["results_base.json", "results_slow.json", "--metric", "nope"], "Invalid value for '--metric': 'nope' is not one of"),
])
def test_bad_input_exits_2_with_one_line(args, expected):
    paths = [str(fixture(a)) if a.endswith(".json") else a for a in args]
    result = CliRunner().invoke(main, ["compare", *paths])
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


def test_bad_threshold_is_a_usage_error():
    result = CliRunner().invoke(main, ["compare", str(fixture("results_base.json")),
                                       str(fixture("results_slow.json")), "--threshold", "lots"])
    assert result.exit_code == 2 and "percentage" in result.output


def _results_run_dir(tmp_path, levels):
    """One results.json per level of the p=4 throughput, a day apart, written out of order."""
    base = json.loads(fixture("results_base.json").read_text())
    rng = np.random.default_rng(1)
    for day, level in reversed(list(enumerate(levels))):
        doc = json.loads(json.dumps(base))
        doc["created"] = f"2026-11-{10 + day:02d}T10:00:00+00:00"
        for run in doc["runs"]:
            if run["error"] is None:
                scale = level if run["partitions"] == 4 else 1.0
                run["throughput_msgs_per_s"] = 1e5 * scale * (1 + 0.02 * rng.standard_normal())
        out = tmp_path / "runs" / f"z{9 - day}" / "results.json"  # path order != time order
        out.parent.mkdir(parents=True)
        out.write_text(json.dumps(doc))
    (tmp_path / "runs" / "z9" / "counters.json").write_text('{"not": "a result"}')
    return tmp_path / "runs"


def test_history_orders_by_created_plots_and_reports_the_step(tmp_path):
    runs = _results_run_dir(tmp_path, [1.0, 1.0, 1.0, 0.8, 0.8, 0.8])
    png = tmp_path / "h.png"
    result = invoke("history", runs, "--impl", "reference", "--out", png)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    steps = [line for line in result.output.splitlines() if line.startswith("step:")]
    assert len(steps) == 1
    # the 4th run in time (day 13) is the one written to z6
    assert "reference p=4: regression" in steps[0] and "z6" in steps[0]
    assert "skipped 1 other JSON file" in result.output


def test_history_of_pytest_benchmark_files(tmp_path):
    for name in ("bench_base.json", "bench_slow.json"):
        shutil.copy(fixture(name), tmp_path / name)
    result = invoke("history", tmp_path, "--out", tmp_path / "b.png")
    assert result.exit_code == 0, result.output
    assert "2 pytest-benchmark run(s), 2 configuration(s)" in result.output
    assert "test_parse: regression" in result.output and "unconfirmed" in result.output


def test_history_without_results_exits_2(tmp_path):
    (tmp_path / "x.json").write_text("[]")
    result = CliRunner().invoke(main, ["history", str(tmp_path)])
    assert result.exit_code == 2 and "no parbench results.json" in result.output
    result = CliRunner().invoke(main, ["history", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "not a directory" in result.output


def test_benchmark_suite_conftest_rejects_a_benchmark_without_group(tmp_path):
    # tests/benchmarks/conftest.py is a checker: prove it catches the broken case
    import subprocess
    import sys

    shutil.copy(Path(__file__).parent / "benchmarks" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_g.py").write_text(
        "def test_grouped(benchmark):\n    benchmark.group = 'g'\n    benchmark(sum, [1])\n\n"
        "def test_ungrouped(benchmark):\n    benchmark(sum, [1])\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-only",
         "--benchmark-max-time=0.001", "--benchmark-min-rounds=1", "--benchmark-json=out.json", "test_g.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "ERROR test_g.py::test_ungrouped" in proc.stdout
    assert "test_g.py::test_grouped" not in proc.stdout.split("short test summary")[-1]
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["parbench"]["cpus"] >= 1


def test_history_keeps_scenarios_apart(tmp_path):
    for i, name in enumerate(["chatty", "hot-key"]):
        doc = json.loads(fixture("results_base.json").read_text())
        doc["scenario"]["name"] = name
        doc["created"] = f"2026-11-2{i}T10:00:00Z"
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
    result = invoke("history", tmp_path, "--out", tmp_path / "h.png")
    assert result.exit_code == 0, result.output
    assert "2 parbench run(s), 4 configuration(s)" in result.output


def test_an_old_baseline_compares_with_a_new_results_file(tmp_path):
    """Baselines saved as parbench.results/1 keep working against files the
    current parbench writes (parbench.results/2)."""
    from parbench.harness.results import Results

    slow = Results.load(fixture("results_slow.json"))
    assert slow.schema == "parbench.results/1"
    current = slow.write(tmp_path / "results.json")
    assert json.loads(current.read_text())["schema"] == "parbench.results/2"
    result = invoke("compare", fixture("results_base.json"), current)
    assert result.exit_code == 1, result.output
    assert "4 regressions" in result.output


@pytest.mark.parametrize("nest", ["[" * 100_000 + "]" * 100_000,
                                  '{"schema": "parbench.results/2", "x": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001])
def test_deeply_nested_json_is_one_line_and_exit_2(tmp_path, nest):
    import subprocess
    import sys

    deep = tmp_path / "deep.json"
    deep.write_text(nest)
    for args in (["compare", deep, deep], ["compare", fixture("results_base.json"), deep], ["history", tmp_path]):
        done = subprocess.run([sys.executable, "-m", "parbench", *map(str, args)], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert f"{deep}: " in line and "nested" in line and "Traceback" not in done.stderr
