"""Token format, secrets and durations; agent ids from host names; the CA check of the issuer."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from canhgac.errors import TlsError
from collector.enroll.issuer import CertificateIssuer
from collector.enroll.naming import (
    AGENT_ID_RE,
    agent_id_from_hostname,
    enrollable,
    unique_candidates,
)
from collector.enroll.tokens import new_token, parse_duration, parse_token, secret_matches
from collector.ingest import service
from collector.pki import create_ca, issue_server_cert

NOW = 1_732_000_000_000_000_000


def test_a_token_is_shown_once_and_stored_as_a_hash() -> None:
    text, record = new_token(NOW, 3600 * 10**9, system_id="portal", agent_id="web-01")
    assert re.fullmatch(r"cgt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", text)
    token_id, secret = parse_token(text) or ("", "")
    assert token_id == record.token_id
    assert secret not in repr(record)
    assert record.secret_hash != secret
    assert len(record.secret_hash) == 64
    assert secret_matches(record, secret)
    assert not secret_matches(record, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert (record.expires_ns - record.created_ns, record.system_id, record.agent_id) == (
        3600 * 10**9,
        "portal",
        "web-01",
    )
    assert new_token(NOW, 1)[0] != text


@pytest.mark.parametrize("text", ["", "cgt_", "cgt_abc_def", "xyz_0123456789ab_" + "A" * 43])
def test_malformed_tokens_do_not_parse(text: str) -> None:
    assert parse_token(text) is None


def test_durations() -> None:
    assert parse_duration("90s") == 90 * 10**9
    assert parse_duration("24h") == 24 * 3600 * 10**9
    assert parse_duration("7d") == 7 * 86400 * 10**9
    for bad in ("24", "h", "1w", "0s", "366d", "-1h"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


@pytest.mark.parametrize(
    ("hostname", "agent_id"),
    [
        ("web-01.tinh.gov.vn", "web-01"),
        ("Web 01", "web-01"),
        ("-db_2-.local", "db_2"),
        ("máy-chủ", "m-y-ch"),
        ("", "agent"),
        ("....", "agent"),
        ("x" * 300, "x" * 60),
    ],
)
def test_agent_ids_from_host_names(hostname: str, agent_id: str) -> None:
    assert agent_id_from_hostname(hostname) == agent_id
    assert enrollable(agent_id)


def test_unique_candidates_stay_valid() -> None:
    base = agent_id_from_hostname("x" * 300)
    names = list(unique_candidates(base))
    assert names[:2] == [base, base + "-2"]
    assert len(names) == 99
    assert all(enrollable(n) for n in names)


def test_enrolled_ids_fit_a_certificate_common_name() -> None:
    assert enrollable("a" * 64)
    assert not enrollable("a" * 65)
    assert not enrollable("../etc")


def test_the_agent_id_rule_is_the_ingest_rule() -> None:
    assert AGENT_ID_RE.pattern == service.AGENT_ID_RE.pattern


def test_the_issuer_refuses_a_key_that_is_not_the_cas() -> None:
    now = dt.datetime.now(dt.UTC)
    ca, ca_key = create_ca("ca", now)
    _, other_key = create_ca("other", now)
    with pytest.raises(TlsError, match="does not match the CA certificate"):
        CertificateIssuer(ca, other_key, dt.timedelta(days=1))
    server, server_key = issue_server_cert(ca, ca_key, ["localhost"], now)
    with pytest.raises(TlsError, match="not a CA"):
        CertificateIssuer(server, server_key, dt.timedelta(days=1))


def test_certificates_never_outlive_the_ca() -> None:
    from agent.enroll.keys import new_key

    now = dt.datetime.now(dt.UTC)
    ca, ca_key = create_ca("ca", now)
    issuer = CertificateIssuer(ca, ca_key, dt.timedelta(days=100_000))
    issued = issuer.issue("web-01", new_key().public_key(), now)
    assert issued.record.not_after_ns <= int((now + dt.timedelta(days=3650)).timestamp()) * 10**9
