"""The syslog-ng family's installer, locator and version parser, and `parbench doctor`."""
from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from syslog_ng_required import skip_unless_required
from click.testing import CliRunner

from parbench import home
from parbench.harness.syslog_ng import debian, installation
from parbench.harness.syslog_ng.version import parse_version_output, reference_profile_for
from parbench.cli import main

SYSLOG_NG_481 = textwrap.dedent("""\
    syslog-ng 4 (4.8.1)
    Config version: 4.2
    Installer-Version: 4.8.1
    Revision: 4.8.1-5+deb13u1
""")
AXOSYSLOG_426 = textwrap.dedent("""\
    axosyslog 4 (4.26.0)
    Config version: 4.2
    Installer-Version: 4.26.0
""")
SYSLOG_NG_338 = "syslog-ng 3 (3.38.1)\nConfig version: 3.35\n"


def fake_build(prefix: Path, version_text: str, with_loggen: bool = True) -> Path:
    """A user's own build: PREFIX/sbin/syslog-ng printing version_text, PREFIX/bin/loggen."""
    (prefix / "sbin").mkdir(parents=True)
    (prefix / "bin").mkdir()
    binary = prefix / "sbin" / "syslog-ng"
    binary.write_text(f"#!/bin/sh\ncat <<'EOF'\n{version_text}EOF\n")
    binary.chmod(0o755)
    if with_loggen:
        loggen = prefix / "bin" / "loggen"
        loggen.write_text("#!/bin/sh\nexit 0\n")
        loggen.chmod(0o755)
    return binary


@pytest.mark.parametrize("text, expected", [
    (SYSLOG_NG_481, "syslog-ng 4.8.1"),
    (AXOSYSLOG_426, "axosyslog 4.26.0"),
    (SYSLOG_NG_338, "syslog-ng 3.38.1"),
    ("syslog-ng 4 (4.9.0)\nInstaller-Version: 4.9.0\nhttps://axoflow.com/\n", "axosyslog 4.9.0"),
])
def test_parse_version_output(text, expected):
    assert parse_version_output(text) == expected


def test_parse_version_output_rejects_text_without_version():
    with pytest.raises(ValueError, match="no version"):
        parse_version_output("Usage: syslog-ng [OPTION?]\n")


@pytest.mark.parametrize("version, profile", [
    ("syslog-ng 4.3.0", "syslog-ng-4.8"),
    ("syslog-ng 4.8.1", "syslog-ng-4.8"),
    ("syslog-ng 4.11.0", "syslog-ng-4.8"),
    ("4.8.1", "syslog-ng-4.8"),
    ("axosyslog 4.9.0", "axosyslog-4.26"),
    ("axosyslog 4.26.0", "axosyslog-4.26"),
    ("4.26.0", "axosyslog-4.26"),
])
def test_reference_profile_for(version, profile):
    assert reference_profile_for(version) == profile


def test_reference_profile_for_rejects_versions_without_parallelize():
    with pytest.raises(ValueError, match=">= 4.3"):
        reference_profile_for("syslog-ng 3.38.1")


def test_detect_version_runs_the_binary(tmp_path):
    binary = fake_build(tmp_path / "p", AXOSYSLOG_426)
    assert installation.detect_version([str(binary)]) == "axosyslog 4.26.0"


def test_detect_version_of_a_binary_that_says_nothing_is_one_clear_error(tmp_path):
    binary = tmp_path / "syslog-ng"
    binary.write_text("#!/bin/sh\necho 'segfault-ish' >&2\nexit 3\n")
    binary.chmod(0o755)
    with pytest.raises(installation.InstallError) as info:
        installation.detect_version([str(binary)])
    assert "exit 3" in str(info.value) and "\n" not in str(info.value)


def test_a_relative_path_is_made_absolute(tmp_path, monkeypatch):
    # Targets start the binary from their own working directory.
    binary = fake_build(tmp_path / "axo", AXOSYSLOG_426)
    monkeypatch.chdir(tmp_path)
    found, reasons = installation.locate_syslog_ng("axo/sbin/syslog-ng")
    assert reasons == [] and found.syslog_ng == binary and found.syslog_ng.is_absolute()
    assert found.loggen == tmp_path / "axo" / "bin" / "loggen"


def test_explicit_build_prefix_is_found_with_its_loggen(tmp_path):
    binary = fake_build(tmp_path / "axo", AXOSYSLOG_426)
    found, reasons = installation.locate_syslog_ng(tmp_path / "axo")
    assert reasons == []
    assert found.syslog_ng == binary and found.source == "explicit"
    assert found.version == "axosyslog 4.26.0"
    assert found.loggen == tmp_path / "axo" / "bin" / "loggen"
    assert found.syslog_ng_argv() == [str(binary)]


def test_too_old_syslog_ng_is_refused_with_the_reason(tmp_path):
    fake_build(tmp_path / "old", SYSLOG_NG_338)
    found, reasons = installation.locate_syslog_ng(tmp_path / "old" / "sbin" / "syslog-ng")
    assert found is None
    assert "3.38.1" in reasons[0] and "4.3" in reasons[0]


def test_env_var_points_at_a_build(tmp_path, monkeypatch):
    binary = fake_build(tmp_path / "b", SYSLOG_NG_481)
    monkeypatch.setenv(installation.ENV_SYSLOG_NG, str(binary))
    found = installation.find_syslog_ng(root=tmp_path / "no-root")
    assert found is not None and found.source == "env" and found.version == "syslog-ng 4.8.1"


