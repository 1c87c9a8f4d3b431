"""``parbench install axosyslog --source TARBALL|DIR|URL``: AxoSyslog built
from its release sources into the data home.

No package registry carries AxoSyslog, so it is built here, privately:

* The source is a release tarball (a file or an ``http(s)://`` URL) or a
  source tree (a directory).  Its identity is the SHA-256 of the tarball's
  bytes, or of the tree's paths and contents (``.git`` left out).
* The install prefix is ``DATA_HOME/axosyslog/<version>-<sha256[:12]>``.
  Prefixes are baked into the binaries (module and config paths), so it is
  chosen before configure runs, and each distinct source gets its own.
* The build runs in ``DATA_HOME/axosyslog/.build-XXXX``: a copy of the
  sources, ``./autogen.sh`` when there is no ``configure`` (git
  trees have none), ``configure`` with ``CONFIGURE_FLAGS``, ``make -jN``,
  ``make install DESTDIR=...``; every command's output goes to ``build.log``
  there (kept after a failure until the next install).  The staged tree is
  renamed to the prefix, the binary there is
  probed (``--version``, and a config with every stage the project uses,
  ``--syntax-only``), and the manifest ``parbench-build.json`` is written
  last, atomically: a prefix without it is an interrupted build, never run
  and removed by the next install.
* A second install of the same source finds the manifest and does nothing.
* The bundled ivykis (``--with-ivykis=internal``) is forced: built against
  an older system ivykis, AxoSyslog runs but parallelize() silently does
  nothing (docs/axosyslog.md, "The ivykis trap").
* Missing build tools are one line naming the Debian packages;
  ``--install-build-deps`` runs ``apt-get install`` for them, the only
  change outside the data home, and only when asked.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import click

from parbench.errors import EnvironmentProblem
from parbench.harness.syslog_ng.installation import InstallError, detect_version
from parbench.harness.syslog_ng.version import Version
from parbench.home import data_home

#: the manifest of a complete build, written last
MANIFEST = "parbench-build.json"
BUILD_LOG = "build.log"
#: a small build (about 22 MB, under 3 minutes on 2 cores) that still has the
#: socket, file and syslog drivers, rewrite rules, filters and the
#: kv/csv/json/regexp parsers (--disable-all-modules drops IPv6, which the
#: socket code needs to link); the bundled ivykis whatever the system has
CONFIGURE_FLAGS = (
    "--disable-all-modules", "--enable-ipv6", "--enable-json",
    "--disable-python", "--disable-java", "--disable-cpp", "--disable-grpc", "--disable-manpages",
    "--with-ivykis=internal",
)
#: what a build needs: (what, how it is looked for, Debian package)
BUILD_TOOLS = (
    ("cc", "command", "build-essential"),
    ("make", "command", "build-essential"),
    ("autoconf", "command", "autoconf"),
    ("automake", "command", "automake"),
    ("libtoolize", "command", "libtool"),
    ("pkg-config", "command", "pkg-config"),
    ("bison", "command", "bison"),
    ("flex", "command", "flex"),
    ("gperf", "command", "gperf"),
    ("ax_prefix_config_h.m4", "aclocal", "autoconf-archive"),
    ("glib-2.0", "pkg-config", "libglib2.0-dev"),
    ("json-c", "pkg-config", "libjson-c-dev"),
    ("libpcre2-8", "pkg-config", "libpcre2-dev"),
    ("openssl", "pkg-config", "libssl-dev"),
)
ACLOCAL_DIRS = (Path("/usr/share/aclocal"), Path("/usr/local/share/aclocal"))
STEP_TIMEOUT_S = 3600.0
DOWNLOAD_TIMEOUT_S = 120.0
APT_TIMEOUT_S = 1200.0
SHA_PREFIX = 12
#: every stage the project's pipelines use, as a log path element; a build
#: lacking one says so in its manifest (``stages_missing``) and in
#: ``parbench doctor``
STAGE_PROBES = {
    "parallelize() partition-key()": 'parallelize(partitions(2) partition-key("$HOST"));',
    "filter host() program() match()": 'filter { host("h") and program("p") and match("m" value("MSG")); };',
    "rewrite set() subst() unset()": 'rewrite { set("x" value("X")); subst("a" "b" value("MSG")); unset(value("X")); };',
    "kv-parser": 'parser { kv-parser(prefix(".kv.")); };',
    "csv-parser": 'parser { csv-parser(columns("a", "b") delimiters(",")); };',
    "json-parser": 'parser { json-parser(prefix(".json.")); };',
    "regexp-parser": 'parser { regexp-parser(patterns("(?<word>[a-z]+)")); };',
}
STAGE_PROBE_CONFIG = """\
@version: {version}
log {{ source {{ tcp(ip("127.0.0.1") port(1)); }}; {element} destination {{ file("/dev/null"); }}; }};
"""


class BuildError(InstallError):
    """A build step failed; str() names the step, the log and its last error line."""


class MissingBuildTools(EnvironmentProblem):
    """Build tools are missing; str() names the Debian packages that bring them."""

    def __init__(self, missing: list[tuple[str, str]]):
        self.missing = missing
        packages = sorted({package for _, package in missing})
        super().__init__(
            f"missing build tools: {', '.join(f'{what} ({package})' for what, package in missing)}; "
            f"install them with: apt-get install {' '.join(packages)} (or rerun with --install-build-deps)")

    @property
    def packages(self) -> list[str]:
        return sorted({package for _, package in self.missing})


def builds_root() -> Path:
    """Where built AxoSyslogs live: axosyslog/ in the data home."""
    return data_home() / "axosyslog"


# ---------------------------------------------------------------- build tools


def _aclocal_has(name: str) -> bool:
    return any((d / name).is_file() for d in ACLOCAL_DIRS)


def _pkg_config_has(module: str) -> bool:
    if shutil.which("pkg-config") is None:
        return False
    try:
        return subprocess.run(["pkg-config", "--exists", module], capture_output=True,
                              timeout=10, stdin=subprocess.DEVNULL).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def missing_build_tools() -> list[tuple[str, str]]:
    """(what, Debian package) for every build tool this machine lacks."""
    missing = []
    for what, how, package in BUILD_TOOLS:
        present = (shutil.which(what) is not None if how == "command"
                   else _aclocal_has(what) if how == "aclocal" else _pkg_config_has(what))
        if not present:
            missing.append((what, package))
    return missing


def install_build_deps(packages: list[str], log: Callable[[str], None]) -> None:
    """``apt-get install`` the packages (through ``sudo -n`` when not root);
    one ``apt-get update`` and a retry when the first attempt fails."""
    apt = shutil.which("apt-get")
    if apt is None:
        raise EnvironmentProblem(f"--install-build-deps needs apt-get (Debian); install {' '.join(packages)} yourself")
    prefix: list[str] = []
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            raise EnvironmentProblem(f"--install-build-deps: not root and no sudo; run as root: "
                                     f"apt-get install {' '.join(packages)}")
        prefix = [sudo, "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}

    def apt_get(*args: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([*prefix, apt, *args], env=env, capture_output=True, text=True,
                                  timeout=APT_TIMEOUT_S, stdin=subprocess.DEVNULL, errors="replace")
        except subprocess.TimeoutExpired:
            raise EnvironmentProblem(f"apt-get {args[0]} did not finish within {APT_TIMEOUT_S:.0f} s") from None

    install = ("install", "-y", "-q", "--no-install-recommends", *packages)
    log(f"apt-get install {' '.join(packages)}")
    proc = apt_get(*install)
    if proc.returncode != 0:
        log("apt-get update, then install again")
        apt_get("update", "-q")
        proc = apt_get(*install)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"apt-get install {' '.join(packages)} failed (exit {proc.returncode}): "
                                 f"{_last_line(proc.stderr + proc.stdout)}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


# ---------------------------------------------------------------- sources


@dataclass
class Source:
    """What ``--source`` named, once it is a local file or tree."""

    given: str  # as the user gave it (a URL, or an absolute path)
    kind: str  # "tarball", "tree" or "url"
    path: Path  # the tarball (downloaded for a URL) or the tree
    sha256: str

    @property
    def short(self) -> str:
        return self.sha256[:SHA_PREFIX]


def is_url(text: str) -> bool:
    return urllib.parse.urlsplit(text).scheme in ("http", "https", "file")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(root: Path) -> str:
    """Paths, executable bits and contents of every file under ``root``
    (symlinks by target), in sorted order, ``.git`` left out."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                digest.update(f"L {rel}\0{os.readlink(path)}\0".encode())
                continue
            digest.update(f"F {rel}\0{int(os.access(path, os.X_OK))}\0".encode())
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Fetch ``url`` into ``dest``; InstallError (one line) when it fails."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except urllib.error.HTTPError as exc:
        raise InstallError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InstallError(f"cannot download {url}: {reason}") from None


