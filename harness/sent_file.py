"""What ``parbench send`` sent, for ``parbench check``: the sent file.

A sender that stops at a duration (or is interrupted, or loses a connection)
sends a number of messages nobody knows in advance.  ``send --expect-out
FILE`` writes that number per connection, with the scenario and the flags
that changed its workload, so ``check --expect FILE`` regenerates exactly
the messages that were sent and nothing else; several files (one per shard)
are merged.  Without such a file, ``check`` assumes a duration-bound
connection sent up to the highest sequence number seen from it.

The file (JSON, schema ``parbench.sent/1``)::

    {"schema": "parbench.sent/1", "created": "2026-...Z", "parbench_version": "...",
     "scenario": {"name": ..., "path": ..., "toml": {...the scenario as parsed...}},
     "workload_overrides": {"rate_per_connection": 1000, "duration_s": null, ...},
     "shard": {"index": 0, "count": 3} | null, "to": "127.0.0.1:2000",
     "sent": {"connections": [0, 3, ...], "messages": [N0, N3, ...]},
     "complete": true, "notes": [...]}

``workload_overrides`` maps workload keys to the value the sender used; null
removes the key (``-n`` replaces a duration, ``-I`` a count).
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from parbench.errors import InputFileError, UsageError
from parbench.harness.results import parbench_version, parse_json
from parbench.harness.scenario import Scenario, ScenarioError, scenario_from_dict
from parbench.harness.shard import Shard

SCHEMA = "parbench.sent/1"
#: workload keys a sender's flags may change, and the flag that changes each
OVERRIDABLE = {
    "connections": "--active-connections",
    "messages_per_connection": "-n/--number",
    "duration_s": "-I/--interval",
    "rate_per_connection": "-r/--rate",
    "message_size": "-s/--size",
    "format": "--format/-P",
    "framing": "--framing/-F",
}


class SentFileError(InputFileError):
    """A sent file that cannot be used: ``FILE: KEY: what was expected``."""


def apply_overrides(scenario: Scenario, overrides: dict[str, Any]) -> Scenario:
    """The scenario with its workload changed by a sender's flags, validated
    like a scenario file; an invalid combination is a UsageError naming the flag."""
    if not overrides:
        return scenario
    raw = copy.deepcopy(scenario.raw)
    workload = raw.setdefault("workload", {})
    for key, value in overrides.items():
        if key not in OVERRIDABLE:
            raise ValueError(f"workload key {key!r} cannot be overridden")
        if value is None:
            workload.pop(key, None)
        else:
            workload[key] = value
    if "connections" in overrides:
        # the receiving side's settings and the --quick variant do not
        # constrain what a sender sends
        raw.get("pipeline", {}).pop("max_connections", None)
        raw.get("sweep", {}).get("quick", {}).pop("connections", None)
    try:
        return scenario_from_dict(raw, scenario.path)
    except ScenarioError as exc:
        key = (exc.key or "").removeprefix("workload.").split(".")[0].split("[")[0]
        flag = OVERRIDABLE.get(key)
        if flag and key in overrides:
            raise UsageError(f"{flag}: {exc.message}") from None
        raise


@dataclass
class SentRecord:
    scenario_name: str
    scenario_path: str
    scenario_toml: dict[str, Any]
    overrides: dict[str, Any]
    shard: Shard | None
    to: str
    sent: dict[int, int]  # connection index -> messages completely sent
    complete: bool  # every connection of the shard sent what it was meant to
    notes: list[str] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    version: str = field(default_factory=parbench_version)

    @classmethod
    def of(cls, scenario: Scenario, overrides: dict[str, Any], shard: Shard | None, to: str,
           connections: range | list[int], sent: np.ndarray, complete: bool, notes: list[str]) -> "SentRecord":
        """``scenario`` as loaded (before ``overrides``)."""
        return cls(scenario.name, str(scenario.path), scenario.raw, dict(overrides), shard, to,
                   {int(c): int(sent[c]) for c in connections}, complete, list(notes))

    def scenario(self, source: str = "sent file") -> Scenario:
        """The scenario as the sender ran it (its overrides applied)."""
        base = scenario_from_dict(copy.deepcopy(self.scenario_toml), self.scenario_path)
        try:
            return apply_overrides(base, self.overrides)
        except UsageError as exc:
            raise SentFileError(source, "workload_overrides", str(exc)) from None

    def to_json(self) -> dict[str, Any]:
        conns = sorted(self.sent)
        return {"schema": SCHEMA, "created": self.created, "parbench_version": self.version,
                "scenario": {"name": self.scenario_name, "path": self.scenario_path, "toml": self.scenario_toml},
                "workload_overrides": dict(self.overrides),
                "shard": self.shard.to_json() if self.shard else None, "to": self.to,
                "sent": {"connections": conns, "messages": [self.sent[c] for c in conns]},
                "complete": self.complete, "notes": list(self.notes)}

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n")
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SentRecord":
        path = str(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise SentFileError(path, None, f"cannot read: {exc.strerror or exc}") from None
        doc = parse_json(raw, path, SentFileError)

        def need(table: Any, key: str, kind: type | tuple, what: str, where: str = "") -> Any:
            name = f"{where}.{key}" if where else key
            if not isinstance(table, dict) or key not in table:
                raise SentFileError(path, name, f"missing; expected {what}")
            value = table[key]
            if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
                raise SentFileError(path, name, f"expected {what}, got {value!r:.40}")
            return value

        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            got = doc.get("schema") if isinstance(doc, dict) else doc
            raise SentFileError(path, "schema", f"expected {SCHEMA!r} (a file written by parbench send "
                                                f"--expect-out), got {got!r:.40}")
        scenario = need(doc, "scenario", dict, "an object")
        sent = need(doc, "sent", dict, "an object")
        conns = need(sent, "connections", list, "a list of connection indices", "sent")
        counts = need(sent, "messages", list, "a list of message counts", "sent")
        if len(conns) != len(counts) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                for v in (*conns, *counts)):
            raise SentFileError(path, "sent", "expected two lists of non-negative integers of the same length")
        shard = doc.get("shard")
        if shard is not None:
            shard = Shard(need(shard, "index", int, "an integer", "shard"),
                          need(shard, "count", int, "an integer", "shard"))
        overrides = need(doc, "workload_overrides", dict, "an object")
        unknown = sorted(set(overrides) - set(OVERRIDABLE))
        if unknown:
            raise SentFileError(path, f"workload_overrides.{unknown[0]}",
                                f"unknown; expected one of {', '.join(OVERRIDABLE)}")
        record = cls(scenario_name=need(scenario, "name", str, "a string", "scenario"),
                     scenario_path=str(scenario.get("path", "")),
                     scenario_toml=need(scenario, "toml", dict, "an object", "scenario"),
                     overrides=overrides, shard=shard, to=str(doc.get("to", "")),
                     sent=dict(zip(conns, counts)), complete=bool(doc.get("complete", False)),
                     notes=[str(n) for n in doc.get("notes", [])], created=str(doc.get("created", "")),
                     version=str(doc.get("parbench_version", "")))
        try:
            record.scenario(path)
        except ScenarioError as exc:
            raise SentFileError(path, "scenario.toml", str(exc)) from None
        return record


def merge(records: list[tuple[str, SentRecord]]) -> tuple[Scenario, np.ndarray, np.ndarray]:
    """Several sent files of one run (its shards) -> (the scenario as sent,
    messages sent per connection, which connections a file covers).  A
    UsageError when they come from different scenarios or flags, or two
    files claim one connection."""
    first_path, first = records[0]
    scenario = first.scenario(first_path)
    n_conn = scenario.workload.connections
    sent = np.zeros(n_conn, dtype=np.int64)
    covered = np.zeros(n_conn, dtype=bool)
    claimed_by: dict[int, str] = {}
    for path, record in records:
        if record.scenario_toml != first.scenario_toml or record.overrides != first.overrides:
            raise SentFileError(path, "scenario", f"differs from {first_path}'s (scenario or sender flags); "
                                                  "give the sent files of one run")
        for conn, count in record.sent.items():
            if conn >= n_conn:
                raise SentFileError(path, "sent.connections", f"connection {conn} does not exist "
                                                              f"(the workload has {n_conn})")
            if conn in claimed_by:
                raise SentFileError(path, "sent.connections", f"connection {conn} is also in {claimed_by[conn]}; "
                                                              "two senders sent the same connection")
            claimed_by[conn] = path
            sent[conn] = count
            covered[conn] = True
    return scenario, sent, covered
