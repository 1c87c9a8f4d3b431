"""Skip, or fail, a test that needs a real syslog-ng.

A module of its own rather than ``tests/conftest.py``: pytest imports every
directory's ``conftest.py`` as the module ``conftest``, so once
``tests/benchmarks/conftest.py`` is loaded, ``from conftest import ...`` in a
test finds that one instead."""
import os

import pytest


def skip_unless_required(reason: str) -> None:
    """Skip a test that needs a real syslog-ng, unless this run promised one
    (PARBENCH_REQUIRE_SYSLOG_NG=1, set by scripts/test.sh after installing
    it): then a missing syslog-ng is a failure, never a silent skip."""
    if os.environ.get("PARBENCH_REQUIRE_SYSLOG_NG") == "1":
        pytest.fail(f"PARBENCH_REQUIRE_SYSLOG_NG=1 but: {reason}")
    pytest.skip(reason)
