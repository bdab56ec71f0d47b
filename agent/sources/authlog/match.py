"""What a program parser reports about one message, before the event header is filled in."""

from __future__ import annotations

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
    try:
        auth.source_ip = str(ipaddress.ip_address(host))
    except ValueError:
        if host:
            labels["source.domain"] = host
    if port:
        auth.source_port = int(port)
