"""``parbench run --junit-xml FILE``: the runs of a sweep as JUnit XML, the
report format CI systems (GitHub, GitLab, Jenkins) show as test results.

One ``<testsuite>`` per scenario, one ``<testcase>`` per run (implementation,
partitions, repeat).  A run that errored carries an ``<error>``, a run whose
verdict is "fail" or "unknown" a ``<failure>``; the message is the first
reason, the text every reason and the first witnesses of the anomalies that
broke the expectation, so the CI page shows what went wrong without the
report.  Metrics go to ``<system-out>``; the suite's properties name the
results file.
"""
from __future__ import annotations

import json
import os
import re
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

from parbench.harness.results import Results, Run
from parbench.harness.targets.registry import shorten_label

SHOWN_WITNESSES = 3
# characters XML 1.0 cannot hold (a target's stderr may contain them)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def case_name(run: Run) -> str:
    return f"{shorten_label(run.label)} partitions={run.partitions} repeat={run.repeat}"


def _details(run: Run) -> str:
    lines = list(run.verdict_reasons)
    if run.error:
        lines.append(f"error: {run.error}")
    if run.checks is not None:
        for name in run.expectation.prohibited:
            found = run.checks.anomalies.get(name)
            for witness in (found.witnesses[:SHOWN_WITNESSES] if found else ()):
                lines.append(f"{name} witness: {json.dumps(witness, sort_keys=True)}")
    if run.stderr_tail and run.error:
        lines += ["stderr tail:", run.stderr_tail[-2000:]]
    return "\n".join(lines)


def _metrics(run: Run) -> str:
    lat = run.latency_ms
    parts = [f"verdict: {run.verdict}", f"sent: {run.sent}", f"received: {run.received}",
             f"throughput_msgs_per_s: {run.throughput_msgs_per_s}",
             f"latency_ms: p50 {lat.get('p50')}, p99 {lat.get('p99')}, max {lat.get('max')}",
             f"cpu_seconds: {run.cpu_seconds}", f"peak_rss_bytes: {run.peak_rss_bytes}"]
    if run.target_version:
        parts.append(f"target_version: {run.target_version}")
    return "\n".join(parts)


def _suite(results: Results, results_path: str | Path | None) -> ET.Element:
    runs = results.runs
    failures = sum(1 for r in runs if r.error is None and not r.passed)
    errors = sum(1 for r in runs if r.error is not None)
    seconds = sum(r.duration_s or 0.0 for r in runs)
    suite = ET.Element("testsuite", {
        "name": results.scenario.name, "tests": str(len(runs)), "failures": str(failures),
        "errors": str(errors), "skipped": "0", "time": f"{seconds:.3f}",
        "timestamp": results.created.removesuffix("Z"), "hostname": results.machine.hostname or socket.gethostname(),
    })
    props = ET.SubElement(suite, "properties")
    for name, value in (("scenario_path", results.scenario.path), ("results", results_path),
                        ("parbench_version", results.parbench_version), ("interrupted", results.interrupted)):
        if value is not None:
            ET.SubElement(props, "property", {"name": name, "value": str(value).lower() if isinstance(value, bool)
                                              else str(value)})
    for run in runs:
        case = ET.SubElement(suite, "testcase", {
            "classname": f"parbench.{results.scenario.name}", "name": case_name(run),
            "time": f"{run.duration_s or 0.0:.3f}"})
        if run.error is not None:
            ET.SubElement(case, "error", {"message": _clean(run.error.splitlines()[0] if run.error else "error"),
                                          "type": "error"}).text = _clean(_details(run))
        elif not run.passed:
            first = run.verdict_reasons[0] if run.verdict_reasons else f"verdict {run.verdict}"
            ET.SubElement(case, "failure", {"message": _clean(first), "type": run.verdict}).text = _clean(_details(run))
        ET.SubElement(case, "system-out").text = _clean(_metrics(run))
    return suite


def junit_xml(sweeps: list[tuple[Results, str | Path | None]]) -> bytes:
    """The XML document for every scenario's results (and where each was written)."""
    root = ET.Element("testsuites", {"name": "parbench"})
    totals = {"tests": 0, "failures": 0, "errors": 0}
    seconds = 0.0
    for results, path in sweeps:
        suite = _suite(results, path)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key))
        seconds += float(suite.get("time"))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{seconds:.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit_xml(sweeps: list[tuple[Results, str | Path | None]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(junit_xml(sweeps))
    os.replace(tmp, path)
    return path
