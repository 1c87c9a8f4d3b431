"""``results.json``: schema ``parbench.results/1``.

One file per scenario run (``parbench run`` writes it into the report
directory; ``parbench compare`` and ``parbench history`` read it).  JSON
object, field by field:

Top level
    schema            "parbench.results/1" (a reader refuses other values)
    created           UTC ISO 8601 time the file was written, e.g. "2026-11-26T12:00:00Z"
    parbench_version  version of the parbench package that wrote it
    machine           {"cpus": int (os.cpu_count), "platform": str, "python": str,
                       "hostname": str}
    scenario          {"name": str, "path": str, "toml": the parsed scenario TOML as a table}
    interrupted       bool: true when the sweep was stopped (Ctrl-C) and ``runs`` is partial
    throughput_window str: the definition of the throughput window and latency
    runs              list, one object per (impl, partitions, repeat), in the order run:

Run object
    impl                   str: implementation (``reference``, ``syslog-ng``, ``command:...``)
    partitions             int: partitions() of this run; 0 = no parallelize() element
    repeat                 int: 0-based repeat index
    sent                   int | null: messages the workload sent
    received               int | null: well-formed messages the collector received
    duration_s             float | null: wall time from first send to quiescence
    throughput_msgs_per_s  float | null: see ``throughput_window``
    latency_ms             {"p50", "p99", "max"}: float | null each, milliseconds
    cpu_seconds            float | null: user+system CPU of the target's processes
    peak_rss_bytes         int | null: peak resident set of the target
    checks                 object | null: the checker's counts and witnesses
                           (``harness.checks`` ``CheckResult.to_dict()``): lost,
                           duplicated, unexpected, malformed, nonmonotonic_per_key,
                           nonmonotonic_per_connection, inverted_pair_share,
                           max_displacement, witnesses
    expectation            {"ordering": "per-key"|"per-connection"|"none",
                            "loss_allowed": bool}
    verdict                "pass" | "fail" ("fail" also for a run that errored)
    verdict_reasons        list[str]: why it failed (empty on pass)
    partition_processed    list[int] | null: messages processed per partition index,
                           as the target reports it
    partition_assigned     list[int] | null (optional): messages placed on each partition
                           (AxoSyslog's parallelized_assigned_events_total), when exposed
    partition_predicted    list[int] | null: the same, predicted by reference.partition
                           from the keys that arrived (keyed scenarios only)
    profile                str | null (optional; files written before it may lack it): the
                           reference's version profile this run used (``syslog-ng-4.8``,
                           ``axosyslog-4.26``); null for other implementations.  Chosen per
                           sweep: ``--profile``, else the one modelling the detected
                           syslog-ng when the sweep runs one, else the scenario's
                           ``pipeline.profile``; a ``target_notes`` line says which and why
    target_notes           list[str]: findings about the target (options left out, kills,
                           collector errors, the version profile and why)
    target_version         str | null
    stderr_tail            str: tail of the target's stderr (kept for failed runs)
    stderr_head            str (optional): the first lines of the target's stderr, where
                           start-up warnings are (the tail of a long run has lost them)
    batch_histograms       object | null (optional): AxoSyslog's parallelize() batch-size
                           histograms, from the target (AxoSyslog, the reference):
                           {"parallelized_batch_size": {"sum", "count", "buckets":
                           {"1": n, "2": n, ..., "4096": n, "+Inf": n}},
                           "parallelized_input_batch_size": {...}}; a bucket counts the
                           values up to its bound above the previous one (not cumulative)
    error                  str | null: why the run could not complete
"""
from __future__ import annotations

import json
import os
import platform
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = "parbench.results/1"

RUN_FIELDS: dict[str, tuple[type, ...]] = {
    "impl": (str,),
    "partitions": (int,),
    "repeat": (int,),
    "sent": (int, type(None)),
    "received": (int, type(None)),
    "duration_s": (int, float, type(None)),
    "throughput_msgs_per_s": (int, float, type(None)),
    "latency_ms": (dict,),
    "cpu_seconds": (int, float, type(None)),
    "peak_rss_bytes": (int, type(None)),
    "checks": (dict, type(None)),
    "expectation": (dict,),
    "verdict": (str,),
    "verdict_reasons": (list,),
    "partition_processed": (list, type(None)),
    "partition_predicted": (list, type(None)),
    "target_notes": (list,),
    "error": (str, type(None)),
}
# Validated when present (added after the first files were written).
OPTIONAL_RUN_FIELDS: dict[str, tuple[type, ...]] = {
    "profile": (str, type(None)),
    "stderr_head": (str,),
    "partition_assigned": (list, type(None)),
    "batch_histograms": (dict, type(None)),
}
TOP_FIELDS: dict[str, tuple[type, ...]] = {
    "schema": (str,),
    "created": (str,),
    "parbench_version": (str,),
    "machine": (dict,),
    "scenario": (dict,),
    "runs": (list,),
}


