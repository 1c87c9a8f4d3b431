"""One version parser for the syslog-ng family, and every consumer (config
rendering, the syslog-ng target's options, the reference profile) reading
its answers from it."""
from __future__ import annotations

import pytest

from parbench.harness.render import config_notes, config_version, render_config
from parbench.harness.scenario import Expectation, Pipeline, Scenario, Sweep, Workload
from parbench.harness.syslog_ng.target import render_syslog_ng_config
from parbench.harness.syslog_ng.version import AXOSYSLOG, SYSLOG_NG, Version

SPELLINGS = [
    ("syslog-ng 4.8.1", SYSLOG_NG, (4, 8, 1)),
    ("axosyslog 4.26.0", AXOSYSLOG, (4, 26, 0)),
    ("syslog-ng-4.8", SYSLOG_NG, (4, 8)),  # reference profile names
    ("axosyslog-4.26", AXOSYSLOG, (4, 26)),
    ("4.8.1", SYSLOG_NG, (4, 8, 1)),  # bare numbers: syslog-ng up to 4.11, AxoSyslog above
    ("4.11", SYSLOG_NG, (4, 11)),
    ("4.12.0", AXOSYSLOG, (4, 12, 0)),
    ("AxoSyslog 4.17.0", AXOSYSLOG, (4, 17, 0)),
]


@pytest.mark.parametrize("text, product, numbers", SPELLINGS)
def test_every_spelling_parses_and_round_trips(text, product, numbers):
    version = Version.parse(text)
    assert (version.product, version.numbers) == (product, numbers)
    assert Version.parse(str(version)) == version


@pytest.mark.parametrize("text", ["latest", "syslog-ng", "", "4", "v4"])
def test_no_major_minor_is_refused(text):
    with pytest.raises(ValueError, match="no major.minor version number"):
        Version.parse(text)


def test_version_output_of_both_products():
    assert Version.from_version_output("syslog-ng 4 (4.8.1)\nInstaller-Version: 4.8.1\n") == Version(SYSLOG_NG, (4, 8, 1))
    assert Version.from_version_output("axosyslog 4 (4.26.0)\n") == Version(AXOSYSLOG, (4, 26, 0))
    assert Version.from_version_output("Installer-Version: 4.9.0\nhttps://axoflow.com\n") == Version(AXOSYSLOG, (4, 9, 0))
    with pytest.raises(ValueError, match="no version found"):
        Version.from_version_output("Usage: syslog-ng [OPTION?]")


@pytest.mark.parametrize("text, parallelize, tuning, counters, profile", [
    ("syslog-ng 3.38.1", False, False, False, None),
    ("syslog-ng 4.3.0", True, False, False, "syslog-ng-4.8"),
    ("syslog-ng 4.8.1", True, False, False, "syslog-ng-4.8"),
    ("axosyslog 4.26.0", True, True, True, "axosyslog-4.26"),
])
def test_what_a_version_has(text, parallelize, tuning, counters, profile):
    version = Version.parse(text)
    assert (version.has_parallelize, version.has_parallelize_tuning, version.has_partition_counters) == (
        parallelize, tuning, counters)
    if profile is None:
        with pytest.raises(ValueError, match="needs syslog-ng >= 4.3"):
            version.reference_profile
    else:
        assert version.reference_profile == profile


def _scenario() -> Scenario:
    return Scenario(name="v", path="v.toml", description="", workload=Workload(connections=1, keys=("a",)),
                    pipeline=Pipeline(partition_key="$HOST", batch_size=5), sweep=Sweep(), expect=Expectation())


@pytest.mark.parametrize("text", [t for t, _, _ in SPELLINGS])
def test_the_config_follows_the_parsed_version(text):
    """@version, the AxoSyslog-only parallelize() options (and the note when
    they are left out) and the stats level all come from the one parse."""
    version = Version.parse(text)
    assert config_version(text) == version.major_minor
    real = render_syslog_ng_config(_scenario(), 2, out_port=2, in_port=1, version=text)
    assert real.startswith(f"@version: {version.major_minor[0]}.{version.major_minor[1]}\n")
    assert ("batch-size(5)" in real) == version.has_parallelize_tuning
    assert ("stats(level(4))" in real) == version.has_partition_counters
    assert bool(config_notes(_scenario(), 2, "syslog-ng", text)) == (not version.has_parallelize_tuning)
    assert ("batch-size(5)" in render_config(_scenario(), 2, 1, dialect="reference", version=text)) == \
        version.has_parallelize_tuning