def resolve_source(given: str, workdir: Path) -> Source:
    """``--source`` -> Source; a URL is downloaded into ``workdir``."""
    if is_url(given):
        name = Path(urllib.parse.urlsplit(given).path).name or "source.tar"
        dest = workdir / name
        download(given, dest)
        return Source(given, "url", dest, sha256_file(dest))
    path = Path(given).expanduser().absolute()
    if path.is_dir():
        tree = _tree_root(path, given)
        return Source(str(path), "tree", tree, sha256_tree(tree))
    if path.is_file():
        return Source(str(path), "tarball", path, sha256_file(path))
    raise InstallError(f"--source {given}: no such file or directory (expected an AxoSyslog release tarball, "
                       "a source tree or an http(s) URL of a tarball)")


def _unpack(tarball: Path, dest: Path) -> Path:
    """Extract ``tarball`` into ``dest``; the source tree inside it."""
    try:
        with tarfile.open(tarball) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(dest, filter="data")
            else:  # Python < 3.11.4: refuse what the data filter would
                for member in archive.getmembers():
                    target = (dest / member.name).resolve()
                    if not str(target).startswith(str(dest.resolve())) or member.issym() and os.path.isabs(member.linkname):
                        raise InstallError(f"{tarball}: unsafe member {member.name!r}")
                archive.extractall(dest)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InstallError(f"{tarball}: not a readable tarball ({exc})") from None
    return _tree_root(dest, tarball)


