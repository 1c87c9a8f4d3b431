import dataclasses

import pytest

from parbench.reference.profiles import AXOSYSLOG_4_26, SYSLOG_NG_4_8, get_profile, limit_partitions


@pytest.mark.parametrize("profile", [SYSLOG_NG_4_8, AXOSYSLOG_4_26])
def test_limit_partitions_passes_counts_up_to_the_maximum(profile):
    for n in (0, 1, profile.max_partitions):
        assert limit_partitions(profile, n) == (n, None)


@pytest.mark.parametrize("profile", [SYSLOG_NG_4_8, AXOSYSLOG_4_26])
def test_limit_partitions_clamps_with_a_warning(profile):
    n, warning = limit_partitions(profile, profile.max_partitions + 1)
    assert n == profile.max_partitions
    assert profile.name in warning and f"clamped to {profile.max_partitions}" in warning


def test_a_rejecting_profile_raises():
    strict = dataclasses.replace(SYSLOG_NG_4_8, clamp_partitions=False)
    with pytest.raises(ValueError, match="accepts at most 16"):
        limit_partitions(strict, 17)


def test_negative_counts_are_rejected():
    with pytest.raises(ValueError, match="expected 0"):
        limit_partitions(AXOSYSLOG_4_26, -1)


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(ValueError, match="axosyslog-4.26.*syslog-ng-4.8"):
        get_profile("rsyslog")
