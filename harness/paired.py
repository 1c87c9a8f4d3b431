"""Paired comparison of two candidates of one interleaved sweep.

``parbench compare RESULTS --baseline base --current head``.  The runner
makes the runs of one (partitions, repeat) slot back to back (A B, then B A
on the next repeat), so whatever the machine does to one side at that
moment it does to the other too.  Each slot where both sides completed gives
one pair; the unit of evidence is the pair's log-ratio
``d = log(current / baseline)``, and drift between slots cancels.

Method, per partition count and metric (the verdict rule and its defaults are
``compare``'s: 90 % interval, 5 % threshold, ``judge``):

* fewer than ``min_samples`` pairs: too few samples;
* erratic: the spread of the log-ratios, ``1.4826 * MAD`` (the standard
  deviation for normal data, and what the CV of a ratio is on the log scale),
  exceeds ``max_cv``: the two sides did not move together, so the machine
  disturbed single runs more than pairing can cancel -- unless there are
  enough pairs to pin the median down anyway: its standard error,
  ``1.2533 * spread / sqrt(n)`` (for normal data), is at most
  ``threshold / 2.326``, so that noise alone would reach the threshold less
  than once in a hundred.  More pairs lift "erratic";
* effect: the median of the log-ratios, as a change ``exp(.) - 1``.  It
  ignores a pair that one burst of load hit on one side only; on simulated
  disturbed pairs it alarmed less often than a trimmed mean or the
  Hodges-Lehmann estimate, with the same power at 10 pairs
  (docs/regressions.md);
* interval: percentile bootstrap of that median, resampling whole pairs
  ``resamples`` times in one numpy step, with a fixed seed, so the same file
  always gives the same verdict.
"""
from __future__ import annotations

import difflib
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from parbench.harness.compare import (
    DEFAULT_CONFIDENCE,
    DEFAULT_MAX_CV,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    DEFAULT_THRESHOLD,
    ERRATIC,
    KIND_RESULTS,
    MIN_SAMPLES,
    RESULTS_METRICS,
    TOO_FEW,
    CompareReport,
    Comparison,
    InputError,
    Metric,
    SampleSet,
    coefficient_of_variation,
    judge,
)
from parbench.harness.results import Results

#: a spread above max_cv still gets a verdict when the threshold is this many
#: standard errors of the median away from 0 (the normal's 99th percentile)
RESOLUTION_Z = 2.326
#: standard error of a sample median over that of a mean, for normal data
MEDIAN_SE_FACTOR = math.sqrt(math.pi / 2)
# Upper bound on resamples x pairs materialised at once.
_CHUNK_ELEMENTS = 4_000_000


@dataclass
class PairedSamples:
    """The pairs of two labels of one results file, per (metric, partitions):
    ``(baseline values, current values)`` aligned slot by slot."""

    path: str
    baseline: str
    current: str
    scenario: str
    pairs: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    partitions: list[int] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)  # errored runs, one line each
    notes: list[str] = field(default_factory=list)
    created: object = None


def log_ratio_spread(log_ratios: np.ndarray) -> float:
    """1.4826 * MAD of the log-ratios: their standard deviation for normal
    data, insensitive to a few disturbed pairs."""
    d = np.asarray(log_ratios, dtype=float)
    if d.size < 2:
        return 0.0
    return 1.4826 * float(np.median(np.abs(d - np.median(d))))


