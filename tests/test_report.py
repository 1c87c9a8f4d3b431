"""Reports: results.json follows parbench.results/2 (and /1 files still
read), plots and report.md are written from the results model; `parbench run`
exit codes and one-line errors."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from parbench.harness.checks import Anomaly, CheckResult
from parbench.harness.metrics import describe_window
from parbench.harness.report import _short_impl, report_dir, write_report
from parbench.harness.results import Results, ResultsError, Run, ScenarioInfo
from parbench.harness.scenario import Expectation

RELAY = Path(__file__).parent / "fixtures" / "relay.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


ANOMALIES = ("lost", "duplicated", "unexpected", "malformed", "nonmonotonic-per-key", "nonmonotonic-per-connection")


def _checks(**found):
    return CheckResult({name: Anomaly(found.get(name, 0), [{"conn": 0, "cseq": 7}] if found.get(name) else [])
                        for name in ANOMALIES},
                       {"sent": 1000, "received": 1000, "inverted_pair_share": 0.0, "max_displacement": 0})


def _runs():
    runs = []
    for repeat in range(2):
        for p in (0, 1, 2, 4):
            for impl in ("reference", "command:python3 /x/relay.py --listen {in_port} --forward {out_port}"):
                run = Run(impl, p, repeat, sent=1000, received=1000, duration_s=1.0,
                          throughput_msgs_per_s=1000.0 * max(p, 1) + repeat,
                          latency_ms={"p50": 1.0 + p, "p99": 5.0 + p, "max": 9.0}, cpu_seconds=0.5,
                          peak_rss_bytes=50_000_000, verdict="pass", checks=_checks())
                if impl == "reference" and p:
                    run.partition_processed = [1000 // p] * p
                    run.partition_predicted = [1000 // p] * p
                runs.append(run)
    broken = Run("reference", 4, 2, error="reference (parbench serve) exited with status 2",
                 stderr_tail="conf:1:1: bad thing",
                 verdict_reasons=["error: reference (parbench serve) exited with status 2"])
    runs.append(broken)
    return runs


def _results(runs=None):
    return Results(ScenarioInfo("demo", "scenarios/demo.toml", {"name": "demo", "pipeline": {"partition_key": "$HOST"}}),
                   _runs() if runs is None else runs, throughput_window=describe_window())


def _write(results, root):
    directory = report_dir(root, results.scenario.name)
    results.write(directory / "results.json")
    return write_report(results, directory)


def test_report_writes_validated_results_plots_and_markdown(tmp_path):
    directory = _write(_results(), tmp_path)
    assert directory.parent == tmp_path / "demo"
    for name in ("throughput.png", "latency.png", "balance.png"):
        data = (directory / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name
    loaded = Results.load(directory / "results.json")
    assert len(loaded.runs) == 17 and loaded.machine.cpus >= 1
    assert loaded.to_json() == _results().to_json() | {"created": loaded.created}
    md = (directory / "report.md").read_text()
    assert "**16 of 17 runs pass**" in md
    assert md.count("| `reference` |") == 9
    assert "`command: python3 relay.py`" in md  # short label, no paths or port placeholders
    assert "![Throughput](throughput.png)" in md and "![Per-partition balance](balance.png)" in md
    assert "conf:1:1: bad thing" in md  # stderr tail of the failed run
    assert "Throughput window" in md
    # A second report of the same scenario in the same second gets its own directory.
    assert _write(_results(), tmp_path) != directory


def test_report_table_has_a_column_per_anomaly_and_marks_prohibited_ones(tmp_path):
    runs = [Run("reference", 2, 0, verdict="fail", checks=_checks(lost=3, **{"nonmonotonic-per-connection": 5}),
                verdict_reasons=["lost: 3 messages sent, never received (first: conn=0, cseq=7)"]),
            Run("reference", 2, 1, verdict="unknown", checks=_checks(lost=1)),
            Run("reference", 4, 0, verdict="pass", checks=_checks())]
    directory = _write(_results(runs), tmp_path)
    md = (directory / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| impl |"))
    assert " | ".join(ANOMALIES) in header
    rows = [line for line in md.splitlines() if line.startswith("| `reference` |")]
    # per-key expectation: lost is prohibited (bold), nonmonotonic-per-connection is not
    assert "| **FAIL** | - | - | **3** | 0 | 0 | 0 | 0 | 5 |" in rows[0]
    assert "| **unknown** |" in rows[1] and "| pass |" in rows[2]
    assert "- `nonmonotonic-per-connection`: adjacent messages of one connection received out of send order" in md
    assert '"lost": [' in md  # witnesses of the failed runs


def test_plots_survive_runs_without_any_figures(tmp_path):
    run = Run("reference", 2, 0, expectation=Expectation("none"), error="boom")
    directory = _write(_results([run]), tmp_path)
    assert all((directory / n).stat().st_size > 0 for n in ("throughput.png", "latency.png", "balance.png"))


def test_short_impl_labels():
    def label(spec):
        return _short_impl(Run(spec, 0, 0).label)

    assert label("reference") == "reference"
    assert label("command:/usr/bin/python3 /a/b/relay.py --listen {in_port} --forward {out_port} --drop-one") == \
        "command: python3 relay.py --drop-one"
    assert label("head=reference") == "head"
    assert _short_impl("x" * 60) == "x" * 45 + "..."


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(schema="parbench.results/0"),
     "schema: expected 'parbench.results/2' or 'parbench.results/1', got 'parbench.results/0' (string)"),
    (lambda d: d.pop("machine"), "machine: missing"),
    (lambda d: d["runs"][3].pop("throughput_msgs_per_s"), "runs[3].throughput_msgs_per_s: missing"),
    (lambda d: d["runs"][0].update(verdict="ok"),
     "runs[0].verdict: expected one of 'pass', 'fail', 'unknown', got 'ok' (string)"),
    (lambda d: d["runs"][1].update(partitions="4"), "runs[1].partitions: expected an integer >= 0, got '4' (string)"),
    (lambda d: d["runs"][1].update(partitions=True), "runs[1].partitions: expected an integer >= 0, got True (boolean)"),
    (lambda d: d["runs"][2]["latency_ms"].pop("p99"), "runs[2].latency_ms.p99: missing"),
    (lambda d: d["runs"][2]["latency_ms"].update(p50=float("inf")),
     "runs[2].latency_ms.p50: expected a finite number or null, got inf (number)"),
    (lambda d: d["runs"][0]["checks"]["anomalies"]["lost"].update(count=-1),
     "runs[0].checks.anomalies.lost.count: expected an integer >= 0, got -1 (integer)"),
    (lambda d: d["runs"][0]["expectation"].update(ordering="total"),
     "runs[0].expectation.ordering: expected one of 'per-key', 'per-connection', 'none', got 'total'"),
    (lambda d: d["runs"][4]["target_notes"].append(3), "runs[4].target_notes[0]: expected a string, got 3"),
])
def test_loading_rejects_each_schema_break_naming_file_and_field(tmp_path, mutate, message):
    path = _results().write(tmp_path / "results.json")
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsError) as info:
        Results.load(path)
    assert str(info.value).startswith(f"{path}: {message}")
    assert "\n" not in str(info.value) and info.value.exit_code == 2


def test_loading_names_the_file_for_non_json(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{nope")
    with pytest.raises(ResultsError, match=r"r\.json:1:2: invalid JSON"):
        Results.load(path)
    with pytest.raises(ResultsError, match=r"nothing\.json: cannot read"):
        Results.load(tmp_path / "nothing.json")


def test_version_1_files_are_read_into_the_same_model():
    fixture = Path(__file__).parent / "fixtures" / "compare" / "results_base.json"
    doc = json.loads(fixture.read_text())
    assert doc["schema"] == "parbench.results/1"
    run = doc["runs"][0]
    run["checks"] = {"ordering": "per-key", "sent": 10, "received": 9, "lost": 1, "duplicated": 0,
                     "duplicate_copies": 0, "unexpected": 0, "malformed": 1, "nonmonotonic_per_key": 2,
                     "nonmonotonic_per_connection": 3, "key_pairs": 8, "inverted_pair_share": 0.25,
                     "max_displacement": 1, "witnesses": {"lost": [{"conn": 0, "cseq": 4}], "duplicated": []},
                     "malformed_examples": ["stream 0 line 3: 'x'"]}
    results = Results.from_json(doc, "old.json")
    assert results.schema == "parbench.results/1" and len(results.runs) == len(doc["runs"])
    checks = results.runs[0].checks
    assert {name: a.count for name, a in checks.anomalies.items()} == {
        "lost": 1, "duplicated": 0, "unexpected": 0, "malformed": 1, "nonmonotonic-per-key": 2,
        "nonmonotonic-per-connection": 3}
    assert checks.anomalies["lost"].witnesses == [{"conn": 0, "cseq": 4}]
    assert checks.anomalies["malformed"].witnesses == [{"text": "stream 0 line 3: 'x'"}]
    assert checks.stats == {"sent": 10, "received": 9, "duplicate_copies": 0, "key_pairs": 8,
                            "inverted_pair_share": 0.25, "max_displacement": 1}
    # written back, it is a /2 file that reads the same
    again = Results.from_json(json.loads(json.dumps(results.to_json())), "new.json")
    assert again.schema == "parbench.results/2" and again.to_json() == results.to_json()
    doc["runs"][1]["verdict"] = "unknown"  # /1 had no third verdict
    with pytest.raises(ResultsError, match=r"runs\[1\].verdict: expected one of 'pass', 'fail', got 'unknown'"):
        Results.from_json(doc, "old.json")


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
    assert len(Results.load(report.parent / "results.json").runs) == 2
    bad = _invoke(str(scenario), "--impl", _relay("--drop-one"), "--partitions", "1", "--out", str(tmp_path / "r"),
                  "--no-progress")
    assert bad.exit_code == 1, bad.output
    assert "0/1 runs pass" in bad.output


@pytest.mark.parametrize("args, message", [
    (["--partitions", "1,x"], "--partitions: 'x' is not a partition count"),
    (["--partitions", "64"], "expected comma-separated integers 0..32"),
    (["--impl", "rsyslog"], "parbench run: --impl: expected reference[:PROFILE], syslog-ng[:PATH], axosyslog[:VERSION|PATH] or command:ARGV, "
                            "optionally as NAME=SPEC, got 'rsyslog'\n"),
    (["--profile", "syslog-ng-9"], "Invalid value for '--profile': 'syslog-ng-9' is not one of"),
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
