"""`parbench install axosyslog`: the build installer, on a fake source tree
whose autogen/configure/make stand in for AxoSyslog's (seconds instead of
minutes), and on the real vendored tarball when a run promised AxoSyslog."""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import tarfile
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from axosyslog_required import skip_unless_axosyslog
from parbench import home
from parbench.cli import main
from parbench.harness.syslog_ng import axosyslog, build

FAKE_VERSION = "4.99.0"

FAKE_SYSLOG_NG = """#!/bin/sh
case "$1" in
  --version) printf 'axosyslog 4 ({version})\\nConfig version: 4.2\\nInstaller-Version: {version}\\n'; exit 0;;
  --syntax-only) {syntax}; exit 0;;
esac
exit 1
"""
# configure records its arguments and writes a Makefile whose install
# target puts a fake syslog-ng, syslog-ng-ctl and loggen under the prefix.
FAKE_CONFIGURE = """#!/bin/sh
echo "$@" >> "$FAKE_BUILD_RECORD"
for a in "$@"; do case $a in --prefix=*) prefix=${a#--prefix=};; esac; done
printf 'all:\\n\\t@echo "make all" >> "$$FAKE_BUILD_RECORD"\\n\\t{make_fails}\\n' > Makefile
printf 'install:\\n\\tmkdir -p $(DESTDIR)%s/sbin $(DESTDIR)%s/bin\\n' "$prefix" "$prefix" >> Makefile
printf '\\tcp fake-syslog-ng $(DESTDIR)%s/sbin/syslog-ng\\n\\tcp fake-syslog-ng $(DESTDIR)%s/sbin/syslog-ng-ctl\\n' "$prefix" "$prefix" >> Makefile
printf '\\tcp fake-syslog-ng $(DESTDIR)%s/bin/loggen\\n' "$prefix" >> Makefile
"""


def fake_tree(where: Path, *, version: str = FAKE_VERSION, make_fails: bool = False,
              product: str = "axosyslog", syntax: str = "true") -> Path:
    """A source tree that builds in milliseconds: VERSION.txt, configure.ac,
    an autogen.sh that makes configure, and a fake syslog-ng."""
    where.mkdir(parents=True)
    (where / "VERSION.txt").write_text(version + "\n")
    (where / "configure.ac").write_text("AC_INIT([fake], [%s])\n" % version)
    autogen = where / "autogen.sh"
    autogen.write_text("#!/bin/sh\necho autogen >> \"$FAKE_BUILD_RECORD\"\ncp configure.sh configure\n"
                       "chmod +x configure\n")
    configure = where / "configure.sh"
    failing = "echo lib/fake.c:12:3: error: fake failure here; exit 1"
    configure.write_text(FAKE_CONFIGURE.replace("{make_fails}", failing if make_fails else "true"))
    binary = where / "fake-syslog-ng"
    text = FAKE_SYSLOG_NG.format(version=version, syntax=syntax)
    if product != "axosyslog":
        text = text.replace("axosyslog 4", f"{product} 4")
    binary.write_text(text)
    for path in (autogen, configure, binary):
        path.chmod(0o755)
    return where


