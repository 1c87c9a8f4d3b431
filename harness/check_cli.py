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
from dataclasses import replace

import click
import numpy as np

from parbench.errors import RunFailure, UsageError
from parbench.harness import checks
from parbench.harness.balance import key_counts, predicted_partitions
from parbench.harness.budget import check_fits
from parbench.harness.collector import Capture, parse_capture
from parbench.harness.scenario import ORDERINGS, load_scenario
from parbench.harness.workload import build_plan

SHOWN_WITNESSES = 5


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
    scenario = load_scenario(scenario_path)
    check_fits(scenario)
    try:
        cap = Capture.from_file(capture)
    except OSError as e:
        raise UsageError(f"{capture}: cannot read: {e.strerror or e}") from None
    expect = scenario.expect if ordering is None else replace(scenario.expect, ordering=ordering)
    plan = build_plan(scenario.workload)
    records = parse_capture(cap)
    n_conn = plan.n_connections
    if sent_per_connection is not None:
        sent = np.full(n_conn, sent_per_connection, dtype=np.int64)
        if (sent > plan.messages_per_connection).any():
            raise UsageError(f"--sent-per-connection: expected at most {int(plan.messages_per_connection[0])} "
                             f"(the scenario's plan), got {sent_per_connection}")
    elif scenario.workload.duration_s is not None:
        sent = np.zeros(n_conn, dtype=np.int64)
        ok = records.conn < n_conn
        np.maximum.at(sent, records.conn[ok].astype(np.int64), records.cseq[ok].astype(np.int64) + 1)
        sent = np.minimum(sent, plan.messages_per_connection)
    else:
        sent = plan.messages_per_connection
    result = checks.check(records, plan.expected_for(sent))
    verdict, reasons = result.verdict(expect)
    predicted = (predicted_partitions(scenario, partitions, key_counts(records.key, len(plan.key_names)))
                 if partitions else None)
    if as_json:
        out = {"capture": capture, "scenario": scenario.name, "checks": result.to_json(),
               "expectation": {"ordering": expect.ordering, "loss_allowed": expect.loss_allowed,
                               "prohibited": list(expect.prohibited)},
               "verdict": verdict, "verdict_reasons": reasons}
        if partitions:
            out["partition_predicted"] = predicted
        click.echo(json.dumps(out, indent=2))
    else:
        _print_human(capture, scenario, result, expect, verdict, reasons, records, partitions, predicted)
    if verdict != checks.PASS:
        broken = [name for name in expect.prohibited if result.count(name)]
        raise RunFailure(f"verdict {verdict}: " + (", ".join(broken) if broken else "; ".join(reasons)))


def _print_human(capture, scenario, result, expect, verdict, reasons, records, partitions, predicted) -> None:
    echo = click.echo
    stats = result.stats
    echo(f"{capture}: {stats['received']} parbench lines of {records.lines_total}, "
         f"{stats['sent']} messages sent by scenario {scenario.name}")
    echo("  anomalies: " + ", ".join(f"{name} {a.count}" for name, a in result.anomalies.items()))
    echo(f"  duplicate copies {stats.get('duplicate_copies', 0)}, inverted same-key pairs "
         f"{stats.get('inverted_pair_share', 0.0):.4%}, largest displacement {stats.get('max_displacement', 0)}")
    for name, found in result.anomalies.items():
        for w in found.witnesses[:SHOWN_WITNESSES]:
            echo(f"  {name}: {checks.format_witness(w)}")
        if found.count > SHOWN_WITNESSES:
            echo(f"  {name}: ... {found.count - SHOWN_WITNESSES} more (--json shows {len(found.witnesses)})")
    if partitions:
        if predicted is not None:
            echo(f"  predicted messages per partition (g_str_hash % {partitions}): {predicted}")
        else:
            echo("  no partition prediction: the partition key is not the scenario's key field")
    echo(f"{verdict.upper()}: expected ordering {expect.ordering!r}, loss "
         f"{'allowed' if expect.loss_allowed else 'not allowed'}; prohibited: {', '.join(expect.prohibited)}")
    for reason in reasons:
        echo(f"  - {reason}")
