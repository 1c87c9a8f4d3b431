"""Noise-aware comparison of two sets of benchmark samples.

Pure statistics plus loading of the two input formats; no printing, no
plotting. ``harness.compare_cli`` turns this into ``parbench compare`` and
``parbench history``; the method and its limits are in docs/regressions.md.

Method, in one paragraph: for each (metric, configuration) present in both
files the samples are the repeats (parbench results.json) or the rounds
(pytest-benchmark). The effect is the ratio of medians, current / baseline,
reported as a percent change. Its confidence interval is a percentile
bootstrap of that ratio: both sides are resampled with replacement
``resamples`` times in one numpy fancy-indexing step (above
``RESAMPLE_MAX_SAMPLES`` the resampled medians come from their exact rank
distribution), with a fixed seed so the same files always give the same
verdict. A regression needs the whole
interval on the bad side of 0 *and* a median change at least ``threshold``
(Vector's regression detector: 90 % confidence, 5 % effect tolerance). A side
whose coefficient of variation exceeds ``max_cv`` makes the pair ``erratic``
(no verdict, since the interval would be untrustworthy), fewer than
``min_samples`` on a side gives ``too few samples``.

Why a bootstrap of the median ratio and not Mann-Whitney U: the threshold is
a relative effect size, so the interval must be on the ratio scale, in the
same units as the threshold; the median ignores a single disturbed repeat;
and the bootstrap makes no assumption that the two sides differ by a pure
shift (Mann-Whitney's Hodges-Lehmann interval does). Measured calibration for
10 vs 10 repeats from one distribution with 3 % CV: the 90 % interval excludes
0 in about 9 % of pairs (see tests/test_compare.py).
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from parbench.errors import InputFileError
from parbench.harness.results import READABLE_SCHEMAS, Results, parse_json
from parbench.harness.targets.registry import is_calibration

REGRESSION = "regression"
IMPROVEMENT = "improvement"
NO_CHANGE = "no change"
ERRATIC = "erratic"
TOO_FEW = "too few samples"
VERDICTS = (REGRESSION, IMPROVEMENT, NO_CHANGE, ERRATIC, TOO_FEW)

DEFAULT_THRESHOLD = 0.05
DEFAULT_CONFIDENCE = 0.90
DEFAULT_MAX_CV = 0.10
# Measured (docs/regressions.md): with 3 repeats a side the 90 % interval still
# excludes 0 in ~10 % of same-distribution pairs, and 3 is the scenarios'
# default repeat count; with 2, the median is the mean of both values and the
# bootstrap has 3 distinct medians per side: no usable interval.
MIN_SAMPLES = 3
DEFAULT_RESAMPLES = 4000
DEFAULT_SEED = 20240917
# Above this many samples per side (pytest-benchmark rounds) the bootstrap
# medians come from their exact distribution instead of resampling: the same
# answer (tested), in milliseconds instead of tens of seconds at 100k rounds.
RESAMPLE_MAX_SAMPLES = 500
# Upper bound on resamples x samples materialised at once (float64: 8 bytes
# each), so thousands of pytest-benchmark rounds never need gigabytes.
_BOOTSTRAP_CHUNK_ELEMENTS = 4_000_000


class InputError(InputFileError):
    """Bad or unknown input (a file, or an option naming what to compare):
    ``FILE: KEY: what was expected``."""


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    unit: str

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


RESULTS_METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("throughput_msgs_per_s", True, "msg/s"),
        Metric("latency_ms.p50", False, "ms"),
        Metric("latency_ms.p99", False, "ms"),
        Metric("cpu_seconds", False, "s"),
    )
}
BENCH_METRIC = Metric("time_s", False, "s")
BENCH_METRICS: dict[str, Metric] = {BENCH_METRIC.name: BENCH_METRIC}

KIND_RESULTS = "parbench"
KIND_BENCH = "pytest-benchmark"


@dataclass
class SampleSet:
    """One input file reduced to samples per (metric name, configuration)."""

    path: str
    kind: str  # KIND_RESULTS or KIND_BENCH
    created: datetime
    label: str  # short name for plots: commit id or file name
    metrics: dict[str, Metric]
    samples: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    configs: list[str] = field(default_factory=list)  # in file order
    groups: dict[str, str] = field(default_factory=dict)  # config -> benchmark group
    excluded: list[str] = field(default_factory=list)  # errored runs, one line each
    notes: list[str] = field(default_factory=list)
    scenario: str | None = None
    # results.json: each configuration's candidate label and spec as run
    labels: dict[str, str] = field(default_factory=dict)
    specs: dict[str, str] = field(default_factory=dict)
    # Whole-run repeats: a wild repeat is worth flagging, so the classic CV.
    # Benchmark rounds: preemption outliers are routine, so a robust CV.
    robust_cv: bool = False


@dataclass(frozen=True)
class Comparison:
    metric: Metric
    config: str
    group: str | None
    n_baseline: int
    n_current: int
    median_baseline: float
    median_current: float
    change: float  # current/baseline - 1 (nan when not computed)
    ci_low: float
    ci_high: float
    cv_baseline: float
    cv_current: float
    verdict: str
    reason: str
    n_needed: int = MIN_SAMPLES
    # Paired mode (harness.paired): n_baseline == n_current == pairs, and
    # the spread (1.4826 * MAD) of the paired log-ratios decides "erratic".
    spread: float = math.nan
    # Cross-sweep mode: how far the interval was widened (as a fraction) by
    # the drift a control configuration showed between the two files; a
    # verdict with no control to bound that drift is only indicative.
    widened_by: float = 0.0
    indicative: bool = False

    @property
    def paired(self) -> bool:
        return math.isfinite(self.spread)


@dataclass
class CompareReport:
    baseline: SampleSet
    current: SampleSet
    threshold: float
    confidence: float
    max_cv: float
    min_samples: int
    comparisons: list[Comparison]
    only_in_baseline: list[str]
    only_in_current: list[str]
    notes: list[str]
    #: paired mode: the two labels of one results file, judged pair by pair
    paired: bool = False
    baseline_label: str | None = None
    current_label: str | None = None
    #: cross-sweep mode: the control label and its drift per metric, as
    #: the log-ratio of its medians, the largest in size over its partition
    #: counts (no control: verdicts are indicative)
    control: str | None = None
    drift: dict[str, float] = field(default_factory=dict)

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == REGRESSION]

    @property
    def indicative(self) -> bool:
        """Cross-sweep verdicts with no control to bound the drift."""
        return any(c.indicative for c in self.comparisons)

    def counts(self) -> dict[str, int]:
        out = {v: 0 for v in VERDICTS}
        for c in self.comparisons:
            out[c.verdict] += 1
        return out


# --------------------------------------------------------------------------
# statistics


def coefficient_of_variation(values: np.ndarray, robust: bool = False) -> float:
    """std/mean; with ``robust``, 1.4826*MAD/median (equal for normal data)."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return 0.0
    if robust:
        center = float(np.median(values))
        spread = 1.4826 * float(np.median(np.abs(values - center)))
    else:
        center = float(np.mean(values))
        spread = float(np.std(values, ddof=1))
    if center == 0.0:
        return math.inf if spread > 0 else 0.0
    return abs(spread / center)


