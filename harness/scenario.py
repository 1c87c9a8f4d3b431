"""Scenario files (TOML) -> ``Scenario``, validated in full before anything runs.

Every key is documented in ``scenarios/README.md``.  A bad file raises
``ScenarioError``, whose ``str()`` is one line naming the file, the key path
and what was expected, e.g.::

    scenarios/x.toml: workload.connections: expected an integer >= 1, got 0
    scenarios/x.toml: workload.conections: unknown key; did you mean 'connections'?

Keys are either a list of names or a count; a count generates realistic,
distinct host names (``web-01``, ``db-eu-3.example.net``) deterministically
from the workload's seed.
"""
from __future__ import annotations

import difflib
import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from parbench.errors import InputFileError
from parbench.harness.targets.registry import ImplSpecError, parse_impls
from parbench.harness.wire import TRAILER_LEN, min_message_size
from parbench.reference.profiles import DEFAULT_PROFILE, PROFILES

MAX_PARTITIONS = 32  # AxoSyslog 4.17+ upper bound; syslog-ng's is 16
FORMATS = ("rfc3164", "rfc5424")
FRAMINGS = ("newline", "octet-counted")
DISTRIBUTIONS = ("uniform", "zipf", "weights", "hot-key")
ORDERINGS = ("per-key", "per-connection", "none")
SDATA_KEY_RE = re.compile(r"^\.SDATA\.([!-~]+)\.([!-~]+)$")
# Characters that would change how a syslog parser splits the header (or need
# escaping inside SDATA values), so a key name may not contain them.
KEY_NAME_RE = re.compile(r"^[A-Za-z0-9._@/+-]{1,64}$")
# Longest string value rendered into a config: with every character escaped
# (4 characters each) it still fits a config line (harness.render.MAX_LINE_CHARS).
MAX_CONFIG_STRING = 800


class ScenarioError(InputFileError):
    """A scenario file that cannot be run: ``FILE: KEY.PATH: what was expected``."""


@dataclass(frozen=True)
class Distribution:
    kind: str = "uniform"
    s: float | None = None
    weights: tuple[float, ...] | None = None
    hot_share: float | None = None

    def probabilities(self, n_keys: int) -> np.ndarray:
        """Probability of each key index 0..n_keys-1 (sums to 1)."""
        if n_keys <= 0:
            raise ValueError("n_keys must be >= 1")
        if self.kind == "uniform" or n_keys == 1:
            p = np.ones(n_keys)
        elif self.kind == "zipf":
            p = 1.0 / np.arange(1, n_keys + 1, dtype=float) ** float(self.s or 1.0)
        elif self.kind == "weights":
            w = np.asarray(self.weights, dtype=float)
            # A connection owning a subset of the keys uses the first n weights.
            p = w[:n_keys] if len(w) >= n_keys else np.resize(w, n_keys)
            if p.sum() <= 0:
                p = np.ones(n_keys)
        elif self.kind == "hot-key":
            share = float(self.hot_share if self.hot_share is not None else 0.5)
            p = np.full(n_keys, (1.0 - share) / (n_keys - 1))
            p[0] = share
        else:  # validated on load
            raise ValueError(f"unknown distribution {self.kind!r}")
        return p / p.sum()


@dataclass(frozen=True)
class Workload:
    connections: int = 1
    messages_per_connection: int | None = 10000
    duration_s: float | None = None
    rate_per_connection: float | None = None  # None = unlimited
    message_size: int = 256
    format: str = "rfc3164"
    framing: str = "newline"
    key_field: str = "HOST"
    keys: tuple[str, ...] = ("localhost",)
    distribution: Distribution = field(default_factory=Distribution)
    shared_keys: bool = True
    seed: int = 1


@dataclass(frozen=True)
class Pipeline:
    partition_key: str | None = None  # template text; None = round-robin
    batch_size: int | None = None  # None = the profile's default
    parallelize_fetch_limit: int | None = None  # None = the profile's default
    log_iw_size: int = 100000
    max_connections: int | None = None  # None = workload.connections
    log_fetch_limit: int = 10
    flow_control: bool = True
    cost_cpu_us: float = 0.0
    cost_latency_us: float = 0.0
    profile: str = DEFAULT_PROFILE
    # Worker threads of the implementation (reference: serve --workers); None =
    # its default (the number of CPUs).  A blocking per-batch latency only
    # overlaps across as many partitions as there are threads.
    workers: int | None = None

    def effective_max_connections(self, workload: Workload) -> int:
        return self.max_connections if self.max_connections is not None else workload.connections