def _tree_root(where: Path, origin: Path | str) -> Path:
    """The source tree in ``where``: itself, or its only directory."""
    if (where / "configure.ac").is_file() or (where / "configure").is_file():
        return where
    entries = [p for p in where.iterdir()]
    if len(entries) == 1 and entries[0].is_dir() and (
            (entries[0] / "configure.ac").is_file() or (entries[0] / "configure").is_file()):
        return entries[0]
    raise InstallError(f"{origin}: not an AxoSyslog source tree (no configure.ac or configure at its top)")


def source_version(tree: Path, origin: Path | str) -> str:
    """The version a source tree builds ("4.27.0"), from its VERSION.txt."""
    for name in ("VERSION.txt", "VERSION"):
        path = tree / name
        if path.is_file():
            text = path.read_text(errors="replace").strip()
            if re.fullmatch(r"\d+\.\d+(\.\d+)?", text):
                return text
            raise InstallError(f"{origin}: {name} says {text[:40]!r}, expected a version like 4.27.0")
    raise InstallError(f"{origin}: not an AxoSyslog source tree (no VERSION.txt)")


# ---------------------------------------------------------------- builds


@dataclass
class Build:
    """A complete build: its prefix and manifest."""

    prefix: Path
    manifest: dict

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def parsed_version(self) -> Version:
        return Version.parse(self.version)

    @property
    def name(self) -> str:
        return self.prefix.name


