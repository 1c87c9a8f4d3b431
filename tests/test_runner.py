"""The sweep runner against the relay fixture as a `command` target: a correct
relay passes, each broken variant fails with exactly its anomaly, errors stay
inside their run, Ctrl-C stops cleanly."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from parbench.harness import metrics
from parbench.harness.balance import key_counts, predicted_partitions
from parbench.harness.runner import run_order, run_sweep
from parbench.harness.scenario import Expectation, Pipeline, Scenario, Sweep, Workload
from parbench.harness.targets.registry import get_target

RELAY = Path(__file__).parent / "fixtures" / "relay.py"
ANOMALIES = ("lost", "duplicated", "unexpected", "malformed", "nonmonotonic-per-key", "nonmonotonic-per-connection")


def relay_impl(*flags: str) -> str:
    return f"command:{sys.executable} {RELAY} --listen {{in_port}} --forward {{out_port}} " + " ".join(flags)


def scenario(ordering="per-key", connections=2, messages=300, keys=("web-01", "web-02", "db-1", "db-2")):
    return Scenario(
        name="relay-test", path="relay-test.toml", description="",
        workload=Workload(connections=connections, messages_per_connection=messages, keys=keys, seed=7),
        pipeline=Pipeline(partition_key="$HOST"),
        sweep=Sweep(partitions=(0,), repeats=1, warmup_s=0.0),
        expect=Expectation(ordering=ordering, loss_allowed=False),
    )


def test_runs_interleave_implementations_within_each_repeat_and_partition():
    # The runs of one (partitions, repeat) slot are adjacent; odd repeats
    # reverse the order, so neither side always runs first.
    assert run_order(["A", "B"], [1, 2], 3) == [
        ("A", 1, 0), ("B", 1, 0), ("A", 2, 0), ("B", 2, 0),
        ("B", 1, 1), ("A", 1, 1), ("B", 2, 1), ("A", 2, 1),
        ("A", 1, 2), ("B", 1, 2), ("A", 2, 2), ("B", 2, 2),
    ]


def test_correct_relay_passes_with_metrics(tmp_path):
    outcome = run_sweep(scenario(), [relay_impl()], show_progress=False, workroot=tmp_path, idle_s=1.0)
    (run,) = outcome.runs
    assert run.error is None, run.error
    assert run.verdict == "pass", run.verdict_reasons
    assert run.sent == run.received == 600
    assert {name: a.count for name, a in run.checks.anomalies.items()} == dict.fromkeys(ANOMALIES, 0)
    assert run.throughput_msgs_per_s > 0
    assert 0 <= run.latency_ms["p50"] <= run.latency_ms["p99"] <= run.latency_ms["max"]
    assert run.cpu_seconds > 0 and run.peak_rss_bytes > 0
    assert list(tmp_path.iterdir()) == []  # work dir removed after a clean sweep


@pytest.mark.parametrize("flag, anomaly", [
    ("--drop-one", "lost"),
    ("--duplicate-one", "duplicated"),
    ("--swap-one", "nonmonotonic-per-key"),
])
def test_each_broken_relay_fails_with_exactly_its_anomaly(tmp_path, flag, anomaly):
    outcome = run_sweep(scenario(connections=1), [relay_impl(flag)], show_progress=False,
                        workroot=tmp_path, idle_s=1.0)
    (run,) = outcome.runs
    assert run.error is None, run.error
    assert run.verdict == "fail"
    counts = {name: run.checks.count(name) for name in run.expectation.prohibited}
    assert counts[anomaly] == 1, counts
    assert sum(counts.values()) == 1, counts
    assert len(run.verdict_reasons) == 1 and run.verdict_reasons[0].startswith(f"{anomaly}: 1 ")
    assert run.checks.anomalies[anomaly].witnesses


def test_swap_across_connections_only_is_no_per_key_failure(tmp_path):
    """--swap-one swaps two messages of one (connection, key): under
    expectation 'none' the same output passes (order is not promised)."""
    outcome = run_sweep(scenario(ordering="none", connections=1), [relay_impl("--swap-one")],
                        show_progress=False, workroot=tmp_path, idle_s=1.0)
    (run,) = outcome.runs
    assert run.verdict == "pass", run.verdict_reasons
    assert run.checks.count("nonmonotonic-per-key") == 1


def test_a_failing_target_is_that_runs_error_and_the_sweep_goes_on(tmp_path):
    broken = f"command:{sys.executable} -c \"import sys; sys.exit('cannot bind {{in_port}} for {{out_port}}')\""
    outcome = run_sweep(scenario(messages=50), [broken, relay_impl()], show_progress=False,
                        workroot=tmp_path, idle_s=1.0)
    first, second = outcome.runs
    assert first.verdict == "fail" and "cannot bind" in first.error
    assert first.verdict_reasons[0].startswith("error: ")
    assert first.checks is None
    assert any("work files kept in" in n for n in first.target_notes)
    assert second.verdict == "pass" and second.error is None


def test_ctrl_c_stops_the_target_and_keeps_finished_runs(tmp_path):
    started = []

    class InterruptedOnSecondStart:
        def __init__(self, spec, **kw):
            self.inner = get_target(spec)
            self.name = spec

        def start(self, *a, **kw):
            result = self.inner.start(*a, **kw)
            started.append(self.inner)
            if len(started) == 2:
                raise KeyboardInterrupt
            return result

        def stop(self, timeout=15.0):
            return self.inner.stop(timeout)

    outcome = run_sweep(scenario(messages=50), [relay_impl()], [0, 1, 2], show_progress=False,
                        workroot=tmp_path, idle_s=1.0, target_factory=InterruptedOnSecondStart)
    assert outcome.interrupted
    assert len(outcome.runs) == 1 and outcome.runs[0].verdict == "pass"
    pid = started[1]._process.proc.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_predicted_partitions_follow_g_str_hash_for_the_key_field():
    from parbench.reference.partition import g_str_hash

    sc = scenario()
    counts = np.array([10, 20, 30, 40])
    predicted = predicted_partitions(sc, 2, counts)
    expected = [0, 0]
    for name, n in zip(sc.workload.keys, counts):
        expected[g_str_hash(name.encode()) % 2] += n
    assert predicted == expected and sum(predicted) == 100
    assert predicted_partitions(sc, 0, counts) is None
    from dataclasses import replace

    assert predicted_partitions(replace(sc, pipeline=Pipeline(partition_key=None)), 2, counts) is None
    assert predicted_partitions(replace(sc, pipeline=Pipeline(partition_key="$PROGRAM")), 2, counts) is None
    assert predicted_partitions(replace(sc, pipeline=Pipeline(partition_key="${HOST}")), 2, counts) == expected
    # a template with more than the key field renders other bytes: no prediction from key names
    assert predicted_partitions(replace(sc, pipeline=Pipeline(partition_key=" $HOST")), 2, counts) is None
    assert predicted_partitions(replace(sc, pipeline=Pipeline(partition_key="$HOST-$PROGRAM")), 2, counts) is None


def test_throughput_window_excludes_warmup_and_uses_first_to_last_receive():
    sent = np.array([0, 1, 2, 3, 4], dtype=np.int64) * 1_000_000_000
    recv = sent + 500_000_000
    tp = metrics.throughput(sent, recv, warmup_s=2.0)
    assert tp.warmup_applied and tp.messages == 3
    assert tp.msgs_per_s == pytest.approx(2 / 2.0)
    short = metrics.throughput(sent[:2], recv[:2], warmup_s=10.0)
    assert not short.warmup_applied and short.msgs_per_s == pytest.approx(1.0)
    lat = metrics.latency_ms(sent, recv + np.array([0, 0, 0, 0, 1_000_000]))
    assert lat["p50"] == pytest.approx(500.0) and lat["max"] == pytest.approx(501.0)


def test_warmup_never_excludes_more_than_half_of_the_messages():
    # A sender that pushed everything within the warm-up (200 messages in
    # 0.2 s, delivered over 2 s) plus 3 stragglers sent at 0.6 s and received
    # at 10 s: without the cap only the stragglers would be measured.
    sent = np.concatenate([np.linspace(0, 0.2e9, 200), np.full(3, 0.6e9)]).astype(np.int64)
    recv = np.concatenate([np.linspace(0.1e9, 2.0e9, 200), np.full(3, 10e9)]).astype(np.int64)
    tp = metrics.throughput(sent, recv, warmup_s=0.5)
    assert tp.warmup_applied
    assert tp.messages >= len(sent) // 2
    lat = metrics.latency_ms(sent, recv, warmup_s=0.5)
    assert lat["p50"] < 2000  # the bulk, not the stragglers' 9.4 s


def test_sigint_to_parbench_run_writes_partial_results_and_leaves_no_process(tmp_path):
    """A real Ctrl-C (SIGINT to the process group of `parbench run`) in the
    middle of a rate-limited run: exit 130, results.json marked interrupted,
    the target process gone."""
    import shutil
    import signal
    import subprocess
    import time

    from parbench.harness.results import Results

    relay = tmp_path / "relay_sigint_marker.py"
    shutil.copy(RELAY, relay)
    scenario_file = tmp_path / "slow.toml"
    scenario_file.write_text(
        'name = "sigint-demo"\n[workload]\nconnections = 1\nmessages_per_connection = 100000\n'
        'rate_per_connection = 2000\nkeys = ["a", "b"]\n[pipeline]\npartition_key = "$HOST"\n'
        '[sweep]\npartitions = [0, 1]\nrepeats = 1\n[expect]\nordering = "per-key"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "parbench", "run", str(scenario_file), "--no-progress", "--out", str(tmp_path / "r"),
         "--impl", f"command:{sys.executable} {relay} --listen {{in_port}} --forward {{out_port}}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        # The relay's path is in parbench's own argv too: look for others.
        while not _processes_running(str(relay), proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_running(str(relay), proc.pid), "relay never started"
        time.sleep(0.5)  # in the middle of sending
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err.decode()
    assert b"interrupted" in err
    (results,) = (tmp_path / "r" / "sigint-demo").glob("*/results.json")
    loaded = Results.load(results)
    assert loaded.interrupted is True and loaded.runs == []
    assert not _processes_running(str(relay))


def _processes_running(marker: str, exclude: int = -1) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == exclude:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if marker.encode() in fh.read():
                    found.append(int(entry))
        except OSError:
            pass
    return found


def test_duration_bound_workload_expects_exactly_what_was_sent(tmp_path):
    from dataclasses import replace

    sc = scenario(connections=2)
    sc = replace(sc, workload=replace(sc.workload, messages_per_connection=None, duration_s=0.5,
                                      rate_per_connection=400.0))
    outcome = run_sweep(sc, [relay_impl()], show_progress=False, workroot=tmp_path, idle_s=1.0)
    (run,) = outcome.runs
    assert run.verdict == "pass", (run.error, run.verdict_reasons)
    assert 0 < run.sent <= 2 * 400 and run.received == run.sent
    assert run.checks.count("lost") == 0


# --- garbled key indices, collector failures ----------------------------------

GARBLED_KEY_SCRIPT = r"""
import json, resource, sys, time
# 2 GiB of address space: a bincount over a key index near 2**32 (34 GB of
# counters) cannot allocate here, everything the evaluation needs can.
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
import numpy as np
from parbench.harness.collector import Capture
from parbench.harness.results import Run
from parbench.harness.runner import _evaluate
from parbench.harness.scenario import Expectation, Pipeline, Scenario, Sweep, Workload
from parbench.harness.wire import KEY
from parbench.harness.workload import SendResult, build_plan, render_connection

