"""Validation of `host:port` listen and connect addresses used in configs."""

from __future__ import annotations


def parse_host_port(value: str, *, allow_zero: bool = False) -> tuple[str, int]:
    """Split `host:port` or `[v6]:port`; raise ValueError with a readable reason.

    Port 0 (an ephemeral port chosen by the kernel) is accepted for listen addresses only.
    """
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
    else:
        host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected host:port, got {value!r}")
    low = 0 if allow_zero else 1
    if not port.isdigit() or not low <= int(port) < 65536:
        raise ValueError(f"port must be {low}-65535, got {port!r}")
    return host, int(port)


def check_connect_address(value: str) -> str:
    parse_host_port(value)
    return value


def check_listen_address(value: str) -> str:
    parse_host_port(value, allow_zero=True)
    return value
