"""reference.config: the syslog-ng config language subset, value by value and
error by error (each error is checked down to its file:line:column)."""
from __future__ import annotations

import dataclasses
import glob
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from click.testing import CliRunner

from parbench.cli import main
from parbench.errors import EXIT_USAGE, UsageError
from parbench.reference.config import ConfigError, load_config, parse_config
from parbench.reference.config_lexer import tokenize
from parbench.reference.config_model import Destination, Parallelize, Parser
from parbench.reference.profiles import AXOSYSLOG_4_26, SYSLOG_NG_4_8

ROOT = Path(__file__).resolve().parent.parent
SRC = 'source s { tcp(port(2000)); };\n'
DST = 'destination d { file("/tmp/x"); };\n'


def parse(text, profile=None, file="t.conf"):
    warnings: list[str] = []
    cfg = parse_config(text, file, profile, warn=warnings.append)
    return cfg, warnings


def error(text, profile=None, file="t.conf") -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, file, profile, warn=lambda w: None)
    return str(info.value)


def with_log(body: str, head: str = SRC + DST) -> str:
    return "@version: 4.8\n" + head + "log {\n" + body + "\n};\n"


def par(text: str, profile=None) -> Parallelize:
    cfg, _ = parse(with_log(f"source(s); {text}; destination(d);"), profile)
    return cfg.log_paths[0].pipeline[0]


# ---------------------------------------------------------------- lexer


@pytest.mark.parametrize(
    "literal,value",
    [
        ("10", 10), ("10M", 10_000_000), ("10MB", 10_000_000), ("64k", 64_000), ("64K", 64_000),
        ("1G", 1_000_000_000), ("10KiB", 10_240), ("1Mi", 1_048_576), ("1GiB", 1 << 30),
        ("5B", 5), ("0x1F", 31), ("017", 15), ("+3", 3),
    ],
)
def test_numbers_with_syslog_ng_suffixes(literal, value):
    cfg, _ = parse(with_log("source(s); destination(d);", f"options {{ log-iw-size({literal}); }};\n" + SRC + DST))
    assert cfg.options.log_iw_size == value


def test_strings_escapes_and_single_quotes():
    toks = tokenize(r'"a\"b\\c\n\t\r\x41\o101\q" ' + "'x\\n'", "f")
    assert toks[0].value == 'a"b\\c\n\t\rAAq'
    assert toks[1].value == "x\\n"


def test_comments_commas_and_dotted_words():
    toks = tokenize("ip(127.0.0.1), # port(1)\nport(2)", "f")
    assert [t.text for t in toks[:-1]] == ["ip", "(", "127.0.0.1", ")", "port", "(", "2", ")"]
    assert (toks[4].line, toks[4].col) == (2, 1)


def test_every_token_has_line_and_column():
    toks = tokenize('log {\n  source(s);\n\tdestination("d");\n};', "f")
    pos = {t.text: (t.line, t.col) for t in toks}
    assert pos["log"] == (1, 1) and pos["{"] == (1, 5)
    assert pos["source"] == (2, 3) and pos["s"] == (2, 10)
    assert pos['"d"'] == (3, 14)


# ------------------------------------------------------- supported constructs


def test_options_and_global_defaults_reach_sources():
    text = with_log(
        "source(s); source(s2); destination(d);",
        "options { log-msg-size(8k); log-fetch-limit(50); log-iw-size(2000); stats(level(2)); "
        "keep-hostname(yes); use_dns(no); };\n"
        + SRC + "source s2 { tcp(port(2001) keep-hostname(no) use-dns(yes)); };\n" + DST,
    )
    cfg, _ = parse(text)
    assert cfg.version == "4.8"
    o = cfg.options
    assert (o.log_msg_size, o.log_fetch_limit, o.log_iw_size, o.stats_level) == (8000, 50, 2000, 2)
    s = cfg.sources["s"].drivers[0]
    assert (s.keep_hostname, s.use_dns) == (True, False)  # inherited from options {}
    s2 = cfg.sources["s2"].drivers[0]
    assert (s2.keep_hostname, s2.use_dns) == (False, True)  # its own settings win
    assert s.log_iw_size is None  # None = inherit from options {} at run time


def test_stats_level_spelling():
    cfg, _ = parse(with_log("source(s); destination(d);", "options { stats-level(3); };\n" + SRC + DST))
    assert cfg.options.stats_level == 3


