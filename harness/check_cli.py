"""``parbench check CAPTURE --scenario FILE``: check output captured anywhere.

The capture is a file of output lines from any deployment fed with the
scenario's traffic (each line ending in the original MSG, so the 56-byte
parbench trailer is at its end).  What was sent is regenerated from the
scenario's seed.  Exit status: 0 when the expectation holds, 1 when it is
broken, 2 on bad input (one line saying which file and what was expected).

A duration-bound scenario sends an unknown number of messages; then each
connection is taken to have sent up to the highest sequence number seen from
it (a loss at the very end of a connection is invisible), unless
``--sent-per-connection`` says how many.
"""
from __future__ import annotations

import json
import sys
from dataclasses import replace

import click
import numpy as np

from parbench.harness.scenario import ORDERINGS, ScenarioError, load_scenario

SHOWN_WITNESSES = 5


def _fail_input(message: str) -> None:
    click.echo(f"parbench check: {message}", err=True)
    sys.exit(2)


def _predicted(keys: tuple[str, ...], key_counts: np.ndarray, partitions: int, scenario) -> list[int] | None:
    """Messages per partition under keyed placement, when the partition key is
    the scenario's key field itself (otherwise the key needs the whole message)."""
    field = scenario.workload.key_field
    if scenario.pipeline.partition_key not in (f"${field}", f"${{{field}}}"):
        return None
    try:
        from parbench.reference.partition import g_str_hash
    except ImportError:
        return None
    placement = np.array([g_str_hash(k.encode()) % partitions for k in keys], dtype=np.int64)
    return np.bincount(placement, weights=key_counts, minlength=partitions).astype(np.int64).tolist()


@click.command("check")
@click.argument("capture", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--scenario", "scenario_path", required=True, type=click.Path(dir_okay=False),
              help="Scenario file whose workload produced the traffic.")
@click.option("--partitions", type=click.IntRange(0, 32), default=None,
              help="Partition count of the deployment: prints the per-partition balance predicted "
                   "from the received keys (g_str_hash % N) when the key is the scenario's key field.")
@click.option("--ordering", type=click.Choice(ORDERINGS), default=None,
              help="Override the scenario's expected ordering.")
@click.option("--sent-per-connection", type=click.IntRange(0), default=None,
              help="Messages each connection sent (default: the scenario's count).")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
def check(capture: str, scenario_path: str, partitions: int | None, ordering: str | None,
          sent_per_connection: int | None, as_json: bool) -> None:
    """Check a capture of parbench-generated traffic for loss, duplicates and order.

    CAPTURE is a file of output lines (``-`` reads standard input)."""
    from parbench.harness.checks import check as run_check
    from parbench.harness.collector import Capture, parse_capture
    from parbench.harness.workload import build_plan

    try:
        scenario = load_scenario(scenario_path)
    except ScenarioError as e:
        _fail_input(str(e))
    try:
        cap = Capture.from_file(capture)
    except OSError as e:
        _fail_input(f"{capture}: cannot read: {e.strerror or e}")
    expect = scenario.expect if ordering is None else replace(scenario.expect, ordering=ordering)
    plan = build_plan(scenario.workload)
    records = parse_capture(cap)
    n_conn = plan.n_connections
    if sent_per_connection is not None:
        sent = np.full(n_conn, sent_per_connection, dtype=np.int64)
        if (sent > plan.messages_per_connection).any():
            _fail_input(f"--sent-per-connection: expected at most {int(plan.messages_per_connection[0])} "
                        f"(the scenario's plan), got {sent_per_connection}")
    elif scenario.workload.duration_s is not None:
        sent = np.zeros(n_conn, dtype=np.int64)
        ok = records.conn < n_conn
        np.maximum.at(sent, records.conn[ok].astype(np.int64), records.cseq[ok].astype(np.int64) + 1)
        sent = np.minimum(sent, plan.messages_per_connection)
    else:
        sent = plan.messages_per_connection
    expected = plan.expected_for(sent)
    result = run_check(records, expected, expect.ordering)
    ok, reasons = result.verdict(expect)
    if as_json:
        out = {"capture": capture, "scenario": scenario.name, "checks": result.to_dict(),
               "expectation": {"ordering": expect.ordering, "loss_allowed": expect.loss_allowed},
               "verdict": "pass" if ok else "fail", "verdict_reasons": reasons}
        if partitions:
            out["partition_predicted"] = _predicted(plan.key_names, _key_counts(records, len(plan.key_names)),
                                                    partitions, scenario)
        click.echo(json.dumps(out, indent=2))
    else:
        _print_human(capture, scenario, result, expect, ok, reasons, records, plan.key_names, partitions)
    sys.exit(0 if ok else 1)


def _key_counts(records, n_keys: int) -> np.ndarray:
    k = records.key[records.key < n_keys].astype(np.int64)
    return np.bincount(k, minlength=n_keys)


def _print_human(capture, scenario, r, expect, ok, reasons, records, key_names, partitions) -> None:
    echo = click.echo
    name = scenario.name
    echo(f"{capture}: {r.received} parbench lines of {records.lines_total} "
         f"({r.malformed} malformed), {r.sent} messages sent by scenario {name}")
    echo(f"  lost {r.lost}, duplicated {r.duplicated} (+{r.duplicate_copies} copies), unexpected {r.unexpected}")
    echo(f"  nonmonotonic per (connection, key) {r.nonmonotonic_per_key}, per connection "
         f"{r.nonmonotonic_per_connection}; inverted same-key pairs {r.inverted_pair_share:.4%}, "
         f"largest displacement {r.max_displacement}")
    totals = {"lost": r.lost, "duplicated": r.duplicated, "unexpected": r.unexpected,
              "nonmonotonic_per_key": r.nonmonotonic_per_key,
              "nonmonotonic_per_connection": r.nonmonotonic_per_connection}
    for kind, ws in r.witnesses.items():
        for w in ws[:SHOWN_WITNESSES]:
            echo(f"  {kind}: " + ", ".join(f"{k}={v}" for k, v in w.items()))
        if totals[kind] > SHOWN_WITNESSES:
            echo(f"  {kind}: ... {totals[kind] - SHOWN_WITNESSES} more (--json shows {len(ws)})")
    for ex in r.malformed_examples:
        echo(f"  malformed: {ex}")
    if partitions:
        pred = _predicted(key_names, _key_counts(records, len(key_names)), partitions, scenario)
        if pred is not None:
            echo(f"  predicted messages per partition (g_str_hash % {partitions}): {pred}")
        else:
            echo("  no partition prediction: the partition key is not the scenario's key field")
    verdict = "PASS" if ok else "FAIL"
    echo(f"{verdict}: expected ordering {expect.ordering!r}, loss {'allowed' if expect.loss_allowed else 'not allowed'}")
    for reason in reasons:
        echo(f"  - {reason}")
