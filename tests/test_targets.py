"""Targets start, report and always stop: no process or port left behind,
also when start fails."""
from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from parbench.harness.targets.base import TargetError, TargetPlan
from parbench.harness.targets.kind import ImplSpecError
from parbench.harness.targets.registry import get_target
from parbench.harness.targets.command import CommandTarget, parse_command_template

RELAY = Path(__file__).parent / "fixtures" / "relay.py"
PLAN = TargetPlan(scenario=SimpleNamespace(name="t"), partitions=0)


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone for our purposes only once reaped; we reap, so a
    # remaining /proc entry means a live process.
    return False


def _port_closed(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


@pytest.fixture
def sink():
    """A loopback listener standing in for the collector."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield server
    finally:
        server.close()


def test_get_target_knows_reference_command_and_rejects_others():
    assert get_target("reference").name == "reference"
    assert get_target("command:echo {in_port} {out_port}").name == "command:echo {in_port} {out_port}"
    with pytest.raises(ImplSpecError, match="^expected reference\\[:PROFILE\\], syslog-ng\\[:PATH\\], "
                                            "axosyslog\\[:VERSION\\|PATH\\] or command:ARGV, "
                                            "optionally as NAME=SPEC, got 'rsyslog'$"):
        get_target("rsyslog")
    with pytest.raises(ImplSpecError, match="got 'command:cat' \\(no \\{in_port\\} and no \\{out_port\\}\\)$"):
        get_target("command:cat")
    with pytest.raises(ImplSpecError, match="got 'command:echo \\{in_port\\}' \\(no \\{out_port\\}\\)$"):
        get_target("command:echo {in_port}")


def test_placeholders_are_substituted_per_argument_without_a_shell():
    argv = parse_command_template("prog --in {in_port} 'a b;rm -rf /' --out={out_port}", 11, 22)
    assert argv == ["prog", "--in", "11", "a b;rm -rf /", "--out=22"]
    with pytest.raises(TargetError, match="only \\{in_port\\} and \\{out_port\\}"):
        parse_command_template("prog {in_port} {bogus}", 1, 2)


def test_relay_starts_forwards_and_stops_cleanly(tmp_path, sink):
    out_port = sink.getsockname()[1]
    target = CommandTarget(f"{sys.executable} {RELAY} --listen {{in_port}} --forward {{out_port}}")
    host, port = target.start(PLAN, out_port, tmp_path, timeout=20)
    try:
        conn, _ = sink.accept()
        conn.settimeout(10)
        with socket.create_connection((host, port), timeout=5) as client:
            client.sendall(b"hello 1\nhello 2\n")
            data = b""
            while data.count(b"\n") < 2:
                data += conn.recv(1024)
        assert data == b"hello 1\nhello 2\n"
        pid = target._process.proc.pid
    finally:
        report = target.stop(timeout=10)
    assert report.exit_code == 0
    assert report.cpu_seconds is not None and report.cpu_seconds > 0
    assert report.peak_rss_bytes is not None and report.peak_rss_bytes > 1_000_000
    assert _pid_gone(pid)
    assert _port_closed(port)
    conn.close()


def test_command_that_exits_at_once_is_a_target_error_with_stderr(tmp_path, sink):
    target = CommandTarget(f"{sys.executable} -c \"import sys; sys.stderr.write('boom: bad flag'); sys.exit(3)\" {{in_port}}")
    started = time.monotonic()
    with pytest.raises(TargetError) as info:
        target.start(PLAN, sink.getsockname()[1], tmp_path, timeout=20)
    report = target.stop()
    assert "exited with status 3" in str(info.value)
    assert "boom: bad flag" in str(info.value)
    assert report.exit_code == 3
    assert time.monotonic() - started < 20  # did not wait for the timeout


def test_command_that_never_listens_times_out_and_is_killed(tmp_path, sink):
    target = CommandTarget(
        f"{sys.executable} -c \"import sys, time; sys.stderr.write('still thinking'); sys.stderr.flush(); time.sleep(600)\" {{in_port}}"
    )
    with pytest.raises(TargetError) as info:
        target.start(PLAN, sink.getsockname()[1], tmp_path, timeout=1.0)
    pid = target._process.proc.pid
    report = target.stop(timeout=5)
    assert "did not accept connections" in str(info.value)
    assert "still thinking" in str(info.value)
    assert _pid_gone(pid)
    assert report.exit_code is not None


def test_sigterm_ignoring_command_is_killed_and_noted(tmp_path, sink):
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import signal, socket, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(1)\n"
        "time.sleep(600)\n"
    )
    target = CommandTarget(f"{sys.executable} {script} {{in_port}}")
    host, port = target.start(PLAN, sink.getsockname()[1], tmp_path / "w", timeout=20)
    pid = target._process.proc.pid
    report = target.stop(timeout=0.5)
    assert any("killed" in note for note in report.notes)
    assert report.exit_code == -9
    assert _pid_gone(pid)
    assert _port_closed(port)


def test_stop_before_start_is_safe():
    assert CommandTarget("x {in_port}").stop().exit_code is None
    assert get_target("reference").stop().exit_code is None


def test_reference_target_reports_serve_failure_with_stderr(tmp_path, sink, monkeypatch):
    """A reference service that dies at startup: TargetError with its stderr."""
    from parbench.harness.targets.reference import ReferenceTarget

    target = ReferenceTarget()
    monkeypatch.setattr(
        target, "command",
        lambda conf, ready, counters, max_seconds, workers=None: [sys.executable, "-c",
                                                    "import sys; sys.stderr.write('conf.conf:3:5: nope'); sys.exit(2)"],
    )
    scenario = _scenario()
    with pytest.raises(TargetError, match="exited with status 2.*\n.*conf.conf:3:5: nope"):
        target.start(TargetPlan(scenario, 2), sink.getsockname()[1], tmp_path)
    report = target.stop()
    assert report.exit_code == 2
    assert (tmp_path / "reference.conf").read_text().count("partitions(2)") == 1


def test_reference_target_reads_ready_file_and_counters(tmp_path, sink, monkeypatch):
    """Contract of parbench serve, played by a fake: ready file with the port,
    counters JSON on SIGTERM -> per-partition totals in the report."""
    from parbench.harness.targets.reference import ReferenceTarget

    fake = tmp_path / "fake_serve.py"
    fake.write_text(
        "import json, os, signal, socket, sys, time\n"
        "ready, counters = sys.argv[1], sys.argv[2]\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n"
        "tmp = ready + '.tmp'\n"
        "json.dump({'pid': os.getpid(), 'sources': [{'source': 's', 'ip': '127.0.0.1', 'port': s.getsockname()[1]}]}, open(tmp, 'w'))\n"
        "os.rename(tmp, ready)\n"
        "def term(*a):\n"
        "    json.dump({'profile': 'axosyslog-4.26', 'parallelize': [{'log_path': 0, 'partitions': 2, 'key': '$HOST', 'partition': ["
        "{'partition_index': 1, 'parallelized_assigned_events_total': 7, 'parallelized_processed_events_total': 6, 'batches_total': 1},"
        "{'partition_index': 0, 'parallelized_assigned_events_total': 3, 'parallelized_processed_events_total': 3, 'batches_total': 1}]}], 'sources': []}, open(counters, 'w'))\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, term)\n"
        "time.sleep(600)\n"
    )
    target = ReferenceTarget()
    monkeypatch.setattr(target, "command",
                        lambda conf, ready, counters, max_seconds, workers=None: [sys.executable, str(fake), str(ready), str(counters)])
    host, port = target.start(TargetPlan(_scenario(), 2), sink.getsockname()[1], tmp_path)
    assert not _port_closed(port)
    report = target.stop(timeout=10)
    assert report.partition_processed == [3, 6]
    assert report.partition_assigned == [3, 7]
    assert report.version == "axosyslog-4.26"
    assert report.exit_code == 0
    assert _port_closed(port)


def _cmdline(pid: int) -> list[str]:
    return open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\0")[:-1]


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


@pytest.mark.parametrize("workers", [3, None])
def test_reference_target_runs_serve_with_the_scenarios_workers_and_a_bound_from_the_deadline(
        tmp_path, sink, workers):
    """The real parbench serve gets --workers from pipeline.workers (none when
    unset: its default) and a --max-seconds just above the runner's deadline,
    not a fixed hour."""
    from parbench.harness.targets.reference import ReferenceTarget

    scenario = _scenario()
    scenario.pipeline.workers = workers
    target = ReferenceTarget()
    try:
        target.start(TargetPlan(scenario, 2, deadline_s=12.0), sink.getsockname()[1], tmp_path, timeout=20.0)
        argv = _cmdline(target._process.proc.pid)
    finally:
        report = target.stop(timeout=10)
    assert argv[argv.index("-m") + 1:argv.index("-m") + 3] == ["parbench", "serve"]
    assert _option(argv, "--workers") == (str(workers) if workers else None)
    assert 12.0 + 20.0 < float(_option(argv, "--max-seconds")) <= 12.0 + 20.0 + 60.0
    assert report.exit_code == 0


def test_runner_gives_the_target_its_deadline_and_the_reference_its_workers(tmp_path):
    """Through the runner: the plan carries a deadline covering sending,
    quiescence and stop, and the reference's argv follows from it."""
    from parbench.harness.runner import QUIESCE_GRACE_S, STOP_TIMEOUT_S, _send_deadline_s, run_once
    from parbench.harness.targets.reference import ReferenceTarget

    seen = {}

    class Recording(ReferenceTarget):
        def start(self, plan, out_port, workdir, timeout=30.0, max_seconds=None):
            seen["plan"] = plan
            return super().start(plan, out_port, workdir, timeout=timeout, max_seconds=max_seconds)

        def command(self, *args, **kwargs):
            seen["argv"] = argv = super().command(*args, **kwargs)
            return argv

    from dataclasses import replace

    scenario = _real_scenario(partition_key="$HOST", workers=2)
    scenario = replace(scenario, workload=replace(scenario.workload, messages_per_connection=300))
    run = run_once(scenario, "reference", 2, 0, tmp_path, idle_s=1.0,
                   target_factory=lambda impl, profile=None: Recording(profile=profile))
    assert run.error is None and run.verdict == "pass", run
    total = scenario.workload.connections * scenario.workload.messages_per_connection
    deadline = _send_deadline_s(scenario.workload, total) + QUIESCE_GRACE_S + STOP_TIMEOUT_S
    assert seen["plan"].deadline_s == deadline
    assert _option(seen["argv"], "--workers") == "2"
    assert deadline < float(_option(seen["argv"], "--max-seconds")) < 3600


def _scenario():
    workload = SimpleNamespace(connections=1, format="rfc3164", keys=("a",), key_field="HOST")
    pipeline = SimpleNamespace(partition_key="$HOST", batch_size=None, parallelize_fetch_limit=None,
                               log_iw_size=1000, max_connections=None, log_fetch_limit=10,
                               flow_control=True, cost_cpu_us=0.0, cost_latency_us=0.0)
    return SimpleNamespace(name="t", workload=workload, pipeline=pipeline)


# --- config rendering -------------------------------------------------------

def _real_scenario(**pipeline):
    from parbench.harness.scenario import Expectation, Pipeline, Scenario, Sweep, Workload

    return Scenario(name="render", path="render.toml", description="",
                    workload=Workload(connections=3, keys=("a", "b")),
                    pipeline=Pipeline(**pipeline), sweep=Sweep(), expect=Expectation())


def _parse(text: str, profile: str = "axosyslog-4.26"):
    from parbench.reference.config import parse_config
    from parbench.reference.profiles import get_profile

    return parse_config(text, "rendered.conf", get_profile(profile), warn=lambda *a, **k: None)


def test_rendered_config_parses_with_everything_the_scenario_asks_for():
    from parbench.harness.render import render_config
    from parbench.reference.config_model import CostStage, Destination, Parallelize, Parser

    scenario = _real_scenario(partition_key="${.SDATA.pb@1.key}", batch_size=5, parallelize_fetch_limit=50,
                              log_iw_size=1234, max_connections=60, log_fetch_limit=7, flow_control=True,
                              cost_cpu_us=2.5, cost_latency_us=100)
    config = _parse(render_config(scenario, 4, 4321))
    path = config.log_paths[0]
    par, parser, dest = path.pipeline
    assert isinstance(par, Parallelize) and (par.partitions, par.partition_key, par.batch_size, par.log_fetch_limit) == (
        4, "${.SDATA.pb@1.key}", 5, 50)
    assert isinstance(parser, Parser) and parser.stages[0] == CostStage(parser.stages[0].loc, 2.5, 100.0)
    assert isinstance(dest, Destination) and dest.drivers[0].port == 4321 and dest.drivers[0].template == "$MSG\n"
    assert path.flow_control
    src = config.sources["s_parbench"].drivers[0]
    assert (src.ip, src.port, src.log_iw_size, src.max_connections, src.log_fetch_limit) == ("127.0.0.1", 0, 1234, 60, 7)
    assert src.keep_hostname and not src.use_dns and not src.syslog_protocol


def test_partitions_zero_means_no_parallelize_and_rfc5424_sets_syslog_protocol():
    from dataclasses import replace

    from parbench.harness.render import render_config
    from parbench.reference.config_model import Parallelize

    scenario = _real_scenario(partition_key="$HOST", flow_control=False)
    scenario = replace(scenario, workload=replace(scenario.workload, format="rfc5424"))
    config = _parse(render_config(scenario, 0, 1))
    assert not any(isinstance(e, Parallelize) for e in config.log_paths[0].pipeline)
    assert not config.log_paths[0].flow_control
    assert config.sources["s_parbench"].drivers[0].syslog_protocol


def test_syslog_ng_dialect_leaves_out_cost_stage_and_axo_options_and_says_so():
    from parbench.harness.render import config_notes, render_config

    scenario = _real_scenario(partition_key="$HOST", batch_size=5, cost_cpu_us=3)
    text = render_config(scenario, 2, 1, dialect="syslog-ng", version="4.8.1")
    assert "parbench-cost" not in text and "batch-size" not in text
    assert text.startswith("@version: 4.8\n")
    notes = " ".join(config_notes(scenario, 2, "syslog-ng", "4.8.1"))
    assert "parbench-cost" in notes and "batch-size" in notes
    # The reference under the syslog-ng profile refuses batch-size too.
    assert "batch-size" not in render_config(scenario, 2, 1, version="syslog-ng-4.8")
    _parse(render_config(scenario, 2, 1, version="syslog-ng-4.8"), "syslog-ng-4.8")


@pytest.mark.parametrize("evil", [
    '$HOST"); }; destination d_evil { file("/tmp/pwned"); }; log { source(s_parbench',
    '$HOST\\") file(\\"/tmp/x',
    "$HOST\n}; @include \"/etc/passwd\"\n",
])
def test_scenario_strings_cannot_inject_config(evil):
    from parbench.harness.render import render_config

    scenario = _real_scenario(partition_key=evil)
    text = render_config(scenario, 2, 1)
    config = _parse(text)
    assert list(config.destinations) == ["d_parbench"]
    assert config.log_paths[0].pipeline[0].partition_key == evil


def test_non_integer_numbers_are_refused_not_rendered():
    from parbench.harness.render import render_config

    with pytest.raises(ValueError, match="log_iw_size must be an integer"):
        render_config(_real_scenario(log_iw_size="1) ; evil("), 1, 1)


# --- /proc sampling -----------------------------------------------------------

def test_proc_sampler_sees_peak_rss_and_cpu_of_children(tmp_path):
    """A process that allocates 60 MB and a child that burns CPU: the peak
    RSS covers the allocation and the CPU includes the child's time."""
    import subprocess

    from parbench.harness.metrics import ProcSampler, reap_with_rusage, summarize_usage

    ready = tmp_path / "ready"
    code = (
        "import subprocess, sys, time\n"
        "block = bytearray(60 * 1024 * 1024)\n"
        "for i in range(0, len(block), 4096): block[i] = 1\n"
        "child = subprocess.Popen([sys.executable, '-c', 'x = 0\\nfor i in range(3_000_000): x += i'])\n"
        "child.wait()\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    sampler = ProcSampler(proc.pid, interval=0.05).start()
    try:
        for _ in range(600):
            if ready.exists():
                break
            time.sleep(0.05)
        assert ready.exists()
        sampler.sample()
        assert sampler.peak_rss_bytes >= 60 * 1024 * 1024
        # The child was reaped: its CPU time is in the parent's cstime.
        assert sampler.cpu_seconds >= 0.05
    finally:
        os.killpg(proc.pid, 9)
        code_, cpu, rss = reap_with_rusage(proc, 10.0)
        sampler.stop()
    assert code_ == -9
    total_cpu, peak = summarize_usage(sampler, cpu, rss)
    assert total_cpu >= sampler.cpu_seconds * 0.99 and peak >= 60 * 1024 * 1024


def test_readiness_opens_no_connection_to_the_target(tmp_path):
    # syslog-ng counts a probe connection against max-connections() until it
    # sees the close; a probe could get a real sender rejected. Readiness
    # must come from the listening socket alone.
    log = tmp_path / "accepted.log"
    server = tmp_path / "server.py"
    server.write_text(
        "import socket, sys, time\n"
        "s = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
        "s.settimeout(0.1)\n"
        "while True:\n"
        "    try:\n"
        "        c, _ = s.accept()\n"
        "    except TimeoutError:\n"
        "        continue\n"
        "    open(sys.argv[2], 'a').write('accepted\\n')\n"
        "    c.close()\n")
    target = CommandTarget(f"{sys.executable} {server} {{in_port}} {log}")
    try:
        host, port = target.start(TargetPlan(scenario=None, partitions=1), 9, tmp_path, timeout=20)
        time.sleep(0.3)
        assert not log.exists(), "the readiness check connected to the target"
        with socket.create_connection((host, port), timeout=5):
            pass
        deadline = time.monotonic() + 5
        while not log.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert log.read_text() == "accepted\n"  # the server really counts connections
    finally:
        target.stop(timeout=5)
