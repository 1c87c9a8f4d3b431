"""The meaning of a syslog-ng configuration: statements -> ``Config``.

Every option is checked here against the subset the reference runs and the
active version profile (``reference.profiles``), with a one-line
``ConfigError`` at the offending token.  Choices where the reference differs
from, or narrows, syslog-ng (docs/semantics.md, "Configuration language"):

* Source ``ip()`` defaults to 127.0.0.1 (syslog-ng: all addresses); only
  127.0.0.1, ::1 and localhost (stored as 127.0.0.1) are accepted, for
  sources and destination hosts alike.  A tcp()/network() destination
  without ``port()`` uses 514, as syslog-ng does.
* Source drivers: ``tcp()`` (newline-framed text), ``network()``
  (``transport()`` tcp or text: newline-framed; framed: RFC 6587 octet
  counting) and ``syslog()`` (octet counting and RFC 5424 parsing;
  ``transport("text")`` for newline framing); ``SourceDriver.framing`` says
  which.  Source flags: ``syslog-protocol``, ``no-hostname`` /
  ``expect-hostname``, ``store-legacy-msghdr`` /
  ``dont-store-legacy-msghdr``.
* ``options { keep-hostname() use-dns() use-fqdn() }`` are copied into
  every source driver that does not set them itself (the model has no
  global field for them).  ``stats-freq() dns-cache() threaded()`` and
  ``chain-hostnames(no)`` are accepted and have no effect.
* ``flags(no-parse)`` is rejected: ``reference.message`` always parses the
  syslog header.
* Named templates, ``@include``/``@define``, filters, rewrites, junctions and
  nested log paths are rejected.
* Templates (``partition-key()``, ``template()``) are compiled with
  ``reference.template`` while the file is read, so an unsupported template
  is a start-up error at its column.
* Booleans: ``yes no on off true false`` or a number (non-zero = yes).
"""
from __future__ import annotations

import difflib
from typing import Callable, Iterable

from parbench.reference.config_lexer import FLOAT, NUMBER, STRING, WORD, ConfigError, Token, is_numberish, norm, one_line, tokenize
from parbench.reference.config_model import (
    Config,
    CostStage,
    Destination,
    DestinationDriver,
    Location,
    LogPath,
    Parallelize,
    Parser,
    Source,
    SourceDriver,
)
from parbench.reference.config_syntax import Block, Opt, VersionPragma, statements
from parbench.reference.profiles import PROFILES, Profile, limit_partitions
from parbench.reference.template import TemplateError, compile_template

WarnFn = Callable[[str], None]

LOOPBACK_HOSTS = {"127.0.0.1": "127.0.0.1", "::1": "::1", "localhost": "127.0.0.1"}


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}()?)" if close else ""


def _listing(names: Iterable[str]) -> str:
    return ", ".join(f"{n}()" for n in names)


SOURCE_DRIVERS = ("tcp", "network", "syslog")
# transport() of a source driver -> the framing it means (syslog-ng's
# transport mappers: transport-mapper-inet.c).  tcp() takes no transport().
SOURCE_TRANSPORTS = {
    "network": {"tcp": "text", "text": "text", "framed": "framed"},
    "syslog": {"tcp": "framed", "framed": "framed", "text": "text"},
}
DEFAULT_FRAMING = {"tcp": "text", "network": "text", "syslog": "framed"}
DESTINATION_DRIVERS = ("tcp", "network", "file")
PARSER_DRIVERS = ("parbench-cost",)
SOURCE_OPTIONS = (
    "ip", "localip", "port", "localport", "transport", "log-iw-size", "max-connections",
    "log-fetch-limit", "log-msg-size", "keep-hostname", "use-dns", "flags",
)
# no-parse is left out: reference.message always parses a syslog header, so
# accepting it would silently change what $HOST, $MSG... hold.
SOURCE_FLAGS = ("syslog-protocol", "no-hostname", "expect-hostname", "store-legacy-msghdr",
                "dont-store-legacy-msghdr")
