import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from glib_oracle import glib_str_hash
from parbench.reference.partition import (KeyedPlacer, RoundRobinPlacer, g_str_hash, g_str_hash_many,
                                 predict_keyed_load, round_robin_start)
from parbench.reference.profiles import AXOSYSLOG_4_26, SYSLOG_NG_4_8
from parbench.reference.template import compile_template

# Computed once from GLib 2.74's g_str_hash (libglib-2.0.so.0) through ctypes;
# used as the oracle where GLib is absent.
GLIB_VECTORS = [
    (b'', 5381),
    (b'a', 177670),
    (b'web-01', 617551217),
    (b'web-10', 617551249),
    (b'web-02', 617551218),
    (b'web-20', 617551282),
    (b'web-03', 617551219),
    (b'web-30', 617551315),
    (b'host-1', 43067681),
    (b'localhost', 906931598),
    (b'127.0.0.1', 1532542490),
    (b'\xff', 177572),
    (b'\x80abc', 2081982635),
    (b'h\xc3\xa9llo', 4126790720),
    (b'\xe6\x97\xa5\xe6\x9c\xac', 3281679669),
    (b'x' * 100, 2772255845),
    (b'db-3', 2090175563),
    (b'db-30', 256316891),
    (b'app', 193486438),
    (b'WEB-01', 3621086481),
    (b'web-01.example.com', 1646321208),
]

GLIB = glib_str_hash()
c_strings = st.binary(max_size=200).map(lambda b: b.replace(b"\x00", b"\x01"))


def unsigned_djb(data: bytes) -> int:
    """A deliberately wrong hash (unsigned chars), to prove the checks catch it."""
    h = 5381
    for c in data:
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


@pytest.mark.parametrize("value, expected", GLIB_VECTORS)
def test_vectors(value, expected):
    assert g_str_hash(value) == expected


def test_vectors_vectorized():
    values = [v for v, _ in GLIB_VECTORS]
    assert g_str_hash_many(values).tolist() == [h for _, h in GLIB_VECTORS]
    assert g_str_hash_many([]).tolist() == []


def test_vector_table_catches_unsigned_chars():
    assert any(unsigned_djb(v) != h for v, h in GLIB_VECTORS)


@pytest.mark.skipif(GLIB is None, reason="libglib-2.0 not installed; fixed vectors cover it")
@settings(max_examples=300)
@given(c_strings)
def test_matches_glib(value):
    assert g_str_hash(value) == GLIB(value)


@pytest.mark.skipif(GLIB is None, reason="libglib-2.0 not installed")
def test_glib_oracle_catches_unsigned_chars():
    assert unsigned_djb(b"\xe9t\xe9") != GLIB(b"\xe9t\xe9")


@given(st.lists(c_strings, max_size=30))
def test_vectorized_equals_scalar(values):
    assert g_str_hash_many(values).tolist() == [g_str_hash(v) for v in values]


@pytest.mark.parametrize("n", [2, 4, 8, 16, 32])
def test_anagrams_collide_for_powers_of_two(n):
    assert g_str_hash(b"web-01") % n == g_str_hash(b"web-10") % n
    assert g_str_hash(b"web-02") % n == g_str_hash(b"web-20") % n


def test_anagrams_can_differ_for_other_counts():
    assert g_str_hash(b"web-01") % 3 != g_str_hash(b"web-10") % 3


def msgs(hosts):
    return [{"HOST": h, "MSG": b"m"} for h in hosts]


@given(st.lists(c_strings, max_size=40), st.integers(1, 40))
def test_keyed_single_name_uses_raw_value(hosts, n):
    placer = KeyedPlacer(n, compile_template("$HOST"))
    assert placer.place(msgs(hosts)) == [g_str_hash(h) % n for h in hosts]


def test_keyed_unset_key_is_empty_string():
    placer = KeyedPlacer(7, compile_template("${.SDATA.a.b}"))
    assert placer.place([{"HOST": b"x"}]) == [5381 % 7]


def test_keyed_literal_and_formatted():
    literal = KeyedPlacer(5, compile_template("static"))
    assert literal.place(msgs([b"a", b"b"])) == [g_str_hash(b"static") % 5] * 2
    formatted = KeyedPlacer(5, compile_template("$HOST/$MSG"))
    assert formatted.place(msgs([b"a", b"bb"])) == [g_str_hash(b"a/m") % 5, g_str_hash(b"bb/m") % 5]


def test_keyed_cache_stays_bounded_and_correct():
    placer = KeyedPlacer(8, compile_template("$MSG"))
    placer.CACHE_LIMIT = 10
    values = [b"v%d" % i for i in range(100)]
    got = placer.place([{"MSG": v} for v in values])
    assert got == [g_str_hash(v) % 8 for v in values]
    assert len(placer._cache) <= 10


def test_placers_reject_bypass_counts():
    with pytest.raises(ValueError):
        KeyedPlacer(0, compile_template("$HOST"))
    with pytest.raises(ValueError):
        RoundRobinPlacer(0)


def rr_model(partitions, start, batch, total):
    """Independent model: walk the stream message by message."""
    out, p, in_batch = [], start % partitions, 0
    for _ in range(total):
        out.append(p)
        in_batch += 1
        if in_batch >= max(1, batch):
            p, in_batch = (p + 1) % partitions, 0
    return out


@given(st.integers(1, 40), st.integers(0, 100), st.integers(0, 120),
       st.lists(st.integers(0, 300), max_size=12))
def test_round_robin_matches_model_under_any_chunking(n, start, batch, chunks):
    placer = RoundRobinPlacer(n, start=start, batch_size=batch)
    got = [p for c in chunks for p in placer.place(c)]
    assert got == rr_model(n, start, batch, sum(chunks))


def test_round_robin_examples():
    assert RoundRobinPlacer(4).place(6) == [0, 1, 2, 3, 0, 1]
    assert RoundRobinPlacer(3, start=2, batch_size=2).place(7) == [2, 2, 0, 0, 1, 1, 2]


def test_round_robin_model_catches_reset_per_call():
    class ResettingPlacer(RoundRobinPlacer):
        def place(self, count):
            self._placed = 0
            return super().place(count)
    p = ResettingPlacer(4)
    assert [x for c in (3, 3) for x in p.place(c)] != rr_model(4, 0, 0, 6)


def test_round_robin_start_profiles():
    assert [round_robin_start(SYSLOG_NG_4_8, i, 4) for i in range(6)] == [0] * 6
    assert [round_robin_start(AXOSYSLOG_4_26, i, 4) for i in range(6)] == [0, 1, 2, 3, 0, 1]
    assert round_robin_start(AXOSYSLOG_4_26, 5, 0) == 0


def test_predict_keyed_load():
    values = [b"web-01", b"web-10", b"web-02", b"db"]
    load = predict_keyed_load(values, 4)
    expected = np.zeros(4)
    for v in values:
        expected[g_str_hash(v) % 4] += 1
    assert load.tolist() == expected.tolist()
    weighted = predict_keyed_load(values, 4, weights=[1, 2, 3, 4])
    assert weighted.sum() == 10
    assert weighted[g_str_hash(b"web-01") % 4] >= 3  # web-01 and web-10 share it
    with pytest.raises(ValueError):
        predict_keyed_load(values, 4, weights=[1])
