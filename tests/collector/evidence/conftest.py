"""The storage contract fixtures (SQLite and PostgreSQL backends), reused for evidence."""

from tests.collector.storage.conftest import (  # noqa: F401
    backend,
    postgres_dsn,
    postgres_server,
    store,
)
