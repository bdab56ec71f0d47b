"""The exception tree. Every error Canh Gác raises on purpose is a CanhGacError.

Each error carries where the problem is (a file and line, a config path, a destination) so the
message an operator reads points at the thing to fix.
"""

from __future__ import annotations


class CanhGacError(Exception):
    """Root of every deliberate error. `location` names where the problem is, when known."""

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ConfigError(CanhGacError):
    """A configuration file or value is invalid; `location` is `file:line` or a key path."""


class RuleError(CanhGacError):
    """A detection rule cannot be loaded or compiled; `location` is `file:line:col`."""


class StorageError(CanhGacError):
    """The store failed or holds data it cannot read."""


class MigrationError(StorageError):
    """The schema is newer than this program, or a migration failed."""


class TransportError(CanhGacError):
    """The agent could not reach the collector, or the connection broke."""


class TlsError(CanhGacError):
    """A certificate or key is missing, invalid or does not verify."""


class EnrollmentError(CanhGacError):
    """Enrollment or certificate renewal was refused or failed.

    `reason` is a short stable code (`token_expired`, `bad_csr`, `revoked`...) fit for a metric
    label; the message says what was wrong for the operator. Neither ever holds a secret.
    """

    def __init__(self, message: str, *, reason: str, location: str | None = None) -> None:
        super().__init__(message, location=location)
        self.reason = reason


class ForwardError(CanhGacError):
    """Delivery to an upstream destination failed."""

    def __init__(self, message: str, *, destination: str) -> None:
        super().__init__(message, location=destination)
        self.destination = destination


class SourceUnavailableError(CanhGacError):
    """An agent source cannot run on this host (missing file, permission, kernel feature)."""
