"""The pytest plugin (entry point pytest11 `parbench`): its fixtures run
scenarios and check captures inside someone else's pytest suite, a broken
expectation fails that test with its witness, its options follow
axosyslog-light's and coexist with it, and the shipped example passes."""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "test_with_parbench.py"
RELAY = REPO / "tests" / "fixtures" / "relay.py"
TINY = """
name = "tiny"
[workload]
connections = 2
messages_per_connection = 300
keys = 5
seed = 11
[pipeline]
partition_key = "$HOST"
[sweep]
partitions = [2]
repeats = 1
[expect]
ordering = "per-key"
"""


def test_the_plugin_is_registered_for_pytest():
    found = [e for e in entry_points(group="pytest11") if e.name == "parbench"]
    assert [e.value for e in found] == ["parbench.harness.pytest_plugin"]


def test_shipped_example_passes_with_the_installed_plugin():
    """`pytest examples/test_with_parbench.py` from the repository."""
    proc = subprocess.run([sys.executable, "-m", "pytest", str(EXAMPLE.relative_to(REPO)), "-q", "-p",
                           "no:cacheprovider"], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout


def test_planted_failure_shows_its_witness(pytester):
    """A capture missing one message: the test fails, and the assertion
    message names the lost message (connection, sequence number)."""
    pytester.makefile(".toml", tiny=TINY)
    pytester.makepyfile(test_planted="""
        from parbench.harness.scenario import load_scenario
        from parbench.harness.workload import build_plan, render_connection

        def test_lossy_capture(parbench_check):
            scenario = load_scenario("tiny.toml")
            plan = build_plan(scenario.workload)
            lines = [bytes(r) for c in range(2) for r in render_connection(plan, c, send_ns=1)]
            del lines[42]
            parbench_check(b"".join(lines), scenario)

        def test_must_pass_false_returns_the_result(parbench_check):
            scenario = load_scenario("tiny.toml")
            plan = build_plan(scenario.workload)
            lines = [bytes(r) for c in range(2) for r in render_connection(plan, c, send_ns=1)]
            checked = parbench_check(b"".join(lines[:-1]), scenario, must_pass=False)
            assert checked.verdict()[0] == "fail" and checked.result.count("lost") == 1
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*ParbenchExpectationFailed: parbench: capture verdict fail (scenario tiny; expected ordering 'per-key'*",
        "*- lost: 1 message sent, never received (first: conn=0, cseq=42,*",
        "*lost: conn=0, cseq=42, key=*",
    ])


def test_parbench_run_returns_results_and_a_lossy_implementation_fails_with_the_witness(pytester):
    pytester.makefile(".toml", tiny=TINY)
    relay = f"command:{sys.executable} {RELAY} --listen {{in_port}} --forward {{out_port}}"
    pytester.makepyfile(test_runs=f"""
        RELAY = {relay!r}

        def test_correct_relay(parbench_run):
            results = parbench_run("tiny.toml", impl=RELAY, partitions=[2])
            assert [r.verdict for r in results.runs] == ["pass"]
            assert results.scenario.name == "tiny" and results.runs[0].received == 600

        def test_lossy_relay(parbench_run):
            parbench_run("tiny.toml", impl=RELAY + " --drop-one", partitions=2)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--parbench-reports", str(pytester.path / "reports"))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*parbench: scenario tiny: 1 of 1 runs did not pass (expected ordering 'per-key', loss not allowed)",
        "*partitions=2 repeat=0: fail",
        "*- lost: 1 message sent, never received (first: conn=*",
        "*lost: conn=*, cseq=*",
        "*results: */reports/tiny/*/results.json (report.md beside it)",
    ])
    assert len(list((pytester.path / "reports" / "tiny").glob("*/report.md"))) == 2


def test_impl_fixture_starts_the_default_implementation_and_stops_it(pytester, monkeypatch):
    pytester.makefile(".toml", tiny=TINY)
    relay = f"command:{sys.executable} {RELAY} --listen {{in_port}} --forward {{out_port}}"
    pytester.makepyfile(test_impl="""
        import os

        def test_start_send_stop_check(parbench_impl, parbench_check):
            running = parbench_impl.start("tiny.toml", partitions=2)
            assert running.spec.startswith("command:")  # from --parbench-impl
            running.send()
            checked = parbench_check(running.stop(), running.scenario, sent=running.sent)
            assert checked.result.stats["received"] == 600

        def test_left_running_is_stopped_at_teardown(parbench_impl):
            running = parbench_impl.start("tiny.toml", partitions=2)
            pid_file = os.environ["PID_FILE"]
            open(pid_file, "w").write(str(running.target._process.proc.pid))
    """)
    pid_file = pytester.path / "pid"
    monkeypatch.setenv("PID_FILE", str(pid_file))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--parbench-impl", relay)
    result.assert_outcomes(passed=2)
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_installdir_must_hold_a_build(pytester):
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess("--installdir", str(pytester.path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--installdir *: no sbin/syslog-ng there*"])
    (pytester.path / "sbin").mkdir()
    (pytester.path / "sbin" / "syslog-ng").write_text("")
    pytester.makepyfile(test_x="""
        def test_default_impl(request):
            from parbench.harness.pytest_plugin import Settings
            settings = Settings.of(request.config)
            assert settings.default_impls(None) == ["syslog-ng:" + str(request.config.rootpath)]
    """)
    pytester.runpytest_subprocess("--installdir", str(pytester.path)).assert_outcomes(passed=1)


def test_coexists_with_axosyslog_light_owning_installdir(pytester):
    """axosyslog-light adds --installdir itself: with it installed, both
    plugins load and the parbench fixtures read light's option."""
    light = pytester.mkpydir("axosyslog_light")
    (light / "fixtures.py").write_text(
        "def pytest_addoption(parser):\n"
        "    parser.addoption('--installdir')\n"
        "    parser.addoption('--reports')\n")
    pytester.makeconftest("pytest_plugins = ['axosyslog_light.fixtures']")
    (pytester.path / "sbin").mkdir()
    (pytester.path / "sbin" / "syslog-ng").write_text("")
    pytester.makepyfile(test_light="""
        def test_reads_lights_option(request):
            from parbench.harness.pytest_plugin import Settings
            assert Settings.of(request.config).installdir == str(request.config.rootpath)
    """)
    result = pytester.runpytest_subprocess("--installdir", str(pytester.path), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_help_lists_the_options(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*parbench: syslog-ng parallelize() checks*", "*--installdir=DIR*",
                                 "*--parbench-impl=*", "*--parbench-quick*"])


def test_plugin_module_imports_nothing_of_parbench():
    """A pytest session that uses no parbench fixture (parbench's own test
    run included) pays only for this module."""
    code = ("import sys; import parbench.harness.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.startswith('parbench.') and m not in "
            "('parbench.harness', 'parbench.harness.pytest_plugin')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
