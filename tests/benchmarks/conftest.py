"""Shared rules of the benchmark suite (see README.md in this directory).

* Every benchmark sets ``benchmark.group`` (or ``@pytest.mark.benchmark(group=...)``):
  the group is how ``--benchmark-group-by=group`` tables and ``parbench
  compare`` output stay readable. A benchmark that ran without one errors at
  teardown with a message naming the test.
* Saved JSON gets a ``parbench`` section with the load average at the end of
  the session: the machine is shared, and a comparison against a busy baseline
  should be readable as such.
"""
from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _benchmark_group_is_set(request):
    yield
    bench = request.node.funcargs.get("benchmark")
    if bench is None or getattr(bench, "disabled", True) or getattr(bench, "skipped", False):
        return
    if getattr(bench, "stats", None) is None:
        return  # the body never called benchmark(...): nothing was measured
    if not getattr(bench, "group", None):
        pytest.fail(f"{request.node.nodeid}: set benchmark.group (e.g. benchmark.group = \"partition\") "
                    "so the suite's tables and parbench compare group it", pytrace=False)


def pytest_benchmark_update_json(config, benchmarks, output_json):
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    output_json["parbench"] = {"cpus": os.cpu_count(), "loadavg_1_5_15": load}
