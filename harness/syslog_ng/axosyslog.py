"""AxoSyslog as an implementation under test: ``--impl axosyslog[:VERSION|PATH]``.

``axosyslog`` is the newest build that ``parbench install axosyslog`` made
in the data home; ``axosyslog:4.26.0`` (or ``axosyslog:4.26``) a build of
that version, ``axosyslog:4.26.0-1a2b3c4d5e6f`` one build by its directory
name; ``axosyslog:PATH`` a binary or an install prefix built elsewhere,
which must say it is AxoSyslog.  The run itself is the syslog-ng family's
(``harness.syslog_ng.target.SyslogNgTarget``): the same config rendering,
start-up checks and counters.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from parbench.harness.syslog_ng.build import Build, builds_root, installed_builds
from parbench.harness.syslog_ng.installation import Installation, InstallError, installation_from_binary
from parbench.harness.syslog_ng.target import SyslogNgTarget
from parbench.harness.syslog_ng.version import Version
from parbench.harness.targets.base import TargetUnavailable
from parbench.harness.targets.kind import Availability, BadArgument, ImplSpec, TargetKind

if TYPE_CHECKING:
    import click

#: ARG naming a build: a version ("4.26", "4.26.0"), optionally with the
#: source checksum prefix of its directory name ("4.26.0-1a2b3c4d5e6f")
_BUILD_SELECTOR = re.compile(r"(?P<version>\d+\.\d+(?:\.\d+)?)(?:-(?P<sha>[0-9a-f]{4,64}))?")
INSTALL_HINT = "build one with: parbench install axosyslog --source TARBALL|DIR|URL"


def is_path(argument: str) -> bool:
    return "/" in argument or argument.startswith(("~", "."))


def installation_of(build: Build) -> Installation:
    """The Installation of a build in the data home (the system's loader and
    libraries: it was built against them)."""
    def rel(key: str) -> Path | None:
        value = build.manifest.get(key)
        return None if value is None else build.prefix / value

    binary = rel("syslog_ng")
    if binary is None or not binary.is_file():
        raise InstallError(f"{build.prefix}: incomplete build, no syslog-ng binary; rebuild with --force")
    return Installation(syslog_ng=binary, version=build.version, source="built", root=build.prefix,
                        loggen=rel("loggen"), syslog_ng_ctl=rel("syslog_ng_ctl"))


def select_build(selector: str | None, builds: list[Build]) -> Build:
    """The build ``selector`` names (None: the newest); InstallError (one line) when none does."""
    if not builds:
        raise InstallError(f"no AxoSyslog built in {builds_root()}; {INSTALL_HINT}")
    if selector is None:
        return builds[0]
    match = _BUILD_SELECTOR.fullmatch(selector)
    if match is None:
        raise InstallError(f"{selector!r}: expected a version such as 4.27.0 or a path")
    wanted = tuple(int(n) for n in match.group("version").split("."))
    for build in builds:  # newest first
        numbers = build.parsed_version.numbers
        if numbers[:len(wanted)] == wanted and (match.group("sha") is None
                                                or build.manifest.get("sha256", "").startswith(match.group("sha"))):
            return build
    have = ", ".join(b.name for b in builds)
    raise InstallError(f"no AxoSyslog {selector} built here (built: {have}); {INSTALL_HINT}")


def locate_axosyslog(argument: str | None) -> Installation:
    """The AxoSyslog an ``axosyslog[:ARG]`` spec names; InstallError (one line) when it is not here."""
    if argument is not None and is_path(argument):
        install = installation_from_binary(Path(argument), "explicit")
        if not install.parsed_version.is_axosyslog:
            raise InstallError(f"{argument}: {install.version} is not AxoSyslog (use --impl syslog-ng:{argument})")
        return install
    return installation_of(select_build(argument, installed_builds()))


class AxoSyslogKind(TargetKind):
    name = "axosyslog"
    syntax = "axosyslog[:VERSION|PATH]"
    summary = ("AxoSyslog built by `parbench install axosyslog` (the newest, or VERSION), "
               "or PATH, an AxoSyslog binary or install prefix")
    argument = "optional"
    gives_reference_profile = True
    runs_config_text = True

    def check_argument(self, argument: str | None) -> str | None:
        argument = super().check_argument(argument)
        if argument is not None and not is_path(argument) and not _BUILD_SELECTOR.fullmatch(argument):
            raise BadArgument(self.syntax, f"{argument!r} is neither a version such as 4.27.0 nor a path")
        return argument

    def names_a_program(self, spec: ImplSpec) -> bool:
        return spec.argument is not None and is_path(spec.argument)  # a build parbench made is not named

    def make(self, spec: ImplSpec, *, profile: str | None = None) -> SyslogNgTarget:
        try:
            install = locate_axosyslog(spec.argument)
        except InstallError as exc:
            raise TargetUnavailable(f"{spec.text}: not runnable here: {exc}") from None
        target = SyslogNgTarget(install=install)
        target.name = spec.text
        return target

    def availability(self, spec: ImplSpec | None = None) -> Availability:
        if spec is not None and spec.argument is not None:
            try:
                found = locate_axosyslog(spec.argument)
            except InstallError as exc:
                return Availability(False, "", [str(exc)])
            return Availability(True, _describe(found), [])
        builds = installed_builds()
        if not builds:
            return Availability(False, f"no AxoSyslog built in {builds_root()}", [INSTALL_HINT])
        details = []
        for build in builds:
            try:
                install = installation_of(build)
            except InstallError as exc:
                details.append(f"{build.name}: {exc}")
                continue
            line = f"axosyslog:{build.version.split()[-1]}: {_describe(install)}"
            seconds = build.manifest.get("build_cpu_seconds")
            if seconds is not None:
                line += f"; built from {build.manifest.get('source')} ({seconds:.0f} s CPU)"
            if build.manifest.get("stages_missing"):
                line += f"; missing stages: {'; '.join(build.manifest['stages_missing'])}"
            details.append(line)
        return Availability(True, f"{len(builds)} build(s); newest {builds[0].version}", details)

    def install_command(self) -> "click.Command":
        from parbench.harness.syslog_ng.build import install_command

        return install_command


def _describe(install: Installation) -> str:
    try:
        profile = Version.parse(install.version).reference_profile
    except ValueError as exc:
        profile = f"none ({exc})"
    where = install.root if install.root is not None else install.syslog_ng
    return f"{install.version} in {where}; reference profile {profile}"


KIND = AxoSyslogKind()
