"""What a Sigma log source becomes on our events: the shared shape of the log-source tables.

The tables themselves live in `collector.detection.pipeline` (the host sources) and in one module
per family of logs in this package (`syslog`, `devices`, `zeek`), which the pipeline merges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sigma.rule import SigmaLogSource

Conditions = Mapping[str, str | list[str]]


@dataclass(frozen=True)
class LogsourceMapping:
    """One Sigma log source we can answer: the conditions it adds and the field names it uses.

    `product` None matches any product (a `category: dns` rule with or without one).
    """

    product: str | None
    service: str | None
    category: str | None
    conditions: Conditions
    fields: Mapping[str, str] = field(default_factory=dict)

    def covers(self, logsource: SigmaLogSource) -> bool:
        return (
            (self.product is None or self.product == logsource.product)
            and self.service == logsource.service
            and self.category == logsource.category
        )

    @property
    def name(self) -> str:
        return "_".join(p for p in (self.product, self.service, self.category) if p)
