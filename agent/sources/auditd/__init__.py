"""The auditd source: every record of the Linux audit log as a LogRecord event."""

from .config import AuditdConfig
from .source import AuditdSource

__all__ = ["AuditdConfig", "AuditdSource"]
