import pytest
from hypothesis import given, strategies as st

from parbench.reference.template import TemplateError, compile_template

MSG = {"HOST": b"web-01", "PROGRAM": b"app", "PID": b"42", "MSG": b"hello",
       ".SDATA.origin.ip": b"10.0.0.1", "SEVERITY": b"notice"}


@pytest.mark.parametrize("text, rendered", [
    ("$HOST", b"web-01"),
    ("${HOST}", b"web-01"),
    ("${.SDATA.origin.ip}", b"10.0.0.1"),
    ("$HOST/$PROGRAM[${PID}]: $MSG\n", b"web-01/app[42]: hello\n"),
    ("${HOST}x$PROGRAM", b"web-01xapp"),
    ("$HOSTx", b""),                       # the name is HOSTx, unset
    ("a$$b", b"a$b"),                      # $$ is a literal dollar
    ("cost: 5$ each", b"cost: 5$ each"),   # $ before a non-name char stays
    ("end$", b"end$"),
    ("$MESSAGE/$LEVEL", b"hello/notice"),  # aliases
    ("$NOSUCH|${.SDATA.x.y}|", b"||"),     # unset names expand to empty
    ("${NOSUCH:-dflt} ${HOST:-dflt}", b"dflt web-01"),
    ("$HOST@@x", b"web-01@x"),
    ("$HOST@x", b"web-01@x"),
    ("back\\slash", b"back\\slash"),
    ("", b""),
    ("h\u00e9", "h\u00e9".encode()),
])
def test_render(text, rendered):
    assert compile_template(text).render(MSG) == rendered


def test_single_name_and_literal_classification():
    assert compile_template("$HOST").single_name == "HOST"
    assert compile_template("${.SDATA.origin.ip}").single_name == ".SDATA.origin.ip"
    assert compile_template("$MESSAGE").single_name == "MSG"
    for text in ("$HOST ", "x$HOST", "$HOST$PID", "${HOST:-d}"):
        t = compile_template(text)
        assert t.single_name is None and t.literal is None, text
    assert compile_template("static").literal == b"static"
    assert compile_template("a$$b").literal == b"a$b"
    assert compile_template("$HOST").literal is None


@pytest.mark.parametrize("text, column, fragment", [
    ("$(echo $HOST)", 1, "template functions"),
    ("ab ${HOST", 4, "'}' is missing"),
    ("x $*", 3, "$*"),
    ("${HOST:x}", 7, "substitution"),
    ("$YEAR-$HOST", 1, "$YEAR"),
    ("a ${R_DATE}", 3, "R_DATE"),
    ("$HOST@1", 6, "correlation"),
])
def test_errors_have_column(text, column, fragment):
    with pytest.raises(TemplateError) as info:
        compile_template(text)
    assert info.value.column == column
    assert fragment in info.value.message


def test_render_many_matches_render():
    t = compile_template("$HOST:$MSG")
    msgs = [MSG, {"HOST": b"h2"}, {}]
    assert t.render_many(msgs) == [t.render(m) for m in msgs] == [b"web-01:hello", b"h2:", b":"]


names = st.sampled_from(["HOST", "PROGRAM", "PID", "MSG", "X1"])
pieces = st.one_of(
    # "@" is excluded: "${NAME}@1" is syslog-ng's context reference, not literal text.
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="$@"), max_size=5).map(lambda s: ("lit", s)),
    names.map(lambda n: ("var", n)),
)


@given(st.lists(pieces, max_size=8), st.dictionaries(names, st.binary(max_size=6)))
def test_braced_mixture_equals_concatenation(parts, values):
    text = "".join(s if kind == "lit" else "${" + s + "}" for kind, s in parts)
    expected = b"".join(s.encode() if kind == "lit" else values.get(s, b"") for kind, s in parts)
    assert compile_template(text).render(values) == expected
