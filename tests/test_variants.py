"""Scenario variants: settings as candidates of one interleaved sweep."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from parbench.cli import main
from parbench.errors import UsageError
from parbench.harness.candidates import parse_variant_names, sweep_candidates
from parbench.harness.scenario import ScenarioError, apply_quick, load_scenario, scenario_from_dict

BASE = """
name = "v"
[workload]
messages_per_connection = 3000
keys = 4
[pipeline]
partition_key = "$HOST"
log_fetch_limit = 100
[sweep]
partitions = [0, 2]
repeats = 3
"""


def scenario(extra: str = "", file: str = "v.toml"):
    return scenario_from_dict(tomllib.loads(BASE + extra), file)


def test_variant_overrides_dotted_keys_and_keeps_the_rest():
    s = scenario('[variants.head]\ndescription = "bigger fetch"\npipeline.log_fetch_limit = 1000\n'
                 '[variants.zipf]\nworkload.distribution.kind = "zipf"\nworkload.distribution.s = 1.5\n')
    head, zipf = s.variants
    assert head.name == "head" and head.description == "bigger fetch"
    assert head.scenario.pipeline.log_fetch_limit == 1000 and s.pipeline.log_fetch_limit == 100
    assert head.scenario.pipeline.partition_key == "$HOST" and head.scenario.workload == s.workload
    assert zipf.scenario.workload.distribution.kind == "zipf" and zipf.scenario.workload.distribution.s == 1.5
    assert zipf.scenario.pipeline == s.pipeline


@pytest.mark.parametrize("extra, message", [
    ("[variants.head]\npipeline.log_fetch_limt = 3",
     "v.toml: variants.head.pipeline.log_fetch_limt: unknown key; did you mean 'log_fetch_limit'?"),
    ("[variants.head]\npipeline.log_fetch_limit = 0",
     "v.toml: variants.head.pipeline.log_fetch_limit: expected an integer in [1, 10000000], got 0 (integer)"),
    ("[variants.head]\npipelin.log_fetch_limit = 3", "v.toml: variants.head.pipelin: unknown key; did you mean 'pipeline'?"),
    ("[variants.head]\nsweep.repeats = 5", "v.toml: variants.head.sweep: a variant cannot override it"),
    ("[variants.head]\npipeline = 3", "v.toml: variants.head.pipeline: expected keys under it"),
    ("[variants.1head]\npipeline.log_fetch_limit = 3", "v.toml: variants.1head: expected a name that is a letter"),
    ("[variants.head]\nworkload.connections = 4\npipeline.max_connections = 2",
     "v.toml: variants.head.pipeline.max_connections: expected >= workload.connections (4), got 2"),
    ("[variants.head]\nworkload.duration_s = 2.0",
     "v.toml: variants.head: with this variant's overrides, workload.messages_per_connection: expected exactly one"),
    ("[variants.head]\ndescription = 3", "v.toml: variants.head.description: expected a string, got 3 (integer)"),
    ("variants = 3\n", None),
])
def test_bad_variants_are_one_line_at_the_key(extra, message):
    if message is None:  # a top-level key after a table belongs to that table in TOML: put it first
        raw = tomllib.loads(extra + BASE)
        message = "v.toml: variants: expected tables such as [variants.head]"
    else:
        raw = tomllib.loads(BASE + extra)
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(raw, "v.toml")
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_candidates_label_variants_and_add_the_implicit_base():
    s = scenario("[variants.head]\npipeline.log_fetch_limit = 1000\n")
    found = sweep_candidates(s, ["reference"])
    assert [(c.label, c.variant) for c in found] == [("base", "base"), ("head", "head")]
    assert found[0].scenario.pipeline.log_fetch_limit == 100 and found[1].scenario.pipeline.log_fetch_limit == 1000
    assert [c.label for c in sweep_candidates(s, ["reference"], ["head", "base"])] == ["head", "base"]
    several = sweep_candidates(s, ["reference", "other=reference"])
    assert [c.label for c in several] == ["base:reference", "head:reference", "base:other", "head:other"]
    # without variants: the implementation's label
    assert [c.label for c in sweep_candidates(scenario(), ["x=reference", "reference"])] == ["x", "reference"]


def test_a_file_defined_base_variant_replaces_the_implicit_one():
    s = scenario("[variants.base]\npipeline.log_fetch_limit = 10\n[variants.head]\npipeline.log_fetch_limit = 1000\n")
    found = sweep_candidates(s, ["reference"])
    assert [c.label for c in found] == ["base", "head"] and found[0].scenario.pipeline.log_fetch_limit == 10


@pytest.mark.parametrize("names, message", [
    (["haed"], "has no variant 'haed'; did you mean 'head'?"),
    (["zzz"], "has no variant 'zzz'; it defines base, head"),
])
def test_unknown_variant_names(names, message):
    with pytest.raises(UsageError, match=message):
        sweep_candidates(scenario("[variants.head]\npipeline.log_fetch_limit = 1000\n"), ["reference"], names)


def test_variants_option_parsing_and_a_scenario_without_variants():
    assert parse_variant_names(" base, head ") == ["base", "head"]
    for bad in ("base,,head", "base,base"):
        with pytest.raises(UsageError):
            parse_variant_names(bad)
    with pytest.raises(UsageError, match="defines no \\[variants.NAME\\]"):
        sweep_candidates(scenario(), ["reference"], ["head"])


def test_quick_applies_to_every_variant():
    s = apply_quick(scenario("[variants.head]\npipeline.log_fetch_limit = 1000\n"))
    (head,) = s.variants
    assert head.scenario.sweep.repeats == 1 == s.sweep.repeats
    assert head.scenario.workload.messages_per_connection == s.workload.messages_per_connection


def test_a_variant_that_costs_more_is_run_interleaved_and_judged_a_regression(tmp_path):
    """End to end: a variant raising the reference's cost stage from 100 to
    400 us of CPU per message runs several times slower; `parbench run` labels its
    runs, the report names the override, and the paired compare of the one
    results file calls it a regression (exit 1)."""
    path = tmp_path / "v.toml"
    path.write_text(BASE.replace("messages_per_connection = 3000", "messages_per_connection = 2000")
                    .replace("log_fetch_limit = 100", "log_fetch_limit = 100\ncost_cpu_us = 100.0")
                    + "[variants.costly]\ndescription = \"a slower stage\"\npipeline.cost_cpu_us = 400.0\n")
    out = tmp_path / "reports"
    result = CliRunner().invoke(main, ["run", str(path), "--partitions", "1", "--out", str(out),
                                       "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    results = next(out.rglob("results.json"))
    runs = json.loads(results.read_text())["runs"]
    assert [(r["label"], r["variant"], r["repeat"]) for r in runs] == [
        ("base", "base", 0), ("costly", "costly", 0), ("costly", "costly", 1), ("base", "base", 1),
        ("base", "base", 2), ("costly", "costly", 2)]
    assert all(r["impl"] == "reference" and r["verdict"] == "pass" for r in runs)
    report = (results.parent / "report.md").read_text()
    assert "`costly`: a slower stage (pipeline.cost_cpu_us = 400.0)" in report
    # Test-sized runs on a shared machine are far noisier than CI-sized ones;
    # the erratic rule is tested on synthetic pairs (test_paired.py), so it
    # is relaxed here, where the labels and the pairing are under test.
    compared = CliRunner().invoke(main, ["compare", str(results), "--baseline", "base", "--current", "costly",
                                         "--metric", "throughput_msgs_per_s", "--max-cv", "2"],
                                  catch_exceptions=False)
    assert compared.exit_code == 1, compared.output
    assert "1 regression" in compared.output
    bad = CliRunner().invoke(main, ["run", str(path), "--variants", "base,costy", "--out", str(out)])
    assert bad.exit_code == 2 and "did you mean 'costly'?" in bad.output


def test_shipped_scenarios_still_load():
    folder = Path(__file__).resolve().parents[1] / "scenarios"
    for file in folder.glob("*.toml"):
        load_scenario(file)


def test_a_sweep_needing_two_profiles_splits_each_variant_of_the_reference():
    from parbench.harness.runner import _split_candidates

    s = scenario("[variants.head]\npipeline.log_fetch_limit = 1000\n")
    needed = {"syslog-ng-4.8": ["syslog-ng 4.8.1"], "axosyslog-4.26": ["AxoSyslog 4.27.0"]}
    found, reasons = _split_candidates(sweep_candidates(s, ["reference"]), needed)
    assert [(c.label, c.impl, c.variant) for c in found] == [
        ("base:reference[syslog-ng-4.8]", "reference:syslog-ng-4.8", "base"),
        ("base:reference[axosyslog-4.26]", "reference:axosyslog-4.26", "base"),
        ("head:reference[syslog-ng-4.8]", "reference:syslog-ng-4.8", "head"),
        ("head:reference[axosyslog-4.26]", "reference:axosyslog-4.26", "head")]
    assert found[2].scenario.pipeline.log_fetch_limit == 1000
    assert set(reasons) == set(needed)
    # one profile needed: nothing to split
    plain = sweep_candidates(scenario(), ["reference"])
    assert _split_candidates(plain, {"syslog-ng-4.8": ["x"]})[0] == plain
