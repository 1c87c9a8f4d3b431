"""`parbench check --format loggen`: loss, duplicates and per-connection
order of plain loggen traffic, from the `seq: %010d, thread: %04d` loggen
puts in every message."""
from __future__ import annotations

import json
import socket
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from syslog_ng_required import skip_unless_required

from parbench.cli import main
from parbench.harness.collect_cli import collect
from parbench.harness.syslog_ng.installation import find_syslog_ng
from parbench.harness.syslog_ng.loggen import run_loggen
from parbench.harness.syslog_ng.loggen_lines import parse_block, parse_files

# Lines as loggen generated them here (syslog-ng 4.8.1's and AxoSyslog
# 4.27.0's loggen: the same layout), RFC 3164 and RFC 5424 (with the BOM).
RFC3164 = ("<38>2026-11-30T06:13:20 localhost prg00000[1234]: seq: {seq:010d}, thread: {thread:04d}, "
           "runid: 1796019200, stamp: 2026-11-30T06:13:20 ")
RFC5424 = ("<38>1 2026-11-30T06:13:22+00:00 localhost prg00000 1234 - - \ufeffseq: {seq:010d}, "
           "thread: {thread:04d}, runid: 1796019202, stamp: 2026-11-30T06:13:22 ")


def loggen_line(seq: int, thread: int, template: str = RFC3164, size: int = 256, prefix: bytes = b"") -> bytes:
    head = template.format(seq=seq, thread=thread).encode()
    pad = (b"PADD" * 64)[:size - 1 - len(head)]
    return prefix + head + pad + b"\n"


def traffic(threads: int = 3, count: int = 200, **kwargs) -> list[bytes]:
    """loggen's interleaving: each thread's lines in order, threads mixed."""
    rng = np.random.default_rng(4)
    order = rng.permutation(np.repeat(np.arange(threads), count))
    seqs = [0] * threads
    lines = []
    for t in order:
        lines.append(loggen_line(seqs[t], int(t), **kwargs))
        seqs[t] += 1
    return lines


def check(*args, input=None):
    return CliRunner().invoke(main, ["check", "--format", "loggen", *map(str, args)], input=input)


@pytest.mark.parametrize("template", [RFC3164, RFC5424])
def test_parse_finds_seq_and_thread(template):
    data = b"".join(loggen_line(s, t, template) for t, s in [(0, 0), (1, 0), (0, 1), (12, 345678)])
    line, thread, seq, nl = parse_block(data)
    assert line.tolist() == [0, 1, 2, 3] and thread.tolist() == [0, 1, 0, 12] and seq.tolist() == [0, 0, 1, 345678]
    assert len(nl) == 4


def test_parse_takes_the_last_match_of_a_line_and_reports_the_rest_malformed():
    # a server template that prints its own header before MSG, one that
    # happens to look like loggen's, and lines without any
    decoy = b"host seq: 9999999999, thread: 9999 said: "
    data = (loggen_line(0, 0, prefix=decoy) + b"no loggen here\n" + loggen_line(1, 0, prefix=b"x: ")
            + b"seq: 00000000x1, thread: 0000 broken digits\n")
    line, thread, seq, nl = parse_block(data)
    assert line.tolist() == [0, 2] and seq.tolist() == [0, 1] and thread.tolist() == [0, 0] and len(nl) == 4


