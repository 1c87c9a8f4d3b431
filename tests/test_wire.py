"""The wire format: what the sender encodes, the collector decodes, byte for byte."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parbench.harness import wire

u32 = st.integers(0, 2**32 - 1)


def as_rows(*trailers: bytes) -> np.ndarray:
    return np.frombuffer(b"".join(trailers), np.uint8).reshape(len(trailers), wire.TRAILER_LEN)


def test_layout_is_the_documented_one():
    t = wire.trailer(0x01, 0x02, 0x03, 0x04, 0x0506)
    assert t == b"|pb:00000001:00000002:00000003:00000004:0000000000000506"
    assert len(t) == wire.TRAILER_LEN == 56
    for field, text in zip((wire.CONN, wire.KEY, wire.KSEQ, wire.CSEQ, wire.TIME),
                           (b"00000001", b"00000002", b"00000003", b"00000004", b"0000000000000506")):
        assert t[field] == text


@given(conn=u32, key=u32, kseq=u32, cseq=u32, send_ns=st.integers(0, 2**64 - 1))
def test_decode_inverts_encode(conn, key, kseq, cseq, send_ns):
    ok, words = wire.decode_trailers(as_rows(wire.trailer(conn, key, kseq, cseq, send_ns)))
    assert ok.tolist() == [True]
    assert words[0].tolist() == [conn, key, kseq, cseq, send_ns >> 32, send_ns & 0xFFFFFFFF]


def test_hex_helpers_write_the_same_bytes_as_the_trailer():
    values = np.array([0, 1, 0xDEADBEEF, 2**32 - 1], np.uint32)
    assert [bytes(r) for r in wire.hex8(values)] == [b"%08x" % v for v in values.tolist()]
    assert bytes(wire.hex16(0x1234567890ABCDEF)) == b"1234567890abcdef"


@pytest.mark.parametrize("broken", [
    b"|px:" + wire.trailer()[4:],  # prefix
    wire.trailer()[:12] + b";" + wire.trailer()[13:],  # separator
    wire.trailer()[:5] + b"g" + wire.trailer()[6:],  # not hex
    wire.trailer()[:5] + b"A" + wire.trailer()[6:],  # uppercase hex is not ours
])
def test_decode_rejects_anything_but_the_exact_layout(broken):
    good = wire.trailer(7, 1, 2, 3, 4)
    ok, words = wire.decode_trailers(as_rows(good, broken, good))
    assert ok.tolist() == [True, False, True]
    assert words[:, 0].tolist() == [7, 7]  # only the good rows, in order


def test_message_is_exactly_the_size_with_the_key_in_its_field():
    keys = ("web-01", "db-eu-3.example.net")
    need = wire.min_message_size("rfc3164", "HOST", keys)
    assert need == len(wire.header("rfc3164", "HOST", "db-eu-3.example.net")) + wire.TRAILER_LEN
    msg = wire.message("rfc3164", "HOST", "web-01", 5, need)
    assert len(msg) == need and msg.startswith(b"<13>Jan  1 00:00:00 web-01 parbench[4242]: ")
    assert msg.endswith(wire.trailer(key=5))
    with pytest.raises(ValueError, match="too small"):
        wire.message("rfc3164", "HOST", "db-eu-3.example.net", 0, need - 1)
    sdata = wire.header("rfc5424", ".SDATA.meta@1.host", "a")
    assert b'[meta@1 host="a"]' in sdata
