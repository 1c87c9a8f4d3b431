"""The one registry of implementation kinds, and everything that reads an
``--impl`` spec.

Each kind registers once (``register(KIND)``); the built-in kinds are the
``KIND`` of each module in ``BUILTIN_KIND_MODULES``, loaded on first use.
Everybody else asks here: the scenario validator (``parse_impls``), the
runner (``get_target``, ``kind_of``), the report (``impl_label``), the
``--impl`` help (``impl_help``), ``parbench doctor`` and ``parbench install``
(``kinds``).
"""
from __future__ import annotations

import difflib
import importlib
from contextlib import contextmanager
from typing import Iterable, Iterator

from parbench.harness.targets.base import Target
from parbench.harness.targets.kind import (
    KIND_NAME_RE,
    LABEL_RE,
    BadArgument,
    ImplSpec,
    ImplSpecError,
    TargetKind,
)

#: modules whose ``KIND`` is registered before any lookup
BUILTIN_KIND_MODULES = (
    "parbench.harness.targets.reference",
    "parbench.harness.syslog_ng.target",
    "parbench.harness.syslog_ng.axosyslog",
    "parbench.harness.targets.command",
)
#: longest label a report shows before cutting it
LABEL_WIDTH = 48

_kinds: dict[str, TargetKind] = {}
_builtins_loaded = False


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    try:
        for module in BUILTIN_KIND_MODULES:
            kind = importlib.import_module(module).KIND
            _kinds.setdefault(kind.name, kind)
    except BaseException:
        _builtins_loaded = False
        raise


def register(kind: TargetKind) -> TargetKind:
    """Make ``kind`` known to every part of parbench; ValueError when its
    name is malformed or taken."""
    _load_builtins()
    if not KIND_NAME_RE.fullmatch(getattr(kind, "name", "") or ""):
        raise ValueError(f"implementation kind name {getattr(kind, 'name', None)!r}: expected lowercase "
                         "words joined by '-' (e.g. 'my-relay')")
    if kind.name in _kinds:
        raise ValueError(f"implementation kind {kind.name!r} is already registered")
    _kinds[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _load_builtins()
    _kinds.pop(name, None)


@contextmanager
def registered(kind: TargetKind) -> Iterator[TargetKind]:
    """``kind`` registered for the duration of a ``with`` block (tests)."""
    register(kind)
    try:
        yield kind
    finally:
        unregister(kind.name)


def kinds() -> list[TargetKind]:
    """Every registered kind, built-ins first, in registration order."""
    _load_builtins()
    return list(_kinds.values())


def _expected() -> str:
    syntaxes = [kind.syntax for kind in kinds()]
    listed = ", ".join(syntaxes[:-1]) + f" or {syntaxes[-1]}" if len(syntaxes) > 1 else syntaxes[0]
    return f"{listed}, optionally as NAME=SPEC"


def parse_impl(text: str | ImplSpec) -> ImplSpec:
    """``[NAME=]KIND[:ARG]`` -> ImplSpec; ImplSpecError (one line, "expected
    ..., got ...", with a suggestion for a misspelt KIND)."""
    if isinstance(text, ImplSpec):
        return text
    if not isinstance(text, str):
        raise ImplSpecError(f"expected an implementation spec ({_expected()}), got {text!r}")
    whole = text.strip()
    name = None
    label, sep, rest = whole.partition("=")
    if sep and LABEL_RE.fullmatch(label):
        name, body = label, rest.strip()
    else:
        body = whole
    kind_name, colon, argument = body.partition(":")
    kind = get_kind(kind_name.strip())
    if kind is None:
        close = difflib.get_close_matches(kind_name.strip(), [k.name for k in kinds()], n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ImplSpecError(f"expected {_expected()}, got {text!r}{hint}")
    try:
        argument = kind.check_argument(argument if colon else None)
    except BadArgument as exc:
        raise ImplSpecError(f"expected {exc.expected}, got {text!r}"
                            + (f" ({exc.detail})" if exc.detail else "")) from None
    return ImplSpec(kind=kind.name, argument=argument, name=name)


def parse_impls(texts: Iterable[str | ImplSpec]) -> list[ImplSpec]:
    """Every spec of a sweep; ImplSpecError with ``index`` set for the first
    bad one, or for one whose label another spec already has (their runs
    could not be told apart in a report)."""
    specs: list[ImplSpec] = []
    seen: dict[str, int] = {}
    for index, text in enumerate(texts):
        try:
            spec = parse_impl(text)
        except ImplSpecError as exc:
            raise ImplSpecError(str(exc), index) from None
        label = full_label(spec)
        if label in seen:
            raise ImplSpecError(f"expected implementations a report can tell apart (give one a NAME= label), "
                                f"got {label!r} twice (entries {seen[label]} and {index})", index)
        seen[label] = index
        specs.append(spec)
    return specs


def get_kind(name: str) -> TargetKind | None:
    _load_builtins()
    return _kinds.get(name)


def kind_of(spec: str | ImplSpec) -> TargetKind:
    """The kind of a spec; ImplSpecError when it names none."""
    return _kinds[parse_impl(spec).kind]


def get_target(spec: str | ImplSpec, *, profile: str | None = None) -> Target:
    """A fresh target for one run of ``spec``.  ImplSpecError for a bad
    spec; TargetUnavailable when the implementation does not run here."""
    parsed = parse_impl(spec)
    return _kinds[parsed.kind].make(parsed, profile=profile)


def is_calibration(impl: str | ImplSpec) -> bool:
    """Whether ``impl`` (a spec as recorded) is of a calibration kind
    (``TargetKind.calibration``): a cross-sweep compare uses its runs to
    estimate the machine's drift.  False for a spec no kind reads."""
    try:
        return bool(_kinds[parse_impl(impl).kind].calibration)
    except ImplSpecError:
        return False


def full_label(spec: ImplSpec) -> str:
    """The NAME= label, else the kind's label of the spec (never cut)."""
    return spec.name or _kinds[spec.kind].label(spec)


def spec_label(impl: str) -> str:
    """The whole label of ``impl`` (a spec as recorded in results.json);
    a spec no registered kind reads (an older file, a kind not loaded) is
    its own label, and a ``NAME=`` prefix still names it."""
    try:
        return full_label(parse_impl(impl))
    except ImplSpecError:
        name, sep, _ = str(impl).strip().partition("=")
        return name if sep and LABEL_RE.fullmatch(name) else str(impl).strip()


def impl_label(impl: str) -> str:
    """What a report or the progress line calls ``impl`` (a spec as recorded
    in results.json); a spec no registered kind reads (an older results
    file) is shown as it is.  At most ``LABEL_WIDTH`` characters."""
    return shorten_label(spec_label(impl))


def shorten_label(label: str) -> str:
    """A label cut to ``LABEL_WIDTH`` characters for a report or a progress line."""
    return label if len(label) <= LABEL_WIDTH else label[:LABEL_WIDTH - 3] + "..."


def impl_help() -> str:
    """One line per kind for ``--impl`` help."""
    return "; ".join(f"{kind.syntax}: {kind.summary}" for kind in kinds())
