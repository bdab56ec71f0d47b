"""What a program parser reports about one message, before the event header is filled in."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from canhgac.v1 import events_pb2

SUCCESS = events_pb2.OUTCOME_SUCCESS
FAILURE = events_pb2.OUTCOME_FAILURE
UNKNOWN = events_pb2.OUTCOME_UNKNOWN


@dataclass(frozen=True)
class AuthMatch:
    """A recognised message: the ECS header values and the auth payload it yields.

    The envelope (program, pid, repeat count, host, time) is added by the caller.
    """

    category: str
    type: str
    action: str
    outcome: events_pb2.Outcome.ValueType
    auth: events_pb2.AuthEvent
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ignored:
    """A recognised message that carries nothing worth an event (noise, duplicates)."""


IGNORED = Ignored()

# None means the program is known but the message matched no pattern.
ProgramResult = AuthMatch | Ignored | None
ProgramParser = Callable[[str], ProgramResult]


def with_source(
    auth: events_pb2.AuthEvent, labels: dict[str, str], host: str, port: str | None
) -> None:
    """Set source.ip/port; a host name (sshd with UseDNS) goes to a label, not to source.ip."""
    if (ip := _normalised_ip(host)) is not None:
        auth.source_ip = ip
    elif host:
        labels["source.domain"] = host
    if port:
        auth.source_port = int(port)


# The same few addresses fill an auth log, and parsing one costs more than the rest of its
# line; the bound keeps a flood of distinct (forged) addresses from growing the cache.
@functools.lru_cache(maxsize=4096)
def _normalised_ip(host: str) -> str | None:
    """`host` as ipaddress writes it, or None when it is not an IP address."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None
