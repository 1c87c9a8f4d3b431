"""``parbench install syslog-ng``: a real syslog-ng (>= 4.3, with
parallelize() and loggen) on this machine without touching the system.

The method is the same on every Debian release (12 and 13 alike): a private apt
setup (its own sources list naming Debian 13 "trixie", its own lists, cache and
an empty dpkg status, so the whole dependency closure, libc included, is
resolved) downloads syslog-ng-core and everything it needs, and ``dpkg-deb -x``
unpacks them into a private root.  The binaries then run through that root's
own dynamic loader with ``--library-path``, so the system's libc, its loggers and
its init system are never involved: nothing is installed system-wide, no
package is removed and no daemon is started.  On Debian 13 the system package
would work too, but it conflicts with other system loggers and starts a
system-wide daemon; the private root avoids both with no special cases.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import click

from parbench.harness.syslog_ng.installation import (
    MANIFEST,
    VERSION_TIMEOUT_S,
    Installation,
    InstallError,
    default_root,
    detect_version,
    load_private_root,
    require_parallelize,
)

# The Debian archive this machine's own apt already uses (read from its
# sources), so the installer goes exactly where the system is allowed to go.
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
SUITE = "trixie"
PACKAGES = ("syslog-ng-core",)
ENV_MIRROR = "PARBENCH_DEBIAN_MIRROR"
# Debian's keyring package ships the trixie keys also on Debian 12.
KEYRING_CANDIDATES = (
    "/usr/share/keyrings/debian-archive-keyring.gpg",
    "/usr/share/keyrings/debian-archive-trixie-stable.gpg",
)
APT_TIMEOUT_S = 600.0


class RegistryUnreachable(InstallError):
    """The Debian package registry could not be reached."""


def system_debian_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str | None:
    """The first main Debian archive URI in the system's apt sources (deb822
    ``URIs:`` or one-line ``deb URI suite ...``), skipping security and
    third-party archives; None when there is none."""
    files: list[Path] = []
    for entry in sources:
        if entry.is_dir():
            files += sorted(p for p in entry.iterdir() if p.suffix in (".sources", ".list"))
        elif entry.is_file():
            files.append(entry)
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if words[:1] == ["URIs:"]:
                uris = words[1:]
            elif words[:1] == ["deb"]:
                uris = [w for w in words[1:] if "://" in w][:1]
            else:
                continue
            for uri in uris:
                if uri.rstrip("/").endswith("/debian"):
                    return uri.rstrip("/")
    return None



def _apt_config(apt_dir: Path, mirror: str, keyring: str) -> Path:
    for sub in ("etc/apt.conf.d", "etc/preferences.d", "etc/trusted.gpg.d", "lists/partial",
                "cache/archives/partial", "state"):
        (apt_dir / sub).mkdir(parents=True, exist_ok=True)
    (apt_dir / "state" / "status").write_text("")
    (apt_dir / "etc" / "sources.list").write_text(f"deb [signed-by={keyring}] {mirror} {SUITE} main\n")
    settings = {
        "Dir::Etc::SourceList": apt_dir / "etc" / "sources.list",
        "Dir::Etc::SourceParts": apt_dir / "etc" / "sources.list.d-none",
        "Dir::Etc::Parts": apt_dir / "etc" / "apt.conf.d",
        "Dir::Etc::Preferences": apt_dir / "etc" / "preferences",
        "Dir::Etc::PreferencesParts": apt_dir / "etc" / "preferences.d",
        "Dir::Etc::Trusted": apt_dir / "etc" / "trusted.gpg",
        "Dir::Etc::TrustedParts": apt_dir / "etc" / "trusted.gpg.d",
        "Dir::State": apt_dir / "state",
        "Dir::State::Lists": apt_dir / "lists",
        "Dir::State::status": apt_dir / "state" / "status",
        "Dir::Cache": apt_dir / "cache",
        "Dir::Cache::Archives": apt_dir / "cache" / "archives",
        "Dir::Log": apt_dir / "log",
        "APT::Architecture": _dpkg_architecture(),
        "APT::Architectures": _dpkg_architecture(),
        "APT::Install-Recommends": "false",
        "APT::Install-Suggests": "false",
        "Acquire::Languages": "none",
        "Acquire::PDiffs": "false",
        "Acquire::Retries": "0",
        "Acquire::http::Timeout": "30",
        "Acquire::GzipIndexes": "true",
        "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled": "false",
        "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled": "false",
        "Acquire::IndexTargets::deb::CNF::DefaultEnabled": "false",
        "Debug::NoLocking": "true",
    }
    if os.geteuid() == 0:
        # Private dirs are root's; the _apt sandbox user could not write them.
        settings["APT::Sandbox::User"] = "root"
    conf = apt_dir / "apt.conf"
    conf.write_text("".join(f'{key} "{value}";\n' for key, value in settings.items()))
    return conf


def _dpkg_architecture() -> str:
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              timeout=VERSION_TIMEOUT_S, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "amd64"


def _run_apt(args: list[str], conf: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "APT_CONFIG": str(conf), "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    try:
        return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True,
                              timeout=APT_TIMEOUT_S, stdin=subprocess.DEVNULL, errors="replace")
    except FileNotFoundError:
        raise InstallError(f"{args[0]} not found: this installer needs Debian's apt and dpkg") from None
    except subprocess.TimeoutExpired:
        raise RegistryUnreachable(f"{' '.join(args[:2])} did not finish within {APT_TIMEOUT_S:.0f} s") from None


def _first_problem(text: str) -> str:
    lines = text.splitlines()
    for prefixes in (("E:",), ("Err:",), ("W:",)):
        for index, line in enumerate(lines):
            if line.startswith(prefixes):
                # apt puts the reason of an Err: on the next, indented line
                detail = lines[index + 1] if index + 1 < len(lines) and lines[index + 1][:1].isspace() else ""
                return " ".join(f"{line} {detail}".split())
    lines = text.strip().splitlines()
    return lines[-1].strip() if lines else "no output"


def _resolve_closure(conf: Path) -> list[str]:
    """Every package (name=version) an install of PACKAGES needs, against an empty system."""
    proc = _run_apt(["apt-get", "-s", "-q", "install", *PACKAGES], conf)
    if proc.returncode != 0:
        raise InstallError(f"cannot resolve {', '.join(PACKAGES)} in {SUITE}: {_first_problem(proc.stderr + proc.stdout)}")
    selected = re.findall(r"^Inst (\S+) \((\S+)", proc.stdout, re.M)
    if not selected:
        raise InstallError(f"apt-get -s install {' '.join(PACKAGES)} selected nothing")
    return [f"{name}={version}" for name, version in selected]


def _layout(root: Path) -> dict:
    """Find, in an unpacked root, the loader, the library dirs and the tools."""
    def first(patterns: list[str]) -> Path | None:
        for pattern in patterns:
            hits = sorted(root.glob(pattern))
            if hits:
                return hits[0]
        return None

    syslog_ng = root / "usr" / "sbin" / "syslog-ng"
    loader = first(["usr/lib64/ld-linux*.so*", "lib64/ld-linux*.so*", "usr/lib/*/ld-linux*.so*", "usr/lib/ld-linux*.so*"])
    if not syslog_ng.exists() or loader is None:
        raise InstallError(f"{root}: unpacked packages have no {'usr/sbin/syslog-ng' if not syslog_ng.exists() else 'dynamic loader'}")
    triplets = sorted(p.name for p in (root / "usr" / "lib").glob("*-linux-gnu*") if p.is_dir())
    library_dirs = []
    for triplet in triplets:
        library_dirs += [f"usr/lib/{triplet}", f"lib/{triplet}", f"usr/lib/{triplet}/syslog-ng"]
    library_dirs += ["usr/lib", "usr/lib/syslog-ng"]
    library_dirs = [d for d in library_dirs if (root / d).is_dir()]
    module_dir = first(["usr/lib/syslog-ng/[0-9]*", "usr/lib/*/syslog-ng/[0-9]*", "usr/lib/syslog-ng"])
    env = {"SYSLOGNG_PREFIX": "usr"}
    gconv = first(["usr/lib/*/gconv"])
    if gconv is not None:
        env["GCONV_PATH"] = str(gconv.relative_to(root))
    ossl = first(["usr/lib/*/ossl-modules"])
    if ossl is not None:
        env["OPENSSL_MODULES"] = str(ossl.relative_to(root))

    def tool(name: str) -> str | None:
        for d in ("usr/bin", "usr/sbin"):
            if (root / d / name).exists():
                return f"{d}/{name}"
        return None

    return {
        "syslog_ng": "usr/sbin/syslog-ng",
        "loggen": tool("loggen"),
        "syslog_ng_ctl": tool("syslog-ng-ctl"),
        # ld.so is a symlink into the multiarch dir; resolve it inside the root.
        "loader": str(loader.relative_to(root)),
        "library_path": library_dirs,
        "module_path": None if module_dir is None else str(module_dir.relative_to(root)),
        "env": env,
    }


_WRAPPER = """#!/bin/sh
# Written by `parbench install syslog-ng`: runs {tool} from this private root
# through the root's own loader, so the system's libraries are never used.
ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
{exports}
exec "$ROOT/{loader}" --library-path "{libs}" "$ROOT/{binary}"{extra} "$@"
"""


def _write_wrappers(root: Path, layout: dict) -> None:
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    exports = "\n".join(f'export {k}="$ROOT/{v}"' for k, v in layout["env"].items())
    libs = ":".join(f"$ROOT/{d}" for d in layout["library_path"])
    for key, name in (("syslog_ng", "syslog-ng"), ("loggen", "loggen"), ("syslog_ng_ctl", "syslog-ng-ctl")):
        if layout.get(key) is None:
            continue
        extra = f' --module-path "$ROOT/{layout["module_path"]}"' if key == "syslog_ng" and layout["module_path"] else ""
        wrapper = bin_dir / name
        wrapper.write_text(_WRAPPER.format(tool=name, exports=exports, loader=layout["loader"], libs=libs,
                                           binary=layout[key], extra=extra))
        wrapper.chmod(0o755)


def install_syslog_ng(root: Path | None = None, force: bool = False, mirror: str | None = None,
                      log=lambda line: None) -> tuple[Installation, bool]:
    """Install into ``root`` (default: the data home's syslog-ng/); (installation, whether anything was done).

    Work happens in a staging dir next to ``root`` that is renamed into place
    at the end, so an interrupted install never leaves a half root behind."""
    root = Path(root or default_root()).expanduser().absolute()
    mirror = mirror or os.environ.get(ENV_MIRROR) or system_debian_mirror()
    if not mirror:
        raise InstallError(
            f"no Debian archive found in {', '.join(map(str, APT_SOURCES))}; give one with --mirror URL or ${ENV_MIRROR}")
    if not force:
        try:
            return require_parallelize(load_private_root(root)), False
        except InstallError:
            pass
    keyring = next((k for k in KEYRING_CANDIDATES if Path(k).exists()), None)
    if keyring is None:
        raise InstallError(f"no Debian archive keyring ({KEYRING_CANDIDATES[0]}): install debian-archive-keyring")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.staging-", dir=root.parent))
    try:
        apt_dir = staging / "apt"
        conf = _apt_config(apt_dir, mirror, keyring)
        log(f"apt-get update ({mirror} {SUITE}, private lists in the staging dir)")
        proc = _run_apt(["apt-get", "-q", "update"], conf)
        if proc.returncode != 0 or not any(apt_dir.joinpath("lists").glob("*_Packages*")):
            raise RegistryUnreachable(
                f"cannot reach the Debian package registry at {mirror}: {_first_problem(proc.stderr + proc.stdout)}")
        packages = _resolve_closure(conf)
        log(f"downloading {len(packages)} packages")
        debs_dir = apt_dir / "debs"
        debs_dir.mkdir()
        proc = _run_apt(["apt-get", "-q", "download", *packages], conf, cwd=debs_dir)
        if proc.returncode != 0:
            raise RegistryUnreachable(f"apt-get download from {mirror} failed: {_first_problem(proc.stderr + proc.stdout)}")
        debs = sorted(debs_dir.glob("*.deb"))
        log(f"unpacking {len(debs)} packages")
        for deb in debs:
            proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], capture_output=True, text=True,
                                  timeout=APT_TIMEOUT_S, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                raise InstallError(f"dpkg-deb -x {deb.name}: {_first_problem(proc.stderr)}")
        layout = _layout(staging)
        _write_wrappers(staging, layout)
        # The lists are tens of MB and only needed for this run.
        shutil.rmtree(apt_dir, ignore_errors=True)
        probe = Installation(syslog_ng=staging / layout["syslog_ng"], version="?", source="private-root",
                                loader=staging / layout["loader"],
                                library_path=[staging / d for d in layout["library_path"]],
                                module_path=None if layout["module_path"] is None else staging / layout["module_path"],
                                env={k: str(staging / v) for k, v in layout["env"].items()})
        version = detect_version(probe.syslog_ng_argv(), env=probe.full_env())
        manifest = {**layout, "version": version, "mirror": mirror, "suite": SUITE,
                    "packages": [p for p in packages], "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if root.exists():
            if not force:
                # Another install finished first; keep it (it may be in use).
                return require_parallelize(load_private_root(root)), False
            shutil.rmtree(root)
        staging.rename(root)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return require_parallelize(load_private_root(root)), True


@click.command("syslog-ng")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Install here (default: syslog-ng/ in the data home: $PARBENCH_HOME, else $XDG_DATA_HOME/parbench, else ~/.local/share/parbench).")
@click.option("--force", is_flag=True, help="Reinstall even if an installation is already there.")
@click.option("--mirror", default=None, metavar="URL",
              help=f"Debian mirror (default: ${ENV_MIRROR}, else the Debian archive in this machine's apt sources).")
def install_command(root: Path | None, force: bool, mirror: str | None) -> None:
    """Install syslog-ng >= 4.3 with loggen into a private root (Debian 13's
    packages, unpacked; the system is not touched).  A failure is one line
    and exit status 2 (InstallError, RegistryUnreachable)."""
    started = time.monotonic()
    result, did_install = install_syslog_ng(root, force=force, mirror=mirror,
                                            log=lambda line: click.echo(f"  {line}", err=True))
    what = "installed" if did_install else "already installed"
    click.echo(f"{result.version} {what} in {result.root} ({time.monotonic() - started:.1f} s); "
               f"run it with {result.root / 'bin' / 'syslog-ng'}")
