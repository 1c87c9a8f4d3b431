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

# Aliases syslog-ng accepts for the same value.
ALIASES: dict[str, str] = {
    "MESSAGE": "MSG",
    "LEVEL": "SEVERITY",
    "PRIORITY": "SEVERITY",
    "FULLHOST": "HOST",
    "FULLHOST_FROM": "SOURCEIP",
    "HOST_FROM": "SOURCEIP",
}

# Values reference.message puts in every parsed message.
SUPPORTED_MACROS = frozenset(
    ["HOST", "PROGRAM", "PID", "MSG", "MSGID", "PRI", "FACILITY", "SEVERITY",
     "DATE", "ISODATE", "MSGHDR", "SOURCEIP"]
)

# syslog-ng macros (computed, not name-value pairs) the reference does not
# compute: referencing them would silently render empty.
_UNSUPPORTED_MACRO_RE = re.compile(
    r"^(?:[RSC]_)?(?:FULLDATE|STAMP|YEAR|YEAR_DAY|MONTH|MONTH_WEEK|MONTH_ABBREV|"
    r"MONTH_NAME|DAY|HOUR|HOUR12|MIN|SEC|USEC|MSEC|AMPM|WEEKDAY|WEEK_DAY|"
    r"WEEK_DAY_ABBREV|WEEK_DAY_NAME|WEEK|ISOWEEK|TZOFFSET|TZ|SYSUPTIME|UNIXTIME|"
    r"DATE|ISODATE)$"
    r"|^(?:FACILITY_NUM|LEVEL_NUM|SEVERITY_NUM|TAG|TAGS|BSDTAG|SDATA|SEQNUM|"
    r"CONTEXT_ID|LOGHOST|RCPTID|RUNID|HOSTID|UNIQID|SOURCE|RAWMSG|MSGFORMAT|"
    r"TRANSPORT|IP_PROTO|DESTIP|DESTPORT|SOURCEPORT|PROTO)$"
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

    def render(self, msg: dict[str, bytes]) -> bytes:
        return self._render(msg)

    def render_many(self, messages: list[dict[str, bytes]]) -> list[bytes]:
        return list(map(self._render, messages))


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
        return lambda m: b""
    exprs = []
    for p in parts:
        if isinstance(p, _Value):
            exprs.append(f"g({p.name!r}, {p.default!r})")
        else:
            exprs.append(repr(p))
    if len(exprs) == 1:
        body = exprs[0]
    else:
        body = "b''.join((" + ", ".join(exprs) + ",))"
    # Names and literals are embedded through repr(), so any text is safe.
    src = f"def render(m):\n    g = m.get\n    return {body}\n"
    namespace: dict = {}
    exec(compile(src, "<template>", "exec"), namespace)
    return namespace["render"]


def compile_template(text: str) -> Template:
    """Compile syslog-ng template text; raises TemplateError with a 1-based column."""
    parts = _parse(text)
    single_name = None
    literal = None
    if len(parts) == 1 and isinstance(parts[0], _Value) and not parts[0].default:
        single_name = parts[0].name
    elif all(isinstance(p, bytes) for p in parts):
        literal = b"".join(parts)
    return Template(text=text, parts=parts, single_name=single_name,
                    literal=literal, _render=_codegen(parts))
