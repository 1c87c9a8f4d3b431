"""What ``syslog-ng-ctl`` says about a running syslog-ng, parsed.

``stats`` prints CSV (SourceName;SourceId;SourceInstance;State;Type;Number);
``stats prometheus`` prints metrics, among them AxoSyslog's per-partition
``parallelized_{assigned,processed}_events_total`` and per parallelize()
element the histograms ``parallelized_batch_size`` and
``parallelized_input_batch_size`` (at stats level 4), and
``parallelize_failed_events_total`` (level 2).  Every name carries the prefix
``syslogng_``.  Histogram buckets count only their own values (not
cumulative, see ``reference.histogram``).
"""
from __future__ import annotations

import re

_PROM_LINE = re.compile(
    r"^(?:syslogng_)?parallelized_(?P<kind>assigned|processed)_events_total\{(?P<labels>[^}]*)\}\s+(?P<value>\d+)",
    re.M,
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_HIST_LINE = re.compile(
    r"^(?:syslogng_)?(?P<name>parallelized_(?:input_)?batch_size)_(?P<part>sum|count|bucket)"
    r"(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>[0-9.eE+-]+)\s*$",
    re.M,
)
_FAILED_LINE = re.compile(r"^(?:syslogng_)?parallelize_failed_events_total(?:\{[^}]*\})?\s+(?P<value>\d+)\s*$", re.M)
HISTOGRAMS = ("parallelized_batch_size", "parallelized_input_batch_size")


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


def parse_prometheus_histograms(text: str) -> dict[str, dict] | None:
    """The parallelize() batch-size histograms, summed over parallelize()
    elements: ``{"parallelized_batch_size": {"sum": S, "count": C,
    "buckets": {"1": n, ..., "+Inf": n}}, "parallelized_input_batch_size": ...}``
    (bucket labels as AxoSyslog prints them, e.g. "1024"); None without them."""
    found: dict[str, dict] = {}
    for match in _HIST_LINE.finditer(text):
        hist = found.setdefault(match.group("name"), {"sum": 0, "count": 0, "buckets": {}})
        value = int(float(match.group("value")))
        if match.group("part") == "bucket":
            le = dict(_LABEL.findall(match.group("labels") or "")).get("le")
            if le is None:
                continue
            hist["buckets"][le] = hist["buckets"].get(le, 0) + value
        else:
            hist[match.group("part")] += value
    if not found:
        return None
    for hist in found.values():
        hist["buckets"] = dict(sorted(hist["buckets"].items(), key=lambda item: _bucket_order(item[0])))
    return found


def _bucket_order(le: str) -> float:
    try:
        return float(le)
    except ValueError:
        return float("inf")


def parse_prometheus_failed(text: str) -> int | None:
    """``parallelize_failed_events_total``: messages that bypassed the
    partitions (no worker index, or an ivykis without parallelize support)."""
    values = [int(m.group("value")) for m in _FAILED_LINE.finditer(text)]
    return sum(values) if values else None