class ResultsError(Exception):
    """A results file that does not follow the schema; str() is one line."""


def machine_info() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count() or 1,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "hostname": socket.gethostname(),
    }


def parbench_version() -> str:
    try:
        from importlib.metadata import version

        return version("parbench")
    except Exception:  # not installed (running from a source tree)
        return "0+unknown"


def empty_run(impl: str, partitions: int, repeat: int, expectation: dict[str, Any]) -> dict[str, Any]:
    return {
        "impl": impl, "partitions": int(partitions), "repeat": int(repeat),
        "sent": None, "received": None, "duration_s": None,
        "throughput_msgs_per_s": None,
        "latency_ms": {"p50": None, "p99": None, "max": None},
        "cpu_seconds": None, "peak_rss_bytes": None,
        "checks": None, "expectation": dict(expectation),
        "verdict": "fail", "verdict_reasons": [],
        "partition_processed": None, "partition_predicted": None,
        "profile": None, "target_notes": [], "target_version": None, "stderr_tail": "", "stderr_head": "", "partition_assigned": None,
        "batch_histograms": None, "error": None,
    }


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays, tuples and paths into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value != value:
        return None
    return value


def build_results(scenario_name: str, scenario_path: str, scenario_toml: dict[str, Any],
                  runs: list[dict[str, Any]], interrupted: bool = False,
                  throughput_window: str = "") -> dict[str, Any]:
    return _jsonable({
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "parbench_version": parbench_version(),
        "machine": machine_info(),
        "scenario": {"name": scenario_name, "path": str(scenario_path), "toml": scenario_toml},
        "interrupted": bool(interrupted),
        "throughput_window": throughput_window,
        "runs": runs,
    })


def validate(doc: Any, source: str = "results") -> dict[str, Any]:
    """Raise ResultsError naming the first field that breaks the schema."""
    if not isinstance(doc, dict):
        raise ResultsError(f"{source}: top level must be a JSON object")
    if doc.get("schema") != SCHEMA:
        raise ResultsError(f"{source}: schema is {doc.get('schema')!r}; expected {SCHEMA!r}")
    for name, types in TOP_FIELDS.items():
        if name not in doc:
            raise ResultsError(f"{source}: missing top-level field {name!r}")
        if not isinstance(doc[name], types):
            raise ResultsError(f"{source}: {name} must be {'/'.join(t.__name__ for t in types)}")
    if not isinstance(doc["machine"].get("cpus"), int):
        raise ResultsError(f"{source}: machine.cpus must be int")
    if not isinstance(doc["scenario"].get("name"), str):
        raise ResultsError(f"{source}: scenario.name must be str")
    for i, run in enumerate(doc["runs"]):
        where = f"{source}: runs[{i}]"
        if not isinstance(run, dict):
            raise ResultsError(f"{where} must be an object")
        for name, types in (*RUN_FIELDS.items(), *OPTIONAL_RUN_FIELDS.items()):
            if name not in run:
                if name in OPTIONAL_RUN_FIELDS:
                    continue
                raise ResultsError(f"{where}: missing field {name!r}")
            value = run[name]
            if isinstance(value, bool) and bool not in types:
                raise ResultsError(f"{where}.{name} must be {'/'.join(t.__name__ for t in types)}, got bool")
            if not isinstance(value, types):
                raise ResultsError(
                    f"{where}.{name} must be {'/'.join(t.__name__ for t in types)}, got {type(value).__name__}"
                )
        if run["verdict"] not in ("pass", "fail"):
            raise ResultsError(f"{where}.verdict must be 'pass' or 'fail', got {run['verdict']!r}")
        for key in ("p50", "p99", "max"):
            if key not in run["latency_ms"] or not isinstance(run["latency_ms"][key], (int, float, type(None))):
                raise ResultsError(f"{where}.latency_ms.{key} must be a number or null")
        if run["expectation"].get("ordering") not in ("per-key", "per-connection", "none"):
            raise ResultsError(f"{where}.expectation.ordering must be per-key, per-connection or none")
    return doc


def write_results(path: str | Path, doc: dict[str, Any]) -> Path:
    """Validate and write atomically (temp file + rename)."""
    path = Path(path)
    validate(doc, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def load_results(path: str | Path) -> dict[str, Any]:
    """Read and validate; ResultsError (one line, naming the file) otherwise."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ResultsError(f"{path}: not JSON: {exc}") from None
    return validate(doc, str(path))
