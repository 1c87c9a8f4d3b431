"""A syslog-ng-like binary of some version at some prefix, and how to find one.

``Installation`` is what every part of the syslog-ng family works with: the
binary, its version, its tools (loggen, syslog-ng-ctl) and how to start each
of them.  It comes from a private root made by an installer (a manifest,
``MANIFEST``, lists the layout), or from a user's own build: a binary or an
install prefix (``PREFIX/sbin/syslog-ng``, tools in ``PREFIX/bin``).

``locate_syslog_ng()`` looks, in order, at an explicit path (``--impl
syslog-ng:PATH``), ``$PARBENCH_SYSLOG_NG``, the private root in the data
home, and ``syslog-ng`` on ``$PATH``, and says for each place why not.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from parbench.errors import EnvironmentProblem
from parbench.harness.syslog_ng.version import Version
from parbench.home import data_home

MANIFEST = "parbench-install.json"
ENV_SYSLOG_NG = "PARBENCH_SYSLOG_NG"
VERSION_TIMEOUT_S = 10.0


class InstallError(EnvironmentProblem):
    """No usable installation here, or installing one failed; str() is one
    line for the user."""


def default_root() -> Path:
    """The private root of ``parbench install syslog-ng``: syslog-ng/ in the data home."""
    return data_home() / "syslog-ng"


@dataclass
class Installation:
    """A syslog-ng-like binary (syslog-ng or AxoSyslog) of some version at
    some place: where it and its tools are, and how to start each of them."""

    syslog_ng: Path  # the real binary (not a wrapper)
    version: str  # "syslog-ng 4.8.1" or "axosyslog 4.26.0"
    source: str  # "private-root", "explicit", "env", "path"
    root: Path | None = None  # the private root, when it is one
    loggen: Path | None = None
    syslog_ng_ctl: Path | None = None
    # Private root only: the root's loader and library path; every tool is
    # started as [loader, --library-path, LIBS, binary, ...].
    loader: Path | None = None
    library_path: list[Path] = field(default_factory=list)
    module_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def _prefix(self, binary: Path) -> list[str]:
        if self.loader is None:
            return [str(binary)]
        return [str(self.loader), "--library-path", ":".join(map(str, self.library_path)), str(binary)]

    def syslog_ng_argv(self) -> list[str]:
        argv = self._prefix(self.syslog_ng)
        if self.module_path is not None:
            argv += ["--module-path", str(self.module_path)]
        return argv

    def loggen_argv(self) -> list[str] | None:
        return None if self.loggen is None else self._prefix(self.loggen)

    def syslog_ng_ctl_argv(self) -> list[str] | None:
        return None if self.syslog_ng_ctl is None else self._prefix(self.syslog_ng_ctl)

    def full_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    @property
    def parsed_version(self) -> Version:
        return Version.parse(self.version)


def detect_version(argv: list[str], env: dict[str, str] | None = None, timeout: float = VERSION_TIMEOUT_S) -> str:
    """Run ``argv --version`` and return "syslog-ng X.Y.Z" / "axosyslog X.Y.Z".

    Raises InstallError (one line) when it does not run or says no version."""
    try:
        proc = subprocess.run(
            [*argv, "--version"], env=env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL, errors="replace",
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{argv[-1] if argv else '?'}: cannot run --version: {exc}") from None
    try:
        return str(Version.from_version_output(proc.stdout + "\n" + proc.stderr))
    except ValueError as exc:
        tail = (proc.stderr.strip().splitlines() or [""])[-1]
        raise InstallError(f"{argv[-1]}: exit {proc.returncode}, {exc}{'; ' + tail if tail else ''}") from None


def _manifest_path(root: Path) -> Path:
    return root / MANIFEST


def load_private_root(root: Path) -> Installation:
    """The installation in a private root an installer made (its manifest); InstallError if none."""
    manifest_file = _manifest_path(root)
    try:
        manifest = json.loads(manifest_file.read_text())
    except FileNotFoundError:
        raise InstallError(f"no syslog-ng installed in {root} (run: parbench install syslog-ng)") from None
    except (OSError, ValueError) as exc:
        raise InstallError(f"{manifest_file}: unreadable manifest ({exc}); reinstall with --force") from None

    def rel(key: str) -> Path | None:
        value = manifest.get(key)
        return None if value is None else root / value

    install = Installation(
        syslog_ng=root / manifest["syslog_ng"],
        version=manifest["version"],
        source="private-root",
        root=root,
        loggen=rel("loggen"),
        syslog_ng_ctl=rel("syslog_ng_ctl"),
        loader=rel("loader"),
        library_path=[root / p for p in manifest["library_path"]],
        module_path=rel("module_path"),
        env={k: str(root / v) for k, v in manifest["env"].items()},
    )
    missing = [p for p in (install.syslog_ng, install.loader) if p is not None and not p.exists()]
    if missing:
        raise InstallError(f"{root}: incomplete installation, {missing[0]} is missing; reinstall with --force")
    return install


def _sibling_tool(binary: Path, name: str) -> Path | None:
    """loggen / syslog-ng-ctl of a user's build: next to the binary or in ../bin, ../sbin."""
    here = binary.resolve().parent
    for directory in (here, here.parent / "bin", here.parent / "sbin", binary.parent):
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def installation_from_binary(path: Path, source: str) -> Installation:
    """A user's own syslog-ng / AxoSyslog binary (or its install prefix)."""
    # Absolute: targets run the binary from their own working directory.
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        for candidate in (path / "sbin" / "syslog-ng", path / "bin" / "syslog-ng", path / "syslog-ng"):
            if candidate.is_file():
                path = candidate
                break
        else:
            raise InstallError(f"{path}: no sbin/syslog-ng or bin/syslog-ng in this directory")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise InstallError(f"{path}: not an executable syslog-ng binary")
    resolved = path.resolve()
    if resolved.parts[-3:-1] == ("usr", "sbin") and _manifest_path(resolved.parents[2]).exists():
        # a binary inside a parbench private root needs the root's loader
        return load_private_root(resolved.parents[2])
    version = detect_version([str(path)])
    return Installation(
        syslog_ng=path, version=version, source=source,
        loggen=_sibling_tool(path, "loggen"), syslog_ng_ctl=_sibling_tool(path, "syslog-ng-ctl"),
    )


