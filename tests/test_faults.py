"""Faults: the ``[faults]`` table, the collector playing a destination that is
down, slow or resetting, the loss each fault allows, recovery times, and
runs against the relay fixture (one that survives a restart, one that does
not survive its destination going down)."""
from __future__ import annotations

import errno
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from parbench.harness.collector import Collector, parse_capture
from parbench.harness.faults import AppliedFault, FaultInjector, Promise, promise, recovery_s
from parbench.harness.results import Results, Run, ScenarioInfo
from parbench.harness.runner import run_sweep
from parbench.harness.scenario import Fault, ScenarioError, scenario_from_dict

RELAY = Path(__file__).parent / "fixtures" / "relay.py"
BASE = {"workload": {"messages_per_connection": 10}}


def _faults(faults: dict):
    return scenario_from_dict({**BASE, "faults": faults}, "f.toml").faults


# ---------------------------------------------------------------- [faults]

def test_every_fault_kind_as_a_table_or_an_array_of_tables():
    faults = _faults({"destination_down": {"at_s": 3, "for_s": 1},
                      "destination_slow": [{"at_s": 0.5, "for_s": 1, "bytes_per_s": 1000}],
                      "connection_reset": [{"at_s": 2}, {"at_s": 1}],
                      "target_restart": {"at_s": 5}})
    assert [(f.kind, f.at_s) for f in faults] == [
        ("destination_slow", 0.5), ("connection_reset", 1.0), ("connection_reset", 2.0),
        ("destination_down", 3.0), ("target_restart", 5.0)]
    assert faults[0] == Fault("destination_slow", 0.5, 1.0, 1000) and faults[0].end_s == 1.5


@pytest.mark.parametrize("faults, message", [
    ({"destination_down": {"at_s": 1}}, "faults.destination_down.for_s: missing required key"),
    ({"destination_slow": {"at_s": 1, "for_s": 1}}, "faults.destination_slow.bytes_per_s: missing required key"),
    ({"target_restart": [{"at_s": 1, "for_s": 3}]}, "faults.target_restart[0].for_s: unknown key; valid keys: at_s"),
    ({"connection_reset": 3}, "faults.connection_reset: expected a table or an array of tables"),
    ({"conection_reset": {"at_s": 1}}, "faults.conection_reset: unknown key; did you mean 'connection_reset'?"),
    ({"connection_reset": {"at_s": -1}}, "faults.connection_reset.at_s: expected a number in [0, 3600]"),
    ({"destination_down": {"at_s": 1, "for_s": 0}}, "faults.destination_down.for_s: expected a number in (0, 3600]"),
    ({"destination_down": {"at_s": 1, "for_s": 2}, "destination_slow": {"at_s": 2, "for_s": 1, "bytes_per_s": 9}},
     "faults.destination_slow: expected a window after the one ending at 3s"),
])
def test_a_bad_fault_is_one_line_naming_its_key(faults, message):
    with pytest.raises(ScenarioError) as err:
        _faults(faults)
    assert str(err.value).startswith(f"f.toml: {message}"), str(err.value)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- promises

def _applied(kind: str, **kw) -> AppliedFault:
    return AppliedFault(Fault(kind, 1.0, 1.0 if kind in ("destination_down", "destination_slow") else 0.0),
                        started_s=1.0, **kw)


@pytest.mark.parametrize("kind", ["destination_down", "destination_slow", "connection_reset"])
def test_with_flow_control_an_implementation_that_sends_unacknowledged_data_again_may_lose_nothing(kind):
    applied = [_applied(kind, in_flight_bytes=5000, connections=1)]
    assert promise(applied, True, 1000, 250, keeps_unacknowledged=True).max_lost == 0


def test_a_slow_destination_allows_no_loss_to_anyone():
    assert promise([_applied("destination_slow")], True, 1000, 250).max_lost == 0


@pytest.mark.parametrize("kind", ["destination_down", "connection_reset"])
def test_a_break_may_cost_what_was_written_into_the_connection(kind):
    applied = [_applied(kind, connections=2, start_ns=4_900_000_000, broke_ns=5_000_000_000)]
    loose = promise(applied, True, 1000, 250, send_buffer_bytes=25_000)
    assert loose.max_lost == 2 * (100 + 1)  # a full send buffer per broken connection
    assert loose.sent_before_ns == 5_100_000_000  # and only what was sent before the break
    counted = promise(applied, True, 1000, 250, send_buffer_bytes=25_000, written_unreceived=7)
    assert counted.max_lost == 7  # exactly what the implementation counted written and never arrived


def test_a_restart_allows_the_source_window_and_what_the_kernel_held():
    applied = [_applied("target_restart", in_flight_bytes=2501, connections=2), _applied("connection_reset")]
    found = promise(applied, True, 1000, 250)
    assert found.max_lost == 1000 + 11 + 2  # ceil(2501 / 250) messages, and a cut one per connection
    assert "log_iw_size" in found.parts[0]


