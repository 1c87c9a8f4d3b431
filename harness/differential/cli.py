"""``parbench diff``: does the reference make of each message what a real
implementation makes of it?

    parbench diff [CONF] --impl syslog-ng [--impl NAME=syslog-ng:PATH]... [--corpus FILE]
                  [--section NAME]... [--source NAME] [--json OUT] [--show-documented]

Exit 0 when every case is identical or a documented divergence, 1 when a
case differs or could not be run, 2 for bad input (a configuration the
reference does not run, a corpus it cannot read, an implementation not
runnable here).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from parbench.errors import EXIT_FAIL
from parbench.harness.differential.compare import STATUSES, Comparison
from parbench.harness.differential.corpus import encode_bytes, load_corpus, shipped_corpus_path
from parbench.harness.differential.session import check_impls, config_groups, run_diff
from parbench.harness.targets import registry

PAYLOAD_SHOWN = 160


SHOWN = {"identical": "identical", "documented": "documented", "differs": "differ", "error": "errors"}


def summary_line(comparison: Comparison) -> str:
    counts = ", ".join(f"{comparison.count(status)} {SHOWN[status]}" for status in STATUSES)
    version = f" ({comparison.version})" if comparison.version and comparison.version != comparison.impl else ""
    return f"[{comparison.section}] {comparison.impl}{version} vs {comparison.reference}: {counts}"


def detail_lines(comparison: Comparison, show_documented: bool) -> list[str]:
    out = [f"  cannot compare: {error}" for error in comparison.errors]
    for verdict in comparison.verdicts:
        if verdict.status == "identical" or (verdict.status == "documented" and not show_documented):
            continue
        case = verdict.case
        payload = encode_bytes(case.payload)
        if len(payload) > PAYLOAD_SHOWN:
            payload = payload[:PAYLOAD_SHOWN] + "..."
        mark = f" {verdict.mark}" if verdict.mark else ""
        out.append(f"  {verdict.status}{mark}: {case.name} (line {case.line}) \"{payload}\"")
        if case.where:
            out.append(f"    decided in: {case.where}")
        out += [f"    {line}" for line in verdict.lines]
    for verdict in comparison.stale:
        out.append(f"  note: {verdict.case.name} (line {verdict.case.line}) is marked {verdict.stale_mark} "
                   "but is identical; the mark can go")
    return out


def to_json(comparisons: list[Comparison]) -> dict:
    return {
        "schema": "parbench.diff/1",
        "comparisons": [
            {"section": c.section, "config": c.config, "impl": c.impl, "version": c.version,
             "reference": c.reference, "errors": c.errors,
             "counts": {status: c.count(status) for status in STATUSES},
             "stale_marks": [v.case.name for v in c.stale],
             "cases": {v.case.name: {"status": v.status, "mark": str(v.mark) if v.mark else None,
                                     "differences": v.lines} for v in c.verdicts}}
            for c in comparisons
        ],
    }


@click.command("diff")
@click.argument("config", metavar="[CONF]", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--impl", "impls", multiple=True, metavar="SPEC",
              help="A real implementation to compare with the reference (repeatable): "
                   + "; ".join(f"{k.syntax}" for k in registry.kinds() if k.runs_config_text and k.name != "reference"))
@click.option("--corpus", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Corpus file (default: the one parbench ships).")
@click.option("--section", "sections", multiple=True, metavar="NAME",
              help="Only these sections of the corpus (repeatable).")
@click.option("--source", default=None, metavar="NAME",
              help="Send to this named source of CONF (default: the first source driver).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write every verdict as JSON here.")
@click.option("--show-documented", is_flag=True, help="Print the documented divergences too.")
def diff(config, impls, corpus, sections, source, json_out, show_documented):
    """Run CONF (a syslog-ng configuration the reference runs) in the
    reference and in each --impl, send every case of the corpus on a
    connection of its own, and compare what each made of it, macro by macro.

    Without CONF each corpus section runs with the configuration it names.
    The configuration's destinations are replaced by parbench's collector,
    its sources listen on free loopback ports and parallelize() runs as the
    bypass; everything else runs as written.  Only the received time and the
    process id in messages an implementation generates are masked.  Exit 0:
    every case identical or a documented divergence; 1: a case differs or
    could not be run; 2: bad input."""
    specs = check_impls(impls)
    loaded = load_corpus(corpus or shipped_corpus_path())
    groups = config_groups(loaded, sections, config)
    with tempfile.TemporaryDirectory(prefix="parbench-diff-") as tmp:
        comparisons = run_diff(groups, specs, Path(tmp), source,
                               progress=lambda line: click.echo(f"running {line}", err=True))
    for comparison in comparisons:
        click.echo(summary_line(comparison))
    for comparison in comparisons:
        lines = detail_lines(comparison, show_documented)
        if lines:
            click.echo(f"\n[{comparison.section}] {comparison.impl}:")
            click.echo("\n".join(lines))
    if json_out is not None:
        json_out.write_text(json.dumps(to_json(comparisons), indent=1) + "\n")
    if any(c.failed for c in comparisons):
        raise click.exceptions.Exit(EXIT_FAIL)
