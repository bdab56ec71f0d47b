"""What only the SQLite store promises: durable WAL settings, other readers, threads."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from canhgac.errors import MigrationError, StorageError
from canhgac.v1 import events_pb2
from collector.storage.sqlite import SqliteStore


def batch(agent_id: str, seq: int, size: int = 3) -> list[events_pb2.Event]:
    return [
        events_pb2.Event(id=f"{agent_id}-{seq}-{i}", agent_id=agent_id, time_ns=i)
        for i in range(size)
    ]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "collector.db"


@pytest.fixture
def writer(path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(path)
    store.migrate()
    yield store
    store.close()


def test_commits_are_durable(writer: SqliteStore) -> None:
    # Read on the store's own connection: synchronous is a per-connection setting.
    conn = writer._conn
    assert conn is not None
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_a_second_store_reads_what_the_first_wrote(path: Path, writer: SqliteStore) -> None:
    reader = SqliteStore(path, read_only=True)
    try:
        assert reader.migrate() == writer.schema_version()
        writer.store_batch("web-01", 1, batch("web-01", 1), received_ns=1)
        assert reader.count_events() == 3  # seen while the writer stays open
        assert [s.event.id for s in reader.events()] == ["web-01-1-0", "web-01-1-1", "web-01-1-2"]
        with pytest.raises(StorageError, match="readonly"):
            reader.store_batch("web-01", 2, batch("web-01", 2), received_ns=1)
    finally:
        reader.close()


def test_another_process_reads_while_the_writer_is_open(path: Path, writer: SqliteStore) -> None:
    writer.store_batch("web-01", 1, batch("web-01", 1, size=4), received_ns=1)
    script = (
        "import sys, pathlib\n"
        "from collector.storage.sqlite import SqliteStore\n"
        "store = SqliteStore(pathlib.Path(sys.argv[1]), read_only=True)\n"
        "print(store.count_events(agent_id='web-01'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "4"


def test_a_read_only_store_does_not_migrate(path: Path) -> None:
    SqliteStore(path).close()  # creates the file, without tables
    reader = SqliteStore(path, read_only=True)
    try:
        with pytest.raises(MigrationError, match="open it read-write"):
            reader.migrate()
    finally:
        reader.close()


def test_a_missing_directory_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot open"):
        SqliteStore(tmp_path / "absent" / "collector.db")


def test_one_store_serves_several_threads(writer: SqliteStore) -> None:
    def work(agent: int) -> None:
        for seq in range(1, 21):
            writer.store_batch(f"agent-{agent}", seq, batch(f"agent-{agent}", seq), 1)
            writer.events(limit=5, agent_id=f"agent-{agent}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert writer.count_events() == 4 * 20 * 3


def test_two_writers_on_one_file_wait_for_each_other(path: Path, writer: SqliteStore) -> None:
    other = SqliteStore(path)
    try:
        stores = [writer, other]

        def work(n: int) -> None:
            for seq in range(1, 31):
                # Both write the same keys: each batch must be stored exactly once.
                stores[n].store_batch("web-01", seq, batch("web-01", seq), 1)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert writer.count_events() == 30 * 3
    finally:
        other.close()
