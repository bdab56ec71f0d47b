"""The collector configuration with every secret removed, for the bundle.

Redaction is by type and by name, so a secret added to the configuration later is covered
without touching this module when it follows either convention:
- every `SecretStr` value (the configuration's type for secrets, e.g. storage.postgres_dsn);
- every value under a key whose name contains one of SECRET_WORDS;
- in every remaining string, the password of a URL's user-info (`scheme://user:pw@host`)
  and `password=...` pairs of a libpq key/value DSN, and HTTP credentials written out
  (`Bearer <token>`, `Basic <base64>`).
Paths of key files (`tls.key_file`) are kept: where a key lives is not the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

REDACTED = "[redacted]"
SECRET_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "dsn",
    "credential",
    "private",
    "apikey",
    "authorization",
)
# `_file` and `_dir` keys name a place, not a secret (tls.key_file, tls.ca_key_file).
_PLACE_SUFFIXES = ("_file", "_dir", "_path")
# The password runs to the last '@' before the path: an unencoded '@' may be part of it.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:\s]*):[^/\s]*@")
# `password=`, `PGPASSWORD=`, `db_password: `; quoted values ('...' or "...") whole.
_KV_PASSWORD = re.compile(r"(?i)\b(\w*(?:password|passwd|pwd)\s*[=:]\s*)('[^']*'|\"[^\"]*\"|\S+)")
# An HTTP credential written out: `Bearer cgk_...`, `Basic dXNlcjpwdw==` (a header in a note).
_HTTP_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}")


def secret_name(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    if lowered.endswith(_PLACE_SUFFIXES):
        return False
    compact = lowered.replace("_", "")
    return any(word in compact for word in SECRET_WORDS)


def scrub_text(text: str) -> str:
    """A string with URL passwords and key/value passwords removed."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:{REDACTED}@", text)
    text = _HTTP_CREDENTIAL.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _KV_PASSWORD.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


def redact(value: Any, name: str = "") -> Any:
    """Plain JSON data with every secret replaced by REDACTED (see the module docstring)."""
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if name and secret_name(name) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, BaseModel):
        return {k: redact(getattr(value, k), k) for k in type(value).model_fields}
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, name) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub_text(str(value))
