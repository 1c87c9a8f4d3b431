"""A deployment checked end to end with parbench's own processes, as a user
would run them by hand: `parbench collect` receives the output, `parbench
serve` (started here, not by parbench) is the server, `parbench send` sends
the scenario's traffic, `parbench check` checks the capture.  The same with
3 sender processes sharding the connections, whose merged check must equal
the one sender's, and with captures split across collectors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from parbench.harness import wire

SCENARIO = """
name = "e2e-send"
[workload]
connections = 6
messages_per_connection = 2500
keys = 12
shared_keys = false
seed = 5
[pipeline]
partition_key = "$HOST"
[expect]
ordering = "per-key"
"""
TOTAL = 6 * 2500
CONFIG = """@version: 4.8
source s_in {{ network(ip("127.0.0.1") port(0) transport("tcp") max-connections(16)
                      log-iw-size(100000) keep-hostname(yes)); }};
destination d_out {{ tcp("127.0.0.1" port({out_port}) template("$MSG\\n")); }};
log {{ source(s_in); parallelize(partitions(4) partition-key("$HOST")); destination(d_out); flags(flow-control); }};
"""
TIMEOUT = 60


def parbench(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "parbench", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def wait_json(path: Path, proc: subprocess.Popen) -> dict:
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before ready: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} not written in time")
        time.sleep(0.05)
    return json.loads(path.read_text())


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


class Processes:
    """Every process a test starts; whatever is still running at the end is killed."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, *args) -> subprocess.Popen:
        proc = parbench(*args)
        self.procs.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture()
def processes():
    started = Processes()
    yield started
    started.cleanup()


def start_collect(processes: Processes, workdir: Path, name: str, count: int) -> tuple[subprocess.Popen, int, Path]:
    ready, capture = workdir / f"{name}.ready", workdir / f"{name}.log"
    proc = processes.start("collect", "--listen", "0", "--out", capture, "--ready-file", ready,
                           "--count", count, "--idle-s", 3, "--max-seconds", TIMEOUT)
    return proc, wait_json(ready, proc)["port"], capture


def start_serve(processes: Processes, workdir: Path, out_port: int) -> tuple[subprocess.Popen, int]:
    conf, ready = workdir / "server.conf", workdir / "server.ready"
    conf.write_text(CONFIG.format(out_port=out_port))
    proc = processes.start("serve", "-f", conf, "--ready-file", ready, "--max-seconds", TIMEOUT)
    return proc, wait_json(ready, proc)["sources"][0]["port"]


def deployment(processes: Processes, workdir: Path, scenario: Path, shards: int) -> tuple[Path, list[Path]]:
    """collect <- serve <- `shards` senders; returns the capture and the sent files."""
    workdir.mkdir()
    collect, out_port, capture = start_collect(processes, workdir, "capture", TOTAL)
    serve, in_port = start_serve(processes, workdir, out_port)
    sent_files = [workdir / f"sent{i}.json" for i in range(shards)]
    senders = [processes.start("send", scenario, "--to", f"127.0.0.1:{in_port}", "--no-progress",
                               "--expect-out", sent, *(["--shard", f"{i}/{shards}"] if shards > 1 else []))
               for i, sent in enumerate(sent_files)]
    for sender in senders:
        code, _, err = finish(sender)
        assert code == 0, err
        assert "average rate = " in err  # loggen's summary line
    code, _, err = finish(collect)
    assert code == 0, err
    assert f"{TOTAL} lines" in err and "stopped by --count" in err
    serve.send_signal(signal.SIGTERM)
    assert finish(serve)[0] == 0
    return capture, sent_files


def check(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parbench", "check", *map(str, args)], capture_output=True,
                          text=True, timeout=TIMEOUT)


def without_send_time(capture: Path) -> Counter:
    """The capture's lines with the send-time field blanked (the one field
    that differs between two sends of the same scenario)."""
    cut = wire.TRAILER_LEN - wire.TIME.start + 1  # the time field and the newline
    return Counter(line[:-cut] for line in capture.read_bytes().splitlines(keepends=True))


