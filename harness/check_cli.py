"""``parbench check CAPTURE... [--scenario FILE] [--expect SENT]...``: check
output captured anywhere.

A capture is a file of output lines from any deployment fed with a
scenario's traffic (each line ending in the original MSG, so the 56-byte
parbench trailer is at its end).  Several captures (one per output of a
deployment, or one per shard's collector) are merged into one check, each
file a stream of its own.  What was sent is regenerated from the scenario's
seed.  Exit status: 0 when the expectation holds, 1 when it is broken, 2 on
bad input (one line saying which file and what was expected).

How many messages each connection sent: ``--expect`` files written by
``parbench send --expect-out`` (merged, one per shard; they carry the flags
that changed the scenario's workload, so ``--scenario`` may be left out),
else ``--sent-per-connection``, else the scenario's count, else (a
duration-bound scenario) the highest sequence number seen from each
connection; ``harness.capture_check`` has the details.

``--format loggen`` checks plain loggen traffic instead (loss, duplicates
and per-connection order, from the ``seq: ..., thread: ...`` loggen puts in
every message; ``harness.syslog_ng.loggen_lines``).
"""
from __future__ import annotations

import json

import click

from parbench.errors import RunFailure, UsageError
from parbench.harness import checks
from parbench.harness.balance import key_counts, predicted_partitions
from parbench.harness.capture_check import CaptureCheck, check_loggen, check_parbench, read_captures
from parbench.harness.scenario import ORDERINGS

SHOWN_WITNESSES = 5
CAPTURE_FORMATS = ("parbench", "loggen")


@click.command("check")
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...",
                type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--scenario", "scenario_path", type=click.Path(dir_okay=False),
              help="Scenario file (or shipped name) whose workload produced the traffic. Not needed with --expect.")
@click.option("--expect", "expect_files", multiple=True, type=click.Path(dir_okay=False),
              help="What a sender sent: a file from `parbench send --expect-out` (repeatable, one per shard).")
@click.option("--format", "capture_format", type=click.Choice(CAPTURE_FORMATS), default="parbench",
              show_default=True,
              help="parbench: lines ending in the parbench trailer. loggen: plain loggen traffic "
                   "('seq: ..., thread: ...'), checked per connection.")
@click.option("--partitions", type=click.IntRange(0, 32), default=None,
              help="Partition count of the deployment: prints the per-partition balance predicted "
                   "from the received keys (g_str_hash % N) when the key is the scenario's key field.")
@click.option("--ordering", type=click.Choice(ORDERINGS), default=None,
              help="Override the expected ordering (default: the scenario's; per-connection for loggen).")
@click.option("--sent-per-connection", type=click.IntRange(0), default=None,
              help="Messages each connection sent (default: the scenario's count; loggen: its -n, else the "
                   "highest seq seen + 1).")
@click.option("--connections", type=click.IntRange(1), default=None,
              help="loggen: how many connections sent (its --active-connections; default: the highest "
                   "thread seen + 1).")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
def check(captures: tuple[str, ...], scenario_path: str | None, expect_files: tuple[str, ...],
          capture_format: str, partitions: int | None, ordering: str | None,
          sent_per_connection: int | None, connections: int | None, as_json: bool) -> None:
    """Check captures of parbench-generated (or loggen) traffic for loss, duplicates and order.

    CAPTURE is a file of output lines (``-`` reads standard input); several
    are merged into one check (the outputs of one deployment, or of shards)."""
    if capture_format == "loggen":
        if expect_files:
            raise UsageError("--expect: only for parbench traffic (--format parbench)")
        done = check_loggen(captures, scenario=scenario_path, ordering=ordering, connections=connections,
                            sent_per_connection=sent_per_connection)
    else:
        if connections is not None:
            raise UsageError("--connections: only with --format loggen (a scenario says how many connections)")
        done = check_parbench(read_captures(captures), scenario_path, expect_files=expect_files,
                              sent_per_connection=sent_per_connection, ordering=ordering)
    result, expect = done.result, done.expect
    verdict, reasons = done.verdict()
    predicted = None
    if partitions and done.scenario is not None:
        n_keys = done.expected.n_keys
        predicted = predicted_partitions(done.scenario, partitions, key_counts(done.records.key, n_keys))
    if as_json:
        out = {"captures": list(captures), "format": capture_format, "source": done.source,
               "checks": result.to_json(),
               "expectation": {"ordering": expect.ordering, "loss_allowed": expect.loss_allowed,
                               "prohibited": list(expect.prohibited)},
               "verdict": verdict, "verdict_reasons": reasons, "notes": done.notes}
        if done.scenario is not None:
            out["scenario"] = done.scenario.name
        if len(captures) == 1:
            out["capture"] = captures[0]
        if partitions:
            out["partition_predicted"] = predicted
        click.echo(json.dumps(out, indent=2))
    else:
        _print_human(captures, done, verdict, reasons, partitions, predicted)
    if verdict != checks.PASS:
        broken = [name for name in expect.prohibited if result.count(name)]
        raise RunFailure(f"verdict {verdict}: " + (", ".join(broken) if broken else "; ".join(reasons)))


def _print_human(captures, done: CaptureCheck, verdict, reasons, partitions, predicted) -> None:
    echo = click.echo
    result, expect, records = done.result, done.expect, done.records
    stats = result.stats
    kind = "loggen" if done.source == "loggen" else "parbench"
    sender = (f"by loggen on {done.expected.n_connections} connection(s)" if done.source == "loggen"
              else f"by {done.source}")
    echo(f"{' + '.join(captures)}: {stats['received']} {kind} lines of {records.lines_total}, "
         f"{stats['sent']} messages sent {sender}")
    if len(captures) > 1:
        echo("  streams: " + ", ".join(f"{i} = {path}" for i, path in enumerate(captures)))
    for note in done.notes:
        echo(f"  note: {note}")
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
        elif done.source == "loggen":
            echo("  no partition prediction: loggen traffic has one host and one program")
        else:
            echo("  no partition prediction: the partition key is not the scenario's key field")
    echo(f"{verdict.upper()}: expected ordering {expect.ordering!r}, loss "
         f"{'allowed' if expect.loss_allowed else 'not allowed'}; prohibited: {', '.join(expect.prohibited)}")
    for reason in reasons:
        echo(f"  - {reason}")