def test_without_flow_control_losses_are_allowed_and_counted():
    assert promise([_applied("destination_down")], False, 1000, 250).max_lost is None


def test_recovery_is_until_the_backlog_and_the_first_later_message_arrived():
    end = 10_000_000_000
    a = AppliedFault(Fault("destination_down", 1, 1), started_s=1, ended_s=2, end_ns=end)
    sent = np.array([end - 3e9, end - 1e9, end + 1e8, end + 2e8], dtype=np.int64)
    recv = np.array([end - 2e9, end + 5e8, end + 3e8, end + 9e8], dtype=np.int64)
    recovery_s([a], sent, recv)
    assert a.recover_s == pytest.approx(0.5)  # the backlog arrived at +0.5 s, the first later one at +0.3 s
    b = AppliedFault(Fault("target_restart", 1), started_s=1, ended_s=1, end_ns=end)
    recovery_s([b], sent, np.array([end - 2e9, end - 5e8, end + 2e9, end + 9e8], dtype=np.int64))
    assert b.recover_s == pytest.approx(2.0)  # the first message sent after it came 2 s late


def test_faults_and_the_promise_round_trip_through_results_json(tmp_path):
    run = Run("reference", 4, 0, verdict="pass", faults=[_applied("target_restart", ended_s=1.2, in_flight_bytes=9,
                                                                   connections=1, recover_s=0.5)],
              fault_promise=Promise(1010, "why", ["part"]),
              target_accounting={"received": 5, "written": 5, "dropped": 0, "queued_at_exit": 0})
    Results(ScenarioInfo("s", "s.toml"), [run]).write(tmp_path / "results.json")
    (back,) = Results.load(tmp_path / "results.json").runs
    assert back.faults[0].to_json() == run.faults[0].to_json()
    assert back.fault_promise.to_json() == run.fault_promise.to_json()
    assert back.target_accounting == run.target_accounting


# ---------------------------------------------------------------- the collector as a faulty destination

def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def _broken(sock: socket.socket) -> OSError | None:
    """Write until the connection reports that it is gone."""
    for _ in range(200):
        try:
            sock.sendall(b"x" * 1000 + b"\n")
        except OSError as exc:
            return exc
        time.sleep(0.01)
    return None


def test_down_closes_connections_after_reading_them_and_refuses_new_ones_until_up():
    collector = Collector()
    try:
        writer = _connect(collector.port)
        writer.sendall(b"a\n" * 1000)
        result = collector.go_down()
        assert result["connections"] == 1
        assert collector.received_messages() == 1000  # what the kernel held was read, not dropped
        assert _broken(writer) is not None
        with pytest.raises(ConnectionRefusedError):
            _connect(collector.port)
        collector.come_up()
        again = _connect(collector.port)  # the same port
        again.sendall(b"b\n" * 10)
        assert _wait(lambda: collector.received_messages() == 1010)
        again.close()
        writer.close()
    finally:
        capture = collector.stop()
    assert [s.data.count(b"\n") for s in capture.streams] == [1000, 10]


def test_reset_sends_a_tcp_reset_and_keeps_listening():
    collector = Collector()
    try:
        writer = _connect(collector.port)
        writer.sendall(b"a\n" * 10)
        assert _wait(lambda: collector.received_messages() == 10)
        assert collector.reset_connections()["connections"] == 1
        error = _broken(writer)
        assert isinstance(error, OSError) and error.errno in (errno.ECONNRESET, errno.EPIPE)
        _connect(collector.port).close()
    finally:
        collector.stop()


def test_slow_reads_no_faster_than_its_rate():
    rate = 20_000
    collector = Collector(rcvbuf=4096)
    try:
        writer = _connect(collector.port)
        writer.setblocking(False)
        collector.set_read_rate(rate)
        started = time.monotonic()
        sent = 0
        chunk = b"y" * 999 + b"\n"
        while time.monotonic() - started < 1.0:
            try:
                sent += writer.send(chunk)
            except BlockingIOError:
                time.sleep(0.005)
        elapsed = time.monotonic() - started
        got = collector.received_bytes()
        assert got <= rate * elapsed + rate / 10 + Collector.RECV_BYTES
        assert sent > got  # the rest waits in the kernel: the writer was held back
        collector.set_read_rate(None)
        assert _wait(lambda: collector.received_bytes() == sent)
        writer.close()
    finally:
        collector.stop()


# ---------------------------------------------------------------- runs

def _scenario(faults: dict, **workload):
    return scenario_from_dict({
        "name": "relay-faults",
        "workload": {"connections": 2, "messages_per_connection": 3000, "rate_per_connection": 1500,
                     "keys": ["a", "b", "c"], **workload},
        "pipeline": {"partition_key": "$HOST", "log_iw_size": 1000},
        "sweep": {"partitions": [0], "repeats": 1},
        "faults": faults}, "relay-faults.toml")


def _relay(*flags: str) -> str:
    return f"command:{sys.executable} {RELAY} --listen {{in_port}} --forward {{out_port}} " + " ".join(flags)


