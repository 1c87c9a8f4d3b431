"""A scenario with ``framing = "octet-counted"`` runs on a ``syslog()``
source, for the reference and a real syslog-ng alike: ``tcp()`` and
``network()`` read newline-framed text only, so a rendered ``network()``
source made syslog-ng read every frame as one long line."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from parbench.harness.render import render_config
from parbench.harness.scenario import apply_quick, load_scenario
from parbench.harness.syslog_ng.installation import find_syslog_ng
from parbench.reference.config import parse_config
from syslog_ng_required import skip_unless_required

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def octet_counted(name: str, fmt: str = "rfc3164"):
    quick = apply_quick(load_scenario(SCENARIOS / name))
    return replace(quick, workload=replace(quick.workload, framing="octet-counted", format=fmt))


@pytest.mark.parametrize("fmt", ["rfc3164", "rfc5424"])
def test_octet_counted_scenario_renders_a_syslog_source(fmt):
    text = render_config(octet_counted("chatty-single-sender.toml", fmt), 4, 5001, in_port=5000)
    assert "    syslog(" in text and "network(" not in text
    assert "syslog-protocol" not in text  # implied by syslog()
    (driver,) = [d for s in parse_config(text).log_paths[0].sources for d in s.drivers]
    assert (driver.kind, driver.framing, driver.syslog_protocol, driver.port) == ("syslog", "framed", True, 5000)
    newline = render_config(apply_quick(load_scenario(SCENARIOS / "chatty-single-sender.toml")), 4, 5001, in_port=5000)
    assert "    network(" in newline and "syslog(" not in newline


@pytest.mark.parametrize("impl", ["reference", "syslog-ng"])
def test_octet_counted_scenario_delivers_everything(tmp_path, impl, monkeypatch):
    from parbench.harness.runner import run_once

    if impl == "syslog-ng":
        installed = find_syslog_ng()
        if installed is None:
            skip_unless_required("no syslog-ng installed here (run: parbench install syslog-ng)")
        monkeypatch.setenv("PARBENCH_SYSLOG_NG", str(installed.syslog_ng))
    scenario = octet_counted("chatty-single-sender.toml")
    run = run_once(scenario, impl, 4, 0, tmp_path)
    assert run.error is None, run
    assert run.sent > 0 and run.received == run.sent, run.stderr_tail
    assert run.checks.count("lost") == 0 and run.checks.count("malformed") == 0
    assert run.verdict == "pass", run.verdict_reasons