@dataclass(frozen=True)
class QuickOverrides:
    messages_per_connection: int | None = None  # None = derived (see apply_quick)
    duration_s: float | None = None
    partitions: tuple[int, ...] | None = None
    connections: int | None = None


@dataclass(frozen=True)
class Sweep:
    partitions: tuple[int, ...] = (0, 1, 2, 4)
    repeats: int = 3
    warmup_s: float = 0.0
    implementations: tuple[str, ...] = ("reference",)
    quick: QuickOverrides = field(default_factory=QuickOverrides)


@dataclass(frozen=True)
class Expectation:
    """What a run must show: the anomalies (``harness.checks`` names) it prohibits."""

    ordering: str = "per-key"
    loss_allowed: bool = False

    @property
    def prohibited(self) -> tuple[str, ...]:
        # "per-key" is per (connection, key): parallelize() never ordered one
        # key across connections; per-connection order implies per-key order.
        names = ("duplicated", "unexpected", "malformed") if self.loss_allowed else (
            "lost", "duplicated", "unexpected", "malformed")
        if self.ordering in ("per-key", "per-connection"):
            names += ("nonmonotonic-per-key",)
        if self.ordering == "per-connection":
            names += ("nonmonotonic-per-connection",)
        return names


FAULT_KINDS = ("destination_down", "destination_slow", "connection_reset", "target_restart")
#: faults that act on the collector for a while (their windows may not overlap)
WINDOW_FAULTS = ("destination_down", "destination_slow")
MAX_FAULT_TIME_S = 3600


@dataclass(frozen=True)
class Fault:
    """One fault of ``[faults]``: ``kind`` from ``FAULT_KINDS``, at ``at_s``
    seconds after sending starts, for ``for_s`` seconds (window faults)."""

    kind: str
    at_s: float
    for_s: float = 0.0
    bytes_per_s: int | None = None  # destination_slow

    @property
    def end_s(self) -> float:
        return self.at_s + self.for_s

    def describe(self) -> str:
        if self.kind == "destination_slow":
            return f"destination slow ({self.bytes_per_s:,} B/s) at {self.at_s:g}s for {self.for_s:g}s"
        if self.kind == "destination_down":
            return f"destination down at {self.at_s:g}s for {self.for_s:g}s"
        return f"{self.kind.replace('_', ' ')} at {self.at_s:g}s"


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    description: str
    workload: Workload
    pipeline: Pipeline
    sweep: Sweep
    expect: Expectation
    raw: dict = field(compare=False, repr=False, default_factory=dict)
    faults: tuple[Fault, ...] = ()  # in time order
    #: ``[variants.NAME]``: the scenario with settings overridden, run as
    #: candidates of one interleaved sweep (``harness.candidates``)
    variants: tuple["Variant", ...] = ()

    def variant(self, name: str) -> "Variant | None":
        return next((v for v in self.variants if v.name == name), None)


@dataclass(frozen=True)
class Variant:
    """One ``[variants.NAME]`` table: dotted keys overriding the scenario's
    workload, pipeline or expect keys.  ``scenario`` is the whole scenario
    with them applied, validated like the file itself."""

    name: str
    description: str
    overrides: dict = field(compare=False)
    scenario: Scenario = field(compare=False, repr=False)


# ---------------------------------------------------------------- host names

_ROLES = ("web", "db", "api", "cache", "mq", "auth", "edge", "batch", "etl", "mail",
          "proxy", "lb", "search", "kafka", "redis", "ingest", "billing", "cdn")
_REGIONS = ("eu", "us", "ap", "sa", "af", "me")
_DOMAINS = ("example.net", "example.com", "corp.example.org", "internal.example")


