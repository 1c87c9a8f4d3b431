"""``parbench run``: scenario files -> runs against implementations -> reports.

Exit status (through the errors it raises, ``parbench.errors``): 0 every run
met its scenario's expectation; 1 a run broke it or could not complete; 2 bad
input (scenario, option), with one line on stderr; 128 + the signal number
when SIGINT (130), SIGTERM (143) or SIGHUP (129) ended the sweep: the
target is stopped, the temp dir removed and the runs finished so far are
written (``interrupted`` set) before it exits.
"""
from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path

import click

from parbench import interrupts
from parbench.errors import Interrupted, RunFailure, UsageError
from parbench.harness.targets.registry import impl_help, kind_of, parse_impls
from parbench.reference.profiles import PROFILES


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
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default=None,
              help="Reference version profile. Default: the one modelling the detected syslog-ng / AxoSyslog when "
                   "the sweep runs one (one reference run per profile when they need several), else the "
                   "scenario's pipeline.profile.")
@click.option("--syslog-ng", "syslog_ng", metavar="PATH", type=click.Path(),
              help="Your own syslog-ng / AxoSyslog binary (or install prefix) for the syslog-ng implementation "
                   "(same as --impl syslog-ng:PATH).")
@click.option("--variants", "variants_text", metavar="LIST",
              help="Scenario variants to run, e.g. base,head: each [variants.NAME] of the scenario runs as a "
                   "candidate labelled NAME, interleaved with the others ('base' = the scenario as written). "
                   "Default: every variant the scenario defines.")
@click.option("--no-progress", is_flag=True, help="No progress bar (e.g. in CI logs).")
@click.option("--trust-scenario", is_flag=True,
              help="Let the scenario files' sweep.implementations name programs to run (command:ARGV, "
                   "syslog-ng:PATH); without it only --impl may.")
@click.option("--junit-xml", "junit_path", type=click.Path(dir_okay=False), default=None,
              help="Also write JUnit XML: one test case per run; a failure carries its reasons and witnesses.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a machine-readable summary (JSON, with each results.json path) on stdout; "
                   "the human lines go to stderr.")
def run(scenarios, impls, partitions_text, repeats, quick, out_dir, profile, syslog_ng, variants_text,
        no_progress, trust_scenario, junit_path, as_json) -> None:
    """Run SCENARIO files against implementations; check every message and write reports.

    In a GitHub Actions job ($GITHUB_STEP_SUMMARY set) a Markdown summary is
    appended to the job summary.

    Example: parbench run scenarios/chatty-single-sender.toml --quick
    """
    with interrupts.handled():
        _run(scenarios, impls, partitions_text, repeats, quick, out_dir, profile, syslog_ng, no_progress,
             trust_scenario=trust_scenario, junit_path=junit_path, as_json=as_json,
             variants_text=variants_text)


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


def untrusted_programs(specs: list[str]) -> list[tuple[int, str]]:
    """(index, spec) of the specs that name a program to run themselves."""
    return [(index, spec.text) for index, spec in enumerate(parse_impls(specs))
            if kind_of(spec).names_a_program(spec)]


