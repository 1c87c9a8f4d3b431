"""Which version profile the reference runs in a sweep: --profile, else the
one modelling the detected syslog-ng when the sweep runs one, else the
scenario's; every reference run records it, and the report shows it."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from parbench.harness.results import Results, ResultsError, Run, ScenarioInfo
from parbench.harness.runner import choose_reference_profile, run_sweep
from parbench.harness.scenario import Expectation, Pipeline, Scenario, Sweep, Workload
from parbench.harness.targets.base import TargetError
from parbench.harness.targets.registry import get_target

RELAY = Path(__file__).parent / "fixtures" / "relay.py"
RELAY_ARGV = f"{sys.executable} {RELAY} --listen {{in_port}} --forward {{out_port}}"


def _scenario(raw_pipeline: dict | None = None, **pipeline) -> Scenario:
    return Scenario(
        name="profile-choice", path="profile-choice.toml", description="",
        workload=Workload(connections=1, messages_per_connection=200, keys=("web-01", "web-02", "db-1"), seed=3),
        pipeline=Pipeline(partition_key="$HOST", **pipeline), sweep=Sweep(partitions=(2,), repeats=1),
        expect=Expectation(ordering="per-key"),
        raw={"name": "profile-choice", "pipeline": raw_pipeline or {"partition_key": "$HOST"}},
    )


class FakeSyslogNg:
    """Stands in for the syslog-ng target: a correct relay that says it is
    syslog-ng 4.8.1 (what SyslogNgTarget reports after --version)."""

    name = "syslog-ng"

    def __init__(self, version: str = "syslog-ng 4.8.1"):
        self.version = version
        self.inner = get_target(f"command:{RELAY_ARGV}")

    def reference_profile(self) -> str:
        from parbench.harness.syslog_ng.version import reference_profile_for

        return reference_profile_for(self.version)

    def start(self, *args, **kwargs):
        return self.inner.start(*args, **kwargs)

    def stop(self, timeout: float = 15.0):
        report = self.inner.stop(timeout)
        report.version = self.version
        return report


def factory(version: str = "syslog-ng 4.8.1"):
    def make(spec: str, profile: str | None = None):
        if spec == "syslog-ng":
            return FakeSyslogNg(version)
        return get_target(spec, profile=profile)
    return make


def test_explicit_profile_wins_over_detection():
    chosen = choose_reference_profile(_scenario(), ["reference", "syslog-ng"], "axosyslog-4.26",
                                      target_factory=factory())
    assert chosen == ("axosyslog-4.26", "given with --profile")


@pytest.mark.parametrize("version, profile", [("syslog-ng 4.8.1", "syslog-ng-4.8"),
                                              ("axosyslog 4.26.0", "axosyslog-4.26")])
def test_detected_syslog_ng_picks_the_profile(version, profile):
    chosen, why = choose_reference_profile(_scenario(), ["reference", "syslog-ng"], target_factory=factory(version))
    assert chosen == profile and why == f"picked for the detected {version}"


def test_detection_overrides_a_scenario_profile_and_says_so():
    sc = _scenario({"profile": "axosyslog-4.26"}, profile="axosyslog-4.26")
    chosen, why = choose_reference_profile(sc, ["syslog-ng", "reference"], target_factory=factory())
    assert chosen == "syslog-ng-4.8"
    assert "instead of the scenario's pipeline.profile axosyslog-4.26" in why


def test_without_syslog_ng_the_scenarios_profile():
    sc = _scenario({"profile": "syslog-ng-4.8"}, profile="syslog-ng-4.8")
    assert choose_reference_profile(sc, ["reference"]) == ("syslog-ng-4.8", "the scenario's pipeline.profile")
    default = _scenario()
    assert choose_reference_profile(default, ["reference", f"command:{RELAY_ARGV}"]) == (
        default.pipeline.profile, "the default profile")


def test_an_undetectable_syslog_ng_falls_back_and_says_why():
    def broken(spec, profile=None):
        raise TargetError("syslog-ng: not runnable here: no binary")

    sc = _scenario()
    chosen, why = choose_reference_profile(sc, ["reference", "syslog-ng"], target_factory=broken)
    assert chosen == sc.pipeline.profile
    assert why == "the default profile; no profile from syslog-ng: syslog-ng: not runnable here: no binary"
    too_old = choose_reference_profile(sc, ["reference", "syslog-ng"], target_factory=factory("syslog-ng 3.38.1"))
    assert too_old[0] == sc.pipeline.profile and "needs syslog-ng >= 4.3" in too_old[1]


def test_sweep_runs_the_reference_with_the_detected_profile_and_records_it(tmp_path):
    """Interleaved reference + (fake) syslog-ng 4.8.1: the reference service
    really runs under syslog-ng-4.8 (its counters say so), every reference
    run records the profile and why; the syslog-ng run records none."""
    sc = _scenario()
    assert sc.pipeline.profile != "syslog-ng-4.8"  # so the choice is visible
    outcome = run_sweep(sc, ["reference", "syslog-ng"], show_progress=False, workroot=tmp_path, idle_s=1.0,
                        target_factory=factory())
    ref, sng = outcome.runs
    assert (outcome.profile, outcome.profile_reason) == ("syslog-ng-4.8", "picked for the detected syslog-ng 4.8.1")
    assert ref.verdict == "pass" and sng.verdict == "pass", (ref.verdict_reasons, sng.verdict_reasons)
    assert ref.profile == "syslog-ng-4.8" and ref.target_version == "syslog-ng-4.8"
    assert "version profile syslog-ng-4.8: picked for the detected syslog-ng 4.8.1" in ref.target_notes
    assert sng.profile is None and not any("version profile" in n for n in sng.target_notes)

    from parbench.harness.report import write_report

    results = _results(outcome.runs, ScenarioInfo(sc.name, sc.path, sc.raw))
    directory = tmp_path / "reports"
    results.write(directory / "results.json")
    write_report(results, directory)
    assert Results.load(directory / "results.json").runs[0].profile == "syslog-ng-4.8"
    md = (directory / "report.md").read_text()
    assert "- reference version profile: `syslog-ng-4.8`" in md
    assert "version profile syslog-ng-4.8: picked for the detected syslog-ng 4.8.1" in md


def _results(runs, scenario=None):
    return Results(scenario or ScenarioInfo("demo", "demo.toml", {"name": "demo"}), runs)


def test_results_schema_checks_profile_and_accepts_files_without_it(tmp_path):
    run = Run("reference", 2, 0)
    assert run.profile is None
    run.profile = "axosyslog-4.26"
    path = _results([run]).write(tmp_path / "results.json")
    assert Results.load(path).runs[0].profile == "axosyslog-4.26"
    doc = json.loads(path.read_text())
    doc["runs"][0]["profile"] = 4
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsError, match=r"runs\[0\].profile: expected a string or null, got 4 \(integer\)"):
        Results.load(path)
    del doc["runs"][0]["profile"]  # written before the field existed
    path.write_text(json.dumps(doc))
    assert Results.load(path).runs[0].profile is None


def test_parbench_run_says_which_profile_and_why(tmp_path):
    from parbench.cli import main

    scenario = tmp_path / "p.toml"
    scenario.write_text('name = "p"\n[workload]\nconnections = 1\nmessages_per_connection = 100\n'
                        'keys = ["a", "b"]\n[pipeline]\npartition_key = "$HOST"\n'
                        '[sweep]\npartitions = [2]\nrepeats = 1\n')
    result = CliRunner().invoke(main, ["run", str(scenario), "--impl", "reference", "--profile", "syslog-ng-4.8",
                                       "--out", str(tmp_path / "r"), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "p: reference version profile syslog-ng-4.8 (given with --profile)" in result.output
    report = Path(result.output.split("report: ")[1].split()[0])
    assert Results.load(report.parent / "results.json").runs[0].profile == "syslog-ng-4.8"


def multi_factory(versions: dict[str, str]):
    """Fake real implementations by spec: {"syslog-ng": "syslog-ng 4.8.1", "axosyslog": "axosyslog 4.27.0"}."""
    def make(spec: str, profile: str | None = None):
        if spec in versions:
            return FakeSyslogNg(versions[spec])
        return get_target(spec, profile=profile)
    return make


def test_real_implementations_of_different_profiles_run_the_reference_once_per_profile(tmp_path):
    """syslog-ng 4.8.1 and AxoSyslog 4.27.0 in one sweep: the reference runs
    as reference[syslog-ng-4.8] and reference[axosyslog-4.26], each really
    under its profile (the service's counters say which), each saying why."""
    versions = {"syslog-ng": "syslog-ng 4.8.1", "axosyslog": "axosyslog 4.27.0"}
    outcome = run_sweep(_scenario(), ["reference", "syslog-ng", "axosyslog"], show_progress=False,
                        workroot=tmp_path, idle_s=1.0, target_factory=multi_factory(versions))
    impls = [r.impl for r in outcome.runs]
    assert impls == ["reference:syslog-ng-4.8", "reference:axosyslog-4.26", "syslog-ng", "axosyslog"]
    by_impl = {r.impl: r for r in outcome.runs}
    for profile, why in (("syslog-ng-4.8", "picked for the detected syslog-ng 4.8.1"),
                         ("axosyslog-4.26", "picked for the detected axosyslog 4.27.0")):
        run = by_impl[f"reference:{profile}"]
        assert run.verdict == "pass", run.verdict_reasons
        assert run.profile == profile and run.target_version == profile
        assert f"version profile {profile}: {why}" in run.target_notes
    assert outcome.profile_reasons == {"syslog-ng-4.8": "picked for the detected syslog-ng 4.8.1",
                                       "axosyslog-4.26": "picked for the detected axosyslog 4.27.0"}
    from parbench.harness.targets.registry import impl_label

    assert impl_label("reference:axosyslog-4.26") == "reference[axosyslog-4.26]"


def test_one_profile_or_an_explicit_one_keeps_a_single_reference():
    from parbench.harness.runner import profiles_needed, split_reference_by_profile

    same = multi_factory({"syslog-ng": "axosyslog 4.26.0", "axosyslog": "axosyslog 4.27.0"})
    needed = profiles_needed(["reference", "syslog-ng", "axosyslog"], target_factory=same)
    assert needed == {"axosyslog-4.26": ["axosyslog 4.26.0", "axosyslog 4.27.0"]}
    assert split_reference_by_profile(["reference", "syslog-ng", "axosyslog"], needed) == (
        ["reference", "syslog-ng", "axosyslog"], {})
    two = {"syslog-ng-4.8": ["syslog-ng 4.8.1"], "axosyslog-4.26": ["axosyslog 4.27.0"]}
    # a labelled reference keeps its label per profile; a reference naming its profile stays as it is
    specs, _ = split_reference_by_profile(["ref=reference", "reference:syslog-ng-4.8", "syslog-ng"], two)
    assert specs == ["ref-syslog-ng-4.8=reference:syslog-ng-4.8", "ref-axosyslog-4.26=reference:axosyslog-4.26",
                     "reference:syslog-ng-4.8", "syslog-ng"]


def test_explicit_profile_runs_one_reference(tmp_path):
    versions = {"syslog-ng": "syslog-ng 4.8.1", "axosyslog": "axosyslog 4.27.0"}
    outcome = run_sweep(_scenario(), ["reference", "syslog-ng", "axosyslog"], profile="axosyslog-4.26",
                        show_progress=False, workroot=tmp_path, idle_s=1.0, target_factory=multi_factory(versions))
    assert [r.impl for r in outcome.runs] == ["reference", "syslog-ng", "axosyslog"]
    assert outcome.runs[0].profile == "axosyslog-4.26"
