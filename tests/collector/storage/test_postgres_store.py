"""What only the PostgreSQL store promises: no secrets in errors, reconnection, durability."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from canhgac.errors import StorageError
from collector.storage.postgres import PostgresStore, redact_dsn

pytestmark = [pytest.mark.postgres, pytest.mark.integration]

SECRET = "hunter2-do-not-log"


def exception_chain(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def test_redact_dsn_drops_the_password() -> None:
    url = f"postgresql://canhgac:{SECRET}@db.tinh.gov.vn:5433/events?sslmode=require"
    assert redact_dsn(url) == "postgresql://canhgac@db.tinh.gov.vn:5433/events"
    keywords = f"host=db user=canhgac password={SECRET} dbname=events"
    assert redact_dsn(keywords) == "postgresql://canhgac@db/events"


@pytest.mark.parametrize(
    "dsn",
    [
        # Nothing listens on port 1: the connection fails after the DSN was parsed.
        f"postgresql://canhgac:{SECRET}@127.0.0.1:1/test",
        # libpq's parse error would quote the password.
        f"host=127.0.0.1 password {SECRET}",
    ],
)
def test_no_error_shows_the_dsn_or_password(dsn: str) -> None:
    with pytest.raises(StorageError) as caught:
        PostgresStore(dsn, connect_timeout_s=2)
    for exc in exception_chain(caught.value):
        assert SECRET not in str(exc)
        assert SECRET not in repr(exc)


def test_repr_hides_the_password(postgres_dsn: str) -> None:
    store = PostgresStore(make_conninfo(postgres_dsn, password=SECRET))
    try:
        assert SECRET not in repr(store)
    finally:
        store.close()


def test_a_broken_connection_is_replaced(postgres_server: str, postgres_dsn: str) -> None:
    name = f"canhgac-test-{uuid.uuid4().hex[:8]}"
    store = PostgresStore(make_conninfo(postgres_dsn, application_name=name))
    try:
        store.migrate()
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            )
        with pytest.raises(StorageError):
            store.count_events()
        assert store.count_events() == 0
    finally:
        store.close()


def test_commits_are_never_asynchronous(postgres_dsn: str) -> None:
    # A server (or DSN) set to synchronous_commit=off could lose acknowledged batches.
    dsn = make_conninfo(postgres_dsn)
    options = psycopg.conninfo.conninfo_to_dict(dsn)["options"]
    store = PostgresStore(make_conninfo(dsn, options=f"{options} -csynchronous_commit=off"))
    try:
        # synchronous_commit is per session: read it on the store's own connection.
        conn = store._conn
        assert conn is not None
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
    finally:
        store.close()
