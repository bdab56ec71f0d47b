"""The explicit registry of store kinds and open_store's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from canhgac.errors import StorageError
from collector.storage.registry import STORES, open_store
from collector.storage.sqlite import SqliteStore


def test_every_backend_is_registered() -> None:
    assert set(STORES) == {"sqlite", "postgres"}


def test_opens_sqlite(tmp_path: Path) -> None:
    store = open_store("sqlite", sqlite_path=tmp_path / "c.db", postgres_dsn=None)
    try:
        assert isinstance(store, SqliteStore)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("mysql", "unknown store kind 'mysql'"),
        ("sqlite", "needs a database path"),
        ("postgres", "needs a DSN"),
    ],
)
def test_refuses_what_it_cannot_open(kind: str, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        open_store(kind, sqlite_path=None, postgres_dsn=None)
