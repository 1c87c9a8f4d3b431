import dataclasses

import pytest

from parbench.reference.profiles import AXOSYSLOG_4_26, SYSLOG_NG_4_8, get_profile, limit_partitions


@pytest.mark.parametrize("profile", [SYSLOG_NG_4_8, AXOSYSLOG_4_26])
def test_limit_partitions_passes_counts_up_to_the_maximum(profile):
    for n in (0, 1, profile.max_partitions):
        assert limit_partitions(profile, n) == (n, None)


def test_limit_partitions_clamps_with_a_warning():
    # syslog-ng 4.8.1 clamps silently (measured): the reference explains in its own words
    assert limit_partitions(SYSLOG_NG_4_8, 17) == (
        16, "partitions 17 is more than profile syslog-ng-4.8 allows; clamped to 16")
    # AxoSyslog 4.26.0 / 4.27.0 print this for partitions(33) (measured); the reference says the same
    assert limit_partitions(AXOSYSLOG_4_26, 33) == (
        32, "parallelize() currently supports up to 32 workers, falling back to the maximum supported; "
            "specified_workers='33', used_workers='32'")


def test_every_profile_names_what_it_models_and_was_checked_against():
    for profile in (SYSLOG_NG_4_8, AXOSYSLOG_4_26):
        assert profile.models and profile.checked_against


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
