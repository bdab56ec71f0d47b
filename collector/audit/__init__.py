"""The tamper-evident audit log: operator and admin actions in one hash chain."""
