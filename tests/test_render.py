"""Version strings -> the config's @version line, for every way the harness
spells a version: detected ("syslog-ng 4.8.1"), profile names
("axosyslog-4.26"), bare numbers, none."""
from __future__ import annotations

import pytest

from parbench.harness.render import config_notes, config_version, render_config
from parbench.harness.scenario import Expectation, Pipeline, Scenario, Sweep, Workload


def _scenario(**pipeline) -> Scenario:
    return Scenario(name="render", path="render.toml", description="",
                    workload=Workload(connections=1, keys=("a", "b")),
                    pipeline=Pipeline(partition_key="$HOST", **pipeline), sweep=Sweep(), expect=Expectation())


@pytest.mark.parametrize("version, expected", [
    ("syslog-ng 4.8.1", (4, 8)),
    ("axosyslog 4.26.0", (4, 26)),
    ("syslog-ng-4.8.1", (4, 8)),
    ("syslog-ng-4.8", (4, 8)),
    ("axosyslog-4.26", (4, 26)),
    ("4.8", (4, 8)),
    ("4.10.2", (4, 10)),
    (None, (4, 8)),
])
def test_config_version(version, expected):
    assert config_version(version) == expected


@pytest.mark.parametrize("version, line", [
    ("syslog-ng 4.8.1", "@version: 4.8"),
    ("axosyslog 4.26.0", "@version: 4.26"),
    ("4.8", "@version: 4.8"),
    (None, "@version: 4.8"),
])
def test_version_line_of_the_rendered_config(version, line):
    for dialect in ("reference", "syslog-ng"):
        text = render_config(_scenario(), 2, 1, dialect=dialect, version=version)
        assert text.splitlines()[0] == line


@pytest.mark.parametrize("garbage", ["latest", "syslog-ng", "", "4"])
def test_a_version_without_major_minor_is_refused_not_guessed(garbage):
    with pytest.raises(ValueError, match="no major.minor version"):
        render_config(_scenario(), 2, 1, dialect="syslog-ng", version=garbage)


def test_detected_versions_pick_the_options_the_implementation_has():
    """AxoSyslog options inside parallelize() for "axosyslog X.Y.Z" only, and
    the same answer from render_config and config_notes."""
    scenario = _scenario(batch_size=5)
    axo = render_config(scenario, 2, 1, dialect="syslog-ng", version="axosyslog 4.26.0")
    plain = render_config(scenario, 2, 1, dialect="syslog-ng", version="syslog-ng 4.8.1")
    assert "batch-size(5)" in axo and "batch-size" not in plain
    assert not config_notes(scenario, 2, "syslog-ng", "axosyslog 4.26.0")
    assert "left out for syslog-ng 4.8.1" in " ".join(config_notes(scenario, 2, "syslog-ng", "syslog-ng 4.8.1"))
