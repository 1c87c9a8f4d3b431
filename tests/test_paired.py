"""Paired compare (one interleaved sweep, --baseline/--current labels), the
cross-sweep control, and history over labels and paired files."""
from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from parbench.cli import main
from parbench.harness import compare as cmp
from parbench.harness import paired
from parbench.harness.results import Results, Run, ScenarioInfo
from parbench.harness.scenario import Expectation
from parbench.harness.targets import registry
from parbench.harness.targets.base import Target
from parbench.harness.targets.kind import TargetKind

THROUGHPUT = cmp.RESULTS_METRICS["throughput_msgs_per_s"]


def drifting_pairs(rng, n, change=0.0, drift=0.15, noise=0.02):
    """Pairs whose slots share a large machine effect (``drift``, log-normal)
    and differ by small independent noise: what an interleaved sweep on a
    busy machine gives."""
    slot = 100_000 * np.exp(drift * rng.standard_normal(n))
    base = slot * np.exp(noise * rng.standard_normal(n))
    cur = slot * (1 + change) * np.exp(noise * rng.standard_normal(n))
    return base, cur


# ---------------------------------------------------------------- statistics


def test_change_is_the_median_log_ratio_and_its_interval_brackets_it():
    base = np.array([100.0, 100.0, 100.0, 100.0, 100.0])
    cur = np.array([90.0, 91.0, 80.0, 92.0, 95.0])
    found = paired.compare_pairs(base, cur, THROUGHPUT)
    assert found.change == pytest.approx(-0.09)  # exp(median(log ratios)) - 1
    assert found.ci_low <= found.change <= found.ci_high


def test_pairing_cancels_drift_that_makes_the_old_method_erratic_or_wrong():
    rng = np.random.default_rng(11)
    base, cur = drifting_pairs(rng, 10)
    assert paired.compare_pairs(base, cur, THROUGHPUT).verdict == cmp.NO_CHANGE
    slow_base, slow_cur = drifting_pairs(rng, 10, change=-0.10)
    found = paired.compare_pairs(slow_base, slow_cur, THROUGHPUT)
    assert found.verdict == cmp.REGRESSION
    assert found.change == pytest.approx(-0.10, abs=0.03)
    assert found.ci_low < found.change < found.ci_high < 0
    # The same numbers as two independent sweeps: the drift swamps the 10 %.
    assert cmp.compare_samples(slow_base, slow_cur, THROUGHPUT).verdict != cmp.REGRESSION


@pytest.mark.parametrize("pairs", [5, 10])
def test_false_alarm_rate_and_power_on_drifting_pairs(pairs):
    rng = np.random.default_rng(pairs)
    tries = 200
    false = sum(paired.compare_pairs(*drifting_pairs(rng, pairs, noise=0.03), THROUGHPUT, seed=i).verdict
                == cmp.REGRESSION for i in range(tries))
    caught = sum(paired.compare_pairs(*drifting_pairs(rng, pairs, change=-0.10, noise=0.03), THROUGHPUT,
                                      seed=i).verdict == cmp.REGRESSION for i in range(tries))
    assert false <= 2, false  # goal: at most 1 in 100
    assert caught >= 0.9 * tries, caught


def test_the_rate_check_catches_an_interval_that_ignores_the_pairing():
    """Proof that the false-alarm test can fail: judging the same A/A pairs
    with a too-narrow interval (the mean +- its naive standard error of a
    tenth of the spread) alarms far more often than allowed."""
    rng = np.random.default_rng(5)
    false = 0
    for _ in range(200):
        base, cur = drifting_pairs(rng, 5, noise=0.06)
        d = np.log(cur / base)
        change = math.expm1(d.mean())
        half = 0.1 * d.std(ddof=1) / math.sqrt(d.size)
        verdict, _ = cmp.judge(change, math.expm1(d.mean() - half), math.expm1(d.mean() + half), THROUGHPUT,
                               0.0, 0.9)
        false += verdict == cmp.REGRESSION
    assert false > 2


def test_one_disturbed_pair_does_not_decide():
    rng = np.random.default_rng(2)
    base, cur = drifting_pairs(rng, 10)
    cur[3] *= 0.5  # a burst of load hit only the current side of one slot
    assert paired.compare_pairs(base, cur, THROUGHPUT).verdict == cmp.NO_CHANGE


def test_erratic_when_the_sides_do_not_move_together():
    rng = np.random.default_rng(4)
    base, cur = drifting_pairs(rng, 10, change=-0.3, noise=0.15)
    found = paired.compare_pairs(base, cur, THROUGHPUT)
    assert found.verdict == cmp.ERRATIC and found.spread > 0.1
    assert "spread of the paired log-ratios" in found.reason
    assert cmp.short_verdict(found).startswith("erratic (spread 0.")


