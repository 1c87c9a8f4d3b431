"""``parbench compare`` as data for CI tools: ``--json`` (every comparison),
``--format bmf`` (Bencher Metric Format) and ``--format customBiggerIsBetter``
/ ``customSmallerIsBetter`` (github-action-benchmark's custom tools).

Bencher and github-action-benchmark track one value per benchmark and
commit, so both describe the CURRENT file: per configuration and metric, the
median of its samples (repeats, or benchmark rounds), bounded by the
percentile-bootstrap interval of that median at ``compare``'s
``--confidence`` (``harness.compare.bootstrap_median_ci``; a single sample
has no interval).  The comparison with the baseline (change, verdict) rides
along in github-action-benchmark's ``extra`` field and in ``--json``.

* BMF (https://bencher.dev/docs/reference/bencher-metric-format)::

      {"<scenario>/<config>": {"<metric>": {"value": V, "lower_value": L, "upper_value": U}}}

* github-action-benchmark custom tools: a JSON array of
  ``{"name", "unit", "value", "range", "extra"}``; a tool is either bigger
  or smaller is better, so each format holds the metrics of its direction
  only (throughput: bigger; latency and CPU seconds: smaller).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from parbench.harness import compare as cmp

JSON_SCHEMA = "parbench.compare/1"
BMF = "bmf"
BIGGER = "customBiggerIsBetter"
SMALLER = "customSmallerIsBetter"
FORMATS = ("table", "json", BMF, BIGGER, SMALLER)


def _num(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def compare_json(report: cmp.CompareReport) -> dict[str, Any]:
    return {
        "schema": JSON_SCHEMA,
        "baseline": report.baseline.path, "current": report.current.path,
        "kind": report.baseline.kind, "scenario": report.current.scenario,
        "threshold": report.threshold, "confidence": report.confidence, "max_cv": report.max_cv,
        "min_samples": report.min_samples,
        "regressions": len(report.regressions), "counts": report.counts(),
        "comparisons": [{
            "metric": c.metric.name, "unit": c.metric.unit, "higher_is_better": c.metric.higher_is_better,
            "config": c.config, "group": c.group, "n_baseline": c.n_baseline, "n_current": c.n_current,
            "median_baseline": _num(c.median_baseline), "median_current": _num(c.median_current),
            "change": _num(c.change), "ci_low": _num(c.ci_low), "ci_high": _num(c.ci_high),
            "cv_baseline": _num(c.cv_baseline), "cv_current": _num(c.cv_current),
            "verdict": c.verdict, "reason": c.reason,
            "spread": _num(c.spread), "indicative": c.indicative, "widened_by": _num(c.widened_by),
        } for c in report.comparisons],
        "paired": report.paired, "baseline_label": report.baseline_label, "current_label": report.current_label,
        "control": report.control, "drift": {name: _num(d) for name, d in report.drift.items()},
        "only_in_baseline": list(report.only_in_baseline), "only_in_current": list(report.only_in_current),
        "excluded": {"baseline": list(report.baseline.excluded), "current": list(report.current.excluded)},
        "notes": [*report.baseline.notes, *report.current.notes, *report.notes],
    }


def _points(report: cmp.CompareReport):
    """(benchmark name, metric, samples, comparison or None) for every
    configuration and metric of the current file."""
    current = report.current
    compared = {(c.metric.name, c.config): c for c in report.comparisons}
    metrics = list(dict.fromkeys(c.metric.name for c in report.comparisons)) or list(current.metrics)
    prefix = f"{current.scenario}/" if current.scenario else ""
    for config in current.configs:
        for name in metrics:
            values = current.samples.get((name, config))
            if values is None or not np.size(values):
                continue
            yield f"{prefix}{config}", current.metrics[name], values, compared.get((name, config))


def _bounds(values: np.ndarray, confidence: float) -> tuple[float, float] | None:
    if np.size(values) < 2:
        return None
    return cmp.bootstrap_median_ci(values, confidence)


def bmf(report: cmp.CompareReport) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for bench, metric, values, _ in _points(report):
        entry: dict[str, float] = {"value": float(np.median(values))}
        bounds = _bounds(values, report.confidence)
        if bounds:
            entry["lower_value"], entry["upper_value"] = bounds
        out.setdefault(bench, {})[metric.name] = entry
    return out


def github_action_benchmark(report: cmp.CompareReport, bigger_is_better: bool) -> list[dict[str, Any]]:
    out = []
    for bench, metric, values, comparison in _points(report):
        if metric.higher_is_better != bigger_is_better:
            continue
        median = float(np.median(values))
        bounds = _bounds(values, report.confidence)
        extra = [f"{np.size(values)} samples"]
        if bounds:
            extra.append(f"{report.confidence:.0%} interval of the median [{cmp.format_value(bounds[0])}, "
                         f"{cmp.format_value(bounds[1])}]")
        if comparison is not None:
            extra.append(f"vs baseline {cmp.format_change(comparison.change)}: {comparison.verdict}")
        entry = {"name": f"{bench} {metric.name}", "unit": metric.unit, "value": median,
                 "extra": "; ".join(extra)}
        if bounds:
            entry["range"] = f"± {cmp.format_value(max(median - bounds[0], bounds[1] - median))}"
        out.append(entry)
    return out


def render(report: cmp.CompareReport, fmt: str) -> Any:
    """The document for ``--format fmt`` (not "table")."""
    if fmt == "json":
        return compare_json(report)
    if fmt == BMF:
        return bmf(report)
    if fmt in (BIGGER, SMALLER):
        return github_action_benchmark(report, fmt == BIGGER)
    raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
