"""Identifiers: time-ordered, unique, URL-safe (ULID layout: 48-bit ms time + 80 random bits)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
# Every 10-bit value as its two characters: an id is 13 table look-ups rather than 26 steps
# of a loop (sources make one id per event, so this is on the agent's per-line path).
_PAIRS = tuple(_ALPHABET[i >> 5] + _ALPHABET[i & 31] for i in range(1024))
_TIME_MASK = (1 << 50) - 1  # the 10 time characters hold the low 50 bits of the ms count


# The time characters of the latest id: sources make many ids within one millisecond. One
# tuple in one global, so that a thread reading it never sees the parts of two different ids.
_last_time: tuple[int, str] = (-1, "")


def new_id(now_ns: int | None = None) -> str:
    """A 26-character ULID; ids made later sort after ids made earlier (to the millisecond)."""
    global _last_time
    ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000 & _TIME_MASK
    p = _PAIRS
    last_ms, head = _last_time
    if ms != last_ms:
        head = "".join(
            (p[ms >> 40], p[ms >> 30 & 1023], p[ms >> 20 & 1023], p[ms >> 10 & 1023], p[ms & 1023])
        )
        _last_time = (ms, head)
    rand = os.urandom(10)
    hi, lo = int.from_bytes(rand[:5], "big"), int.from_bytes(rand[5:], "big")
    return "".join(
        (
            head,
            p[hi >> 30],
            p[hi >> 20 & 1023],
            p[hi >> 10 & 1023],
            p[hi & 1023],
            p[lo >> 30],
            p[lo >> 20 & 1023],
            p[lo >> 10 & 1023],
            p[lo & 1023],
        )
    )
