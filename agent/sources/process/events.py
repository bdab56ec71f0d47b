"""Building ProcessEvent records for the sink."""

from __future__ import annotations

from agent.sources.base import SourceContext
from canhgac.v1 import events_pb2

from .netlink import ExitStatus
from .procfs import ProcessInfo
from .users import UserLookup

SOURCE_ID = "process"


def process_payload(info: ProcessInfo, users: UserLookup) -> events_pb2.ProcessEvent:
    payload = events_pb2.ProcessEvent(
        pid=info.pid,
        ppid=info.ppid,
        executable=info.executable,
        command_line=info.command_line,
        args=list(info.args),
        name=info.name,
        cwd=info.cwd,
        start_time_ns=info.start_time_ns,
        parent_executable=info.parent_executable,
        parent_command_line=info.parent_command_line,
    )
    if info.uid is not None:
        payload.uid = info.uid
        payload.user = users(info.uid)
    return payload


def _header(ctx: SourceContext, time_ns: int, kind: str, action: str) -> events_pb2.Event:
    return ctx.event(SOURCE_ID, category="process", type=kind, action=action, time_ns=time_ns)


def start_event(
    ctx: SourceContext, info: ProcessInfo, time_ns: int, users: UserLookup
) -> events_pb2.Event:
    """A process start (category process, type start, action exec)."""
    event = _header(ctx, time_ns, "start", "exec")
    event.outcome = events_pb2.OUTCOME_SUCCESS
    event.process.CopyFrom(process_payload(info, users))
    _labels(event, info)
    return event


def end_event(
    ctx: SourceContext,
    info: ProcessInfo,
    time_ns: int,
    users: UserLookup,
    status: ExitStatus | None,
) -> events_pb2.Event:
    """A process exit (type end, action exit).

    With a status (netlink mode) exit_code is the exit status, or -N when signal N killed the
    process (as Python's returncode), end_time_ns is set and the outcome is success for status
    0, failure otherwise. Without one (poll mode) the outcome is unknown and end_time_ns unset:
    `time_ns` is then when the exit was noticed, not when it happened.
    """
    event = _header(ctx, time_ns, "end", "exit")
    event.process.CopyFrom(process_payload(info, users))
    _labels(event, info)
    if status is None:
        event.outcome = events_pb2.OUTCOME_UNKNOWN
        return event
    event.process.exit_code = status.code
    event.process.end_time_ns = time_ns
    event.outcome = events_pb2.OUTCOME_SUCCESS if status.code == 0 else events_pb2.OUTCOME_FAILURE
    if status.signal:
        event.labels["exit_signal"] = str(status.signal)
    if status.core_dumped:
        event.labels["core_dumped"] = "true"
    return event


def _labels(event: events_pb2.Event, info: ProcessInfo) -> None:
    # A program running from a deleted file is a classic sign of an implant.
    if info.executable_deleted:
        event.labels["executable_deleted"] = "true"
    if info.args_truncated:
        event.labels["command_line_truncated"] = "true"
