"""AxoSyslog under test: the start-up log check (on a fake binary that says
what an AxoSyslog built against an old ivykis says), the counters and
histograms it exposes, and real runs of every AxoSyslog built here, keyed
and round-robin, with per-partition counters compared to the g_str_hash
prediction and to the reference, and the version profile checked option by
option against the real binary."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from axosyslog_required import skip_unless_axosyslog
from syslog_ng_required import skip_unless_required
from parbench.harness.runner import run_sweep
from parbench.harness.scenario import Expectation, Pipeline, Scenario, Sweep, Workload, load_scenario, apply_quick
from parbench.harness.syslog_ng.build import installed_builds
from parbench.harness.syslog_ng.axosyslog import installation_of
from parbench.harness.syslog_ng.installation import Installation, find_syslog_ng
from parbench.harness.syslog_ng.stats import parse_prometheus_failed, parse_prometheus_histograms
from parbench.harness.syslog_ng.target import SyslogNgTarget, feature_off_line, startup_warnings
from parbench.harness.targets.base import TargetError, TargetPlan
from parbench.reference.histogram import BUCKET_LABELS, Log2Histogram, bucket_of
from parbench.reference.profiles import AXOSYSLOG_4_26, SYSLOG_NG_4_8, limit_partitions

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
OLD_IVYKIS = ("[2026-11-30T06:00:00.000000] Unable to parallelize message work-load even though partitions(N) "
              "N > 1 was set, as the ivykis dependency is too old and lacks iv_work_pool_submit_continuation() "
              "function. Use the bundled version of ivykis or use a version that already has this function")
STARTED = "[2026-11-30T06:00:00.000001] syslog-ng starting up; version='4.27.0'"


# ---------------------------------------------------------------- histograms


def test_buckets_follow_round_to_log2():
    # round_to_log2(x) = ceil(log2 x), 0 for x <= 1; 14 buckets, the last one open
    cases = {0: 0, 1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 100: 7, 128: 7, 129: 8, 4096: 12, 4097: 13, 10**9: 13}
    assert {v: bucket_of(v) for v in cases} == cases
    assert BUCKET_LABELS[0] == "1" and BUCKET_LABELS[7] == "128" and BUCKET_LABELS[-1] == "+Inf"
    hist = Log2Histogram()
    for value in (100, 100, 25, 1):
        hist.add(value)
    assert hist.to_dict() == {"sum": 226, "count": 4, "buckets": {**dict.fromkeys(BUCKET_LABELS, 0),
                                                                   "1": 1, "32": 1, "128": 2}}


# What AxoSyslog 4.27.0 printed here (ids shortened): buckets are not cumulative.
PROMETHEUS = textwrap.dedent("""\
    syslogng_parallelized_batch_size_sum{parallelize="/w/syslog-ng.conf:15:5"} 20000
    syslogng_parallelized_batch_size_count{parallelize="/w/syslog-ng.conf:15:5"} 804
    syslogng_parallelized_batch_size_bucket{parallelize="/w/syslog-ng.conf:15:5",le="8"} 1
    syslogng_parallelized_batch_size_bucket{parallelize="/w/syslog-ng.conf:15:5",le="16"} 122
    syslogng_parallelized_batch_size_bucket{parallelize="/w/syslog-ng.conf:15:5",le="64"} 178
    syslogng_parallelized_batch_size_bucket{parallelize="/w/syslog-ng.conf:15:5",le="32"} 503
    syslogng_parallelized_batch_size_bucket{parallelize="/w/syslog-ng.conf:15:5",le="+Inf"} 0
    syslogng_parallelized_input_batch_size_sum{parallelize="/w/syslog-ng.conf:15:5"} 20000
    syslogng_parallelized_input_batch_size_count{parallelize="/w/syslog-ng.conf:15:5"} 200
    syslogng_parallelized_input_batch_size_bucket{parallelize="/w/syslog-ng.conf:15:5",le="128"} 200
    syslogng_event_processing_latency_seconds_sum{parallelize="/w/syslog-ng.conf:15:5",measurement_point="input"} 26.8
    syslogng_parallelize_failed_events_total 0