def tarball_of(tree: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:xz") as archive:
        archive.add(tree, arcname=f"axosyslog-{FAKE_VERSION}")
    return dest


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A private data home and a record of what the fake build ran."""
    record = tmp_path / "build-record.txt"
    record.touch()
    monkeypatch.setenv(home.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.setenv("FAKE_BUILD_RECORD", str(record))
    monkeypatch.setattr(build, "missing_build_tools", lambda: [])
    return record


def install(*args: str):
    return CliRunner().invoke(main, ["install", "axosyslog", *args])


def error_line(result) -> str:
    """The one error line (progress lines on stderr come before it)."""
    lines = result.output.strip().splitlines()
    assert lines and lines[-1].startswith("parbench install: "), result.output
    assert not any("Traceback" in line for line in lines), result.output
    return lines[-1]


def test_tree_builds_into_version_and_checksum_prefix_with_the_bundled_ivykis(tmp_path, env):
    tree = fake_tree(tmp_path / "src")
    result = install("--source", str(tree))
    assert result.exit_code == 0, result.output
    (built,) = build.installed_builds()
    assert built.prefix == tmp_path / "home" / "axosyslog" / f"{FAKE_VERSION}-{build.sha256_tree(tree)[:12]}"
    assert built.version == f"axosyslog {FAKE_VERSION}"
    assert f"axosyslog {FAKE_VERSION} built and installed in {built.prefix}" in result.output
    configure_args = env.read_text().splitlines()[1].split()
    assert configure_args[0] == f"--prefix={built.prefix}"
    for flag in ("--with-ivykis=internal", "--disable-all-modules", "--enable-ipv6", "--enable-json"):
        assert flag in configure_args
    manifest = json.loads((built.prefix / build.MANIFEST).read_text())
    assert manifest["sha256"] == build.sha256_tree(tree) and manifest["source_kind"] == "tree"
    assert manifest["stages_missing"] == []
    assert (built.prefix / "parbench-build.log").is_file()
    # the user's tree is untouched: configure ran in a copy
    assert not (tree / "configure").exists() and not (tree / "Makefile").exists()
    # no build dir is left behind after a success
    assert not list((tmp_path / "home" / "axosyslog").glob(".build-*"))


def test_second_run_does_nothing_and_force_rebuilds(tmp_path, env):
    tree = fake_tree(tmp_path / "src")
    assert install("--source", str(tree)).exit_code == 0
    runs = env.read_text().count("make all")
    again = install("--source", str(tree))
    assert again.exit_code == 0 and "already installed" in again.output
    assert env.read_text().count("make all") == runs
    forced = install("--source", str(tree), "--force")
    assert forced.exit_code == 0 and "built and installed" in forced.output
    assert env.read_text().count("make all") == runs + 1
    assert len(build.installed_builds()) == 1


def test_a_changed_tree_is_another_build(tmp_path, env):
    tree = fake_tree(tmp_path / "src")
    assert install("--source", str(tree)).exit_code == 0
    (tree / "NEWS.md").write_text("a local patch\n")
    assert install("--source", str(tree)).exit_code == 0
    assert len({b.prefix for b in build.installed_builds()}) == 2


def test_tarball_source(tmp_path, env):
    tarball = tarball_of(fake_tree(tmp_path / "src"), tmp_path / "fake.tar.xz")
    result = install("--source", str(tarball))
    assert result.exit_code == 0, result.output
    (built,) = build.installed_builds()
    assert built.manifest["sha256"] == hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert built.name == f"{FAKE_VERSION}-{built.manifest['sha256'][:12]}"


class _Served:
    """A loopback HTTP server over one directory, counting requests."""

    def __init__(self, directory: Path):
        served = self
        self.requests: list[str] = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(directory), **kwargs)

            def do_GET(self):
                served.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def served(tmp_path):
    directory = tmp_path / "www"
    directory.mkdir()
    server = _Served(directory)
    try:
        yield directory, server
    finally:
        server.close()


def test_url_is_downloaded_once_and_matched_by_checksum(tmp_path, env, served):
    directory, server = served
    tarball_of(fake_tree(tmp_path / "src"), directory / "axosyslog-fake.tar.xz")
    url = server.url("axosyslog-fake.tar.xz")
    result = install("--source", url)
    assert result.exit_code == 0, result.output
    assert server.requests == ["/axosyslog-fake.tar.xz"]
    (built,) = build.installed_builds()
    assert built.manifest["source"] == url and built.manifest["source_kind"] == "url"
    # the same URL again: nothing downloaded, nothing built
    again = install("--source", url)
    assert "already installed" in again.output and server.requests == ["/axosyslog-fake.tar.xz"]
    # the same bytes under another name: downloaded, recognised by checksum
    (directory / "copy.tar.xz").write_bytes((directory / "axosyslog-fake.tar.xz").read_bytes())
    other = install("--source", server.url("copy.tar.xz"))
    assert "already installed" in other.output and server.requests[-1] == "/copy.tar.xz"
    assert env.read_text().count("make all") == 1


def test_unreachable_url_is_one_line_exit_2(tmp_path, env, served):
    _, server = served
    result = install("--source", server.url("missing.tar.xz"))
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("parbench install: cannot download http://127.0.0.1:") and "\n" not in line
    assert line.endswith("/missing.tar.xz: HTTP 404 File not found")


def test_build_failure_is_one_line_with_the_log_and_its_error(tmp_path, env):
    tree = fake_tree(tmp_path / "src", make_fails=True)
    result = install("--source", str(tree))
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert line.startswith("parbench install: building AxoSyslog failed at make (exit 2); log ")
    assert line.endswith(": lib/fake.c:12:3: error: fake failure here")
    log_path = Path(line.split("; log ")[1].split(":")[0])
    assert log_path.is_file() and "fake failure here" in log_path.read_text()
    assert build.installed_builds() == []
    # nothing under the would-be prefix, and the next install clears the old build dir
    assert not list((tmp_path / "home" / "axosyslog").glob(f"{FAKE_VERSION}-*"))
    fake_tree(tmp_path / "good")
    assert install("--source", str(tmp_path / "good")).exit_code == 0
    assert not log_path.exists()


def test_an_interrupted_build_is_never_taken_as_installed(tmp_path, env):
    tree = fake_tree(tmp_path / "src")
    prefix = tmp_path / "home" / "axosyslog" / f"{FAKE_VERSION}-{build.sha256_tree(tree)[:12]}"
    (prefix / "sbin").mkdir(parents=True)
    (prefix / "sbin" / "syslog-ng").write_text("half-installed")
    assert build.installed_builds() == []
    result = CliRunner().invoke(main, ["run", "--help"])  # registry loads with a half build around
    assert result.exit_code == 0
    assert install("--source", str(tree)).exit_code == 0
    (built,) = build.installed_builds()
    assert built.prefix == prefix and (prefix / "sbin" / "syslog-ng").read_text() != "half-installed"


def test_a_syslog_ng_source_is_refused(tmp_path, env):
    tree = fake_tree(tmp_path / "src", version="4.8.1", product="syslog-ng")
    result = install("--source", str(tree))
    assert result.exit_code == 2
    assert "built syslog-ng 4.8.1, not AxoSyslog" in error_line(result)
    assert build.installed_builds() == []


def test_a_build_lacking_a_stage_says_which(tmp_path, env):
    # the fake binary rejects configs with a kv-parser, as a build without kvformat would
    syntax = 'grep -q kv-parser "$3" && { echo "Error parsing config, kv-parser not found" >&2; exit 1; }; true'
    tree = fake_tree(tmp_path / "src", syntax=syntax)
    result = install("--source", str(tree))
    assert result.exit_code == 0, result.output
    (built,) = build.installed_builds()
    assert built.manifest["stages_missing"] == ["kv-parser: Error parsing config, kv-parser not found"]
    assert "WARNING: kv-parser" in result.output


@pytest.mark.parametrize("source, expected", [
    ("no-such.tar.xz", "no such file or directory"),
    ("not-a-tarball.tar.xz", "not a readable tarball"),
    ("not-a-tree", "not an AxoSyslog source tree"),
])
def test_bad_sources_are_one_line_exit_2(tmp_path, env, source, expected):
    (tmp_path / "not-a-tarball.tar.xz").write_text("hello")
    (tmp_path / "not-a-tree").mkdir()
    (tmp_path / "not-a-tree" / "README").write_text("hello")
    result = install("--source", str(tmp_path / source))
    assert result.exit_code == 2
    assert expected in error_line(result)


def test_missing_build_tools_name_the_debian_packages(tmp_path, monkeypatch):
    monkeypatch.setenv(home.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setattr(build, "ACLOCAL_DIRS", (tmp_path / "no-aclocal",))
    result = install("--source", str(fake_tree(tmp_path / "src")))
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("parbench install: missing build tools: cc (build-essential), ")
    assert ("install them with: apt-get install autoconf autoconf-archive automake bison build-essential flex "
            "gperf libglib2.0-dev libjson-c-dev libpcre2-dev libssl-dev libtool pkg-config "
            "(or rerun with --install-build-deps)") in line


def test_install_build_deps_runs_apt_get_for_what_is_missing(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apt-calls"
    for name in ("apt-get", "sudo"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n'
                          + ('exec "$@"\n' if name == "sudo" else "exit 0\n"))
        script.chmod(0o755)
    monkeypatch.setenv(home.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(build, "BUILD_TOOLS", (("gperf", "command", "gperf"), ("bison", "command", "bison")))
    result = install("--source", str(fake_tree(tmp_path / "src")), "--install-build-deps")
    # the fake apt-get installs nothing, so the tools are still missing afterwards
    assert result.exit_code == 2
    assert "missing build tools: gperf (gperf), bison (bison)" in error_line(result)
    assert "apt-get install -y -q --no-install-recommends bison gperf" in calls.read_text()


def test_builds_are_selected_by_version(tmp_path, env):
    for version in ("4.26.0", "4.27.0", "4.26.1"):
        fake_tree(tmp_path / version, version=version)
        assert install("--source", str(tmp_path / version)).exit_code == 0
    builds = build.installed_builds()
    assert [b.version for b in builds] == ["axosyslog 4.27.0", "axosyslog 4.26.1", "axosyslog 4.26.0"]
    assert axosyslog.select_build(None, builds).version == "axosyslog 4.27.0"
    assert axosyslog.select_build("4.26", builds).version == "axosyslog 4.26.1"
    assert axosyslog.select_build("4.26.0", builds).version == "axosyslog 4.26.0"
    sha = builds[2].manifest["sha256"][:8]
    assert axosyslog.select_build(f"4.26.0-{sha}", builds) == builds[2]
    with pytest.raises(axosyslog.InstallError, match=r"no AxoSyslog 4\.25 built here \(built: "):
        axosyslog.select_build("4.25", builds)


# ---------------------------------------------------------------- the real tarball


@pytest.fixture(scope="module")
def real_source() -> Path:
    source = os.environ.get("PARBENCH_AXOSYSLOG_SOURCE")
    if not source:
        skip_unless_axosyslog("PARBENCH_AXOSYSLOG_SOURCE names no AxoSyslog source here")
    path = Path(source)
    builds = [b for b in build.installed_builds() if b.manifest.get("sha256") == build.sha256_file(path)]
    if not builds:
        skip_unless_axosyslog(f"{path} is not built here (run: parbench install axosyslog --source {path})")
    return path


@pytest.mark.axosyslog
def test_the_real_source_is_already_installed_and_a_second_run_is_fast(real_source):
    started = time.monotonic()
    result = install("--source", str(real_source))
    assert result.exit_code == 0, result.output
    assert "already installed" in result.output
    assert time.monotonic() - started < 30  # a rebuild takes minutes; this only hashes
    sha256 = build.sha256_file(real_source)
    (built,) = [b for b in build.installed_builds() if b.manifest["sha256"] == sha256]
    assert "--with-ivykis=internal" in built.manifest["configure_flags"]
    assert built.manifest["stages_missing"] == []


@pytest.mark.axosyslog
def test_the_real_tarball_by_url_from_a_loopback_server(real_source, tmp_path):
    directory = tmp_path / "www"
    directory.mkdir()
    (directory / real_source.name).symlink_to(real_source)
    server = _Served(directory)
    try:
        result = install("--source", server.url(real_source.name))
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    assert "already installed" in result.output and server.requests == [f"/{real_source.name}"]


def test_doctor_lists_each_build_with_version_prefix_and_profile(tmp_path, env):
    for version in ("4.26.0", "4.27.0"):
        fake_tree(tmp_path / version, version=version)
        assert install("--source", str(tmp_path / version)).exit_code == 0
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "axosyslog: runnable, 2 build(s); newest axosyslog 4.27.0" in lines
    for build_ in build.installed_builds():
        number = build_.version.split()[-1]
        assert any(line.startswith(f"  - axosyslog:{number}: {build_.version} in {build_.prefix}; "
                                   "reference profile axosyslog-4.26; built from ") for line in lines), result.output


def test_axosyslog_path_specs(tmp_path, monkeypatch):
    from parbench.harness.targets.base import TargetUnavailable
    from parbench.harness.targets.registry import get_target

    monkeypatch.setenv(home.ENV_HOME, str(tmp_path / "home"))
    axo = tmp_path / "axo" / "sbin" / "syslog-ng"
    axo.parent.mkdir(parents=True)
    axo.write_text(FAKE_SYSLOG_NG.format(version="4.26.0", syntax="true"))
    axo.chmod(0o755)
    target = get_target(f"axosyslog:{tmp_path / 'axo'}")
    assert target.version == "axosyslog 4.26.0" and target.reference_profile() == "axosyslog-4.26"
    sng = tmp_path / "sng" / "sbin" / "syslog-ng"
    sng.parent.mkdir(parents=True)
    sng.write_text(FAKE_SYSLOG_NG.format(version="4.8.1", syntax="true").replace("axosyslog 4", "syslog-ng 4"))
    sng.chmod(0o755)
    with pytest.raises(TargetUnavailable, match=r"is not AxoSyslog \(use --impl syslog-ng:"):
        get_target(f"axosyslog:{sng}")
    # nothing built in this data home: one line saying how to build one
    with pytest.raises(TargetUnavailable, match=r"^axosyslog: not runnable here: no AxoSyslog built in .*"
                                                 r"parbench install axosyslog --source"):
        get_target("axosyslog")
    result = CliRunner().invoke(main, ["run", str(Path(__file__).parent.parent / "scenarios" / "round-robin.toml"),
                                       "--quick", "--impl", "axosyslog:4.26", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no AxoSyslog built in" in result.output
