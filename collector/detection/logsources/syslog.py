"""Services that write to the host's syslog (cron, vsftpd, clamav, guacamole ...) as Sigma
`product: linux, service: <name>` log sources, on LogRecord events of the agent's `syslog`
source (agent/sources/syslog).

Each service is the records of the programs that really write its log, under the names they
log with (Sigma compares strings without case, so `cron` also meets Debian's `CRON`), in the
syslog files or in the service's own log file (format "vsftpd", "clamav"). `service: syslog`
is every record of format "syslog": what the agent keeps of the syslog files, i.e. the lines of
the programs in its allow-list (the default one holds named and systemd, whose messages the
public syslog rules search). The public rules of these services are keyword searches, which
look at event.original (the whole line); a rule naming a field of the record's own (`user`,
`client`, `command` ...) gets `canhgac.log.fields.<name>`.
"""

from __future__ import annotations

from typing import Final

from sigma.processing.pipeline import ProcessingItem

from canhgac.fields import LOG_FIELD_PREFIX
from collector.detection.logsources.base import Conditions, LogsourceMapping

# Sigma `product:` values these log sources answer (linux is supported by the pipeline).
PRODUCTS: Final[frozenset[str]] = frozenset()

# The header of the agent's syslog-source events (agent/sources/syslog/parser.py).
RECORD: Final[Conditions] = {"event.category": "host", "canhgac.log.format": "syslog"}

# Programs per service, as they name themselves in syslog.
CRON_PROGRAMS: Final = ["CRON", "cron", "crond", "CROND", "crontab", "anacron"]
VSFTPD_PROGRAMS: Final = ["vsftpd"]
CLAMAV_PROGRAMS: Final = ["clamd", "freshclam", "clamonacc", "clamav-milter"]
GUACAMOLE_PROGRAMS: Final = ["guacd"]

# The fields the agent splits from these services' messages, under their own names.
CRON_FIELDS: Final = ("user", "action", "command", "detail")
VSFTPD_FIELDS: Final = ("user", "status", "client", "file", "bytes")
CLAMAV_FIELDS: Final = ("file", "signature")
GUACAMOLE_FIELDS: Final = ("user", "connection", "users_present")


def _own(names: tuple[str, ...]) -> dict[str, str]:
    return {name: LOG_FIELD_PREFIX + name for name in names}


def _service(formats: list[str], programs: list[str]) -> Conditions:
    format_value: str | list[str] = formats[0] if len(formats) == 1 else formats
    return {
        "event.category": "host",
        "canhgac.log.format": format_value,
        "process.name": programs,
    }


LOGSOURCES: Final[tuple[LogsourceMapping, ...]] = (
    LogsourceMapping("linux", "syslog", None, RECORD),
    LogsourceMapping("linux", "cron", None, _service(["syslog"], CRON_PROGRAMS), _own(CRON_FIELDS)),
    LogsourceMapping(
        "linux",
        "vsftpd",
        None,
        _service(["syslog", "vsftpd"], VSFTPD_PROGRAMS),
        _own(VSFTPD_FIELDS),
    ),
    LogsourceMapping(
        "linux",
        "clamav",
        None,
        _service(["syslog", "clamav"], CLAMAV_PROGRAMS),
        _own(CLAMAV_FIELDS),
    ),
    LogsourceMapping(
        "linux",
        "guacamole",
        None,
        _service(["syslog"], GUACAMOLE_PROGRAMS),
        _own(GUACAMOLE_FIELDS),
    ),
)


def processing_items() -> list[ProcessingItem]:
    """Transformations of their own these log sources need, applied before the field mapping."""
    return []
