"""Statistics and loading of harness.compare (the CLI is in test_compare_cli.py)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from parbench.errors import InputFileError
from parbench.harness import compare as cmp

FIXTURES = Path(__file__).parent / "fixtures" / "compare"
THROUGHPUT = cmp.RESULTS_METRICS["throughput_msgs_per_s"]
LATENCY = cmp.RESULTS_METRICS["latency_ms.p50"]


def noisy(rng, center, cv, n):
    return center * (1.0 + cv * rng.standard_normal(n))


# ---------------------------------------------------------------- verdicts


@pytest.mark.parametrize("seed", range(5))
def test_twenty_percent_slowdown_is_a_regression_in_both_directions(seed):
    rng = np.random.default_rng(seed)
    base = noisy(rng, 100_000, 0.03, 10)
    slower = noisy(rng, 80_000, 0.03, 10)
    result = cmp.compare_samples(base, slower, THROUGHPUT)
    assert result.verdict == cmp.REGRESSION
    assert result.ci_high < 0 and result.change == pytest.approx(-0.2, abs=0.05)
    # the same samples read as latencies (lower is better) are an improvement
    assert cmp.compare_samples(base, slower, LATENCY).verdict == cmp.IMPROVEMENT


@pytest.mark.parametrize("seed", range(5))
def test_twenty_percent_speedup_is_an_improvement(seed):
    rng = np.random.default_rng(100 + seed)
    base = noisy(rng, 100_000, 0.03, 10)
    faster = noisy(rng, 120_000, 0.03, 10)
    result = cmp.compare_samples(base, faster, THROUGHPUT)
    assert result.verdict == cmp.IMPROVEMENT
    assert result.ci_low > 0
    assert cmp.compare_samples(base, faster, LATENCY).verdict == cmp.REGRESSION


def _false_alarm_rates(confidence, threshold, trials=200, n=10, cv=0.03, seed=7):
    """Share of same-distribution pairs whose interval excludes 0, and regressions."""
    rng = np.random.default_rng(seed)
    excludes_zero = regressions = 0
    for _ in range(trials):
        base, cur = noisy(rng, 1000.0, cv, n), noisy(rng, 1000.0, cv, n)
        result = cmp.compare_samples(base, cur, THROUGHPUT, confidence=confidence, threshold=threshold,
                                     resamples=2000)
        excludes_zero += result.ci_low > 0 or result.ci_high < 0
        regressions += result.verdict == cmp.REGRESSION
    return excludes_zero / trials, regressions / trials


# With 200 trials the observed rate of a true rate p has standard deviation
# sqrt(p(1-p)/200): 2.1 points at p=0.10, 1.5 at p=0.05. Three of them is the
# tolerance (a correct method fails this test about 1 run in 700, and the
# seed is fixed, so it does not flake).
TRIALS = 200


def _upper_bound(p):
    return p + 3 * math.sqrt(p * (1 - p) / TRIALS)


@pytest.mark.parametrize("repeats", [cmp.MIN_SAMPLES, 10])
def test_same_distribution_rarely_alarms_at_the_stated_rate(repeats):
    confidence = 0.90
    # threshold 0: the verdict rests on the interval alone, so this measures calibration
    excluded, regressions = _false_alarm_rates(confidence, threshold=0.0, n=repeats)
    assert excluded <= _upper_bound(1 - confidence)
    assert regressions <= _upper_bound((1 - confidence) / 2)
    # not vacuous: an interval so wide it never excludes 0 would also pass the bound
    assert excluded >= 0.02
    # the shipped default (5 % tolerance) on 3 % CV data: essentially never
    _, default_regressions = _false_alarm_rates(confidence, threshold=cmp.DEFAULT_THRESHOLD, n=repeats)
    assert default_regressions <= 0.01


def test_false_alarm_check_catches_an_overconfident_interval():
    # A 50 % interval claimed as if it were 90 % must blow the bound above:
    # shows the calibration test can fail.
    excluded, _ = _false_alarm_rates(0.50, threshold=0.0)
    assert excluded > _upper_bound(0.10)


def test_detects_a_real_eight_percent_slowdown_most_of_the_time():
    rng = np.random.default_rng(11)
    hits = sum(
        cmp.compare_samples(noisy(rng, 1000.0, 0.03, 10), noisy(rng, 920.0, 0.03, 10), THROUGHPUT,
                            resamples=2000).verdict == cmp.REGRESSION
        for _ in range(100))
    assert hits >= 80


def test_significant_but_below_threshold_is_no_change():
    rng = np.random.default_rng(3)
    base = noisy(rng, 1000.0, 0.005, 20)
    cur = noisy(rng, 980.0, 0.005, 20)
    result = cmp.compare_samples(base, cur, THROUGHPUT)
    assert result.ci_high < 0  # the 2 % drop is real...
    assert result.verdict == cmp.NO_CHANGE  # ...but below the 5 % tolerance
    assert "significant" in result.reason
    assert cmp.compare_samples(base, cur, THROUGHPUT, threshold=0.01).verdict == cmp.REGRESSION


def test_high_variance_pair_is_erratic_even_with_a_big_shift():
    rng = np.random.default_rng(5)
    base = noisy(rng, 1000.0, 0.03, 10)
    wild = noisy(rng, 700.0, 0.3, 10)
    result = cmp.compare_samples(base, wild, THROUGHPUT)
    assert result.verdict == cmp.ERRATIC
    assert "current" in result.reason and "0.1" in result.reason
    assert cmp.compare_samples(wild, base, THROUGHPUT).verdict == cmp.ERRATIC
    assert cmp.compare_samples(base, wild, THROUGHPUT, max_cv=1.0).verdict != cmp.ERRATIC


def test_too_few_samples_says_the_minimum():
    rng = np.random.default_rng(6)
    assert cmp.MIN_SAMPLES == 3
    result = cmp.compare_samples(noisy(rng, 1, 0.01, 10), noisy(rng, 2, 0.01, 2), THROUGHPUT)
    assert result.verdict == cmp.TOO_FEW
    assert "10 baseline / 2 current" in result.reason and "at least 3 per side" in result.reason
    assert cmp.compare_samples(noisy(rng, 1, 0.01, 3), noisy(rng, 2, 0.01, 3),
                               THROUGHPUT).verdict == cmp.IMPROVEMENT
    assert cmp.compare_samples(noisy(rng, 1, 0.01, 3), noisy(rng, 2, 0.01, 3), THROUGHPUT,
                               min_samples=4).verdict == cmp.TOO_FEW


def test_bootstrap_is_seeded_and_brackets_the_point_estimate():
    rng = np.random.default_rng(8)
    base, cur = noisy(rng, 10.0, 0.03, 12), noisy(rng, 11.0, 0.03, 12)
    first = cmp.bootstrap_ratio_ci(base, cur)
    assert first == cmp.bootstrap_ratio_ci(base, cur)
    low, high = first
    assert low < float(np.median(cur) / np.median(base)) - 1 < high
    wider = cmp.bootstrap_ratio_ci(base, cur, confidence=0.99)
    assert wider[0] < low and wider[1] > high


def test_bootstrap_in_chunks_matches_the_truth_on_many_rounds(monkeypatch):
    monkeypatch.setattr(cmp, "RESAMPLE_MAX_SAMPLES", 10**9)  # resample, do not use ranks
    monkeypatch.setattr(cmp, "_BOOTSTRAP_CHUNK_ELEMENTS", 50_000)  # forces 40 chunks
    rng = np.random.default_rng(9)
    base = 1e-5 * (0.97 + rng.exponential(0.03, 2000))
    cur = 1.1e-5 * (0.97 + rng.exponential(0.03, 2000))
    low, high = cmp.bootstrap_ratio_ci(base, cur, resamples=1000)
    assert 0.09 < low < 0.1 < high < 0.11


def test_robust_cv_ignores_rare_preemption_outliers_classic_does_not():
    rng = np.random.default_rng(10)
    rounds = 1e-5 * (1 + 0.02 * rng.standard_normal(500))
    rounds[::50] *= 20  # a few preempted rounds
    assert cmp.coefficient_of_variation(rounds) > 0.1
    assert cmp.coefficient_of_variation(rounds, robust=True) < 0.05


# ---------------------------------------------------------------- steps


def _series(levels, seed=12, n=10, cv=0.02):
    rng = np.random.default_rng(seed)
    return [noisy(rng, level, cv, n) for level in levels]


def test_step_detection_marks_a_persistent_step_once():
    steps = cmp.detect_steps(_series([100, 100, 101, 100, 80, 80, 81]), THROUGHPUT, "cfg")
    assert [(s.index, s.verdict, s.confirmed) for s in steps] == [(4, cmp.REGRESSION, True)]
    assert steps[0].change == pytest.approx(-0.2, abs=0.04)


def test_step_detection_ignores_a_one_off_blip_and_flags_an_unconfirmed_last_run():
    assert cmp.detect_steps(_series([100, 100, 70, 100, 100]), THROUGHPUT) == []
    steps = cmp.detect_steps(_series([100, 100, 100, 125]), THROUGHPUT)
    assert [(s.index, s.verdict, s.confirmed) for s in steps] == [(3, cmp.IMPROVEMENT, False)]


# ---------------------------------------------------------------- loading


def test_results_json_with_an_errored_run_excludes_and_lists_it():
    loaded = cmp.load_samples(FIXTURES / "results_base.json")
    assert loaded.kind == cmp.KIND_RESULTS
    assert loaded.configs == ["reference p=1", "reference p=4"]
    assert loaded.samples[("throughput_msgs_per_s", "reference p=4")].size == 10
    assert len(loaded.excluded) == 1 and "reference p=4 repeat 10" in loaded.excluded[0]
    assert "did not become ready" in loaded.excluded[0]


def test_compare_sets_lists_configurations_present_on_one_side_only():
    report = cmp.compare_sets(cmp.load_samples(FIXTURES / "results_base.json"),
                              cmp.load_samples(FIXTURES / "results_slow.json"))
    assert report.only_in_current == ["reference p=8"] and report.only_in_baseline == []
    verdicts = {(c.metric.name, c.config): c.verdict for c in report.comparisons}
    assert len(verdicts) == 8
    assert {k for k, v in verdicts.items() if v == cmp.REGRESSION} == {
        (m, "reference p=4") for m in cmp.RESULTS_METRICS}
    assert all(v == cmp.NO_CHANGE for (m, c), v in verdicts.items() if c == "reference p=1")


def test_pytest_benchmark_with_raw_data_compares_per_fullname_with_group():
    report = cmp.compare_sets(cmp.load_samples(FIXTURES / "bench_base.json"),
                              cmp.load_samples(FIXTURES / "bench_slow.json"))
    by_config = {c.config.split("::")[-1]: c for c in report.comparisons}
    assert by_config["test_parse"].verdict == cmp.REGRESSION
    assert by_config["test_parse"].group == "collect"
    assert by_config["test_hash"].verdict == cmp.NO_CHANGE
    assert report.baseline.label == "a" * 10


def test_pytest_benchmark_without_raw_data_says_how_to_save_it():
    with pytest.raises(cmp.InputError) as info:
        cmp.load_samples(FIXTURES / "bench_nodata.json")
    message = str(info.value)
    assert "bench_nodata.json" in message and "benchmarks[0].stats.data" in message
    assert "--benchmark-save-data" in message and "\n" not in message


def _write(tmp_path, doc, name="x.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _v1_run(**changes):
    """A complete run of a parbench.results/1 file (as the compare fixtures hold them)."""
    base = json.loads((FIXTURES / "results_base.json").read_text())["runs"][0]
    return {**base, **changes}


@pytest.mark.parametrize("doc, expected", [
    ('{"schema": "parbench.results/1",\n "runs": [}', ":2:11: invalid JSON"),
    ([1, 2], ": expected a JSON object at the top level, got list"),
    ({"hello": 1}, ": schema: missing; expected a parbench results.json"),
    ({"schema": "parbench.results/9"},
     ": schema: expected 'parbench.results/2' or 'parbench.results/1', got 'parbench.results/9'"),
    ({"schema": "parbench.results/1", "created": "yesterday", "runs": []}, ": created: expected an ISO 8601 time"),
    ({"schema": "parbench.results/1", "created": "2026-01-01T00:00:00Z", "runs": {}},
     ": runs: expected an array, got an object"),
    ({"schema": "parbench.results/1", "created": "2026-01-01T00:00:00Z",
      "runs": [{"impl": "r", "partitions": "4"}]}, ": runs[0].partitions: expected an integer >= 0, got '4' (string)"),
    ({"schema": "parbench.results/1", "created": "2026-01-01T00:00:00Z",
      "runs": [_v1_run(throughput_msgs_per_s="fast")]},
     ": runs[0].throughput_msgs_per_s: expected a finite number or null, got 'fast' (string)"),
    ({"datetime": "2026-01-01T00:00:00Z", "benchmarks": [{"fullname": "t", "stats": {"data": [1, "x"]}}]},
     ": benchmarks[0].stats.data: expected numbers only"),
])
def test_bad_input_is_one_line_naming_file_and_key(tmp_path, doc, expected):
    path = _write(tmp_path, doc)
    with pytest.raises(InputFileError) as info:  # compare's InputError, or the results model's ResultsError
        cmp.load_samples(path)
    assert str(info.value).startswith(f"{path}{expected}")
    assert "\n" not in str(info.value) and info.value.exit_code == 2


def test_unknown_metric_and_mixed_kinds_are_input_errors():
    base = cmp.load_samples(FIXTURES / "results_base.json")
    with pytest.raises(cmp.InputError, match="--metric time_s: unknown"):
        cmp.compare_sets(base, base, ["time_s"])
    with pytest.raises(cmp.InputError, match="same kind"):
        cmp.compare_sets(base, cmp.load_samples(FIXTURES / "bench_base.json"))


# ---------------------------------------------------------------- markdown


def test_markdown_for_a_pull_request_comment():
    report = cmp.compare_sets(cmp.load_samples(FIXTURES / "results_base.json"),
                              cmp.load_samples(FIXTURES / "results_slow.json"),
                              ["throughput_msgs_per_s"])
    text = cmp.render_markdown(report)
    lines = text.splitlines()
    # two sweeps with no control between them: the verdict says it is indicative
    assert lines[0] == "### parbench compare: ❌ performance regression (indicative)"
    assert "no control configuration in both files" in text
    header = next(i for i, line in enumerate(lines) if line.startswith("| metric |"))
    assert lines[header + 1].startswith("|---|")
    rows = [line for line in lines[header + 2:] if line.startswith("| ")]
    assert len(rows) == 2 and all(row.count("|") == 9 for row in rows)
    regression_row = next(row for row in rows if "reference p=4" in row)
    assert "🔴 regression" in regression_row and "-19.2%" in regression_row
    assert "Only in current (not compared): `reference p=8`" in text
    assert "because they errored" in text and "did not become ready" in text
    quiet = cmp.compare_sets(report.baseline, report.baseline)
    assert cmp.render_markdown(quiet).splitlines()[0].endswith("✅ no performance regression")


def test_loads_what_harness_results_writes(tmp_path):
    from parbench.harness.results import Results, Run, ScenarioInfo

    runs = []
    for repeat in range(3):
        for partitions, throughput in ((1, 1000.0), (4, 3000.0)):
            runs.append(Run("reference", partitions, repeat, throughput_msgs_per_s=throughput + repeat,
                            cpu_seconds=1.0 + repeat / 100, latency_ms={"p50": 2.0, "p99": 9.0, "max": 12.0},
                            verdict="pass"))
    errored = Run("reference", 4, 3, error="target exited with status 1")
    path = Results(ScenarioInfo("s", "s.toml"), runs + [errored]).write(tmp_path / "results.json")
    assert json.loads(path.read_text())["schema"] == "parbench.results/2"
    loaded = cmp.load_samples(path)
    assert loaded.configs == ["reference p=1", "reference p=4"]
    assert list(loaded.samples[("throughput_msgs_per_s", "reference p=4")]) == [3000.0, 3001.0, 3002.0]
    assert loaded.excluded == ["reference p=4 repeat 3: target exited with status 1"]
    assert loaded.scenario == "s"


@pytest.mark.parametrize("n", [1001, 2000])
def test_rank_bootstrap_of_many_rounds_matches_resampling(monkeypatch, n):
    rng = np.random.default_rng(n)
    base = 1e-6 * (0.97 + rng.exponential(0.03, n))
    cur = 1.002e-6 * (0.97 + rng.exponential(0.03, n))
    assert n > cmp.RESAMPLE_MAX_SAMPLES
    by_rank = cmp.bootstrap_ratio_ci(base, cur)
    monkeypatch.setattr(cmp, "RESAMPLE_MAX_SAMPLES", 10**9)
    resampled = cmp.bootstrap_ratio_ci(base, cur)
    width = resampled[1] - resampled[0]
    assert by_rank[0] == pytest.approx(resampled[0], abs=0.15 * width)
    assert by_rank[1] == pytest.approx(resampled[1], abs=0.15 * width)


def test_rank_bootstrap_false_alarm_rate_on_many_rounds():
    rng = np.random.default_rng(21)
    trials = 200
    excluded = 0
    for _ in range(trials):
        base, cur = 1e-6 * (0.97 + rng.exponential(0.03, (2, 3000)))
        low, high = cmp.bootstrap_ratio_ci(base, cur, resamples=2000)
        excluded += low > 0 or high < 0
    assert 0.02 <= excluded / trials <= _upper_bound(0.10)
