"""The corpus file format of ``parbench diff``, and the corpus parbench ships."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from parbench.harness.differential.corpus import (
    CorpusError,
    Mark,
    decode_bytes,
    encode_bytes,
    load_corpus,
    parse_corpus,
    shipped_corpus_path,
)
from parbench.harness.differential.prepare import prepare_config
from parbench.reference.profiles import PROFILES

REPO = Path(__file__).resolve().parents[1]


def test_escapes_and_repetition():
    assert decode_bytes(r"a\n\r\t\0\\\"\x41\xff") == b'a\n\r\t\0\\"A\xff'
    assert decode_bytes(r"<\R{3:ab\n}>") == b"<ab\nab\nab\n>"
    assert decode_bytes("é") == "é".encode()


@pytest.mark.parametrize("text, why", [
    (r"\q", "unknown escape"), (r"\x4", "two hex digits"), (r"\R{x:a}", "repetition"),
    (r"\R{3:a", "repetition"), (r"\R{2000000:a}", "too large"), ("a\\", "unknown escape"),
])
def test_bad_escapes_say_what_is_expected(text, why):
    with pytest.raises(ValueError, match=why):
        decode_bytes(text)


@given(st.binary(max_size=200))
def test_encode_is_the_inverse_of_decode(data):
    assert decode_bytes(encode_bytes(data)) == data


def test_sections_marks_and_where():
    corpus = parse_corpus(
        "# comment\n"
        "plain \"abc\\n\" somewhere.c fn\n"
        "[five] config=x.conf\n"
        "marked \"x\" !one !two@syslog-ng-4.8 file.c fn (why)\n", Path("/d/c.txt"))
    assert [s.name for s in corpus.sections] == ["default", "five"]
    assert corpus.sections[1].config == Path("/d/x.conf")
    plain, marked = corpus.cases
    assert (plain.payload, plain.where, plain.marks) == (b"abc\n", "somewhere.c fn", ())
    assert marked.marks == (Mark("one"), Mark("two", "syslog-ng-4.8"))
    assert marked.where == "file.c fn (why)"
    assert marked.divergence_for("axosyslog 4.27.0") == Mark("one")
    assert Mark("two", "syslog-ng-4.8").applies_to("syslog-ng 4.8.1")
    assert not Mark("two", "syslog-ng-4.8").applies_to("syslog-ng 4.80.0")
    assert not Mark("two", "syslog-ng").applies_to("syslog-ngx 1")
    assert not Mark("two", "syslog-ng").applies_to(None)
    assert corpus.select(["five"]) == [corpus.sections[1]]
    with pytest.raises(CorpusError, match=r"no section \[six\]; sections: default, five"):
        corpus.select(["six"])


@pytest.mark.parametrize("text, message", [
    ('a "x"\na "y"\n', r"c.txt:2: a second case named a \(the first is on line 1\)"),
    ('a x\n', r"c.txt:1: case a: expected the bytes in double quotes"),
    ('a "x\n', r"c.txt:1: case a: no closing"),
    ('a ""\n', r"c.txt:1: case a: empty bytes"),
    ('a "\\q"\n', r"c.txt:1: case a: unknown escape"),
    ('a "x" !Bad w\n', r"c.txt:1: case a: bad mark '!Bad'"),
    ('[s] configs=x\n', r"c.txt:1: unknown section option 'configs=x'; expected config=FILE"),
    ('[s]\n[s]\n', r"c.txt:2: a second section \[s\]"),
    ('just words\n', r"c.txt:1: case just: expected the bytes in double quotes"),
    ('!bang\n', r"c.txt:1: found '!bang'; expected a case"),
    ('# nothing\n', r"c.txt: no cases"),
])
def test_bad_corpus_is_one_precise_line(text, message):
    with pytest.raises(CorpusError, match=message) as info:
        parse_corpus(text, Path("c.txt"))
    assert "\n" not in str(info.value)


def test_unreadable_corpus_files(tmp_path):
    with pytest.raises(CorpusError, match="cannot read the corpus"):
        load_corpus(tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b'a "x"\nb "\xff"\n')
    with pytest.raises(CorpusError, match=r"bad.txt:2: invalid UTF-8"):
        load_corpus(bad)


# --------------------------------------------------------------- shipped corpus

SHIPPED = load_corpus(shipped_corpus_path())
UPSTREAM_PATH = re.compile(r"\b(?:lib|modules)/[\w/.-]+\.[ch]\b")


def test_shipped_corpus_is_large_and_every_case_says_where_it_is_decided():
    assert len(SHIPPED.cases) >= 250
    for case in SHIPPED.cases:
        assert UPSTREAM_PATH.search(case.where), f"{case.name}: WHERE names no upstream file: {case.where!r}"
        assert b"\x1f" not in case.payload and b"\x1e\n" not in case.payload, case.name


def test_shipped_corpus_covers_the_root_causes():
    names = {case.name for case in SHIPPED.cases}
    for needed in ("digits-space-pri", "nul-inside", "line-70000", "pri-letters", "pri-65536", "pri-210",
                   "day-single-digit", "linksys-year-after", "pix-asa", "cisco-seq-unsynced", "cisco-seq-synced",
                   "iso-space", "iso-fraction-comma", "repeated", "aix-forwarded", "host-256", "each-month-dec",
                   "sd-unquoted", "sd-id-100", "version-01", "ts-offset-no-colon", "frame-two", "small-65"):
        assert needed in names


def test_shipped_sections_name_configurations_the_reference_runs():
    for section in SHIPPED.sections:
        assert section.config is not None and section.config.is_file(), section.name
        for profile in PROFILES.values():
            prepared = prepare_config(section.config.read_text(), str(section.config), profile)
            assert prepared.sources


def test_every_divergence_mark_is_documented():
    doc = (REPO / "docs" / "semantics.md").read_text()
    for case in SHIPPED.cases:
        for mark in case.marks:
            assert f"`{mark.name}`" in doc, f"{case.name}: divergence {mark.name} is not in docs/semantics.md"
