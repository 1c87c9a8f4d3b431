"""GLib's own g_str_hash through ctypes: the oracle for reference.partition.

Returns None when libglib-2.0 is not installed; tests then fall back to the
fixed vector table in tests/test_partition.py (computed once from GLib).
"""
from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Callable


@lru_cache(maxsize=1)
def glib_str_hash() -> Callable[[bytes], int] | None:
    names = ["libglib-2.0.so.0"]
    found = ctypes.util.find_library("glib-2.0")
    if found:
        names.append(found)
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        fn = lib.g_str_hash
        fn.argtypes = [ctypes.c_char_p]
        fn.restype = ctypes.c_uint

        def g_str_hash(data: bytes) -> int:
            if b"\x00" in data:
                raise ValueError("a C string cannot contain NUL")
            return int(fn(data))

        return g_str_hash
    return None
