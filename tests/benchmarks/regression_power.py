"""How often does `parbench compare` cry wolf, and how often does it catch a
real slowdown, on this machine?  Measured, old cross-sweep method against the
paired one.

    .venv/bin/python tests/benchmarks/regression_power.py            # the table (tens of minutes)
    .venv/bin/python tests/benchmarks/regression_power.py --check    # the 20 + 20 acceptance check

The table: one interleaved sweep per (background load, messages per run) of
five relays on the chatty scenario's traffic, each a `command:` target running
tests/fixtures/relay.py with a per-message CPU cost: `a` and `a2` identical
(A/A), `s5`, `s10`, `s20` with the cost raised so that they are 5, 10 and 20 %
slower (the extra cost is calibrated from a's measured time per message under
the same load; the table shows the slowdown actually measured).  The sweep's
repeats are cut into consecutive blocks of P repeats.  Paired: in each block,
`compare --baseline a --current X` on the P pairs.  Old (cross-sweep): block
i's `a` runs as the baseline sweep against block i+1's `X` runs as the current
sweep, as two CI sweeps at different times would be.  Rates are on
throughput; "gate" counts an A/A try as a false alarm when any metric
(throughput, latency p50/p99, CPU) is called a regression.

Background load "on" is one process spinning on one core for the whole
sweep; "off" is whatever else the machine runs (the load average is printed).

--check: the acceptance check, in the CI recipe's shape: 20 tries of a paired
A/A compare of the reference on the chatty scenario while one core is
loaded, and 20 tries of a relay against a 20 % slower relay; each try is
`--pairs` repeats of two candidates.  Exit 0 when 20/20 A/A tries give no
regression and 20/20 slow-relay tries are flagged.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from parbench.harness import compare as cmp
from parbench.harness.candidates import Candidate
from parbench.harness.metrics import describe_window
from parbench.harness.paired import compare_pairs
from parbench.harness.results import Results, ScenarioInfo
from parbench.harness.runner import run_sweep
from parbench.harness.scenario import load_scenario

RELAY = Path(__file__).resolve().parents[1] / "fixtures" / "relay.py"
SCENARIO = "chatty-single-sender"
THROUGHPUT = cmp.RESULTS_METRICS["throughput_msgs_per_s"]


def relay_spec(cost_us: float) -> str:
    return (f"command:{sys.executable} {RELAY} --listen {{in_port}} --forward {{out_port}} "
            f"--cost-us {cost_us:.3f}")


@contextlib.contextmanager
def background_load(on: bool):
    """One process spinning on one core while the block runs (stopped by its pid)."""
    if not on:
        yield
        return
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        burner.kill()
        burner.wait(timeout=10)


def scenario_with(messages: int):
    base = load_scenario(SCENARIO)
    return replace(base, workload=replace(base.workload, messages_per_connection=messages),
                   sweep=replace(base.sweep, partitions=(0,), warmup_s=0.0))


def sweep(scenario, candidates, repeats, partitions=(0,), out: Path | None = None, name: str = ""):
    outcome = run_sweep(scenario, candidates, list(partitions), repeats, show_progress=False, idle_s=1.0)
    if out is not None:
        results = Results(ScenarioInfo(scenario.name, str(scenario.path), scenario.raw), outcome.runs,
                          interrupted=outcome.interrupted, throughput_window=describe_window())
        results.write(out / f"{name}.json")
    return outcome.runs


def series(runs, label, partitions=0, metric="throughput_msgs_per_s"):
    """The metric of ``label``'s runs by repeat (NaN where a run errored)."""
    by_repeat = {}
    for run in runs:
        if run.label == label and run.partitions == partitions:
            value = _metric(run, metric)
            by_repeat[run.repeat] = value if run.error is None and value is not None else math.nan
    top = max(by_repeat) + 1 if by_repeat else 0
    return np.array([by_repeat.get(r, math.nan) for r in range(top)])


def _metric(run, name):
    if name.startswith("latency_ms."):
        return run.latency_ms.get(name.split(".", 1)[1])
    return getattr(run, name)


def _pairs(b, c):
    ok = np.isfinite(b) & np.isfinite(c)
    return b[ok], c[ok]


def paired_verdict(b, c, metric=THROUGHPUT, seed=cmp.DEFAULT_SEED):
    b, c = _pairs(b, c)
    return compare_pairs(b, c, metric, seed=seed).verdict


def old_verdict(b, c, metric=THROUGHPUT, seed=cmp.DEFAULT_SEED):
    b, c = b[np.isfinite(b)], c[np.isfinite(c)]
    return cmp.compare_samples(b, c, metric, seed=seed).verdict


