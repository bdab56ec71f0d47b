"""Service logs from the host's syslog files (cron, vsftpd, clamav, guacd, named, systemd) and
from services' own log files, as LogRecord events."""

from .config import SyslogConfig, SyslogFile
from .source import SyslogSource

__all__ = ["SyslogConfig", "SyslogFile", "SyslogSource"]
