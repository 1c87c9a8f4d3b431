"""The lexer of syslog-ng's configuration language: text -> tokens.

The rules follow syslog-ng's own lexer (lib/cfg-lex.l; docs/semantics.md,
"Configuration language"):

* ``#`` starts a comment that runs to the end of the line; a comma is
  whitespace; a backslash before a newline continues the line.
* ``-`` and ``_`` are interchangeable in option, driver and flag names
  (``norm``).  Names are normalized to ``-`` (the spelling of syslog-ng's
  documentation), and error messages use that spelling.
* Double-quoted strings know the escapes ``\\a \\n \\r \\t \\v \\xHH \\oOOO``;
  any other escaped character stands for itself (``\\"``, ``\\\\``).  Single
  quoted strings have no escapes.  Both may span lines.
* A bare word may contain dots between word characters (``127.0.0.1``) and
  may stand where a string is expected, as in syslog-ng.
* Numbers: ``0x1F`` (hex), ``017`` (octal: a leading zero means octal in
  syslog-ng too), ``-12``, floats ``1.5``, and sizes: an exponent ``k``/``M``/
  ``G`` (either case), optionally followed by ``i`` (binary) and/or ``B``.
  Without ``i`` the base is 1000 and with it 1024, exactly like syslog-ng's
  lib/parse-number.c: ``10M`` = ``10MB`` = 10,000,000; ``64k`` =
  64,000; ``10KiB`` = 10,240; ``1Gi`` = 1,073,741,824; ``5B`` = 5.
* ``@`` at the start of a line is a pragma (only ``@version:`` is supported,
  by the syntax layer).

Lines and columns are 1-based; a tab counts as one column.  ``ConfigError``
lives here because every layer above raises it and imports this one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from parbench.errors import UsageError
from parbench.reference.config_model import Location

_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """Control characters (a string value may hold newlines) as escapes."""
    return "".join(
        _CONTROL_ESCAPES.get(ch, f"\\x{ord(ch):02x}") if ord(ch) < 0x20 or ord(ch) == 0x7F else ch
        for ch in text
    )


class ConfigError(UsageError):
    """A configuration the reference cannot run; ``str()`` is one line:
    ``FILE:LINE:COLUMN: <what was found>; <what is supported>``."""

    def __init__(self, loc: Location, message: str):
        message = one_line(message)
        super().__init__(f"{loc}: {message}")
        self.loc = loc
        self.message = message


WORD = "word"
STRING = "string"
NUMBER = "number"
FLOAT = "float"
PUNCT = "punct"
PRAGMA = "pragma"
EOF = "eof"

# Characters that end a bare word (cfg-lex.l's {word} class, dot handled apart).
_NON_WORD = set(" \t\r\n#'\"(){}[]\\;,|.@:")
_FLOAT_RE = re.compile(r"[-+]?[0-9]+\.[0-9]+")
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+")
_OCTAL_RE = re.compile(r"0[0-7]+")
_SIZE_RE = re.compile(r"([-+]?[0-9]+)([kKmMgG]?)([iI]?)([bB]?)")
_EXPONENTS = {"": 0, "k": 1, "m": 2, "g": 3}
_STRING_ESCAPES = {"a": "\a", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_HEX_ESCAPE_RE = re.compile(r"x([0-9a-fA-F]{1,2})")
_OCTAL_ESCAPE_RE = re.compile(r"o([0-7]{1,3})")


@dataclass
class Token:
    kind: str
    value: object  # str for word/string/punct/pragma, int for number, float
    text: str  # as written
    line: int
    col: int
    # True when the value's characters sit one to one at the columns after
    # the opening quote (no escapes, no line break), so an error inside a
    # template can point at its exact column.
    plain: bool = True

    def describe(self) -> str:
        if self.kind == EOF:
            return "end of file"
        if self.kind == STRING:
            shown = self.text if len(self.text) <= 60 else self.text[:57] + "..."
            return f"string {shown}"
        return f"'{self.text}'"


_INT64_MAX = 2**63 - 1


def _number_value(text: str) -> int | None:
    """The value of a syslog-ng integer lexeme, or None if it is not one
    (including values outside int64, which syslog-ng's strtoll rejects)."""
    value = _unchecked_number_value(text)
    if value is None or abs(value) > _INT64_MAX:
        return None
    return value


def _unchecked_number_value(text: str) -> int | None:
    if _HEX_RE.fullmatch(text):
        return int(text, 16)
    if _OCTAL_RE.fullmatch(text):
        return int(text, 8)
    m = _SIZE_RE.fullmatch(text)
    if not m:
        return None
    digits, exponent, binary, _unit = m.groups()
    if len(digits.lstrip("+-")) > 1 and digits.lstrip("+-").startswith("0"):
        return None  # e.g. 08: strtoll reads 0 and stops at the 8
    base = 1024 if binary else 1000
    if binary and not exponent:
        return None  # "5i" has no exponent to scale
    return int(digits) * base ** _EXPONENTS[exponent.lower()]


def is_numberish(text: str) -> bool:
    return bool(re.match(r"[-+]?[0-9]", text))


def tokenize(text: str, file: str) -> list[Token]:
    tokens: list[Token] = []
    i, line, line_start, n = 0, 1, 0, len(text)

    while i < n:
        c = text[i]
        if c == "\n":
            i += 1
            line, line_start = line + 1, i
            continue
        if c in " \t\r,":
            i += 1
            continue
        if c == "\\" and text.startswith("\n", i + 1):
            i += 2
            line, line_start = line + 1, i
            continue
        if c == "\\" and text.startswith("\r\n", i + 1):
            i += 3
            line, line_start = line + 1, i
            continue
        if c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        col = i - line_start + 1
        if c == "@" and i == line_start:
            tokens.append(Token(PRAGMA, "@", "@", line, col))
            i += 1
            continue
        if c == '"' or c == "'":
            start_line, start_col = line, col
            buf: list[str] = []
            plain = True
            j = i + 1
            while True:
                if j >= n:
                    raise ConfigError(
                        Location(file, start_line, start_col),
                        f"unterminated string starting with {c}; "
                        f"expected a closing {c} before the end of the file",
                    )
                ch = text[j]
                if ch == c:
                    j += 1
                    break
                if ch == "\n":
                    plain = False
                    buf.append(ch)
                    j += 1
                    line, line_start = line + 1, j
                    continue
                if ch == "\\" and c == '"':
                    plain = False
                    nxt = text[j + 1] if j + 1 < n else ""
                    if nxt == "\n":
                        j += 2
                        line, line_start = line + 1, j
                        continue
                    if nxt == "\r" and text.startswith("\n", j + 2):
                        j += 3
                        line, line_start = line + 1, j
                        continue
                    if nxt in _STRING_ESCAPES:
                        buf.append(_STRING_ESCAPES[nxt])
                        j += 2
                        continue
                    m = _HEX_ESCAPE_RE.match(text, j + 1)
                    if m:
                        buf.append(chr(int(m.group(1), 16)))
                        j = m.end()
                        continue
                    m = _OCTAL_ESCAPE_RE.match(text, j + 1)
                    if m:
                        buf.append(chr(int(m.group(1), 8) & 0xFF))
                        j = m.end()
                        continue
                    if nxt == "":
                        j += 1
                        continue
                    buf.append(nxt)
                    j += 2
                    continue
                buf.append(ch)
                j += 1
            raw = text[i:j]
            tokens.append(Token(STRING, "".join(buf), raw, start_line, start_col, plain))
            i = j
            continue
        if c not in _NON_WORD:
            j = i
            while True:
                while j < n and text[j] not in _NON_WORD:
                    j += 1
                # A dot belongs to a word only between word characters.
                if j + 1 < n and text[j] == "." and text[j + 1] not in _NON_WORD:
                    j += 1
                    continue
                break
            raw = text[i:j]
            if _FLOAT_RE.fullmatch(raw):
                tokens.append(Token(FLOAT, float(raw), raw, line, col))
            else:
                value = _number_value(raw)
                if value is not None:
                    tokens.append(Token(NUMBER, value, raw, line, col))
                else:
                    tokens.append(Token(WORD, raw, raw, line, col))
            i = j
            continue
        tokens.append(Token(PUNCT, c, c, line, col))
        i += 1
    tokens.append(Token(EOF, None, "", line, n - line_start + 1))
    return tokens


def norm(name: str) -> str:
    """An option, driver or flag name in its ``-`` spelling."""
    return name.replace("_", "-")