""")


def test_histograms_and_failed_events_are_read_from_prometheus():
    hists = parse_prometheus_histograms(PROMETHEUS)
    assert hists["parallelized_batch_size"] == {"sum": 20000, "count": 804,
                                                "buckets": {"8": 1, "16": 122, "32": 503, "64": 178, "+Inf": 0}}
    assert hists["parallelized_input_batch_size"] == {"sum": 20000, "count": 200, "buckets": {"128": 200}}
    assert parse_prometheus_failed(PROMETHEUS) == 0
    assert parse_prometheus_failed("syslogng_parallelize_failed_events_total 17\n") == 17
    assert parse_prometheus_histograms("syslogng_output_events_total 3\n") is None
    assert parse_prometheus_failed("") is None


# ---------------------------------------------------------------- start-up log


def test_startup_lines_meaning_parallelize_is_off_are_found():
    assert feature_off_line(f"{OLD_IVYKIS}\n{STARTED}\n") == OLD_IVYKIS
    assert feature_off_line(f"{STARTED}\n") is None
    # later lines are not start-up lines
    assert feature_off_line(f"{STARTED}\nUnable to parallelize later\n") is None
    clamp = ("[t] WARNING: parallelize() currently supports up to 32 workers, falling back to the maximum "
             "supported; specified_workers='33', used_workers='32'")
    assert startup_warnings(f"[t] Accepting connections\n{clamp}\n{STARTED}\n") == [clamp]


FAKE_AXOSYSLOG = """#!{python}
# Stands in for an AxoSyslog: --version, then the start-up lines given, and
# a listener on the port of the config's source.
import re, socket, sys, time
if "--version" in sys.argv:
    print("axosyslog 4 (4.27.0)\\nConfig version: 4.2\\nInstaller-Version: 4.27.0")
    sys.exit(0)
conf = open(sys.argv[sys.argv.index("-f") + 1]).read()
port = int(re.search(r'ip\\("127.0.0.1"\\) port\\((\\d+)\\)', conf).group(1))
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(8)
sys.stderr.write({lines!r})
sys.stderr.flush()
time.sleep(60)
"""
FAKE_CTL = """#!/bin/sh
if [ "$2" = prometheus ]; then printf 'syslogng_parallelize_failed_events_total {failed}\\n'; else echo 'SourceName;SourceId;SourceInstance;State;Type;Number'; fi
"""


def fake_axosyslog(tmp_path: Path, lines: str, failed: int = 0) -> Installation:
    binary = tmp_path / "sbin" / "syslog-ng"
    ctl = tmp_path / "sbin" / "syslog-ng-ctl"
    binary.parent.mkdir(parents=True)
    binary.write_text(FAKE_AXOSYSLOG.format(python=sys.executable, lines=lines))
    ctl.write_text(FAKE_CTL.format(failed=failed))
    for path in (binary, ctl):
        path.chmod(0o755)
    return Installation(syslog_ng=binary, version="axosyslog 4.27.0", source="explicit", syslog_ng_ctl=ctl)


def keyed_scenario(partition_key: str | None = "$HOST") -> Scenario:
    return Scenario(name="axo-test", path="<test>", description="",
                    workload=Workload(connections=1, messages_per_connection=100, keys=("a", "b", "c")),
                    pipeline=Pipeline(partition_key=partition_key), sweep=Sweep(),
                    expect=Expectation(ordering="per-key" if partition_key else "none"))


def test_an_old_ivykis_start_up_line_fails_the_start_with_that_line(tmp_path):
    target = SyslogNgTarget(install=fake_axosyslog(tmp_path, f"{OLD_IVYKIS}\n{STARTED}\n"))
    try:
        with pytest.raises(TargetError) as info:
            target.start(TargetPlan(keyed_scenario(), 4), 9, tmp_path / "work", timeout=20)
    finally:
        report = target.stop(5)
    assert str(info.value) == f"axosyslog 4.27.0: parallelize() is off, the run would not test it: {OLD_IVYKIS}"
    assert OLD_IVYKIS in report.stderr_head


def test_without_parallelize_the_line_does_not_matter(tmp_path):
    target = SyslogNgTarget(install=fake_axosyslog(tmp_path, f"{OLD_IVYKIS}\n{STARTED}\n"))
    try:
        target.start(TargetPlan(keyed_scenario(), 0), 9, tmp_path / "work", timeout=20)
    finally:
        report = target.stop(5)
    assert report.failure is None


def test_bypassed_messages_fail_the_run(tmp_path):
    target = SyslogNgTarget(install=fake_axosyslog(tmp_path, f"{STARTED}\n", failed=7))
    try:
        target.start(TargetPlan(keyed_scenario(), 4), 9, tmp_path / "work", timeout=20)
    finally:
        report = target.stop(5)
    assert report.failure == ("axosyslog 4.27.0: 7 messages bypassed parallelize() "
                              "(parallelize_failed_events_total), so it was not tested for them")


def test_stderr_head_keeps_the_start_when_the_tail_has_lost_it(tmp_path):
    from parbench.harness.targets.process import STDERR_TAIL_BYTES, ManagedProcess

    script = ("import sys\nsys.stderr.write('first line\\n')\n"
              f"for i in range({STDERR_TAIL_BYTES // 20}):\n    sys.stderr.write('%05d %s\\n' % (i, 'y' * 70))\n")
    process = ManagedProcess([sys.executable, "-c", script], tmp_path, "chatty")
    process.start()
    process.proc.wait(10)
    process.stop(5)
    assert process.stderr_head().startswith("first line")
    assert "first line" not in process.stderr_tail()
    assert process.stderr_head().endswith("\n...")


# ---------------------------------------------------------------- real AxoSyslog


def _builds():
    return [b for b in installed_builds()]


@pytest.fixture(scope="module")
def builds():
    found = _builds()
    if not found:
        skip_unless_axosyslog("no AxoSyslog built here (run: parbench install axosyslog --source TARBALL)")
    return found


def _by_impl(outcome):
    return {r.impl: r.to_json() for r in outcome.runs}


@pytest.mark.axosyslog
def test_keyed_counters_equal_the_prediction_and_the_reference(builds, tmp_path):
    """Every built AxoSyslog and the reference on the quick keyed scenario:
    per partition, assigned = processed = g_str_hash(HOST) % 4 over what
    arrived = the reference's counts; batch sizes as AxoSyslog counts them."""
    scenario = apply_quick(load_scenario(SCENARIOS / "chatty-single-sender.toml"))
    impls = ["reference", *(f"axosyslog:{b.version.split()[-1]}" for b in builds)]
    outcome = run_sweep(scenario, impls, [4], 1, show_progress=False, workroot=tmp_path)
    runs = _by_impl(outcome)
    reference = runs["reference"]
    assert reference["profile"] == "axosyslog-4.26"
    for impl in impls:
        run = runs[impl]
        assert run["verdict"] == "pass", (impl, run["verdict_reasons"], run["target_notes"])
        assert run["partition_predicted"] is not None and sum(run["partition_predicted"]) == run["sent"]
        assert run["partition_assigned"] == run["partition_processed"] == run["partition_predicted"], impl
        assert run["partition_processed"] == reference["partition_processed"], impl
        hists = run["batch_histograms"]
        assert hists["parallelized_batch_size"]["sum"] == hists["parallelized_input_batch_size"]["sum"] == run["sent"]
        _compare_batches(run, reference, impl)


