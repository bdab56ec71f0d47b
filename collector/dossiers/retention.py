"""Event retention by security level: how long each system's events are kept, and deleting them.

A system's effective retention is the longer of the configured one (`retention.per_system`, else
`retention.default_months`) and the minimum its legal regime sets for its level (approved level,
else proposed). Naming a system in `per_system` with less than that minimum is refused at
startup: the operator asked for something the law does not allow. A default shorter than a
system's minimum is raised to it silently, and `canhgac-collector findings` reports it. Agents
that belong to no system keep the default. Where the regime does not know the minimum (the
legacy regime: TCVN 11930 values were not retrieved) the configured value is used as is.

Deletion runs in bounded batches (one short transaction each), so ingest, which shares the
store, waits at most one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from canhgac.errors import ConfigError
from collector.config import RetentionConfig
from collector.dossiers.clock import VN_TZ, add_months
from collector.dossiers.model import InformationSystem
from collector.dossiers.regime import Regime, Value
from collector.storage.base import Store
from collector.storage.worker import StoreWorker

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 5000


def system_level(system: InformationSystem) -> int | None:
    """The level the system is held to: approved, else proposed, else None (not decided)."""
    return system.approved_level or system.proposed_level


def regime_of(
    system: InformationSystem, regime: Regime, regimes: Mapping[str, Regime] | None
) -> Regime:
    """The regime the system names when it is loaded, else the deployment's."""
    return (regimes or {}).get(system.regime, regime)


@dataclass(frozen=True)
class SystemRetention:
    """One system's retention: what is configured, the legal minimum, what is applied."""

    system_id: str
    regime_id: str
    level: int | None
    configured_months: int
    explicit: bool  # configured in retention.per_system (else the default applies)
    minimum: Value[int | None] | None  # None: the system has no level yet
    effective_months: int

    @property
    def minimum_months(self) -> int | None:
        return None if self.minimum is None else self.minimum.value

    @property
    def below_minimum(self) -> bool:
        m = self.minimum_months
        return m is not None and self.configured_months < m


def system_retention(
    system: InformationSystem, config: RetentionConfig, regime: Regime
) -> SystemRetention:
    explicit = system.id in config.per_system
    configured = config.per_system.get(system.id, config.default_months)
    level = system_level(system)
    minimum = None if level is None else regime.requirements(level).log_retention_months
    floor = minimum.value if minimum is not None and minimum.value is not None else 0
    return SystemRetention(
        system_id=system.id,
        regime_id=regime.id,
        level=level,
        configured_months=configured,
        explicit=explicit,
        minimum=minimum,
        effective_months=max(configured, floor),
    )


@dataclass(frozen=True)
class RetentionPolicy:
    """Months of events to keep per system; `default_months` for agents in no system."""

    default_months: int
    systems: Mapping[str, SystemRetention]
    per_system: Mapping[str, int] = field(default_factory=dict)

    def months_for(self, system_id: str | None) -> int:
        if system_id is None:
            return self.default_months
        if system_id in self.systems:
            return self.systems[system_id].effective_months
        # A system named by an enrollment token but not registered: no level, no minimum.
        return self.per_system.get(system_id, self.default_months)


def retention_policy(
    systems: Sequence[InformationSystem],
    config: RetentionConfig,
    regime: Regime,
    *,
    regimes: Mapping[str, Regime] | None = None,
    strict: bool = True,
) -> RetentionPolicy:
    """The policy for these systems. With `strict` (at startup) a `per_system` entry below its
    system's legal minimum raises ConfigError naming the system, the minimum and its source;
    otherwise it is raised to the minimum like the default."""
    found = {s.id: system_retention(s, config, regime_of(s, regime, regimes)) for s in systems}
    refused = [r for r in found.values() if r.explicit and r.below_minimum]
    if strict and refused:
        raise ConfigError(
            "; ".join(_refusal(r) for r in refused),
            location=f"retention.per_system.{refused[0].system_id}",
        )
    return RetentionPolicy(config.default_months, found, dict(config.per_system))


def _refusal(r: SystemRetention) -> str:
    assert r.minimum is not None
    return (
        f"system {r.system_id!r}: {r.configured_months} month(s) is shorter than the legal "
        f"minimum of {r.minimum.value} month(s) for level {r.level} under {r.regime_id} "
        f"(source: {r.minimum.source}, confidence {r.minimum.confidence})"
    )


def check_retention(
    store: Store,
    config: RetentionConfig,
    regime: Regime,
    *,
    regimes: Mapping[str, Regime] | None = None,
) -> RetentionPolicy:
    """The startup check: the policy of the registered systems, or ConfigError."""
    return retention_policy(store.list_systems(), config, regime, regimes=regimes)


