"""The report of one scenario run, from its ``Results``: ``throughput.png``,
``latency.png``, ``balance.png`` and ``report.md`` beside ``results.json`` in
``reports/<scenario>/<UTC timestamp>/`` (``report_dir``; ``Results.write``
writes results.json, this module only reads the model).

Plots are drawn with matplotlib's Agg backend (no display needed) for a
reader who never saw parbench: units on every axis, the scenario and the
machine's core count in the title, "no parallelize()" (partitions 0) kept
apart from the partition counts.
"""
from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from parbench.harness.checks import check_named  # noqa: E402
from parbench.harness.results import Results, Run  # noqa: E402
from parbench.harness.targets.registry import shorten_label  # noqa: E402

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
NONE_LABEL = "none\n(no parallelize)"


def report_dir(out_root: str | Path, scenario_name: str, when: datetime | None = None) -> Path:
    """A new, empty directory reports/<scenario>/<YYYYmmddTHHMMSSZ>[-N]/."""
    when = when or datetime.now(timezone.utc)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", scenario_name).strip("_") or "scenario"
    base = Path(out_root) / safe / when.strftime("%Y%m%dT%H%M%SZ")
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    candidate.mkdir(parents=True)
    return candidate


def _short_impl(label: str) -> str:
    """What the report calls a candidate: its label (an implementation's
    NAME= or kind label, or a variant's name), cut to a readable width."""
    return shorten_label(label)


def _describe_variant(table: Any) -> str:
    """A variant's overrides as dotted keys (``pipeline.log_fetch_limit = 1000``)."""
    if not isinstance(table, dict):
        return "the scenario as written"
    flat: list[str] = []

    def walk(prefix: str, node: Any) -> None:
        for key, value in node.items():
            if key == "description" and not prefix:
                continue
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            else:
                flat.append(f"{prefix}{key} = {value!r}")

    walk("", table)
    text = ", ".join(flat) or "the scenario as written"
    description = table.get("description")
    return f"{description} ({text})" if description else text


def _by_impl_partitions(runs: list[Run], value) -> dict[str, dict[int, list[float]]]:
    table: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        v = value(run)
        if v is not None and run.error is None:
            table[run.label][run.partitions].append(float(v))
    return table


def _positions(partitions: list[int]) -> dict[int, float]:
    """Categorical x positions; 0 (no parallelize) sits left of a gap."""
    pos: dict[int, float] = {}
    x = 0.0
    for p in sorted(partitions):
        pos[p] = x
        x += 1.5 if p == 0 else 1.0
    return pos


def _setup_x(ax, pos: dict[int, float]) -> None:
    ax.set_xticks([pos[p] for p in sorted(pos)])
    ax.set_xticklabels([NONE_LABEL if p == 0 else str(p) for p in sorted(pos)])
    ax.set_xlabel("partitions(N) of parallelize()")
    if 0 in pos and len(pos) > 1:
        ax.axvline(pos[0] + 0.75, color="0.7", linewidth=1)
    lo, hi = min(pos.values()), max(pos.values())
    ax.set_xlim(lo - 0.5, hi + 0.5)


def plot_throughput(results: Results, path: Path) -> Path:
    runs = results.runs
    cpus = results.machine.cpus
    table = _by_impl_partitions(runs, lambda r: r.throughput_msgs_per_s)
    all_parts = sorted({r.partitions for r in runs})
    pos = _positions(all_parts or [1])
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    ideal_drawn = False
    for i, impl in enumerate(sorted(table)):
        color = COLORS[i % len(COLORS)]
        series = table[impl]
        parts = [p for p in sorted(series) if p > 0]
        if parts:
            med = np.array([np.median(series[p]) for p in parts])
            lo = np.array([min(series[p]) for p in parts])
            hi = np.array([max(series[p]) for p in parts])
            xs = [pos[p] for p in parts]
            ax.errorbar(xs, med, yerr=[med - lo, hi - med], color=color, marker="o", capsize=4,
                        label=_short_impl(impl))
            if 1 in series:
                base = float(np.median(series[1]))
                ax.plot(xs, [base * p for p in parts], linestyle="--", color=color, alpha=0.5,
                        label=None if ideal_drawn else "dashed: ideal linear scaling from partitions(1)")
                ideal_drawn = True
        if 0 in series:
            vals = series[0]
            m = float(np.median(vals))
            ax.errorbar([pos[0]], [m], yerr=[[m - min(vals)], [max(vals) - m]], color=color, marker="s",
                        markerfacecolor="white", markersize=8, capsize=4, linestyle="none",
                        label=f"{_short_impl(impl)}: no parallelize()" if not parts else None)
    if cpus in pos:
        ax.axvline(pos[cpus], color="0.5", linestyle=":", linewidth=1)
        ax.annotate(f"partitions = CPU cores ({cpus})", (pos[cpus], 0.0), xycoords=("data", "axes fraction"),
                    xytext=(3, 4), textcoords="offset points", fontsize=8, color="0.4")
    _setup_x(ax, pos)
    ax.set_ylabel("throughput (messages per second)")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylim(bottom=0)
    ax.set_title(f"{results.scenario.name}: throughput vs partitions (higher is better)\n"
                 f"{cpus} CPU cores; dots = median of {_runs_label(runs)}, bars = min to max", fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    if table:
        _legend_below(ax)
    else:
        _no_data(ax, "no run produced a throughput figure")
    if ideal_drawn:
        # The ideal line can dwarf the measurements; keep them readable.
        measured = [v for s in table.values() for vals in s.values() for v in vals]
        ax.set_ylim(0, max(measured) * 2.2 if measured else None)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _legend_below(ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2),
                  ncol=2 if len(labels) > 2 else len(labels), frameon=False)