def test_too_few_pairs_and_non_positive_values():
    found = paired.compare_pairs(np.array([1.0, 2.0]), np.array([1.0, 2.0]), THROUGHPUT)
    assert found.verdict == cmp.TOO_FEW and cmp.short_verdict(found) == "too few pairs (2 < 3)"
    assert paired.compare_pairs(np.array([1.0, 0.0, 2.0]), np.ones(3), THROUGHPUT).verdict == cmp.ERRATIC


def test_latency_direction_and_seeded_interval():
    rng = np.random.default_rng(8)
    base, cur = drifting_pairs(rng, 10, change=0.2)
    latency = cmp.RESULTS_METRICS["latency_ms.p50"]
    assert paired.compare_pairs(base, cur, latency).verdict == cmp.REGRESSION  # slower = higher latency
    assert paired.compare_pairs(base, cur, THROUGHPUT).verdict == cmp.IMPROVEMENT
    d = np.log(cur / base)
    assert paired.bootstrap_paired_ci(d, seed=1) == paired.bootstrap_paired_ci(d, seed=1)


# ---------------------------------------------------------------- results files


def run(label, impl, partitions, repeat, throughput, error=None):
    r = Run(impl, partitions, repeat, expectation=Expectation("per-key"), label=label,
            throughput_msgs_per_s=None if error else throughput, error=error,
            latency_ms={"p50": 1.0 + 0.01 * repeat, "p99": 5.0, "max": 9.0}, cpu_seconds=1.0,
            verdict="fail" if error else "pass")
    return r


def write_results(path, table, created="2026-11-26T12:00:00Z"):
    """table: {label: (impl, {partitions: [throughput per repeat, None = errored]})}."""
    runs = []
    for label, (impl, by_partitions) in table.items():
        for partitions, values in by_partitions.items():
            for repeat, value in enumerate(values):
                runs.append(run(label, impl, partitions, repeat, value,
                                error="target did not start" if value is None else None))
    Results(ScenarioInfo("chatty", "chatty.toml", {}), runs, created=created).write(path)
    return path


def sweep_values(rng, n, change=0.0, level=100_000):
    base, cur = drifting_pairs(rng, n, change=change)
    return list(base * level / 100_000), list(cur * level / 100_000)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_load_pairs_pairs_by_slot_and_says_what_it_left_out(tmp_path):
    path = write_results(tmp_path / "r.json", {
        "base": ("base=reference", {0: [100.0, 110.0, None, 90.0], 2: [200.0, 210.0, 190.0]}),
        "head": ("head=reference", {0: [101.0, 111.0, 120.0, 91.0], 2: [201.0, 211.0]}),
    })
    found = paired.load_pairs(path, "base", "head")
    b, c = found.pairs[("throughput_msgs_per_s", 0)]
    assert list(b) == [100.0, 110.0, 90.0] and list(c) == [101.0, 111.0, 91.0]  # repeat 2 errored on base
    b, c = found.pairs[("throughput_msgs_per_s", 2)]
    assert list(b) == [200.0, 210.0] and list(c) == [201.0, 211.0]
    assert found.partitions == [0, 2]
    assert any("base p=0 repeat 2: target did not start" in e for e in found.excluded)
    assert any("2 run(s) had no partner" in n for n in found.notes)