def cutoff_ns(now: dt.datetime, months: int) -> int:
    """Events older than this (ns since the epoch) are past `months` calendar months."""
    since_epoch = add_months(now, -months) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return since_epoch // dt.timedelta(microseconds=1) * 1000


@dataclass(frozen=True)
class RetentionTarget:
    """One deletion: events before `before_ns` of `agent_ids` (None: every agent except
    `except_agent_ids`), on behalf of `system_id` (None: agents in no system)."""

    system_id: str | None
    months: int
    before_ns: int
    agent_ids: tuple[str, ...] | None
    except_agent_ids: tuple[str, ...] = ()


def plan_retention(
    store: Store, policy: RetentionPolicy, now: dt.datetime
) -> list[RetentionTarget]:
    """What to delete now: one target per system with agents, then everything else."""
    members: dict[str, list[str]] = {}
    for agent in store.list_agents():
        system_id = store.system_of_agent(agent.agent_id)
        if system_id is not None:
            members.setdefault(system_id, []).append(agent.agent_id)
    targets = [
        RetentionTarget(
            system_id,
            policy.months_for(system_id),
            cutoff_ns(now, policy.months_for(system_id)),
            tuple(agents),
        )
        for system_id, agents in sorted(members.items())
    ]
    in_systems = tuple(a for agents in members.values() for a in agents)
    default = policy.default_months
    targets.append(RetentionTarget(None, default, cutoff_ns(now, default), None, in_systems))
    return targets


@dataclass
class RetentionRun:
    """What one pass deleted: in total, per system ("" for agents in no system), in how many
    delete statements, and whether it finished (False: stopped at `max_batches`)."""

    deleted: int = 0
    by_system: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    complete: bool = True

    def add(self, target: RetentionTarget, n: int) -> None:
        self.deleted += n
        self.batches += 1
        key = target.system_id or ""
        self.by_system[key] = self.by_system.get(key, 0) + n


def _delete_once(store: Store, target: RetentionTarget, batch_rows: int) -> int:
    return store.delete_events_before(
        target.before_ns,
        agent_ids=target.agent_ids,
        except_agent_ids=target.except_agent_ids,
        limit=batch_rows,
    )


def apply_retention(
    store: Store,
    policy: RetentionPolicy,
    now: dt.datetime,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    max_batches: int | None = None,
) -> RetentionRun:
    """Delete every expired event now (synchronously), `batch_rows` per transaction."""
    run = RetentionRun()
    for target in plan_retention(store, policy, now):
        while True:
            if max_batches is not None and run.batches >= max_batches:
                run.complete = False
                return run
            n = _delete_once(store, target, batch_rows)
            run.add(target, n)
            if n < batch_rows:
                break
    return run


class RetentionWorker:
    """Deletes expired events every `interval_s`, through the collector's StoreWorker.

    Each batch is its own call on the store thread, so ingest's writes interleave with it.
    The policy is rebuilt on each pass from the registry (levels change), without refusing:
    the strict check belongs to startup. `on_deleted(system_id, n)` lets a metric count.
    """

    def __init__(
        self,
        worker: StoreWorker,
        config: RetentionConfig,
        regime: Regime,
        *,
        regimes: Mapping[str, Regime] | None = None,
        clock_ns: Callable[[], int],
        batch_rows: int = DEFAULT_BATCH_ROWS,
        on_deleted: Callable[[str, int], None] | None = None,
    ) -> None:
        self._worker = worker
        self._config = config
        self._regime = regime
        self._regimes = regimes
        self._clock_ns = clock_ns
        self._batch_rows = batch_rows
        self._on_deleted = on_deleted
        self.deleted_total = 0

    def _plan(self) -> list[RetentionTarget]:
        store = self._worker.store
        policy = retention_policy(
            store.list_systems(), self._config, self._regime, regimes=self._regimes, strict=False
        )
        now = dt.datetime.fromtimestamp(self._clock_ns() / 1e9, tz=VN_TZ)
        return plan_retention(store, policy, now)

    async def run_once(self) -> RetentionRun:
        run = RetentionRun()
        for target in await self._worker.run(self._plan):
            while True:
                n = await self._worker.run(
                    _delete_once, self._worker.store, target, self._batch_rows
                )
                run.add(target, n)
                if n and self._on_deleted is not None:
                    self._on_deleted(target.system_id or "", n)
                if n < self._batch_rows:
                    break
        self.deleted_total += run.deleted
        if run.deleted:
            log.info(
                "retention deleted expired events",
                extra={"fields": {"deleted": run.deleted, "by_system": run.by_system}},
            )
        return run

    async def run(self, stop: asyncio.Event) -> None:
        """Passes every `check_interval_s` until `stop` is set; a failed pass is logged."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # logged with its traceback; the next pass retries
                log.exception("retention pass failed; retrying at the next interval")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._config.check_interval_s)