def _bootstrap_medians_by_rank(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap medians drawn from their exact distribution, without resampling.

    In a resample of n draws from the sorted sample x, the number of draws
    <= x_(k) is Binomial(n, k/n), so the resample's m-th order statistic
    (m = ceil(n/2)) is <= x_(k) with probability P(Binomial(n, k/n) >= m).
    Inverting that CDF with uniform draws costs O(n + resamples log n)
    instead of O(resamples * n). For even n numpy's median averages the m-th
    and (m+1)-th order statistics; at the sizes this is used for (many
    benchmark rounds) the two differ by one rank, far below any threshold.
    """
    from scipy.stats import binom

    ordered = np.sort(values)
    n = ordered.size
    middle_rank = (n + 1) // 2
    cdf = binom.sf(middle_rank - 1, n, np.arange(1, n + 1) / n)
    ranks = np.searchsorted(cdf, rng.random(resamples), side="left")
    return ordered[np.minimum(ranks, n - 1)]


def _bootstrap_medians(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    n = values.size
    if n > RESAMPLE_MAX_SAMPLES:
        return _bootstrap_medians_by_rank(values, resamples, rng)
    rows_per_chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // n)
    out = np.empty(resamples)
    for start in range(0, resamples, rows_per_chunk):
        rows = min(rows_per_chunk, resamples - start)
        idx = rng.integers(0, n, size=(rows, n))
        out[start:start + rows] = np.median(values[idx], axis=1)
    return out


def bootstrap_ratio_ci(
    baseline: np.ndarray,
    current: np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of median(current)/median(baseline) - 1."""
    baseline = np.asarray(baseline, dtype=float)
    current = np.asarray(current, dtype=float)
    rng = np.random.default_rng(seed)
    med_b = _bootstrap_medians(baseline, resamples, rng)
    med_c = _bootstrap_medians(current, resamples, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = med_c / med_b - 1.0
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratio, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_median_ci(
    values: np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of one side's median (the same
    resampling as the ratio interval; for benchmark dashboards that want
    a value with bounds)."""
    values = np.asarray(values, dtype=float)
    medians = _bootstrap_medians(values, resamples, np.random.default_rng(seed))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(medians, [tail, 1.0 - tail])
    return float(low), float(high)


def compare_samples(
    baseline: np.ndarray,
    current: np.ndarray,
    metric: Metric,
    config: str = "",
    *,
    group: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    confidence: float = DEFAULT_CONFIDENCE,
    max_cv: float = DEFAULT_MAX_CV,
    min_samples: int = MIN_SAMPLES,
    robust_cv: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Comparison:
    """Verdict for one metric x configuration; see the module docstring."""
    baseline = np.asarray(baseline, dtype=float)
    current = np.asarray(current, dtype=float)
    nb, nc = baseline.size, current.size
    med_b = float(np.median(baseline)) if nb else math.nan
    med_c = float(np.median(current)) if nc else math.nan
    cv_b = coefficient_of_variation(baseline, robust_cv) if nb else math.nan
    cv_c = coefficient_of_variation(current, robust_cv) if nc else math.nan

    def result(verdict: str, reason: str, change=math.nan, low=math.nan, high=math.nan) -> Comparison:
        return Comparison(metric, config, group, nb, nc, med_b, med_c, change, low, high,
                          cv_b, cv_c, verdict, reason, min_samples)

    if nb < min_samples or nc < min_samples:
        return result(TOO_FEW, f"{nb} baseline / {nc} current samples; at least {min_samples} per side needed")
    if not med_b > 0 or not med_c > 0:
        return result(ERRATIC, "a median is not positive; a ratio of medians is meaningless")
    change = med_c / med_b - 1.0
    if cv_b > max_cv or cv_c > max_cv:
        side = "baseline" if cv_b >= cv_c else "current"
        return result(ERRATIC, f"coefficient of variation of the {side} is "
                      f"{max(cv_b, cv_c):.3f} > {max_cv:g}", change)
    low, high = bootstrap_ratio_ci(baseline, current, confidence, resamples, seed)
    verdict, reason = judge(change, low, high, metric, threshold, confidence)
    return result(verdict, reason, change, low, high)


def judge(change: float, low: float, high: float, metric: Metric, threshold: float,
          confidence: float) -> tuple[str, str]:
    """The verdict rule, shared by every mode: a regression needs the whole
    interval [low, high] of the change on the bad side of 0 *and* the change
    at least ``threshold`` in the bad direction; an improvement the mirror."""
    # "bad" and "good" sides of zero depend on the metric's direction.
    bad_sign = -1.0 if metric.higher_is_better else 1.0
    signed_low, signed_high = sorted((bad_sign * low, bad_sign * high))
    signed_change = bad_sign * change
    pct = f"{confidence:.0%}"
    if signed_low > 0 and signed_change >= threshold:
        return REGRESSION, f"whole {pct} interval on the bad side and |change| >= {threshold:.1%}"
    if signed_high < 0 and -signed_change >= threshold:
        return IMPROVEMENT, f"whole {pct} interval on the good side and |change| >= {threshold:.1%}"
    if signed_low > 0 or signed_high < 0:
        return NO_CHANGE, f"significant at {pct} but |change| < {threshold:.1%}"
    return NO_CHANGE, f"{pct} interval contains 0"


def compare_sets(
    baseline: SampleSet,
    current: SampleSet,
    metrics: Sequence[str] | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    confidence: float = DEFAULT_CONFIDENCE,
    max_cv: float = DEFAULT_MAX_CV,
    min_samples: int = MIN_SAMPLES,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    control: str | None = None,
) -> CompareReport:
    """Two files, configuration by configuration (cross-sweep mode).
    ``control``: the label of a configuration that should not have changed
    (else any calibration implementation in both files); its drift widens
    every interval, and without one the verdicts are indicative."""
    if baseline.kind != current.kind:
        raise InputError(current.path, None, f"is a {current.kind} file but {baseline.path} is a "
                                             f"{baseline.kind} file; compare files of the same kind")
    names = list(metrics) if metrics else list(baseline.metrics)
    for name in names:
        if name not in baseline.metrics:
            raise InputError(f"--metric {name}", None, f"unknown for {baseline.kind} files; expected one of "
                                                       f"{', '.join(baseline.metrics)}")
    notes: list[str] = []
    if baseline.scenario != current.scenario:
        notes.append(f"scenarios differ: baseline {baseline.scenario!r}, current {current.scenario!r}")
    base_configs, cur_configs = set(baseline.configs), set(current.configs)
    control_configs = _control_configs(baseline, current, control)
    control_label = baseline.labels[control_configs[0]] if control_configs else None
    drift: dict[str, float] = {}
    for name in names:
        drifts = []
        for config in control_configs:
            b = baseline.samples.get((name, config), np.empty(0))
            c = current.samples.get((name, config), np.empty(0))
            if b.size and c.size and np.median(b) > 0 and np.median(c) > 0:
                drifts.append(math.log(float(np.median(c)) / float(np.median(b))))
        if drifts:
            drift[name] = max(drifts, key=abs)
    comparisons: list[Comparison] = []
    for name in names:
        metric = baseline.metrics[name]
        for config in baseline.configs:
            if config not in cur_configs or config in control_configs:
                continue
            b = baseline.samples.get((name, config), np.empty(0))
            c = current.samples.get((name, config), np.empty(0))
            result = compare_samples(
                b, c, metric, config, group=baseline.groups.get(config),
                threshold=threshold, confidence=confidence, max_cv=max_cv,
                min_samples=min_samples, robust_cv=baseline.robust_cv,
                resamples=resamples, seed=seed)
            comparisons.append(_bounded_by_drift(result, drift.get(name), threshold, confidence))
    if control is None and not control_configs:
        notes.append("no control configuration in both files (a calibration implementation, or one named "
                     "with --control): the drift of the machine between the two sweeps is unknown, so every "
                     "verdict is indicative; for a gate, run both sides in one sweep and compare with "
                     "--baseline/--current")
    elif control_configs:
        notes.append(f"control `{control_label}` ({', '.join(control_configs)}): between the sweeps it moved by "
                     + ", ".join(f"{name} {math.expm1(d):+.1%}" for name, d in drift.items())
                     + "; every interval of that metric is widened by that much on both sides")
    return CompareReport(
        baseline, current, threshold, confidence, max_cv, min_samples, comparisons,
        only_in_baseline=[c for c in baseline.configs if c not in cur_configs],
        only_in_current=[c for c in current.configs if c not in base_configs],
        notes=notes, control=control_label, drift=drift)


def _control_configs(baseline: SampleSet, current: SampleSet, control: str | None) -> list[str]:
    """The configurations present in both files that stand for the machine
    rather than for the change: the label named by ``control``, else those
    run by a calibration kind of implementation.  InputError when
    ``control`` names no configuration of both files."""
    shared = [c for c in baseline.configs if c in set(current.configs)]
    if control is not None:
        if baseline.kind != KIND_RESULTS:
            raise InputError(f"--control {control}", None, "expected parbench results.json files; "
                             "pytest-benchmark files have no control")
        found = [c for c in shared if baseline.labels.get(c) == control and current.labels.get(c) == control]
        if not found:
            labels = sorted({baseline.labels[c] for c in shared})
            hint = difflib.get_close_matches(control, labels, n=1, cutoff=0.6)
            extra = f"; did you mean {hint[0]!r}?" if hint else f"; labels in both files: {', '.join(labels) or 'none'}"
            raise InputError(f"--control {control}", None, f"no configuration labelled {control!r} in both "
                             f"{baseline.path} and {current.path}{extra}")
        return found
    return [c for c in shared if baseline.specs.get(c) and is_calibration(baseline.specs[c])
            and current.specs.get(c) and is_calibration(current.specs[c])]


def _bounded_by_drift(c: Comparison, drift: float | None, threshold: float, confidence: float) -> Comparison:
    """A cross-sweep comparison with its interval widened by the control's
    drift (log scale, both sides) and judged again; indicative when there
    is no drift estimate for its metric."""
    if drift is None:
        return replace(c, indicative=True)
    drift = abs(drift)
    if not math.isfinite(c.ci_low):
        return replace(c, widened_by=math.expm1(drift))
    low = math.expm1(math.log1p(c.ci_low) - drift)
    high = math.expm1(math.log1p(c.ci_high) + drift)
    verdict, reason = judge(c.change, low, high, c.metric, threshold, confidence)
    if drift > 0:
        reason += f" (interval widened by the control's drift, {math.expm1(drift):.1%})"
    return replace(c, ci_low=low, ci_high=high, verdict=verdict, reason=reason, widened_by=math.expm1(drift))


# --------------------------------------------------------------------------
# history: step detection over a series of runs


@dataclass(frozen=True)
class Step:
    config: str
    index: int  # the first run at the new level
    change: float  # median of run index vs the previous established level, as a fraction
    verdict: str  # REGRESSION or IMPROVEMENT
    confirmed: bool  # the next run stays on the new side (False: last run, unconfirmed)


def detect_steps(
    series: Sequence[np.ndarray],
    metric: Metric,
    config: str = "",
    *,
    threshold: float = DEFAULT_THRESHOLD,
    confidence: float = DEFAULT_CONFIDENCE,
    max_cv: float = DEFAULT_MAX_CV,
    min_samples: int = MIN_SAMPLES,
    robust_cv: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
) -> list[Step]:
    """Steps between consecutive runs, by the same rule as ``compare``.

    The reference is the previous run at the established level. A step at run
    i: comparing the reference (baseline) with run i (current) gives
    regression or improvement. It must persist: if run i+1 exists, its median
    must also lie at least ``threshold`` from the reference median in the same
    direction; otherwise run i was a one-off blip: no step, and the reference
    stays where it was (so the return from a blip is not a step either). A
    step at the last run cannot be confirmed yet and is marked so.
    """
    steps: list[Step] = []
    reference = 0
    for i in range(1, len(series)):
        cmp = compare_samples(series[reference], series[i], metric, config, threshold=threshold,
                              confidence=confidence, max_cv=max_cv, min_samples=min_samples,
                              robust_cv=robust_cv, resamples=resamples, seed=DEFAULT_SEED + i)
        if cmp.verdict not in (REGRESSION, IMPROVEMENT):
            reference = i
            continue
        confirmed = False
        if i + 1 < len(series):
            later = float(np.median(series[i + 1])) / cmp.median_baseline - 1.0 if series[i + 1].size else 0.0
            if math.copysign(1.0, later) != math.copysign(1.0, cmp.change) or abs(later) < threshold:
                continue
            confirmed = True
        steps.append(Step(config, i, cmp.change, cmp.verdict, confirmed))
        reference = i
    return steps


# --------------------------------------------------------------------------
# loading


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _results_config(label: str, partitions: int) -> str:
    return f"{label} p={partitions}"


def _load_results(path: str, doc: dict) -> SampleSet:
    """The repeats of each (impl, partitions) of a results file, through the
    one results model (so its validation, and old schemas, apply here too)."""
    results = Results.from_json(doc, path)
    out = SampleSet(path, KIND_RESULTS, results.created_at, Path(path).parent.name or Path(path).name,
                    dict(RESULTS_METRICS), scenario=results.scenario.name)
    collected: dict[tuple[str, str], list[float]] = {}
    nulls = 0
    for run in results.runs:
        config = _results_config(run.label, run.partitions)
        if config not in out.configs:
            out.configs.append(config)
            out.labels[config] = run.label
            out.specs[config] = run.impl
        if run.error is not None:
            out.excluded.append(f"{config} repeat {run.repeat}: {run.error.splitlines()[0] if run.error else 'error'}")
            continue
        values = {
            "throughput_msgs_per_s": run.throughput_msgs_per_s,
            "latency_ms.p50": run.latency_ms.get("p50"),
            "latency_ms.p99": run.latency_ms.get("p99"),
            "cpu_seconds": run.cpu_seconds,
        }
        for name, value in values.items():
            # null: the run measured nothing for this metric (e.g. no message
            # received, so no latency); the other metrics still count.
            if value is None:
                nulls += 1
                continue
            collected.setdefault((name, config), []).append(float(value))
    if results.interrupted:
        out.notes.append(f"{path}: the sweep was interrupted; its runs are partial")
    if nulls:
        out.notes.append(f"{path}: {nulls} metric value(s) were null and skipped")
    out.samples = {k: np.asarray(v) for k, v in collected.items()}
    return out


def _parse_time(path: str, key: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise InputError(path, key, f"expected an ISO 8601 time string, got {_type_name(value)}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(path, key, f"expected an ISO 8601 time string, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def _load_bench(path: str, doc: dict) -> SampleSet:
    created = _parse_time(path, "datetime", doc.get("datetime"))
    benchmarks = doc.get("benchmarks")
    if not isinstance(benchmarks, list):
        raise InputError(path, "benchmarks", f"expected a list, got {_type_name(benchmarks)}")
    commit = doc.get("commit_info") if isinstance(doc.get("commit_info"), dict) else {}
    commit_id = commit.get("id")
    label = commit_id[:10] if isinstance(commit_id, str) and commit_id != "unversioned" else Path(path).stem
    out = SampleSet(path, KIND_BENCH, created, label, dict(BENCH_METRICS), robust_cv=True)
    for i, bench in enumerate(benchmarks):
        where = f"benchmarks[{i}]"
        if not isinstance(bench, dict):
            raise InputError(path, where, f"expected an object, got {_type_name(bench)}")
        fullname = bench.get("fullname")
        if not isinstance(fullname, str):
            raise InputError(path, f"{where}.fullname", f"expected a string, got {_type_name(fullname)}")
        stats = bench.get("stats")
        if not isinstance(stats, dict):
            raise InputError(path, f"{where}.stats", f"expected an object, got {_type_name(stats)}")
        data = stats.get("data")
        if data is None:
            raise InputError(path, f"{where}.stats.data", f"no raw timings for {fullname}; "
                             "save with `pytest --benchmark-save-data` (or --benchmark-json with it)")
        if not isinstance(data, list):
            raise InputError(path, f"{where}.stats.data", f"expected a list of timings, got {_type_name(data)}")
        try:
            timings = np.asarray(data, dtype=float)
        except (TypeError, ValueError):
            raise InputError(path, f"{where}.stats.data", "expected numbers only") from None
        if timings.ndim != 1 or not np.all(np.isfinite(timings)):
            raise InputError(path, f"{where}.stats.data", "expected a flat list of finite numbers")
        if fullname in out.configs:
            raise InputError(path, f"{where}.fullname", f"duplicate benchmark {fullname!r}")
        out.configs.append(fullname)
        group = bench.get("group")
        if isinstance(group, str):
            out.groups[fullname] = group
        out.samples[(BENCH_METRIC.name, fullname)] = timings
    return out


def load_samples(path: str | Path) -> SampleSet:
    """Load a parbench results.json (ResultsError when it breaks the schema)
    or a pytest-benchmark JSON; InputError on anything else."""
    path = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror or exc}") from None
    doc = parse_json(raw, path, InputError)
    if not isinstance(doc, dict):
        raise InputError(path, None, f"expected a JSON object at the top level, got {_type_name(doc)}")
    if "schema" in doc:
        return _load_results(path, doc)
    if "benchmarks" in doc:
        return _load_bench(path, doc)
    raise InputError(path, "schema", "missing; expected a parbench results.json "
                     f"(schema {' or '.join(repr(s) for s in READABLE_SCHEMAS)}) or a pytest-benchmark JSON "
                     "(key benchmarks)")


def find_result_files(root: str | Path) -> list[Path]:
    """Every *.json under root, sorted by path (loading decides what they are)."""
    root = Path(root)
    return sorted(p for p in root.rglob("*.json") if p.is_file())


# --------------------------------------------------------------------------
# rendering (pure text)


def format_value(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-3 or magnitude >= 1e6):
        return f"{value:.3g}"
    if magnitude >= 100:
        return f"{value:,.0f}"
    return f"{value:#.3g}"


def format_change(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:+.1%}"


def format_ci(c: Comparison) -> str:
    if not math.isfinite(c.ci_low):
        return "-"
    return f"[{c.ci_low:+.1%}, {c.ci_high:+.1%}]"


_MD_ICON = {REGRESSION: "🔴 regression", IMPROVEMENT: "🟢 improvement", NO_CHANGE: "no change",
            ERRATIC: "🟡 erratic", TOO_FEW: "⚪ too few samples"}


def summary_line(report: CompareReport) -> str:
    counts = report.counts()
    parts = [f"{n} {v}" + ("s" if n != 1 and v in (REGRESSION, IMPROVEMENT) else "")
             for v, n in counts.items() if n]
    if report.paired:
        rule = (f"erratic above a log-ratio spread of {report.max_cv:g}, "
                f"at least {report.min_samples} pairs")
    else:
        rule = f"erratic above CV {report.max_cv:g}, at least {report.min_samples} samples per side"
    indicative = " (indicative: no control measured the drift between the sweeps)" if (
        report.indicative and any(c.verdict in (REGRESSION, IMPROVEMENT) for c in report.comparisons)) else ""
    return (f"{', '.join(parts) or 'nothing compared'}{indicative} "
            f"(threshold {report.threshold:.1%}, confidence {report.confidence:.0%}, {rule})")


def short_verdict(c: Comparison) -> str:
    """The verdict as a table cell shows it: with the CV or spread when
    erratic, the minimum when too few, "(indicative)" when no control bounded
    a cross-sweep verdict."""
    if c.verdict == ERRATIC:
        return f"erratic (spread {c.spread:.2f})" if c.paired else \
            f"erratic (CV {max(c.cv_baseline, c.cv_current):.2f})"
    if c.verdict == TOO_FEW:
        return f"too few {'pairs' if c.paired else 'samples'} ({min(c.n_baseline, c.n_current)} < {c.n_needed})"
    if c.indicative and c.verdict in (REGRESSION, IMPROVEMENT):
        return f"{c.verdict} (indicative)"
    return c.verdict


def spread_cell(c: Comparison) -> str:
    """The noise column: the paired log-ratio spread, or both sides' CVs."""
    if c.paired:
        return f"{c.spread:.3f}"
    return f"{c.cv_baseline:.3f} / {c.cv_current:.3f}"


def headline(report: CompareReport) -> str:
    """What was compared with what, in one line."""
    if report.paired:
        return (f"Paired: `{report.current_label}` against `{report.baseline_label}`, run by run in "
                f"`{report.baseline.path}`")
    return f"Baseline `{report.baseline.path}` vs current `{report.current.path}`"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(report: CompareReport) -> str:
    n_reg = len(report.regressions)
    head = "❌ performance regression" if n_reg else "✅ no performance regression"
    if n_reg and report.indicative:
        head += " (indicative)"
    noise = "spread of log-ratios" if report.paired else "CV (b / c)"
    sides = (f"`{report.baseline_label}` median", f"`{report.current_label}` median") if report.paired else (
        "baseline median", "current median")
    lines = [
        f"### parbench compare: {head}",
        "",
        f"{headline(report)}: {summary_line(report)}.",
        "",
        f"| metric | configuration | {sides[0]} | {sides[1]} | change | CI | {noise} | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in report.comparisons:
        config = c.config if not c.group else f"{c.config} ({c.group})"
        verdict = _MD_ICON[c.verdict]
        if c.verdict in (ERRATIC, TOO_FEW):
            verdict += f": {c.reason}"
        elif c.indicative and c.verdict in (REGRESSION, IMPROVEMENT):
            verdict += " (indicative)"
        lines.append(
            f"| {c.metric.name} ({c.metric.direction}) | {_md_escape(config)} | {format_value(c.median_baseline)} "
            f"| {format_value(c.median_current)} | {format_change(c.change)} | {format_ci(c)} "
            f"| {spread_cell(c)} | {_md_escape(verdict)} |")
    extra = []
    if report.only_in_baseline:
        extra.append("Only in baseline (not compared): " + ", ".join(f"`{c}`" for c in report.only_in_baseline))
    if report.only_in_current:
        extra.append("Only in current (not compared): " + ", ".join(f"`{c}`" for c in report.only_in_current))
    for side in (report.baseline, report.current):
        if side.excluded:
            extra.append(f"Runs excluded from `{side.path}` because they errored: "
                         + "; ".join(_md_escape(e) for e in side.excluded))
    extra.extend(report.notes)
    if extra:
        lines.append("")
        lines.extend(f"- {e}" for e in extra)
    if report.paired:
        method = (f"Method: each (partitions, repeat) slot pairs two adjacent runs; bootstrap ({DEFAULT_RESAMPLES} "
                  "resamples of the pairs, seeded) interval of the median of the log-ratios; a "
                  "regression needs the whole interval on the bad side and a change of at least the threshold.")
    else:
        method = (f"Method: bootstrap ({DEFAULT_RESAMPLES} resamples, seeded) interval of the ratio of "
                  "medians; a regression needs the whole interval on the bad side and a change of at least "
                  "the threshold.")
    lines += ["", method + " See docs/regressions.md.", ""]
    return "\n".join(lines)