def generate_host_names(count: int, seed: int) -> tuple[str, ...]:
    """``count`` distinct, realistic host names, the same for the same seed."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5EED])
    names: list[str] = []
    seen: set[str] = set()
    per_role: dict[str, int] = {}
    while len(names) < count:
        role = _ROLES[int(rng.integers(len(_ROLES)))]
        per_role[role] = per_role.get(role, 0) + 1
        n = per_role[role]
        style = int(rng.integers(4))
        if style == 0:
            name = f"{role}-{n:02d}"
        elif style == 1:
            name = f"{role}-{_REGIONS[int(rng.integers(len(_REGIONS)))]}-{n}.{_DOMAINS[int(rng.integers(len(_DOMAINS)))]}"
        elif style == 2:
            name = f"{role}{n:02d}.{_REGIONS[int(rng.integers(len(_REGIONS)))]}"
        else:
            name = f"{role}-{n:03d}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return tuple(names)


# ---------------------------------------------------------------- validation helpers

def _type_name(v: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string",
            list: "array", dict: "table"}.get(type(v), type(v).__name__)


def _show(v: Any) -> str:
    text = repr(v) if not isinstance(v, dict) else "a table"
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{text} ({_type_name(v)})"


_KEYS: dict[str, tuple[str, ...]] = {
    "": ("name", "description", "workload", "pipeline", "sweep", "expect", "faults", "variants"),
    "workload": ("connections", "messages_per_connection", "duration_s", "rate_per_connection", "message_size",
                 "format", "framing", "key_field", "keys", "distribution", "shared_keys", "seed"),
    "distribution": ("kind", "s", "weights", "hot_share"),
    "pipeline": ("partition_key", "batch_size", "parallelize_fetch_limit", "log_iw_size", "max_connections",
                 "log_fetch_limit", "flow_control", "cost_cpu_us", "cost_latency_us", "profile", "workers"),
    "sweep": ("partitions", "repeats", "warmup_s", "implementations", "quick"),
    "quick": ("messages_per_connection", "duration_s", "partitions", "connections"),
    "expect": ("ordering", "loss_allowed"),
    "faults": ("destination_down", "destination_slow", "connection_reset", "target_restart"),
    "destination_down": ("at_s", "for_s"),
    "destination_slow": ("at_s", "for_s", "bytes_per_s"),
    "connection_reset": ("at_s",),
    "target_restart": ("at_s",),
}


class _Reader:
    """Reads one table, remembering which keys were consumed so the rest can be
    reported as unknown (with the nearest valid key)."""

    def __init__(self, file: str, path: str, table: Any, kind: str | None = None):
        self.file = file
        self.path = path
        if not isinstance(table, dict):
            raise ScenarioError(file, path or "(top level)", f"expected a table, got {_show(table)}")
        self.table = table
        # unknown keys first: a misspelt key explains the errors it would cause
        self.known: list[str] = list(_KEYS[kind if kind is not None else
                                           path.replace("[", ".").split(".")[-1] if path else ""])
        for k in table:
            if k not in self.known:
                hint = difflib.get_close_matches(k, self.known, n=1, cutoff=0.6)
                extra = f"; did you mean {hint[0]!r}?" if hint else f"; valid keys: {', '.join(self.known)}"
                raise self.err(k, f"unknown key{extra}")

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def err(self, name: str, message: str) -> ScenarioError:
        return ScenarioError(self.file, self.key(name), message)

    def get(self, name: str, default: Any = None, *, required: bool = False) -> Any:
        assert name in self.known, name
        if name not in self.table:
            if required:
                raise self.err(name, "missing required key")
            return default
        return self.table[name]

    def integer(self, name: str, default: Any = None, *, lo: int | None = None, hi: int | None = None,
                required: bool = False) -> Any:
        v = self.get(name, default, required=required)
        if v is None or (v is default and name not in self.table):
            return v
        if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.err(name, f"expected an integer{_range(lo, hi)}, got {_show(v)}")
        return v

    def number(self, name: str, default: Any = None, *, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, required: bool = False) -> Any:
        v = self.get(name, default, required=required)
        if v is None or (v is default and name not in self.table):
            return v
        bad = isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
        if not bad:
            bad = (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and v > hi)
        if bad:
            rng = _range(lo, hi, lo_open)
            raise self.err(name, f"expected a number{rng}, got {_show(v)}")
        return float(v)

    def boolean(self, name: str, default: bool) -> bool:
        v = self.get(name, default)
        if not isinstance(v, bool):
            raise self.err(name, f"expected true or false, got {_show(v)}")
        return v

    def string(self, name: str, default: Any = None, *, choices: tuple[str, ...] | None = None,
               required: bool = False) -> Any:
        v = self.get(name, default, required=required)
        if v is None:
            return v
        if not isinstance(v, str):
            what = f"one of {_choices(choices)}" if choices else "a string"
            raise self.err(name, f"expected {what}, got {_show(v)}")
        if choices and v not in choices:
            hint = difflib.get_close_matches(v, choices, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise self.err(name, f"expected one of {_choices(choices)}, got {v!r}{extra}")
        return v

    def sub(self, name: str) -> "_Reader":
        v = self.get(name, {})
        return _Reader(self.file, self.key(name), v)


def _range(lo: Any, hi: Any, lo_open: bool = False) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo}, {hi}]"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f" <= {hi}"
    return ""


def _choices(choices: tuple[str, ...] | None) -> str:
    return ", ".join(repr(c) for c in choices or ())


# ---------------------------------------------------------------- loading

def shipped_scenarios() -> dict[str, Path]:
    """Scenario files shipped with parbench (package data), by name."""
    from importlib.resources import files

    folder = files("parbench.scenarios")
    return {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".toml")}


def resolve_scenario(spec: str | Path) -> Path:
    """A scenario file path, or the name of a shipped scenario
    (``chatty-single-sender``, with or without ``.toml``), as a path.
    A file that exists wins over a shipped name."""
    path = Path(spec)
    if path.exists() or len(path.parts) != 1:
        return path
    shipped = shipped_scenarios()
    name = path.stem if path.suffix == ".toml" else path.name
    if name in shipped:
        return shipped[name]
    hint = difflib.get_close_matches(name, shipped, n=1, cutoff=0.6)
    extra = f"; did you mean {hint[0]!r}?" if hint else f"; shipped scenarios: {', '.join(sorted(shipped))}"
    raise ScenarioError(str(spec), None, f"no such file, and no shipped scenario of that name{extra}")


def load_scenario(path: str | Path) -> Scenario:
    path = resolve_scenario(path)
    file = str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ScenarioError(file, None, f"cannot read: {e.strerror or e}") from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ScenarioError(file, None, f"expected UTF-8 text, got an invalid byte at offset {e.start}") from None
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(file, None, f"invalid TOML: {e}") from None
    return scenario_from_dict(raw, file)


def scenario_from_dict(raw: dict, file: str = "<scenario>") -> Scenario:
    top = _Reader(file, "", raw)
    name = top.string("name", Path(file).stem if file != "<scenario>" else "scenario")
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,80}", name):
        raise top.err("name", f"expected letters, digits, '.', '_' or '-' (it names the report directory), got {name!r}")
    description = top.string("description", "")
    workload = _workload(top.sub("workload"))
    pipeline = _pipeline(top.sub("pipeline"), workload)
    sweep = _sweep(top.sub("sweep"), workload)
    expect_r = top.sub("expect")
    # round-robin keeps no order, so "none" is its only sensible default
    expect = Expectation(
        ordering=expect_r.string("ordering", "per-key" if pipeline.partition_key else "none", choices=ORDERINGS),
        loss_allowed=expect_r.boolean("loss_allowed", False),
    )
    if expect.ordering != "none" and pipeline.partition_key is None and any(p > 1 for p in sweep.partitions):
        raise ScenarioError(file, "expect.ordering",
                            "expected 'none' for a round-robin pipeline (no pipeline.partition_key) with more than "
                            f"one partition: round-robin keeps no order, got {expect.ordering!r}")
    faults = _faults(top.sub("faults"))
    scenario = Scenario(name=name, path=file, description=description, workload=workload, pipeline=pipeline,
                        sweep=sweep, expect=expect, raw=raw, faults=faults)
    if "variants" in raw:
        scenario = replace(scenario, variants=_variants(file, raw))
    return scenario


#: what a variant may override: the settings of one run.  The sweep
#: (partitions, repeats, implementations) is shared, so that the runs of
#: every variant pair up slot by slot.
VARIANT_SECTIONS = ("workload", "pipeline", "expect")
#: the variant a sweep runs the scenario as written under, unless the file
#: defines a variant of that name itself
BASE_VARIANT = "base"
_VARIANT_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,31}")


def _variants(file: str, raw: dict) -> tuple[Variant, ...]:
    table = raw["variants"]
    if not isinstance(table, dict) or not table:
        raise ScenarioError(file, "variants", f"expected tables such as [variants.head] with keys to override, "
                                              f"got {_show(table)}")
    base = {k: v for k, v in raw.items() if k != "variants"}
    out = []
    for name, body in table.items():
        where = f"variants.{name}"
        if not _VARIANT_NAME_RE.fullmatch(name):
            raise ScenarioError(file, where, "expected a name that is a letter, then letters, digits, '_', '.' "
                                             "or '-' (at most 32): it labels the variant's runs")
        if not isinstance(body, dict):
            raise ScenarioError(file, where, f"expected a table of keys to override, e.g. "
                                             f"pipeline.log_fetch_limit = 1000, got {_show(body)}")
        known = ("description", *VARIANT_SECTIONS)
        for key, value in body.items():
            if key in ("sweep", "name", "variants"):
                raise ScenarioError(file, f"{where}.{key}", f"a variant cannot override it (the sweep and the "
                                                            f"name are shared by every variant, so their runs "
                                                            f"pair up); expected {', '.join(VARIANT_SECTIONS)} keys")
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                extra = f"; did you mean {hint[0]!r}?" if hint else f"; expected one of {', '.join(known)}"
                raise ScenarioError(file, f"{where}.{key}", f"unknown key{extra}")
            if key != "description" and not isinstance(value, dict):
                raise ScenarioError(file, f"{where}.{key}", f"expected keys under it (e.g. {key}.KEY = VALUE), "
                                                            f"got {_show(value)}")
        description = body.get("description", "")
        if not isinstance(description, str):
            raise ScenarioError(file, f"{where}.description", f"expected a string, got {_show(description)}")
        overrides = {k: v for k, v in body.items() if k != "description"}
        merged = _merged(base, overrides)
        try:
            scenario = scenario_from_dict(merged, file)
        except ScenarioError as exc:
            raise _variant_error(exc, where, overrides) from None
        out.append(Variant(name, description, overrides, scenario))
    return tuple(out)


def _merged(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` applied key by key: tables merge, any
    other value replaces."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _overridden(overrides: dict, key: str) -> bool:
    node: Any = overrides
    for part in re.split(r"[.\[]", key):
        part = part.rstrip("]")
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
        if not isinstance(node, dict):
            return True
    return True


def _variant_error(exc: ScenarioError, where: str, overrides: dict) -> ScenarioError:
    """The error of a variant's merged scenario, named where the file says it:
    at the overriding key, or at the variant when a key it left alone no
    longer fits with what it changed."""
    if exc.key and _overridden(overrides, exc.key):
        return ScenarioError(exc.file, f"{where}.{exc.key}", exc.message)
    what = f"{exc.key}: {exc.message}" if exc.key else exc.message
    return ScenarioError(exc.file, where, f"with this variant's overrides, {what}")


def _faults(r: _Reader) -> tuple[Fault, ...]:
    found: list[tuple[Fault, str]] = []
    for kind in FAULT_KINDS:
        value = r.get(kind, None)
        if value is None:
            continue
        entries = value if isinstance(value, list) else [value]
        if not entries or not all(isinstance(e, dict) for e in entries):
            raise r.err(kind, f"expected a table or an array of tables (e.g. {{ at_s = 2.0 }}), got {_show(value)}")
        for i, entry in enumerate(entries):
            path = f"{r.key(kind)}[{i}]" if isinstance(value, list) else r.key(kind)
            e = _Reader(r.file, path, entry, kind=kind)
            at = e.number("at_s", required=True, lo=0, hi=MAX_FAULT_TIME_S)
            duration = e.number("for_s", required=True, lo=0, lo_open=True, hi=MAX_FAULT_TIME_S) \
                if kind in WINDOW_FAULTS else 0.0
            rate = e.integer("bytes_per_s", required=True, lo=1, hi=10**10) if kind == "destination_slow" else None
            found.append((Fault(kind, float(at), float(duration), rate), path))
    windows = sorted(((f, path) for f, path in found if f.kind in WINDOW_FAULTS), key=lambda fp: fp[0].at_s)
    for (a, _), (b, path) in zip(windows, windows[1:]):
        if b.at_s < a.end_s:
            raise ScenarioError(r.file, path, f"expected a window after the one ending at {a.end_s:g}s "
                                              f"({a.describe()}): the destination is down or slow for one window at a time, "
                                              f"got one starting at {b.at_s:g}s")
    return tuple(sorted((f for f, _ in found), key=lambda f: (f.at_s, FAULT_KINDS.index(f.kind))))


def _workload(r: _Reader) -> Workload:
    connections = r.integer("connections", 1, lo=1, hi=100000)
    mpc = r.integer("messages_per_connection", None, lo=1, hi=10**9)
    duration = r.number("duration_s", None, lo=0, lo_open=True, hi=86400)
    if (mpc is None) == (duration is None):
        raise r.err("messages_per_connection",
                    "expected exactly one of workload.messages_per_connection or workload.duration_s, got "
                    + ("both" if mpc is not None else "neither"))
    rate = r.number("rate_per_connection", None, lo=0, hi=10**9)
    if rate == 0:
        rate = None  # 0 documented as unlimited
    size = r.integer("message_size", 256, lo=1, hi=1 << 20)
    fmt = r.string("format", "rfc3164", choices=FORMATS)
    framing = r.string("framing", "newline", choices=FRAMINGS)
    key_field = r.string("key_field", "HOST")
    if key_field not in ("HOST", "PROGRAM"):
        if not SDATA_KEY_RE.match(key_field):
            raise r.err("key_field", f"expected 'HOST', 'PROGRAM' or '.SDATA.<id>.<name>', got {key_field!r}")
        if fmt != "rfc5424":
            raise r.err("key_field", f"expected 'HOST' or 'PROGRAM' with format 'rfc3164' (SDATA needs 'rfc5424'), got {key_field!r}")
    seed = r.integer("seed", 1, lo=0, hi=2**63 - 1)
    keys_v = r.get("keys", 1)
    if isinstance(keys_v, bool) or not isinstance(keys_v, (int, list)):
        raise r.err("keys", f"expected a key count (integer >= 1) or a list of key names, got {_show(keys_v)}")
    if isinstance(keys_v, int):
        if not 1 <= keys_v <= 1_000_000:
            raise r.err("keys", f"expected a key count in [1, 1000000], got {keys_v}")
        keys = generate_host_names(keys_v, seed)
    else:
        if not keys_v:
            raise r.err("keys", "expected a non-empty list of key names, got []")
        for i, k in enumerate(keys_v):
            if not isinstance(k, str) or not KEY_NAME_RE.match(k):
                raise ScenarioError(r.file, f"{r.key('keys')}[{i}]",
                                    f"expected a name of 1-64 characters from A-Z a-z 0-9 . _ @ / + -, got {_show(k)}")
        dup = [k for k in keys_v if keys_v.count(k) > 1]
        if dup:
            raise r.err("keys", f"expected distinct key names, got {dup[0]!r} more than once")
        keys = tuple(keys_v)
    shared = r.boolean("shared_keys", True)
    if not shared and len(keys) < connections:
        raise r.err("shared_keys", f"expected at least one key per connection when false "
                                   f"({connections} connections), got {len(keys)} keys")
    dist = _distribution(r, len(keys) if shared else -(-len(keys) // connections))
    wl = Workload(connections=connections, messages_per_connection=mpc, duration_s=duration,
                  rate_per_connection=rate, message_size=size, format=fmt, framing=framing,
                  key_field=key_field, keys=keys, distribution=dist, shared_keys=shared, seed=seed)
    need = min_message_size(fmt, key_field, keys)
    if size < need:
        raise r.err("message_size", f"expected >= {need} for this format, key field and key set "
                                    f"(header + {TRAILER_LEN}-byte trailer), got {size}")
    return wl


def _distribution(parent: _Reader, n_keys: int) -> Distribution:
    v = parent.get("distribution", "uniform")
    if isinstance(v, str):
        kind = parent.string("distribution", "uniform", choices=DISTRIBUTIONS)
        if kind in ("weights",):
            raise parent.err("distribution", "expected a table for 'weights' (kind and weights), got a string")
        return Distribution(kind=kind, s=1.0 if kind == "zipf" else None, hot_share=0.5 if kind == "hot-key" else None)
    r = parent.sub("distribution")
    kind = r.string("kind", required=True, choices=DISTRIBUTIONS)
    s = r.number("s", None, lo=0, lo_open=True, hi=100)
    weights_v = r.get("weights", None)
    hot = r.number("hot_share", None, lo=0, lo_open=True, hi=1)
    if kind != "zipf" and s is not None:
        raise r.err("s", f"expected no 's' unless kind = 'zipf', got kind {kind!r}")
    if kind != "hot-key" and hot is not None:
        raise r.err("hot_share", f"expected no 'hot_share' unless kind = 'hot-key', got kind {kind!r}")
    if kind != "weights" and weights_v is not None:
        raise r.err("weights", f"expected no 'weights' unless kind = 'weights', got kind {kind!r}")
    weights = None
    if kind == "zipf" and s is None:
        raise r.err("s", "missing required key (the zipf exponent, e.g. 1.2)")
    if kind == "hot-key":
        hot = 0.5 if hot is None else hot
    if kind == "weights":
        if weights_v is None:
            raise r.err("weights", "missing required key (one non-negative weight per key)")
        if not isinstance(weights_v, list) or not all(
                isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0 for w in weights_v):
            raise r.err("weights", f"expected a list of non-negative numbers, got {_show(weights_v)}")
        if len(weights_v) != n_keys:
            raise r.err("weights", f"expected {n_keys} weights (one per key), got {len(weights_v)}")
        if sum(weights_v) <= 0:
            raise r.err("weights", "expected at least one weight > 0, got all zero")
        weights = tuple(float(w) for w in weights_v)
    return Distribution(kind=kind, s=s, weights=weights, hot_share=hot)


def _pipeline(r: _Reader, wl: Workload) -> Pipeline:
    pk = r.string("partition_key", None)
    if pk is not None and not pk.strip():
        raise r.err("partition_key", "expected a template such as '$HOST' (omit the key for round-robin), got ''")
    if pk is not None and "\0" in pk:
        raise r.err("partition_key", "expected a template without NUL characters (no config string can hold one)")
    if pk is not None and len(pk) > MAX_CONFIG_STRING:
        raise r.err("partition_key", f"expected a template of at most {MAX_CONFIG_STRING} characters, got {len(pk)}")
    p = Pipeline(
        partition_key=pk,
        batch_size=r.integer("batch_size", None, lo=0, hi=10**7),
        parallelize_fetch_limit=r.integer("parallelize_fetch_limit", None, lo=1, hi=10**7),
        log_iw_size=r.integer("log_iw_size", 100000, lo=1, hi=10**9),
        max_connections=r.integer("max_connections", None, lo=1, hi=10**6),
        log_fetch_limit=r.integer("log_fetch_limit", 10, lo=1, hi=10**7),
        flow_control=r.boolean("flow_control", True),
        cost_cpu_us=r.number("cost_cpu_us", 0.0, lo=0, hi=1e7),
        cost_latency_us=r.number("cost_latency_us", 0.0, lo=0, hi=1e8),
        profile=r.string("profile", DEFAULT_PROFILE, choices=tuple(sorted(PROFILES))),
        workers=r.integer("workers", None, lo=1, hi=256),
    )
    if p.max_connections is not None and p.max_connections < wl.connections:
        raise r.err("max_connections", f"expected >= workload.connections ({wl.connections}), got {p.max_connections}")
    return p


def _partitions(r: _Reader, name: str, default: Any) -> Any:
    v = r.get(name, default)
    if v is None:
        return None
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise r.err(name, f"expected a non-empty list of partition counts, got {_show(v)}")
    for i, x in enumerate(v):
        if not 0 <= x <= MAX_PARTITIONS:
            raise ScenarioError(r.file, f"{r.key(name)}[{i}]",
                                f"expected a partition count in [0, {MAX_PARTITIONS}] (0 = no parallelize()), got {x}")
    if len(set(v)) != len(v):
        raise r.err(name, f"expected distinct partition counts, got {v}")
    return tuple(v)


def _sweep(r: _Reader, wl: Workload) -> Sweep:
    partitions = _partitions(r, "partitions", [0, 1, 2, 4])
    repeats = r.integer("repeats", 3, lo=1, hi=1000)
    warmup = r.number("warmup_s", 0.0, lo=0, hi=3600)
    impls = r.get("implementations", ["reference"])
    if not isinstance(impls, list) or not impls or not all(isinstance(x, str) and x.strip() for x in impls):
        raise r.err("implementations", f"expected a non-empty list of implementation names, got {_show(impls)}")
    try:
        parse_impls(impls)
    except ImplSpecError as exc:
        raise ScenarioError(r.file, f"{r.key('implementations')}[{exc.index}]", str(exc)) from None
    q = r.sub("quick")
    quick = QuickOverrides(
        messages_per_connection=q.integer("messages_per_connection", None, lo=1, hi=10**9),
        duration_s=q.number("duration_s", None, lo=0, lo_open=True, hi=86400),
        partitions=_partitions(q, "partitions", None),
        connections=q.integer("connections", None, lo=1, hi=wl.connections),
    )
    if warmup and wl.duration_s is not None and warmup >= wl.duration_s:
        raise r.err("warmup_s", f"expected less than workload.duration_s ({wl.duration_s}), got {warmup}")
    return Sweep(partitions=partitions, repeats=repeats, warmup_s=warmup, implementations=tuple(impls), quick=quick)


QUICK_TOTAL_MESSAGES = 20000


def apply_quick(s: Scenario) -> Scenario:
    """The --quick variant: a few thousand messages, at most two partition counts
    (the smallest and the largest, unless [sweep.quick] says otherwise), one
    repeat, no warm-up, so each scenario runs end to end in seconds."""
    q = s.sweep.quick
    wl = s.workload
    conns = q.connections or wl.connections
    if s.faults and not (q.messages_per_connection or q.duration_s or q.connections):
        # A fault acts on the messages in flight at its time: the workload
        # keeps its length (the timeline), only the sweep shrinks.
        parts = q.partitions or tuple(sorted({min(s.sweep.partitions), max(s.sweep.partitions)}))
        return replace(s, sweep=replace(s.sweep, partitions=parts, repeats=1, warmup_s=0.0))
    if q.duration_s is not None:
        wl = replace(wl, connections=conns, duration_s=q.duration_s, messages_per_connection=None)
    else:
        mpc = q.messages_per_connection or max(50, QUICK_TOTAL_MESSAGES // conns)
        if wl.messages_per_connection is not None:
            mpc = min(mpc, wl.messages_per_connection)
        if wl.rate_per_connection:  # keep a rate-limited run short too
            mpc = min(mpc, max(1, int(wl.rate_per_connection * 2)))
        wl = replace(wl, connections=conns, messages_per_connection=mpc, duration_s=None)
    if not wl.shared_keys and len(wl.keys) < conns:
        wl = replace(wl, shared_keys=True)
    parts = q.partitions or tuple(sorted({min(s.sweep.partitions), max(s.sweep.partitions)}))
    sweep = replace(s.sweep, partitions=parts, repeats=1, warmup_s=0.0)
    pipe = s.pipeline
    if pipe.max_connections is not None and pipe.max_connections < conns:
        pipe = replace(pipe, max_connections=conns)
    variants = tuple(replace(v, scenario=apply_quick(v.scenario)) for v in s.variants)
    return replace(s, workload=wl, sweep=sweep, pipeline=pipe, variants=variants)
