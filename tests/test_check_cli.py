import json

import pytest
from click.testing import CliRunner

from parbench.harness.scenario import load_scenario
from parbench.harness.workload import build_plan, render_connection
from parbench.cli import main

SCENARIO = """
name = "tiny"
[workload]
connections = 2
messages_per_connection = 300
keys = 5
seed = 11
[pipeline]
partition_key = "$HOST"
[sweep]
partitions = [1, 4]
[expect]
ordering = "per-key"
"""


@pytest.fixture()
def scenario(tmp_path):
    p = tmp_path / "tiny.toml"
    p.write_text(SCENARIO)
    return p


def lines(scenario_path, conn, start=0, count=None, prefix=b""):
    plan = build_plan(load_scenario(scenario_path).workload)
    return [prefix + bytes(r) for r in render_connection(plan, conn, start, count, send_ns=1)]


def invoke(*args):
    return CliRunner().invoke(main, ["check", *map(str, args)])


def test_faithful_capture_passes(tmp_path, scenario):
    cap = tmp_path / "out.log"
    # as a syslog-ng file destination writes it: its own header, then the original MSG
    cap.write_bytes(b"".join(lines(scenario, 1, prefix=b"Nov 26 12:00:00 h p: ") + lines(scenario, 0)))
    r = invoke(cap, "--scenario", scenario, "--partitions", "4")
    assert r.exit_code == 0, r.output
    assert "PASS" in r.output and "anomalies: lost 0, duplicated 0, unexpected 0, malformed 0" in r.output
    assert "predicted messages per partition (g_str_hash % 4)" in r.output


def test_broken_capture_exits_1_with_the_witness(tmp_path, scenario):
    a = lines(scenario, 0)
    del a[42]
    cap = tmp_path / "out.log"
    cap.write_bytes(b"".join(a + lines(scenario, 1)))
    r = invoke(cap, "--scenario", scenario)
    assert r.exit_code == 1
    assert "lost: conn=0, cseq=42" in r.output and "FAIL" in r.output
    assert "  - lost: 1 message sent, never received (first: conn=0, cseq=42," in r.stdout
    assert r.stderr == "parbench check: verdict fail: lost\n"


def test_json_output_and_ordering_override(tmp_path, scenario):
    a = lines(scenario, 0)
    cap = tmp_path / "out.log"
    cap.write_bytes(b"".join(a[::-1] + lines(scenario, 1)))
    r = invoke(cap, "--scenario", scenario, "--json")
    assert r.exit_code == 1
    d = json.loads(r.stdout)
    assert d["verdict"] == "fail" and d["checks"]["anomalies"]["nonmonotonic-per-key"]["count"] > 0
    assert d["expectation"]["prohibited"][-1] == "nonmonotonic-per-key"
    assert len(d["verdict_reasons"]) == 1 and d["verdict_reasons"][0].startswith("nonmonotonic-per-key: ")
    assert invoke(cap, "--scenario", scenario, "--ordering", "none").exit_code == 0


def test_partition_prediction_is_the_runs(tmp_path, scenario):
    """`check --partitions` predicts the balance as a run does (one function)."""
    from parbench.harness.balance import key_counts, predicted_partitions

    rows = lines(scenario, 0) + lines(scenario, 1)
    cap = tmp_path / "out.log"
    cap.write_bytes(b"".join(rows))
    r = invoke(cap, "--scenario", scenario, "--partitions", "4", "--json")
    assert r.exit_code == 0, r.output
    sc = load_scenario(scenario)
    plan = build_plan(sc.workload)
    expected = predicted_partitions(sc, 4, key_counts(plan.key_flat, len(plan.key_names)))
    assert json.loads(r.stdout)["partition_predicted"] == expected and sum(expected) == 600


def test_sent_per_connection_for_a_partial_capture(tmp_path, scenario):
    cap = tmp_path / "out.log"
    cap.write_bytes(b"".join(lines(scenario, 0, 0, 100) + lines(scenario, 1, 0, 100)))
    assert invoke(cap, "--scenario", scenario).exit_code == 1
    assert invoke(cap, "--scenario", scenario, "--sent-per-connection", "100").exit_code == 0
    r = invoke(cap, "--scenario", scenario, "--sent-per-connection", "1000")
    assert r.exit_code == 2 and "expected at most 300" in r.output


def test_duration_scenario_infers_what_was_sent(tmp_path):
    sc = tmp_path / "d.toml"
    sc.write_text("[workload]\nduration_s = 1.0\nrate_per_connection = 100\nkeys = 3\n"
                  "[pipeline]\npartition_key = '$HOST'\n")
    plan = build_plan(load_scenario(sc).workload)
    rows = [bytes(r) for r in render_connection(plan, 0, 0, 60)]
    cap = tmp_path / "out.log"
    cap.write_bytes(b"".join(rows))
    assert invoke(cap, "--scenario", sc).exit_code == 0
    del rows[10]
    cap.write_bytes(b"".join(rows))
    r = invoke(cap, "--scenario", sc)
    assert r.exit_code == 1 and "cseq=10" in r.output


def test_bad_input_exits_2_with_one_line(tmp_path, scenario):
    bad = tmp_path / "bad.toml"
    bad.write_text("[workload]\nmessages_per_connection = 1\nconections = 2\n")
    cap = tmp_path / "out.log"
    cap.write_bytes(b"")
    r = invoke(cap, "--scenario", bad)
    assert r.exit_code == 2
    assert r.output.strip() == (f"parbench check: {bad}: workload.conections: unknown key; "
                                "did you mean 'connections'?")
    r = invoke(tmp_path / "missing.log", "--scenario", scenario)
    assert r.exit_code == 2 and "missing.log: cannot read" in r.output and "Traceback" not in r.output
    assert invoke(cap, "--scenario", scenario, "--partitions", "99").exit_code == 2


def test_capture_from_standard_input(scenario):
    data = b"".join(lines(scenario, 0) + lines(scenario, 1))
    r = CliRunner().invoke(main, ["check", "-", "--scenario", str(scenario)], input=data)
    assert r.exit_code == 0, r.output
    assert "600 parbench lines" in r.output