def test_source_driver_options():
    head = (
        'source s { network(localip("::1") port("2001") transport("tcp") log-iw-size(100) max_connections(4) '
        "log-fetch-limit(7) log-msg-size(1Ki) keep-hostname(on) use-dns(false) flags(syslog-protocol)); "
        "tcp(ip(localhost) port(0) flags(syslog_protocol, syslog-protocol)); };\n" + DST
    )
    cfg, _ = parse(with_log("source(s); destination(d);", head))
    net, tcp = cfg.sources["s"].drivers
    assert net.kind == "network" and net.ip == "::1" and net.port == 2001 and net.transport == "tcp"
    assert (net.log_iw_size, net.max_connections, net.log_fetch_limit, net.log_msg_size) == (100, 4, 7, 1024)
    assert (net.keep_hostname, net.use_dns, net.syslog_protocol, net.flags) == (True, False, True, ("syslog-protocol",))
    assert tcp.kind == "tcp" and tcp.ip == "127.0.0.1" and tcp.port == 0 and tcp.flags == ("syslog-protocol",)
    assert tcp.syslog_protocol
    assert (net.loc.line, net.loc.column) == (2, 12)


def test_source_defaults_are_syslog_ngs():
    cfg, _ = parse(with_log("source(s); destination(d);"))
    d = cfg.sources["s"].drivers[0]
    assert (d.ip, d.max_connections, d.keep_hostname, d.use_dns, d.syslog_protocol) == ("127.0.0.1", 10, False, True, False)


def test_destination_drivers():
    head = SRC + (
        'destination d { tcp("127.0.0.1" port(6000) template("$MSG\\n")); '
        "network('::1' port(6001) transport(tcp)); file(\"/tmp/o.log\" template('${HOST} $MSG')); };\n"
    )
    cfg, _ = parse(with_log("source(s); destination(d);", head))
    tcp, net, f = cfg.destinations["d"].drivers
    assert (tcp.kind, tcp.host, tcp.port, tcp.template) == ("tcp", "127.0.0.1", 6000, "$MSG\n")
    assert (net.kind, net.host, net.port, net.template) == ("network", "::1", 6001, None)
    assert (f.kind, f.path, f.template) == ("file", "/tmp/o.log", "${HOST} $MSG")


def test_parser_cost_stage():
    head = SRC + DST + "parser p { parbench_cost(cpu-us(20.5) latency_us(3)); parbench-cost(); };\n"
    cfg, _ = parse(with_log("source(s); parser(p); destination(d);", head))
    p = cfg.parsers["p"]
    assert [(c.cpu_us, c.latency_us) for c in p.stages] == [(20.5, 3.0), (0.0, 0.0)]
    assert cfg.log_paths[0].pipeline == [p, cfg.destinations["d"]]


def test_inline_blocks_and_pipeline_order():
    body = (
        "source { tcp(port(3000)); }; source(s);\n"
        "parser { parbench-cost(cpu-us(1)); };\n"
        "parallelize(partitions(2));\n"
        "destination { file(\"/tmp/a\"); }; parser(p); destination(d);\n"
        "flags(flow-control);"
    )
    cfg, _ = parse(with_log(body, SRC + DST + "parser p { parbench-cost(latency-us(5)); };\n"))
    path = cfg.log_paths[0]
    assert [s.name for s in path.sources] == [None, "s"]
    kinds = [type(e) for e in path.pipeline]
    assert kinds == [Parser, Parallelize, Destination, Parser, Destination]
    assert path.pipeline[0].name is None and path.pipeline[3] is cfg.parsers["p"]
    assert path.flow_control and path.flags == ("flow-control",)
    assert (path.loc.line, path.loc.column) == (5, 1)


def test_references_may_come_before_definitions():
    text = "@version: 4.8\nlog { source(s); destination(d); };\n" + SRC + DST
    cfg, _ = parse(text)
    assert cfg.log_paths[0].sources[0] is cfg.sources["s"]


def test_parallelize_all_options_axosyslog():
    p = par('parallelize(workers(8) worker-partition-key("$HOST") batch-size(50) log-fetch-limit(500))')
    assert (p.partitions, p.partition_key, p.batch_size, p.log_fetch_limit) == (8, "$HOST", 50, 500)
    p = par('parallelize(partitions(4) partition_key("${.SDATA.a.b}"))', SYSLOG_NG_4_8)
    assert (p.partitions, p.partition_key, p.batch_size, p.log_fetch_limit) == (4, "${.SDATA.a.b}", None, None)


