"""Reports: results.json follows parbench.results/1, plots and report.md are
written; `parbench run` exit codes and one-line errors."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from parbench.harness.metrics import describe_window
from parbench.harness.report import _short_impl, write_report
from parbench.harness.results import ResultsError, build_results, empty_run, load_results, write_results

RELAY = Path(__file__).parent / "fixtures" / "relay.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _runs():
    runs = []
    exp = {"ordering": "per-key", "loss_allowed": False}
    for repeat in range(2):
        for p in (0, 1, 2, 4):
            for impl in ("reference", "command:python3 /x/relay.py --listen {in_port} --forward {out_port}"):
                run = empty_run(impl, p, repeat, exp)
                run.update(sent=1000, received=1000, duration_s=1.0, throughput_msgs_per_s=1000.0 * max(p, 1) + repeat,
                           latency_ms={"p50": 1.0 + p, "p99": 5.0 + p, "max": 9.0}, cpu_seconds=0.5,
                           peak_rss_bytes=50_000_000, verdict="pass",
                           checks={"lost": 0, "duplicated": 0, "unexpected": 0, "malformed": 0,
                                   "nonmonotonic_per_key": 0, "nonmonotonic_per_connection": 0, "witnesses": {}})
                if impl == "reference" and p:
                    run["partition_processed"] = [1000 // p] * p
                    run["partition_predicted"] = [1000 // p] * p
                runs.append(run)
    broken = empty_run("reference", 4, 2, exp)
    broken.update(error="reference (parbench serve) exited with status 2", stderr_tail="conf:1:1: bad thing",
                  verdict_reasons=["error: reference (parbench serve) exited with status 2"])
    runs.append(broken)
    return runs


def _doc(runs=None):
    return build_results("demo", "scenarios/demo.toml", {"name": "demo", "pipeline": {"partition_key": "$HOST"}},
                         _runs() if runs is None else runs, throughput_window=describe_window())


def test_report_writes_validated_results_plots_and_markdown(tmp_path):
    directory = write_report(_doc(), tmp_path)
    assert directory.parent == tmp_path / "demo"
    for name in ("throughput.png", "latency.png", "balance.png"):
        data = (directory / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name
    doc = load_results(directory / "results.json")
    assert len(doc["runs"]) == 17 and doc["machine"]["cpus"] >= 1
    md = (directory / "report.md").read_text()
    assert "**16 of 17 runs pass**" in md
    assert md.count("| `reference` |") == 9
    assert "`command: python3 relay.py`" in md  # short label, no paths or port placeholders
    assert "![Throughput](throughput.png)" in md and "![Per-partition balance](balance.png)" in md
    assert "conf:1:1: bad thing" in md  # stderr tail of the failed run
    assert "Throughput window" in md
    # A second report of the same scenario in the same second gets its own directory.
    assert write_report(_doc(), tmp_path) != directory


def test_plots_survive_runs_without_any_figures(tmp_path):
    exp = {"ordering": "none", "loss_allowed": False}
    run = empty_run("reference", 2, 0, exp)
    run["error"] = "boom"
    directory = write_report(_doc([run]), tmp_path)
    assert all((directory / n).stat().st_size > 0 for n in ("throughput.png", "latency.png", "balance.png"))


def test_short_impl_labels():
    assert _short_impl("reference") == "reference"
    assert _short_impl("command:/usr/bin/python3 /a/b/relay.py --listen {in_port} --forward {out_port} --drop-one") == \
        "command: python3 relay.py --drop-one"


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(schema="parbench.results/0"), "schema is 'parbench.results/0'"),
    (lambda d: d.pop("machine"), "missing top-level field 'machine'"),
    (lambda d: d["runs"][3].pop("throughput_msgs_per_s"), r"runs\[3\]: missing field 'throughput_msgs_per_s'"),
    (lambda d: d["runs"][0].update(verdict="ok"), r"runs\[0\].verdict must be 'pass' or 'fail'"),
    (lambda d: d["runs"][1].update(partitions="4"), r"runs\[1\].partitions must be int, got str"),
    (lambda d: d["runs"][1].update(partitions=True), r"runs\[1\].partitions must be int, got bool"),
    (lambda d: d["runs"][2]["latency_ms"].pop("p99"), r"runs\[2\].latency_ms.p99"),
])
def test_load_results_rejects_each_schema_break_naming_the_field(tmp_path, mutate, message):
    path = write_results(tmp_path / "results.json", _doc())
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsError, match=message):
        load_results(path)


def test_load_results_names_the_file_for_non_json(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{nope")
    with pytest.raises(ResultsError, match=r"r\.json: not JSON"):
        load_results(path)


# --- parbench run -----------------------------------------------------------

SCENARIO = """\
name = "cli-demo"
[workload]
connections = 2
messages_per_connection = 400
keys = ["web-01", "web-02", "db-1"]
[pipeline]
partition_key = "$HOST"
[sweep]
partitions = [0, 2]
repeats = 1
[expect]
ordering = "per-key"
"""


def _invoke(*args):
    from parbench.cli import main

    return CliRunner().invoke(main, ["run", *args], catch_exceptions=False)


def _relay(*flags):
    return f"command:{sys.executable} {RELAY} --listen {{in_port}} --forward {{out_port}} " + " ".join(flags)


def test_run_cli_passes_with_a_correct_relay_and_fails_with_a_lossy_one(tmp_path):
    scenario = tmp_path / "cli-demo.toml"
    scenario.write_text(SCENARIO)
    good = _invoke(str(scenario), "--impl", _relay(), "--out", str(tmp_path / "r"), "--no-progress")
    assert good.exit_code == 0, good.output
    assert "cli-demo: 2/2 runs pass; report: " in good.output
    report = Path(good.output.split("report: ")[1].split()[0])
    assert report.exists()
    assert len(load_results(report.parent / "results.json")["runs"]) == 2
    bad = _invoke(str(scenario), "--impl", _relay("--drop-one"), "--partitions", "1", "--out", str(tmp_path / "r"),
                  "--no-progress")
    assert bad.exit_code == 1, bad.output
    assert "0/1 runs pass" in bad.output


@pytest.mark.parametrize("args, message", [
    (["--partitions", "1,x"], "--partitions: 'x' is not a partition count"),
    (["--partitions", "64"], "expected comma-separated integers 0..32"),
    (["--impl", "rsyslog"], "parbench run: --impl: expected reference[:PROFILE], syslog-ng[:PATH], axosyslog[:VERSION|PATH] or command:ARGV, "
                            "optionally as NAME=SPEC, got 'rsyslog'\n"),
    (["--profile", "syslog-ng-9"], "--profile: unknown profile 'syslog-ng-9'"),
])
def test_run_cli_bad_options_are_one_line_exit_2(tmp_path, args, message):
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    result = CliRunner().invoke(__import__("parbench.cli").cli.main, ["run", str(scenario), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_run_cli_bad_scenario_is_one_line_exit_2(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO.replace("connections = 2", "conections = 2"))
    result = CliRunner().invoke(__import__("parbench.cli").cli.main, ["run", str(scenario)])
    assert result.exit_code == 2
    assert str(scenario) in result.output and "conections" in result.output
    assert len(result.output.strip().splitlines()) == 1