def test_faithful_loggen_traffic_passes(tmp_path):
    cap = tmp_path / "loggen.log"
    cap.write_bytes(b"".join(traffic()))
    r = check(cap)
    assert r.exit_code == 0, r.output
    assert "600 loggen lines of 600, 600 messages sent by loggen on 3 connection(s)" in r.output
    assert "PASS: expected ordering 'per-connection'" in r.output
    r = check(cap, "--sent-per-connection", 200, "--connections", 3, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["checks"]["stats"]["sent"] == 600


def test_planted_loss_duplicate_reorder_and_garbage_are_caught_with_witnesses(tmp_path):
    lines = traffic()
    where = {(int(line[55:65]), int(line[75:79])): i for i, line in enumerate(lines)}  # (seq, thread) -> index
    lines[where[(50, 1)]] = lines[where[(50, 1)]].replace(b"seq: 0000000050", b"seq: 0000000051")  # dup of 51, 50 lost
    a, b = where[(10, 2)], where[(11, 2)]
    lines[a], lines[b] = lines[b], lines[a]
    lines.insert(5, b"not a loggen line at all\n")
    cap = tmp_path / "loggen.log"
    cap.write_bytes(b"".join(lines))
    r = check(cap, "--json")
    assert r.exit_code == 1
    found = json.loads(r.stdout)["checks"]["anomalies"]
    assert found["lost"]["count"] == 1 and found["lost"]["witnesses"][0] | {"conn": 1, "cseq": 50} == \
        found["lost"]["witnesses"][0]
    assert found["duplicated"]["count"] == 1 and found["duplicated"]["witnesses"][0]["cseq"] == 51
    assert found["nonmonotonic-per-connection"]["count"] >= 1
    # only the swap: the duplicate's first copy sits in order (a copy takes no part in order checks)
    assert {w["conn"] for w in found["nonmonotonic-per-connection"]["witnesses"]} == {2}
    assert found["malformed"]["count"] == 1 and found["malformed"]["witnesses"][0]["line"] == 6
    human = check(cap)
    assert "lost: conn=1, cseq=50" in human.output and "FAIL" in human.output
    # round-robin parallelize() loses order; loss and duplicates still count
    assert check(cap, "--ordering", "none").exit_code == 1


def test_loss_at_the_end_needs_the_count(tmp_path):
    lines = [line for line in traffic(threads=2, count=100) if b"seq: 0000000099, thread: 0001" not in line]
    cap = tmp_path / "loggen.log"
    cap.write_bytes(b"".join(lines))
    assert check(cap).exit_code == 0  # invisible without loggen's -n
    r = check(cap, "--sent-per-connection", 100)
    assert r.exit_code == 1 and "lost: conn=1, cseq=99" in r.output
    r = check(cap, "--connections", 3, "--sent-per-connection", 100)
    assert r.exit_code == 1 and "lost: conn=2, cseq=0" in r.output


def test_several_captures_and_stdin(tmp_path):
    lines = traffic(threads=2, count=50)
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_bytes(b"".join(line for line in lines if b"thread: 0000" in line))
    second.write_bytes(b"".join(line for line in lines if b"thread: 0001" in line))
    r = check(first, second)
    assert r.exit_code == 0, r.output and "streams: 0 = " in r.output
    assert check("-", input=b"".join(lines)).exit_code == 0
    missing = check(tmp_path / "nope.log")
    assert missing.exit_code == 2 and "nope.log: cannot read" in missing.output


def test_large_capture_is_parsed_in_blocks(tmp_path, monkeypatch):
    """Blocks cut anywhere: lines split across reads still count once."""
    import parbench.harness.syslog_ng.loggen_lines as mod

    monkeypatch.setattr(mod, "BLOCK_BYTES", 1000)
    cap = tmp_path / "loggen.log"
    cap.write_bytes(b"".join(traffic(threads=4, count=300)))
    records = parse_files([str(cap)])
    assert len(records) == 1200 and records.malformed == 0 and records.lines_total == 1200
    assert np.array_equal(np.sort(records.line), np.arange(1200))


@pytest.mark.syslog_ng
def test_real_loggen_traffic_checks(tmp_path):
    installed = find_syslog_ng()
    if installed is None or installed.loggen is None:
        skip_unless_required("no syslog-ng with loggen installed here (run: parbench install syslog-ng)")
    cap = tmp_path / "loggen.log"
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, open(cap, "wb") as out:
        # parbench collect's loop: each connection's lines whole, in order
        collecting = threading.Thread(target=collect, args=(listener, out),
                                      kwargs={"count": 6000, "max_seconds": 60})
        collecting.start()
        result = run_loggen(listener.getsockname()[1], count=2000, connections=3, install=installed, timeout=60)
        collecting.join(90)
    assert result.sent == 6000
    data = cap.read_bytes()
    r = check(cap, "--sent-per-connection", 2000, "--connections", 3)
    assert r.exit_code == 0, r.output
    cap.write_bytes(data.replace(b"seq: 0000001500, thread: 0002", b"seq: 0000001501, thread: 0002"))
    r = check(cap, "--sent-per-connection", 2000, "--connections", 3)
    assert r.exit_code == 1 and "lost: conn=2, cseq=1500" in r.output
