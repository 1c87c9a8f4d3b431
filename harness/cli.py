"""``parbench run``: scenario files -> runs against implementations -> reports.

Exit status: 0 every run met its scenario's expectation; 1 a run broke it or
could not complete; 2 bad input (scenario, option), with one line on stderr;
130 interrupted (Ctrl-C), after writing the partial report.
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click

from parbench.harness.targets.registry import impl_help, parse_impls

EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _fail_usage(message: str) -> None:
    click.echo(f"parbench run: {message}", err=True)
    sys.exit(EXIT_USAGE)


def parse_partitions(text: str) -> list[int]:
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) > 32:
            raise ValueError(f"--partitions: {part!r} is not a partition count; expected comma-separated "
                             "integers 0..32 (0 = no parallelize()), e.g. 1,2,4,8")
        values.append(int(part))
    return list(dict.fromkeys(values))


class _ImplOption(click.Option):
    """``--impl``, whose help lists the registered kinds when it is shown,
    so a kind registered after this module was imported is listed too."""

    def get_help_record(self, ctx: click.Context):
        self.help = (f"Implementation to run: {impl_help()}. NAME= labels it in reports "
                     "(base=syslog-ng:/opt/a). Repeatable. Default: the scenario's sweep.implementations.")
        return super().get_help_record(ctx)


@click.command("run")
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--impl", "impls", multiple=True, metavar="[NAME=]KIND[:ARG]", cls=_ImplOption)
@click.option("--partitions", "partitions_text", metavar="LIST",
              help="Partition counts to sweep, e.g. 0,1,2,4 (0 = no parallelize()). Default: the scenario's.")
@click.option("--repeat", "repeats", type=click.IntRange(1, 1000), help="Repeats per point (default: the scenario's).")
@click.option("--quick", is_flag=True, help="A few thousand messages, at most two partition counts, one repeat.")
@click.option("--out", "out_dir", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="Where reports/<scenario>/<timestamp>/ go.")
@click.option("--profile", default=None,
              help="Reference version profile. Default: the one modelling the detected syslog-ng / AxoSyslog when "
                   "the sweep runs one (one reference run per profile when they need several), else the "
                   "scenario's pipeline.profile.")
@click.option("--syslog-ng", "syslog_ng", metavar="PATH", type=click.Path(),
              help="Your own syslog-ng / AxoSyslog binary (or install prefix) for the syslog-ng implementation "
                   "(same as --impl syslog-ng:PATH).")
@click.option("--no-progress", is_flag=True, help="No progress bar (e.g. in CI logs).")
def run(scenarios, impls, partitions_text, repeats, quick, out_dir, profile, syslog_ng, no_progress) -> None:
    """Run SCENARIO files against implementations; check every message and write reports.

    Example: parbench run scenarios/chatty-single-sender.toml --quick
    """
    try:
        _run(scenarios, impls, partitions_text, repeats, quick, out_dir, profile, syslog_ng, no_progress)
    except KeyboardInterrupt:
        # Only reachable before or between sweeps: a sweep catches its own
        # Ctrl-C, stops its target and writes the partial report.
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


def with_syslog_ng_path(specs: list[str], path: str | None) -> list[str]:
    """The implementation specs with each bare ``[NAME=]syslog-ng`` pointed
    at ``path``.  ImplSpecError for a spec no kind reads."""
    if path is None:
        return list(specs)
    parsed = parse_impls(specs)
    if not any(spec.kind == "syslog-ng" and spec.argument is None for spec in parsed):
        raise ValueError("--syslog-ng was given but no syslog-ng implementation runs; add --impl syslog-ng")
    return [replace(spec, argument=path).text if spec.kind == "syslog-ng" and spec.argument is None else text
            for spec, text in zip(parsed, specs)]


def _run(scenarios, impls, partitions_text, repeats, quick, out_dir, profile, syslog_ng, no_progress) -> None:
    from parbench.harness.scenario import ScenarioError, apply_quick, load_scenario
    from parbench.harness.targets.base import TargetError
    from parbench.harness.targets.kind import ImplSpecError
    from parbench.harness.targets.registry import get_target

    partitions = None
    if partitions_text:
        try:
            partitions = parse_partitions(partitions_text)
        except ValueError as exc:
            _fail_usage(str(exc))
    if profile is not None:
        from parbench.reference.profiles import PROFILES

        if profile not in PROFILES:
            _fail_usage(f"--profile: unknown profile {profile!r}; known: {', '.join(sorted(PROFILES))}")

    loaded = []
    for path in scenarios:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            click.echo(str(exc).splitlines()[0] if str(exc) else f"{path}: invalid scenario", err=True)
            sys.exit(EXIT_USAGE)
        loaded.append(apply_quick(scenario) if quick else scenario)

    chosen_by_scenario = []
    for scenario in loaded:
        chosen = list(impls or scenario.sweep.implementations or ("reference",))
        try:
            parse_impls(chosen)
            chosen = with_syslog_ng_path(chosen, syslog_ng)
        except ImplSpecError as exc:
            _fail_usage(f"--impl: {exc}" if impls
                        else f"{scenario.path}: sweep.implementations[{exc.index}]: {exc}")
        except ValueError as exc:
            _fail_usage(f"{scenario.path}: {exc}")
        chosen_by_scenario.append(chosen)
        for spec in chosen:
            try:
                get_target(spec)
            except TargetError as exc:
                _fail_usage(f"--impl {spec!r}: {exc}" if impls else f"{scenario.path}: sweep.implementations: {exc}")

    from parbench.harness.metrics import describe_window
    from parbench.harness.report import write_report
    from parbench.harness.results import build_results
    from parbench.harness.runner import run_sweep

    any_failed = False
    for scenario, chosen in zip(loaded, chosen_by_scenario):
        outcome = run_sweep(scenario, chosen, partitions, repeats, profile=profile, show_progress=not no_progress)
        doc = build_results(scenario.name, scenario.path, scenario.raw, outcome.runs,
                            interrupted=outcome.interrupted, throughput_window=describe_window())
        directory = write_report(doc, Path(out_dir))
        if outcome.profile_reasons:
            for name, reason in outcome.profile_reasons.items():
                click.echo(f"{scenario.name}: reference[{name}] runs version profile {name} ({reason})")
        elif outcome.profile:
            click.echo(f"{scenario.name}: reference version profile {outcome.profile} ({outcome.profile_reason})")
        passed = sum(r["verdict"] == "pass" for r in outcome.runs)
        click.echo(f"{scenario.name}: {passed}/{len(outcome.runs)} runs pass; report: {directory / 'report.md'}")
        if passed != len(outcome.runs) or not outcome.runs:
            any_failed = True
        if outcome.interrupted:
            click.echo("interrupted: partial results written", err=True)
            sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_FAIL if any_failed else 0)
