"""What a kind of implementation declares to the harness, and the
``--impl`` spec that names one.

A spec is ``[NAME=]KIND[:ARG]``: ``reference``, ``syslog-ng:/opt/sng``,
``command:python3 relay.py --listen {in_port} --forward {out_port}``,
``base=syslog-ng:/opt/a``.  KIND picks the ``TargetKind``; ARG is the kind's
own (a path, an argv template, a version); NAME is a label for reports, so
two specs of one kind can be told apart (``base=...`` / ``head=...``).

A ``TargetKind`` is registered once in ``harness.targets.registry``; the
scenario validator, the runner, the report, ``parbench run --impl`` and
``parbench doctor`` / ``parbench install`` all ask it through the registry.
"""
from __future__ import annotations

import abc
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from parbench.errors import UsageError

if TYPE_CHECKING:
    import click

    from parbench.harness.targets.base import Target

#: a NAME= label: what a report shows instead of the spec
LABEL_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,31}")
#: a KIND: lowercase words joined by '-' (no ':' or '=', which delimit ARG and NAME)
KIND_NAME_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


class ImplSpecError(UsageError):
    """An ``--impl`` / ``sweep.implementations`` value that names no
    implementation, or names one wrongly; str() is "expected ..., got ...".
    ``index``: its position when a list of specs was checked."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


class BadArgument(ValueError):
    """Raised by ``TargetKind.check_argument``: what ARG should have been
    (``expected``, e.g. "command:ARGV with {in_port} and {out_port} in ARGV")
    and, optionally, what is wrong with the one given (``detail``)."""

    def __init__(self, expected: str, detail: str = ""):
        super().__init__(expected + (f" ({detail})" if detail else ""))
        self.expected = expected
        self.detail = detail


@dataclass(frozen=True)
class ImplSpec:
    """One parsed implementation spec."""

    kind: str
    argument: str | None = None  # ARG after "KIND:", as the kind normalized it; None = none given
    name: str | None = None  # the NAME= label, when given

    @property
    def body(self) -> str:
        """The spec without its label: ``KIND`` or ``KIND:ARG``."""
        return self.kind if self.argument is None else f"{self.kind}:{self.argument}"

    @property
    def text(self) -> str:
        """The whole spec, as it would be typed: ``[NAME=]KIND[:ARG]``."""
        return f"{self.name}={self.body}" if self.name else self.body

    def __str__(self) -> str:
        return self.text


@dataclass
class Availability:
    """Whether a kind is runnable on this machine, for ``parbench doctor``."""

    runnable: bool
    summary: str = ""  # one line: what was found (a version, a path) or why not
    details: list[str] = field(default_factory=list)  # further lines: tools found, how to fix


class TargetKind(abc.ABC):
    """One kind of implementation: how its spec reads, how it is labelled and
    helped, how a target is made from a spec, whether it runs here."""

    #: KIND in ``--impl [NAME=]KIND[:ARG]``
    name: ClassVar[str]
    #: the spec as help and errors show it, e.g. ``syslog-ng[:PATH]``
    syntax: ClassVar[str]
    #: one line: what it runs (``--impl`` help, ``parbench doctor``)
    summary: ClassVar[str]
    #: whether KIND takes ``:ARG``: "none", "optional" or "required"
    argument: ClassVar[str] = "none"
    #: its targets run the reference parallelizer under a version profile;
    #: the runner gives them the sweep's profile and records it per run
    runs_reference_profile: ClassVar[bool] = False
    #: its targets answer ``Target.reference_profile()`` (they model a
    #: version of syslog-ng); the runner asks them when choosing the profile
    gives_reference_profile: ClassVar[bool] = False
    #: it keeps what it wrote to a destination connection until the peer's
    #: TCP acknowledged it, and sends that again after a break: a broken
    #: connection costs it nothing (``harness.faults.promise``)
    keeps_unacknowledged: ClassVar[bool] = False
    #: its targets implement ``Target.start_config``: they run a
    #: configuration text in syslog-ng's language as it is (``parbench diff``)
    runs_config_text: ClassVar[bool] = False
    #: it does the same work whatever is being changed (a relay that only
    #: forwards): a cross-sweep ``parbench compare`` takes its runs in both
    #: files as the measure of the machine's drift between the sweeps
    calibration: ClassVar[bool] = False

    def check_argument(self, argument: str | None) -> str | None:
        """ARG as typed after ``KIND:`` (None: no ``:``) -> the argument to
        keep.  Raise BadArgument saying what was expected.  The default
        checks presence per ``argument`` and strips blanks."""
        if argument is not None:
            argument = argument.strip()
        if self.argument == "none" and argument is not None:
            raise BadArgument(self.syntax, f"{self.name} takes no ':' argument")
        if self.argument == "required" and not argument:
            raise BadArgument(self.syntax, f"nothing after '{self.name}:'" if argument == "" else "")
        if self.argument == "optional" and argument == "":
            raise BadArgument(self.syntax, f"nothing after '{self.name}:'")
        return argument

    def names_a_program(self, spec: ImplSpec) -> bool:
        """Whether ``spec`` itself names a program to run (a command line, a
        binary path).  ``parbench run`` takes such a spec from ``--impl``,
        and from a scenario file's ``sweep.implementations`` only with
        ``--trust-scenario``: a scenario file alone never runs a program of
        its choosing."""
        return False

    def label(self, spec: ImplSpec) -> str:
        """How reports name a spec of this kind that has no NAME= label."""
        return spec.body

    @abc.abstractmethod
    def make(self, spec: ImplSpec, *, profile: str | None = None) -> "Target":
        """A fresh target for one run of ``spec``.  ``profile``: the sweep's
        reference version profile (used by kinds that run the reference).
        Raise TargetUnavailable (one line) when it cannot run here, so a
        command line naming it fails before any run starts."""

    def availability(self, spec: ImplSpec | None = None) -> Availability:
        """Whether ``spec`` (None: the kind as a bare ``KIND``) runs here."""
        return Availability(True, self.summary)

    def install_command(self) -> "click.Command | None":
        """The ``parbench install KIND`` command, for kinds that can install
        themselves privately (into the data home); None otherwise."""
        return None