def _compare_batches(run, reference, impl, fetch_limit: int = 100):
    """When AxoSyslog read the connection in full batches of the source's
    log-fetch-limit() (every input batch in one bucket, sum = count x limit),
    the reference saw the same input, so its hand-overs must be the same."""
    mine, ref = run["batch_histograms"], reference["batch_histograms"]
    inputs = mine["parallelized_input_batch_size"]
    full = inputs["sum"] == inputs["count"] * fetch_limit and inputs["buckets"].get(
        BUCKET_LABELS[bucket_of(fetch_limit)]) == inputs["count"]
    if full and ref["parallelized_input_batch_size"]["count"] == inputs["count"]:
        nonzero = lambda h: {k: v for k, v in h["buckets"].items() if v}
        assert nonzero(mine["parallelized_batch_size"]) == nonzero(ref["parallelized_batch_size"]), impl
        assert mine["parallelized_batch_size"]["count"] == ref["parallelized_batch_size"]["count"], impl
    else:  # the reader saw the sender's bytes in other slices: only the totals compare
        warnings.warn(f"{impl}: input batches were not all {fetch_limit}; batch histograms compared by sum only")


@pytest.mark.axosyslog
def test_round_robin_counters_and_batches_equal_the_reference(builds, tmp_path):
    scenario = apply_quick(load_scenario(SCENARIOS / "round-robin.toml"))
    impls = ["reference", *(f"axosyslog:{b.version.split()[-1]}" for b in builds)]
    outcome = run_sweep(scenario, impls, [4], 1, show_progress=False, workroot=tmp_path)
    runs = _by_impl(outcome)
    reference = runs["reference"]
    # one connection, batch-size(100), 20000 messages: 50 runs of 100 per partition
    assert reference["partition_processed"] == [5000] * 4
    for impl in impls:
        run = runs[impl]
        assert run["verdict"] == "pass", (impl, run["verdict_reasons"])
        assert run["partition_assigned"] == run["partition_processed"] == reference["partition_processed"], impl
        batches = run["batch_histograms"]["parallelized_batch_size"]
        # batch-size(100): no batch above 100 (the 128 bucket holds 65..128)
        assert all(v == 0 for le, v in batches["buckets"].items() if BUCKET_LABELS.index(le) > bucket_of(100)), impl
        _compare_batches(run, reference, impl)