GLOBAL_OPTIONS = (
    "log-msg-size", "log-fetch-limit", "log-iw-size", "stats", "stats-level",
    "keep-hostname", "use-dns", "use-fqdn",
)
# Accepted in options {} for compatibility with real configs, with no effect
# on the reference (it does no DNS and keeps no statistics files).
IGNORED_GLOBAL_OPTIONS = ("stats-freq", "dns-cache", "threaded", "chain-hostnames")
LOG_ITEMS = ("source", "destination", "parser", "parallelize", "flags")
LOG_FLAGS = ("flow-control",)
PARALLELIZE_OPTIONS = (
    "partitions", "workers", "partition-key", "worker-partition-key", "batch-size",
    "log-fetch-limit",
)
PARALLELIZE_ALIASES = {"workers": "partitions", "worker-partition-key": "partition-key"}


class _Builder:
    def __init__(self, file: str, profile: Profile, warn: WarnFn):
        self.file = file
        self.profile = profile
        self.warn_fn = warn
        self.config = Config(file=file, version=None)
        self.globals_set: dict[str, bool] = {}
        # Source drivers and the boolean options they set themselves.
        self.explicit: dict[int, set[str]] = {}
        self.all_source_drivers: list[SourceDriver] = []
        self.refs: list[tuple[str, Token, LogPath, int]] = []
        self.defined_at: dict[tuple[str, str], Location] = {}

    # -- helpers -------------------------------------------------------
    def loc(self, tok: Token) -> Location:
        return Location(self.file, tok.line, tok.col)

    def error(self, tok: Token, message: str) -> ConfigError:
        return ConfigError(self.loc(tok), message)

    def warn(self, tok: Token, message: str) -> None:
        self.warn_fn(f"{self.loc(tok)}: warning: {one_line(message)}")

    def single(self, opt: Opt, what: str) -> Token:
        if not opt.args:
            raise self.error(opt.tok, f"found {opt.tok.text}() without a value; expected {what}")
        if len(opt.args) > 1:
            extra = opt.args[1]
            tok = extra.tok if isinstance(extra, Opt) else extra
            raise self.error(tok, f"found a second value in {opt.tok.text}(); expected one {what}")
        arg = opt.args[0]
        if isinstance(arg, Opt):
            raise self.error(arg.tok, f"found option {arg.tok.text}() inside {opt.tok.text}(); expected {what}")
        return arg

    def int_value(self, opt: Opt, low: int = 0, high: int | None = None) -> int:
        tok = self.single(opt, "integer")
        return self.check_int(opt, tok, low, high)

    def check_int(self, opt: Opt, tok: Token, low: int, high: int | None) -> int:
        if tok.kind == FLOAT:
            raise self.error(tok, f"found {tok.text} in {opt.tok.text}(); expected an integer")
        if tok.kind != NUMBER:
            if tok.kind == WORD and is_numberish(tok.text):
                raise self.error(
                    tok,
                    f"bad number '{tok.text}' in {opt.tok.text}(); expected an integer, "
                    "optionally with a size suffix k, M, G (x1000) or Ki, Mi, Gi (x1024), optionally B",
                )
            raise self.error(tok, f"found {tok.describe()} in {opt.tok.text}(); expected an integer")
        value = int(tok.value)  # type: ignore[arg-type]
        if value < low or (high is not None and value > high):
            rng = f"{low}..{high}" if high is not None else f">= {low}"
            raise self.error(tok, f"found {value} in {opt.tok.text}(); expected an integer {rng}")
        return value

    def float_value(self, opt: Opt, low: float = 0.0) -> float:
        tok = self.single(opt, "number")
        if tok.kind not in (NUMBER, FLOAT):
            raise self.error(tok, f"found {tok.describe()} in {opt.tok.text}(); expected a number")
        value = float(tok.value)  # type: ignore[arg-type]
        if value < low:
            raise self.error(tok, f"found {tok.text} in {opt.tok.text}(); expected a number >= {low:g}")
        return value

    def bool_value(self, opt: Opt) -> bool:
        tok = self.single(opt, "yes or no")
        if tok.kind == NUMBER:
            return tok.value != 0
        if tok.kind == WORD:
            word = str(tok.value).lower()
            if word in ("yes", "on", "true"):
                return True
            if word in ("no", "off", "false"):
                return False
        raise self.error(tok, f"found {tok.describe()} in {opt.tok.text}(); expected yes, no, on, off, true or false")

    def str_value(self, opt: Opt, what: str = "string") -> Token:
        tok = self.single(opt, what)
        if tok.kind not in (STRING, WORD):
            raise self.error(tok, f"found {tok.describe()} in {opt.tok.text}(); expected a {what}")
        return tok

    def words(self, opt: Opt) -> list[Token]:
        out = []
        for arg in opt.args:
            if isinstance(arg, Opt) or arg.kind not in (WORD, STRING):
                tok = arg.tok if isinstance(arg, Opt) else arg
                raise self.error(tok, f"found {tok.describe()} in {opt.tok.text}(); expected flag names")
            out.append(arg)
        return out

    def loopback(self, tok: Token, role: str) -> str:
        host = str(tok.value)
        if host not in LOOPBACK_HOSTS:
            raise self.error(
                tok,
                f"{role} '{host}' is not a loopback address; parbench binds and connects to loopback only: "
                "use 127.0.0.1, ::1 or localhost",
            )
        return LOOPBACK_HOSTS[host]

    def unknown(self, opt: Opt, what: str, supported: Iterable[str]) -> ConfigError:
        supported = list(supported)
        return self.error(
            opt.tok,
            f"unknown {what} '{opt.tok.text}()'; supported: {_listing(supported)}{_suggest(opt.name, supported)}",
        )

    def only_options(self, opt: Opt, skip_first: int = 0) -> list[Opt]:
        out = []
        for arg in opt.args[skip_first:]:
            if not isinstance(arg, Opt):
                raise self.error(
                    arg, f"found {arg.describe()} in {opt.tok.text}(); expected options such as port(514)"
                )
            out.append(arg)
        return out

    def template_check(self, tok: Token, what: str) -> None:
        try:
            compile_template(str(tok.value))
        except TemplateError as exc:
            column = exc.column  # 1-based into the template text
            loc = self.loc(tok)
            if tok.plain and column >= 1:
                # Exact only when the string has no escapes and no line breaks.
                opening_quote = 1 if tok.kind == STRING else 0
                loc = Location(self.file, tok.line, tok.col + opening_quote + column - 1)
            msg = exc.message
            if ";" not in msg:
                msg += "; expected $NAME, ${NAME} and literal text"
            raise ConfigError(loc, f"bad {what} template {tok.text}: {msg}") from None

    def define(self, kind: str, name_tok: Token) -> str:
        name = str(name_tok.value)
        key = (kind, name)
        if key in self.defined_at:
            raise self.error(
                name_tok, f"duplicate {kind} name '{name}'; it is already defined at {self.defined_at[key]}"
            )
        self.defined_at[key] = self.loc(name_tok)
        return name

    # -- statements ----------------------------------------------------
    def options_block(self, block: Block) -> None:
        g = self.config.options
        for item in block.items:
            assert isinstance(item, Opt)
            name = item.name
            if name == "log-msg-size":
                g.log_msg_size = self.int_value(item, 1)
            elif name == "log-fetch-limit":
                g.log_fetch_limit = self.int_value(item, 1)
            elif name == "log-iw-size":
                g.log_iw_size = self.int_value(item, 1)
            elif name == "stats-level":
                g.stats_level = self.int_value(item, 0, 4)
            elif name == "stats":
                for sub in self.only_options(item):
                    if sub.name == "level":
                        g.stats_level = self.int_value(sub, 0, 4)
                    elif sub.name not in ("freq", "max-dynamics", "lifetime"):
                        raise self.unknown(sub, "stats() option", ("level", "freq", "max-dynamics", "lifetime"))
            elif name in ("keep-hostname", "use-dns", "use-fqdn"):
                self.globals_set[name] = self.bool_value(item)
            elif name == "chain-hostnames":
                if self.bool_value(item):
                    raise self.error(item.args[0], "chain-hostnames(yes) is not supported; the reference keeps $HOST as received")  # type: ignore[arg-type]
            elif name in IGNORED_GLOBAL_OPTIONS:
                self.single(item, "value")
            else:
                raise self.unknown(item, "global option", GLOBAL_OPTIONS + IGNORED_GLOBAL_OPTIONS)

    def source_block(self, block: Block) -> Source:
        name = self.define("source", block.name_tok) if block.name_tok else None
        drivers = []
        for item in block.items:
            if not isinstance(item, Opt):
                raise self.error(item.tok, f"found inline block {item.tok.text} {{ inside a source; expected a source driver: {_listing(SOURCE_DRIVERS)}")
            drivers.append(self.source_driver(item))
        if not drivers:
            raise self.error(block.tok, f"empty source block; expected a source driver: {_listing(SOURCE_DRIVERS)}")
        src = Source(name=name, drivers=drivers, loc=self.loc(block.tok))
        if name is not None:
            self.config.sources[name] = src
        return src

    def source_driver(self, opt: Opt) -> SourceDriver:
        if opt.name not in SOURCE_DRIVERS:
            raise self.unknown(opt, "source driver", SOURCE_DRIVERS)
        drv = SourceDriver(kind=opt.name, loc=opt.loc, framing=DEFAULT_FRAMING[opt.name])
        if opt.name == "syslog":
            drv.port = 601  # syslog()'s default TCP port (RFC 6587)
        explicit: set[str] = set()
        flags: list[str] = []
        for sub in self.only_options(opt):
            n = sub.name
            if n in ("ip", "localip"):
                drv.ip = self.loopback(self.str_value(sub, "loopback address"), "ip()")
            elif n in ("port", "localport"):
                tok = self.single(sub, "port number")
                if tok.kind == STRING and str(tok.value).isdigit():
                    tok = Token(NUMBER, int(str(tok.value)), tok.text, tok.line, tok.col)
                drv.port = self.check_int(sub, tok, 0, 65535)
            elif n == "transport":
                if opt.name not in SOURCE_TRANSPORTS:
                    raise self.error(sub.tok, "transport() is an option of network() and syslog(); "
                                              "tcp() always reads newline-terminated text over TCP")
                tok = self.str_value(sub, "transport")
                transport = str(tok.value).lower()
                framings = SOURCE_TRANSPORTS[opt.name]
                if transport not in framings:
                    raise self.error(tok, f"unsupported transport '{tok.value}' in {opt.name}(); supported: "
                                          + ", ".join(framings))
                drv.transport = transport
                drv.framing = framings[transport]
            elif n == "log-iw-size":
                drv.log_iw_size = self.int_value(sub, 1)
            elif n == "max-connections":
                drv.max_connections = self.int_value(sub, 1)
            elif n == "log-fetch-limit":
                drv.log_fetch_limit = self.int_value(sub, 1)
            elif n == "log-msg-size":
                drv.log_msg_size = self.int_value(sub, 1)
            elif n == "keep-hostname":
                drv.keep_hostname = self.bool_value(sub)
                explicit.add(n)
            elif n == "use-dns":
                drv.use_dns = self.bool_value(sub)
                explicit.add(n)
            elif n == "flags":
                for tok in self.words(sub):
                    flag = norm(str(tok.value))
                    if flag not in SOURCE_FLAGS:
                        raise self.error(
                            tok, f"unsupported source flag '{tok.value}'; supported: {', '.join(SOURCE_FLAGS)}"
                        )
                    if flag not in flags:
                        flags.append(flag)
            else:
                raise self.unknown(sub, f"option of the {opt.name}() source", SOURCE_OPTIONS)
        drv.flags = tuple(flags)
        # syslog() always parses RFC 5424 (falling back to RFC 3164).
        drv.syslog_protocol = "syslog-protocol" in flags or opt.name == "syslog"
        self.explicit[id(drv)] = explicit
        self.all_source_drivers.append(drv)
        return drv

    def destination_block(self, block: Block) -> Destination:
        name = self.define("destination", block.name_tok) if block.name_tok else None
        drivers = []
        for item in block.items:
            if not isinstance(item, Opt):
                raise self.error(item.tok, f"found inline block {item.tok.text} {{ inside a destination; expected a destination driver: {_listing(DESTINATION_DRIVERS)}")
            drivers.append(self.destination_driver(item))
        if not drivers:
            raise self.error(block.tok, f"empty destination block; expected a destination driver: {_listing(DESTINATION_DRIVERS)}")
        dst = Destination(name=name, drivers=drivers, loc=self.loc(block.tok))
        if name is not None:
            self.config.destinations[name] = dst
        return dst

    def destination_driver(self, opt: Opt) -> DestinationDriver:
        if opt.name not in DESTINATION_DRIVERS:
            raise self.unknown(opt, "destination driver", DESTINATION_DRIVERS)
        drv = DestinationDriver(kind=opt.name, loc=opt.loc)
        first = opt.args[0] if opt.args else None
        if first is None or isinstance(first, Opt) or first.kind not in (STRING, WORD):
            example = 'file("/tmp/out.log")' if opt.name == "file" else f'{opt.name}("127.0.0.1" port(6000))'
            what = "a path" if opt.name == "file" else "a host"
            tok = first.tok if isinstance(first, Opt) else (first or opt.tok)
            raise self.error(tok, f"{opt.name}() destination without {what} as its first value; expected {example}")
        if opt.name == "file":
            if not str(first.value):
                raise self.error(first, "empty file name; expected a path")
            drv.path = str(first.value)
            supported: tuple[str, ...] = ("template",)
        else:
            drv.host = self.loopback(first, "destination host")
            drv.port = 514
            supported = ("port", "template") + (("transport",) if opt.name == "network" else ())
        for sub in self.only_options(opt, skip_first=1):
            n = sub.name
            if n == "template":
                tok = self.single(sub, "template string")
                if tok.kind != STRING:
                    raise self.error(tok, f"found {tok.describe()} in template(); expected a quoted template string (named templates are not supported)")
                self.template_check(tok, "destination")
                drv.template = str(tok.value)
            elif n == "port" and "port" in supported:
                tok = self.single(sub, "port number")
                if tok.kind == STRING and str(tok.value).isdigit():
                    tok = Token(NUMBER, int(str(tok.value)), tok.text, tok.line, tok.col)
                drv.port = self.check_int(sub, tok, 1, 65535)
            elif n == "transport" and "transport" in supported:
                tok = self.str_value(sub, "transport")
                if str(tok.value).lower() != "tcp":
                    raise self.error(tok, f"unsupported transport '{tok.value}'; supported: tcp")
            else:
                raise self.unknown(sub, f"option of the {opt.name}() destination", supported)
        return drv

    def parser_block(self, block: Block) -> Parser:
        name = self.define("parser", block.name_tok) if block.name_tok else None
        stages = []
        for item in block.items:
            if not isinstance(item, Opt):
                raise self.error(item.tok, f"found inline block {item.tok.text} {{ inside a parser; expected {_listing(PARSER_DRIVERS)}")
            if item.name not in PARSER_DRIVERS:
                raise self.unknown(item, "parser (parbench supports only its own synthetic cost stage)", PARSER_DRIVERS)
            stage = CostStage(loc=item.loc)
            for sub in self.only_options(item):
                if sub.name == "cpu-us":
                    stage.cpu_us = self.float_value(sub)
                elif sub.name == "latency-us":
                    stage.latency_us = self.float_value(sub)
                else:
                    raise self.unknown(sub, "option of parbench-cost()", ("cpu-us", "latency-us"))
            stages.append(stage)
        if not stages:
            raise self.error(block.tok, f"empty parser block; expected {_listing(PARSER_DRIVERS)}")
        parser = Parser(name=name, stages=stages, loc=self.loc(block.tok))
        if name is not None:
            self.config.parsers[name] = parser
        return parser

    def parallelize(self, opt: Opt) -> Parallelize:
        prof = self.profile
        par = Parallelize(loc=opt.loc)
        seen: dict[str, Opt] = {}
        partitions_tok: Token | None = None
        batch_opt: Opt | None = None
        for sub in self.only_options(opt):
            n = sub.name
            if n not in PARALLELIZE_OPTIONS:
                allowed = [o for o in PARALLELIZE_OPTIONS if self._profile_accepts(prof, o)]
                raise self.unknown(sub, f"parallelize() option (profile {prof.name})", allowed)
            if not self._profile_accepts(prof, n):
                others = [p.name for p in PROFILES.values() if self._profile_accepts(p, n)]
                hint = f"; use {PARALLELIZE_ALIASES[n]}()" if n in PARALLELIZE_ALIASES else ""
                raise self.error(
                    sub.tok,
                    f"{n}() in parallelize() is not accepted by profile {prof.name}; "
                    f"accepted by profile {', '.join(others) or 'none'} (--profile){hint}",
                )
            canon = PARALLELIZE_ALIASES.get(n, n)
            prev = seen.get(canon)
            if prev is not None and prev.name != n:
                raise self.error(
                    sub.tok,
                    f"both {prev.name}() (at {prev.tok.line}:{prev.tok.col}) and its alias {n}() given; give only one",
                )
            seen[canon] = sub
            if canon == "partitions":
                partitions_tok = self.single(sub, "integer")
                value = self.check_int(sub, partitions_tok, -(2**63), None)
                if value < 0:
                    raise self.error(partitions_tok, f"found {value} in {sub.tok.text}(); expected 0 (bypass) or more")
                par.partitions = value
            elif canon == "partition-key":
                tok = self.str_value(sub, "template string")
                self.template_check(tok, "partition-key")
                par.partition_key = str(tok.value)
            elif canon == "batch-size":
                par.batch_size = self.int_value(sub, 0)
                batch_opt = sub
            elif canon == "log-fetch-limit":
                # 0 = no limit, as in AxoSyslog (a drain job empties its queue)
                par.log_fetch_limit = self.int_value(sub, 0)
        if par.partitions is not None:
            assert partitions_tok is not None
            try:
                par.partitions, warning = limit_partitions(prof, par.partitions)
            except ValueError as exc:
                raise self.error(partitions_tok, str(exc)) from None
            if warning:
                self.warn(partitions_tok, warning)
        if batch_opt is not None and par.partition_key is not None and not prof.key_with_batch_size:
            raise self.error(
                batch_opt.tok,
                f"batch-size() together with a partition key is a configuration error in profile {prof.name}; "
                "give one of them",
            )
        return par

    @staticmethod
    def _profile_accepts(prof: Profile, option: str) -> bool:
        if option in PARALLELIZE_ALIASES:
            return prof.accepts_worker_aliases
        if option == "batch-size":
            return prof.accepts_batch_size
        if option == "log-fetch-limit":
            return prof.accepts_parallelize_fetch_limit
        return True

    def log_block(self, block: Block) -> LogPath:
        path = LogPath(sources=[], pipeline=[], loc=self.loc(block.tok))
        flags: list[str] = []
        par_tok: Token | None = None
        has_destination = False
        for item in block.items:
            kind = item.name if isinstance(item, Opt) else item.kind
            if kind not in LOG_ITEMS or (isinstance(item, Block) and kind not in ("source", "destination", "parser")):
                tok = item.tok
                if kind in ("log", "junction", "channel", "filter", "rewrite"):
                    what = f"{tok.text} (nested log paths, filters and rewrites are not supported)"
                else:
                    what = f"'{tok.text}'"
                raise self.error(
                    tok,
                    f"found {what} in a log path; supported: source(NAME), destination(NAME), parser(NAME), "
                    "inline source/destination/parser { }, parallelize(), flags(flow-control)"
                    + _suggest(norm(tok.text), LOG_ITEMS),
                )
            if kind == "flags":
                assert isinstance(item, Opt)
                for tok in self.words(item):
                    flag = norm(str(tok.value))
                    if flag not in LOG_FLAGS:
                        raise self.error(tok, f"unsupported log path flag '{tok.value}'; supported: {', '.join(LOG_FLAGS)}")
                    if flag not in flags:
                        flags.append(flag)
                continue
            if kind == "parallelize":
                assert isinstance(item, Opt)
                if not path.sources:
                    raise self.error(item.tok, "parallelize() before any source in this log path; expected source(...) first")
                if par_tok is not None:
                    raise self.error(
                        item.tok,
                        f"a second parallelize() in this log path (the first is at {par_tok.line}:{par_tok.col}); "
                        "one parallelize() per log path is supported",
                    )
                par_tok = item.tok
                path.pipeline.append(self.parallelize(item))
                continue
            if kind == "source" and path.pipeline:
                raise self.error(item.tok, "source after a parallelize(), parser or destination in this log path; expected all sources first")
            if isinstance(item, Block):
                element = {"source": self.source_block, "destination": self.destination_block, "parser": self.parser_block}[kind](item)
                if kind == "source":
                    path.sources.append(element)  # type: ignore[arg-type]
                else:
                    path.pipeline.append(element)  # type: ignore[arg-type]
                has_destination = has_destination or kind == "destination"
                continue
            # A reference: source(NAME) and friends, resolved once the whole file is read.
            tok = self.single(item, f"{kind} name")
            if tok.kind not in (WORD, STRING):
                raise self.error(tok, f"found {tok.describe()} in {item.tok.text}(); expected the name of a {kind}")
            target = path.sources if kind == "source" else path.pipeline
            target.append(None)  # type: ignore[arg-type]
            self.refs.append((kind, tok, path, len(target) - 1))
            has_destination = has_destination or kind == "destination"
        if not path.sources:
            raise self.error(block.tok, "log path without a source; expected at least one source(NAME) or source { ... }")
        if not has_destination:
            raise self.error(block.tok, "log path without a destination; expected at least one destination(NAME) or destination { ... }")
        path.flags = tuple(flags)
        path.flow_control = "flow-control" in flags
        self.config.log_paths.append(path)
        return path

    # -- whole file ----------------------------------------------------
    def resolve(self) -> None:
        tables = {"source": self.config.sources, "destination": self.config.destinations, "parser": self.config.parsers}
        for kind, tok, path, index in self.refs:
            table = tables[kind]
            name = str(tok.value)
            if name not in table:
                known = ", ".join(sorted(table)) or "none"
                close = difflib.get_close_matches(name, list(table), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise self.error(tok, f"undefined {kind} '{name}'; defined {kind}s: {known}{hint}")
            if kind == "source":
                path.sources[index] = table[name]  # type: ignore[assignment]
            else:
                path.pipeline[index] = table[name]  # type: ignore[assignment]

    def finish(self) -> Config:
        self.resolve()
        for drv in self.all_source_drivers:
            explicit = self.explicit[id(drv)]
            if "keep-hostname" in self.globals_set and "keep-hostname" not in explicit:
                drv.keep_hostname = self.globals_set["keep-hostname"]
            if "use-dns" in self.globals_set and "use-dns" not in explicit:
                drv.use_dns = self.globals_set["use-dns"]
            drv.use_fqdn = self.globals_set.get("use-fqdn", False)
        used: dict[tuple[str, int], SourceDriver] = {}
        seen_drivers: set[int] = set()
        for path in self.config.log_paths:
            for src in path.sources:
                for drv in src.drivers:
                    if id(drv) in seen_drivers or drv.port == 0:
                        continue
                    seen_drivers.add(id(drv))
                    key = (drv.ip, drv.port)
                    if key in used:
                        raise ConfigError(
                            drv.loc,
                            f"a second source listening on {drv.ip} port {drv.port} (the first is at {used[key].loc}); "
                            "expected a different port, or port(0) for any free port",
                        )
                    used[key] = drv
        referenced = {id(x) for p in self.config.log_paths for x in [*p.sources, *p.pipeline]}
        for kind, table in (("source", self.config.sources), ("destination", self.config.destinations), ("parser", self.config.parsers)):
            for name, obj in table.items():
                if id(obj) not in referenced:
                    self.warn_fn(f"{obj.loc}: warning: {kind} '{name}' is defined but not used in any log path")
        return self.config

def build(text: str, file: str, profile: Profile, warn: WarnFn) -> Config:
    """Tokenize, parse and check configuration text; the ``Config`` it describes."""
    tokens = tokenize(text, file)
    b = _Builder(file, profile, warn)
    for statement in statements(tokens, file):
        if isinstance(statement, VersionPragma):
            b.config.version = statement.value.text.strip("\"'")
        elif statement.kind == "options":
            b.options_block(statement)
        elif statement.kind == "log":
            b.log_block(statement)
        else:
            {"source": b.source_block, "destination": b.destination_block, "parser": b.parser_block}[statement.kind](statement)
    if not b.config.log_paths:
        last = tokens[-1]
        raise ConfigError(Location(file, last.line, last.col), "no log { } statement; expected at least one log path")
    if b.config.version is None:
        warn(f"{file}:1:1: warning: no @version: line; syslog-ng needs one (for example @version: 4.8)")
    return b.finish()
