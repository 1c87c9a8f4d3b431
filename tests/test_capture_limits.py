"""Reading output never holds an over-long line whole: a line longer than
``collector.MAX_LINE_BYTES`` (twice the largest message a scenario sends)
is one malformed line, counted with its length, in a capture file and in
the collector alike, and the memory of reading stays bounded."""
from __future__ import annotations

import socket
import time
import tracemalloc

from click.testing import CliRunner

from parbench.cli import main
from parbench.harness import checks
from parbench.harness.collector import MAX_LINE_BYTES, Capture, Collector, parse_capture
from parbench.harness.scenario import load_scenario
from parbench.harness.workload import build_plan, render_connection

SCENARIO = """
name = "tiny"
[workload]
connections = 1
messages_per_connection = 20
keys = 3
[pipeline]
partition_key = "$HOST"
[expect]
ordering = "per-key"
"""


def _scenario(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(SCENARIO)
    return path


def _lines(path) -> list[bytes]:
    plan = build_plan(load_scenario(path).workload)
    return [bytes(r) for r in render_connection(plan, 0, send_ns=1)]


def test_a_huge_file_without_a_newline_is_one_over_long_line_read_in_bounded_memory(tmp_path):
    size = 256 << 20
    capture = tmp_path / "noline.bin"
    with open(capture, "wb") as fh:
        fh.truncate(size)  # sparse: 256 MiB of NUL bytes, no newline
    tracemalloc.start()
    try:
        records = parse_capture(Capture.from_file(capture))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 << 20, f"reading took {peak / 2**20:.0f} MiB"
    assert (records.lines_total, records.malformed, len(records)) == (1, 1, 0)
    (example,) = records.malformed_examples
    assert example["line"] == 1 and "over-long" in example["text"] and f"{size:,} bytes" in example["text"]
    assert "no newline" in example["text"]


def test_parbench_check_reports_the_over_long_line(tmp_path):
    capture = tmp_path / "noline.bin"
    with open(capture, "wb") as fh:
        fh.truncate(64 << 20)
    result = CliRunner().invoke(main, ["check", str(capture), "--scenario", str(_scenario(tmp_path))])
    assert result.exit_code == 1, result.output
    assert "0 parbench lines of 1" in result.output
    assert "malformed 1" in result.output and "over-long" in result.output


def test_lines_around_an_over_long_line_are_checked(tmp_path):
    path = _scenario(tmp_path)
    good = _lines(path)
    capture = tmp_path / "mixed.log"
    huge = b"x" * (3 * MAX_LINE_BYTES // 2) + b"\n"
    capture.write_bytes(b"".join(good[:5]) + huge + b"".join(good[5:]))
    for block_bytes in (1 << 20, 8 << 20):  # the long line across blocks, and inside one
        records = parse_capture(Capture.from_file(capture, block_bytes=block_bytes))
        assert (len(records), records.malformed, records.lines_total) == (20, 1, 21)
        assert records.malformed_examples[0]["line"] == 6
        assert "over-long" in records.malformed_examples[0]["text"]
        assert list(records.line) == [*range(5), *range(6, 21)]
        result = checks.check(records, build_plan(load_scenario(path).workload).expected)
        assert result.count("lost") == 0 and result.count("malformed") == 1


def test_the_collector_holds_no_over_long_line(tmp_path):
    path = _scenario(tmp_path)
    good = _lines(path)
    compact = 1 << 20
    collector = Collector(compact_bytes=compact)
    try:
        with socket.create_connection(("127.0.0.1", collector.port)) as sock:
            sock.sendall(b"".join(good[:3]))
            for _ in range(24):  # 24 MiB without a newline
                sock.sendall(b"y" * (1 << 20))
            deadline = time.monotonic() + 10
            while collector.received_bytes() < 24 << 20 and time.monotonic() < deadline:
                time.sleep(0.01)
            held = sum(len(chunk) for conn in collector._conns for chunk in conn.chunks)
            assert held <= MAX_LINE_BYTES + Collector.RECV_BYTES
            sock.sendall(b"\n" + b"".join(good[3:]) + b"z" * (3 * MAX_LINE_BYTES))  # an unterminated end
            deadline = time.monotonic() + 10
            while collector.received_messages() < 18 and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        capture = collector.stop()
    records = parse_capture(capture)
    assert len(records) == 20 and records.malformed == 2 and records.lines_total == 22
    texts = [e["text"] for e in records.malformed_examples]
    assert "over-long" in texts[0] and f"{(24 << 20) + 1:,} bytes" in texts[0]
    assert "no newline" in texts[1]
