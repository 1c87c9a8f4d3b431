"""`parbench send`: the scenario's messages to a server parbench did not
start, loggen's flags and summary line, the loopback rule, shards and the
sent file that `parbench check --expect` reads."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from loopback import LoopbackListener
from parbench.cli import main
from parbench.harness import wire
from parbench.harness.scenario import load_scenario
from parbench.harness.send_cli import workload_overrides
from parbench.harness.sent_file import SentRecord, apply_overrides
from parbench.harness.shard import parse_shard
from parbench.harness.syslog_ng.loggen import parse_loggen_output
from parbench.harness.workload import build_plan, render_connection
from parbench.errors import UsageError

SCENARIO = """
name = "send-demo"
[workload]
connections = 3
messages_per_connection = 400
keys = 7
seed = 9
[pipeline]
partition_key = "$HOST"
"""


@pytest.fixture()
def scenario(tmp_path):
    path = tmp_path / "send-demo.toml"
    path.write_text(SCENARIO)
    return path


def invoke(*args):
    return CliRunner().invoke(main, ["send", *map(str, args)])


def blank_time(lines: list[bytes]) -> list[bytes]:
    """Lines with the send-time field zeroed (newline-framed rows)."""
    at = -1 - wire.TRAILER_LEN + wire.TIME.start
    return [line[:at] + b"0" * 16 + line[at + 16:] for line in lines]


def test_sends_exactly_the_scenarios_messages(scenario):
    with LoopbackListener() as sink:
        result = invoke(scenario, "--to", f"127.0.0.1:{sink.port}", "--no-progress")
        assert result.exit_code == 0, result.output
        assert sink.wait_lines(1200, 10)
        received = sink.lines()
    plan = build_plan(load_scenario(scenario).workload)
    expected = [bytes(row) for c in range(3) for row in render_connection(plan, c)]
    got = blank_time([line + b"\n" for line in received])
    # connections interleave on the wire; each connection's messages are in order
    assert sorted(got) == sorted(expected)
    for c in range(3):
        mine = [line for line in got if line[-wire.TRAILER_LEN - 1 + wire.CONN.start:][:8] == b"%08x" % c]
        assert mine == [bytes(row) for row in render_connection(plan, c)]
    count, rate, seconds = parse_loggen_output(result.stderr)
    assert count == 1200 and seconds is not None and seconds >= 0
    assert result.stderr.strip().splitlines()[-1].startswith("average rate = ")
    assert "msg size=257" in result.stderr  # 256 bytes + the newline, as loggen counts it


def test_axosyslog_summary_line_reads_back(scenario):
    with LoopbackListener(keep=False) as sink:
        result = invoke(scenario, "--to", f"127.0.0.1:{sink.port}", "-Q", "--summary-format", "axosyslog")
    assert result.exit_code == 0, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("avg_rate=") and ", count=1200, time=" in last and "avg_msg_size=257" in last
    assert parse_loggen_output(last)[0] == 1200


def test_remote_address_needs_allow_remote(scenario):
    result = invoke(scenario, "--to", "192.0.2.7:514")
    assert result.exit_code == 2
    assert result.output.strip() == ("parbench send: --to 192.0.2.7:514: not a loopback address; parbench talks "
                                     "to 127.0.0.1 / ::1 unless you add --allow-remote")
    for bad, message in (("nohost", "expected HOST:PORT"), ("127.0.0.1:99999", "port number")):
        result = invoke(scenario, "--to", bad)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_help_names_allow_remote_and_where_parbench_differs_from_loggen():
    text = CliRunner().invoke(main, ["send", "--help"]).output
    for needle in ("--allow-remote", "-r 0", "unlimited", "WITHOUT the framing", "trailing newline",
                   "-I, --interval", "-n, --number", "-s, --size", "--active-connections", "-P, --syslog-proto",
                   "-F, --no-framing", "--shard", "--expect-out"):
        assert needle in text, needle


def test_loggen_flags_map_to_workload_overrides(scenario):
    base = load_scenario(scenario)

    def over(**flags):
        args = dict(rate=None, interval=None, number=None, size=None, connections=None, syslog_proto=False,
                    no_framing=False, fmt=None, framing=None)
        args.update(flags)
        return workload_overrides(base, **args)

    assert over() == ({}, None)
    assert over(number=400) == ({}, None)  # the scenario's own count changes nothing
    assert over(interval=2.5) == ({"duration_s": 2.5, "messages_per_connection": None}, None)
    assert over(number=50, interval=3) == ({"messages_per_connection": 50}, 3)  # -I with -n: a time limit
    assert over(rate=0)[0] == {}  # unlimited, as the scenario already is
    assert over(rate=1000)[0] == {"rate_per_connection": 1000}
    assert over(syslog_proto=True)[0] == {"format": "rfc5424", "framing": "octet-counted"}
    assert over(syslog_proto=True, no_framing=True)[0] == {"format": "rfc5424"}
    assert over(connections=5, size=300)[0] == {"connections": 5, "message_size": 300}
    with pytest.raises(UsageError, match="-P/--syslog-proto means --format rfc5424"):
        over(syslog_proto=True, fmt="rfc3164")
    effective = apply_overrides(base, over(rate=0, interval=1.0, connections=2)[0])
    assert (effective.workload.rate_per_connection, effective.workload.duration_s,
            effective.workload.messages_per_connection, effective.workload.connections) == (None, 1.0, None, 2)
    with pytest.raises(UsageError, match=r"^-s/--size: expected >= \d+"):
        apply_overrides(base, {"message_size": 40})


def test_syslog_proto_sends_octet_counted_rfc5424(scenario):
    with LoopbackListener() as sink:
        # -S and -i, which loggen needs for TCP, are accepted as they are in loggen command lines
        result = invoke(scenario, "--to", f"127.0.0.1:{sink.port}", "-Q", "-S", "-i", "-P", "-n", "3",
                        "--active-connections", 1)
        assert result.exit_code == 0, result.output
        assert sink.wait_bytes(3 * 260, 10)
        data = sink.data()
    assert data.startswith(b"256 <13>1 ") and data.count(b"256 <13>1 ") == 3 and b"\n" not in data
    assert "msg size=260" in result.stderr  # the framing counts, as in loggen's figure


def test_duration_run_records_what_it_sent_and_check_uses_it(tmp_path, scenario):
    sent_file, capture = tmp_path / "sent.json", tmp_path / "cap.log"
    with LoopbackListener() as sink:
        result = invoke(scenario, "--to", f"127.0.0.1:{sink.port}", "-Q", "-I", "0.5", "-r", "400",
                        "--expect-out", sent_file)
        assert result.exit_code == 0, result.output
        record = SentRecord.load(sent_file)
        total = sum(record.sent.values())
        assert sink.wait_lines(total, 10)
        capture.write_bytes(sink.data())
    assert record.overrides == {"duration_s": 0.5, "messages_per_connection": None, "rate_per_connection": 400}
    assert record.complete and sorted(record.sent) == [0, 1, 2]
    assert 3 * 100 <= total <= 3 * 400  # about 200 a connection at 400 msg/s for 0.5 s
    ok = CliRunner().invoke(main, ["check", str(capture), "--expect", str(sent_file)])
    assert ok.exit_code == 0, ok.output
    assert f"{total} messages sent by scenario send-demo" in ok.output
    # the last message of connection 1 lost: only the sent file can tell
    lines = capture.read_bytes().splitlines(keepends=True)
    last_of_1 = max(i for i, line in enumerate(lines) if line[-wire.TRAILER_LEN - 1:][4:12] == b"00000001")
    del lines[last_of_1]
    capture.write_bytes(b"".join(lines))
    lost = CliRunner().invoke(main, ["check", str(capture), "--expect", str(sent_file)])
    assert lost.exit_code == 1 and f"lost: conn=1, cseq={record.sent[1] - 1}" in lost.output
    inferred = CliRunner().invoke(main, ["check", str(capture), "--scenario", str(scenario)])
    assert inferred.exit_code == 1  # the scenario is count-bound: without the file, 400 were expected


def test_time_limit_with_a_count_stops_cleanly(tmp_path, scenario):
    sent_file = tmp_path / "sent.json"
    with LoopbackListener(keep=False) as sink:
        started = time.monotonic()
        result = invoke(scenario, "--to", f"127.0.0.1:{sink.port}", "-Q", "-n", "100000", "-r", "200", "-I", "1",
                        "--expect-out", sent_file)
        elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    record = SentRecord.load(sent_file)
    assert not record.complete and "stopped at the time limit of 1 s" in record.notes
    assert 0 < sum(record.sent.values()) < 3 * 100000 and elapsed < 30


def test_connection_refused_is_one_line_exit_1_and_still_records(tmp_path, scenario):
    with LoopbackListener() as sink:
        port = sink.port
    sent_file = tmp_path / "sent.json"
    result = invoke(scenario, "--to", f"127.0.0.1:{port}", "-Q", "--expect-out", sent_file)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("parbench send: 3 connection(s) failed; connection 0: connect to")
    record = SentRecord.load(sent_file)
    assert record.sent == {0: 0, 1: 0, 2: 0} and not record.complete


def test_shard_sends_its_connections_only(tmp_path, scenario):
    sent_file = tmp_path / "sent.json"
    with LoopbackListener() as sink:
        result = invoke(scenario, "--to", f"127.0.0.1:{sink.port}", "-Q", "--shard", "1/2", "--expect-out", sent_file)
        assert result.exit_code == 0, result.output
        assert sink.wait_lines(400, 10)
        conns = {line[-wire.TRAILER_LEN:][4:12] for line in sink.lines()}
    assert conns == {b"00000001"} and len(sink.lines()) == 400
    doc = json.loads(sent_file.read_text())
    assert doc["shard"] == {"index": 1, "count": 2} and doc["sent"] == {"connections": [1], "messages": [400]}
    empty = invoke(scenario, "--to", f"127.0.0.1:{sink.port}", "-Q", "--shard", "5/8")
    assert empty.exit_code == 0 and "shard 5/8 has no connections" in empty.stderr


@pytest.mark.parametrize("text", ["3", "3/3", "a/b", "-1/2", "1/0"])
def test_bad_shards(text):
    with pytest.raises(UsageError, match="--shard"):
        parse_shard(text)


def test_sigterm_stops_the_sender_which_still_writes_what_it_sent(tmp_path, scenario):
    sent_file = tmp_path / "sent.json"
    with LoopbackListener() as sink:
        proc = subprocess.Popen([sys.executable, "-m", "parbench", "send", str(scenario), "--to",
                                 f"127.0.0.1:{sink.port}", "-Q", "-I", "60", "-r", "100", "--expect-out",
                                 str(sent_file)], stderr=subprocess.PIPE, text=True)
        try:
            assert sink.wait_lines(30, 20)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 130, err
        assert "average rate = " in err and "interrupted by SIGTERM" in err
        record = SentRecord.load(sent_file)
        total = sum(record.sent.values())
        assert sink.wait_lines(total, 10)
        # every message it says it sent arrived whole: nothing cut in half
        assert len(sink.lines()) == total and sink.data().endswith(b"\n")
    assert "stopped by SIGTERM" in record.notes


def test_sent_file_errors_are_one_line(tmp_path, scenario):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "something-else"}')
    capture = tmp_path / "cap.log"
    capture.write_bytes(b"")
    result = CliRunner().invoke(main, ["check", str(capture), "--expect", str(bad)])
    assert result.exit_code == 2
    assert result.output.strip().endswith("schema: expected 'parbench.sent/1' (a file written by parbench send "
                                          "--expect-out), got 'something-else'")
    result = CliRunner().invoke(main, ["check", str(capture)])
    assert result.exit_code == 2 and "--scenario: required" in result.output


def test_plan_prefix_is_the_same_for_any_count(scenario):
    """A duration-bound send and its check build plans of different lengths
    from one seed; the messages both hold must be the same."""
    base = load_scenario(scenario)
    short = build_plan(apply_overrides(base, {"messages_per_connection": 50}).workload)
    long = build_plan(base.workload)
    for c in range(3):
        assert np.array_equal(render_connection(short, c), render_connection(long, c, 0, 50))
