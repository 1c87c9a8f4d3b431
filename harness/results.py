"""The results model: ``Results`` and its ``Run``s, and ``results.json``.

``parbench run`` builds one ``Results`` per scenario and writes it (the only
writer: ``Results.write``); the report, ``parbench compare`` and ``parbench
history`` read it back with ``Results.load``.  Reading validates every field
and raises ``ResultsError``, one line naming the file and the field
(``reports/x/results.json: runs[3].verdict: expected one of ...``).

Schema ``parbench.results/2`` (written); ``parbench.results/1`` files (before
checks became a map of anomalies) are still read, converted on loading.
JSON object, field by field:

Top level
    schema            "parbench.results/2"
    created           UTC ISO 8601 time the file was written, e.g. "2026-11-26T12:00:00Z"
    parbench_version  version of the parbench package that wrote it
    machine           {"cpus": int (os.cpu_count), "platform": str, "python": str, "hostname": str}
    scenario          {"name": str, "path": str, "toml": the parsed scenario TOML as a table}
    interrupted       bool: true when a signal (SIGINT, SIGTERM, SIGHUP) stopped the sweep and ``runs`` is partial
    throughput_window str: the definition of the throughput window and latency
    runs              list, one object per (candidate, partitions, repeat), in the order run:

Run object
    impl                   str: implementation spec as typed (``reference``, ``base=syslog-ng:/opt/a``,
                           ``command:...``)
    label                  str: what reports, ``parbench compare --baseline/--current`` and
                           ``parbench history --impl`` call the run's candidate: the spec's NAME=
                           label, else its kind's label, else the variant's name (below); the
                           labels of one sweep are distinct.  Files without it: derived from impl
    variant                str | null: the scenario's ``[variants.NAME]`` this run used (``base``:
                           the scenario as written); null when the scenario has no variants
    partitions             int: partitions() of this run; 0 = no parallelize() element
    repeat                 int: 0-based repeat index
    sent                   int | null: messages the workload sent
    received               int | null: well-formed messages the collector received
    duration_s             float | null: wall time from first send to quiescence
    throughput_msgs_per_s  float | null: see ``throughput_window``
    latency_ms             {"p50", "p99", "max"}: float | null each, milliseconds
    cpu_seconds            float | null: user+system CPU of the target's processes
    peak_rss_bytes         int | null: peak resident set of the target
    checks                 object | null (null: the run never got to its checks):
                           {"anomalies": {NAME: {"count": int, "witnesses": [object, ...]}},
                            "stats": {...}}, one entry per check of ``harness.checks``
                           (lost, duplicated, unexpected, malformed, nonmonotonic-per-key,
                           nonmonotonic-per-connection); stats: sent, received,
                           duplicate_copies, incomplete_tails, key_pairs,
                           inverted_pair_share, inverted_pair_share_by_key, max_displacement
    expectation            {"ordering": "per-key"|"per-connection"|"none", "loss_allowed": bool,
                            "prohibited": [anomaly names the verdict looks at]}
    verdict                "pass" | "fail" | "unknown": "fail" also for a run that errored;
                           "unknown" when the collector lost output and every prohibited
                           anomaly found could be its doing
    verdict_reasons        list[str]: why it did not pass (empty on pass)
    partition_processed    list[int] | null: messages processed per partition index,
                           as the target reports it
    partition_assigned     list[int] | null: messages placed on each partition
                           (AxoSyslog's parallelized_assigned_events_total), when exposed
    partition_predicted    list[int] | null: the same, predicted by g_str_hash(key) % N
                           from the keys that arrived (keyed scenarios only)
    profile                str | null: the reference's version profile this run used
                           (``syslog-ng-4.8``, ``axosyslog-4.26``); null for other
                           implementations.  Chosen per sweep: ``--profile``, else the one
                           modelling the detected syslog-ng when the sweep runs one, else
                           the scenario's ``pipeline.profile``; a ``target_notes`` line says
                           which and why
    target_notes           list[str]: findings about the target (options left out, kills,
                           collector errors, the version profile and why)
    faults                 list (empty without [faults]), one object per fault as it happened:
                           {"kind", "at_s", "for_s", "bytes_per_s": as in the scenario,
                            "started_s", "ended_s": seconds after sending started (null: never),
                            "connections": connections it broke, "in_flight_bytes": bytes the
                            kernel held in them at the break or kill, "recover_s": from its
                            end until every message sent before it had arrived,
                            "error": null | why it could not be applied}
    fault_promise          null | {"max_lost": int | null (null: losses allowed, counted),
                            "why": str, "parts": [str]}: the loss the faults allow
                           (``harness.faults.promise``)
    target_accounting      null | the implementation's own count of its messages, as it
                           reports them: {"received", "written", "dropped", "queued_at_exit", ...}
    target_version         str | null
    stderr_tail            str: tail of the target's stderr (kept for failed runs)
    stderr_head            str: the first lines of the target's stderr, where start-up
                           warnings are (the tail of a long run has lost them)
    batch_histograms       object | null: parallelize() batch-size histograms, from the
                           target (AxoSyslog, the reference):
                           {"parallelized_batch_size": {"sum", "count", "buckets":
                           {"1": n, "2": n, ..., "4096": n, "+Inf": n}},
                           "parallelized_input_batch_size": {...}}; a bucket counts the
                           values up to its bound above the previous one (not cumulative)
    error                  str | null: why the run could not complete

``parbench.results/1`` differs in: ``checks`` was flat (``lost``, ``duplicated``,
..., ``nonmonotonic_per_key`` counts, ``witnesses`` by those names,
``malformed_examples`` strings, the statistics beside them), ``expectation``
had no ``prohibited``, ``verdict`` was "pass" or "fail", and ``profile``,
``target_version``, ``stderr_tail``, ``interrupted``, ``throughput_window``
and ``machine.hostname`` could be missing.
"""
from __future__ import annotations