def test_parallelize_bypass_values():
    assert par("parallelize()").partitions is None
    assert par("parallelize(partitions(0))").partitions == 0


#: what AxoSyslog 4.26.0 / 4.27.0 print when they clamp (measured)
AXOSYSLOG_CLAMP = "parallelize() currently supports up to 32 workers, falling back to the maximum supported; specified_workers='{n}', used_workers='32'"


def test_clamp_warning_axosyslog():
    cfg, warnings = parse(with_log("source(s);\n  parallelize(partitions(40)); destination(d);"))
    assert cfg.log_paths[0].pipeline[0].partitions == 32
    assert warnings == [
        "t.conf:6:26: warning: " + AXOSYSLOG_CLAMP.format(n=40)
    ]


def test_clamp_warning_syslog_ng():
    # syslog-ng 4.8.1 runs partitions(17) without complaint, so the reference must accept it too.
    cfg, warnings = parse(with_log("source(s); parallelize(partitions(17)); destination(d);"), SYSLOG_NG_4_8)
    assert cfg.log_paths[0].pipeline[0].partitions == 16
    assert warnings == [
        "t.conf:5:35: warning: partitions 17 is more than profile syslog-ng-4.8 allows; clamped to 16"
    ]


def test_default_profile_is_axosyslog():
    assert par("parallelize(workers(2))").partitions == 2  # would be an error on syslog-ng-4.8


def test_unused_definition_warns():
    _, warnings = parse(with_log("source(s); destination(d);", SRC + DST + "destination unused { file(\"/x\"); };\n"))
    assert warnings == ["t.conf:4:1: warning: destination 'unused' is defined but not used in any log path"]


def test_default_warn_goes_to_stderr(capsys):
    parse_config(with_log("source(s); parallelize(partitions(33)); destination(d);"), "w.conf")
    assert capsys.readouterr().err == (
        "w.conf:5:35: warning: " + AXOSYSLOG_CLAMP.format(n=33) + "\n"
    )


def test_lexical_corners():
    text = (
        "@version: 4.8\n"
        "source s { tcp(port(\\\n2000) localport(2001)); };  # continuation, then the last port() wins\n"
        'destination d { file("/tmp/a\\\nb" template("line1\nline2")); };\n'
        "log { source(s);;; destination(d); };;\n"
    )
    cfg, _ = parse(text)
    assert cfg.sources["s"].drivers[0].port == 2001
    f = cfg.destinations["d"].drivers[0]
    assert f.path == "/tmp/ab"  # backslash-newline inside a string joins the lines
    assert f.template == "line1\nline2"  # a raw newline inside a string is kept


def test_names_live_in_separate_namespaces():
    cfg, _ = parse(with_log("source(x); destination(x);", 'source x { tcp(); };\ndestination x { file("/x"); };\n'))
    assert cfg.log_paths[0].sources[0] is cfg.sources["x"]


def test_ignored_and_rejected_globals():
    cfg, _ = parse(with_log("source(s); destination(d);", "options { stats-freq(0); threaded(yes); use-fqdn(no); chain-hostnames(no); };\n" + SRC + DST))
    assert cfg.options.log_iw_size == 1000
    msg = error(with_log("source(s); destination(d);", "options { chain-hostnames(yes); };\n" + SRC + DST))
    assert msg.startswith("t.conf:2:27: chain-hostnames(yes) is not supported")
    msg = error(with_log("source(s); destination(d);", "options { log-fifo-size(10); };\n" + SRC + DST))
    assert msg.startswith("t.conf:2:11: unknown global option 'log-fifo-size()'; supported: log-msg-size(), ")