def test_unknown_label_is_one_line_with_a_suggestion(tmp_path):
    path = write_results(tmp_path / "r.json", {"base": ("base=reference", {0: [1.0, 2.0, 3.0]}),
                                               "head": ("head=reference", {0: [1.0, 2.0, 3.0]})})
    result = CliRunner().invoke(main, ["compare", str(path), "--baseline", "bsae", "--current", "head"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--baseline bsae: no runs labelled 'bsae'" in result.output and "did you mean 'base'?" in result.output


@pytest.mark.parametrize("args, expected", [
    (["--baseline", "base"], "expected both"),
    (["--baseline", "base", "--current", "head", "OTHER"], "expected one results file"),
    (["--baseline", "base", "--current", "head", "--control", "x"], "--control: only for two files"),
    (["--baseline", "base", "--current", "base"], "expected two different labels"),
    ([], "expected BASELINE and CURRENT files"),
])
def test_paired_usage_errors(tmp_path, args, expected):
    path = write_results(tmp_path / "r.json", {"base": ("base=reference", {0: [1.0, 2.0, 3.0]}),
                                               "head": ("head=reference", {0: [1.0, 2.0, 3.0]})})
    args = [str(path) if a == "OTHER" else a for a in args]
    result = CliRunner().invoke(main, ["compare", str(path), *args])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output


def test_paired_cli_exit_status_table_and_markdown(tmp_path):
    rng = np.random.default_rng(21)
    base0, head0 = sweep_values(rng, 10, change=-0.12)
    base2, head2 = sweep_values(rng, 10, change=0.0, level=180_000)
    path = write_results(tmp_path / "r.json", {"base": ("base=syslog-ng:/opt/a", {0: base0, 2: base2}),
                                               "head": ("head=syslog-ng:/opt/b", {0: head0, 2: head2})})
    md = tmp_path / "summary.md"
    result = invoke("compare", path, "--baseline", "base", "--current", "head", "--metric",
                    "throughput_msgs_per_s", "--markdown", md)
    assert result.exit_code == 1, result.output
    assert "paired: head against base" in result.output and "1 regression" in result.output
    text = md.read_text()
    assert text.startswith("### parbench compare: ❌ performance regression\n")
    assert "Paired: `head` against `base`" in text and "spread of log-ratios" in text
    rows = {line.split("|")[2].strip(): line for line in text.splitlines() if line.startswith("| throughput")}
    assert "🔴 regression" in rows["head p=0"] and "no change" in rows["head p=2"]
    assert "median of the log-ratios" in text
    # the reverse question is an improvement: exit 0
    result = invoke("compare", path, "--baseline", "head", "--current", "base", "--metric", "throughput_msgs_per_s")
    assert result.exit_code == 0 and "1 improvement" in result.output


# ---------------------------------------------------------------- two sweeps, a control


def two_sweeps(tmp_path, drift, change, control_label="calib", control_impl="calib=reference"):
    """Two files a sweep apart: the machine moved by ``drift`` between them,
    the candidate by ``drift`` and ``change``; the control did not change."""
    rng = np.random.default_rng(9)

    def values(level):
        return list(level * (1 + 0.01 * rng.standard_normal(10)))

    before = write_results(tmp_path / "before.json", {
        "head": ("head=reference", {0: values(100_000)}),
        control_label: (control_impl, {0: values(50_000)}),
    }, created="2026-11-26T12:00:00Z")
    after = write_results(tmp_path / "after.json", {
        "head": ("head=reference", {0: values(100_000 * (1 + drift) * (1 + change))}),
        control_label: (control_impl, {0: values(50_000 * (1 + drift))}),
    }, created="2026-11-27T12:00:00Z")
    return before, after


def test_control_drift_widens_the_interval_instead_of_crying_wolf(tmp_path):
    before, after = two_sweeps(tmp_path, drift=-0.08, change=0.0)
    plain = invoke("compare", before, after, "--metric", "throughput_msgs_per_s")
    # Without a control, the machine's -8 % looks like a regression of everything.
    assert plain.exit_code == 1 and "regression (indicative)" in plain.output
    assert "no control configuration in both files" in plain.output
    bounded = invoke("compare", before, after, "--metric", "throughput_msgs_per_s", "--control", "calib")
    assert bounded.exit_code == 0, bounded.output
    moved = bounded.output.split("control `calib`")[1].split("moved by throughput_msgs_per_s ")[1]
    assert -0.12 < float(moved.split("%")[0]) / 100 < -0.05, moved
    assert "indicative" not in bounded.output.split("note:")[0]


def test_a_change_beyond_the_drift_is_still_a_regression(tmp_path):
    before, after = two_sweeps(tmp_path, drift=-0.03, change=-0.25)
    report = cmp.compare_sets(cmp.load_samples(before), cmp.load_samples(after), ["throughput_msgs_per_s"],
                              control="calib")
    (c,) = report.comparisons
    assert c.verdict == cmp.REGRESSION and not c.indicative
    assert c.widened_by == pytest.approx(math.expm1(abs(report.drift["throughput_msgs_per_s"])))
    assert c.widened_by > 0.02
    assert report.control == "calib"


def test_unknown_control_is_one_line(tmp_path):
    before, after = two_sweeps(tmp_path, drift=0.0, change=0.0)
    result = CliRunner().invoke(main, ["compare", str(before), str(after), "--control", "clib"])
    assert result.exit_code == 2 and "did you mean 'calib'?" in result.output


class _CalibrationKind(TargetKind):
    name = "calibration-relay"
    syntax = "calibration-relay"
    summary = "a relay that only forwards (test)"
    calibration = True

    def make(self, spec, *, profile=None) -> Target:  # never run here
        raise NotImplementedError


def test_a_calibration_kind_is_the_control_without_naming_it(tmp_path):
    with registry.registered(_CalibrationKind()):
        before, after = two_sweeps(tmp_path, drift=-0.08, change=0.0, control_label="calibration-relay",
                                   control_impl="calibration-relay")
        report = cmp.compare_sets(cmp.load_samples(before), cmp.load_samples(after), ["throughput_msgs_per_s"])
    assert report.control == "calibration-relay"
    assert [c.verdict for c in report.comparisons] == [cmp.NO_CHANGE]
    assert not report.indicative


# ---------------------------------------------------------------- history


def test_history_filters_on_labels(tmp_path):
    rng = np.random.default_rng(1)
    for day in range(3):
        write_results(tmp_path / f"r{day}.json", {
            "base": ("base=syslog-ng:/opt/a", {0: sweep_values(rng, 5)[0]}),
            "head": ("head=syslog-ng:/opt/b", {0: sweep_values(rng, 5)[0]}),
        }, created=f"2026-11-2{day}T12:00:00Z")
    result = invoke("history", tmp_path, "--impl", "head", "--out", tmp_path / "h.png")
    assert result.exit_code == 0, result.output
    assert "3 parbench run(s), 1 configuration(s)" in result.output
    # the spec as run matches too
    result = invoke("history", tmp_path, "--impl", "base=syslog-ng:/opt/a", "--out", tmp_path / "h.png")
    assert "1 configuration(s)" in result.output
    result = CliRunner().invoke(main, ["history", str(tmp_path), "--impl", "nope", "--out", str(tmp_path / "h.png")])
    assert result.exit_code == 2 and "for impl nope" in result.output


def test_paired_history_multiplies_the_changes_file_by_file(tmp_path):
    rng = np.random.default_rng(6)
    # each merge costs 3 %: under the 5 % gate every time, 8.7 % after three
    for day in range(3):
        b, c = sweep_values(rng, 10, change=-0.03)
        write_results(tmp_path / f"main-{day}.json", {"base": ("base=reference", {0: b}),
                                                      "head": ("head=reference", {0: c})},
                      created=f"2026-11-2{day}T12:00:00Z")
    (tmp_path / "other.json").write_text("{}")
    out = tmp_path / "paired.png"
    result = invoke("history", tmp_path, "--baseline", "base", "--current", "head", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0
    line = next(line for line in result.output.splitlines() if line.startswith("head p=0:"))
    total = float(line.split("running product of the changes ")[1].rstrip("%"))
    assert -13 < total < -5, line  # about -8.7 %, well beyond any single step
    assert "regressions in" not in line  # no single step crossed the gate
    assert "skipped 1 JSON file(s)" in result.output


def test_results_record_label_and_variant_and_derive_the_label_for_older_files(tmp_path):
    path = write_results(tmp_path / "r.json", {"head": ("head=syslog-ng:/opt/b", {0: [1.0]})})
    doc = __import__("json").loads(path.read_text())
    assert doc["runs"][0]["label"] == "head" and doc["runs"][0]["variant"] is None
    for run in doc["runs"]:
        del run["label"], run["variant"]
    doc["runs"][0]["impl"] = "base=syslog-ng:/opt/a"
    doc["runs"].append(dict(doc["runs"][0], impl="command:python3 /x/relay.py --listen {in_port} --forward {out_port}"))
    doc["runs"].append(dict(doc["runs"][0], impl="mine=some-kind-not-loaded:3"))
    loaded = Results.from_json(doc, "old.json")
    assert [r.label for r in loaded.runs] == ["base", "command: python3 relay.py", "mine"]
    assert [r.variant for r in loaded.runs] == [None, None, None]


def test_enough_pairs_lift_erratic():
    """A spread above --max-cv is erratic at 10 pairs; at 200 pairs the
    median is pinned down well enough for a verdict."""
    rng = np.random.default_rng(12)
    few = paired.compare_pairs(*drifting_pairs(rng, 10, change=-0.2, noise=0.1), THROUGHPUT)
    assert few.verdict == cmp.ERRATIC and few.spread > 0.1 and "more pairs lift this" in few.reason
    many = paired.compare_pairs(*drifting_pairs(rng, 200, change=-0.2, noise=0.1), THROUGHPUT)
    assert many.spread > 0.1 and many.verdict == cmp.REGRESSION
    aa = paired.compare_pairs(*drifting_pairs(rng, 200, noise=0.1), THROUGHPUT)
    assert aa.spread > 0.1 and aa.verdict == cmp.NO_CHANGE


def test_paired_json_says_it_is_paired_and_keeps_the_exit_status(tmp_path):
    rng = np.random.default_rng(21)
    base0, head0 = sweep_values(rng, 10, change=-0.12)
    path = write_results(tmp_path / "r.json", {"base": ("base=reference", {0: base0}),
                                               "head": ("head=reference", {0: head0})})
    result = CliRunner().invoke(main, ["compare", str(path), "--baseline", "base", "--current", "head", "--json",
                                       "--metric", "throughput_msgs_per_s"])
    assert result.exit_code == 1
    doc = __import__("json").loads(result.stdout)
    assert doc["paired"] and (doc["baseline_label"], doc["current_label"]) == ("base", "head")
    (row,) = doc["comparisons"]
    assert row["config"] == "head p=0" and row["verdict"] == "regression" and row["spread"] < 0.1