import json
import math
import os
import platform
import socket
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from parbench.errors import InputFileError
from parbench.harness.checks import VERDICTS, Anomaly, CheckResult
from parbench.harness.faults import AppliedFault, Promise
from parbench.harness.scenario import FAULT_KINDS, ORDERINGS, Expectation
from parbench.harness.targets.registry import spec_label

SCHEMA = "parbench.results/2"
SCHEMA_V1 = "parbench.results/1"
READABLE_SCHEMAS = (SCHEMA, SCHEMA_V1)


class ResultsError(InputFileError):
    """A results file that does not follow the schema: ``FILE: FIELD: what was expected``."""


def parbench_version() -> str:
    try:
        from importlib.metadata import version

        return version("parbench")
    except Exception:  # not installed (running from a source tree)
        return "0+unknown"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Machine:
    cpus: int
    platform: str
    python: str
    hostname: str = ""

    @classmethod
    def here(cls) -> "Machine":
        return cls(cpus=os.cpu_count() or 1, platform=platform.platform(), python=sys.version.split()[0],
                   hostname=socket.gethostname())


@dataclass
class ScenarioInfo:
    name: str
    path: str
    toml: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    """One (implementation, partitions, repeat) of a sweep; see the module docstring."""

    impl: str
    partitions: int
    repeat: int
    expectation: Expectation = field(default_factory=Expectation)
    label: str = ""  # "" = derived from impl
    variant: str | None = None
    sent: int | None = None
    received: int | None = None
    duration_s: float | None = None
    throughput_msgs_per_s: float | None = None
    latency_ms: dict[str, float | None] = field(default_factory=lambda: {"p50": None, "p99": None, "max": None})
    cpu_seconds: float | None = None
    peak_rss_bytes: int | None = None
    checks: CheckResult | None = None
    verdict: str = "fail"
    verdict_reasons: list[str] = field(default_factory=list)
    partition_processed: list[int] | None = None
    partition_predicted: list[int] | None = None
    partition_assigned: list[int] | None = None
    batch_histograms: dict[str, Any] | None = None
    profile: str | None = None
    target_notes: list[str] = field(default_factory=list)
    target_version: str | None = None
    stderr_tail: str = ""
    stderr_head: str = ""
    error: str | None = None
    faults: list[AppliedFault] = field(default_factory=list)
    fault_promise: Promise | None = None
    target_accounting: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.label:
            self.label = spec_label(self.impl)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_json(self) -> dict[str, Any]:
        e = self.expectation
        return _jsonable({
            "impl": self.impl, "label": self.label, "variant": self.variant,
            "partitions": self.partitions, "repeat": self.repeat,
            "sent": self.sent, "received": self.received, "duration_s": self.duration_s,
            "throughput_msgs_per_s": self.throughput_msgs_per_s, "latency_ms": dict(self.latency_ms),
            "cpu_seconds": self.cpu_seconds, "peak_rss_bytes": self.peak_rss_bytes,
            "checks": self.checks.to_json() if self.checks is not None else None,
            "expectation": {"ordering": e.ordering, "loss_allowed": e.loss_allowed,
                            "prohibited": list(e.prohibited)},
            "verdict": self.verdict, "verdict_reasons": list(self.verdict_reasons),
            "partition_processed": self.partition_processed, "partition_predicted": self.partition_predicted,
            "partition_assigned": self.partition_assigned, "batch_histograms": self.batch_histograms,
            "profile": self.profile, "target_notes": list(self.target_notes),
            "target_version": self.target_version, "stderr_tail": self.stderr_tail,
            "stderr_head": self.stderr_head, "error": self.error,
            "faults": [a.to_json() for a in self.faults],
            "fault_promise": self.fault_promise.to_json() if self.fault_promise is not None else None,
            "target_accounting": self.target_accounting,
        })


