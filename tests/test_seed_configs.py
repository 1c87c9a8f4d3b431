"""The seed document's two example configs, filled in with supported
elements, run unchanged in `parbench serve` (only the output file is moved
into the test's directory): the source on port 2000 with log-iw-size(10M),
max-connections(10), log-fetch-limit(100000), parallelize(partitions(4)) with
and without partition-key("$HOST")."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from test_service_e2e import Service, send

CONFIGS = Path(__file__).resolve().parent / "configs"
COUNT = 2000
HOSTS = 4


@pytest.mark.parametrize("name", ["seed-keyed.conf", "seed-roundrobin.conf"])
def test_seed_config_runs_unchanged(tmp_path, name):
    text = (CONFIGS / name).read_text()
    original_output = text.split('file("', 1)[1].split('"', 1)[0]
    output = tmp_path / "out.log"
    svc = Service(tmp_path, text.replace(original_output, str(output)))
    try:
        ready = svc.wait_ready()
        assert [s["port"] for s in ready["sources"]] == [2000]
        lines = b"".join(b"<13>Nov 26 12:00:00 host%d prog: seq=%06d\n" % (i % HOSTS, i) for i in range(COUNT))
        send(2000, lines)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if output.exists() and output.read_bytes().count(b"\n") >= COUNT:
                break
            time.sleep(0.05)
        assert svc.terminate() == 0
    finally:
        svc.kill()
    written = output.read_bytes().splitlines()
    assert sorted(written) == sorted(b"seq=%06d" % i for i in range(COUNT))
    counters = json.loads(svc.counters.read_text())
    (par,) = counters["parallelize"]
    assert par["partitions"] == 4
    assert sum(p["parallelized_processed_events_total"] for p in par["partition"]) == COUNT
    if "keyed" in name:
        # per-host order survives
        for h in range(HOSTS):
            seqs = [int(w[4:]) for w in written if int(w[4:]) % HOSTS == h]
            assert seqs == sorted(seqs)
