import re

from click.testing import CliRunner

from parbench.cli import main
from parbench.reference.partition import g_str_hash


def run(args, stdin=None):
    return CliRunner().invoke(main, ["place", *args], input=stdin)


def placements(output):
    return dict(re.findall(r"^(\S+)\s+(\d+)$", output, re.M))


def test_values_from_arguments():
    result = run(["--partitions", "4", "web-01", "web-10", "web-02", "db"])
    assert result.exit_code == 0, result.output
    got = placements(result.output)
    for host in ("web-01", "web-10", "web-02", "db"):
        assert int(got[host]) == g_str_hash(host.encode()) % 4
    assert "raw value is hashed" in result.output
    # web-01 and web-10 collide: 2 of 4 on one partition -> imbalance 2.00
    assert "imbalance: 2.00" in result.output


def test_single_value_prints_no_table():
    result = run(["-n", "8", "web-01"])
    assert result.exit_code == 0
    assert "imbalance" not in result.output
    assert placements(result.output) == {"web-01": str(g_str_hash(b"web-01") % 8)}


def test_values_from_stdin_and_file(tmp_path):
    hosts = [f"host-{i}" for i in range(16)]
    result = run(["-n", "4"], stdin="\n".join(hosts) + "\n")
    assert result.exit_code == 0, result.output
    assert placements(result.output) == {h: str(g_str_hash(h.encode()) % 4) for h in hosts}
    f = tmp_path / "hosts.txt"
    f.write_bytes(b"\xffweird\r\nplain\n")
    result = run(["-n", "4", "--file", str(f)])
    assert result.exit_code == 0, result.output
    weird = g_str_hash(b"\xffweird") % 4
    assert f"\\xffweird  {weird}" in result.output
    assert placements(result.output)["plain"] == str(g_str_hash(b"plain") % 4)


def test_share_and_imbalance_table():
    result = run(["-n", "2", "a", "a", "a", "b"])  # repeated values weigh more
    assert result.exit_code == 0
    pa, pb = g_str_hash(b"a") % 2, g_str_hash(b"b") % 2
    assert pa != pb
    assert re.search(rf"^\s+{pa}\s+1\s+3\s+75\.0%", result.output, re.M)
    assert "imbalance: 1.50" in result.output


def test_profile_limits():
    result = run(["-n", "20", "--profile", "syslog-ng-4.8", "a", "b"])
    assert result.exit_code == 0
    assert "clamped to 16" in result.output
    assert placements(result.output)["a"] == str(g_str_hash(b"a") % 16)
    result = run(["-n", "40", "--profile", "axosyslog-4.26", "a", "b"])
    assert result.exit_code == 0
    assert "used_workers='32'" in result.output
    assert placements(result.output)["a"] == str(g_str_hash(b"a") % 32)


def test_bypass():
    result = run(["-n", "0", "a"])
    assert result.exit_code == 0
    assert "bypass" in result.output


def test_errors_are_one_line_exit_2(tmp_path):
    for args in (["-n", "4", "--key", "$(echo)", "a"],
                 ["-n", "-1", "a"],
                 ["-n", "4", "--file", str(tmp_path / "missing.txt")],
                 ["-n", "4", "--file", str(tmp_path / "x"), "a"]):
        result = run(args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "Traceback" not in result.output
    empty = run(["-n", "4"], stdin="")
    assert empty.exit_code == 2 and "no values" in empty.output


def test_literal_and_template_key_notes():
    assert "literal" in run(["-n", "4", "--key", "static", "a"]).output
    assert "formatted" in run(["-n", "4", "--key", "$HOST-$PROGRAM", "a"]).output


def test_option_errors_are_one_line_too():
    for args, fragment in ((["a"], "--partitions N is required"),
                           (["-n", "four", "a"], "whole number"),
                           (["-n", "4", "--profile", "rsyslog", "a"], "'rsyslog' is not one of")):
        result = run(args)
        assert result.exit_code == 2, result.output
        assert result.output.strip().count("\n") == 0 and fragment in result.output, result.output


def test_errors_go_through_the_commands_one_handler():
    result = run(["-n", "-1", "a"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == ("parbench place: --partitions -1: partitions(-1): "
                             "expected 0 (bypass) or a positive count\n")
