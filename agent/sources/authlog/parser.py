"""Turn auth-log lines into `Event`s with an `AuthEvent` payload.

A line is first split into its syslog envelope (`syslog.py`), then handed to the parser of the
program that wrote it, looked up in `PROGRAM_PARSERS`. Every line that does not become an
event is reported with a reason, so the source can count it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import tzinfo

from agent.sources.base import Skipped
from canhgac.ids import new_id
from canhgac.v1 import events_pb2

from .accounts import parse_account
from .match import AuthMatch, Ignored, ProgramParser
from .sshd import parse_sshd
from .su import parse_su
from .sudo import parse_sudo
from .syslog import EnvelopeError, SyslogEnvelopeParser

SOURCE_ID = "authlog"

# Program name (the syslog tag) to the parser of its messages.
PROGRAM_PARSERS: dict[str, ProgramParser] = {
    "sshd": parse_sshd,
    "sshd-session": parse_sshd,  # OpenSSH 9.8+ per-connection process
    "sshd-auth": parse_sshd,  # OpenSSH 10+ pre-authentication process
    "sudo": parse_sudo,
    "su": parse_su,
    "useradd": parse_account,
    "userdel": parse_account,
    "usermod": parse_account,
    "groupadd": parse_account,
    "groupdel": parse_account,
    "groupmod": parse_account,
    "gpasswd": parse_account,
    "chage": parse_account,
    "passwd": parse_account,
    "chpasswd": parse_account,
}


# Skipped reasons of this parser: `not_syslog`, `bad_timestamp`, `not_auth` (a program we do not
# parse), `unrecognised_<program>` (a known program, an unknown message) or `ignored_<program>`
# (a known message that carries nothing worth an event), `bad_value_<program>` (a number past
# its wire type).


class AuthLogParser:
    """Parse one auth-log line into an Event, or say why not.

    `clock_ns` stamps `created_ns` and anchors the year of RFC 3164 timestamps; `tz` is the
    zone of timestamps that carry none (None: the host's local zone). `default_host` is used
    when the line names no host.
    """

    def __init__(
        self,
        *,
        agent_id: str,
        default_host: str,
        clock_ns: Callable[[], int],
        tz: tzinfo | None = None,
        programs: Mapping[str, ProgramParser] = PROGRAM_PARSERS,
        source_id: str = SOURCE_ID,
    ) -> None:
        self._agent_id = agent_id
        self._source_id = source_id
        self._default_host = default_host
        self._clock_ns = clock_ns
        self._envelope = SyslogEnvelopeParser(clock_ns, tz)
        self._programs = programs

    def parse(self, line: str) -> events_pb2.Event | Skipped:
        try:
            time_ns, host, program, pid, message, repeat_count = self._envelope.fields(line)
        except EnvelopeError as exc:
            return Skipped(exc.reason)
        return self.parse_message(
            time_ns, host, program, pid, message, original=line, repeat_count=repeat_count
        )

    def parse_message(
        self,
        time_ns: int,
        host: str,
        program: str,
        pid: int,
        message: str,
        *,
        original: str = "",
        repeat_count: int = 0,
    ) -> events_pb2.Event | Skipped:
        """A message already split from its envelope (`parse` splits it; the journal gives it
        so)."""
        program_parser = self._programs.get(program)
        if program_parser is None:
            return Skipped("not_auth")
        try:
            found = program_parser(message)
        except ValueError:  # a number past its wire type (a port, uid or count), as anyone
            return Skipped(f"bad_value_{program}")  # who can write to the log may forge
        if found is None:
            return Skipped(f"unrecognised_{program}")
        if isinstance(found, Ignored):
            return Skipped(f"ignored_{program}")
        return self._event(found, original, time_ns, host, program, pid, repeat_count)

    def _event(
        self,
        found: AuthMatch,
        line: str,
        time_ns: int,
        host: str,
        program: str,
        pid: int,
        repeat_count: int,
    ) -> events_pb2.Event:
        created_ns = self._clock_ns()
        event = events_pb2.Event(
            id=new_id(created_ns),
            time_ns=time_ns,
            agent_id=self._agent_id,
            host=host or self._default_host,
            category=found.category,
            type=found.type,
            action=found.action,
            outcome=found.outcome,
            source=self._source_id,
            original=line,
            created_ns=created_ns,
        )
        # Filled in place rather than through the constructor: with the protobuf runtime
        # (upb) a `labels=` argument and each `event.auth` look-up cost more than the rest of
        # the event (the per-line path of bench/authlog_parse.py).
        if found.labels:
            event.labels.update(found.labels)
        auth = event.auth
        auth.CopyFrom(found.auth)
        auth.process_name = program
        auth.process_pid = pid
        auth.repeat_count = repeat_count
        return event
