"""Every Source subclass is registered by its id, and ids are unique."""

from __future__ import annotations

import importlib
import pkgutil

import agent.netsensor
import agent.sources
from agent.sources.base import Source
from agent.sources.registry import SOURCES


def _subclasses_of_source() -> set[type[Source]]:
    out: set[type[Source]] = set()
    todo = list(Source.__subclasses__())
    while todo:
        sub = todo.pop()
        out.add(sub)
        todo.extend(sub.__subclasses__())
    return out


def test_every_source_is_registered() -> None:
    for package in (agent.sources, agent.netsensor):
        for mod in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(mod.name)
    concrete = {c for c in _subclasses_of_source() if not getattr(c, "__abstractmethods__", None)}
    concrete = {
        c for c in concrete if c.__module__.startswith(("agent.sources.", "agent.netsensor."))
    }
    assert concrete == set(SOURCES.values())
    for sid, cls in SOURCES.items():
        assert cls.source_id == sid


def test_the_agent_builds_every_registered_source() -> None:
    """A source registered but missing from build_sources would be configurable yet never run."""
    from agent.config import AgentConfig, SourcesConfig
    from agent.netsensor.config import NetSensorConfig
    from agent.runtime import build_sources
    from agent.sources.devicelog.config import DeviceLogConfig
    from agent.sources.journald.config import JournaldConfig
    from canhgac.v1 import events_pb2

    defaults = SourcesConfig()
    every = SourcesConfig(
        **{
            sid: getattr(defaults, sid)
            for sid in SOURCES
            if getattr(defaults, sid, None) is not None
        },
        journald=JournaldConfig(),
        devicelog=DeviceLogConfig(),
        netsensor=NetSensorConfig(interface="lo"),
    )
    config = AgentConfig(agent_id="a", sources=every)

    async def snapshot() -> events_pb2.AgentStatus:
        return events_pb2.AgentStatus()

    built = {s.source_id for s in build_sources(config, snapshot)}
    assert built == set(SOURCES)
