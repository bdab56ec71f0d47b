"""Loading migration files, and the one schema both dialects must share."""

from __future__ import annotations

from pathlib import Path

import pytest

from canhgac.errors import MigrationError
from collector.storage.migrations import check_not_newer, load_migrations
from tests.collector.storage.conftest import Backend, postgres_backend, sqlite_backend


def write(root: Path, name: str, sql: str = "SELECT 1;") -> None:
    (root / "sqlite").mkdir(parents=True, exist_ok=True)
    (root / "sqlite" / name).write_text(sql, encoding="utf-8")


def test_shipped_migrations_load_for_both_dialects() -> None:
    sqlite = load_migrations("sqlite")
    postgres = load_migrations("postgres")
    assert [m.version for m in sqlite] == [m.version for m in postgres]
    assert [m.name for m in sqlite] == [m.name for m in postgres]
    assert sqlite[0].version == 1
    assert "CREATE TABLE events" in sqlite[0].sql


def test_files_load_in_version_order(tmp_path: Path) -> None:
    write(tmp_path, "0002_second.sql")
    write(tmp_path, "0001_first.sql")
    write(tmp_path, "README.md")
    assert [m.name for m in load_migrations("sqlite", tmp_path)] == [
        "0001_first.sql",
        "0002_second.sql",
    ]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["0001_a.sql", "0003_c.sql"], "expected version 2"),
        (["0001_a.sql", "0001_b.sql"], "expected version 2"),
        (["0002_b.sql"], "expected version 1"),
        (["1_a.sql"], "must look like"),
        (["0001-Initial.sql"], "must look like"),
    ],
)
def test_a_malformed_set_is_refused(tmp_path: Path, names: list[str], message: str) -> None:
    for name in names:
        write(tmp_path, name)
    with pytest.raises(MigrationError, match=message):
        load_migrations("sqlite", tmp_path)


def test_a_missing_dialect_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="no migrations folder"):
        load_migrations("postgres", tmp_path)


def test_a_database_newer_than_the_files_is_refused() -> None:
    latest = load_migrations("sqlite")[-1].version
    check_not_newer(latest, load_migrations("sqlite"))
    with pytest.raises(MigrationError, match="upgrade Canh Gác"):
        check_not_newer(latest + 1, load_migrations("sqlite"))


def columns(backend: Backend) -> dict[str, list[str]]:
    if backend.kind == "sqlite":
        tables = sorted(backend.tables() - {"sqlite_sequence"})
        return {t: [r[1] for r in backend.query(f"PRAGMA table_info({t})")] for t in tables}
    rows = backend.query(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    )
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


@pytest.mark.postgres
@pytest.mark.integration
def test_both_dialects_have_the_same_tables_and_columns(tmp_path: Path, postgres_dsn: str) -> None:
    shapes = []
    for backend in (sqlite_backend(tmp_path / "c.db"), postgres_backend(postgres_dsn)):
        store = backend.open_store()
        try:
            store.migrate()
        finally:
            store.close()
        shapes.append(columns(backend))
    assert shapes[0] == shapes[1]
    assert shapes[0]["events"][:2] == ["row_id", "event_id"]
