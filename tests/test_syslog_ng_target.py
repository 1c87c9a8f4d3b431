"""The syslog-ng target: config rendering, counter parsing, and a real run of
syslog-ng 4.8 with parallelize() checked for exactly-once and per-host order."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from syslog_ng_required import skip_unless_required
from loopback import LoopbackListener

from parbench.harness.syslog_ng.installation import find_syslog_ng
from parbench.harness.scenario import Expectation, Pipeline, Scenario, Sweep, Workload
from parbench.harness.targets.base import TargetError, TargetPlan, TargetUnavailable
from parbench.harness.syslog_ng.target import (
    NO_PARTITION_COUNTERS_NOTE,
    SyslogNgTarget,
    parse_prometheus_partitions,
    parse_stats_csv,
    render_syslog_ng_config,
)

HOSTS = tuple(f"host-{i}" for i in range(8))


def scenario(partition_key: str | None = "$HOST", fmt: str = "rfc3164", size: int = 256,
             flow_control: bool = True, name: str = "syslog-ng-target-test") -> Scenario:
    return Scenario(
        name=name, path="<test>", description="",
        workload=Workload(connections=1, messages_per_connection=1000, message_size=size, format=fmt,
                          keys=HOSTS),
        pipeline=Pipeline(partition_key=partition_key, flow_control=flow_control),
        sweep=Sweep(), expect=Expectation(ordering="per-key" if partition_key else "none"),
    )


# ---------------------------------------------------------------- rendering


def test_config_has_what_a_faithful_run_needs():
    text = render_syslog_ng_config(scenario(), 4, out_port=5001, in_port=5000, version="syslog-ng 4.8.1")
    assert text.startswith("@version: 4.8\noptions { time-reopen(1); };\n")
    for needed in ('ip("127.0.0.1")', "port(5000)", "keep-hostname(yes)", "use-dns(no)",
                   'partitions(4) partition-key("$HOST")', 'tcp("127.0.0.1" port(5001) template("$MSG\\n"))',
                   "flags(flow-control)"):
        assert needed in text, needed
    assert "syslog-protocol" not in text
    assert "stats(level(4))" not in text  # syslog-ng 4.8 has no per-partition metrics to enable


def test_config_for_rfc5424_axosyslog_and_big_messages():
    text = render_syslog_ng_config(scenario(fmt="rfc5424", size=100_000, flow_control=False), 0,
                                   out_port=5001, in_port=5000, version="axosyslog 4.26.0")
    assert text.startswith("@version: 4.26\noptions { time-reopen(1); log-msg-size(101024); stats(level(4)); };\n")
    assert "flags(syslog-protocol)" in text
    assert "parallelize(" not in text  # partitions 0: no parallelize() element at all
    assert "flow-control" not in text


@pytest.mark.syslog_ng
@pytest.mark.parametrize("variant, partitions", [
    (dict(), 4), (dict(partition_key=None), 16), (dict(fmt="rfc5424", size=100_000), 0),
    (dict(partition_key="${HOST}/$PROGRAM", flow_control=False), 1),
])
def test_real_syslog_ng_accepts_the_rendered_config(tmp_path, installed, variant, partitions):
    import subprocess

    conf = tmp_path / "syslog-ng.conf"
    conf.write_text(render_syslog_ng_config(scenario(**variant), partitions, 5001, 5000, installed.version))
    proc = subprocess.run([*installed.syslog_ng_argv(), "--syntax-only", "-f", str(conf)],
                          env=installed.full_env(), capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert "rror" not in proc.stderr, proc.stderr


def test_round_robin_config_has_no_partition_key():
    text = render_syslog_ng_config(scenario(partition_key=None), 2, 5001, 5000, "syslog-ng 4.8.1")
    assert "parallelize(partitions(2));" in text


def test_scenario_values_cannot_inject_config():
    hostile = '$HOST"); }; destination d_evil { file("/tmp/pwned"); }; log { source(s_parbench'
    text = render_syslog_ng_config(scenario(partition_key=hostile), 4, 5001, 5000, "syslog-ng 4.8.1")
    # the whole value stays one string literal, quotes escaped
    assert 'partition-key("$HOST\\"); }; destination d_evil { file(\\"/tmp/pwned\\"); }; log { source(s_parbench")' in text
    assert [line for line in text.splitlines() if line.startswith("destination ")] == ["destination d_parbench {"]


@pytest.mark.syslog_ng
def test_hostile_key_stays_a_template_for_the_real_syslog_ng(tmp_path, installed):
    """syslog-ng itself parses the config, runs it, and no injected file() destination exists."""
    pwned = tmp_path / "pwned"
    hostile = '$HOST"); }; destination d_evil { file("' + str(pwned) + '"); }; log { source(s_parbench); destination(d_evil); }; #'
    collector = LoopbackListener()
    target = SyslogNgTarget(install=installed)
    try:
        host, port = target.start(TargetPlan(scenario(partition_key=hostile), 4), collector.port,
                                  tmp_path / "work", timeout=30)
        payload, sent = rfc3164_lines(2)
        send_all(host, port, payload)
        collector.wait_lines(len(sent), timeout=30)
    finally:
        target.stop()
        collector.close()
    assert len(collector.lines()) == len(sent)
    assert not pwned.exists()


# ---------------------------------------------------------------- counters


def test_prometheus_partition_counters_are_summed_per_index():
    text = "\n".join([
        '# TYPE syslogng_parallelized_assigned_events_total counter',
        'syslogng_parallelized_assigned_events_total{log_path="0",partition_index="1"} 7',
        'syslogng_parallelized_assigned_events_total{log_path="0",partition_index="0"} 5',
        'syslogng_parallelized_processed_events_total{log_path="0",partition_index="0"} 5',
        'syslogng_parallelized_processed_events_total{log_path="0",partition_index="1"} 6',
        'syslogng_parallelized_processed_events_total{log_path="1",partition_index="1"} 1',
        'syslogng_output_events_total{id="d_parbench",result="delivered"} 12',
    ])
    assert parse_prometheus_partitions(text) == {"assigned": [5, 7], "processed": [5, 7]}


def test_no_partition_counters_is_none_not_zeros():
    assert parse_prometheus_partitions('syslogng_output_events_total{result="delivered"} 12\n') is None


def test_stats_csv():
    rows = parse_stats_csv("SourceName;SourceId;SourceInstance;State;Type;Number\n"
                           "dst.network;d_parbench#0;tcp,127.0.0.1:5001;a;dropped;3\n")
    assert rows == [{"SourceName": "dst.network", "SourceId": "d_parbench#0", "SourceInstance": "tcp,127.0.0.1:5001",
                     "State": "a", "Type": "dropped", "Number": "3"}]


# ---------------------------------------------------------------- selection


def test_missing_binary_is_one_clear_error(tmp_path):
    target = SyslogNgTarget(syslog_ng=tmp_path / "no-such-syslog-ng")
    with pytest.raises(TargetError) as info:
        target.start(TargetPlan(scenario(), 4), 5001, tmp_path / "work", timeout=5)
    assert "not runnable" in str(info.value) and "no-such-syslog-ng" in str(info.value)
    assert "\n" not in str(info.value)
    assert target.stop().notes == []  # stop after a failed start is safe


def test_impl_spec_with_a_missing_path_fails_before_any_run(tmp_path):
    from parbench.harness.targets.registry import get_target

    with pytest.raises(TargetUnavailable, match="no-such-syslog-ng") as info:
        get_target(f"syslog-ng:{tmp_path / 'no-such-syslog-ng'}")
    assert info.value.exit_code == 2  # the user can fix it: bad input, not a failed run


# ---------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def installed():
    found = find_syslog_ng()
    if found is None:
        skip_unless_required("no syslog-ng >= 4.3 installed here (run: parbench install syslog-ng)")
    return found


def rfc3164_lines(per_host: int) -> tuple[bytes, list[tuple[str, int]]]:
    """Hosts interleaved, each with its own sequence, as one connection sends them."""
    sent, out = [], []
    for seq in range(per_host):
        for host in HOSTS:
            sent.append((host, seq))
            out.append(f"<13>Nov 26 12:00:00 {host} app[42]: m {host} {seq}\n".encode())
    return b"".join(out), sent


def send_all(host: str, port: int, payload: bytes) -> None:
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(payload)


def test_order_checker_catches_a_swap():
    received = [b"m host-0 0", b"m host-1 0", b"m host-0 2", b"m host-0 1"]
    assert per_host_inversions(received) == {"host-0": 1}


def per_host_inversions(received: list[bytes]) -> dict[str, int]:
    last: dict[str, int] = {}
    inversions: dict[str, int] = {}
    for line in received:
        _, host, seq = line.decode().split()
        if int(seq) < last.get(host, -1):
            inversions[host] = inversions.get(host, 0) + 1
        last[host] = max(int(seq), last.get(host, -1))
    return inversions


@pytest.mark.syslog_ng
@pytest.mark.parametrize("partitions", [4])
def test_keyed_partitions_deliver_exactly_once_in_per_host_order(tmp_path, installed, partitions):
    per_host = 500
    payload, sent = rfc3164_lines(per_host)
    collector = LoopbackListener()
    target = SyslogNgTarget(install=installed)
    try:
        host, port = target.start(TargetPlan(scenario(), partitions), collector.port, tmp_path, timeout=30)
        assert host == "127.0.0.1"
        send_all(host, port, payload)
        collector.wait_lines(len(sent), timeout=60)
    finally:
        report = target.stop()
        collector.close()
    received = collector.lines()
    expected = sorted(f"m {h} {s}".encode() for h, s in sent)
    assert sorted(received) == expected, report.stderr_tail  # each exactly once, nothing else
    assert per_host_inversions(received) == {}
    assert report.version == installed.version
    assert report.exit_code == 0
    if installed.version.startswith("syslog-ng"):
        assert NO_PARTITION_COUNTERS_NOTE in report.notes
        assert report.partition_processed is None
    assert (tmp_path / "syslog-ng.conf").read_text().count("partitions(4)") == 1
    assert report.cpu_seconds is not None and report.cpu_seconds > 0


@pytest.mark.syslog_ng
def test_taken_port_is_retried_with_another(tmp_path, installed, monkeypatch):
    """A port some other process listens on must not count as syslog-ng being ready."""
    import parbench.harness.syslog_ng.target as module

    squatter = socket.create_server(("127.0.0.1", 0))
    ports = [squatter.getsockname()[1]]
    real_free_port = module.free_loopback_port
    monkeypatch.setattr(module, "free_loopback_port", lambda: ports.pop() if ports else real_free_port())
    collector = LoopbackListener()
    target = SyslogNgTarget(install=installed)
    try:
        host, port = target.start(TargetPlan(scenario(), 2), collector.port, tmp_path, timeout=30)
        assert port != squatter.getsockname()[1]
        payload, sent = rfc3164_lines(10)
        send_all(host, port, payload)
        collector.wait_lines(len(sent), timeout=30)
    finally:
        report = target.stop()
        collector.close()
        squatter.close()
    assert len(collector.lines()) == len(sent)
    assert any("retried with another" in note for note in report.notes)


@pytest.mark.syslog_ng
def test_bad_config_fails_with_the_stderr_tail(tmp_path, installed):
    target = SyslogNgTarget(install=installed)
    collector = LoopbackListener()
    try:
        with pytest.raises(TargetError) as info:
            target.start(TargetPlan(scenario(partition_key="$(no-such-template-function $HOST)"), 4),
                         collector.port, tmp_path, timeout=30)
    finally:
        target.stop()
        collector.close()
    message = str(info.value)
    assert "stderr tail" in message and "no-such-template-function" in message


# ---------------------------------------------------------------- whole scenarios


SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.mark.syslog_ng
@pytest.mark.parametrize("scenario_file, partitions", [("chatty-single-sender.toml", 4), ("round-robin.toml", 4)])
def test_quick_scenario_through_the_runner(tmp_path, installed, scenario_file, partitions, monkeypatch):
    """What `parbench run SCENARIO --impl syslog-ng --quick` does for one point:
    exactly once always; per-key order where the scenario expects it. Whether
    round-robin reorders is not asserted (on 2 cores it may not)."""
    from parbench.harness.runner import run_once
    from parbench.harness.scenario import apply_quick, load_scenario

    monkeypatch.setenv("PARBENCH_SYSLOG_NG", str(installed.syslog_ng))
    quick = apply_quick(load_scenario(SCENARIOS / scenario_file))
    run = run_once(quick, "syslog-ng", partitions, 0, tmp_path)
    assert run.error is None, run
    assert run.sent > 0 and run.received == run.sent
    assert run.checks.count("lost") == 0 and run.checks.count("duplicated") == 0
    assert run.checks.count("unexpected") == 0 and run.checks.count("malformed") == 0
    if quick.expect.ordering == "per-key":
        assert run.checks.count("nonmonotonic-per-key") == 0
    assert run.verdict == "pass", run.verdict_reasons


@pytest.mark.syslog_ng
def test_sweep_with_the_real_syslog_ng_picks_the_reference_profile_for_its_version(installed, monkeypatch):
    from parbench.harness.syslog_ng.version import reference_profile_for
    from parbench.harness.runner import choose_reference_profile

    monkeypatch.setenv("PARBENCH_SYSLOG_NG", str(installed.syslog_ng))
    profile, why = choose_reference_profile(scenario(), ["reference", "syslog-ng"])
    assert profile == reference_profile_for(installed.version)
    assert why == f"picked for the detected {installed.version}"