def load_build(prefix: Path) -> Build | None:
    """The complete build at ``prefix``; None when it is not one (no or a bad manifest)."""
    try:
        manifest = json.loads((prefix / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("version"), str):
        return None
    return Build(prefix, manifest)


def installed_builds(root: Path | None = None) -> list[Build]:
    """Every complete build under ``root`` (default: the data home's), newest version first."""
    root = Path(root or builds_root())
    if not root.is_dir():
        return []
    builds = [b for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
              for b in [load_build(p)] if b is not None]

    def order(build: Build) -> tuple:
        try:
            numbers = build.parsed_version.numbers
        except ValueError:
            numbers = ()
        return numbers, build.manifest.get("built_at", "")

    return sorted(builds, key=order, reverse=True)


def _find_existing(root: Path, sha256: str | None = None, given: str | None = None) -> Build | None:
    for build in installed_builds(root):
        if sha256 is not None and build.manifest.get("sha256") == sha256:
            return build
        if given is not None and build.manifest.get("source") == given:
            return build
    return None


@contextlib.contextmanager
def _install_lock(root: Path, log: Callable[[str], None]) -> Iterator[None]:
    """One install at a time per data home (a second one waits)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".install.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another `parbench install axosyslog` is running here; waiting for it")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def last_error_line(log_path: Path) -> str:
    """The line of a build log that best says what went wrong: the last
    ``error:`` line (compilers, configure), else the last ``Error`` /
    ``***`` line (make), else the last line."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    for pattern in (re.compile(r"\berror:", re.I), re.compile(r"\bError\b|\*\*\*|\bnot found\b")):
        hits = [line for line in lines if pattern.search(line)]
        if hits:
            return hits[-1]
    return lines[-1] if lines else "(empty log)"


def _run_step(name: str, argv: list[str], cwd: Path, log_path: Path, env: dict[str, str]) -> None:
    with open(log_path, "a") as log_file:
        log_file.write(f"\n$ {' '.join(argv)}    # {name}, in {cwd}\n")
        log_file.flush()
        try:
            proc = subprocess.run(argv, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=STEP_TIMEOUT_S)
        except FileNotFoundError as exc:
            raise BuildError(f"building AxoSyslog failed at {name}: {exc}; log {log_path}") from None
        except subprocess.TimeoutExpired:
            raise BuildError(f"building AxoSyslog failed at {name}: no end within {STEP_TIMEOUT_S:.0f} s; "
                             f"log {log_path}") from None
    if proc.returncode != 0:
        raise BuildError(f"building AxoSyslog failed at {name} (exit {proc.returncode}); log {log_path}: "
                         f"{last_error_line(log_path)}")


def _copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def probe_stages(binary: Path, version: str, workdir: Path) -> list[str]:
    """The stages of STAGE_PROBES this binary lacks (its ``--syntax-only``
    rejects a config with that stage), each with the reason; empty when it
    has them all."""
    major_minor = ".".join(version.split()[-1].split(".")[:2])
    missing = []
    for stage, element in STAGE_PROBES.items():
        conf = workdir / "stage-probe.conf"
        conf.write_text(STAGE_PROBE_CONFIG.format(version=major_minor, element=element))
        try:
            proc = subprocess.run([str(binary), "--syntax-only", "-f", str(conf)], capture_output=True,
                                  text=True, timeout=30, stdin=subprocess.DEVNULL, errors="replace")
        except (OSError, subprocess.TimeoutExpired) as exc:
            missing.append(f"{stage}: {exc}")
            continue
        if proc.returncode != 0:
            missing.append(f"{stage}: {_last_line(proc.stderr + proc.stdout)}")
    return missing


def _layout(prefix: Path) -> dict[str, str | None]:
    def first(*candidates: str) -> str | None:
        return next((c for c in candidates if (prefix / c).is_file()), None)

    return {"syslog_ng": first("sbin/syslog-ng", "bin/syslog-ng"),
            "syslog_ng_ctl": first("sbin/syslog-ng-ctl", "bin/syslog-ng-ctl"),
            "loggen": first("bin/loggen", "sbin/loggen")}


def build_axosyslog(source_text: str, *, force: bool = False, install_deps: bool = False,
                    root: Path | None = None, jobs: int | None = None,
                    log: Callable[[str], None] = lambda line: None) -> tuple[Build, bool]:
    """Build and install AxoSyslog from ``source_text`` (a tarball, a tree or
    a URL); (the build, whether anything was built).  A failed build keeps
    its build dir (with ``build.log``) until the next install."""
    root = Path(root or builds_root()).expanduser().absolute()
    with _install_lock(root, log):
        if not force and is_url(source_text):
            existing = _find_existing(root, given=source_text)
            if existing is not None:
                return existing, False
        for stale in root.glob(".build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        keep_work = False
        try:
            source = resolve_source(source_text, work)
            existing = _find_existing(root, sha256=source.sha256)
            if existing is not None and not force:
                return existing, False
            missing = missing_build_tools()
            if missing and install_deps:
                install_build_deps(MissingBuildTools(missing).packages, log)
                missing = missing_build_tools()
            if missing:
                raise MissingBuildTools(missing)
            try:
                return _build(source, root, work, jobs, log), True
            except BuildError:
                keep_work = True
                raise
        finally:
            if not keep_work:
                shutil.rmtree(work, ignore_errors=True)


def _build(source: Source, root: Path, work: Path, jobs: int | None, log: Callable[[str], None]) -> Build:
    src_dir = work / "src"
    if source.kind == "tree":
        log(f"copying the source tree {source.path}")
        _copy_tree(source.path, src_dir)
        tree = src_dir
    else:
        log(f"unpacking {source.path.name}")
        src_dir.mkdir()
        tree = _unpack(source.path, src_dir)
    version = source_version(tree, source.given)
    prefix = root / f"{version}-{source.short}"
    log_path = work / BUILD_LOG
    log_path.write_text(f"parbench install axosyslog: AxoSyslog {version} from {source.given} "
                        f"(sha256 {source.sha256}) into {prefix}\n")
    env = {**os.environ, "LC_ALL": "C"}
    jobs = jobs or os.cpu_count() or 1
    started, cpu_before = time.monotonic(), _children_cpu_seconds()
    stage = work / "stage"
    if not (tree / "configure").is_file():
        log("autogen.sh (a git tree has no configure)")
        _run_step("autogen.sh", ["./autogen.sh"], tree, log_path, env)
    log(f"configure --prefix={prefix} {' '.join(CONFIGURE_FLAGS)}")
    _run_step("configure", ["./configure", f"--prefix={prefix}", *CONFIGURE_FLAGS], tree, log_path, env)
    log(f"make -j{jobs} (minutes; log: {log_path})")
    _run_step("make", ["make", f"-j{jobs}"], tree, log_path, env)
    _run_step("make install", ["make", "install", f"DESTDIR={stage}"], tree, log_path, env)
    staged = stage / prefix.relative_to(prefix.anchor)
    layout = _layout(staged)
    if layout["syslog_ng"] is None:
        raise BuildError(f"make install put no sbin/syslog-ng under {prefix}; log {log_path}")
    wall, cpu = time.monotonic() - started, _children_cpu_seconds() - cpu_before
    # An earlier interrupted build (no manifest) or --force: replace it.
    if prefix.exists():
        shutil.rmtree(prefix)
    staged.rename(prefix)
    binary = prefix / layout["syslog_ng"]
    try:
        detected = detect_version([str(binary)])
    except InstallError as exc:
        shutil.rmtree(prefix, ignore_errors=True)
        raise BuildError(f"the built binary does not run: {exc}; log {log_path}") from None
    if not Version.parse(detected).is_axosyslog:
        shutil.rmtree(prefix, ignore_errors=True)
        raise BuildError(f"{source.given} built {detected}, not AxoSyslog (for syslog-ng use "
                         "parbench install syslog-ng, or --impl syslog-ng:PATH for your own build)")
    missing_stages = probe_stages(binary, detected, work)
    shutil.copyfile(log_path, prefix / "parbench-build.log")
    manifest = {
        "version": detected,
        "source_version": version,
        "source": source.given,
        "source_kind": source.kind,
        "sha256": source.sha256,
        "configure_flags": [f"--prefix={prefix}", *CONFIGURE_FLAGS],
        "jobs": jobs,
        "build_wall_seconds": round(wall, 1),
        "build_cpu_seconds": round(cpu, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "stages": list(STAGE_PROBES),
        "stages_missing": missing_stages,
        **layout,
    }
    # Last, atomically: a prefix without its manifest is never taken as built.
    temp = prefix / f".{MANIFEST}.tmp"
    temp.write_text(json.dumps(manifest, indent=2) + "\n")
    temp.rename(prefix / MANIFEST)
    return Build(prefix, manifest)


@click.command("axosyslog")
@click.option("--source", "source", required=True, metavar="TARBALL|DIR|URL",
              help="AxoSyslog release sources: a tarball, a source tree, or an http(s) URL of a tarball.")
@click.option("--install-build-deps", is_flag=True,
              help="Install missing build tools with apt-get (the only system-wide change; Debian, root or sudo).")
@click.option("--force", is_flag=True, help="Build again even if this source is already built.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="make -j (default: the CPU count).")
def install_command(source: str, install_build_deps: bool, force: bool, jobs: int | None) -> None:
    """Build AxoSyslog from source into the data home (axosyslog/VERSION-SHA256),
    with the bundled ivykis; run it with --impl axosyslog[:VERSION].  A second
    run for the same source does nothing.  Failures are one line, exit 2."""
    started = time.monotonic()
    build, did_build = build_axosyslog(source, force=force, install_deps=install_build_deps, jobs=jobs,
                                       log=lambda line: click.echo(f"  {line}", err=True))
    what = "built and installed" if did_build else "already installed"
    extra = ""
    if did_build:
        extra = (f"; build {build.manifest['build_wall_seconds']:.0f} s wall, "
                 f"{build.manifest['build_cpu_seconds']:.0f} s CPU")
    if build.manifest.get("stages_missing"):
        extra += f"; WARNING: {'; '.join(build.manifest['stages_missing'])}"
    click.echo(f"{build.version} {what} in {build.prefix} ({time.monotonic() - started:.1f} s{extra}); "
               f"run it with --impl axosyslog:{build.version.split()[-1]}")