def _run(scenarios, impls, partitions_text, repeats, quick, out_dir, profile, syslog_ng, no_progress, *,
         trust_scenario: bool = False, junit_path: str | None = None, as_json: bool = False,
         variants_text: str | None = None) -> None:
    from parbench.harness.budget import check_fits
    from parbench.harness.candidates import parse_variant_names, sweep_candidates
    from parbench.harness.scenario import apply_quick, load_scenario
    from parbench.harness.targets.base import TargetError
    from parbench.harness.targets.kind import ImplSpecError
    from parbench.harness.targets.registry import get_target

    partitions = None
    if partitions_text:
        try:
            partitions = parse_partitions(partitions_text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    variant_names = parse_variant_names(variants_text) if variants_text is not None else None
    loaded = []
    for path in scenarios:
        scenario = load_scenario(path)
        scenario = apply_quick(scenario) if quick else scenario
        check_fits(scenario)
        loaded.append(scenario)

    chosen_by_scenario = []
    for scenario in loaded:
        chosen = list(impls or scenario.sweep.implementations or ("reference",))
        try:
            parse_impls(chosen)
            if not impls and not trust_scenario:
                for index, spec in untrusted_programs(chosen)[:1]:
                    raise UsageError(
                        f"{scenario.path}: sweep.implementations[{index}]: refusing to run {spec!r}, a program "
                        "named by the scenario file; give it with --impl, or pass --trust-scenario")
            chosen = with_syslog_ng_path(chosen, syslog_ng)
        except ImplSpecError as exc:
            raise UsageError(f"--impl: {exc}" if impls
                             else f"{scenario.path}: sweep.implementations[{exc.index}]: {exc}") from None
        except ValueError as exc:
            raise UsageError(f"{scenario.path}: {exc}") from None
        chosen_by_scenario.append(sweep_candidates(scenario, chosen, variant_names))
        for spec in dict.fromkeys(chosen):
            try:
                get_target(spec)
            except TargetError as exc:
                raise UsageError(f"--impl {spec!r}: {exc}" if impls
                                 else f"{scenario.path}: sweep.implementations: {exc}") from None

    from parbench.harness.metrics import describe_window
    from parbench.harness.report import report_dir, write_report
    from parbench.harness.results import Results, ScenarioInfo
    from parbench.harness.runner import run_sweep

    from parbench.harness import run_summary
    from parbench.harness.junit import write_junit_xml

    failed: list[str] = []
    done: list[run_summary.SweepDone] = []
    interrupted_at = interrupted_by = None
    for scenario, chosen in zip(loaded, chosen_by_scenario):
        with interrupts.interruptible():
            outcome = run_sweep(scenario, chosen, partitions, repeats, profile=profile,
                                show_progress=not no_progress)
        results = Results(ScenarioInfo(scenario.name, str(scenario.path), scenario.raw), outcome.runs,
                          interrupted=outcome.interrupted, throughput_window=describe_window())
        directory = report_dir(Path(out_dir), scenario.name)
        results.write(directory / "results.json")
        write_report(results, directory)
        done.append(run_summary.SweepDone(results, directory, outcome.profile))
        # with --json, stdout holds the JSON document only
        if outcome.profile_reasons:
            for name, reason in outcome.profile_reasons.items():
                click.echo(f"{scenario.name}: reference[{name}] runs version profile {name} ({reason})", err=as_json)
        elif outcome.profile:
            click.echo(f"{scenario.name}: reference version profile {outcome.profile} ({outcome.profile_reason})",
                       err=as_json)
        passed = sum(r.passed for r in outcome.runs)
        click.echo(f"{scenario.name}: {passed}/{len(outcome.runs)} runs pass; report: {directory / 'report.md'}",
                   err=as_json)
        signum = interrupts.pending()
        if outcome.interrupted or signum is not None:
            interrupted_at, interrupted_by = directory / "results.json", signum or signal.SIGINT
            break
        if passed != len(outcome.runs) or not outcome.runs:
            failed.append(f"{scenario.name} ({len(outcome.runs) - passed} of {len(outcome.runs)} runs did not pass)"
                          if outcome.runs else f"{scenario.name} (no runs)")
    if junit_path:
        try:
            write_junit_xml([(d.results, d.results_path) for d in done], junit_path)
        except OSError as exc:
            raise UsageError(f"--junit-xml {junit_path}: cannot write: {exc.strerror or exc}") from None
    try:
        run_summary.append_step_summary(done)
    except OSError as exc:
        click.echo(f"parbench run: note: cannot append to ${run_summary.STEP_SUMMARY_ENV}: "
                   f"{exc.strerror or exc}", err=True)
    if as_json:
        click.echo(run_summary.summary_json(done, junit_path))
    if interrupted_at is not None:
        raise Interrupted(f"interrupted ({signal.Signals(interrupted_by).name}): partial results written to "
                          f"{interrupted_at}", interrupted_by)
    if failed:
        raise RunFailure("not every run met its expectation: " + "; ".join(failed))
