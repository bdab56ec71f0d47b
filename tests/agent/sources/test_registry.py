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
