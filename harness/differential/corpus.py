"""The corpus of a differential run: cases as exact bytes, in sections.

A corpus is a UTF-8 text file, one entry per line::

    # a comment; blank lines are ignored
    [rfc3164] config=tcp-rfc3164.conf
    pri-16bit "<65536>Oct 11 22:14:15 host prog: text\\n" syslog-format.c _syslog_format_parse_pri
    bom-5424 "<13>1 - h a p m - \\xef\\xbb\\xbfhi\\n" !bom-kept@syslog-ng syslog-format.c ...

* ``[NAME]`` starts a section; ``config=FILE`` (relative to the corpus file)
  names the configuration its cases run with when ``parbench diff`` is not
  given one.  Cases before the first section belong to section ``default``.
* A case is ``NAME "BYTES" [!MARK]... WHERE``: a unique name (letters,
  digits, ``._-``); the exact bytes sent on one connection, framing
  included (the newline, or ``LEN SP`` for octet counting); optional marks
  of an expected divergence; and where the real parser decides it (the
  upstream file and function), to the end of the line.
* BYTES escapes: ``\\n \\r \\t \\0 \\\\ \\"``, ``\\xHH`` (one byte), and
  ``\\R{N:TEXT}`` (TEXT, itself with escapes but without ``}``, repeated N
  times: long lines without a long line in the file).  Other characters are
  their UTF-8 bytes.
* ``!NAME`` marks the case as an expected divergence between the reference
  and every real implementation; ``!NAME@IMPL`` only for implementations
  whose version (``syslog-ng 4.8.1``, ``axosyslog 4.27.0``) starts with
  IMPL, written with ``-`` for the space: ``@syslog-ng``,
  ``@axosyslog-4.27``.  A divergence is documented in docs/semantics.md
  under its name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from parbench.errors import UsageError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SECTION_RE = re.compile(r"\[(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\](?P<rest>.*)")
_MARK_RE = re.compile(r"!(?P<name>[a-z0-9][a-z0-9-]*)(?:@(?P<impl>[a-z][a-z0-9.-]*))?")
_SIMPLE_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\x00", "\\": b"\\", '"': b'"'}
MAX_REPEAT = 1_000_000


class CorpusError(UsageError):
    """A corpus file that cannot be read; ``str()`` is ``FILE:LINE: what; expected what``."""


@dataclass(frozen=True)
class Mark:
    """An expected divergence: ``name``, for implementations whose version
    starts with ``impl`` (None: every implementation)."""

    name: str
    impl: str | None = None

    def applies_to(self, version: str | None) -> bool:
        if self.impl is None:
            return True
        if not version:
            return False
        spelled = version.strip().lower().replace(" ", "-")
        if not spelled.startswith(self.impl):
            return False
        rest = spelled[len(self.impl):]
        return not rest or rest[0] in ".-"

    def __str__(self) -> str:
        return f"!{self.name}" + (f"@{self.impl}" if self.impl else "")


@dataclass(frozen=True)
class Case:
    name: str
    payload: bytes
    where: str
    section: str
    line: int
    marks: tuple[Mark, ...] = ()

    def divergence_for(self, version: str | None) -> Mark | None:
        """The mark that explains a difference on ``version``, if any."""
        for mark in self.marks:
            if mark.applies_to(version):
                return mark
        return None


@dataclass
class Section:
    name: str
    config: Path | None = None
    cases: list[Case] = field(default_factory=list)


@dataclass
class Corpus:
    path: Path
    sections: list[Section]

    @property
    def cases(self) -> list[Case]:
        return [case for section in self.sections for case in section.cases]

    def select(self, names: list[str] | None) -> list[Section]:
        """The sections named (all when ``names`` is empty); CorpusError for
        a name the corpus has no section of."""
        if not names:
            return list(self.sections)
        known = {section.name: section for section in self.sections}
        chosen = []
        for name in names:
            if name not in known:
                raise CorpusError(f"{self.path}: no section [{name}]; sections: {', '.join(known) or 'none'}")
            chosen.append(known[name])
        return chosen


def decode_bytes(text: str, where: str = "") -> bytes:
    """BYTES as written between the quotes -> the bytes; ValueError saying
    what is wrong (``where`` prefixes the message)."""
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "\\":
            j = text.find("\\", i)
            j = n if j < 0 else j
            out += text[i:j].encode("utf-8")
            i = j
            continue
        nxt = text[i + 1:i + 2]
        if nxt in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[nxt]
            i += 2
        elif nxt == "x":
            digits = text[i + 2:i + 4]
            if not re.fullmatch(r"[0-9A-Fa-f]{2}", digits):
                raise ValueError(f"{where}bad escape \\x{digits!s}: expected two hex digits after \\x")
            out.append(int(digits, 16))
            i += 4
        elif nxt == "R":
            m = re.compile(r"\\R\{(\d+):([^}]*)\}").match(text, i)
            if not m:
                raise ValueError(f"{where}bad repetition at column {i + 1}: expected \\R{{COUNT:TEXT}}")
            count = int(m.group(1))
            if count > MAX_REPEAT:
                raise ValueError(f"{where}repetition count {count} too large: expected at most {MAX_REPEAT}")
            out += decode_bytes(m.group(2), where) * count
            i = m.end()
        else:
            raise ValueError(f"{where}unknown escape \\{nxt or '(end)'}: expected \\n \\r \\t \\0 \\\\ \\\" "
                             "\\xHH or \\R{COUNT:TEXT}")
    return bytes(out)


def encode_bytes(data: bytes) -> str:
    """Bytes as a corpus BYTES field (the inverse of ``decode_bytes``), for
    printing cases and payloads."""
    out = []
    for byte in data:
        ch = chr(byte)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif byte == 0:
            out.append("\\0")
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def _quoted(line: str, start: int) -> tuple[str, int]:
    """The text between the double quote at ``start`` and its closing quote
    (backslash escapes skipped over), and the index after the closing quote."""
    i = start + 1
    while i < len(line):
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return line[start + 1:i], i + 1
        i += 1
    raise ValueError("no closing '\"' for the bytes")


def parse_corpus(text: str, path: Path | str) -> Corpus:
    path = Path(path)
    sections: list[Section] = []
    current: Section | None = None
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{path}:{number}: "
        if not line or line.startswith("#"):
            continue
        m = _SECTION_RE.fullmatch(line)
        if m:
            if any(s.name == m.group("name") for s in sections):
                raise CorpusError(f"{where}a second section [{m.group('name')}]; expected each section once")
            current = Section(m.group("name"))
            for option in m.group("rest").split():
                key, eq, value = option.partition("=")
                if key != "config" or not eq or not value:
                    raise CorpusError(f"{where}unknown section option {option!r}; expected config=FILE")
                current.config = (path.parent / value)
            sections.append(current)
            continue
        name_m = NAME_RE.match(line)
        if not name_m or line[name_m.end():name_m.end() + 1] not in (" ", "\t"):
            raise CorpusError(f"{where}found {line[:40]!r}; expected a case: NAME \"BYTES\" [!MARK]... WHERE, "
                              "or a [SECTION] line")
        name = name_m.group(0)
        rest = line[name_m.end():].lstrip()
        if not rest.startswith('"'):
            raise CorpusError(f"{where}case {name}: expected the bytes in double quotes after the name")
        try:
            body, after = _quoted(rest, 0)
            payload = decode_bytes(body)
        except ValueError as exc:
            raise CorpusError(f"{where}case {name}: {exc}") from None
        if not payload:
            raise CorpusError(f"{where}case {name}: empty bytes; expected something to send")
        if name in seen:
            raise CorpusError(f"{where}a second case named {name} (the first is on line {seen[name]}); "
                              "expected unique names")
        seen[name] = number
        words = rest[after:].split()
        marks = []
        while words and words[0].startswith("!"):
            mark_m = _MARK_RE.fullmatch(words[0])
            if not mark_m:
                raise CorpusError(f"{where}case {name}: bad mark {words[0]!r}; expected !NAME or !NAME@IMPL "
                                  "(lowercase, e.g. !bom-kept@syslog-ng)")
            marks.append(Mark(mark_m.group("name"), mark_m.group("impl")))
            words.pop(0)
        if current is None:
            current = Section("default")
            sections.append(current)
        current.cases.append(Case(name, payload, " ".join(words), current.name, number, tuple(marks)))
    if not any(section.cases for section in sections):
        raise CorpusError(f"{path}: no cases; expected lines NAME \"BYTES\" WHERE")
    return Corpus(path, sections)


def load_corpus(path: Path | str) -> Corpus:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read the corpus ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: invalid UTF-8; expected a UTF-8 text file (write other bytes as \\xHH)") from None
    return parse_corpus(text, path)


def shipped_corpus_path() -> Path:
    """The corpus parbench ships (package data next to this module)."""
    return Path(__file__).with_name("data") / "corpus.txt"
