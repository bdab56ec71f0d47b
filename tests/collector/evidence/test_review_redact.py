"""Review findings on configuration redaction: password forms that used to leak in part."""

from __future__ import annotations

import pytest

from collector.evidence.redact import REDACTED, scrub_text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("postgresql://u:p@ss-word@db/x", "ss-word"),  # an unencoded '@' inside the password
        ('host=db password="two words" user=u', "words"),  # libpq also takes double quotes
        ("PGPASSWORD=pw-8 psql", "pw-8"),  # a password variable glued to a prefix
        ("db_password: pw-9", "pw-9"),  # a YAML-style pair inside a string
    ],
)
def test_the_whole_password_is_removed(text: str, secret: str) -> None:
    out = scrub_text(text)
    assert secret not in out
    assert REDACTED in out


@pytest.mark.parametrize(
    "text",
    ["https://soc.example/api?a=1", "mailto:ops@example.vn", "user@host: port 22"],
)
def test_text_without_a_password_is_kept(text: str) -> None:
    assert scrub_text(text) == text


def test_the_host_after_a_url_password_is_kept() -> None:
    assert scrub_text("postgresql://u:pw@db:5432/x") == f"postgresql://u:{REDACTED}@db:5432/x"


def test_http_credentials_written_out_are_removed() -> None:
    from collector.evidence.redact import scrub_text

    text = "curl -H 'Authorization: Bearer cgk_0123456789ab_s3cr3tS3cr3tS3cr3t' https://x"
    assert "s3cr3t" not in scrub_text(text)
    assert "dXNlcjpwYXNzd29yZA" not in scrub_text("Authorization: Basic dXNlcjpwYXNzd29yZA==")
    # Prose with the words is left alone.
    assert scrub_text("basic auth over TLS") == "basic auth over TLS"
