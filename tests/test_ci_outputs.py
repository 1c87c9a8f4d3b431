"""What CI systems read: `run --junit-xml` (JUnit XML, one case per run),
the Markdown job summary ($GITHUB_STEP_SUMMARY), `run --json`, `compare
--json`, `compare --format bmf` / github-action-benchmark, `place --json`."""
from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from parbench.cli import main
from parbench.harness.checks import Anomaly, CheckResult
from parbench.harness.compare import bootstrap_median_ci, load_samples
from parbench.harness.junit import junit_xml
from parbench.harness.results import Results, Run, ScenarioInfo
from parbench.harness.scenario import Expectation
from parbench.reference.partition import g_str_hash

RELAY = Path(__file__).parent / "fixtures" / "relay.py"
COMPARE = Path(__file__).parent / "fixtures" / "compare"
SCENARIO = """
name = "ci-demo"
[workload]
connections = 2
messages_per_connection = 400
keys = 5
[pipeline]
partition_key = "$HOST"
[sweep]
partitions = [1, 2]
repeats = 1
"""


def relay(*flags: str) -> str:
    return f"command:{sys.executable} {RELAY} --listen {{in_port}} --forward {{out_port}} " + " ".join(flags)


def read_junit(path: Path) -> ET.Element:
    """Parse and check the structure JUnit consumers rely on (the schema
    Jenkins / GitLab / GitHub reporters read): counts that add up, every
    case named and timed, failures and errors with a message."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    total = {"tests": 0, "failures": 0, "errors": 0}
    for suite in root.findall("testsuite"):
        assert suite.get("name")
        cases = suite.findall("testcase")
        counted = {"tests": len(cases),
                   "failures": sum(1 for c in cases if c.find("failure") is not None),
                   "errors": sum(1 for c in cases if c.find("error") is not None)}
        for key, value in counted.items():
            assert int(suite.get(key)) == value, (key, suite.attrib)
            total[key] += value
        float(suite.get("time"))
        for case in cases:
            assert case.get("classname") and case.get("name")
            assert float(case.get("time")) >= 0
            for child in case:
                assert child.tag in ("failure", "error", "skipped", "system-out", "system-err")
                if child.tag in ("failure", "error"):
                    assert child.get("message")
    for key, value in total.items():
        assert int(root.get(key)) == value
    return root


def test_quick_run_writes_junit_one_case_per_run_and_json_summary(tmp_path):
    """The issue's example: `parbench run chatty-single-sender --quick --junit-xml j.xml`."""
    junit = tmp_path / "j.xml"
    result = CliRunner().invoke(main, ["run", "chatty-single-sender", "--quick", "--junit-xml", str(junit),
                                       "--json", "--no-progress", "--out", str(tmp_path / "reports")],
                                env={"GITHUB_STEP_SUMMARY": ""})
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout holds only the JSON document
    assert summary["schema"] == "parbench.run-summary/1" and summary["passed"] is True
    scenario = summary["scenarios"][0]
    results = Results.load(scenario["results"])
    assert scenario["runs"] == len(results.runs) == 2 and scenario["verdicts"]["pass"] == 2
    assert Path(scenario["report"]).exists() and summary["junit_xml"] == str(junit)
    root = read_junit(junit)
    cases = root.findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == [f"reference partitions={r.partitions} repeat={r.repeat}"
                                              for r in results.runs]
    assert all(c.get("classname") == "parbench.chatty-single-sender" for c in cases)
    assert "chatty-single-sender: 2/2 runs pass" in result.stderr


def test_failed_run_carries_its_reasons_and_witness_and_the_step_summary(tmp_path):
    scenario = tmp_path / "ci-demo.toml"
    scenario.write_text(SCENARIO)
    junit, step = tmp_path / "junit.xml", tmp_path / "step.md"
    step.write_text("earlier step\n")
    result = CliRunner().invoke(main, ["run", str(scenario), "--impl", relay("--drop-one"), "--partitions", "2",
                                       "--junit-xml", str(junit), "--no-progress", "--out", str(tmp_path / "r")],
                                env={"GITHUB_STEP_SUMMARY": str(step)})
    assert result.exit_code == 1, result.output
    root = read_junit(junit)
    (case,) = root.findall("testsuite/testcase")
    failure = case.find("failure")
    assert failure.get("type") == "fail" and failure.get("message").startswith("lost: 1 message sent, never received")
    assert "lost witness: {" in failure.text and '"conn": ' in failure.text
    text = step.read_text()
    assert text.startswith("earlier step\n### ❌ parbench: ci-demo: 0 of 1 runs pass")
    assert "| **fail** |" in text and "lost: 1 message" in text


def test_junit_error_case_and_characters_xml_cannot_hold():
    broken = Run("command:x", 2, 0, error="target crashed\x00\x1b[31m", verdict="fail",
                 verdict_reasons=["error: target crashed"], stderr_tail="segfault\x07")
    unknown = Run("reference", 4, 0, verdict="unknown", verdict_reasons=["lost: 3 messages"],
                  checks=CheckResult({"lost": Anomaly(3, [{"conn": 0, "cseq": 7}])}),
                  expectation=Expectation(ordering="per-key"))
    doc = junit_xml([(Results(ScenarioInfo("s", "s.toml"), [broken, unknown]), "r.json")])
    root = ET.fromstring(doc)
    error, failure = root.find(".//error"), root.find(".//failure")
    assert error.get("message") == "target crashed\ufffd\ufffd[31m" and "segfault\ufffd" in error.text
    assert failure.get("type") == "unknown" and 'lost witness: {"conn": 0, "cseq": 7}' in failure.text
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "1")