def test_more_error_positions():
    assert error("@version: 4.8\n @version: 4.8\n") == "t.conf:2:2: found '@'; expected a statement: options, source, destination, parser, log"
    assert error("@version: 4.8\n@version: 4.8\n").startswith("t.conf:2:1: a second @version: line")
    assert error("@version: 4.8 log { };\n") == "t.conf:1:15: found 'log' after @version: 4.8; expected the end of the line"
    assert error(with_log("source(s); destination(d);", "source s { tcp(transport(tcp)); };\n" + DST)).startswith(
        "t.conf:2:16: transport() is an option of network() and syslog()")
    assert error(with_log("source(s); destination(d);", "source s { tcp(port(99999999999999999999)); };\n" + DST)).startswith(
        "t.conf:2:21: bad number '99999999999999999999' in port()")
    assert error(with_log("source(s); destination(d);", "source s { };\n" + DST)) == (
        "t.conf:2:1: empty source block; expected a source driver: tcp(), network(), syslog()")
    assert error(with_log("source { source { tcp(); }; }; destination(d);")) == (
        "t.conf:5:10: found 'source' in the source block; expected name(...); or '}' to close the block opened at 5:8")
    assert error(with_log("source(s); destination(d); source(s2);")).startswith(
        "t.conf:5:28: source after a parallelize(), parser or destination in this log path")
    assert error("@version: 4.8\nsource 5 { tcp(); };") == "t.conf:2:8: found '5'; expected a name after 'source'"


def test_missing_version_warns():
    _, warnings = parse(SRC + DST + "log { source(s); destination(d); };")
    assert warnings == ["t.conf:1:1: warning: no @version: line; syslog-ng needs one (for example @version: 4.8)"]


# ----------------------------------------------------------- example files


CONFIG_FILES = sorted(glob.glob(str(ROOT / "tests/configs/*.conf")) + glob.glob(str(ROOT / "examples/*.conf")))
# Files named axosyslog-* use options only that profile accepts.
PORTABLE_FILES = [f for f in CONFIG_FILES if not os.path.basename(f).startswith("axosyslog-")]


def test_seed_and_example_files_exist():
    names = {os.path.basename(f) for f in CONFIG_FILES}
    assert {"seed-roundrobin.conf", "seed-keyed.conf", "pipeline.conf"} <= names


@pytest.mark.parametrize("path", PORTABLE_FILES, ids=os.path.basename)
@pytest.mark.parametrize("profile", [SYSLOG_NG_4_8, AXOSYSLOG_4_26], ids=lambda p: p.name)
def test_every_portable_config_file_loads_in_both_profiles(path, profile):
    warnings: list[str] = []
    cfg = load_config(path, profile, warn=warnings.append)
    assert cfg.log_paths and not warnings


def test_axosyslog_tuning_file():
    path = ROOT / "tests/configs/axosyslog-tuning.conf"
    cfg = load_config(path, AXOSYSLOG_4_26)
    assert cfg.version == "4.26"
    p = cfg.log_paths[0].pipeline[0]
    assert (p.partitions, p.partition_key, p.batch_size, p.log_fetch_limit) == (8, "$PROGRAM", 100, 1000)
    assert cfg.sources["s_in"].drivers[0].keep_hostname
    assert cfg.destinations["d_out"].drivers[0].host == "::1"
    with pytest.raises(ConfigError) as info:
        load_config(path, SYSLOG_NG_4_8)
    assert str(info.value).startswith(f"{path}:9:5: workers() in parallelize() is not accepted by profile syslog-ng-4.8")


def test_example_roundrobin_network_values():
    cfg = load_config(ROOT / "examples/roundrobin-network.conf")
    drv = cfg.sources["s_net"].drivers[0]
    assert (drv.kind, drv.port, drv.syslog_protocol, drv.keep_hostname, drv.use_dns) == ("network", 2001, True, True, False)
    p, dest = cfg.log_paths[0].pipeline
    assert (p.partitions, p.partition_key) == (4, None)
    assert (dest.drivers[0].kind, dest.drivers[0].host, dest.drivers[0].port) == ("network", "127.0.0.1", 6000)
    assert cfg.log_paths[0].flow_control


