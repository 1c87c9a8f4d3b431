"""syslog-ng templates: compile once, render per message.

The syntax follows syslog-ng's template compiler (lib/template/compiler.c,
config version >= 3.5):

* ``$NAME`` (name = ``[A-Za-z0-9_]+``), ``${NAME}`` (anything up to ``}``,
  e.g. ``${.SDATA.origin.ip}``), ``${NAME:-default}``;
* ``$$`` is a literal ``$``; a ``$`` followed by anything else that cannot
  start a name (a space, ``-``, end of text) is kept literally, as syslog-ng
  does; backslashes are plain text (string escapes belong to the config
  lexer, not to the template);
* ``NAME@@`` after a macro is a literal ``@`` (``$HOST@1``, a correlation
  context reference, is not supported);
* unset names expand to empty bytes.

Rejected with :class:`TemplateError` (1-based column of the offending ``$``):
template functions ``$(...)``, ``$*``, unterminated ``${``, substitutions
other than ``:-``, context references, and syslog-ng macros the reference does
not compute (``$YEAR``, ``$R_DATE``, ...: better a start-up error than a
silently empty value).

Rendering is generated Python code: one ``b"".join`` of dict lookups and
literals, so a template costs one function call per message.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from parbench.errors import UsageError
from parbench.reference.syslog_format import LOCAL

# Aliases syslog-ng accepts for the same value (lib/logmsg/logmsg.c,
# lib/template/macros.c).
ALIASES: dict[str, str] = {
    "MESSAGE": "MSG",
    "MSGONLY": "MSG",
    "LEVEL": "SEVERITY",
    "PRIORITY": "SEVERITY",
    "LEVEL_NUM": "SEVERITY_NUM",
    "FULLHOST": "HOST",
    "FULLHOST_FROM": "HOST_FROM",
}

# Values reference.message puts in every parsed message (LEGACY_MSGHDR only
# in messages parsed as RFC 3164, as syslog-ng's store-legacy-msghdr does).
STORED_MACROS = frozenset(
    ["HOST", "HOST_FROM", "PROGRAM", "PID", "MSG", "MSGID", "PRI", "FACILITY", "SEVERITY",
     "DATE", "ISODATE", "MSGHDR", "LEGACY_MSGHDR", "SOURCEIP"]
)


def _facility_num(m: dict, seq: int = 0) -> bytes:
    pri = m.get("PRI")
    return b"%d" % ((int(pri) & 0x3F8) >> 3) if pri else b""


def _severity_num(m: dict, seq: int = 0) -> bytes:
    pri = m.get("PRI")
    return b"%d" % (int(pri) & 7) if pri else b""


def _sd_key_escaped(text: bytes) -> bytes:
    # syslog-ng writes bytes a key may not hold as %XX (log_msg_sdata_append_key_escaped).
    if all(0x20 < b < 0x7F and b not in b'=[]"' for b in text):
        return text
    return b"".join(bytes([b]) if 0x20 < b < 0x7F and b not in b'=[]"' else b"%%%02X" % b for b in text)


def format_sdata(m: dict, seq: int = 0) -> bytes:
    """``$SDATA``: the message's ``.SDATA.ID.PARAM`` pairs as RFC 5424
    structured data, in the order they were set, consecutive pairs of one
    ID in one element; the ID is everything up to the last dot
    (``log_msg_append_format_sdata()`` in lib/logmsg/logmsg.c).  ``seq``:
    the destination's number of a message syslog-ng generated itself
    (0: none), shown as ``meta sequenceId`` when the message has none."""
    out: list[bytes] = []
    current: bytes | None = None
    numbered = not seq or bool(m.get(".SDATA.meta.sequenceId"))
    for name, value in m.items():
        if not name.startswith(".SDATA.") or len(name) <= 7:
            continue
        rest = name[7:].encode("utf-8", "surrogateescape")
        dot = rest.rfind(b".")
        element, param = (rest[:dot], rest[dot + 1:]) if dot >= 0 else (rest or b"none", b"")
        if element != current:
            if current is not None:
                out.append(b"]")
            out.append(b"[" + _sd_key_escaped(element))
            current = element
        if not numbered and name.startswith(".SDATA.meta."):
            out.append(b' sequenceId="%d"' % seq)
            numbered = True
        if param:
            escaped = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"]", b"\\]")
            out.append(b" " + _sd_key_escaped(param) + b'="' + escaped + b'"')
    if current is not None:
        out.append(b"]")
    if not numbered:
        out.append(b'[meta sequenceId="%d"]' % seq)
    return b"".join(out)


# Macros computed from the stored values when a template asks for them
# (called with the message and its destination sequence number).
COMPUTED_MACROS: dict[str, Callable[[dict, int], bytes]] = {
    "FACILITY_NUM": _facility_num,
    "SEVERITY_NUM": _severity_num,
    "SDATA": format_sdata,
}

SUPPORTED_MACROS = STORED_MACROS | frozenset(COMPUTED_MACROS)

# syslog-ng macros (computed, not name-value pairs) and predefined values the
# reference does not compute: referencing them would silently render empty.
_UNSUPPORTED_MACRO_RE = re.compile(
    r"^(?:[RSCP]_)?(?:FULLDATE|STAMP|YEAR|YEAR_DAY|MONTH|MONTH_WEEK|MONTH_ABBREV|"
    r"MONTH_NAME|DAY|HOUR|HOUR12|MIN|SEC|USEC|MSEC|AMPM|WEEKDAY|WEEK_DAY|"
    r"WEEK_DAY_ABBREV|WEEK_DAY_NAME|WEEK|ISOWEEK|TZOFFSET|TZ|SYSUPTIME|UNIXTIME|"
    r"DATE|ISODATE)$"
    r"|^(?:TAG|TAGS|BSDTAG|SEQNUM|CONTEXT_ID|_|LOGHOST|RCPTID|RUNID|HOSTID|UNIQID|SOURCE|"
    r"RAWMSG|RAWMSG_SIZE|MSGFORMAT|TRANSPORT|FILE_NAME|IP_PROTO|DESTIP|DESTPORT|SOURCEPORT|"
    r"PEERIP|PEERPORT|PROTO|PROTO_NAME)$"
)

_NAME_CHARS = re.compile(r"[A-Za-z0-9_]+")


class TemplateError(UsageError):
    """A template syslog-ng would reject, or the reference cannot render;
    ``column`` is 1-based into the template text."""

    def __init__(self, message: str, column: int):
        super().__init__(f"column {column}: {message}")
        self.message = message
        self.column = column


@dataclass(frozen=True)
class _Value:
    name: str
    default: bytes = b""


@dataclass
class Template:
    text: str
    parts: list = field(default_factory=list)  # bytes literals and _Value
    single_name: str | None = None
    literal: bytes | None = None
    _render: Callable[[dict], bytes] | None = field(default=None, repr=False)

    # A destination numbers the messages syslog-ng generated itself (parse
    # errors), 1, 2, ... in the order it writes them, and $SDATA shows the
    # number as meta sequenceId (lib/logwriter.c, _get_seq_num()).
    numbers_local: bool = False
    _sequence: int = 1

    def render(self, msg: dict[str, bytes]) -> bytes:
        return self._render(msg)

    def render_many(self, messages: list[dict[str, bytes]]) -> list[bytes]:
        """A destination's lines: one template instance per destination
        (its local-message numbering continues from call to call)."""
        if not self.numbers_local:
            return list(map(self._render, messages))
        render = self._render
        out = []
        for msg in messages:
            if LOCAL in msg:
                out.append(render(msg, self._sequence))
                self._sequence = self._sequence + 1 if self._sequence < 0x7FFFFFFF else 1
            else:
                out.append(render(msg))
        return out


def _canonical(name: str) -> str:
    return ALIASES.get(name, name)


def _check_name(name: str, column: int) -> None:
    if name in SUPPORTED_MACROS or name in ALIASES:
        return
    if _UNSUPPORTED_MACRO_RE.match(name):
        raise TemplateError(
            f"macro ${name} is not computed by the reference; supported macros: "
            + ", ".join(sorted(SUPPORTED_MACROS | set(ALIASES)))
            + " and name-value pairs such as ${.SDATA.id.name}",
            column,
        )


def _parse(text: str) -> list:
    parts: list = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            parts.append("".join(literal).encode("utf-8", "surrogateescape"))
            literal.clear()

    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$":
            j = text.find("$", i)
            if j < 0:
                j = n
            literal.append(text[i:j])
            i = j
            continue
        column = i + 1
        nxt = text[i + 1] if i + 1 < n else ""
        if nxt == "{":
            end = text.find("}", i + 2)
            if end < 0:
                raise TemplateError("invalid macro, '}' is missing after '${'", column)
            body = text[i + 2:end]
            default = b""
            colon = body.find(":")
            if colon >= 0:
                subst = body[colon + 1:]
                if not subst.startswith("-"):
                    raise TemplateError(
                        f"unknown substitution {':' + subst!r} in ${{{body}}}; "
                        "only ${NAME:-default} is supported",
                        column + 2 + colon,
                    )
                default = subst[1:].encode("utf-8", "surrogateescape")
                body = body[:colon]
            i = end + 1
            name = body
        elif nxt == "(":
            raise TemplateError(
                "template functions $(...) are not supported; use $NAME, ${NAME} or literal text",
                column,
            )
        elif nxt == "*":
            raise TemplateError("$* (match variables) is not supported", column)
        elif nxt and _NAME_CHARS.match(nxt):
            m = _NAME_CHARS.match(text, i + 1)
            name = m.group(0)
            default = b""
            i = m.end()
        else:
            # "$$" -> "$"; "$" followed by anything else (or nothing) stays "$".
            if nxt == "$":
                literal.append("$")
                i += 2
            else:
                literal.append("$")
                i += 1
            continue
        # syslog-ng's "@N" correlation-context reference after a macro.
        if i < n and text[i] == "@":
            if i + 1 < n and text[i + 1].isdigit():
                raise TemplateError(
                    "correlation context references ($NAME@N) are not supported", i + 1
                )
            if i + 1 < n and text[i + 1] == "@":
                i += 1  # "@@" -> one literal "@", which the loop keeps
        _check_name(name, column)
        flush()
        parts.append(_Value(_canonical(name), default))
    flush()
    return parts


def _codegen(parts: list) -> Callable[[dict], bytes]:
    if not parts:
        return lambda m, seq=0: b""
    exprs = []
    namespace: dict = {}
    for p in parts:
        if isinstance(p, _Value) and p.name in COMPUTED_MACROS:
            function = f"_computed_{p.name}"
            namespace[function] = COMPUTED_MACROS[p.name]
            exprs.append(f"({function}(m, seq) or {p.default!r})" if p.default else f"{function}(m, seq)")
        elif isinstance(p, _Value):
            exprs.append(f"(g({p.name!r}) or {p.default!r})" if p.default else f"g({p.name!r}, b'')")
        else:
            exprs.append(repr(p))
    if len(exprs) == 1:
        body = exprs[0]
    else:
        body = "b''.join((" + ", ".join(exprs) + ",))"
    # Names and literals are embedded through repr(), so any text is safe.
    src = f"def render(m, seq=0):\n    g = m.get\n    return {body}\n"
    exec(compile(src, "<template>", "exec"), namespace)
    return namespace["render"]


def compile_template(text: str) -> Template:
    """Compile syslog-ng template text; raises TemplateError with a 1-based column."""
    parts = _parse(text)
    single_name = None
    literal = None
    if len(parts) == 1 and isinstance(parts[0], _Value) and not parts[0].default \
            and parts[0].name not in COMPUTED_MACROS:
        single_name = parts[0].name
    elif all(isinstance(p, bytes) for p in parts):
        literal = b"".join(parts)
    return Template(text=text, parts=parts, single_name=single_name,
                    literal=literal, _render=_codegen(parts),
                    numbers_local=any(isinstance(p, _Value) and p.name == "SDATA" for p in parts))