def locate_syslog_ng(explicit: str | Path | None = None, root: Path | None = None) -> tuple[Installation | None, list[str]]:
    """The syslog-ng to use and, for each place looked at in vain, why not.

    Order: ``explicit`` (an error there is final: the user asked for it),
    ``$PARBENCH_SYSLOG_NG``, the private root, ``syslog-ng`` on PATH."""
    reasons: list[str] = []
    if explicit is not None:
        try:
            return require_parallelize(installation_from_binary(Path(explicit), "explicit")), []
        except InstallError as exc:
            return None, [str(exc)]
    env_path = os.environ.get(ENV_SYSLOG_NG)
    if env_path:
        try:
            return require_parallelize(installation_from_binary(Path(env_path), "env")), []
        except InstallError as exc:
            return None, [f"${ENV_SYSLOG_NG}: {exc}"]
    root = root or default_root()
    try:
        return require_parallelize(load_private_root(root)), []
    except InstallError as exc:
        reasons.append(str(exc))
    on_path = shutil.which("syslog-ng")
    if on_path:
        try:
            return require_parallelize(installation_from_binary(Path(on_path), "path")), reasons
        except InstallError as exc:
            reasons.append(f"PATH: {exc}")
    else:
        reasons.append("PATH: no syslog-ng")
    return None, reasons


def require_parallelize(install: Installation) -> Installation:
    """``install`` itself; InstallError when its version has no parallelize()."""
    if not install.parsed_version.has_parallelize:
        raise InstallError(f"{install.syslog_ng}: {install.version} has no parallelize() (needs >= 4.3)")
    return install


def find_syslog_ng(explicit: str | Path | None = None, root: Path | None = None) -> Installation | None:
    """The syslog-ng to test (see ``locate_syslog_ng``), or None when there is none."""
    return locate_syslog_ng(explicit, root)[0]
