-- 0001: events with their batch deduplication record, agents, alerts (PostgreSQL).
-- Keep the logical shape identical to sqlite/0001_initial.sql.

-- One row per stored batch: its primary key is the delivery deduplication key.
CREATE TABLE batches (
    agent_id    TEXT    NOT NULL,
    seq         BIGINT  NOT NULL,
    events      INTEGER NOT NULL,
    received_ns BIGINT  NOT NULL,
    PRIMARY KEY (agent_id, seq)
);

CREATE TABLE events (
    row_id      BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    TEXT    NOT NULL,
    agent_id    TEXT    NOT NULL,
    seq         BIGINT  NOT NULL,
    time_ns     BIGINT  NOT NULL,
    received_ns BIGINT  NOT NULL,
    category    TEXT    NOT NULL,
    -- canhgac.v1.Event, serialized: the source of truth. The columns above are the few that
    -- queries filter on; every further copied column cost ingest throughput (measured: five
    -- more text columns took 40 % of it), so the rest is read from `data`.
    data        BYTEA   NOT NULL
);
-- No index on time_ns alone: events arrive roughly in time order, so row_id ranges serve
-- whole-period scans, and a second time index cost a third of ingest throughput.
CREATE INDEX events_agent_time_ns ON events (agent_id, time_ns);
CREATE INDEX events_event_id ON events (event_id);

CREATE TABLE agents (
    agent_id      TEXT   NOT NULL PRIMARY KEY,
    hostname      TEXT   NOT NULL DEFAULT '',
    version       TEXT   NOT NULL DEFAULT '',
    first_seen_ns BIGINT NOT NULL DEFAULT 0,
    last_seen_ns  BIGINT NOT NULL DEFAULT 0,
    last_seq      BIGINT NOT NULL DEFAULT 0,
    peer          TEXT   NOT NULL DEFAULT '',
    -- canhgac.v1.AgentStatus from the last heartbeat, serialized (empty when none yet).
    status        BYTEA  NOT NULL DEFAULT ''::bytea
);

CREATE TABLE alerts (
    row_id     BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id   TEXT    NOT NULL UNIQUE,
    rule_id    TEXT    NOT NULL,
    severity   INTEGER NOT NULL,
    created_ns BIGINT  NOT NULL,
    agent_id   TEXT    NOT NULL,
    host       TEXT    NOT NULL,
    system_id  TEXT    NOT NULL,
    status     TEXT    NOT NULL DEFAULT 'open',
    -- canhgac.v1.Alert, serialized.
    data       BYTEA   NOT NULL
);
CREATE INDEX alerts_created_ns ON alerts (created_ns);