def bootstrap_paired_ci(log_ratios: np.ndarray, confidence: float = DEFAULT_CONFIDENCE,
                        resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of the log-ratios, as
    changes (``exp(.) - 1``); whole pairs are resampled."""
    d = np.asarray(log_ratios, dtype=float)
    n = d.size
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, resamples, rows_per_chunk):
        rows = min(rows_per_chunk, resamples - start)
        stats[start:start + rows] = np.median(d[rng.integers(0, n, size=(rows, n))], axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return math.expm1(float(low)), math.expm1(float(high))


def compare_pairs(baseline: np.ndarray, current: np.ndarray, metric: Metric, config: str = "", *,
                  threshold: float = DEFAULT_THRESHOLD, confidence: float = DEFAULT_CONFIDENCE,
                  max_cv: float = DEFAULT_MAX_CV, min_samples: int = MIN_SAMPLES,
                  resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> Comparison:
    """Verdict for one metric x partition count from aligned pairs; see the
    module docstring."""
    baseline = np.asarray(baseline, dtype=float)
    current = np.asarray(current, dtype=float)
    if baseline.shape != current.shape:
        raise ValueError("paired samples must have the same length")
    n = baseline.size
    med_b = float(np.median(baseline)) if n else math.nan
    med_c = float(np.median(current)) if n else math.nan
    cv_b = coefficient_of_variation(baseline) if n else math.nan
    cv_c = coefficient_of_variation(current) if n else math.nan
    positive = bool(n) and bool(np.all(baseline > 0) and np.all(current > 0))
    d = np.log(current / baseline) if positive else np.empty(0)
    spread = log_ratio_spread(d) if positive else math.nan

    def result(verdict: str, reason: str, change=math.nan, low=math.nan, high=math.nan) -> Comparison:
        return Comparison(metric, config, None, n, n, med_b, med_c, change, low, high, cv_b, cv_c,
                          verdict, reason, min_samples, spread=spread if math.isfinite(spread) else 0.0)

    if n < min_samples:
        return result(TOO_FEW, f"{n} pairs; at least {min_samples} needed")
    if not positive:
        return result(ERRATIC, "a value is not positive; a ratio is meaningless")
    change = math.expm1(float(np.median(d)))
    standard_error = MEDIAN_SE_FACTOR * spread / math.sqrt(n)
    if spread > max_cv and not (threshold > 0 and standard_error <= threshold / RESOLUTION_Z):
        return result(ERRATIC, f"spread of the paired log-ratios is {spread:.3f} > {max_cv:g}, and {n} pairs "
                      f"leave the median a standard error of {standard_error:.1%} "
                      f"(> threshold / {RESOLUTION_Z}); more pairs lift this", change)
    low, high = bootstrap_paired_ci(d, confidence, resamples, seed)
    verdict, reason = judge(change, low, high, metric, threshold, confidence)
    return result(verdict, reason, change, low, high)


def _labels_error(path: str, option: str, label: str, labels: Sequence[str]) -> InputError:
    hint = difflib.get_close_matches(label, list(labels), n=1, cutoff=0.6)
    extra = f"; did you mean {hint[0]!r}?" if hint else f"; labels in this file: {', '.join(labels) or 'none'}"
    return InputError(f"{option} {label}", None, f"no runs labelled {label!r} in {path}{extra}")


def load_pairs(path: str | Path, baseline: str, current: str) -> PairedSamples:
    """The runs of labels ``baseline`` and ``current`` of one results file,
    paired by (partitions, repeat).  InputError for a label the file does not
    have (with the labels it has); ResultsError for a broken file."""
    path = str(path)
    if baseline == current:
        raise InputError(f"--baseline {baseline} --current {current}", None,
                         "expected two different labels of one sweep")
    results = Results.load(path)
    labels = list(dict.fromkeys(run.label for run in results.runs))
    for option, label in (("--baseline", baseline), ("--current", current)):
        if label not in labels:
            raise _labels_error(path, option, label, labels)
    out = PairedSamples(path, baseline, current, results.scenario.name, created=results.created_at)
    slots: dict[tuple[str, int, int], dict[str, float | None]] = {}
    for run in results.runs:
        if run.label not in (baseline, current):
            continue
        if run.error is not None:
            out.excluded.append(f"{run.label} p={run.partitions} repeat {run.repeat}: "
                                f"{run.error.splitlines()[0] if run.error else 'error'}")
            continue
        slots[(run.label, run.partitions, run.repeat)] = {
            "throughput_msgs_per_s": run.throughput_msgs_per_s,
            "latency_ms.p50": run.latency_ms.get("p50"),
            "latency_ms.p99": run.latency_ms.get("p99"),
            "cpu_seconds": run.cpu_seconds,
        }
    by_partitions: dict[int, set[int]] = defaultdict(set)
    for label, partitions, repeat in slots:
        by_partitions[partitions].add(repeat)
    unpaired = 0
    collected: dict[tuple[str, int], tuple[list[float], list[float]]] = {}
    for partitions in sorted(by_partitions):
        for repeat in sorted(by_partitions[partitions]):
            b = slots.get((baseline, partitions, repeat))
            c = slots.get((current, partitions, repeat))
            if b is None or c is None:
                unpaired += 1
                continue
            if partitions not in out.partitions:
                out.partitions.append(partitions)
            for name in RESULTS_METRICS:
                if b[name] is None or c[name] is None:
                    continue
                side_b, side_c = collected.setdefault((name, partitions), ([], []))
                side_b.append(float(b[name]))
                side_c.append(float(c[name]))
    if unpaired:
        out.notes.append(f"{unpaired} run(s) had no partner of the other label in their (partitions, repeat) "
                         "slot (it errored or did not run) and were left out")
    if results.interrupted:
        out.notes.append(f"{path}: the sweep was interrupted; its runs are partial")
    out.pairs = {k: (np.asarray(b), np.asarray(c)) for k, (b, c) in collected.items()}
    return out


def compare_paired(paired: PairedSamples, metrics: Sequence[str] | None = None, *,
                   threshold: float = DEFAULT_THRESHOLD, confidence: float = DEFAULT_CONFIDENCE,
                   max_cv: float = DEFAULT_MAX_CV, min_samples: int = MIN_SAMPLES,
                   resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> CompareReport:
    """Every metric x partition count of a paired file, as a ``CompareReport``
    (``paired`` set) that ``parbench compare`` prints like any other."""
    names = list(metrics) if metrics else list(RESULTS_METRICS)
    for name in names:
        if name not in RESULTS_METRICS:
            raise InputError(f"--metric {name}", None, f"unknown for {KIND_RESULTS} files; expected one of "
                                                       f"{', '.join(RESULTS_METRICS)}")
    comparisons = []
    for name in names:
        for partitions in paired.partitions:
            b, c = paired.pairs.get((name, partitions), (np.empty(0), np.empty(0)))
            comparisons.append(compare_pairs(b, c, RESULTS_METRICS[name], f"{paired.current} p={partitions}",
                                             threshold=threshold, confidence=confidence, max_cv=max_cv,
                                             min_samples=min_samples, resamples=resamples, seed=seed))
    sides = []
    for index, label in enumerate((paired.baseline, paired.current)):
        side = SampleSet(paired.path, KIND_RESULTS, paired.created, label, dict(RESULTS_METRICS),
                         scenario=paired.scenario)
        side.excluded = [e for e in paired.excluded if e.startswith(f"{label} ")]
        # Each side's paired values under the comparisons' names (the
        # current label's), so formats describing CURRENT find them.
        side.configs = [f"{paired.current} p={p}" for p in paired.partitions]
        side.samples = {(name, f"{paired.current} p={p}"): values[index]
                        for (name, p), values in paired.pairs.items()}
        side.labels = {config: label for config in side.configs}
        sides.append(side)
    return CompareReport(sides[0], sides[1], threshold, confidence, max_cv, min_samples, comparisons,
                         only_in_baseline=[], only_in_current=[], notes=list(paired.notes), paired=True,
                         baseline_label=paired.baseline, current_label=paired.current)
