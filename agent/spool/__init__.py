"""The agent's durable spool: events wait here, on disk, until the collector has stored them.

Delivery. Sources `append` events with their resume checkpoint in one SQLite transaction (WAL,
synchronous=FULL), so after a crash or power loss a source resumes exactly where the stored
events end. The shipper takes batches with `next_batch` (or `batch_after` with its own
cursor): a batch's seq and its event range are committed before the batch is returned, and a
seq keeps exactly the same events on every resend until `ack` or `ack_through` deletes it.
Seqs are strictly increasing and never reused: the last seq lives in the database and an
upper bound lives in the `<name>.seq` sidecar (fsync + rename), and opening takes the larger.
After a crash the next seq may therefore jump by up to SEQ_RESERVE; gaps are harmless, reuse
would make the collector discard a new batch as a duplicate. Appends and batch assignments
wait for the disk (synchronous=FULL); acks do not, because an ack lost to a power cut only
brings back a batch that the collector answers as a duplicate.

In flight. The spool knows only "assigned" and "acknowledged". What this session has handed
out lives in memory (the `next_batch` cursor): after a restart every unacknowledged batch is
handed out again, and after a reconnect the shipper calls `ack_through(last_stored_seq)` and
`reset_inflight()` to do the same. `pending_batches`, `assigned_after` and `assign_batch` serve
shippers that keep their own cursor.

Full spool. `max_bytes` caps the stored event bytes (the file adds SQLite overhead). When an
append would pass it, the oldest *unassigned* events are dropped first, then the oldest of
the incoming events. Events in an assigned batch are never dropped: the batch may already be
at the collector, and changing its content would break the same-seq-same-events rule that the
collector's deduplication relies on; acknowledgement frees them soon enough. Each dropped
event is counted (reason "spool_full") in lifetime totals (`stats`) and in a pending report
that `take_drop_report` returns once, for an AgentStatus event to the collector.

Damage. Opening runs `PRAGMA quick_check`. A file that is not a database, fails the check or
has a foreign schema is moved aside with its -wal/-shm to `<name>.corrupt-<UTC time>` and a
fresh spool starts; `startup_report` says what and why. A single unreadable event (checksum
mismatch or protobuf decode error) is deleted and counted ("corrupt_event") instead of failing
its batch. If the spool cannot be opened at all, it runs in memory (`durable` False in the
startup report) rather than stop the agent.
"""

from agent.spool.reports import (
    DROP_CORRUPT_EVENT,
    DROP_SOURCE,
    DROP_SPOOL_FULL,
    DropReport,
    QuarantinedFile,
    SpoolBatch,
    SpoolStats,
    StartupReport,
)
from agent.spool.sqlite import SEQ_RESERVE, SqliteSpool

__all__ = [
    "DROP_CORRUPT_EVENT",
    "DROP_SOURCE",
    "DROP_SPOOL_FULL",
    "SEQ_RESERVE",
    "DropReport",
    "QuarantinedFile",
    "SpoolBatch",
    "SpoolStats",
    "SqliteSpool",
    "StartupReport",
]