@dataclass
class Results:
    """Every run of one scenario's sweep."""

    scenario: ScenarioInfo
    runs: list[Run] = field(default_factory=list)
    interrupted: bool = False
    throughput_window: str = ""
    created: str = field(default_factory=_now)
    parbench_version: str = field(default_factory=parbench_version)
    machine: Machine = field(default_factory=Machine.here)
    schema: str = SCHEMA  # as read; a /1 file is converted, and written back as /2

    @property
    def created_at(self) -> datetime:
        return _parse_time(self.created)

    def to_json(self) -> dict[str, Any]:
        return _jsonable({
            "schema": SCHEMA,
            "created": self.created,
            "parbench_version": self.parbench_version,
            "machine": vars(self.machine),
            "scenario": {"name": self.scenario.name, "path": str(self.scenario.path), "toml": self.scenario.toml},
            "interrupted": self.interrupted,
            "throughput_window": self.throughput_window,
            "runs": [run.to_json() for run in self.runs],
        })

    def write(self, path: str | Path) -> Path:
        """Write atomically (temp file + rename); what is written reads back."""
        path = Path(path)
        doc = self.to_json()
        Results.from_json(doc, str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Results":
        path = str(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise ResultsError(path, None, f"cannot read: {exc.strerror or exc}") from None
        return cls.from_json(parse_json(raw, path, ResultsError), path)

    @classmethod
    def from_json(cls, doc: Any, source: str = "results") -> "Results":
        """Validate a parsed results.json (either readable schema) into the model."""
        top = _Fields(source, "", doc)
        schema = top.get("schema")
        if schema not in READABLE_SCHEMAS:
            raise top.err("schema", f"expected {' or '.join(repr(s) for s in READABLE_SCHEMAS)}, got {_got(schema)}")
        v1 = schema == SCHEMA_V1
        created = top.string("created")
        try:
            _parse_time(created)
        except ValueError:
            raise top.err("created", f"expected an ISO 8601 time such as '2026-11-26T12:00:00Z', "
                                     f"got {_got(created)}") from None
        runs = [_run(_Fields(source, f"runs[{i}]", r), v1) for i, r in enumerate(top.array("runs"))]
        machine = top.sub("machine")
        scenario = top.sub("scenario")
        return cls(
            scenario=ScenarioInfo(name=scenario.string("name"), path=scenario.string("path", ""),
                                  toml=scenario.sub("toml", {}).table),
            runs=runs,
            interrupted=top.boolean("interrupted", False),
            throughput_window=top.string("throughput_window", ""),
            created=created,
            parbench_version=top.string("parbench_version"),
            machine=Machine(cpus=machine.integer("cpus"), platform=machine.string("platform", ""),
                            python=machine.string("python", ""), hostname=machine.string("hostname", "")),
            schema=schema,
        )


def parse_json(raw: bytes, path: str, error: type[InputFileError]) -> Any:
    """JSON from a file's bytes; ``error`` (one line, with line:column) otherwise."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise error(path, None, "not UTF-8 text; expected a JSON file") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}:{exc.colno}", None, f"invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise error(path, None, "arrays or objects nested deeper than Python's JSON reader goes; "
                                "expected a results or benchmark file") from None


# ---------------------------------------------------------------- reading

_MISSING = object()


def _type_name(value: Any) -> str:
    return {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string",
            list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _got(value: Any) -> str:
    if value is _MISSING:
        return "nothing"
    if isinstance(value, (dict, list)):
        return f"an {_type_name(value)}"
    text = repr(value)
    return f"{text[:37] + '...' if len(text) > 40 else text} ({_type_name(value)})"


class _Fields:
    """Typed access to one JSON object; errors name the file and the field path."""

    def __init__(self, source: str, path: str, table: Any):
        self.source = source
        self.path = path
        if not isinstance(table, dict):
            raise ResultsError(source, path or None, f"expected an object, got {_got(table)}")
        self.table = table

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def err(self, name: str, message: str) -> ResultsError:
        return ResultsError(self.source, self.key(name), message)

    def get(self, name: str, default: Any = _MISSING) -> Any:
        if name in self.table:
            return self.table[name]
        if default is _MISSING:
            raise self.err(name, "missing")
        return default

    def _typed(self, name: str, default: Any, ok, what: str, nullable: bool) -> Any:
        value = self.get(name, default)
        if value is default and name not in self.table:
            return value
        if (value is None and nullable) or ok(value):
            return value
        raise self.err(name, f"expected {what}{' or null' if nullable else ''}, got {_got(value)}")

    def integer(self, name: str, default: Any = _MISSING, *, nullable: bool = False, lo: int | None = None) -> Any:
        return self._typed(name, default, lambda v: isinstance(v, int) and not isinstance(v, bool)
                           and (lo is None or v >= lo), "an integer" + (f" >= {lo}" if lo is not None else ""),
                           nullable)

    def number(self, name: str, default: Any = _MISSING, *, nullable: bool = False) -> Any:
        value = self._typed(name, default, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                            and math.isfinite(v), "a finite number", nullable)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    def string(self, name: str, default: Any = _MISSING, *, nullable: bool = False) -> Any:
        return self._typed(name, default, lambda v: isinstance(v, str), "a string", nullable)

    def boolean(self, name: str, default: Any = _MISSING) -> Any:
        return self._typed(name, default, lambda v: isinstance(v, bool), "true or false", False)

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.get(name)
        if value not in choices:
            raise self.err(name, f"expected one of {', '.join(repr(c) for c in choices)}, got {_got(value)}")
        return value

    def array(self, name: str, default: Any = _MISSING, *, nullable: bool = False) -> Any:
        return self._typed(name, default, lambda v: isinstance(v, list), "an array", nullable)

    def strings(self, name: str, default: Any = _MISSING) -> list[str]:
        values = self.array(name, default)
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise ResultsError(self.source, f"{self.key(name)}[{i}]", f"expected a string, got {_got(v)}")
        return list(values)

    def integers(self, name: str) -> list[int] | None:
        values = self.array(name, nullable=True)
        for i, v in enumerate(values or ()):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ResultsError(self.source, f"{self.key(name)}[{i}]", f"expected an integer, got {_got(v)}")
        return values

    def sub(self, name: str, default: Any = _MISSING) -> "_Fields":
        return _Fields(self.source, self.key(name), self.get(name, default))


def _run(r: _Fields, v1: bool) -> Run:
    impl = r.string("impl")
    partitions = r.integer("partitions", lo=0)
    repeat = r.integer("repeat", lo=0)
    latency = r.sub("latency_ms")
    e = r.sub("expectation")
    ordering = e.choice("ordering", ORDERINGS)
    expectation = Expectation(ordering=ordering, loss_allowed=e.boolean("loss_allowed", False))
    checks = r.get("checks")
    return Run(
        impl=impl, partitions=partitions, repeat=repeat, expectation=expectation,
        label=r.string("label", "") or spec_label(impl), variant=r.string("variant", None, nullable=True),
        sent=r.integer("sent", nullable=True), received=r.integer("received", nullable=True),
        duration_s=r.number("duration_s", nullable=True),
        throughput_msgs_per_s=r.number("throughput_msgs_per_s", nullable=True),
        latency_ms={k: latency.number(k, nullable=True) for k in ("p50", "p99", "max")},
        cpu_seconds=r.number("cpu_seconds", nullable=True),
        peak_rss_bytes=r.integer("peak_rss_bytes", nullable=True),
        checks=None if checks is None else (_checks_v1 if v1 else _checks)(r.sub("checks")),
        verdict=r.choice("verdict", ("pass", "fail") if v1 else VERDICTS),
        verdict_reasons=r.strings("verdict_reasons"),
        partition_processed=r.integers("partition_processed"),
        partition_predicted=r.integers("partition_predicted"),
        partition_assigned=r.integers("partition_assigned") if "partition_assigned" in r.table else None,
        batch_histograms=r.sub("batch_histograms").table if r.get("batch_histograms", None) is not None else None,
        profile=r.string("profile", None, nullable=True),
        target_notes=r.strings("target_notes"),
        target_version=r.string("target_version", None, nullable=True),
        stderr_tail=r.string("stderr_tail", ""),
        stderr_head=r.string("stderr_head", ""),
        error=r.string("error", nullable=True),
        faults=[_fault(_Fields(r.source, f"{r.key('faults')}[{i}]", doc)) for i, doc in enumerate(r.array("faults", []))],
        fault_promise=_promise(r),
        target_accounting=None if r.get("target_accounting", None) is None else dict(r.sub("target_accounting").table),
    )


def _fault(f: _Fields) -> AppliedFault:
    kind = f.choice("kind", FAULT_KINDS)
    for name in ("at_s", "for_s", "started_s", "ended_s", "recover_s"):
        f.number(name, None, nullable=True)
    for name in ("bytes_per_s", "connections", "in_flight_bytes"):
        f.integer(name, None, nullable=True, lo=0)
    f.string("error", None, nullable=True)
    return AppliedFault.from_json({**f.table, "kind": kind})


def _promise(r: _Fields) -> Promise | None:
    if r.get("fault_promise", None) is None:
        return None
    p = r.sub("fault_promise")
    return Promise(p.integer("max_lost", nullable=True, lo=0), p.string("why"), p.strings("parts", []))


def _witnesses(f: _Fields, name: str) -> list[dict[str, Any]]:
    values = f.array(name, [])
    for i, w in enumerate(values):
        if not isinstance(w, dict):
            raise ResultsError(f.source, f"{f.key(name)}[{i}]", f"expected an object, got {_got(w)}")
    return [dict(w) for w in values]


def _checks(c: _Fields) -> CheckResult:
    found = c.sub("anomalies")
    anomalies = {}
    for name in found.table:
        a = found.sub(name)
        anomalies[name] = Anomaly(a.integer("count", lo=0), _witnesses(a, "witnesses"))
    return CheckResult(anomalies, dict(c.sub("stats", {}).table))


# parbench.results/1 flat check counts -> anomaly names
_V1_ANOMALIES = {"lost": "lost", "duplicated": "duplicated", "unexpected": "unexpected", "malformed": "malformed",
                 "nonmonotonic_per_key": "nonmonotonic-per-key",
                 "nonmonotonic_per_connection": "nonmonotonic-per-connection"}
_V1_NOT_STATS = {*_V1_ANOMALIES, "witnesses", "malformed_examples", "ordering"}


def _checks_v1(c: _Fields) -> CheckResult:
    witnesses = c.sub("witnesses", {})
    anomalies = {}
    for old, name in _V1_ANOMALIES.items():
        if old not in c.table:
            continue
        shown = ([{"text": text} for text in c.strings("malformed_examples", [])] if old == "malformed"
                 else _witnesses(witnesses, old))
        anomalies[name] = Anomaly(c.integer(old, lo=0), shown)
    return CheckResult(anomalies, {k: v for k, v in c.table.items() if k not in _V1_NOT_STATS})


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays, tuples and paths into plain JSON values (NaN -> null)."""
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
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
