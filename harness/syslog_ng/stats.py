"""What ``syslog-ng-ctl`` says about a running syslog-ng, parsed.

``stats`` prints CSV (SourceName;SourceId;SourceInstance;State;Type;Number);
``stats prometheus`` prints metrics, among them AxoSyslog's per-partition
``parallelized_{assigned,processed}_events_total`` (at stats level 4).
"""
from __future__ import annotations

import re

_PROM_LINE = re.compile(
    r"^(?:syslogng_)?parallelized_(?P<kind>assigned|processed)_events_total\{(?P<labels>[^}]*)\}\s+(?P<value>\d+)",
    re.M,
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_prometheus_partitions(text: str) -> dict[str, list[int]] | None:
    """``syslog-ng-ctl stats prometheus`` -> {"assigned": [...], "processed": [...]}
    per partition index (summed over log paths), or None without such metrics."""
    totals: dict[str, dict[int, int]] = {"assigned": {}, "processed": {}}
    for match in _PROM_LINE.finditer(text):
        labels = dict(_LABEL.findall(match.group("labels")))
        index_text = labels.get("partition_index", labels.get("partition", labels.get("worker")))
        if index_text is None or not index_text.isdigit():
            continue
        per_kind = totals[match.group("kind")]
        per_kind[int(index_text)] = per_kind.get(int(index_text), 0) + int(match.group("value"))
    if not totals["assigned"] and not totals["processed"]:
        return None
    size = 1 + max(max(d, default=-1) for d in totals.values())
    return {kind: [per_kind.get(i, 0) for i in range(size)] for kind, per_kind in totals.items()}


def parse_stats_csv(text: str) -> list[dict[str, str]]:
    """``syslog-ng-ctl stats`` (CSV: SourceName;SourceId;SourceInstance;State;Type;Number)."""
    rows = []
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("SourceName;"):
        return rows
    header = lines[0].split(";")
    for line in lines[1:]:
        fields = line.split(";")
        if len(fields) == len(header):
            rows.append(dict(zip(header, fields)))
    return rows