def test_send_to_a_server_started_by_hand_collect_and_check_pass_and_shards_equal_one_sender(tmp_path, processes):
    scenario = tmp_path / "e2e.toml"
    scenario.write_text(SCENARIO)

    one, one_sent = deployment(processes, tmp_path / "one", scenario, shards=1)
    result = check(one, "--expect", one_sent[0])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{TOTAL} parbench lines of {TOTAL}, {TOTAL} messages sent by scenario e2e-send" in result.stdout
    assert "PASS" in result.stdout
    assert check(one, "--scenario", scenario).returncode == 0  # a count-bound scenario needs no sent file

    three, three_sent = deployment(processes, tmp_path / "three", scenario, shards=3)
    merged = check(three, *[arg for sent in three_sent for arg in ("--expect", sent)], "--json")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert json.loads(merged.stdout)["checks"]["stats"]["sent"] == TOTAL
    shards = [json.loads(p.read_text())["sent"]["connections"] for p in three_sent]
    assert shards == [[0, 3], [1, 4], [2, 5]]
    # the three senders together sent exactly what the one sender sent
    assert without_send_time(three) == without_send_time(one)
    assert sum(without_send_time(one).values()) == TOTAL

    # one shard's sent file left out: its connections' messages are unexpected
    partial = check(three, "--expect", three_sent[0], "--expect", three_sent[1])
    assert partial.returncode == 1
    assert "unexpected: conn=2, cseq=" in partial.stdout and "expected to have sent nothing" in partial.stdout


def test_shards_to_separate_collectors_merge_into_one_check(tmp_path, processes):
    """No server in between: each shard's sender writes straight into its
    own collector (its capture is the sent lines).  The three captures,
    merged, pass; leaving one out loses exactly that shard's messages."""
    scenario = tmp_path / "e2e.toml"
    scenario.write_text(SCENARIO)
    captures, sent_files = [], []
    for i in range(3):
        collect, port, capture = start_collect(processes, tmp_path, f"shard{i}", TOTAL // 3)
        sent = tmp_path / f"sent{i}.json"
        code, _, err = finish(processes.start("send", scenario, "--to", f"127.0.0.1:{port}", "--shard", f"{i}/3",
                                              "--expect-out", sent, "--no-progress",
                                              "--summary-format", "axosyslog"))
        assert code == 0 and f"count={TOTAL // 3}, time=" in err and err.count("avg_rate=") == 1, err
        assert finish(collect)[0] == 0
        captures.append(capture)
        sent_files.append(sent)
    expects = [arg for sent in sent_files for arg in ("--expect", sent)]
    merged = check(*captures, *expects)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert f"streams: 0 = {captures[0]}, 1 = {captures[1]}, 2 = {captures[2]}" in merged.stdout
    missing = check(captures[0], captures[2], *expects, "--json")
    assert missing.returncode == 1
    lost = json.loads(missing.stdout)["checks"]["anomalies"]["lost"]
    assert lost["count"] == TOTAL // 3 and {w["conn"] for w in lost["witnesses"]} <= {1, 4}


def test_collect_stops_on_sigterm_and_keeps_what_it_received(tmp_path, processes):
    ready, capture = tmp_path / "ready", tmp_path / "cap.log"
    proc = processes.start("collect", "--listen", "127.0.0.1:0", "--out", capture, "--ready-file", ready,
                           "--max-seconds", TIMEOUT)
    port = wait_json(ready, proc)["port"]
    import socket

    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"first line\nsecond line\nhalf a li")
        deadline = time.monotonic() + TIMEOUT
        while capture.stat().st_size < len(b"first line\nsecond line\n") and time.monotonic() < deadline:
            time.sleep(0.05)  # written within a second (the flush period)
        proc.send_signal(signal.SIGTERM)
        code, _, err = finish(proc)
    assert code == 0, err
    assert capture.read_bytes() == b"first line\nsecond line\n"
    assert "2 lines" in err and "stopped by SIGTERM" in err and "1 incomplete line(s), 9 bytes, not written" in err
    assert os.path.exists(capture)
