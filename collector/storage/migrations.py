"""Versioned schema migrations, shared by every SQL backend.

A migration is a file `NNNN_name.sql` under `migrations/<dialect>/` in this package; its
number is its version. Adding a schema change means adding the next file for each dialect, no
code. Versions must be contiguous from 1 so a missing file is caught at load time rather than
silently skipped.

The backends own the SQL driver: each implements `MigrationTarget`, and `apply_migrations`
decides what to run. `schema_migrations` records every version applied and when.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Literal, Protocol

from canhgac.errors import MigrationError

Dialect = Literal["sqlite", "postgres"]

# Created outside the numbered files: it must exist before we can ask which file ran last.
# The same text is valid in both dialects.
VERSION_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, applied_ns BIGINT NOT NULL)"
)

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One schema step: its version (the file's number), file name and SQL text."""

    version: int
    name: str
    sql: str


class MigrationTarget(Protocol):
    """What a backend provides so `apply_migrations` can drive it."""

    def ensure_version_table(self) -> None:
        """Create `schema_migrations` if it does not exist (VERSION_TABLE_SQL)."""
        ...

    def applied_version(self) -> int:
        """Highest version in `schema_migrations`, 0 when none (or when the table is absent)."""
        ...

    def apply(self, migration: Migration, applied_ns: int) -> None:
        """Run the migration and record it, in one transaction.

        Must hold the database's writer lock before re-reading the version inside that
        transaction and do nothing when another process already applied this version, so two
        collectors starting together cannot apply a file twice. A failure rolls the whole file
        back and raises MigrationError naming the file.
        """
        ...


def migrations_root() -> Traversable:
    """The folder holding one subfolder of SQL files per dialect, inside the installed package."""
    return resources.files("collector.storage").joinpath("migrations")


def load_migrations(dialect: Dialect, root: Traversable | None = None) -> list[Migration]:
    """The migrations for a dialect in version order; MigrationError on a malformed set."""
    folder = (root or migrations_root()).joinpath(dialect)
    if not folder.is_dir():
        raise MigrationError("no migrations folder", location=str(folder))
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(
                "migration file names must look like 0001_description.sql",
                location=f"{dialect}/{entry.name}",
            )
        found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"expected version {expected} next, found {migration.name} "
                "(versions must start at 1 and have no gaps or duplicates)",
                location=f"{dialect}/{migration.name}",
            )
    return found


def apply_migrations(
    target: MigrationTarget, migrations: Sequence[Migration], clock: Callable[[], int]
) -> int:
    """Apply every migration newer than the database, each in its own transaction.

    Returns the version now in force. Raises MigrationError, before changing anything, when the
    database is newer than the newest migration known here: running old code against it could
    misread or damage data written by the newer program.
    """
    target.ensure_version_table()
    current = target.applied_version()
    check_not_newer(current, migrations)
    for migration in migrations:
        if migration.version > current:
            target.apply(migration, clock())
    return target.applied_version()


def check_not_newer(current: int, migrations: Sequence[Migration]) -> None:
    """Raise MigrationError when the database's version is beyond the newest migration."""
    known = migrations[-1].version if migrations else 0
    if current > known:
        raise MigrationError(
            f"database schema is version {current} but this program knows versions up to "
            f"{known}; upgrade Canh Gác (or restore a backup made before the upgrade)"
        )
