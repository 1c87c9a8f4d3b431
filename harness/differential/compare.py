"""The records of the reference against those of a real implementation,
case by case and field by field.

A case is ``identical`` (every record equal, byte for byte, after
masking), ``documented`` (different, and marked in the corpus as an
expected divergence for this implementation), ``differs`` (different and
unexplained) or ``error`` (one side could not run it).  A marked case that
turns out identical is ``identical`` with ``stale_mark`` set: the mark no
longer describes anything and should go.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from parbench.harness.differential.corpus import Case, Mark, encode_bytes
from parbench.harness.differential.record import FIELDS, Record
from parbench.harness.differential.runner import CaseResult, ImplRun

STATUSES = ("identical", "documented", "differs", "error")


@dataclass
class CaseVerdict:
    case: Case
    status: str
    mark: Mark | None = None
    stale_mark: Mark | None = None
    lines: list[str] = field(default_factory=list)  # the differences, one per line


@dataclass
class Comparison:
    """One real implementation against the reference, over one section's cases."""

    section: str
    config: str
    impl: str
    version: str | None
    reference: str  # the reference's label (its profile)
    verdicts: list[CaseVerdict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a side that could not run at all

    def count(self, status: str) -> int:
        return sum(1 for verdict in self.verdicts if verdict.status == status)

    @property
    def stale(self) -> list[CaseVerdict]:
        return [verdict for verdict in self.verdicts if verdict.stale_mark is not None]

    @property
    def failed(self) -> bool:
        return bool(self.errors) or any(v.status in ("differs", "error") for v in self.verdicts)


def _show(value: bytes | None) -> str:
    return "(none)" if value is None else '"' + encode_bytes(value) + '"'


def record_differences(reference: list[Record], other: list[Record], ref_label: str, label: str) -> list[str]:
    """Field by field, what differs between two lists of records."""
    lines = []
    if len(reference) != len(other):
        lines.append(f"{len(reference)} message(s) from {ref_label}, {len(other)} from {label}")
    width = max(len(name) for name in FIELDS)
    for index in range(max(len(reference), len(other))):
        ref = reference[index] if index < len(reference) else None
        oth = other[index] if index < len(other) else None
        if ref == oth:
            continue
        if ref is None or oth is None:
            present, who = (oth, label) if ref is None else (ref, ref_label)
            lines.append(f"message {index + 1}: only from {who}: " + (
                _show(present.get("RAW")) if "RAW" in present else
                " ".join(f"{name}={_show(present.get(name))}" for name in ("HOST", "PROGRAM", "MSG"))))
            continue
        names = [name for name in (*FIELDS, "RAW") if ref.get(name) != oth.get(name)]
        for name in names:
            lines.append(f"message {index + 1} {name:<{width}} {ref_label}: {_show(ref.get(name))}")
            lines.append(f"message {index + 1} {'':<{width}} {label}: {_show(oth.get(name))}")
    return lines


def compare_runs(section: str, config: str, reference: ImplRun, other: ImplRun, cases: list[Case]) -> Comparison:
    comparison = Comparison(section, config, other.label, other.version, reference.label)
    for run in (reference, other):
        if run.error and not run.results:
            comparison.errors.append(f"{run.label}: {run.error}")
    for case in cases:
        ref: CaseResult | None = reference.results.get(case.name)
        oth: CaseResult | None = other.results.get(case.name)
        mark = case.divergence_for(other.version)
        if ref is None or oth is None or ref.error or oth.error:
            reasons = [f"{run.label}: {res.error if res else 'not run'}"
                       for run, res in ((reference, ref), (other, oth)) if res is None or res.error]
            comparison.verdicts.append(CaseVerdict(case, "error", mark, lines=reasons))
            continue
        lines = record_differences(ref.records, oth.records, reference.label, other.label)
        if not lines:
            comparison.verdicts.append(CaseVerdict(case, "identical", stale_mark=mark))
        elif mark is not None:
            comparison.verdicts.append(CaseVerdict(case, "documented", mark, lines=lines))
        else:
            comparison.verdicts.append(CaseVerdict(case, "differs", lines=lines))
    return comparison
