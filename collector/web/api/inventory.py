"""GET /api/v1/agents and /api/v1/systems: what is watched, in the caller's scope.

An agent is in scope through the system it belongs to, as detection sees it
(`system_of_agent`: the system's assets by agent id, host name or network, else the system its
enrollment named); an agent in none is visible only to the unscoped roles (operator, admin).
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from canhgac.v1 import events_pb2
from collector.storage.base import AgentRecord
from collector.web.api.endpoint import ApiCall, ApiEndpoint
from collector.web.api.schemas import AgentItem, AgentList, DropItem, SystemItem, SystemList, utc


def _status(data: bytes) -> events_pb2.AgentStatus | None:
    if not data:
        return None
    status = events_pb2.AgentStatus()
    try:
        status.ParseFromString(data)
    except DecodeError:
        return None  # an unreadable report is shown as none, not as zeros that look true
    return status


def agent_item(agent: AgentRecord, system_id: str) -> AgentItem:
    status = _status(agent.status)
    drops = (
        [DropItem(source=d.source, reason=d.reason, count=d.count) for d in status.drops]
        if status
        else []
    )
    return AgentItem(
        agent_id=agent.agent_id,
        hostname=agent.hostname,
        version=agent.version,
        system_id=system_id,
        first_seen=utc(agent.first_seen_ns),
        first_seen_ns=agent.first_seen_ns,
        last_seen=utc(agent.last_seen_ns),
        last_seen_ns=agent.last_seen_ns,
        enrollment_status=agent.enrollment_status,
        cert_not_after=utc(agent.cert_not_after_ns),
        cert_not_after_ns=agent.cert_not_after_ns,
        status_reported=status is not None,
        spool_events=status.spool_events if status else 0,
        spool_bytes=status.spool_bytes if status else 0,
        drops_total=sum(d.count for d in drops),
        drops=drops,
    )


async def list_agents(call: ApiCall) -> AgentList:
    store = call.store.store

    def read() -> list[tuple[AgentRecord, str]]:
        return [(a, store.system_of_agent(a.agent_id) or "") for a in store.list_agents()]

    agents = await call.store.run(read)
    visible = [(a, s) for a, s in agents if call.principal.can_see_system(s)]
    return AgentList(items=[agent_item(a, s) for a, s in visible])


async def list_systems(call: ApiCall) -> SystemList:
    store = call.store.store

    def read() -> list[SystemItem]:
        found = []
        for system in store.list_systems():
            if not call.principal.can_see_system(system.id):
                continue
            dossier = store.get_dossier(system.id)
            found.append(
                SystemItem(
                    id=system.id,
                    name=system.name,
                    level=system.approved_level or system.proposed_level,
                    approved_level=system.approved_level,
                    proposed_level=system.proposed_level,
                    dossier_status=dossier.status if dossier else None,
                    regime=system.regime,
                )
            )
        return found

    return SystemList(items=await call.store.run(read))


ENDPOINTS = (
    ApiEndpoint(
        path="/api/v1/agents",
        operation_id="listAgents",
        summary="Agents in the caller's scope, with their health",
        description=(
            "Enrollment, certificate expiry, and from the agent's last status report its spool "
            "depth and the events it dropped."
        ),
        handler=list_agents,
        response=AgentList,
        tag="inventory",
    ),
    ApiEndpoint(
        path="/api/v1/systems",
        operation_id="listSystems",
        summary="Information systems in the caller's scope",
        description="Each system's security level and the status of its level dossier.",
        handler=list_systems,
        response=SystemList,
        tag="inventory",
    ),
)