def _runs_label(runs: list[Run]) -> str:
    reps = max((r.repeat for r in runs), default=-1) + 1
    return f"{reps} repeat{'s' if reps != 1 else ''} per point"


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=11, color="0.4")


def plot_latency(results: Results, path: Path) -> Path:
    runs = results.runs
    all_parts = sorted({r.partitions for r in runs})
    pos = _positions(all_parts or [1])
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    any_data = False
    for i, impl in enumerate(sorted({r.label for r in runs})):
        color = COLORS[i % len(COLORS)]
        for stat, style, marker in (("p50", "-", "o"), ("p99", "--", "^")):
            table = _by_impl_partitions([r for r in runs if r.label == impl],
                                        lambda r, s=stat: r.latency_ms.get(s))
            series = table.get(impl, {})
            parts = sorted(series)
            if not parts:
                continue
            any_data = True
            label = f"{_short_impl(impl)}: {stat} ({'median' if stat == 'p50' else '99th percentile'})"
            # "no parallelize" is another pipeline, not a point on the
            # partition axis: drawn apart, never joined to the line.
            scaled = [p for p in parts if p > 0]
            if scaled:
                ax.plot([pos[p] for p in scaled], [np.median(series[p]) for p in scaled], linestyle=style,
                        marker=marker, color=color, label=label)
                label = None
            if 0 in series:
                ax.plot([pos[0]], [np.median(series[0])], marker=marker, color=color, markerfacecolor="white",
                        linestyle="none", markersize=8, label=label)
    _setup_x(ax, pos)
    if any_data:
        values = [v for r in runs if r.error is None for v in (r.latency_ms.get("p50"), r.latency_ms.get("p99"))
                  if v and v > 0]
        # A log scale only when p50 and p99 are orders of magnitude apart;
        # otherwise a plain axis from 0 is easier to read.
        if values and max(values) / min(values) > 20:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.set_ylabel("end-to-end latency (milliseconds, log scale)")
        else:
            ax.set_ylim(bottom=0)
            ax.set_ylabel("end-to-end latency (milliseconds)")
        _legend_below(ax)
    else:
        _no_data(ax, "no run produced latency figures")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(f"{results.scenario.name}: latency (send to receive) vs partitions\n"
                 f"({results.machine.cpus} CPU cores; lower is better)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_balance(results: Results, path: Path) -> Path:
    runs = [r for r in results.runs if r.partitions > 0 and r.error is None
            and (r.partition_processed or r.partition_predicted)]
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    title = f"{results.scenario.name}: messages per partition"
    if not runs:
        _no_data(ax, "no per-partition counts\n(no keyed parallelize() run, or the target exposes none)")
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        n = max(r.partitions for r in runs)
        chosen = [r for r in runs if r.partitions == n]
        series: list[tuple[str, list[int], str, str | None]] = []
        predicted = next((r.partition_predicted for r in chosen if r.partition_predicted), None)
        if predicted:
            series.append(("predicted by g_str_hash(key) % N", predicted, "0.75", "//"))
        seen: set[str] = set()
        for i, r in enumerate(chosen):
            if r.partition_processed and r.label not in seen:
                seen.add(r.label)
                series.append((f"{_short_impl(r.label)}: processed (repeat {r.repeat})",
                               r.partition_processed, COLORS[len(seen) - 1], None))
        width = 0.8 / max(1, len(series))
        idx = np.arange(n)
        for j, (label, values, color, hatch) in enumerate(series):
            vals = list(values) + [0] * (n - len(values))
            ax.bar(idx - 0.4 + width * (j + 0.5), vals[:n], width, label=label, color=color, hatch=hatch,
                   edgecolor="0.3", linewidth=0.5)
        total = sum(series[0][1]) if series else 0
        if total:
            ax.axhline(total / n, color="0.3", linestyle=":", linewidth=1, label="perfect balance (total / N)")
        ax.set_xticks(idx)
        ax.set_xlabel(f"partition index (partitions({n}))")
        ax.set_ylabel("messages")
        _legend_below(ax)
        ax.grid(axis="y", alpha=0.3)
        if not seen:
            ax.text(0.5, 1.01, "no target exposed per-partition counters: prediction only",
                    transform=ax.transAxes, ha="center", va="bottom", fontsize=8, color="0.4")
        key = (results.scenario.toml.get("pipeline") or {}).get("partition_key")
        title += f" at partitions({n})" + (f", key {key}" if key else ", round-robin (no key)")
    ax.set_title(title, fontsize=11, pad=14)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(value: Any, spec: str = ",.0f") -> str:
    if value is None:
        return "-"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _anomaly_names(runs: list[Run]) -> list[str]:
    """Every anomaly any run was checked for, in the checks' order."""
    return list(dict.fromkeys(name for r in runs if r.checks for name in r.checks.anomalies))


def _anomaly_cell(run: Run, name: str) -> str:
    if run.checks is None or name not in run.checks.anomalies:
        return "-"
    count = run.checks.anomalies[name].count
    # a count the expectation prohibits is what failed the run
    return f"**{count:,}**" if count and name in run.expectation.prohibited else f"{count:,}"


VERDICT_CELL = {"pass": "pass", "fail": "**FAIL**", "unknown": "**unknown**"}


def _fault_section(runs: list[Run]) -> list[str]:
    """Each run with faults: what happened, what it cost, what was promised."""
    with_faults = [r for r in runs if r.faults]
    if not with_faults:
        return []
    lines = ["", "## Faults", "",
             "| impl | partitions | repeat | faults (as played; recovery) | sent | lost | duplicated "
             "| counted by the implementation | may lose |",
             "|---|---:|---:|---|---:|---:|---:|---|---:|"]
    for r in with_faults:
        promise = r.fault_promise
        may_lose = ("any (counted)" if promise.max_lost is None else _fmt(promise.max_lost)) if promise else "?"
        counted = ", ".join(f"{k} {v:,}" for k, v in (r.target_accounting or {}).items() if isinstance(v, int))
        lines.append("| " + " | ".join([
            f"`{_md_escape(_short_impl(r.impl))}`", "none" if r.partitions == 0 else str(r.partitions),
            str(r.repeat), _md_escape("; ".join(a.describe() for a in r.faults)),
            _fmt(r.sent), _fmt(r.checks.count("lost") if r.checks else None),
            _fmt(r.checks.count("duplicated") if r.checks else None), _md_escape(counted or "-"), may_lose,
        ]) + " |")
    whys = list(dict.fromkeys(r.fault_promise.why for r in with_faults if r.fault_promise))
    lines += [""] + [f"- promise: {_md_escape(why)}" for why in whys]
    return lines


def write_markdown(results: Results, path: Path, figures: dict[str, str]) -> Path:
    sc = results.scenario
    runs = results.runs
    machine = results.machine
    passed = sum(r.passed for r in runs)
    lines = [
        f"# parbench report: {sc.name}",
        "",
        f"- scenario file: `{sc.path}`",
        f"- created: {results.created} by parbench {results.parbench_version}",
        f"- machine: {machine.cpus} CPU cores, {machine.platform}, Python {machine.python}",
        f"- verdict: **{passed} of {len(runs)} runs pass**"
        + (" (sweep interrupted: partial results)" if results.interrupted else ""),
    ]
    versions: dict[str, str | None] = {}
    specs: dict[str, str] = {}
    for r in runs:
        versions[r.label] = versions.get(r.label) or r.target_version
        specs.setdefault(r.label, r.impl.removeprefix(f"{r.label}="))
    if versions:
        lines.append("- implementations: " + ", ".join(
            f"`{_md_escape(_short_impl(label))}`"
            + (f" = `{_md_escape(specs[label])}`" if specs[label] != label else "")
            + (f" ({version})" if version else "")
            for label, version in versions.items()))
    variants = (sc.toml.get("variants") or {}) if isinstance(sc.toml, dict) else {}
    used = list(dict.fromkeys(r.variant for r in runs if r.variant))
    if used:
        lines.append("- variants (run interleaved, each as its own candidate): " + "; ".join(
            f"`{_md_escape(name)}`: " + _md_escape(_describe_variant(variants.get(name)))
            for name in used))
    profiles = list(dict.fromkeys(r.profile for r in runs if r.profile))
    if profiles:
        lines.append("- reference version profile: " + ", ".join(f"`{_md_escape(p)}`" for p in profiles)
                     + " (why: see the target notes)")
    description = sc.toml.get("description")
    if description:
        lines += ["", str(description).strip()]
    anomalies = _anomaly_names(runs)
    lines += ["", "## Runs", "",
              "| impl | partitions | repeat | verdict | sent | received | "
              + "".join(f"{name} | " for name in anomalies)
              + "inverted key pairs | max displacement "
              "| throughput (msg/s) | p50 ms | p99 ms | CPU s | peak RSS MB | reasons |",
              "|---|---:|---:|---|---:|---:|" + "---:|" * len(anomalies) + "---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        stats = r.checks.stats if r.checks else {}
        share = stats.get("inverted_pair_share")
        lat = r.latency_ms
        rss = r.peak_rss_bytes
        lines.append("| " + " | ".join([
            f"`{_md_escape(_short_impl(r.label))}`",
            "none" if r.partitions == 0 else str(r.partitions),
            str(r.repeat),
            VERDICT_CELL.get(r.verdict, r.verdict),
            _fmt(r.sent), _fmt(r.received),
            *(_anomaly_cell(r, name) for name in anomalies),
            _fmt(share * 100 if share is not None else None, ".2f") + ("%" if share is not None else ""),
            _fmt(stats.get("max_displacement")),
            _fmt(r.throughput_msgs_per_s), _fmt(lat.get("p50"), ".2f"), _fmt(lat.get("p99"), ".2f"),
            _fmt(r.cpu_seconds, ".2f"), _fmt(rss / 1e6 if rss else None, ".1f"),
            _md_escape("; ".join(r.verdict_reasons))[:300],
        ]) + " |")
    if runs:
        expectation = runs[0].expectation
        lines += ["", f"Expectation: ordering **{expectation.ordering}**, loss "
                      f"{'allowed' if expectation.loss_allowed else 'not allowed'}; prohibited anomalies "
                      f"(bold when found): {', '.join(expectation.prohibited)}. "
                      "`partitions` none = the log path has no parallelize() element. "
                      "inverted key pairs = the share of adjacent same-(connection, key) pairs received out "
                      "of send order; max displacement = largest distance, in messages of the same connection "
                      "and key, between a message's arrival rank and its send rank.", ""]
        lines += [f"- `{name}`: {check_named(name).description}" for name in anomalies if check_named(name)]
    lines += _fault_section(runs)
    lines += ["", "## Figures", ""]
    for title, name in figures.items():
        lines += [f"### {title}", "", f"![{title}]({name})", ""]
    lines += ["## How the figures are measured", "", results.throughput_window or "", ""]
    notes: dict[str, list[str]] = defaultdict(list)
    for r in runs:
        for note in r.target_notes:
            if note not in notes[r.label]:
                notes[r.label].append(note)
    if notes:
        lines += ["## Target notes", ""]
        for impl, items in notes.items():
            for note in items:
                lines.append(f"- `{_md_escape(_short_impl(impl))}`: {_md_escape(note)}")
        lines.append("")
    errored = [r for r in runs if r.error or (not r.passed and r.stderr_tail)]
    if errored:
        lines += ["## Errors", ""]
        for r in errored:
            lines += [f"### {_short_impl(r.label)}, partitions {r.partitions}, repeat {r.repeat}", ""]
            if r.error:
                lines += ["```", r.error, "```", ""]
            if r.stderr_head and r.stderr_head != r.stderr_tail:
                lines += ["stderr head (start-up):", "", "```", r.stderr_head[:3000], "```", ""]
            if r.stderr_tail:
                lines += ["stderr tail:", "", "```", r.stderr_tail[-3000:], "```", ""]
    witnesses = [(r, {name: a.witnesses for name, a in r.checks.anomalies.items() if a.witnesses})
                 for r in runs if not r.passed and r.checks]
    witnesses = [(r, w) for r, w in witnesses if w]
    if witnesses:
        import json

        lines += ["## Witnesses of failed checks (first few)", ""]
        for r, w in witnesses[:6]:
            lines += [f"- `{_md_escape(_short_impl(r.label))}` partitions {r.partitions} repeat {r.repeat}:",
                      "", "```json", json.dumps(w, indent=1)[:2000], "```", ""]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_report(results: Results, directory: str | Path) -> Path:
    """Write the three plots and report.md into ``directory``; return it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    figures = {
        "Throughput": plot_throughput(results, directory / "throughput.png").name,
        "Latency": plot_latency(results, directory / "latency.png").name,
        "Per-partition balance": plot_balance(results, directory / "balance.png").name,
    }
    write_markdown(results, directory / "report.md", figures)
    return directory
