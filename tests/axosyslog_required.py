"""Skip, or fail, a test that needs a built AxoSyslog.

A module of its own for the reason ``syslog_ng_required`` is (a test
importing ``conftest`` may get another directory's)."""
import os

import pytest

ENV_REQUIRE = "PARBENCH_REQUIRE_AXOSYSLOG"


def skip_unless_axosyslog(reason: str) -> None:
    """Skip a test that needs AxoSyslog, unless this run promised one
    (PARBENCH_REQUIRE_AXOSYSLOG=1, set by scripts/test.sh after building
    it): then a missing AxoSyslog is a failure, never a silent skip."""
    if os.environ.get(ENV_REQUIRE) == "1":
        pytest.fail(f"{ENV_REQUIRE}=1 but: {reason}")
    pytest.skip(reason)