def test_compare_json_and_bmf_and_github_action_benchmark():
    base, slow = str(COMPARE / "results_base.json"), str(COMPARE / "results_slow.json")
    runner = CliRunner()
    as_json = runner.invoke(main, ["compare", base, slow, "--json"])
    assert as_json.exit_code == 1  # the regression still fails the job
    doc = json.loads(as_json.stdout)
    assert doc["schema"] == "parbench.compare/1" and doc["regressions"] == 4
    assert {c["verdict"] for c in doc["comparisons"]} >= {"regression"}
    assert all(set(c) >= {"metric", "config", "median_baseline", "median_current", "change", "ci_low", "ci_high"}
               for c in doc["comparisons"])

    bmf = json.loads(runner.invoke(main, ["compare", base, slow, "--format", "bmf"]).stdout)
    current = load_samples(slow)
    assert set(bmf) == {f"{current.scenario}/{config}" for config in current.configs}
    for bench, measures in bmf.items():
        for metric, entry in measures.items():
            assert set(entry) <= {"value", "lower_value", "upper_value"}
            values = current.samples[(metric, bench.split("/", 1)[1])]
            assert entry["value"] == pytest.approx(float(np.median(values)))
            if len(values) > 1:
                assert entry["lower_value"] <= entry["value"] <= entry["upper_value"]
                assert (entry["lower_value"], entry["upper_value"]) == pytest.approx(bootstrap_median_ci(values))

    bigger = json.loads(runner.invoke(main, ["compare", base, slow, "--format", "customBiggerIsBetter"]).stdout)
    smaller = json.loads(runner.invoke(main, ["compare", base, slow, "--format", "customSmallerIsBetter"]).stdout)
    assert bigger and all(e["name"].endswith(" throughput_msgs_per_s") and e["unit"] == "msg/s" for e in bigger)
    assert smaller and not any("throughput" in e["name"] for e in smaller)
    for entry in bigger + smaller:
        assert set(entry) <= {"name", "unit", "value", "range", "extra"} and isinstance(entry["value"], float)
    p4 = next(e for e in bigger if e["name"] == "chatty/reference p=4 throughput_msgs_per_s")
    assert p4["extra"].endswith("vs baseline -19.2%: regression") and p4["range"].startswith("± ")
    clash = runner.invoke(main, ["compare", base, slow, "--json", "--format", "bmf"])
    assert clash.exit_code == 2 and "--json: not with --format bmf" in clash.output


def test_bootstrap_median_interval_covers_the_median():
    rng = np.random.default_rng(1)
    values = rng.normal(100.0, 3.0, 10)
    low, high = bootstrap_median_ci(values, 0.9)
    assert low < float(np.median(values)) < high and high - low < 10
    assert bootstrap_median_ci(values, 0.9) == (low, high)  # seeded


def test_place_json():
    result = CliRunner().invoke(main, ["place", "-n", "4", "--json", "web-01", "web-10", "web-02", "db"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [v["partition"] for v in doc["values"]] == [g_str_hash(h.encode()) % 4
                                                       for h in ("web-01", "web-10", "web-02", "db")]
    assert sum(row["load"] for row in doc["table"]) == 4 and doc["imbalance"] == pytest.approx(2.0)
    assert doc["key_kind"] == "single" and doc["profile"] == "axosyslog-4.26"
    bypass = json.loads(CliRunner().invoke(main, ["place", "-n", "0", "--json", "a"]).stdout)
    assert bypass["partitions"] == 0 and bypass["values"] == [{"value": "a", "partition": None}]


@pytest.mark.parametrize("args", [["run", "x.toml", "--profile", "nope"], ["place", "-n", "2", "--profile", "nope"],
                                  ["serve", "-f", "x.conf", "--profile", "nope"],
                                  ["config-check", "x.conf", "--profile", "nope"]])
def test_profile_is_a_choice_everywhere_with_a_one_line_error(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "'nope' is not one of 'axosyslog-4.26', 'syslog-ng-4.8'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_shell_completion_as_documented():
    """docs/ci.md: `_PARBENCH_COMPLETE=bash_source parbench` prints the
    script; completion knows the subcommands and the Choices."""
    import os
    import subprocess

    PARBENCH = str(Path(sys.executable).parent / "parbench")  # the installed command, as a shell runs it

    def complete(words: str, cword: int) -> list[str]:
        env = dict(os.environ, COMP_WORDS=words, COMP_CWORD=str(cword), _PARBENCH_COMPLETE="bash_complete")
        out = subprocess.run([PARBENCH], env=env, capture_output=True, text=True, timeout=60)
        return [line.split(",", 1)[1] for line in out.stdout.splitlines()]

    env = dict(os.environ, _PARBENCH_COMPLETE="bash_source")
    script = subprocess.run([PARBENCH], env=env, capture_output=True, text=True, timeout=60)
    assert "complete -o nosort -F" in script.stdout
    assert complete("parbench se", 1) == ["serve", "send"]
    assert complete("parbench run x --profile ", 4) == ["axosyslog-4.26", "syslog-ng-4.8"]
    assert complete("parbench compare a b --format ", 5) == ["table", "json", "bmf", "customBiggerIsBetter",
                                                            "customSmallerIsBetter"]