keys = ("web-01", "web-02", "db-1", "db-2")
sc = Scenario(name="garbled", path="garbled.toml", description="",
              workload=Workload(connections=1, messages_per_connection=200, keys=keys, seed=7),
              pipeline=Pipeline(partition_key="$HOST"), sweep=Sweep(partitions=(2,), repeats=1),
              expect=Expectation(ordering="per-key"))
plan = build_plan(sc.workload)
now = time.time_ns()
rows = render_connection(plan, 0, send_ns=now)
t = plan.trailer_at
rows[5, t + KEY.start:t + KEY.stop] = np.frombuffer(b"fffffff0", np.uint8)
capture = Capture.from_bytes(rows.tobytes(), recv_ns=now + 1000)
sent = plan.messages_per_connection.astype(np.int64)
result = SendResult(sent=sent, planned=sent.copy(), t_first_ns=now, t_last_ns=now)
run = Run("x", 2, 0, expectation=sc.expect)
_evaluate(run, sc, plan, capture, result, 2)
json.dump(run.to_json(), sys.stdout)
"""


def test_a_garbled_key_index_is_unexpected_not_gigabytes_of_counters(tmp_path):
    """One output line whose key field reads 0xfffffff0: the run is evaluated
    within 2 GiB of address space, the line is unexpected (its message lost),
    and the partition prediction counts only the well-keyed messages."""
    import json
    import subprocess

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", GARBLED_KEY_SCRIPT], cwd=Path(__file__).parents[1],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    anomalies = out["checks"]["anomalies"]
    assert anomalies["unexpected"]["count"] == 1 and anomalies["lost"]["count"] == 1
    (witness,) = anomalies["unexpected"]["witnesses"]
    assert witness["key"] == 0xfffffff0 and witness["cseq"] == 5
    assert out["verdict"] == "fail" and any(r.startswith("unexpected: 1 ") for r in out["verdict_reasons"])
    assert sum(out["partition_predicted"]) == 199


def test_key_counts_ignore_out_of_range_indices():
    keys = np.array([0, 1, 1, 3, 0xfffffff0, 4], dtype=np.uint32)
    assert key_counts(keys, 4).tolist() == [1, 2, 0, 1]
    assert key_counts(np.array([], dtype=np.uint32), 3).tolist() == [0, 0, 0]


def _patched_collector(monkeypatch, **overrides):
    """harness.collector.Collector, as run_once creates it, with methods replaced."""
    import parbench.harness.collector as collector_module

    base = collector_module.Collector
    compact_bytes = overrides.pop("compact_bytes", None)

    class Faulty(base):
        def __init__(self, *a, **kw):
            if compact_bytes is not None:
                kw["compact_bytes"] = compact_bytes
            super().__init__(*a, **kw)

    for name, fn in overrides.items():
        setattr(Faulty, name, fn)
    import parbench.harness.runner as runner_module

    monkeypatch.setattr(runner_module, "Collector", Faulty)


def test_a_collector_that_lost_output_makes_the_verdict_unknown_and_says_so(tmp_path, monkeypatch):
    """The collector's receive loop dies after its first read: the verdict is
    "unknown", not "fail" (the lost messages are the collector's, not the
    target's), the run's error names the collector (so it is no sample for
    compare), and the failure is in the run's notes."""
    import parbench.harness.collector as collector_module

    real_read = collector_module.Collector._read
    reads = []

    def read_then_break(self, c):
        reads.append(1)
        if len(reads) > 1:
            raise RuntimeError("simulated receive failure")
        return real_read(self, c)

    _patched_collector(monkeypatch, _read=read_then_break)
    outcome = run_sweep(scenario(), [relay_impl()], show_progress=False, workroot=tmp_path, idle_s=1.0)
    (run,) = outcome.runs
    # the messages the collector never read are lost to the checks, but not
    # proof against the target: the verdict is unknown, not fail
    assert run.checks.count("lost") > 0
    assert run.verdict == "unknown", run.verdict_reasons
    assert run.error.startswith("the collector lost output") and "simulated receive failure" in run.error
    assert any(n.startswith("collector: collector failed: RuntimeError") for n in run.target_notes)
    assert run.verdict_reasons[0].startswith("capture incomplete, so missing messages may be the collector's: "
                                             "collector failed: RuntimeError")
    assert run.verdict_reasons[1].startswith("lost: ")


def test_a_collector_error_without_data_loss_is_a_note_and_the_run_passes(tmp_path, monkeypatch):
    """Parsing while receiving fails: the collector keeps the raw bytes, so
    nothing is lost; the run passes and its notes say what happened."""
    def broken_compact(self, c):
        raise ValueError("simulated parse failure")

    _patched_collector(monkeypatch, compact_bytes=4096, _compact=broken_compact)
    outcome = run_sweep(scenario(), [relay_impl()], show_progress=False, workroot=tmp_path, idle_s=1.0)
    (run,) = outcome.runs
    assert run.error is None and run.verdict == "pass", (run.error, run.verdict_reasons)
    assert run.received == run.sent == 600
    assert any("compacting a stream failed, kept raw" in n and "simulated parse failure" in n
               for n in run.target_notes)


def test_syslog_ng_option_points_the_syslog_ng_implementation_at_a_path(tmp_path):
    from click.testing import CliRunner

    from parbench.harness.cli import with_syslog_ng_path
    from parbench.cli import main

    assert with_syslog_ng_path(["reference", "syslog-ng"], "/opt/axo/sbin/syslog-ng") == [
        "reference", "syslog-ng:/opt/axo/sbin/syslog-ng"]
    assert with_syslog_ng_path(["reference"], None) == ["reference"]
    with pytest.raises(ValueError, match="add --impl syslog-ng"):
        with_syslog_ng_path(["reference"], "/x")
    scenario = Path(__file__).resolve().parents[1] / "scenarios" / "vs-syslog-ng-one-connection.toml"
    missing = tmp_path / "no-such-syslog-ng"
    result = CliRunner().invoke(main, ["run", str(scenario), "--quick", "--syslog-ng", str(missing),
                                       "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "no-such-syslog-ng" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "vs-syslog-ng-one-connection").exists()  # failed before any run