@pytest.mark.axosyslog
@pytest.mark.parametrize("partitions", [17, 33, 64])
def test_the_partition_limit_and_its_warning_are_the_profiles(builds, tmp_path, partitions):
    scenario = keyed_scenario(None)
    for build in builds:
        target = SyslogNgTarget(install=installation_of(build))
        try:
            target.start(TargetPlan(scenario, partitions), 9, tmp_path / build.name / str(partitions), timeout=30)
        finally:
            report = target.stop()
        used, warning = limit_partitions(AXOSYSLOG_4_26, partitions)
        warnings = [n for n in report.notes if n.startswith("start-up: ")]
        if warning is None:
            assert warnings == [], build.version
        else:
            assert len(warnings) == 1 and warnings[0].endswith(f"WARNING: {warning}"), (build.version, warnings)
        # counters exist for exactly the partitions it runs
        assert report.partition_assigned is not None and len(report.partition_assigned) == used, build.version


#: parallelize() options, and whether each profile accepts them (the reference's config check)
OPTIONS = [
    "partitions(4)", "workers(4)", 'partitions(4) partition-key("$HOST")',
    'partitions(4) worker-partition-key("$HOST")', 'workers(4) worker-partition-key("$HOST")',
    "partitions(4) batch-size(10)", "partitions(4) batch-size(0)",
    'partitions(4) partition-key("$HOST") batch-size(10)',
    "partitions(4) log-fetch-limit(10)", "partitions(4) log-fetch-limit(0)",
]


def _real_accepts(install: Installation, option: str, tmp_path: Path) -> bool:
    version = ".".join(install.version.split()[-1].split(".")[:2])
    conf = tmp_path / "option.conf"
    conf.write_text(f'@version: {version}\nlog {{ source {{ tcp(ip("127.0.0.1") port(1)); }}; '
                    f'parallelize({option}); destination {{ file("/dev/null"); }}; }};\n')
    proc = subprocess.run([*install.syslog_ng_argv(), "--syntax-only", "-f", str(conf)], env=install.full_env(),
                          capture_output=True, text=True, timeout=30)
    return proc.returncode == 0


def _reference_accepts(profile: str, option: str) -> bool:
    from parbench.reference.config import parse_config
    from parbench.reference.config_lexer import ConfigError
    from parbench.reference.profiles import get_profile

    try:
        parse_config('@version: 4.8\nlog { source { tcp(ip("127.0.0.1") port(0)); }; '
                     f'parallelize({option}); destination {{ file("/dev/null"); }}; }};\n', "o.conf",
                     get_profile(profile), warn=lambda *args: None)
    except ConfigError:
        return False
    return True


@pytest.mark.axosyslog
@pytest.mark.parametrize("option", OPTIONS)
def test_axosyslog_accepts_exactly_the_options_its_profile_accepts(builds, tmp_path, option):
    for build in builds:
        install = installation_of(build)
        assert install.parsed_version.reference_profile == "axosyslog-4.26"
        assert _real_accepts(install, option, tmp_path) == _reference_accepts("axosyslog-4.26", option), \
            (build.version, option)


@pytest.mark.syslog_ng
@pytest.mark.parametrize("option", OPTIONS)
def test_syslog_ng_accepts_exactly_the_options_its_profile_accepts(tmp_path, option):
    install = find_syslog_ng()
    if install is None:
        skip_unless_required("no syslog-ng >= 4.3 installed here (run: parbench install syslog-ng)")
    assert install.parsed_version.reference_profile == SYSLOG_NG_4_8.name
    assert _real_accepts(install, option, tmp_path) == _reference_accepts(SYSLOG_NG_4_8.name, option), option
