-- 0007: the outbox of upstream forwarding (postgres). Keep the logical shape identical in both dialects.

-- One row per (destination, kind, item): written in the same transaction as the alert or the
-- incident it carries, so nothing stored is ever missing from a destination's queue.
-- state: pending | delivered | quarantined. next_attempt_ns: when a pending item is due.
-- last_error: "<reason>: <message>" of the last failed attempt, never a secret.
-- delivered_ns: 0 until delivered.
CREATE TABLE outbox (
    destination     TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    item_id         TEXT   NOT NULL,
    state           TEXT   NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_ns BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT   NOT NULL DEFAULT '',
    created_ns      BIGINT NOT NULL,
    delivered_ns    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (destination, kind, item_id)
);

-- Serves due_items (the pending items of one destination, by due time) and the health counts.
CREATE INDEX outbox_due ON outbox (destination, state, next_attempt_ns);
