"""A user's configuration -> the text every implementation of a diff runs.

Three edits, made on the syntax tree of the reference's own config reader
(``reference.config_syntax``), so that everything else in the file stays as
written and the same text runs everywhere:

* every source driver listens on a loopback port the runner chose (its
  ``port()`` is replaced, or added): a real syslog-ng cannot report the
  port of a ``port(0)`` source, and two runs must not collide;
* every destination's drivers are replaced by one ``tcp()`` driver to the
  runner's collector with the all-macro template (``record.TEMPLATE``);
* every ``parallelize()`` becomes ``parallelize(partitions(0))``, the
  bypass: partitions change when messages arrive, not what they hold, and
  the runner needs every message of a case before the next case's
  (``runner``).

The file is checked with the reference's reader first (``ConfigError``,
exit 2, for anything the reference does not run): a configuration the
reference rejects cannot be compared.
"""
from __future__ import annotations

from dataclasses import dataclass

from parbench.harness.render import quote
from parbench.reference.config import parse_config
from parbench.reference.config_lexer import Token, tokenize
from parbench.reference.config_model import Config, Location, SourceDriver
from parbench.reference.config_syntax import Block, Opt, statements
from parbench.reference.profiles import Profile


@dataclass(frozen=True)
class SourceSpot:
    """One source driver of the configuration: where it is written, its
    name (None for an inline source), its framing ("text" or "framed")."""

    loc: Location
    source: str | None
    driver: str
    framing: str


@dataclass
class PreparedConfig:
    file: str
    text: str
    config: Config
    sources: list[SourceSpot]
    _port_edits: list[tuple[int, int, str]]  # (start, end, "{port}" template) per source driver
    _destination_edits: list[tuple[int, int]]
    _bypass_edits: list[tuple[int, int]]  # each parallelize(...)

    def render(self, ports: list[int], collector_port: int, template: str) -> str:
        """The text to run: source driver i on ``ports[i]``, every
        destination writing ``template`` to the collector."""
        if len(ports) != len(self._port_edits):
            raise ValueError(f"{len(self._port_edits)} source drivers need as many ports, got {len(ports)}")
        destination = (f' tcp("127.0.0.1" port({int(collector_port)}) template({quote(template)})); ')
        edits = [(start, end, text.format(port=int(port)))
                 for (start, end, text), port in zip(self._port_edits, ports)]
        edits += [(start, end, destination) for start, end in self._destination_edits]
        edits += [(start, end, "parallelize(partitions(0))") for start, end in self._bypass_edits]
        out = self.text
        for start, end, replacement in sorted(edits, reverse=True):
            out = out[:start] + replacement + out[end:]
        return out


def _offsets(text: str) -> list[int]:
    starts = [0]
    for index, ch in enumerate(text):
        if ch == "\n":
            starts.append(index + 1)
    return starts


def prepare_config(text: str, file: str, profile: Profile | None = None) -> PreparedConfig:
    """Check ``text`` with the reference (ConfigError when it would not run
    it) and find what ``PreparedConfig.render`` replaces."""
    config = parse_config(text, file, profile, warn=lambda _line: None)
    drivers: dict[tuple[int, int], tuple[SourceDriver, str | None]] = {}
    for source in [*config.sources.values(),
                   *(s for path in config.log_paths for s in path.sources)]:
        for drv in source.drivers:
            drivers[(drv.loc.line, drv.loc.column)] = (drv, source.name)
    line_starts = _offsets(text)

    def at(tok: Token) -> int:
        return line_starts[tok.line - 1] + tok.col - 1

    port_edits: list[tuple[int, int, str]] = []
    destination_edits: list[tuple[int, int]] = []
    bypass_edits: list[tuple[int, int]] = []
    spots: list[SourceSpot] = []

    def source_block(block: Block) -> None:
        for item in block.items:
            assert isinstance(item, Opt) and item.close is not None
            drv, name = drivers[(item.tok.line, item.tok.col)]
            spots.append(SourceSpot(drv.loc, name, drv.kind, drv.framing))
            port = next((sub for sub in item.args if isinstance(sub, Opt) and sub.name in ("port", "localport")),
                        None)
            if port is not None:
                assert port.close is not None
                start = at(port.args[0]) if port.args else at(port.close)
                port_edits.append((start, at(port.close), "{port}"))
            else:
                port_edits.append((at(item.close), at(item.close), " port({port})"))

    def destination_block(block: Block) -> None:
        assert block.open is not None and block.close is not None
        destination_edits.append((at(block.open) + 1, at(block.close)))

    handlers = {"source": source_block, "destination": destination_block}
    for statement in statements(tokenize(text, file), file):
        if not isinstance(statement, Block):
            continue
        if statement.kind in handlers:
            handlers[statement.kind](statement)
        elif statement.kind == "log":
            for item in statement.items:
                if isinstance(item, Block) and item.kind in handlers:
                    handlers[item.kind](item)
                elif isinstance(item, Opt) and item.name == "parallelize":
                    assert item.close is not None
                    bypass_edits.append((at(item.tok), at(item.close) + 1))
    return PreparedConfig(file, text, config, spots, port_edits, destination_edits, bypass_edits)
