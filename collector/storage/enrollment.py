"""The enrollment part of the storage contract: tokens, agents' certificates, revocation, and
the certificates a parent collector issued to its child collectors.

Every backend implements `EnrollmentStore` (through `EnrollmentStoreMixin` in
`enrollment_sql.py`); `Store` extends it. The contract tests in tests/collector/storage/
define the behaviour against each backend. Times are Unix nanoseconds passed in by the caller,
so tests inject the clock. No secret is ever stored: a token is kept as a hash of its secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

TokenState = Literal["unused", "used", "expired", "revoked"]
# A child collector certificate as the parent's registry knows it (expiry is TLS's concern).
ChildCertificateState = Literal["unknown", "valid", "revoked"]
EnrollOutcome = Literal[
    "enrolled", "unknown_token", "token_used", "token_expired", "token_revoked", "agent_id_taken"
]
# The outcome of enrolling with a token in each state but "unused".
TOKEN_REFUSALS: dict[TokenState, EnrollOutcome] = {
    "used": "token_used",
    "expired": "token_expired",
    "revoked": "token_revoked",
}
# The agents table's enrollment status: "" for an agent that never enrolled (insecure_dev).
ENROLLED, REVOKED = "enrolled", "revoked"


@dataclass(frozen=True)
class EnrollmentToken:
    """A single-use enrollment token as stored: its id and a hash of its secret, never the secret.

    `agent_id` binds the token to one agent id ("" lets the collector derive it from the
    host name); `system_id` binds the enrolled agent to an information system ("" for none).
    """

    token_id: str
    secret_hash: str
    created_ns: int
    expires_ns: int
    system_id: str = ""
    agent_id: str = ""
    used_ns: int = 0
    used_by: str = ""
    revoked_ns: int = 0

    def state(self, now_ns: int) -> TokenState:
        """Used and revoked win over expired: they say what happened first."""
        if self.used_ns:
            return "used"
        if self.revoked_ns:
            return "revoked"
        if now_ns >= self.expires_ns:
            return "expired"
        return "unused"


@dataclass(frozen=True)
class AgentCertificate:
    """A client certificate the collector signed: serial (lowercase hex), owner, validity."""

    serial: str
    agent_id: str
    not_before_ns: int
    not_after_ns: int
    issued_ns: int
    revoked_ns: int = 0
    revoke_reason: str = ""


@dataclass(frozen=True)
class ChildCertificate:
    """A client certificate this collector's CA signed for a child collector (the parent tier):
    serial (lowercase hex), the child's name (its CN), validity."""

    serial: str
    name: str
    not_before_ns: int
    not_after_ns: int
    issued_ns: int
    revoked_ns: int = 0
    revoke_reason: str = ""


@dataclass(frozen=True)
class Enrollment:
    """One enrollment to record atomically with the consumption of its token.

    `exclusive`: the agent id was derived from a host name, so it must be new (the outcome is
    "agent_id_taken" otherwise and nothing is written). Not exclusive: the token names the
    agent id, and enrolling re-issues that identity: its earlier certificates are revoked as
    superseded and a revoked agent becomes enrolled again.
    """

    token_id: str
    now_ns: int
    agent_id: str
    hostname: str
    version: str
    system_id: str
    certificate: AgentCertificate
    exclusive: bool


class EnrollmentStore(Protocol):
    """Tokens, agents' certificates and revocation, and child collectors' certificates, durable
    and safe across processes."""

    def create_token(self, token: EnrollmentToken) -> None:
        """Store a new token; StorageError if its id exists."""
        ...

    def get_token(self, token_id: str) -> EnrollmentToken | None: ...

    def list_tokens(self) -> list[EnrollmentToken]:
        """Every token, oldest first."""
        ...

    def revoke_token(self, token_id: str, now_ns: int) -> bool:
        """Make an unused token unusable; False when unknown, used or already revoked."""
        ...

    def enroll_agent(self, enrollment: Enrollment) -> EnrollOutcome:
        """Consume the token and record the agent and its certificate, in one transaction.

        Checks, inside the transaction, that the token exists, is unused, not revoked and
        not expired at `now_ns`; of two concurrent calls with one token exactly one returns
        "enrolled". Nothing is written unless the outcome is "enrolled". The caller checks
        the token's secret before calling.
        """
        ...

    def renew_certificate(self, agent_id: str, old_serial: str, new: AgentCertificate) -> bool:
        """Record a renewed certificate for an enrolled agent, in one transaction.

        False (nothing written) when `old_serial` is not an unrevoked certificate of that
        agent or the agent is revoked. The old certificate stays valid until it expires.
        """
        ...

    def get_certificate(self, serial: str) -> AgentCertificate | None: ...

    def revoked_serials(self, serials: Sequence[str]) -> set[str]:
        """Those of `serials` that are revoked certificates (unknown serials are not included)."""
        ...

    def revoke_agent(self, agent_id: str, now_ns: int) -> int | None:
        """Mark the agent revoked and every certificate of it revoked, in one transaction.

        Returns how many certificates were newly revoked, or None for an unknown agent.
        Revoking twice is allowed (0 the second time).
        """
        ...

    def record_child_certificate(self, cert: ChildCertificate) -> None:
        """Store a certificate issued to a child collector; StorageError if its serial exists."""
        ...

    def list_child_certificates(self) -> list[ChildCertificate]:
        """Every child collector certificate, oldest issued first."""
        ...

    def revoke_child(self, name: str, now_ns: int, reason: str = "") -> int:
        """Revoke every unrevoked certificate of child collector `name`, in one transaction.

        Returns how many were newly revoked: 0 for an unknown name or when all were revoked
        before (the earlier revocation time and reason are kept).
        """
        ...

    def child_certificate_state(self, name: str, serial: str) -> ChildCertificateState:
        """The state of a child's certificate: "unknown" unless `serial` is on record as issued
        to child `name`, then "revoked" or "valid". Expiry is not looked at: TLS refuses an
        expired certificate before this is asked."""
        ...
