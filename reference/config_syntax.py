"""The syntax of syslog-ng's configuration language: tokens -> statements.

Only the shape is checked here, before any meaning: top-level statements
(``@version:``, ``options { }``, ``source NAME { }``, ``destination NAME
{ }``, ``parser NAME { }``, ``log { }``), blocks of ``name(args);`` options,
inline blocks inside ``log { }``, and semicolons.  What an option means, and
whether it is supported, is ``config_semantics``' business.

``statements()`` yields one statement at a time, so the semantics layer sees
(and rejects) the first statement before the second one is parsed: errors
come in file order, as syslog-ng's own parser reports them.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Iterator

from parbench.reference.config_lexer import (EOF, FLOAT, NUMBER, PRAGMA, PUNCT, STRING, WORD, ConfigError,
                                             Token, norm)
from parbench.reference.config_model import Location

# Top-level statements; the first three take a name.
TOP_LEVEL = ("options", "source", "destination", "parser", "log")
NAMED_STATEMENTS = ("source", "destination", "parser")


@dataclass
class Opt:
    """``name(arg arg name(...) ...)`` as written."""

    name: str  # normalized
    tok: Token
    args: list["Token | Opt"] = field(default_factory=list)
    file: str = ""
    close: Token | None = None  # the ')' that ends it (tools that rewrite a config use the span)

    @property
    def loc(self) -> Location:
        return Location(self.file, self.tok.line, self.tok.col)


@dataclass
class Block:
    """``kind [NAME] { items };`` with items either options or inline blocks."""

    kind: str
    tok: Token
    name_tok: Token | None
    items: list["Opt | Block"]
    open: Token | None = None  # the '{' and '}' around the items
    close: Token | None = None


class _Parser:
    def __init__(self, tokens: list[Token], file: str):
        self.toks = tokens
        self.pos = 0
        self.file = file

    def loc(self, tok: Token) -> Location:
        return Location(self.file, tok.line, tok.col)

    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.pos + k, len(self.toks) - 1)]

    def next(self) -> Token:
        tok = self.peek()
        if tok.kind != EOF:
            self.pos += 1
        return tok

    def is_punct(self, tok: Token, ch: str) -> bool:
        return tok.kind == PUNCT and tok.value == ch

    def expect_punct(self, ch: str, expected: str) -> Token:
        tok = self.peek()
        if not self.is_punct(tok, ch):
            raise ConfigError(self.loc(tok), f"found {tok.describe()}; expected {expected}")
        return self.next()

    def semicolons(self, after: str) -> None:
        self.expect_punct(";", f"';' after {after}")
        while self.is_punct(self.peek(), ";"):
            self.next()

    def option(self) -> Opt:
        name_tok = self.next()
        assert name_tok.kind == WORD
        open_tok = self.expect_punct("(", f"'(' after {name_tok.text}")
        opt = Opt(norm(str(name_tok.value)), name_tok, file=self.file)
        while True:
            tok = self.peek()
            if self.is_punct(tok, ")"):
                opt.close = self.next()
                return opt
            if tok.kind in (STRING, NUMBER, FLOAT):
                opt.args.append(self.next())
            elif tok.kind == WORD:
                if self.is_punct(self.peek(1), "("):
                    opt.args.append(self.option())
                else:
                    opt.args.append(self.next())
            else:
                raise ConfigError(
                    self.loc(tok),
                    f"found {tok.describe()} inside {name_tok.text}(; expected ')' to close "
                    f"the '(' at {open_tok.line}:{open_tok.col}, or an option or value",
                )

    def block_body(self, kind_tok: Token, name_tok: Token | None, nested_blocks: bool) -> Block:
        open_tok = self.expect_punct("{", f"'{{' to open the {kind_tok.text} block")
        block = Block(norm(str(kind_tok.value)), kind_tok, name_tok, [], open=open_tok)
        while True:
            tok = self.peek()
            if self.is_punct(tok, "}"):
                block.close = self.next()
                return block
            if tok.kind == WORD and self.is_punct(self.peek(1), "("):
                opt = self.option()
                block.items.append(opt)
                self.semicolons(f"{opt.tok.text}(...)")
                continue
            if nested_blocks and tok.kind == WORD and self.is_punct(self.peek(1), "{"):
                self.next()
                inner = self.block_body(tok, None, nested_blocks=False)
                block.items.append(inner)
                self.semicolons(f"the '}}' of the inline {tok.text} block")
                continue
            if tok.kind == EOF:
                raise ConfigError(
                    self.loc(tok),
                    f"found end of file; expected '}}' to close the {kind_tok.text} block "
                    f"opened at {open_tok.line}:{open_tok.col}",
                )
            what = "an inline block or " if nested_blocks else ""
            raise ConfigError(
                self.loc(tok),
                f"found {tok.describe()} in the {kind_tok.text} block; expected {what}"
                f"name(...); or '}}' to close the block opened at {open_tok.line}:{open_tok.col}",
            )


@dataclass
class VersionPragma:
    """``@version: X.Y`` as written."""

    tok: Token  # the '@'
    value: Token


def statements(tokens: list[Token], file: str) -> Iterator[Block | VersionPragma]:
    """The top-level statements of a token list, one at a time."""
    syn = _Parser(tokens, file)
    version_seen = False
    while True:
        tok = syn.peek()
        if tok.kind == EOF:
            return
        if tok.kind == PRAGMA:
            syn.next()
            word = syn.peek()
            if word.kind != WORD or norm(str(word.value)) != "version":
                raise ConfigError(
                    syn.loc(word),
                    f"found @{word.text}; only @version: is supported (no @include, @define, @module, @requires)",
                )
            syn.next()
            syn.expect_punct(":", "':' after @version")
            value = syn.next()
            if value.kind not in (FLOAT, NUMBER, WORD, STRING) or not re.fullmatch(r"\d+\.\d+(\.\d+)?", str(value.text).strip("\"'")):
                raise ConfigError(syn.loc(value), f"found {value.describe()} after @version:; expected a version such as 4.8")
            if version_seen:
                raise ConfigError(syn.loc(tok), "a second @version: line; expected one")
            version_seen = True
            after = syn.peek()
            if after.kind != EOF and after.line == value.line:
                raise ConfigError(syn.loc(after), f"found {after.describe()} after @version: {value.text}; expected the end of the line")
            yield VersionPragma(tok, value)
            continue
        if tok.kind != WORD:
            raise ConfigError(syn.loc(tok), f"found {tok.describe()}; expected a statement: {', '.join(TOP_LEVEL)}")
        kind = norm(str(tok.value))
        if kind not in TOP_LEVEL:
            close = difflib.get_close_matches(kind, TOP_LEVEL, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                syn.loc(tok),
                f"unsupported statement '{tok.text}'; supported: @version:, {', '.join(TOP_LEVEL)}{hint}",
            )
        syn.next()
        if kind in NAMED_STATEMENTS:
            name_tok = syn.peek()
            if name_tok.kind != WORD:
                raise ConfigError(syn.loc(name_tok), f"found {name_tok.describe()}; expected a name after '{tok.text}'")
            syn.next()
            block = syn.block_body(tok, name_tok, nested_blocks=False)
            syn.semicolons(f"the '}}' of {kind} {name_tok.text}")
        elif kind == "options":
            block = syn.block_body(tok, None, nested_blocks=False)
            syn.semicolons("the '}' of options")
        else:
            block = syn.block_body(tok, None, nested_blocks=True)
            syn.semicolons("the '}' of the log path")
        yield block