def test_config_check_command_summary_and_one_line_error(tmp_path):
    good = CliRunner().invoke(main, ["config-check", str(ROOT / "examples/pipeline.conf")])
    assert good.exit_code == 0, good.output
    assert "parallelize(4 key=$HOST)" in good.stdout
    bad = tmp_path / "bad.conf"
    bad.write_text("@version: 4.8\nlog { source(nowhere); destination(nowhere); };\n")
    result = CliRunner().invoke(main, ["config-check", str(bad), "--profile", "syslog-ng-4.8"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"parbench config-check: {bad}:2:14: undefined source 'nowhere'; defined sources: none\n"
    # A profile-specific option: accepted by one profile, a located error in the other.
    conf = tmp_path / "batch.conf"
    conf.write_text("@version: 4.8\nlog { source { tcp(port(0)); }; parallelize(partitions(2) batch-size(5));\n"
                    "  destination { file(\"/dev/null\"); }; };\n")
    assert CliRunner().invoke(main, ["config-check", str(conf)]).exit_code == 0
    old = CliRunner().invoke(main, ["config-check", str(conf), "--profile", "syslog-ng-4.8"])
    assert old.exit_code == 2
    assert old.stderr.startswith(f"parbench config-check: {conf}:2:59: batch-size() in parallelize() is not accepted")


def test_config_error_is_a_usage_error():
    with pytest.raises(UsageError) as info:
        parse_config("log { };", "t.conf", warn=lambda _: None)
    assert isinstance(info.value, ConfigError) and info.value.exit_code == EXIT_USAGE


def test_seed_configs_values():
    rr = load_config(ROOT / "tests/configs/seed-roundrobin.conf")
    keyed = load_config(ROOT / "tests/configs/seed-keyed.conf")
    for cfg in (rr, keyed):
        drv = cfg.log_paths[0].sources[0].drivers[0]
        assert (drv.port, drv.log_iw_size, drv.max_connections, drv.log_fetch_limit) == (2000, 10_000_000, 10, 100_000)
        assert cfg.log_paths[0].pipeline[0].partitions == 4
    assert rr.log_paths[0].pipeline[0].partition_key is None
    assert keyed.log_paths[0].pipeline[0].partition_key == "$HOST"


def test_example_pipeline_values():
    cfg = load_config(ROOT / "examples/pipeline.conf")
    path = cfg.log_paths[0]
    drv = path.sources[0].drivers[0]
    assert (drv.ip, drv.port, drv.keep_hostname) == ("127.0.0.1", 2000, True)
    p, cost, dest = path.pipeline
    assert (p.partitions, p.partition_key) == (4, "$HOST")
    assert isinstance(cost, Parser) and cost.stages[0].cpu_us > 0
    assert dest.drivers[0].kind == "file"


# ------------------------------------------------------------------ errors

BAD = [
    ("unknown driver",
     with_log("source(s); destination(d);", "source s { udp(port(514)); };\n" + DST),
     "t.conf:2:12: unknown source driver 'udp()'; supported: tcp(), network(), syslog()"),
    ("unknown option with suggestion",
     with_log("source(s); destination(d);", "source s { tcp(prot(514)); };\n" + DST),
     "t.conf:2:16: unknown option of the tcp() source 'prot()'; supported: ip(), localip(), port(), "
     "localport(), transport(), log-iw-size(), max-connections(), log-fetch-limit(), log-msg-size(), "
     "keep-hostname(), use-dns(), flags() (did you mean port()?)"),
    ("unterminated string",
     '@version: 4.8\ndestination d { file("/tmp/x); };\n',
     't.conf:2:22: unterminated string starting with "; expected a closing " before the end of the file'),
    ("bad number",
     with_log("source(s); destination(d);", "source s { tcp(port(2000) log-iw-size(10X)); };\n" + DST),
     "t.conf:2:39: bad number '10X' in log-iw-size(); expected an integer, optionally with a size suffix "
     "k, M, G (x1000) or Ki, Mi, Gi (x1024), optionally B"),
    ("float where an integer is expected",
     with_log("source(s); destination(d);", "source s { tcp(port(20.5)); };\n" + DST),
     "t.conf:2:21: found 20.5 in port(); expected an integer"),
    ("port out of range",
     with_log("source(s); destination(d);", "source s { tcp(port(70000)); };\n" + DST),
     "t.conf:2:21: found 70000 in port(); expected an integer 0..65535"),
    ("non-loopback source ip",
     with_log("source(s); destination(d);", 'source s { tcp(ip("0.0.0.0") port(1)); };\n' + DST),
     "t.conf:2:19: ip() '0.0.0.0' is not a loopback address; parbench binds and connects to loopback only: "
     "use 127.0.0.1, ::1 or localhost"),
    ("non-loopback destination host",
     with_log("source(s); destination(d);", SRC + 'destination d { tcp("10.0.0.1" port(6000)); };\n'),
     "t.conf:3:21: destination host '10.0.0.1' is not a loopback address; parbench binds and connects to "
     "loopback only: use 127.0.0.1, ::1 or localhost"),
    ("undefined reference",
     with_log("source(s);\n  destination(dd);"),
     "t.conf:6:15: undefined destination 'dd'; defined destinations: d (did you mean d?)"),
    ("duplicate name",
     with_log("source(s); destination(d);", SRC + "source s { tcp(port(1)); };\n" + DST),
     "t.conf:3:8: duplicate source name 's'; it is already defined at t.conf:2:8"),
    ("profile-forbidden alias",
     (with_log("source(s); parallelize(workers(4)); destination(d);"), SYSLOG_NG_4_8),
     "t.conf:5:24: workers() in parallelize() is not accepted by profile syslog-ng-4.8; accepted by profile "
     "axosyslog-4.26 (--profile); use partitions()"),
    ("profile-forbidden batch-size",
     (with_log("source(s); parallelize(partitions(4) batch-size(10)); destination(d);"), SYSLOG_NG_4_8),
     "t.conf:5:38: batch-size() in parallelize() is not accepted by profile syslog-ng-4.8; accepted by profile "
     "axosyslog-4.26 (--profile)"),
    ("profile-forbidden fetch limit",
     (with_log("source(s); parallelize(log-fetch-limit(10)); destination(d);"), SYSLOG_NG_4_8),
     "t.conf:5:24: log-fetch-limit() in parallelize() is not accepted by profile syslog-ng-4.8; accepted by "
     "profile axosyslog-4.26 (--profile)"),
    ("negative partitions",
     with_log("source(s); parallelize(partitions(-1)); destination(d);"),
     "t.conf:5:35: found -1 in partitions(); expected 0 (bypass) or more"),
    ("option and alias",
     with_log("source(s); parallelize(partitions(2) workers(2)); destination(d);"),
     "t.conf:5:38: both partitions() (at 5:24) and its alias workers() given; give only one"),
    ("second parallelize",
     with_log("source(s); parallelize(); parallelize(); destination(d);"),
     "t.conf:5:27: a second parallelize() in this log path (the first is at 5:12); one parallelize() per log "
     "path is supported"),
    ("parallelize before source",
     with_log("parallelize(partitions(2)); source(s); destination(d);"),
     "t.conf:5:1: parallelize() before any source in this log path; expected source(...) first"),
    ("no destination",
     with_log("source(s);"),
     "t.conf:4:1: log path without a destination; expected at least one destination(NAME) or destination { ... }"),
    ("no source",
     with_log("destination(d);"),
     "t.conf:4:1: log path without a source; expected at least one source(NAME) or source { ... }"),
    ("missing semicolon inside a block",
     with_log("source(s); destination(d);", "source s { tcp(port(1)) };\n" + DST),
     "t.conf:2:25: found '}'; expected ';' after tcp(...)"),
    ("missing semicolon after a block",
     "@version: 4.8\n" + "source s { tcp(port(1)); }\n" + DST,
     "t.conf:3:1: found 'destination'; expected ';' after the '}' of source s"),
    ("missing closing paren",
     with_log("source(s); destination(d);", "source s { tcp(port(1); };\n" + DST),
     "t.conf:2:23: found ';' inside tcp(; expected ')' to close the '(' at 2:15, or an option or value"),
    ("unclosed block",
     "@version: 4.8\nlog { source(s);\n",
     "t.conf:3:1: found end of file; expected '}' to close the log block opened at 2:5"),
    ("unsupported statement",
     "@version: 4.8\nfilter f { level(info); };\n",
     "t.conf:2:1: unsupported statement 'filter'; supported: @version:, options, source, destination, parser, log"),
    ("include",
     '@version: 4.8\n@include "scl.conf"\n',
     "t.conf:2:2: found @include; only @version: is supported (no @include, @define, @module, @requires)"),
    ("unsupported transport",
     with_log("source(s); destination(d);", "source s { network(transport(udp)); };\n" + DST),
     "t.conf:2:30: unsupported transport 'udp' in network(); supported: tcp, text, framed"),
    ("unsupported source flag",
     with_log("source(s); destination(d);", "source s { tcp(flags(syslog-protocol no-parse)); };\n" + DST),
     "t.conf:2:38: unsupported source flag 'no-parse'; supported: syslog-protocol, no-hostname, expect-hostname, store-legacy-msghdr, dont-store-legacy-msghdr"),
    ("unsupported log flag",
     with_log("source(s); destination(d); flags(final);"),
     "t.conf:5:34: unsupported log path flag 'final'; supported: flow-control"),
    ("filter in a log path",
     with_log("source(s); filter(f); destination(d);"),
     "t.conf:5:12: found filter (nested log paths, filters and rewrites are not supported) in a log path; "
     "supported: source(NAME), destination(NAME), parser(NAME), inline source/destination/parser { }, "
     "parallelize(), flags(flow-control)"),
    ("other parser",
     with_log("source(s); parser { csv-parser(); }; destination(d);"),
     "t.conf:5:21: unknown parser (parbench supports only its own synthetic cost stage) 'csv-parser()'; "
     "supported: parbench-cost()"),
    ("negative cost",
     with_log("source(s); parser { parbench-cost(cpu-us(-1)); }; destination(d);"),
     "t.conf:5:42: found -1 in cpu-us(); expected a number >= 0"),
    ("bad boolean",
     with_log("source(s); destination(d);", "source s { tcp(keep-hostname(maybe)); };\n" + DST),
     "t.conf:2:30: found 'maybe' in keep-hostname(); expected yes, no, on, off, true or false"),
    ("destination without host",
     with_log("source(s); destination(d);", SRC + "destination d { tcp(port(6000)); };\n"),
     't.conf:3:21: tcp() destination without a host as its first value; expected tcp("127.0.0.1" port(6000))'),
    ("two sources on one port",
     with_log("source(s); source { tcp(port(2000)); }; destination(d);"),
     "t.conf:5:21: a second source listening on 127.0.0.1 port 2000 (the first is at t.conf:2:12); expected a "
     "different port, or port(0) for any free port"),
    ("empty file",
     "",
     "t.conf:1:1: no log { } statement; expected at least one log path"),
    ("bad version",
     "@version: four\n",
     "t.conf:1:11: found 'four' after @version:; expected a version such as 4.8"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_one_precise_line(case):
    _, text, expected = case
    profile = None
    if isinstance(text, tuple):
        text, profile = text
    message = error(text, profile)
    assert message == expected
    assert "\n" not in message


def test_error_carries_location():
    with pytest.raises(ConfigError) as info:
        parse_config("@version: 4.8\n  bogus;", "x.conf")
    assert (info.value.loc.file, info.value.loc.line, info.value.loc.column) == ("x.conf", 2, 3)
    assert re.match(r"^x\.conf:2:3: .+; .+", str(info.value))


def test_batch_size_with_key_rejected_where_the_profile_says_so():
    profile = dataclasses.replace(AXOSYSLOG_4_26, name="axosyslog-4.20", key_with_batch_size=False)
    msg = error(with_log('source(s); parallelize(partition-key("$HOST") batch-size(10)); destination(d);'), profile)
    assert msg == (
        "t.conf:5:47: batch-size() together with a partition key is a configuration error in profile "
        "axosyslog-4.20; give one of them"
    )
    # The same pair is fine in 4.26 (the key wins, the size only hands over early).
    assert par('parallelize(partition-key("$HOST") batch-size(10))').batch_size == 10


def test_load_config_missing_file(tmp_path):
    missing = tmp_path / "nope.conf"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(info.value) == (
        f"{missing}:0:0: cannot read the configuration file (No such file or directory); expected a readable "
        "syslog-ng configuration file"
    )


def test_load_config_bad_utf8(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_bytes(b"@version: 4.8\n# caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:2:6: invalid UTF-8 byte 0xe9; expected UTF-8 text"


def test_partition_key_template_is_validated_at_its_column():
    msg = error(with_log('source(s); parallelize(partitions(2) partition-key("$HOST-$(echo $HOST)")); destination(d);'))
    assert msg.startswith('t.conf:5:59: bad partition-key template "$HOST-$(echo $HOST)": template functions')


def test_destination_template_is_validated_at_its_column():
    head = SRC + 'destination d { file("/x" template("x ${HOST")); };\n'
    msg = error(with_log("source(s); destination(d);", head))
    assert msg.startswith('t.conf:3:39: bad destination template "x ${HOST": ')


def test_unquoted_template_word_is_a_template_too():
    assert par("parallelize(partitions(2) partition-key($HOST))").partition_key == "$HOST"
    msg = error(with_log("source(s); parallelize(partition-key($YEAR)); destination(d);"))
    assert msg.startswith("t.conf:5:38: bad partition-key template $YEAR: macro $YEAR")


# ------------------------------------------------------ hypothesis: layout


LAYOUT_CONFIG = [
    "@version:", "4.8", "\n",
    "options", "{", "log-msg-size", "(", "64k", ")", ";", "keep-hostname", "(", "yes", ")", ";", "}", ";",
    "source", "s_in", "{", "tcp", "(", "ip", "(", '"127.0.0.1"', ")", "port", "(", "2000", ")",
    "log-iw-size", "(", "10M", ")", "max-connections", "(", "10", ")", "log-fetch-limit", "(", "100000", ")",
    "flags", "(", "syslog-protocol", ")", ")", ";", "}", ";",
    "destination", "d_out", "{", "tcp", "(", '"127.0.0.1"', "port", "(", "6000", ")",
    "template", "(", '"$HOST $MSG\\n"', ")", ")", ";", "}", ";",
    "parser", "p_cost", "{", "parbench-cost", "(", "cpu-us", "(", "20", ")", "latency-us", "(", "1.5", ")", ")", ";", "}", ";",
    "log", "{", "source", "(", "s_in", ")", ";",
    "parallelize", "(", "workers", "(", "4", ")", "worker-partition-key", "(", '"$HOST"', ")",
    "batch-size", "(", "100", ")", ")", ";",
    "parser", "(", "p_cost", ")", ";", "destination", "(", "d_out", ")", ";",
    "flags", "(", "flow-control", ")", ";", "}", ";",
]
# Names whose - and _ are interchangeable (object names like s_in are not).
SWAPPABLE = {t for t in LAYOUT_CONFIG if re.fullmatch(r"[a-z]+([-_][a-z]+)+", t)} - {"s_in", "d_out", "p_cost"}


def _strip_locations(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: _strip_locations(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.name not in ("loc", "file")}
    if isinstance(obj, dict):
        return {k: _strip_locations(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strip_locations(v) for v in obj]
    return obj


separators = st.lists(
    st.sampled_from([" ", "\t", "\n", ",", "  # a comment\n", "\n\n", " # (}{;\"'\n"]), min_size=1, max_size=3
).map("".join)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_layout_and_dash_underscore_do_not_change_the_model(data):
    reference = _strip_locations(parse(" ".join(LAYOUT_CONFIG))[0])
    parts = ["@version: 4.8\n"]
    for tok in LAYOUT_CONFIG[3:]:
        if tok in SWAPPABLE:
            tok = "".join(data.draw(st.sampled_from(["-", "_"])) if ch in "-_" else ch for ch in tok)
        parts.append(tok)
        parts.append(data.draw(separators))
    text = "".join(parts)
    cfg, _ = parse(text)
    assert _strip_locations(cfg) == reference


def test_layout_property_can_fail():
    # The comparison behind the property sees a changed value.
    text = " ".join(LAYOUT_CONFIG)
    a = _strip_locations(parse(text)[0])
    b = _strip_locations(parse(text.replace("( 20 )", "( 21 )"))[0])
    assert a != b


# ------------------------------------------------- hypothesis: robustness

VALID_TEXT = " ".join(LAYOUT_CONFIG)
ERROR_RE = re.compile(r"^f\.conf:(\d+):(\d+): [^\n]+; [^\n]+$")


def _parse_or_error(text: str) -> None:
    try:
        parse_config(text, "f.conf", warn=lambda w: None)
    except ConfigError as exc:
        m = ERROR_RE.match(str(exc))
        assert m, str(exc)
        line, col = int(m.group(1)), int(m.group(2))
        lines = text.split("\n")
        assert 1 <= line <= len(lines) and 1 <= col <= len(lines[line - 1]) + 1, str(exc)


@settings(max_examples=150, deadline=None)
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, len(VALID_TEXT)),
            st.integers(0, 3),
            st.sampled_from(["", "(", ")", "{", "}", ";", '"', "'", "\\", "#", "\n", "@", "x", "-1", "9Q", "é", "\x00"]),
        ),
        min_size=1, max_size=4,
    )
)
def test_mutated_config_parses_or_fails_with_one_positioned_line(edits):
    text = VALID_TEXT
    for pos, delete, insert in edits:
        pos = min(pos, len(text))
        text = text[:pos] + insert + text[pos + delete:]
    _parse_or_error(text)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("(){};\"'\\#@:.,-_ \n\tabsourcelogtcp0123456789$kMiB")), max_size=80))
def test_random_text_parses_or_fails_with_one_positioned_line(text):
    _parse_or_error(text)
