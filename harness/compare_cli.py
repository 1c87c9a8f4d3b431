"""``parbench compare`` and ``parbench history``.

The statistics live in ``harness.compare``; this module parses options,
prints a rich table and writes Markdown and PNG files.  Exit statuses (through
the errors it raises): 0 fine, 1 a regression, 2 bad input.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click
import numpy as np

from parbench.errors import RunFailure, UsageError
from parbench.harness import bench_formats
from parbench.harness import compare as cmp
from parbench.harness.results import ResultsError

_METRIC_NAMES = [*cmp.RESULTS_METRICS, *cmp.BENCH_METRICS]


class _Fraction(click.ParamType):
    """``5%`` or ``0.05``; a bare number must already be a fraction."""

    name = "fraction"

    def __init__(self, low_open: bool) -> None:
        self.low_open = low_open

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        text = str(value).strip()
        try:
            number = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            self.fail(f"{value!r}: expected a percentage like 5% or a fraction like 0.05", param, ctx)
        if not (0.0 < number < 1.0 if self.low_open else 0.0 <= number < 1.0):
            self.fail(f"{value!r}: expected a value between 0 and 100% (exclusive of 100%)", param, ctx)
        return number


_STYLE = {cmp.REGRESSION: "bold red", cmp.IMPROVEMENT: "bold green", cmp.NO_CHANGE: "",
          cmp.ERRATIC: "yellow", cmp.TOO_FEW: "dim"}


def _short_verdict(c: cmp.Comparison) -> str:
    return cmp.short_verdict(c)


def _print_table(report: cmp.CompareReport) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # CI logs are not terminals; rich would wrap them at 80 columns.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    if report.paired:
        console.print(f"paired: {report.current_label} against {report.baseline_label}, run by run in "
                      f"{report.baseline.path}", markup=False)
    else:
        console.print(f"baseline {report.baseline.path}\ncurrent  {report.current.path}", markup=False)
    by_metric: dict[str, list[cmp.Comparison]] = {}
    for c in report.comparisons:
        by_metric.setdefault(c.metric.name, []).append(c)
    for rows in by_metric.values():
        metric = rows[0].metric
        table = Table(title=escape(f"{metric.name} [{metric.unit}], {metric.direction}"), title_justify="left")
        sides = (report.baseline_label, report.current_label) if report.paired else ("baseline", "current")
        for heading, justify in (("configuration", "left"), (sides[0], "right"), (sides[1], "right"),
                                 ("change", "right"), (f"{report.confidence:.0%} CI", "right"),
                                 ("spread" if report.paired else "CV b/c", "right"), ("verdict", "left")):
            table.add_column(heading, justify=justify)
        for c in rows:
            config = escape(c.config) + (f" [dim]({escape(c.group)})[/dim]" if c.group else "")
            verdict = _short_verdict(c)
            table.add_row(
                config, cmp.format_value(c.median_baseline), cmp.format_value(c.median_current),
                cmp.format_change(c.change), cmp.format_ci(c), cmp.spread_cell(c).replace(" ", ""),
                f"[{_STYLE[c.verdict]}]{verdict}[/]" if _STYLE[c.verdict] else verdict)
        console.print(table)
    for label, configs in (("only in baseline", report.only_in_baseline),
                           ("only in current", report.only_in_current)):
        if configs:
            console.print(f"{label} (not compared): {', '.join(configs)}", markup=False)
    for side in (report.baseline, report.current):
        for line in side.excluded:
            console.print(f"excluded errored run in {side.path}: {line}", markup=False)
        for note in side.notes if side is report.baseline or not report.paired else ():
            console.print(f"note: {note}", markup=False)
    for note in report.notes:
        console.print(f"note: {note}", markup=False)
    console.print(cmp.summary_line(report), markup=False)


@click.command()
@click.argument("baseline", type=click.Path(dir_okay=False))
@click.argument("current", type=click.Path(dir_okay=False), required=False)
@click.option("--baseline", "baseline_label", metavar="LABEL",
              help="Paired mode: the label of the baseline's runs in the one results file given "
                   "(with --current).")
@click.option("--current", "current_label", metavar="LABEL",
              help="Paired mode: the label of the candidate's runs in the same file (with --baseline).")
@click.option("--control", metavar="LABEL",
              help="Two files: the label of a configuration in both that should not have changed; its drift "
                   "between the sweeps widens every interval. Default: a calibration implementation, if any.")
@click.option("--threshold", type=_Fraction(low_open=False), default="5%", show_default=True,
              help="Smallest median change that counts as a regression/improvement.")
@click.option("--confidence", type=_Fraction(low_open=True), default="0.90", show_default=True,
              help="Confidence of the bootstrap interval of the change.")
@click.option("--max-cv", type=float, default=cmp.DEFAULT_MAX_CV, show_default=True,
              help="A side whose coefficient of variation exceeds this is 'erratic' (paired mode: the spread "
                   "of the paired log-ratios, 1.4826 * MAD).")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False),
              help="Also write the comparison as Markdown (for a pull-request comment).")
@click.option("--metric", "metrics", multiple=True, type=click.Choice(_METRIC_NAMES),
              help="Metric to compare (repeatable). results.json: throughput_msgs_per_s, latency_ms.p50, "
                   "latency_ms.p99, cpu_seconds (default: all). pytest-benchmark: time_s.")
@click.option("--format", "output_format", type=click.Choice(bench_formats.FORMATS), default="table",
              show_default=True,
              help="table: a table for people. json: every comparison. bmf: Bencher Metric Format. "
                   "customBiggerIsBetter / customSmallerIsBetter: github-action-benchmark's custom tools. "
                   "The last three describe CURRENT: the median of each metric with the bootstrap interval "
                   "of that median.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
def compare(baseline, current, baseline_label, current_label, control, threshold, confidence, max_cv,
            markdown_path, metrics, output_format, as_json):
    """Noise-aware verdicts: two candidates of one sweep, or two sweeps.

    Paired (for gating): `parbench compare RESULTS --baseline base --current
    head` pairs the runs of two labels of one interleaved sweep slot by slot.
    Two sweeps: `parbench compare BASELINE CURRENT`, both parbench
    results.json or both pytest-benchmark JSON saved with
    --benchmark-save-data; indicative unless a control bounds the drift.
    Exit 1 when any metric regressed by at least --threshold with the whole
    --confidence interval on the bad side (with every --format).
    """
    if not (max_cv > 0 and math.isfinite(max_cv)):
        raise UsageError(f"--max-cv {max_cv}: expected a positive number")
    if as_json:
        if output_format not in ("table", "json"):
            raise UsageError(f"--json: not with --format {output_format}")
        output_format = "json"
    if (baseline_label is None) != (current_label is None):
        raise UsageError("--baseline and --current: expected both (two labels of one results file) or neither")
    if baseline_label is not None:
        if current is not None:
            raise UsageError(f"{current}: expected one results file with --baseline/--current (the two labels are "
                             "paired inside it), got two files")
        if control is not None:
            raise UsageError("--control: only for two files; a paired compare needs no control")
        from parbench.harness import paired

        report = paired.compare_paired(paired.load_pairs(baseline, baseline_label, current_label),
                                       metrics or None, threshold=threshold, confidence=confidence,
                                       max_cv=max_cv)
    else:
        if current is None:
            raise UsageError("expected BASELINE and CURRENT files, or one results file with --baseline LABEL "
                             "--current LABEL")
        base = cmp.load_samples(baseline)
        cur = cmp.load_samples(current)
        report = cmp.compare_sets(base, cur, metrics or None, threshold=threshold,
                                  confidence=confidence, max_cv=max_cv, control=control)
    if output_format == "table":
        _print_table(report)
    else:
        click.echo(json.dumps(bench_formats.render(report, output_format), indent=2))
    if markdown_path:
        try:
            Path(markdown_path).write_text(cmp.render_markdown(report), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{markdown_path}: cannot write: {exc.strerror or exc}") from None
    if report.regressions:
        n = len(report.regressions)
        raise RunFailure(f"{n} regression{'s' if n != 1 else ''} beyond the threshold")


def _plot_history(series_by_config: dict[str, list[tuple[int, np.ndarray]]], labels: list[str],
                  steps: list[cmp.Step], metric: cmp.Metric, out: Path, title: str,
                  max_cv: float, robust_cv: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(series_by_config)
    ncols = 1 if len(configs) == 1 else 2
    nrows = math.ceil(len(configs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.4 * ncols, 2.6 * nrows + 0.8),
                             sharex=True, squeeze=False)
    steps_by_config: dict[str, list[cmp.Step]] = {}
    for s in steps:
        steps_by_config.setdefault(s.config, []).append(s)
    x_all = np.arange(len(labels))
    for ax, config in zip(axes.flat, configs):
        points = series_by_config[config]
        xs = np.array([i for i, _ in points])
        med = np.array([float(np.median(v)) for _, v in points])
        lo = med - np.array([float(np.min(v)) for _, v in points])
        hi = np.array([float(np.max(v)) for _, v in points]) - med
        ax.errorbar(xs, med, yerr=[lo, hi], fmt="o-", color="tab:blue", ecolor="tab:gray",
                    capsize=3, ms=4, lw=1.2, label="median (bars: min-max)")
        erratic = np.array([cmp.coefficient_of_variation(v, robust_cv) > max_cv for _, v in points])
        if erratic.any():
            ax.plot(xs[erratic], med[erratic], "o", ms=8, mfc="white", mec="tab:orange", mew=1.5)
        for s in steps_by_config.get(config, []):
            run_index = points[s.index][0]
            color = "tab:red" if s.verdict == cmp.REGRESSION else "tab:green"
            ax.axvline(run_index - 0.5, color=color, ls="-" if s.confirmed else ":", lw=1.5)
            ax.annotate(f"{s.change:+.1%}" + ("" if s.confirmed else "?"),
                        (run_index - 0.5, 1.0), xycoords=("data", "axes fraction"),
                        textcoords="offset points", xytext=(3, -12), color=color, fontsize=8)
        ax.set_title(config, fontsize=9)
        ax.set_ylabel(f"{metric.name}\n[{metric.unit}]", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(configs):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xticks(x_all)
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
        ax.tick_params(labelbottom=True)
    fig.suptitle(f"{title}\n{metric.name} ({metric.direction}); red/green line: step "
                 f"(dotted: last run, unconfirmed); open orange circle: erratic run (CV > {max_cv:g})",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--metric", default=None, type=click.Choice(_METRIC_NAMES),
              help="Metric to plot. Default: throughput_msgs_per_s for results.json, time_s for "
                   "pytest-benchmark files.")
@click.option("--impl", "impls", multiple=True,
              help="Only these candidates, by label (NAME=, variant name, kind label) or spec as run "
                   "(results.json; repeatable).")
@click.option("--baseline", "baseline_label", metavar="LABEL",
              help="With --current: the paired change of CURRENT against BASELINE in each results file, and "
                   "its product across the files (slow drift that no single gate catches).")
@click.option("--current", "current_label", metavar="LABEL", help="See --baseline.")
@click.option("--threshold", type=_Fraction(low_open=False), default="5%", show_default=True,
              help="Smallest change between consecutive runs marked as a step.")
@click.option("--confidence", type=_Fraction(low_open=True), default="0.90", show_default=True)
@click.option("--max-cv", type=float, default=cmp.DEFAULT_MAX_CV, show_default=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default="history.png", show_default=True,
              help="PNG to write.")
def history(directory, metric, impls, baseline_label, current_label, threshold, confidence, max_cv, out_path):
    """Plot a metric across the saved runs under DIRECTORY and mark step changes.

    Finds parbench results.json files (or pytest-benchmark JSON files) under
    DIRECTORY, orders them by creation time, plots the median per
    configuration with min-max bars, and marks a step where two consecutive
    runs differ by the `parbench compare` rule and the next run confirms it.
    """
    root = Path(directory)
    if not root.is_dir():
        raise UsageError(f"{directory}: not a directory")
    if (baseline_label is None) != (current_label is None):
        raise UsageError("--baseline and --current: expected both (two labels of each results file) or neither")
    if baseline_label is not None:
        if impls:
            raise UsageError("--impl: not with --baseline/--current (they name the two candidates)")
        return _paired_history(root, metric or "throughput_msgs_per_s", baseline_label, current_label,
                               threshold, confidence, max_cv, Path(out_path))
    loaded: list[cmp.SampleSet] = []
    skipped: list[str] = []
    for path in cmp.find_result_files(root):
        try:
            loaded.append(cmp.load_samples(path))
        except (cmp.InputError, ResultsError) as exc:
            skipped.append(str(exc))
    kinds = {s.kind for s in loaded}
    if not loaded:
        raise UsageError(f"{directory}: no parbench results.json or pytest-benchmark JSON found"
                    + (f" ({len(skipped)} JSON file(s) skipped; first: {skipped[0]})" if skipped else ""))
    if metric is None:
        metric = "throughput_msgs_per_s" if cmp.KIND_RESULTS in kinds else cmp.BENCH_METRIC.name
    kind = cmp.KIND_RESULTS if metric in cmp.RESULTS_METRICS else cmp.KIND_BENCH if metric in cmp.BENCH_METRICS else None
    if kind is None:
        raise UsageError(f"--metric {metric}: unknown; expected one of "
                    f"{', '.join([*cmp.RESULTS_METRICS, *cmp.BENCH_METRICS])}")
    runs = sorted((s for s in loaded if s.kind == kind), key=lambda s: (s.created, s.path))
    if not runs:
        raise UsageError(f"{directory}: no {kind} files found for metric {metric}")
    metric_obj = runs[0].metrics[metric]
    # A reports/ tree holds several scenarios; "reference p=4" of two scenarios
    # is two different series.
    several_scenarios = len({r.scenario for r in runs}) > 1
    series: dict[str, list[tuple[int, np.ndarray]]] = {}
    for index, run in enumerate(runs):
        for config in run.configs:
            if impls and run.labels.get(config) not in impls and run.specs.get(config) not in impls:
                continue
            values = run.samples.get((metric, config))
            if values is not None and values.size:
                key = f"{run.scenario}: {config}" if several_scenarios else config
                series.setdefault(key, []).append((index, values))
    if not series:
        raise UsageError(f"{directory}: no samples of {metric}" + (f" for impl {', '.join(impls)}" if impls else ""))
    steps: list[cmp.Step] = []
    for config, points in series.items():
        steps += cmp.detect_steps([v for _, v in points], metric_obj, config, threshold=threshold,
                                  confidence=confidence, max_cv=max_cv, robust_cv=runs[0].robust_cv)
    labels = [f"{r.created:%Y-%m-%d %H:%M:%S}" + ("" if r.label[:8].isdigit() else f" {r.label}"[:16]) for r in runs]
    out = Path(out_path)
    try:
        _plot_history(series, labels, steps, metric_obj, out, f"{len(runs)} runs under {directory}",
                      max_cv, runs[0].robust_cv)
    except OSError as exc:
        raise UsageError(f"{out_path}: cannot write: {exc.strerror or exc}") from None
    click.echo(f"{len(runs)} {kind} run(s), {len(series)} configuration(s); wrote {out}")
    for s in steps:
        run = runs[series[s.config][s.index][0]]
        click.echo(f"step: {s.config}: {s.verdict} {s.change:+.1%} at {run.path}"
                   + ("" if s.confirmed else " (last run, unconfirmed)"))
    if skipped:
        click.echo(f"skipped {len(skipped)} other JSON file(s); first: {skipped[0]}")
    other = [s for s in loaded if s.kind != kind]
    if other:
        click.echo(f"ignored {len(other)} {other[0].kind} file(s) (metric {metric} is for {kind} files)")


def _paired_history(root: Path, metric: str, baseline: str, current: str, threshold: float, confidence: float,
                    max_cv: float, out: Path) -> None:
    """Per results file under ``root`` holding both labels: the paired change
    of ``current`` against ``baseline`` per partition count, plotted with its
    interval, and the running product of those changes.  When each file's
    baseline is the previous file's current (the main branch's merged commit
    against its parent), the product is the change since the first file,
    measured without the machine's drift between the files."""
    from parbench.harness import paired

    if metric not in cmp.RESULTS_METRICS:
        raise UsageError(f"--metric {metric}: unknown for paired results; expected one of "
                         f"{', '.join(cmp.RESULTS_METRICS)}")
    found: list[tuple[paired.PairedSamples, cmp.CompareReport]] = []
    skipped: list[str] = []
    for path in cmp.find_result_files(root):
        try:
            samples = paired.load_pairs(path, baseline, current)
        except (cmp.InputError, ResultsError) as exc:
            skipped.append(str(exc))
            continue
        found.append((samples, paired.compare_paired(samples, [metric], threshold=threshold,
                                                     confidence=confidence, max_cv=max_cv)))
    if not found:
        raise UsageError(f"{root}: no results file with runs labelled {baseline!r} and {current!r}"
                         + (f" ({len(skipped)} JSON file(s) skipped; first: {skipped[0]})" if skipped else ""))
    found.sort(key=lambda item: (item[0].created, item[0].path))
    by_partitions: dict[str, list[tuple[int, cmp.Comparison]]] = {}
    for index, (_, report) in enumerate(found):
        for c in report.comparisons:
            by_partitions.setdefault(c.config, []).append((index, c))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(by_partitions)
    fig, axes = plt.subplots(len(configs), 1, figsize=(8, 2.6 * len(configs) + 0.8), sharex=True, squeeze=False)
    labels = [f"{s.created:%Y-%m-%d %H:%M}" for s, _ in found]
    metric_obj = cmp.RESULTS_METRICS[metric]
    for ax, config in zip(axes[:, 0], configs):
        points = [(i, c) for i, c in by_partitions[config] if math.isfinite(c.change)]
        if not points:
            ax.set_title(f"{config}: no verdicts", fontsize=9)
            continue
        xs = np.array([i for i, _ in points])
        change = np.array([c.change for _, c in points]) * 100
        low = np.array([c.ci_low if math.isfinite(c.ci_low) else c.change for _, c in points]) * 100
        high = np.array([c.ci_high if math.isfinite(c.ci_high) else c.change for _, c in points]) * 100
        cumulative = (np.cumprod(1 + change / 100) - 1) * 100
        ax.errorbar(xs, change, yerr=[change - low, high - change], fmt="o", color="tab:blue", ecolor="tab:gray",
                    capsize=3, ms=4, label=f"{current} vs {baseline}, {confidence:.0%} interval")
        ax.plot(xs, cumulative, "-", color="tab:purple", lw=1.5, label="running product")
        flagged = np.array([c.verdict == cmp.REGRESSION for _, c in points])
        if flagged.any():
            ax.plot(xs[flagged], change[flagged], "o", ms=8, mfc="none", mec="tab:red", mew=1.5,
                    label="regression verdict")
        bad = -1 if metric_obj.higher_is_better else 1
        ax.axhspan(bad * threshold * 100, bad * 100, color="tab:red", alpha=0.06)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_ylim(min(low.min(), cumulative.min(), -threshold * 100) - 2,
                    max(high.max(), cumulative.max(), threshold * 100) + 2)
        ax.set_title(config, fontsize=9)
        ax.set_ylabel("change [%]", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        click.echo(f"{config}: {len(points)} paired file(s); running product of the changes {cumulative[-1]:+.1f}%"
                   + ("; regressions in: " + ", ".join(found[i][0].path for i, c in points
                                                        if c.verdict == cmp.REGRESSION)
                      if any(c.verdict == cmp.REGRESSION for _, c in points) else ""))
    axes[-1, 0].set_xticks(np.arange(len(found)))
    axes[-1, 0].set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
    fig.suptitle(f"{metric} ({metric_obj.direction}): {current} against {baseline}, paired, per results file\n"
                 f"red band: a change beyond the {threshold:.0%} threshold in the bad direction", fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=110)
    except OSError as exc:
        raise UsageError(f"{out}: cannot write: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    click.echo(f"{len(found)} paired results file(s); wrote {out}")
    if skipped:
        click.echo(f"skipped {len(skipped)} JSON file(s) without both labels; first: {skipped[0]}")
