"""Check the speed and memory targets against one pytest-benchmark JSON file.

    .venv/bin/python -m pytest tests/benchmarks --benchmark-only --benchmark-json bench.json
    .venv/bin/python tests/benchmarks/targets.py bench.json

Every figure comes from the same run, so the generator-vs-loggen target is a
ratio of two rates measured side by side.  Exit 1 when a target is missed,
2 when the file lacks a benchmark a target needs.
"""
from __future__ import annotations

import json
import statistics
import sys


def _by_name(doc: dict) -> dict[str, dict]:
    return {b["name"]: b for b in doc["benchmarks"]}


def _rate(bench: dict) -> float:
    value = bench["extra_info"]["msgs_per_s"]
    return statistics.median(value) if isinstance(value, list) else float(value)


# (description, benchmark name(s), how to get the figure, comparison, target)
TARGETS = [
    ("in-process dispatch, key, partitions(4) [msg/s]", ("test_dispatch_keyed[4]",), _rate, ">=", 1_000_000),
    ("parbench serve end to end, 1 connection, key $HOST [msg/s]",
     ("test_service_end_to_end_one_connection[$HOST]",), _rate, ">=", 150_000),
    ("collection + checking of a captured buffer [msg/s]", ("test_parse_and_check_a_captured_buffer",), _rate,
     ">=", 3_000_000),
    ("memory per tracked message [bytes]", ("test_memory_per_tracked_message",),
     lambda b: b["extra_info"]["bytes_per_message"], "<=", 100),
    ("generation + sending vs syslog-ng's loggen, same run [ratio]", ("test_parbench_sender", "test_loggen_anchor"),
     None, ">=", 3.0),
    ("framing a 64 MiB line vs a 16 MiB one (linear: 4) [time ratio]", ("test_long_line_framing_is_linear",),
     lambda b: b["extra_info"]["ratio_64_to_16_mib"], "<=", 8),
    ("a connection beside two floods vs alone, serve [time ratio]",
     ("test_a_flood_slows_a_good_connection_only_by_its_share",),
     lambda b: b["extra_info"]["slowdown_ratio"], "<=", 8),
]


def main(path: str) -> int:
    with open(path) as fh:
        benches = _by_name(json.load(fh))
    missed = absent = 0
    for text, names, figure, op, target in TARGETS:
        if any(n not in benches for n in names):
            print(f"ABSENT  {text}: no {', '.join(n for n in names if n not in benches)} in {path}")
            absent += 1
            continue
        if figure is None:
            ours, anchor = (_rate(benches[n]) for n in names)
            value = ours / anchor
            detail = f" ({ours:,.0f} / {anchor:,.0f} msg/s)"
        else:
            value = figure(benches[names[0]])
            detail = ""
        ok = value >= target if op == ">=" else value <= target
        missed += not ok
        print(f"{'ok    ' if ok else 'MISSED'}  {text}: {value:,.2f}{detail}, target {op} {target:,}")
    return 2 if absent else 1 if missed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
