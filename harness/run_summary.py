"""What ``parbench run`` tells a CI job at the end: ``--json`` (a
machine-readable summary on stdout, with the path of every results file) and
the Markdown job summary appended to ``$GITHUB_STEP_SUMMARY`` when GitHub
Actions sets it.

``--json`` prints one object, schema ``parbench.run-summary/1``::

    {"schema": "parbench.run-summary/1", "passed": true, "interrupted": false,
     "scenarios": [{"name": ..., "path": ..., "results": ".../results.json",
                    "report": ".../report.md", "profile": "axosyslog-4.26" | null,
                    "interrupted": false, "runs": N, "verdicts": {"pass": N, "fail": N, "unknown": N},
                    "errors": N,
                    "runs_detail": [{"impl": ..., "label": ..., "partitions": N, "repeat": N,
                                     "verdict": ..., "throughput_msgs_per_s": ..., "latency_ms": {...},
                                     "reasons": [...]}]}],
     "junit_xml": "j.xml" | null}
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parbench.harness.results import Results, Run
from parbench.harness.targets.registry import shorten_label

SCHEMA = "parbench.run-summary/1"
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
REASON_CHARS = 200


@dataclass
class SweepDone:
    """One scenario's finished sweep and where its files went."""

    results: Results
    directory: Path
    profile: str | None = None

    @property
    def results_path(self) -> Path:
        return self.directory / "results.json"

    @property
    def report_path(self) -> Path:
        return self.directory / "report.md"


def _verdicts(runs: list[Run]) -> dict[str, int]:
    counts = {"pass": 0, "fail": 0, "unknown": 0}
    for run in runs:
        counts[run.verdict] = counts.get(run.verdict, 0) + 1
    return counts


def summary(done: list[SweepDone], junit_path: str | None = None) -> dict[str, Any]:
    scenarios = []
    for sweep in done:
        runs = sweep.results.runs
        scenarios.append({
            "name": sweep.results.scenario.name, "path": sweep.results.scenario.path,
            "results": str(sweep.results_path), "report": str(sweep.report_path), "profile": sweep.profile,
            "interrupted": sweep.results.interrupted, "runs": len(runs), "verdicts": _verdicts(runs),
            "errors": sum(1 for r in runs if r.error is not None),
            "runs_detail": [{"impl": r.impl, "label": r.label, "variant": r.variant, "partitions": r.partitions,
                             "repeat": r.repeat, "verdict": r.verdict,
                             "throughput_msgs_per_s": r.throughput_msgs_per_s, "latency_ms": dict(r.latency_ms),
                             "reasons": list(r.verdict_reasons)} for r in runs],
        })
    passed = bool(done) and all(s["runs"] and s["verdicts"]["pass"] == s["runs"] and not s["interrupted"]
                                for s in scenarios)
    return _plain({"schema": SCHEMA, "passed": passed,
                      "interrupted": any(s["interrupted"] for s in scenarios),
                      "scenarios": scenarios, "junit_xml": junit_path})


def _plain(value: Any) -> Any:
    """numpy numbers to Python ones, NaN to null: strict JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary_json(done: list[SweepDone], junit_path: str | None = None) -> str:
    return json.dumps(summary(done, junit_path), indent=2)


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _number(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def step_summary_markdown(done: list[SweepDone]) -> str:
    """A short Markdown summary for a CI job page: one table per scenario."""
    lines = []
    for sweep in done:
        runs = sweep.results.runs
        counts = _verdicts(runs)
        mark = "✅" if runs and counts["pass"] == len(runs) and not sweep.results.interrupted else "❌"
        lines += [f"### {mark} parbench: {_md(sweep.results.scenario.name)}: {counts['pass']} of {len(runs)} "
                  "runs pass" + (" (interrupted)" if sweep.results.interrupted else ""), "",
                  f"Results: `{sweep.results_path}`, report: `{sweep.report_path}`"
                  + (f", reference profile `{sweep.profile}`" if sweep.profile else ""), "",
                  "| impl | partitions | repeat | verdict | throughput (msg/s) | p99 latency (ms) | reasons |",
                  "|---|---:|---:|---|---:|---:|---|"]
        for r in runs:
            verdict = r.verdict if r.passed else f"**{r.verdict}**"
            reasons = _md("; ".join(r.verdict_reasons))
            lines.append(f"| `{_md(shorten_label(r.label))}` | {'none' if r.partitions == 0 else r.partitions} "
                         f"| {r.repeat} | {verdict} | {_number(r.throughput_msgs_per_s)} "
                         f"| {_number(r.latency_ms.get('p99'), '.2f')} "
                         f"| {reasons[:REASON_CHARS] + ('...' if len(reasons) > REASON_CHARS else '')} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def append_step_summary(done: list[SweepDone], environ: dict[str, str] | None = None) -> Path | None:
    """Append the Markdown summary to ``$GITHUB_STEP_SUMMARY`` when it is set
    (GitHub Actions); returns the file, or None when not in such a job."""
    target = (environ if environ is not None else os.environ).get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(step_summary_markdown(done))
    return path
