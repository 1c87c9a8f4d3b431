"""The acceptance check of the paired regression gate, as a soak run
(skipped by default; `pytest tests/benchmarks/test_regression_gate.py -m soak`,
about an hour on a 2-core machine).  The table of false-regression rates and power is
`regression_power.py` in this directory (docs/regressions.md)."""
from __future__ import annotations

import pytest

import regression_power


@pytest.mark.soak
def test_paired_gate_under_load_twenty_clean_twenty_caught(tmp_path, capsys):
    status = regression_power.main(["--check", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "20/20 tries with no regression" in out and "20/20 tries flagged" in out
