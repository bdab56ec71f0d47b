"""Builds the configured destinations: one factory per destination kind.

A new kind adds its config class to collector/config.py's DestinationConfig and one factory
here; the worker and the outbox do not change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from canhgac.errors import ConfigError
from collector.config import DestinationConfig, ForwardConfig
from collector.forward import parent, stix, syslog_cef
from collector.forward.model import Destination
from collector.forward.national import NationalJsonDestination
from collector.forward.worker import ForwardWorker, ForwardWorkers, WorkerSettings
from collector.metrics import ForwardMetrics
from collector.storage.worker import StoreWorker

# kind -> factory(destination config, this collector's name, its state directory)
Factory = Callable[[Any, str, Path], Destination]


def _national(config: Any, collector: str, state_dir: Path) -> Destination:
    return NationalJsonDestination(config.name, config, collector=collector, policy=config.minimise)


def _stix(config: Any, collector: str, state_dir: Path) -> Destination:
    return stix.build(config.name, config, state_dir=state_dir, policy=config.minimise)


def _syslog(config: Any, collector: str, state_dir: Path) -> Destination:
    return syslog_cef.build(config.name, config, state_dir=state_dir, policy=config.minimise)


def _parent(config: Any, collector: str, state_dir: Path) -> Destination:
    return parent.build(
        config.name, config, state_dir=state_dir, collector=collector, policy=config.minimise
    )


FACTORIES: dict[str, Factory] = {
    "national_json": _national,
    "stix_taxii": _stix,
    "syslog_cef": _syslog,
    "parent_grpc": _parent,
}


def build_destination(
    config: DestinationConfig, collector: str, state_dir: Path = Path(".")
) -> Destination:
    factory = FACTORIES.get(config.kind)
    if factory is None:
        raise ConfigError(
            f"destination kind {config.kind!r} is not available in this build",
            location=f"forward.destinations.{config.name}",
        )
    return factory(config, collector, state_dir)


def build_destinations(
    config: ForwardConfig, collector: str, state_dir: Path = Path(".")
) -> list[tuple[DestinationConfig, Destination]]:
    """Every enabled destination with its configuration."""
    return [(d, build_destination(d, collector, state_dir)) for d in config.enabled()]


def build_workers(
    config: ForwardConfig,
    collector: str,
    store: StoreWorker,
    metrics: ForwardMetrics | None = None,
    *,
    state_dir: Path = Path("."),
    clock_ns: Callable[[], int] = time.time_ns,
) -> ForwardWorkers:
    """A worker for each enabled destination, with its queue settings."""
    workers = []
    for d, destination in build_destinations(config, collector, state_dir):
        settings = WorkerSettings(
            batch_size=d.batch_size,
            max_attempts=d.max_attempts,
            backoff_base_s=d.backoff_base_s,
            backoff_cap_s=d.backoff_cap_s,
            poll_interval_s=d.poll_interval_s,
        )
        workers.append(ForwardWorker(destination, store, settings, metrics, clock_ns=clock_ns))
    return ForwardWorkers(workers)