def test_a_restarted_relay_loses_at_most_what_it_held_and_the_sender_reconnects(tmp_path):
    (run,) = run_sweep(_scenario({"target_restart": {"at_s": 0.8}}), [_relay()], show_progress=False,
                       workroot=tmp_path).runs
    assert run.error is None, run.error
    (fault,) = run.faults
    assert fault.error is None and fault.ended_s > fault.started_s >= 0.8 and fault.recover_s is not None
    assert run.fault_promise.max_lost >= 1000
    assert run.checks.count("lost") <= run.fault_promise.max_lost
    assert run.checks.count("duplicated") == 0 and run.checks.count("nonmonotonic-per-key") == 0
    assert run.verdict == "pass", run.verdict_reasons
    assert any("opened again" in note for note in run.target_notes)
    assert run.received > 3000  # both processes forwarded


def test_a_relay_that_drops_everything_after_its_destination_broke_fails(tmp_path):
    """The relay never reconnects and goes on reading, forwarding nothing:
    the messages sent after the break are lost, and no break explains that."""
    (run,) = run_sweep(_scenario({"destination_down": {"at_s": 0.5, "for_s": 0.5}}),
                       [_relay("--drop-when-destination-fails")], show_progress=False, workroot=tmp_path).runs
    assert run.faults[0].error is None and run.faults[0].connections == 1
    assert run.sent == 6000 and run.checks.count("lost") > 3000
    assert run.checks.count("lost") <= run.fault_promise.max_lost  # within a send buffer per connection ...
    assert run.verdict == "fail"  # ... but sent after the break
    assert any("were sent after the last break or kill" in reason and "no fault explains them" in reason
               for reason in run.verdict_reasons), run.verdict_reasons


def test_a_loss_an_implementation_cannot_have_written_fails_a_promise_of_none(tmp_path):
    """The same relay as a kind that sends again what a broken connection
    did not deliver: it may lose nothing at all."""
    from parbench.harness.targets import registry
    from parbench.harness.targets.command import CommandKind

    class Resending(CommandKind):
        name = "resending-relay"
        syntax = "resending-relay:ARGV"
        keeps_unacknowledged = True

    with registry.registered(Resending()):
        impl = _relay("--drop-when-destination-fails").replace("command:", "resending-relay:", 1)
        (run,) = run_sweep(_scenario({"connection_reset": {"at_s": 0.5}}), [impl], show_progress=False,
                           workroot=tmp_path).runs
    assert run.fault_promise.max_lost == 0
    assert run.verdict == "fail"
    assert any("more than the 0 the implementation may lose" in reason for reason in run.verdict_reasons)


def test_a_fault_that_cannot_be_applied_fails_the_run(tmp_path):
    class NoRestart:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def restart(self, timeout=30.0):
            raise RuntimeError("no restarting here")

    from parbench.harness.targets.registry import get_target

    (run,) = run_sweep(_scenario({"target_restart": {"at_s": 0.2}}, messages_per_connection=600), [_relay()],
                       show_progress=False, workroot=tmp_path,
                       target_factory=lambda spec, **kw: NoRestart(get_target(spec, **kw))).runs
    assert run.verdict == "fail"
    assert "a fault could not be applied" in run.error and "no restarting here" in run.error


def test_the_injector_leaves_the_destination_up_when_stopped_early():
    collector = Collector()
    try:
        injector = FaultInjector((Fault("destination_down", 0.0, 60.0),), collector, None, ("127.0.0.1", 1)).start()
        assert _wait(lambda: injector.applied[0].started_s is not None)
        applied = injector.stop()
        assert applied[0].error == "cut short: the run ended first"
        _connect(collector.port).close()  # listening again
    finally:
        collector.stop()


def test_records_keep_their_streams_across_a_reconnection():
    collector = Collector()
    try:
        first = _connect(collector.port)
        first.sendall(b"1\n2\n")
        assert _wait(lambda: collector.received_messages() == 2)
        collector.reset_connections()
        second = _connect(collector.port)
        second.sendall(b"3\n")
        assert _wait(lambda: collector.received_messages() == 3)
        second.close()
    finally:
        capture = collector.stop()
    records = parse_capture(capture)
    assert records.lines_total == 3 and len(capture.streams) == 2


def test_a_reset_between_two_events_of_one_select_leaves_the_collector_running():
    """A fault closes connections from the receive thread while the same
    batch of events still holds them: they are skipped, not read."""
    collector = Collector()
    try:
        writers = [_connect(collector.port) for _ in range(8)]
        for _ in range(30):
            for w in writers:
                try:
                    w.sendall(b"z\n" * 100)
                except OSError:
                    pass
            collector.reset_connections()
            writers = [_connect(collector.port) for _ in range(8)]
        for w in writers:
            w.close()
        assert collector.error is None
    finally:
        capture = collector.stop()
    assert not capture.data_lost and capture.errors == []