def test_nothing_found_says_why_for_each_place(tmp_path, monkeypatch):
    monkeypatch.delenv(installation.ENV_SYSLOG_NG, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    found, reasons = installation.locate_syslog_ng(root=tmp_path / "none")
    assert found is None
    assert any("no syslog-ng installed in" in r for r in reasons)
    assert any(r.startswith("PATH:") for r in reasons)


def test_doctor_without_syslog_ng_exits_0_and_says_why(tmp_path):
    env = {home.ENV_HOME: str(tmp_path), "PATH": str(tmp_path / "empty-bin"), installation.ENV_SYSLOG_NG: ""}
    result = CliRunner().invoke(main, ["doctor"], env=env)
    assert result.exit_code == 0, result.output
    assert "reference: runnable" in result.output
    assert "syslog-ng: not runnable" in result.output
    assert "parbench install syslog-ng" in result.output
    from parbench.harness.targets.registry import kinds

    listed = [line.split(":")[0] for line in result.output.splitlines() if not line.startswith(("  ", "data home"))]
    assert listed == [kind.name for kind in kinds()] == ["reference", "syslog-ng", "axosyslog", "command"]
    assert "axosyslog: not runnable, no AxoSyslog built in" in result.output
    assert "parbench install axosyslog --source" in result.output
    assert f"data home: {tmp_path}" in result.output


def test_doctor_with_a_user_build(tmp_path):
    fake_build(tmp_path / "axo", AXOSYSLOG_426)
    result = CliRunner().invoke(main, ["doctor", "--syslog-ng", str(tmp_path / "axo")])
    assert result.exit_code == 0, result.output
    assert "axosyslog 4.26.0" in result.output and "axosyslog-4.26" in result.output
    assert f"loggen: {tmp_path / 'axo' / 'bin' / 'loggen'}" in result.output


def test_unreachable_registry_is_one_line_and_exit_2(tmp_path):
    # Port 9 (discard) on loopback refuses connections: no network involved.
    root = tmp_path / "root"
    result = CliRunner().invoke(main, ["install", "syslog-ng", "--root", str(root),
                                       "--mirror", "http://127.0.0.1:9/debian"])
    assert result.exit_code == 2
    # One line, from the one place errors are printed (parbench.cli), after the progress lines.
    errors = [line for line in result.output.splitlines() if line.startswith("parbench install: ")]
    assert errors == result.output.strip().splitlines()[-1:]
    assert len(errors) == 1 and "cannot reach the Debian package registry" in errors[0]
    assert "127.0.0.1:9" in errors[0]
    assert not root.exists()
    assert list(tmp_path.iterdir()) == [], "the staging dir must be removed"


def test_unreachable_registry_from_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv(debian.ENV_MIRROR, "http://127.0.0.1:9/debian")
    with pytest.raises(debian.RegistryUnreachable):
        debian.install_syslog_ng(tmp_path / "root")


@pytest.fixture(scope="module")
def installed() -> installation.Installation:
    """The default private root, installed if missing (as CI does first)."""
    try:
        result, _ = debian.install_syslog_ng()
    except debian.RegistryUnreachable as exc:
        skip_unless_required(f"Debian package registry unreachable, cannot install syslog-ng: {exc}")
    return result


def test_second_install_does_nothing_and_says_where(installed):
    manifest = installed.root / installation.MANIFEST
    before = manifest.stat().st_mtime_ns
    result = CliRunner().invoke(main, ["install", "syslog-ng", "--root", str(installed.root)])
    assert result.exit_code == 0, result.output
    assert f"already installed in {installed.root}" in result.output
    assert manifest.stat().st_mtime_ns == before


def test_installed_syslog_ng_runs_from_its_private_root(installed):
    assert installed.parsed_version.major_minor >= (4, 3)
    assert installed.loader is not None and installed.loader.is_relative_to(installed.root)
    proc = subprocess.run([*installed.syslog_ng_argv(), "--version"], env=installed.full_env(),
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0
    assert str(installed.root) in proc.stdout  # module dir inside the root, not the system's
    wrapper = subprocess.run([str(installed.root / "bin" / "syslog-ng"), "--version"],
                             capture_output=True, text=True, timeout=10)
    assert parse_version_output(wrapper.stdout) == installed.version


def test_installed_loggen_runs(installed):
    proc = subprocess.run([*installed.loggen_argv(), "--help"], env=installed.full_env(),
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0 and "--active-connections" in proc.stdout


def test_binary_in_a_private_root_uses_the_roots_loader(installed):
    if installed.root is None:
        pytest.skip(f"syslog-ng here comes from {installed.source}, not a private root")
    found = installation.find_syslog_ng(installed.root / "usr" / "sbin" / "syslog-ng")
    assert found is not None and found.root == installed.root
    assert found.loader is not None and found.loader.is_relative_to(installed.root)


def test_mirror_comes_from_the_systems_apt_sources(tmp_path):
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "a-security.sources").write_text("Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: x\n")
    (d / "b-other.list").write_text("# deb http://commented.invalid/debian x main\n"
                                    "deb [arch=amd64] http://third.invalid/apt x main\n")
    (d / "c-debian.sources").write_text("Types: deb\nURIs: http://archive.invalid/debian/\nSuites: bookworm\n")
    assert debian.system_debian_mirror((tmp_path / "missing.list", d)) == "http://archive.invalid/debian"
    one_line = tmp_path / "sources.list"
    one_line.write_text("deb http://one.invalid/debian bookworm main\n")
    assert debian.system_debian_mirror((one_line,)) == "http://one.invalid/debian"
    assert debian.system_debian_mirror((tmp_path / "nothing",)) is None