def calibrate_cost(scenario, cost_us: float, load_on: bool) -> float:
    """Microseconds of wall time per message of the base relay, here, now."""
    with background_load(load_on):
        runs = sweep(scenario, [Candidate("a", relay_spec(cost_us), scenario)], 3)
    rates = [r.throughput_msgs_per_s for r in runs if r.error is None and r.throughput_msgs_per_s]
    if not rates:
        sys.exit("calibration runs failed: " + "; ".join(str(r.error) for r in runs))
    return 1e6 / float(np.median(rates))


def measure(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slowdowns = [float(s) / 100 for s in args.slowdowns.split(",")]
    pair_counts = sorted(int(p) for p in args.pairs.split(","))
    rows = []
    for load_on in [x == "on" for x in args.load.split(",")]:
        for messages in [int(m) for m in args.messages.split(",")]:
            scenario = scenario_with(messages)
            per_message_us = calibrate_cost(scenario, args.cost_us, load_on)
            arms = {"a": args.cost_us, "a2": args.cost_us}
            for s in slowdowns:
                # throughput (1 - s) times a's: time per message / (1 - s)
                arms[f"s{round(s * 100)}"] = args.cost_us + per_message_us * (1 / (1 - s) - 1)
            repeats = args.comparisons * max(pair_counts) + max(pair_counts)
            started = time.monotonic()
            load_before = os.getloadavg()[0]
            runs = []
            # A/A in a sweep of its own, shaped like the CI job's (two
            # candidates), so that nothing but their position tells them
            # apart; the slow relays in another, next to a.
            order = [k for k in arms if k.startswith("s")]
            for name, labels in (("aa", ["a", "a2"]), ("slow", order[1::2][::-1] + ["a"] + order[0::2])):
                candidates = [Candidate(label, relay_spec(arms[label]), scenario) for label in labels]
                with background_load(load_on):
                    runs.append(sweep(scenario, candidates, repeats, out=out,
                                      name=f"load-{'on' if load_on else 'off'}-{messages}-{name}"))
            minutes = (time.monotonic() - started) / 60
            load_after = os.getloadavg()[0]
            for found in runs:
                rows += analyse(found, "on" if load_on else "off", messages, pair_counts,
                                f"{load_before:.2f}->{load_after:.2f}", minutes)
            print(f"# load {'on' if load_on else 'off'}, {messages} messages/run: {sum(map(len, runs))} runs in "
                  f"{minutes:.1f} min, load average {load_before:.2f} -> {load_after:.2f}, "
                  f"a: {per_message_us:.2f} us/message", flush=True)
    (out / "table.json").write_text(json.dumps(rows, indent=1))
    print_table(rows)
    return 0


GATE = "any metric"
TABLE_METRICS = ("throughput_msgs_per_s", "cpu_seconds")


def analyse(runs, load: str, messages: int, pair_counts, loadavg: str = "", minutes: float = math.nan):
    """The table rows of one sweep: every candidate against ``a``, paired
    within blocks of P repeats and old-style across consecutive blocks;
    verdicts per metric and for the gate (any metric a regression)."""
    rows = []
    values = {(label, m): series(runs, label, metric=m)
              for label in {r.label for r in runs} for m in cmp.RESULTS_METRICS}
    others = sorted({r.label for r in runs} - {"a"}, key=lambda x: (x != "a2", float(x[1:]) if x != "a2" else 0))
    for label in others:
        b_all, c_all = _pairs(values[("a", "throughput_msgs_per_s")], values[(label, "throughput_msgs_per_s")])
        actual = math.expm1(float(np.median(np.log(c_all / b_all)))) if b_all.size else math.nan
        for pairs in pair_counts:
            blocks = len(values[("a", "throughput_msgs_per_s")]) // pairs
            paired = {m: [paired_verdict(values[("a", m)][i * pairs:(i + 1) * pairs],
                                         values[(label, m)][i * pairs:(i + 1) * pairs],
                                         cmp.RESULTS_METRICS[m], seed=i) for i in range(blocks)]
                      for m in cmp.RESULTS_METRICS}
            old = {m: [old_verdict(values[("a", m)][i * pairs:(i + 1) * pairs],
                                   values[(label, m)][(i + 1) * pairs:(i + 2) * pairs],
                                   cmp.RESULTS_METRICS[m], seed=i) for i in range(blocks - 1)]
                   for m in cmp.RESULTS_METRICS}
            for verdicts in (paired, old):
                verdicts[GATE] = [cmp.REGRESSION if any(verdicts[m][i] == cmp.REGRESSION
                                                        for m in cmp.RESULTS_METRICS) else cmp.NO_CHANGE
                                  for i in range(len(verdicts["cpu_seconds"]))]
            rows.append({
                "load": load, "messages": messages, "pairs": pairs,
                "candidate": label, "planted": 0.0 if label == "a2" else float(label[1:]) / 100,
                "measured": actual,
                "paired": {m: {"regression": v.count(cmp.REGRESSION), "erratic": v.count(cmp.ERRATIC),
                               "tries": len(v)} for m, v in paired.items()},
                "old": {m: {"regression": v.count(cmp.REGRESSION), "erratic": v.count(cmp.ERRATIC),
                            "tries": len(v)} for m, v in old.items()},
                "loadavg": loadavg, "minutes": minutes,
            })
    return rows


def reanalyse(args) -> int:
    """The table again from the results files a measurement wrote (e.g. after
    changing the method), without running anything."""
    rows = []
    for path in sorted(Path(args.reanalyse).glob("load-*-*.json")):
        _, load, messages, *_ = path.stem.split("-")
        runs = Results.load(path).runs
        rows += analyse(runs, load, int(messages), sorted(int(p) for p in args.pairs.split(",")))
    checks = {name: Path(args.reanalyse) / f"check-{name}.json" for name in ("aa", "slow")}
    if not rows and not any(p.exists() for p in checks.values()):
        sys.exit(f"{args.reanalyse}: no load-*-*.json or check-*.json results files")
    if rows:
        print_table(rows)
    for name, path in checks.items():
        if path.exists():
            summarise_check(name, Results.load(path).runs, sorted(int(p) for p in args.pairs.split(",")))
    return 0


def summarise_check(name: str, runs, pair_counts) -> None:
    """A saved acceptance-check sweep cut into tries of P pairs: per P, the
    tries the gate (any metric) calls a regression, and each metric's
    verdicts (R regression, I improvement, E erratic)."""
    base, current = ("a", "b") if name == "aa" else ("base", "slow")
    partitions = sorted({r.partitions for r in runs})
    print(f"\ncheck-{name}: {current} against {base}, partitions {partitions}, {len(runs)} runs")
    for pairs in pair_counts:
        tries = len(series(runs, base, partitions[0])) // pairs
        verdicts = {}
        for m in cmp.RESULTS_METRICS:
            for p in partitions:
                b, c = series(runs, base, p, m), series(runs, current, p, m)
                verdicts[(m, p)] = [paired_verdict(b[i * pairs:(i + 1) * pairs], c[i * pairs:(i + 1) * pairs],
                                                   cmp.RESULTS_METRICS[m], seed=i) for i in range(tries)]
        gate = sum(any(v[i] == cmp.REGRESSION for v in verdicts.values()) for i in range(tries))
        detail = "; ".join(
            f"{m} p={p}: R{v.count(cmp.REGRESSION)} I{v.count(cmp.IMPROVEMENT)} E{v.count(cmp.ERRATIC)}"
            for (m, p), v in verdicts.items())
        print(f"  {pairs} pairs: gate regression in {gate}/{tries} tries ({detail})")


def print_table(rows) -> None:
    def cell(counts):
        return f"{counts['regression']}/{counts['tries']}"

    print()
    print("Regression verdicts / tries. A/A rows: false alarms (goal: at most 1 in 100); slowdown rows: "
          "detections (goal: at least 90 % for -10 %). Erratic = no answer (counted in tries).")
    print()
    print("| load | msgs/run | pairs | planted | measured | paired: throughput | paired: CPU | paired: gate "
          "| old: throughput | old: CPU | old: gate | erratic throughput, paired / old |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        planted = "A/A" if r["candidate"] == "a2" else f"-{r['planted']:.0%}"
        p, o = r["paired"], r["old"]
        print(f"| {r['load']} | {r['messages']:,} | {r['pairs']} | {planted} | {r['measured']:+.1%} "
              f"| {cell(p['throughput_msgs_per_s'])} | {cell(p['cpu_seconds'])} | {cell(p[GATE])} "
              f"| {cell(o['throughput_msgs_per_s'])} | {cell(o['cpu_seconds'])} | {cell(o[GATE])} "
              f"| {p['throughput_msgs_per_s']['erratic']} / {o['throughput_msgs_per_s']['erratic']} |")
    print("\ngate: the CI job's view, a regression in any metric (throughput, latency p50/p99, CPU "
          "seconds). Measured: the median paired change of throughput over the whole sweep.")


def check(args) -> int:
    """20 A/A tries of the reference on the chatty scenario under load, and
    20 tries of a relay against a 20 % slower one: every verdict as a CI job
    would see it (any metric, every partition count)."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tries, pairs = args.tries, args.check_pairs
    chatty = load_scenario(SCENARIO)
    partitions = [int(p) for p in args.check_partitions.split(",")]
    relay_scenario = scenario_with(chatty.workload.messages_per_connection)
    per_message_us = calibrate_cost(relay_scenario, args.cost_us, True)
    slow_cost = args.cost_us + per_message_us * (1 / 0.8 - 1)
    verdicts = {}
    with background_load(True):
        load_before = os.getloadavg()[0]
        aa = sweep(chatty, [Candidate("a", "reference", chatty), Candidate("b", "reference", chatty)],
                   tries * pairs, partitions, out=out, name="check-aa")
        slow = sweep(relay_scenario, [Candidate("base", relay_spec(args.cost_us), relay_scenario),
                                      Candidate("slow", relay_spec(slow_cost), relay_scenario)],
                     tries * pairs, out=out, name="check-slow")
        load_after = os.getloadavg()[0]
    for name, runs, (b, c), parts, metrics in (
            ("A/A reference, chatty", aa, ("a", "b"), partitions, list(cmp.RESULTS_METRICS)),
            ("relay 20 % slower", slow, ("base", "slow"), [0], list(cmp.RESULTS_METRICS))):
        found = []
        for i in range(tries):
            window = slice(i * pairs, (i + 1) * pairs)
            found.append([paired_verdict(series(runs, b, p, m)[window], series(runs, c, p, m)[window],
                                         cmp.RESULTS_METRICS[m], seed=i)
                          for p in parts for m in metrics])
        verdicts[name] = found
    aa_clean = sum(cmp.REGRESSION not in v for v in verdicts["A/A reference, chatty"])
    flagged = sum(cmp.REGRESSION in v for v in verdicts["relay 20 % slower"])
    by_metric = {m: sum(v[i] == cmp.REGRESSION for v in verdicts["relay 20 % slower"])
                 for i, m in enumerate(cmp.RESULTS_METRICS)}
    aa_by_metric = {m: sum(v[j * len(cmp.RESULTS_METRICS) + i] == cmp.REGRESSION
                           for v in verdicts["A/A reference, chatty"] for j in range(len(partitions)))
                    for i, m in enumerate(cmp.RESULTS_METRICS)}
    print(f"load average {load_before:.2f} -> {load_after:.2f} (one core loaded by a spinning process)")
    print(f"A/A paired, reference, chatty partitions {args.check_partitions}, {pairs} pairs, every metric: "
          f"{aa_clean}/{tries} tries with no regression")
    print(f"  false regressions by metric (over partitions): {aa_by_metric}")
    print(f"relay 20 % slower, {pairs} pairs, every metric: {flagged}/{tries} tries flagged as a regression")
    print(f"  flagged by metric: {by_metric}")
    ok = aa_clean == tries and flagged == tries
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="the 20 + 20 acceptance check instead of the table")
    parser.add_argument("--comparisons", type=int, default=20,
                        help="blocks of the largest --pairs per condition (A/A tries at that run length)")
    parser.add_argument("--pairs", default="5,10", help="repeats per comparison (run lengths), e.g. 5,10,20")
    parser.add_argument("--messages", default="50000,200000", help="messages per run (run lengths)")
    parser.add_argument("--load", default="off,on", help="background load conditions")
    parser.add_argument("--slowdowns", default="5,10,20", help="planted slowdowns, percent")
    parser.add_argument("--cost-us", type=float, default=5.0, help="the base relay's CPU cost per message")
    parser.add_argument("--tries", type=int, default=20, help="--check: tries of each kind")
    parser.add_argument("--check-pairs", type=int, default=20,
                        help="--check: repeats per try (the CI recipe's run length)")
    parser.add_argument("--check-partitions", default="0,2", help="--check: partition counts of the A/A sweep")
    parser.add_argument("--out", default="reports/regression-power", help="results files and table.json")
    parser.add_argument("--reanalyse", metavar="DIR", help="print the table from the results files in DIR")
    args = parser.parse_args(argv)
    if args.reanalyse:
        return reanalyse(args)
    return check(args) if args.check else measure(args)


if __name__ == "__main__":
    sys.exit(main())
