"""The contract between the agent's sources and the rest of the agent.

A source observes one thing on the host (a log file, processes, files, sockets) and hands typed
events to an EventSink. Sources never block the event loop: blocking reads go to a thread.

Exactly-once hand-over: a source that reads a resumable input (a log file) passes a Checkpoint
with the events it produced from it. The sink stores events and checkpoint in one transaction,
so after a crash the source resumes from exactly the point the stored events cover.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from canhgac.ids import new_id
from canhgac.v1 import events_pb2

log = logging.getLogger("canhgac.agent")


@dataclass(frozen=True)
class Checkpoint:
    """A source's resume position: an opaque string value under a key the source owns."""

    key: str
    value: str


class EventSink(Protocol):
    async def emit(
        self, events: Sequence[events_pb2.Event], checkpoint: Checkpoint | None = None
    ) -> None:
        """Accept events (and the checkpoint they reach) for durable storage.

        May wait when the agent is over its memory or spool budget; never drops silently.
        """
        ...


@dataclass(frozen=True)
class SourceContext:
    """What a source gets from the agent: identity, clock and its saved checkpoints."""

    agent_id: str
    host: str
    clock_ns: Callable[[], int]
    checkpoints: Mapping[str, str] = field(default_factory=dict)
    # A directory the source may keep its own files in (a file-integrity baseline), created
    # by the agent under its state_dir; None where the source must keep nothing (tests).
    state_dir: Path | None = None

    def event(
        self,
        source: str,
        *,
        category: str,
        type: str,  # the ECS field's name
        action: str,
        time_ns: int | None = None,
        outcome: events_pb2.Outcome.ValueType = events_pb2.OUTCOME_UNSPECIFIED,
        **fields: Any,
    ) -> events_pb2.Event:
        """An event with this agent's header; `time_ns` defaults to now. `fields` are further
        Event fields, typically the payload (`process=...`, `socket=...`, `labels=...`)."""
        created = self.clock_ns()
        when = created if time_ns is None else time_ns
        return events_pb2.Event(
            id=new_id(when),
            time_ns=when,
            created_ns=created,
            agent_id=self.agent_id,
            host=self.host,
            category=category,
            type=type,
            action=action,
            outcome=outcome,
            source=source,
            **fields,
        )


@dataclass
class SourceHealth:
    """A source's own account of itself, reported in the agent's status."""

    state: str = "starting"  # running | unavailable | failed | disabled | starting
    mode: str = ""
    detail: str = ""
    events: int = 0
    # Records the source read but could not turn into events, by reason. Never silent.
    unparsed: dict[str, int] = field(default_factory=dict)

    def count_unparsed(self, reason: str, n: int = 1) -> None:
        self.unparsed[reason] = self.unparsed.get(reason, 0) + n


class Source(ABC):
    """One host source. Subclasses set `source_id` and are registered in agent.sources.registry."""

    source_id: ClassVar[str]

    def __init__(self) -> None:
        self.health = SourceHealth()

    @abstractmethod
    async def run(self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event) -> None:
        """Produce events until `stop` is set. Raise SourceUnavailableError if it cannot run."""


INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def pid_from_text(text: str | None) -> int:
    """A process id written in a log record: ASCII digits that fit the wire's int32, else 0
    (unknown). Anyone who can write a log line chooses this text; it must never raise."""
    if not text or not (text.isascii() and text.isdigit()):
        return 0
    value = int(text)
    return value if value <= INT32_MAX else 0


def time_ns_in_range(time_ns: int) -> bool:
    """True if `time_ns` fits an Event's int64 time and is not before 1970."""
    return 0 <= time_ns <= INT64_MAX


@dataclass(frozen=True)
class Skipped:
    """A line a parser read that yields no event. `reason` is a bounded counter label; each
    parser lists its own reasons."""

    reason: str


LineParse = Callable[[str], "events_pb2.Event | Skipped | None"]


def parse_lines(
    lines: Sequence[str], parse: LineParse, health: SourceHealth, where: str
) -> list[events_pb2.Event]:
    """The events of a chunk of lines read from one file (`where` names it in the log).

    A skipped line is counted by its reason; None (a line that only informs the parser, such
    as a Zeek header) is not counted. A line the parser fails on is logged with its traceback
    and counted as `parser_error`: whoever can write to the log chooses what a line holds, and
    one line must not stop a file for good, as it would after every restart from a checkpoint
    before it.
    """
    events: list[events_pb2.Event] = []
    for line in lines:
        try:
            parsed = parse(line)
        except Exception:  # any parser fault: counted and logged, see above
            log.exception("cannot read a line of %s", where)
            parsed = Skipped("parser_error")
        if isinstance(parsed, Skipped):
            health.count_unparsed(parsed.reason)
        elif parsed is not None:
            events.append(parsed)
    return events
