"""The registry's part of the storage contract, in SQL written once for both backends.

`DossierStore` is the contract (Store extends it); `DossierStoreMixin` implements it with the
portable `?`-style statements of enrollment_sql.Sql, for a backend that provides `_sql_read`
and `_sql_write`. Systems and dossiers are kept as their models' JSON, with the columns that
are queried (name, levels, status) copied beside it. The dossier history is append-only: no
method changes or removes a row of it, and the database refuses UPDATE and DELETE on it.

Deleting a system is refused while assets are mapped to it (unmap them first, so no agent
silently loses its system); the system's dossier goes with it, its history stays.
"""

from __future__ import annotations

import ipaddress
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from canhgac.errors import StorageError
from collector.dossiers.model import (
    AssetConflictError,
    Assets,
    Dossier,
    DossierStatus,
    InformationSystem,
    RegistryError,
    TransitionError,
    asset_conflicts,
    normalize_hostname,
)
from collector.storage.enrollment_sql import Sql

M = TypeVar("M", bound=BaseModel)

_UPSERT_SYSTEM = """
INSERT INTO info_systems (system_id, name, proposed_level, approved_level, data)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (system_id) DO UPDATE SET
    name = excluded.name,
    proposed_level = excluded.proposed_level,
    approved_level = excluded.approved_level,
    data = excluded.data
"""
_UPSERT_DOSSIER = """
INSERT INTO dossiers (system_id, status, data) VALUES (?, ?, ?)
ON CONFLICT (system_id) DO UPDATE SET status = excluded.status, data = excluded.data
"""
_INSERT_EVENT = (
    "INSERT INTO dossier_events (system_id, at_ns, actor, from_status, to_status, note) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_SYSTEM_EXISTS = "SELECT 1 FROM info_systems WHERE system_id = ?"


@dataclass(frozen=True)
class DossierEvent:
    """One change of a dossier, as recorded: who, when, status before and after, why."""

    at_ns: int
    actor: str
    from_status: str
    to_status: str
    note: str = ""


class DossierStore(Protocol):
    """Information systems, their level dossiers and their assets."""

    def upsert_system(self, system: InformationSystem) -> bool:
        """Insert or replace a system; True when it is new."""
        ...

    def get_system(self, system_id: str) -> InformationSystem | None: ...

    def list_systems(self) -> list[InformationSystem]:
        """Every system, by id."""
        ...

    def delete_system(self, system_id: str) -> bool:
        """Remove a system and its dossier (its history stays); False when unknown.

        Raises RegistryError while assets are mapped to it.
        """
        ...

    def set_dossier(
        self,
        system_id: str,
        dossier: Dossier,
        *,
        actor: str,
        at_ns: int,
        note: str = "",
        expect_status: DossierStatus | None = None,
    ) -> None:
        """Store the system's dossier and append one history event, atomically.

        The lifecycle is checked by the caller (model.transition); the store checks only that
        the stored status is still `expect_status` when given (TransitionError otherwise), so
        two operators cannot both move the same dossier. RegistryError for an unknown system.
        """
        ...

    def get_dossier(self, system_id: str) -> Dossier | None:
        """The dossier; a new draft for a system that has none yet; None for an unknown system."""
        ...

    def dossier_history(self, system_id: str) -> list[DossierEvent]:
        """Every event of the system's dossier, oldest first."""
        ...

    def set_assets(self, system_id: str, assets: Assets) -> None:
        """Replace the system's assets atomically.

        Raises AssetConflictError (nothing written) when an agent id or host name is another
        system's, or a network overlaps another system's; RegistryError for an unknown system.
        """
        ...

    def get_assets(self, system_id: str) -> Assets | None:
        """The system's assets; None for an unknown system."""
        ...

    def system_of_agent(
        self, agent_id: str, *, hostname: str = "", address: str = ""
    ) -> str | None:
        """The system an agent belongs to, or None.

        Looked up by, in order: the agent id among the assets; its host name; its address
        within a network (the most specific one); the system its enrollment token named.
        Empty `hostname` and `address` are taken from the agents table (host name and peer).
        """
        ...


class DossierStoreMixin:
    """DossierStore for a backend that provides `_sql_read` and `_sql_write`."""

    def _sql_read(self, operation: str) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def _sql_write(self, operation: str) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def upsert_system(self, system: InformationSystem) -> bool:
        row = (
            system.id,
            system.name,
            system.proposed_level,
            system.approved_level,
            system.model_dump_json(),
        )
        with self._sql_write("upsert_system") as sql:
            new = sql.one(_SYSTEM_EXISTS + sql.lock_row, (system.id,)) is None
            sql(_UPSERT_SYSTEM, row)
        return new

    def get_system(self, system_id: str) -> InformationSystem | None:
        with self._sql_read("get_system") as sql:
            row = sql.one("SELECT data FROM info_systems WHERE system_id = ?", (system_id,))
        return None if row is None else _decode(InformationSystem, row[0], system_id)

    def list_systems(self) -> list[InformationSystem]:
        with self._sql_read("list_systems") as sql:
            rows = sql.all("SELECT system_id, data FROM info_systems ORDER BY system_id")
        return [_decode(InformationSystem, data, system_id) for system_id, data in rows]

    def delete_system(self, system_id: str) -> bool:
        with self._sql_write("delete_system") as sql:
            if sql.one(_SYSTEM_EXISTS + sql.lock_row, (system_id,)) is None:
                return False
            row = sql.one("SELECT COUNT(*) FROM system_assets WHERE system_id = ?", (system_id,))
            if row is not None and row[0]:
                raise RegistryError(
                    f"{row[0]} asset(s) are mapped to this system: remove them first "
                    f"(systems assets {system_id} --clear)",
                    location=system_id,
                )
            sql("DELETE FROM dossiers WHERE system_id = ?", (system_id,))
            sql("DELETE FROM info_systems WHERE system_id = ?", (system_id,))
        return True

    def set_dossier(
        self,
        system_id: str,
        dossier: Dossier,
        *,
        actor: str,
        at_ns: int,
        note: str = "",
        expect_status: DossierStatus | None = None,
    ) -> None:
        with self._sql_write("set_dossier") as sql:
            _lock_system(sql, system_id)
            row = sql.one("SELECT status FROM dossiers WHERE system_id = ?", (system_id,))
            current = str(row[0]) if row is not None else "draft"
            if expect_status is not None and current != expect_status:
                raise TransitionError(
                    f"the dossier changed meanwhile: it is now {current}, not {expect_status}",
                    location=system_id,
                )
            sql(_UPSERT_DOSSIER, (system_id, dossier.status, dossier.model_dump_json()))
            sql(_INSERT_EVENT, (system_id, at_ns, actor, current, dossier.status, note))

    def get_dossier(self, system_id: str) -> Dossier | None:
        with self._sql_read("get_dossier") as sql:
            row = sql.one("SELECT data FROM dossiers WHERE system_id = ?", (system_id,))
            if row is None:
                return Dossier() if sql.one(_SYSTEM_EXISTS, (system_id,)) else None
        return _decode(Dossier, row[0], system_id)

    def dossier_history(self, system_id: str) -> list[DossierEvent]:
        with self._sql_read("dossier_history") as sql:
            rows = sql.all(
                "SELECT at_ns, actor, from_status, to_status, note FROM dossier_events "
                "WHERE system_id = ? ORDER BY row_id",
                (system_id,),
            )
        return [DossierEvent(*row) for row in rows]

    def set_assets(self, system_id: str, assets: Assets) -> None:
        with self._sql_write("set_assets") as sql:
            _lock_system(sql, system_id)
            if sql.dialect == "postgres":
                # Overlapping networks are not caught by the unique key: serialize the check.
                sql("LOCK TABLE system_assets IN SHARE ROW EXCLUSIVE MODE")
            rows = sql.all(
                "SELECT system_id, kind, value FROM system_assets WHERE system_id <> ?",
                (system_id,),
            )
            others: dict[str, list[tuple[str, str]]] = {}
            for other, kind, value in rows:
                others.setdefault(other, []).append((kind, value))
            systems = {k: Assets.from_items(v) for k, v in others.items()}
            systems[system_id] = assets  # last, so conflicts name it first
            conflicts = [c for c in asset_conflicts(systems) if c.system_id == system_id]
            if conflicts:
                raise AssetConflictError(conflicts, location=system_id)
            sql("DELETE FROM system_assets WHERE system_id = ?", (system_id,))
            for kind, value in assets.items():
                sql(
                    "INSERT INTO system_assets (kind, value, system_id) VALUES (?, ?, ?)",
                    (kind, value, system_id),
                )

    def get_assets(self, system_id: str) -> Assets | None:
        with self._sql_read("get_assets") as sql:
            if sql.one(_SYSTEM_EXISTS, (system_id,)) is None:
                return None
            rows = sql.all(
                "SELECT kind, value FROM system_assets WHERE system_id = ?", (system_id,)
            )
        return Assets.from_items([(str(k), str(v)) for k, v in rows])

    def system_of_agent(
        self, agent_id: str, *, hostname: str = "", address: str = ""
    ) -> str | None:
        with self._sql_read("system_of_agent") as sql:
            found = _asset_owner(sql, "agent", agent_id)
            if found is not None:
                return found
            agent = sql.one(
                "SELECT hostname, peer, system_id FROM agents WHERE agent_id = ?", (agent_id,)
            )
            hostname = hostname or (str(agent[0]) if agent else "")
            address = address or (str(agent[1]) if agent else "")
            if hostname:
                found = _asset_owner(sql, "hostname", normalize_hostname(hostname))
            if found is None and address:
                found = _network_owner(sql, address)
        if found is None and agent is not None and agent[2]:
            found = str(agent[2])
        return found


def _lock_system(sql: Sql, system_id: str) -> None:
    if sql.one(_SYSTEM_EXISTS + sql.lock_row, (system_id,)) is None:
        raise RegistryError("no such system: create it first", location=system_id)


def _asset_owner(sql: Sql, kind: str, value: str) -> str | None:
    row = sql.one("SELECT system_id FROM system_assets WHERE kind = ? AND value = ?", (kind, value))
    return None if row is None else str(row[0])


def _network_owner(sql: Sql, address: str) -> str | None:
    ip = peer_address(address)
    if ip is None:
        return None
    best: tuple[int, str] | None = None
    networks = sql.all("SELECT system_id, value FROM system_assets WHERE kind = 'cidr'")
    for system_id, value in networks:
        net = ipaddress.ip_network(value)
        if ip.version == net.version and ip in net and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, str(system_id))
    return None if best is None else best[1]


def peer_address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address in a gRPC peer (`ipv4:10.0.0.5:5123`, `ipv6:[::1]:5123`) or a bare IP."""
    text = peer
    if text.startswith(("ipv4:", "ipv6:")):
        text = text[5:]
        text = text[1:].partition("]")[0] if text.startswith("[") else text.rsplit(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _decode(model: type[M], data: Any, system_id: str) -> M:
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise StorageError(
            f"stored {model.__name__} cannot be read: {exc.errors()[0]['msg']}",
            location=system_id,
        ) from None
